/* test_stats.c -- per-row statistics (lib/diffusion/stats.c) against the
 * NumPy reference tests/data/stats_ref.txt (tests/ref/stats_ref.py), the
 * naive double-precision path, chi-square tests of the sampled tokens, the
 * top-p histogram path (flat rows, ties at the cut, the full vocabulary
 * width), and thread-count independence. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/pool.h"
#include "core/rng.h"
#include "diffusion/stats.h"

#define MAXV 1000
#define MAXC 16

typedef struct refcase {
    int V, k;
    double T, p;
    float x[MAXV];
    int nsm;
    int sm_ids[8];
    double sm_p[8];
    double H;
    double q[MAXV];
    int am;
    double conf, t1, t2, ne;
} refcase;

static refcase cases[MAXC];
static int n_cases;

static void load_ref(void) {
    if (n_cases) return;
    FILE *f = fopen("tests/data/stats_ref.txt", "r");
    assert_non_null(f);
    char tag[16];
    while (fscanf(f, "%15s", tag) == 1) {
        assert_string_equal(tag, "case");
        refcase *c = &cases[n_cases++];
        assert_int_equal(fscanf(f, "%d %lf %d %lf", &c->V, &c->T, &c->k, &c->p), 4);
        assert_int_equal(fscanf(f, "%15s", tag), 1);
        for (int i = 0; i < c->V; i++) assert_int_equal(fscanf(f, "%f", &c->x[i]), 1);
        assert_int_equal(fscanf(f, "%15s %d", tag, &c->nsm), 2);
        for (int i = 0; i < c->nsm; i++)
            assert_int_equal(fscanf(f, "%d %lf", &c->sm_ids[i], &c->sm_p[i]), 2);
        assert_int_equal(fscanf(f, "%15s %lf", tag, &c->H), 2);
        assert_int_equal(fscanf(f, "%15s", tag), 1);
        for (int i = 0; i < c->V; i++) assert_int_equal(fscanf(f, "%lf", &c->q[i]), 1);
        assert_int_equal(fscanf(f, "%15s %d %lf %lf %lf %lf", tag, &c->am, &c->conf, &c->t1, &c->t2, &c->ne), 6);
    }
    fclose(f);
    assert_true(n_cases >= 10);
}

static sd_stats_params params_of(const refcase *c) {
    sd_stats_params p = {c->T, c->k, c->p, 8, 1, 42, 7, 0};
    return p;
}

/* sd_stats_rows into one record per row: the library writes a structure
 * of arrays (what the denoising loop reads); the checks below compare
 * records. Soft-mask slots past sm_k are left as they were. */
static int32_t stats_rows(sd_pool *pool, const float *x, int64_t R, int64_t V, const uint64_t *ids,
                          const sd_stats_params *p, sd_row_stats *o, sd_error *err) {
    size_t bytes = sd_stats_scratch_bytes(pool ? sd_pool_threads(pool) : 1, V, p);
    void *scratch = sd_malloc(bytes);
    int32_t *tok = calloc((size_t)R, sizeof *tok), *ids_k = calloc((size_t)R * SD_STATS_MAX_K, sizeof *ids_k);
    float *f = calloc((size_t)R * 6, sizeof *f), *probs = calloc((size_t)R * SD_STATS_MAX_K, sizeof *probs);
    assert_true(scratch && tok && ids_k && f && probs);
    sd_stats_out out = {tok, f, f + R, f + 2 * R, f + 3 * R, f + 4 * R, f + 5 * R, ids_k, probs, NULL};
    int32_t rc = sd_stats_rows(pool, x, R, V, ids, p, scratch, &out, err);
    for (int64_t r = 0; r < R && rc == 0; r++) {
        o[r].token = tok[r];
        o[r].confidence = out.q_token[r];
        o[r].p_token = out.p_token[r];
        o[r].q_top1 = out.q_top1[r];
        o[r].q_top2 = out.q_top2[r];
        o[r].q_neg_entropy = 0.0f - out.q_entropy[r];
        o[r].entropy = out.p_entropy[r];
        for (int32_t i = 0; i < p->sm_k; i++) {
            o[r].sm_ids[i] = ids_k[r * p->sm_k + i];
            o[r].sm_probs[i] = probs[r * p->sm_k + i];
        }
    }
    sd_free(scratch);
    free(tok);
    free(ids_k);
    free(f);
    free(probs);
    return rc;
}

