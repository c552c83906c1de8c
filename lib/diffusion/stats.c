/* stats.c -- the sampling logic of the per-row statistics (stats.h): the
 * candidate token drawn from Dream's sampling distribution q, the
 * confidence kinds, and rows spread over a worker pool, on the row
 * summaries of stats_kernels.c. The candidate is argmax q or an
 * inverse-CDF draw, always over the kept tokens in vocabulary order.
 * The naive reference (sd_stats_row_naive) sorts the whole row in double
 * precision and follows Dream's sample_tokens literally.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "core/rng_streams.h"
#include "stats.h"
#include "stats_kernels.h"


double sd_stats_uniform(uint64_t seed, uint64_t ctr, uint64_t row_id) {
    uint64_t c[4] = {ctr, row_id, 0, 0}, k[2] = {seed, SD_STREAM_STATS_KEY}, o[4];
    sd_philox4x64(c, k, o);
    return (double)(o[0] >> 11) * (1.0 / 9007199254740992.0);
}

/* Inverse CDF over the whole row at inverse temperature beta: the first
 * index where the running sum of exp(beta (x - m)) passes target. Chunks
 * of 256 are summed with the vector kernel and only the crossing chunk is
 * walked element by element. */
static int32_t walk_cdf(const float *x, int64_t V, float m, float beta, double target) {
    const int64_t CH = 256;
    double acc = 0;
    int64_t i = 0;
    for (; i + CH <= V; i += CH) {
        double c = sd_row_exp_chunk(x + i, CH, m, beta);
        if (acc + c > target) break;
        acc += c;
    }
    int64_t last = -1;
    for (; i < V; i++) {
        float y = (x[i] - m) * beta;
        double e = sd_v1_exp(y);
        if (e > 0 && x[i] == x[i]) last = i;
        acc += e;
        if (acc > target) return (int32_t)i;
    }
    return (int32_t)(last >= 0 ? last : V - 1); /* rounding left target just above the sum */
}