/* Top-k ids/probs and entropy at temperature 1, and the deterministic parts
 * of the sampling distribution, match NumPy. */
static void test_reference_fixture(void **state) {
    (void)state;
    load_ref();
    for (int ci = 0; ci < n_cases; ci++) {
        const refcase *c = &cases[ci];
        sd_stats_params p = params_of(c);
        p.temperature = 0.0; /* deterministic token: compare with argmax of q */
        double Tq = c->T;
        sd_row_stats o;
        uint64_t rid = 3;
        /* The fixture's q is at temperature T; argmax and q's top-2 do not
         * depend on the draw, so check them with the fixture's T. */
        p.temperature = Tq;
        assert_int_equal(stats_rows(NULL, c->x, 1, c->V, &rid, &p, &o, NULL), 0);
        int nsm = c->V < 8 ? c->V : 8;
        for (int i = 0; i < nsm; i++) {
            assert_int_equal(o.sm_ids[i], c->sm_ids[i]);
            assert_true(fabs(o.sm_probs[i] - c->sm_p[i]) < 1e-6 + 1e-5 * c->sm_p[i]);
        }
        assert_true(fabs(o.entropy - c->H) < 2e-5 * (1 + c->H));
        assert_true(fabs(o.q_top1 - c->t1) < 1e-5);
        assert_true(fabs(o.q_top2 - c->t2) < 1e-5);
        assert_true(fabs(o.q_neg_entropy - c->ne) < 2e-5 * (1 + fabs(c->ne)));
        /* The drawn token is one q allows, and its confidence is q there. */
        assert_true(c->q[o.token] > 0);
        assert_true(fabs(o.confidence - c->q[o.token]) < 1e-5);
        if (c->T == 0) {
            assert_int_equal(o.token, c->am);
            assert_true(fabs(o.confidence - c->conf) < 1e-6);
        }
    }
}

/* chi-square statistic of counts against expected probabilities, bins with
 * expected count < 5 merged; returns statistic and degrees of freedom. */
static double chi2(const int *cnt, const double *q, int V, int N, int *df) {
    double stat = 0, lo_e = 0, lo_o = 0;
    int bins = 0;
    for (int i = 0; i < V; i++) {
        double e = q[i] * N;
        if (q[i] == 0) {
            if (cnt[i]) return INFINITY; /* a filtered token was drawn */
            continue;
        }
        if (e < 5) {
            lo_e += e;
            lo_o += cnt[i];
            continue;
        }
        stat += (cnt[i] - e) * (cnt[i] - e) / e;
        bins++;
    }
    if (lo_e > 0) {
        stat += (lo_o - lo_e) * (lo_o - lo_e) / lo_e;
        bins++;
    }
    *df = bins - 1;
    return stat;
}

/* Wilson-Hilferty upper quantile at p = 0.001 (z = 3.09). */
static double chi2_crit(int df) {
    double a = 2.0 / (9.0 * df);
    return df * pow(1 - a + 3.09 * sqrt(a), 3);
}

static void draw_counts(const refcase *c, int N, int *cnt) {
    sd_stats_params p = params_of(c);
    memset(cnt, 0, sizeof(int) * (size_t)c->V);
    float *rows = malloc(sizeof(float) * (size_t)c->V * 1000);
    uint64_t *ids = malloc(sizeof(uint64_t) * 1000);
    sd_row_stats *o = malloc(sizeof(sd_row_stats) * 1000);
    for (int b = 0; b < N / 1000; b++) {
        for (int r = 0; r < 1000; r++) {
            memcpy(rows + (size_t)r * c->V, c->x, sizeof(float) * (size_t)c->V);
            ids[r] = (uint64_t)b * 1000 + r;
        }
        assert_int_equal(stats_rows(NULL, rows, 1000, c->V, ids, &p, o, NULL), 0);
        for (int r = 0; r < 1000; r++) cnt[o[r].token]++;
    }
    free(rows);
    free(ids);
    free(o);
}

static void test_chi_square(void **state) {
    (void)state;
    load_ref();
    int tested = 0;
    for (int ci = 0; ci < n_cases; ci++) {
        const refcase *c = &cases[ci];
        if (c->T == 0 || c->V > 200) continue;
        int N = 20000, df;
        int *cnt = malloc(sizeof(int) * (size_t)c->V);
        draw_counts(c, N, cnt);
        double s = chi2(cnt, c->q, c->V, N, &df);
        assert_true(df >= 1);
        if (!(s < chi2_crit(df)))
            fail_msg("case %d (V %d T %g k %d p %g): chi2 %g >= %g (df %d)", ci, c->V, c->T, c->k,
                     c->p, s, chi2_crit(df), df);
        /* Power check: the same counts are rejected against the distribution
         * without the filters when a filter is active. */
        if (c->k > 0 || c->p < 1) {
            double qu[MAXV], z = 0, m = -INFINITY;
            for (int i = 0; i < c->V; i++) m = fmax(m, c->x[i] / c->T);
            for (int i = 0; i < c->V; i++) z += (qu[i] = exp(c->x[i] / c->T - m));
            for (int i = 0; i < c->V; i++) qu[i] /= z;
            int df2;
            double s2 = chi2(cnt, qu, c->V, N, &df2);
            assert_true(s2 > chi2_crit(df2));
        }
        free(cnt);
        tested++;
    }
    assert_true(tested >= 10);
}

/* Share of the 64 largest logits in softmax(x / T), double precision: below
 * top_p, stats.c cannot place the top-p cut within its candidate list and
 * takes the histogram path. */
static double top64_share(const float *x, int V, double T) {
    double *y = malloc(sizeof(double) * (size_t)V), m = -INFINITY, z = 0, top = 0;
    for (int i = 0; i < V; i++) m = fmax(m, (y[i] = x[i] / T));
    for (int i = 0; i < V; i++) z += exp(y[i] - m);
    for (int k = 0; k < 64 && k < V; k++) { /* selection by repeated maximum */
        int b = -1;
        for (int i = 0; i < V; i++)
            if (y[i] > -INFINITY && (b < 0 || y[i] > y[b])) b = i;
        top += exp(y[b] - m);
        y[b] = -INFINITY;
    }
    free(y);
    return top / z;
}

/* The top-p histogram path (the 64 best miss top_p): the fixture's flat and
 * quantised cases (ties straddling the cut) draw the same tokens as the
 * naive path for thousands of row streams, and on 1 and 2 threads alike. */