static int cand_id_cmp(const void *a, const void *b) {
    const sd_cand *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Inverse CDF over the kept set in vocabulary order (the order the
 * unfiltered walk uses too): the first kept token whose running mass
 * passes target. */
static int32_t walk_kept(const float *x, int64_t V, float m, double beta, const sd_kept *k,
                         double target) {
    double acc = 0;
    if (k->mode == SD_KEEP_LIST && k->n <= SD_STATS_MAX_K) {
        sd_cand byid[SD_STATS_MAX_K];
        memcpy(byid, k->c, sizeof(sd_cand) * (size_t)k->n);
        qsort(byid, (size_t)k->n, sizeof *byid, cand_id_cmp);
        for (int64_t i = 0; i < k->n; i++) {
            acc += exp(beta * ((double)byid[i].v - m));
            if (acc > target) return byid[i].id;
        }
        return byid[k->n - 1].id;
    }
    if (k->mode == SD_KEEP_ABOVE) {
        /* The kept mass of chunks of 256 from the stored exponentials (a
         * masked vector sum, no exponential); only the chunk the draw
         * falls in is walked element by element. */
        const int64_t CH = 256;
        int64_t i = 0;
        for (; i + CH <= V; i += CH) {
            double c = sd_row_kept_chunk(x + i, k->e + i, CH, (int32_t)i, k->tau, k->tau_id);
            if (acc + c > target) break;
            acc += c;
        }
        for (; i < V; i++) {
            if (!(x[i] > k->tau || (x[i] == k->tau && i <= k->tau_id))) continue;
            acc += k->e[i];
            if (acc > target) return (int32_t)i;
        }
        /* rounding left target just above the kept sum: the last kept token */
        for (i = V - 1; i > 0; i--)
            if (x[i] > k->tau || (x[i] == k->tau && i <= k->tau_id)) break;
        return (int32_t)i;
    }
    float tau = k->mode == SD_KEEP_LIST ? k->c[k->n - 1].v : k->tau;
    int32_t tid = k->mode == SD_KEEP_LIST ? k->c[k->n - 1].id : k->tau_id;
    int32_t last = tid;
    for (int64_t i = 0; i < V; i++) {
        if (!(x[i] > tau || (x[i] == tau && i <= tid))) continue;
        acc += sd_v1_exp((x[i] - m) * (float)beta);
        last = (int32_t)i;
        if (acc > target) return (int32_t)i;
    }
    return last;
}

/* The candidate of row r and what the caller wants of it, written into
 * out at index r (slot for the soft-mask top-k). */
static void finish_row(const float *x, int64_t V, int64_t r, uint64_t row_id, const sd_stats_params *p,
                       const sd_row_summary *sum, const sd_stats_out *out) {
    double T = p->temperature;
    double beta = T > 0 ? 1.0 / T : 1.0;
    double m = sum->m, s = sum->s;
    if (out->p_entropy) out->p_entropy[r] = p->skip_entropy ? 0.0f : (float)sd_row_entropy(sum);
    if (p->sm_k > 0 && out->sm_ids) {
        size_t slot = (size_t)(out->sm_slot ? out->sm_slot[r] : r) * (size_t)p->sm_k;
        sd_row_softmax_topk(sum, p->sm_k, out->sm_ids + slot, out->sm_probs + slot);
    }
    double Z, tz;
    int64_t n_kept;
    sd_row_q_sums(x, V, sum, beta, p->want_q_entropy, T > 0, &Z, &tz, &n_kept);
    int32_t tok = sum->top[0].id;
    if (T > 0) {
        double target = sd_stats_uniform(p->seed, p->ctr, row_id) * Z;
        tok = sum->kept.mode == SD_KEEP_ALL ? walk_cdf(x, V, (float)m, (float)beta, target)
                                            : walk_kept(x, V, (float)m, beta, &sum->kept, target);
    }
    if (out->token) out->token[r] = tok;
    /* the confidence kinds: q[token] (SAMPLED) and p[token] (RAW) */
    if (out->q_token) out->q_token[r] = (float)(exp(beta * ((double)x[tok] - m)) / Z);
    if (out->p_token) out->p_token[r] = (float)(exp((double)x[tok] - m) / s);
    if (out->q_top1) out->q_top1[r] = (float)(exp(beta * ((double)sum->top[0].v - m)) / Z);
    if (out->q_top2)
        out->q_top2[r] = sum->ntop > 1 && n_kept > 1 ? (float)(exp(beta * ((double)sum->top[1].v - m)) / Z) : 0.0f;
    if (out->q_entropy) out->q_entropy[r] = p->want_q_entropy ? -(float)(tz / Z - log(Z)) : 0.0f;
}

/* ------------------------------------------------------ rows over a pool */

/* A thread's first failing row (rows of a thread are contiguous, so the
 * smallest of these is the first failing row of all). */
typedef struct row_fail {
    int64_t row;
    int32_t rc;
} row_fail;

#define FAIL_BYTES ((sizeof(row_fail) + 63) & ~(size_t)63)

size_t sd_stats_scratch_bytes(int n_threads, int64_t V, const sd_stats_params *p) {
    size_t row = sd_row_scratch_bytes(V, p), each, total;
    if (row == SIZE_MAX || n_threads < 1) return SIZE_MAX;
    each = row + FAIL_BYTES;
    if (sd_mul_size((size_t)n_threads, each, &total)) return SIZE_MAX;
    return total;
}

typedef struct rows_ctx {
    const float *logits;
    int64_t V;
    const uint64_t *row_id;
    const sd_stats_params *p;
    const sd_stats_out *out;
    char *scratch;     /* per thread: a row_fail, then the row scratch */
    size_t per_thread; /* bytes */
} rows_ctx;

static void rows_worker(void *vctx, int64_t begin, int64_t end, int thread) {
    rows_ctx *c = vctx;
    char *mine = c->scratch + (size_t)thread * c->per_thread;
    row_fail *fail = (row_fail *)mine;
    sd_row_scratch scr;
    sd_row_scratch_carve(mine + FAIL_BYTES, c->V, c->p, &scr);
    fail->rc = SMDIFF_OK;
    for (int64_t r = begin; r < end; r++) {
        sd_row_summary sum;
        const float *x = c->logits + r * c->V;
        int32_t rc = sd_row_summarize(x, c->V, c->p, &scr, &sum);
        if (rc) {
            fail->row = r;
            fail->rc = rc;
            return;
        }
        finish_row(x, c->V, r, c->row_id[r], c->p, &sum, c->out);
    }
}

int32_t sd_stats_rows(sd_pool *pool, const float *logits, int64_t n_rows, int64_t V,
                      const uint64_t *row_id, const sd_stats_params *p, void *scratch,
                      const sd_stats_out *out, sd_error *err) {
    if (n_rows == 0) return SMDIFF_OK;
    if (!logits || !row_id || !p || !out || !scratch || V < 1 || V > INT32_MAX || n_rows < 0)
        return sd_fail(err, SMDIFF_E_INVAL, "stats: invalid arguments");
    if (!(p->temperature >= 0) || !(p->top_p > 0 && p->top_p <= 1) || p->top_k < 0 ||
        p->sm_k < 0 || p->sm_k > SD_STATS_MAX_K || (p->sm_k > 0 && out->sm_ids && !out->sm_probs))
        return sd_fail(err, SMDIFF_E_INVAL, "stats: invalid sampling parameters");
    int nt = pool ? sd_pool_threads(pool) : 1;
    rows_ctx c = {logits, V, row_id, p, out, scratch, sd_row_scratch_bytes(V, p) + FAIL_BYTES};
    for (int t = 0; t < nt; t++) ((row_fail *)(c.scratch + (size_t)t * c.per_thread))->rc = SMDIFF_OK;
    if (pool)
        sd_pool_run(pool, rows_worker, &c, n_rows);
    else
        rows_worker(&c, 0, n_rows, 0);
    const row_fail *first = NULL;
    for (int t = 0; t < nt; t++) {
        const row_fail *f = (const row_fail *)(c.scratch + (size_t)t * c.per_thread);
        if (f->rc && (!first || f->row < first->row)) first = f;
    }
    if (!first) return SMDIFF_OK;
    if (first->rc == SMDIFF_E_NUMERIC)
        return sd_fail(err, first->rc, "stats: logits row %lld is not finite (NaN or inf)",
                       (long long)first->row);
    return sd_fail(err, first->rc, "stats: no scratch for the filters of logits row %lld",
                   (long long)first->row);
}

/* ------------------------------------------------------------ reference */

int32_t sd_stats_row_naive(const float *x, int64_t V, uint64_t row_id, const sd_stats_params *p,
                           sd_row_stats *o) {
    sd_cand *c = sd_malloc((size_t)V * sizeof *c);
    double *q = sd_malloc((size_t)V * sizeof *q);
    if (!c || !q) {
        sd_free(c);
        sd_free(q);
        return SMDIFF_E_NOMEM;
    }
    for (int64_t i = 0; i < V; i++) {
        if (!isfinite(x[i]) && !(x[i] < 0)) {
            sd_free(c);
            sd_free(q);
            return SMDIFF_E_NUMERIC;
        }
        c[i].v = x[i];
        c[i].id = (int32_t)i;
    }
    qsort(c, (size_t)V, sizeof *c, sd_cand_cmp);
    double m = c[0].v, s = 0, h = 0;
    for (int64_t i = 0; i < V; i++) s += exp((double)c[i].v - m);
    for (int64_t i = 0; i < V; i++) {
        double pi = exp((double)c[i].v - m) / s;
        if (pi > 0) h -= pi * log(pi);
    }
    o->entropy = (float)h;
    for (int32_t i = 0; i < p->sm_k; i++) {
        int64_t j = i < V ? i : 0;
        o->sm_ids[i] = c[j].id;
        o->sm_probs[i] = i < V ? (float)(exp((double)c[j].v - m) / s) : 0.0f;
    }
    /* Dream's sample_tokens on the sorted row: scale, top_p, top_k, softmax. */
    double T = p->temperature, beta = T > 0 ? 1.0 / T : 1.0;
    int64_t n = V;
    if (p->top_p < 1.0) {
        double z = 0, cum = 0;
        for (int64_t i = 0; i < V; i++) z += exp(beta * ((double)c[i].v - m));
        for (int64_t j = 0; j < V; j++) {
            cum += exp(beta * ((double)c[j].v - m)) / z;
            if (cum > p->top_p) {
                n = j + 1;
                break;
            }
        }
    }
    if (p->top_k > 0 && p->top_k < n) {
        int64_t j = p->top_k;
        while (j < n && c[j].v >= c[p->top_k - 1].v) j++;
        n = j;
    }
    double Z = 0;
    for (int64_t i = 0; i < n; i++) Z += (q[i] = exp(beta * ((double)c[i].v - m)));
    int64_t pick = 0;
    if (T > 0) {
        /* Kept tokens are drawn walking them in vocabulary order. */
        double u = sd_stats_uniform(p->seed, p->ctr, row_id) * Z, acc = 0;
        double *byid = sd_calloc((size_t)V, sizeof *byid);
        if (!byid) {
            sd_free(c);
            sd_free(q);
            return SMDIFF_E_NOMEM;
        }
        for (int64_t i = 0; i < n; i++) byid[c[i].id] = q[i];
        int64_t tok = -1, last = c[0].id;
        for (int64_t i = 0; i < V && tok < 0; i++) {
            if (byid[i] > 0) last = i;
            acc += byid[i];
            if (acc > u) tok = i;
        }
        if (tok < 0) tok = last;
        for (int64_t i = 0; i < n; i++)
            if (c[i].id == tok) pick = i;
        sd_free(byid);
    }
    o->token = c[pick].id;
    o->confidence = (float)(q[pick] / Z);
    o->q_top1 = (float)(q[0] / Z);
    o->q_top2 = n > 1 ? (float)(q[1] / Z) : 0.0f;
    double ne = 0;
    for (int64_t i = 0; i < n; i++)
        if (q[i] > 0) ne += q[i] / Z * log(q[i] / Z);
    o->q_neg_entropy = p->want_q_entropy ? (float)ne : 0.0f;
    o->p_token = (float)(exp((double)c[pick].v - m) / s);
    sd_free(c);
    sd_free(q);
    return SMDIFF_OK;
}