static void test_top_p_histogram_path(void **state) {
    (void)state;
    load_ref();
    int flat_cases = 0, tie_cases = 0;
    const int R = 2000;
    uint64_t *ids = malloc(sizeof(uint64_t) * R);
    float *rows = malloc(sizeof(float) * MAXV * R);
    sd_row_stats *a = malloc(sizeof(sd_row_stats) * R), *b = malloc(sizeof(sd_row_stats) * R);
    sd_pool *pool;
    assert_int_equal(sd_pool_create(2, &pool, NULL), 0);
    for (int ci = 0; ci < n_cases; ci++) {
        const refcase *c = &cases[ci];
        if (c->T == 0 || c->p >= 1 || c->k > 0 || c->V < 128) continue;
        if (!(top64_share(c->x, c->V, c->T) < c->p)) continue;
        flat_cases++;
        /* a tie group split by the cut: equal logits, some kept, some not */
        int split = 0;
        for (int i = 0; i < c->V && !split; i++)
            for (int j = 0; j < c->V; j++)
                if (c->x[j] == c->x[i] && (c->q[i] > 0) != (c->q[j] > 0)) split = 1;
        tie_cases += split;
        for (int e = 0; e < 2; e++) { /* with and without H(p): different path choices */
            sd_stats_params p = params_of(c);
            p.skip_entropy = e;
            p.want_q_entropy = !e;
            for (int r = 0; r < R; r++) {
                memcpy(rows + (size_t)r * c->V, c->x, sizeof(float) * (size_t)c->V);
                ids[r] = (uint64_t)r * 7 + 1;
            }
            memset(a, 0, sizeof(sd_row_stats) * R); /* sm slots past sm_k stay unwritten */
            memset(b, 0, sizeof(sd_row_stats) * R);
            assert_int_equal(stats_rows(NULL, rows, R, c->V, ids, &p, a, NULL), 0);
            assert_int_equal(stats_rows(pool, rows, R, c->V, ids, &p, b, NULL), 0);
            assert_memory_equal(a, b, sizeof(sd_row_stats) * R);
            int mism = 0;
            for (int r = 0; r < R; r++) {
                sd_row_stats n;
                assert_int_equal(sd_stats_row_naive(c->x, c->V, ids[r], &p, &n), 0);
                if (!(c->q[a[r].token] > 0))
                    fail_msg("case %d: token %d is outside the top-p set", ci, a[r].token);
                if (a[r].token != n.token) {
                    mism++;
                    continue;
                }
                assert_true(fabs(a[r].confidence - c->q[a[r].token]) < 1e-5);
                assert_true(fabs(a[r].q_top1 - c->t1) < 1e-5);
                if (!e) assert_true(fabs(a[r].q_neg_entropy - c->ne) < 2e-5 * (1 + fabs(c->ne)));
            }
            /* only draws within float rounding of a CDF boundary may differ */
            if (mism * 200 > R) fail_msg("case %d: %d of %d draws differ from the naive path", ci, mism, R);
        }
    }
    sd_pool_free(pool);
    free(ids);
    free(rows);
    free(a);
    free(b);
    assert_true(flat_cases >= 4);
    assert_true(tie_cases >= 2);
}

/* The same at the vocabulary of Qwen2.5 (151936): flat, normal(0, 3) and
 * peaked rows, top-p with T below, at and above 1, against the naive path.
 * normal(0, 3) rows at T 0.7 are the bench's "flat rows". */
static void test_top_p_wide_rows(void **state) {
    (void)state;
    const int64_t V = 151936;
    float *x = sd_malloc(sizeof(float) * (size_t)V);
    sd_rng rng;
    sd_rng_init(&rng, 77, 0);
    const double scales[] = {0.3, 3.0, 8.0};
    const double Ts[] = {0.7, 1.0, 1.5, 0.7};
    const double ps[] = {0.95, 0.95, 0.8, 0.5};
    int total = 0, mism = 0;
    for (int si = 0; si < 3; si++) {
        for (int64_t i = 0; i < V; i++) x[i] = (float)(sd_rng_normal(&rng) * scales[si]);
        if (si == 2) x[12345] = x[0] = -INFINITY; /* masked-out logits */
        for (int c = 0; c < 4; c++) {
            sd_stats_params p = {Ts[c], 0, ps[c], 4, c & 1, 3, (uint64_t)si, (c >> 1) & 1};
            for (uint64_t rid = 0; rid < 2; rid++) {
                sd_row_stats f, n;
                assert_int_equal(stats_rows(NULL, x, 1, V, &rid, &p, &f, NULL), 0);
                assert_int_equal(sd_stats_row_naive(x, V, rid, &p, &n), 0);
                total++;
                if (f.token != n.token) {
                    mism++;
                    continue;
                }
                if (!(fabs(f.confidence - n.confidence) < 1e-5 * (1 + n.confidence)))
                    fail_msg("scale %g T %g p %g: conf %g vs %g", scales[si], Ts[c], ps[c], f.confidence,
                             n.confidence);
                assert_true(fabs(f.q_top1 - n.q_top1) < 1e-5);
                assert_true(fabs(f.q_top2 - n.q_top2) < 1e-5);
                assert_true(fabs(f.q_neg_entropy - n.q_neg_entropy) < 1e-4 * (1 + fabs(n.q_neg_entropy)));
                assert_true(fabs(f.p_token - n.p_token) < 1e-5);
            }
        }
    }
    assert_true(total == 24 && mism <= 1);
    sd_free(x);
}

/* Fast path against the naive double-precision path on random rows of a
 * realistic width, over the parameter combinations. */
static void test_fast_vs_naive(void **state) {
    (void)state;
    const int64_t V = 5003;
    float *x = sd_malloc(sizeof(float) * V);
    sd_rng rng;
    sd_rng_init(&rng, 11, 0);
    const double temps[] = {0, 0.5, 1, 1.7};
    const int ks[] = {0, 1, 7, 40, 100};
    const double ps[] = {1, 0.9, 0.3};
    int mismatched = 0, total = 0;
    for (int rep = 0; rep < 3; rep++) {
        double scale = rep == 0 ? 0.3 : rep == 1 ? 2 : 8;
        for (int64_t i = 0; i < V; i++) x[i] = (float)(sd_rng_normal(&rng) * scale);
        if (rep == 2) x[17] = -INFINITY; /* masked-out logit */
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 5; b++)
                for (int c = 0; c < 3; c++) {
                    sd_stats_params p = {temps[a], ks[b], ps[c], 5, 1, 99, (uint64_t)rep, 0};
                    sd_row_stats f, n;
                    uint64_t rid = (uint64_t)(a * 100 + b * 10 + c);
                    assert_int_equal(stats_rows(NULL, x, 1, V, &rid, &p, &f, NULL), 0);
                    assert_int_equal(sd_stats_row_naive(x, V, rid, &p, &n), 0);
                    total++;
                    if (f.token != n.token) {
                        /* Only a draw landing within float rounding of a CDF
                         * boundary may differ. */
                        assert_true(temps[a] > 0);
                        mismatched++;
                        continue;
                    }
                    if (!(fabs(f.confidence - n.confidence) < 1e-5))
                        fail_msg("T %g k %d p %g rep %d: conf %g vs %g tok %d", temps[a], ks[b], ps[c],
                                 rep, f.confidence, n.confidence, f.token);
                    assert_true(fabs(f.p_token - n.p_token) < 1e-5);
                    assert_true(fabs(f.q_top1 - n.q_top1) < 1e-5);
                    assert_true(fabs(f.q_top2 - n.q_top2) < 1e-5);
                    assert_true(fabs(f.entropy - n.entropy) < 1e-4);
                    assert_true(fabs(f.q_neg_entropy - n.q_neg_entropy) < 1e-4);
                    for (int i = 0; i < 5; i++) {
                        assert_int_equal(f.sm_ids[i], n.sm_ids[i]);
                        assert_true(fabs(f.sm_probs[i] - n.sm_probs[i]) < 1e-6);
                    }
                }
    }
    assert_true(mismatched * 50 <= total);
    sd_free(x);
}

/* Same results on 1 and 2 threads; NaN rows are refused. */
static void test_threads_and_nan(void **state) {
    (void)state;
    const int64_t V = 3000, R = 37;
    float *x = sd_malloc(sizeof(float) * V * R);
    uint64_t ids[37];
    sd_rng rng;
    sd_rng_init(&rng, 5, 0);
    for (int64_t i = 0; i < V * R; i++) x[i] = (float)sd_rng_normal(&rng);
    for (int r = 0; r < R; r++) ids[r] = (uint64_t)r * 3;
    sd_stats_params p = {0.8, 0, 0.95, 3, 1, 1234, 5, 0};
    sd_row_stats a[37], b[37];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    sd_pool *pool;
    assert_int_equal(sd_pool_create(2, &pool, NULL), 0);
    assert_int_equal(stats_rows(NULL, x, R, V, ids, &p, a, NULL), 0);
    assert_int_equal(stats_rows(pool, x, R, V, ids, &p, b, NULL), 0);
    assert_memory_equal(a, b, sizeof a);
    /* Without H(p) everything else is unchanged. */
    sd_stats_params pe = p;
    pe.skip_entropy = 1;
    sd_row_stats c[37];
    memset(c, 0, sizeof c);
    assert_int_equal(stats_rows(pool, x, R, V, ids, &pe, c, NULL), 0);
    for (int r = 0; r < R; r++) {
        assert_true(a[r].entropy > 0);
        assert_true(c[r].entropy == 0);
        c[r].entropy = a[r].entropy;
    }
    assert_memory_equal(a, c, sizeof a);
    x[5 * V + 100] = NAN;
    sd_error err = {0};
    assert_int_equal(stats_rows(pool, x, R, V, ids, &p, b, &err), SMDIFF_E_NUMERIC);
    assert_non_null(strstr(err.msg, "row 5"));
    x[5 * V + 100] = INFINITY;
    assert_int_equal(stats_rows(pool, x, R, V, ids, &p, b, &err), SMDIFF_E_NUMERIC);
    p.top_p = NAN;
    x[5 * V + 100] = 0;
    assert_int_equal(stats_rows(pool, x, R, V, ids, &p, b, &err), SMDIFF_E_INVAL);
    sd_pool_free(pool);
    sd_free(x);
}

/* The structure of arrays: each row's top-k goes to its slot, arrays left
 * NULL are not written (and cost nothing), a missing scratch is refused. */
static void test_output_arrays(void **state) {
    (void)state;
    const int64_t V = 300, R = 5;
    float *x = sd_malloc(sizeof(float) * V * R);
    sd_rng rng;
    sd_rng_init(&rng, 9, 0);
    for (int64_t i = 0; i < V * R; i++) x[i] = (float)(sd_rng_normal(&rng) * 2);
    uint64_t ids[5] = {10, 11, 12, 13, 14};
    sd_stats_params p = {0.8, 0, 0.9, 3, 0, 77, 2, 0};
    sd_row_stats full[5];
    memset(full, 0, sizeof full);
    assert_int_equal(stats_rows(NULL, x, R, V, ids, &p, full, NULL), 0);
    const int32_t slot[5] = {7, 0, 3, 9, 1};
    int32_t tok[5], sm_ids[10 * 3];
    float q[5], sm_probs[10 * 3];
    for (int i = 0; i < 30; i++) {
        sm_ids[i] = -1;
        sm_probs[i] = -1.0f;
    }
    sd_stats_out out = {tok, q, NULL, NULL, NULL, NULL, NULL, sm_ids, sm_probs, slot};
    size_t bytes = sd_stats_scratch_bytes(1, V, &p);
    void *scratch = sd_malloc(bytes);
    assert_int_equal(sd_stats_rows(NULL, x, R, V, ids, &p, scratch, &out, NULL), 0);
    int written[10] = {0};
    for (int r = 0; r < R; r++) {
        assert_int_equal(tok[r], full[r].token);
        assert_true(q[r] == full[r].confidence);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(sm_ids[slot[r] * 3 + i], full[r].sm_ids[i]);
            assert_true(sm_probs[slot[r] * 3 + i] == full[r].sm_probs[i]);
        }
        written[slot[r]] = 1;
    }
    for (int sl = 0; sl < 10; sl++)
        if (!written[sl])
            for (int i = 0; i < 3; i++) assert_int_equal(sm_ids[sl * 3 + i], -1);
    sd_error err = {0};
    assert_int_equal(sd_stats_rows(NULL, x, R, V, ids, &p, NULL, &out, &err), SMDIFF_E_INVAL);
    sd_free(scratch);
    sd_free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_fixture),
        cmocka_unit_test(test_chi_square),
        cmocka_unit_test(test_fast_vs_naive),
        cmocka_unit_test(test_top_p_histogram_path),
        cmocka_unit_test(test_top_p_wide_rows),
        cmocka_unit_test(test_threads_and_nan),
        cmocka_unit_test(test_output_arrays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
