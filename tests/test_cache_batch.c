/* test_cache_batch.c -- block caches and batched generation
 * (lib/diffusion/generate.c, api_batch.c; docs/DECODING.md "Caches" and
 * "Batches"), on the tiny random dream and llada models.
 *
 *  - with a refresh every step, a cached run is the uncached one: the same
 *    logits, bit for bit, at every step, and the same tokens, for dream
 *    (shifted logits) and llada, prefix and dual caches, SM off, entropy
 *    and constant, every kind of strategy (ranked, even, threshold,
 *    factor, re-masking), SM across blocks, sampling;
 *  - what a cached step computes: every row at a refresh (a block's first
 *    step, every N-th), from the block's start (the row before it with
 *    shifted logits) to the end with a prefix cache, the block's rows and
 *    the rows predicting them with a dual cache; the later blocks' rows get
 *    no logits then;
 *  - a batch decodes each sequence exactly as it decodes alone (different
 *    prompts, lengths, canvases, strategies, soft-masks, caches, seeds),
 *    with one forward pass per step for all of them;
 *  - the batch API: adding, removing, results, a failing sequence among
 *    good ones, a full batch, a busy sampler, options and bad input.
 */
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
#include "diffusion/generate.h"
#include "diffusion/sampler.h"
#include "smdiff/smdiff.h"
#include "smdiff/smdiff_decoder.h"
#include "testutil.h"

/* ------------------------------------------------- a recording model */

#define MAX_CALLS 512

/* A loaded model's view with every forward call recorded: per call the
 * sequences, the first sequence's rows computed (all: -1) and its logits
 * rows, and every logit. */
typedef struct rec {
    sd_gen_model_ctx ctx;
    sd_gen_model inner, gm;
    int calls;
    int n_seqs[MAX_CALLS];
    int64_t n_pos[MAX_CALLS]; /* -1: all rows (a refresh, or no cache) */
    int32_t pos[MAX_CALLS][64];
    int64_t n_rows[MAX_CALLS];
    int32_t rows[MAX_CALLS][64];
    float *log;
    size_t log_n, log_cap;
    size_t log_off[MAX_CALLS]; /* where each call's logits start in log */
} rec;

static void rec_embed(void *ctx, int32_t id, float *out) {
    rec *r = ctx;
    r->inner.embed(r->inner.ctx, id, out);
}

static size_t rec_cache_floats(void *ctx, int64_t L) {
    rec *r = ctx;
    return r->inner.cache_floats(r->inner.ctx, L);
}

static int32_t rec_forward(void *ctx, const sd_gen_fwd *f, size_t n, float *logits, int (*abort_fn)(void *),
                           void *abort_ud, sd_error *err) {
    rec *r = ctx;
    int32_t rc = r->inner.forward(r->inner.ctx, f, n, logits, abort_fn, abort_ud, err);
    if (rc) return rc;
    assert_true(r->calls < MAX_CALLS);
    int c = r->calls++;
    r->n_seqs[c] = (int)n;
    r->n_pos[c] = f[0].pos ? f[0].n_pos : -1;
    for (int64_t i = 0; f[0].pos && i < f[0].n_pos && i < 64; i++) r->pos[c][i] = f[0].pos[i];
    r->n_rows[c] = f[0].n_rows;
    for (int64_t i = 0; i < f[0].n_rows && i < 64; i++) r->rows[c][i] = f[0].rows[i];
    size_t add = 0;
    for (size_t i = 0; i < n; i++) add += (size_t)f[i].n_rows * (size_t)r->gm.n_vocab;
    if (r->log_n + add > r->log_cap) {
        r->log_cap = 2 * (r->log_n + add);
        r->log = realloc(r->log, sizeof(float) * r->log_cap);
        assert_non_null(r->log);
    }
    r->log_off[c] = r->log_n;
    memcpy(r->log + r->log_n, logits, sizeof(float) * add);
    r->log_n += add;
    return SMDIFF_OK;
}

static void rec_init(rec *r, const smdiff_model *m) {
    memset(r, 0, sizeof *r);
    sd_gen_model_of(m, &r->ctx, &r->inner);
    r->gm = r->inner;
    r->gm.embed = rec_embed;
    r->gm.forward = rec_forward;
    r->gm.cache_floats = rec_cache_floats;
    r->gm.ctx = r;
}

static void rec_reset(rec *r) { r->calls = 0, r->log_n = 0; }

static void rec_free(rec *r) {
    sd_gen_model_ctx_free(&r->ctx);
    free(r->log);
}

/* ------------------------------------------------------------ helpers */

static void set_softmask(smdiff_sampler *s, int mode) {
    smdiff_softmask *sm;
    assert_int_equal(smdiff_softmask_create(&sm), 0);
    assert_int_equal(smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, mode), 0);
    if (mode == SMDIFF_SM_ENTROPY) assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_SCALE, 0.7), 0);
    if (mode == SMDIFF_SM_CONSTANT)
        assert_int_equal(smdiff_softmask_set_double(sm, SMDIFF_SM_CONSTANT_LAMBDA, 0.4), 0);
    assert_int_equal(smdiff_sampler_set_softmask(s, sm), 0);
    smdiff_softmask_free(sm);
}

typedef struct config {
    const char *strategy;
    int gen, block, steps, sm, across;
    double temp;
} config;

static smdiff_sampler *sampler_for(const config *c, int cache, int refresh, int64_t seed) {
    smdiff_sampler *s;
    assert_int_equal(smdiff_sampler_create(&s), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, c->gen), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, c->block), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, c->steps), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_SM_ACROSS_BLOCKS, c->across), 0);
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TEMPERATURE, c->temp), 0);
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_THRESHOLD, 0.3), 0);
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_FACTOR, 2.0), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_SEED, seed), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_CACHE, cache), 0);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_CACHE_REFRESH, refresh), 0);
    assert_int_equal(smdiff_sampler_set_strategy(s, c->strategy), 0);
    set_softmask(s, c->sm);
    return s;
}

static const int32_t PROMPT[] = {5, 9, 14};

/* One run through the recording model: tokens into out[gen]. */
static void run_rec(rec *r, const config *c, int cache, int refresh, int32_t *out) {
    smdiff_sampler *s = sampler_for(c, cache, refresh, 7);
    size_t n = 0;
    rec_reset(r);
    int32_t rc = sd_generate(s, &r->gm, PROMPT, 3, out, (size_t)c->gen, &n);
    if (rc) fail_msg("%s: %s", c->strategy, smdiff_sampler_last_error(s));
    smdiff_sampler_free(s);
}

/* ---------------------------------------------- exactness at refresh 1 */

static void test_refresh_every_step_is_exact(void **state) {
    (void)state;
    const config cfgs[] = {
        {"maskgit_plus", 24, 8, 12, SMDIFF_SM_OFF, 0, 0},
        {"maskgit_plus", 24, 8, 12, SMDIFF_SM_ENTROPY, 0, 0},
        {"low_confidence", 24, 8, 24, SMDIFF_SM_CONSTANT, 0, 0},
        {"entropy", 24, 24, 8, SMDIFF_SM_ENTROPY, 0, 0.9},
        {"threshold", 24, 8, 24, SMDIFF_SM_OFF, 0, 0},
        {"factor", 24, 8, 24, SMDIFF_SM_ENTROPY, 1, 0},
        {"remdm_loop", 16, 8, 24, SMDIFF_SM_CONSTANT, 0, 1.0},
        {"origin", 24, 8, 12, SMDIFF_SM_ENTROPY, 1, 1.0},
    };
    const char *archs[] = {"dream", "llada"};
    int32_t want[32], got[32];
    for (int a = 0; a < 2; a++) {
        smdiff_model *m = test_load_tiny(archs[a], 1);
        rec r, u;
        rec_init(&r, m);
        rec_init(&u, m);
        for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
            run_rec(&u, &cfgs[i], SMDIFF_CACHE_OFF, 0, want);
            for (int cache = SMDIFF_CACHE_PREFIX; cache <= SMDIFF_CACHE_DUAL; cache++) {
                run_rec(&r, &cfgs[i], cache, 1, got);
                if (memcmp(got, want, sizeof(int32_t) * (size_t)cfgs[i].gen))
                    fail_msg("%s %s cache %d: tokens differ from the uncached run", archs[a], cfgs[i].strategy,
                             cache);
                assert_int_equal(r.calls, u.calls);
                assert_int_equal(r.log_n, u.log_n);
                if (memcmp(r.log, u.log, sizeof(float) * u.log_n))
                    fail_msg("%s %s cache %d: logits differ from the uncached run", archs[a], cfgs[i].strategy,
                             cache);
                for (int c = 0; c < r.calls; c++) assert_int_equal(r.n_pos[c], -1); /* every step refreshed */
            }
        }
        rec_free(&r);
        rec_free(&u);
        smdiff_model_free(m);
    }
}

/* ------------------------------------------------ what a step computes */

static void test_cached_rows(void **state) {
    (void)state;
    const char *archs[] = {"dream", "llada"};
    const int P = 3, G = 24, B = 8, L = P + G;
    /* one commit per step: 8 steps a block, 24 in all */
    const config c = {"low_confidence", G, B, G, SMDIFF_SM_ENTROPY, 0, 0};
    int32_t out[32];
    for (int a = 0; a < 2; a++) {
        smdiff_model *m = test_load_tiny(archs[a], 1);
        int shift = a == 0;
        rec r;
        rec_init(&r, m);
        for (int cache = SMDIFF_CACHE_PREFIX; cache <= SMDIFF_CACHE_DUAL; cache++)
            for (int refresh = 0; refresh <= 3; refresh += 3) {
                run_rec(&r, &c, cache, refresh, out);
                assert_int_equal(r.calls, G);
                for (int k = 0; k < G; k++) {
                    int step = k % B, lo = P + (k / B) * B, hi = lo + B;
                    int want_refresh = step == 0 || (refresh && step % refresh == 0);
                    assert_int_equal(r.n_pos[k] == -1, want_refresh);
                    assert_int_equal(r.n_rows[k], B - step); /* the block's masks */
                    if (want_refresh) continue;
                    const int32_t *p = r.pos[k];
                    int64_t n = r.n_pos[k];
                    for (int64_t i = 1; i < n; i++) assert_true(p[i] > p[i - 1]); /* ascending */
                    if (cache == SMDIFF_CACHE_PREFIX) {
                        /* from the first row needed to the end of the canvas */
                        assert_int_equal(p[n - 1], L - 1);
                        assert_int_equal(n, L - p[0]);
                        assert_true(p[0] == lo || (shift && p[0] == lo - 1));
                    } else {
                        /* the block, and with shifted logits the row before it while the
                         * block's first position is masked */
                        assert_true(n == B || (shift && n == B + 1));
                        assert_int_equal(p[n - 1], hi - 1);
                        assert_true(p[0] == lo || (shift && p[0] == lo - 1));
                    }
                    for (int64_t i = 0; i < r.n_rows[k]; i++) { /* every logits row is computed */
                        int found = 0;
                        for (int64_t j = 0; j < n; j++) found |= p[j] == r.rows[k][i];
                        assert_true(found);
                    }
                }
            }
        /* SM across blocks: a dual-cache step asks only for its block's rows
         * (the later ones keep their last refresh's predictions); a prefix
         * step computes the later blocks anyway and asks for them too */
        config across = c;
        across.across = 1;
        for (int cache = SMDIFF_CACHE_PREFIX; cache <= SMDIFF_CACHE_DUAL; cache++) {
            run_rec(&r, &across, cache, 0, out);
            for (int k = 0; k < G; k++) {
                int step = k % B, later = G - (k / B + 1) * B;
                int64_t want = B - step + (step == 0 || cache == SMDIFF_CACHE_PREFIX ? later : 0);
                assert_int_equal(r.n_rows[k], want);
            }
        }
        rec_free(&r);
        smdiff_model_free(m);
    }
}

/* Without refreshes inside a block the run is approximate but complete and
 * repeatable, and a cached step computes fewer rows than the canvas. */
static void test_cached_runs_complete(void **state) {
    (void)state;
    smdiff_model *m = test_load_tiny("dream", 1);
    const config c = {"threshold", 24, 8, 24, SMDIFF_SM_ENTROPY, 0, 0};
    rec r;
    rec_init(&r, m);
    int32_t a[32], b[32];
    for (int cache = SMDIFF_CACHE_PREFIX; cache <= SMDIFF_CACHE_DUAL; cache++) {
        run_rec(&r, &c, cache, 0, a);
        int cached = 0;
        for (int k = 0; k < r.calls; k++) cached += r.n_pos[k] > 0 && r.n_pos[k] < 27;
        assert_true(cached > 0);
        run_rec(&r, &c, cache, 0, b);
        assert_memory_equal(a, b, sizeof(int32_t) * 24);
        for (int i = 0; i < 24; i++) assert_true(a[i] >= 0 && a[i] < 160 && a[i] != 158);
    }
    rec_free(&r);
    smdiff_model_free(m);
}

/* A model that cannot cache refuses the cache options. */
static int32_t no_forward(void *ctx, const sd_gen_fwd *f, size_t n, float *logits, int (*abort_fn)(void *),
                          void *abort_ud, sd_error *err) {
    (void)ctx, (void)f, (void)n, (void)logits, (void)abort_fn, (void)abort_ud;
    return sd_fail(err, SMDIFF_E_INTERNAL, "not called");
}

static void zero_embed(void *ctx, int32_t id, float *out) {
    (void)ctx, (void)id;
    memset(out, 0, 4 * sizeof(float));
}

static void test_cache_needs_a_caching_model(void **state) {
    (void)state;
    sd_gen_model gm = {16, 4, 64, 15, -1, 0, zero_embed, no_forward, NULL, NULL};
    const config c = {"maskgit_plus", 8, 8, 8, SMDIFF_SM_OFF, 0, 0};
    smdiff_sampler *s = sampler_for(&c, SMDIFF_CACHE_DUAL, 0, 1);
    int32_t out[8];
    size_t n;
    assert_int_equal(sd_generate(s, &gm, PROMPT, 3, out, 8, &n), SMDIFF_E_UNSUPPORTED);
    assert_non_null(strstr(smdiff_sampler_last_error(s), "cache"));
    /* option bounds */
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_CACHE, 3), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_sampler_set_int(s, SMDIFF_SAMPLER_CACHE_REFRESH, -1), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_sampler_set_double(s, SMDIFF_SAMPLER_FACTOR, 0), SMDIFF_E_RANGE);
    int32_t key;
    assert_int_equal(smdiff_sampler_option_key("cache_refresh", &key), 0);
    assert_int_equal(key, SMDIFF_SAMPLER_CACHE_REFRESH);
    smdiff_sampler_free(s);
}

/* ------------------------------- the forward-skip cache beside block caches */

/* Logits of call j of r against those of call i of q (rows of r's call):
 * the largest absolute difference, or INFINITY when the row sets differ. */
static float call_diff(const rec *r, int j, const rec *q, int i) {
    if (r->n_rows[j] > q->n_rows[i]) return INFINITY;
    for (int64_t k = 0; k < r->n_rows[j] && k < 64; k++)
        if (r->rows[j][k] != q->rows[i][k]) return INFINITY;
    float d = 0;
    size_t n = (size_t)r->n_rows[j] * (size_t)r->gm.n_vocab;
    for (size_t k = 0; k < n; k++) {
        float e = fabsf(r->log[r->log_off[j] + k] - q->log[q->log_off[i] + k]);
        d = e > d ? e : d;
    }
    return d;
}

/* The passes of a skipping run are those of the run that makes every pass
 * with some left out, and each one left out would have given (to float
 * rounding: a cached pass is not bit for bit a full one) the logits of
 * the last pass made -- the logits the skipping run reused. */
static void check_skips(const rec *skip, const rec *every, const char *what) {
    int i = 0, last = -1; /* the last pass both runs made */
    for (int j = 0; j < every->calls; j++) {
        if (i < skip->calls && skip->n_pos[i] == every->n_pos[j] && call_diff(skip, i, every, j) == 0) {
            i++, last = j;
            continue;
        }
        float d = last < 0 ? INFINITY : call_diff(every, j, every, last);
        if (d > 1e-4f)
            fail_msg("%s: pass %d was skipped but its logits differ from those of pass %d (by %g)", what, j, last,
                     (double)d);
    }
    if (i != skip->calls) fail_msg("%s: the skipping run made passes the other did not", what);
}

/* The loop skips a forward pass whose inputs did not change (mdlm's step
 * cache, for every strategy). With a prefix or dual cache, refreshed at
 * block starts or every 2 steps, a run that skips equals, token for token,
 * the same run computing every pass, and each pass it skips repeats the
 * pass before: skipping must not leave a refresh undone or reuse stale
 * logits. */
static void test_skip_with_block_caches(void **state) {
    (void)state;
    const config cfgs[] = {
        {"origin", 16, 8, 16, SMDIFF_SM_OFF, 0, 1.0}, /* many steps commit nothing */
        {"ddpm_cache", 16, 16, 16, SMDIFF_SM_OFF, 0, 1.0},
        {"origin", 16, 8, 16, SMDIFF_SM_ENTROPY, 1, 1.0}, /* SM across blocks: more rows at a refresh */
        {"remdm_loop", 16, 8, 16, SMDIFF_SM_CONSTANT, 0, 1.0},
    };
    const char *archs[] = {"llada", "dream"};
    int skipped_any = 0;
    for (int a = 0; a < 2; a++) {
        smdiff_model *m = test_load_tiny(archs[a], 1);
        rec r[2];
        rec_init(&r[0], m);
        rec_init(&r[1], m);
        for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++)
            for (int cache = SMDIFF_CACHE_PREFIX; cache <= SMDIFF_CACHE_DUAL; cache++)
                for (int refresh = 0; refresh <= 2; refresh += 2) {
                    int32_t out[2][16];
                    int calls[2], skipped[2];
                    for (int every = 0; every < 2; every++) {
                        smdiff_sampler *s = sampler_for(&cfgs[i], cache, refresh, 11);
                        s->no_forward_cache = every;
                        size_t n = 0;
                        rec_reset(&r[every]);
                        if (sd_generate(s, &r[every].gm, PROMPT, 3, out[every], 16, &n))
                            fail_msg("%s: %s", cfgs[i].strategy, smdiff_sampler_last_error(s));
                        calls[every] = r[every].calls, skipped[every] = s->forwards_skipped;
                        smdiff_sampler_free(s);
                    }
                    if (memcmp(out[0], out[1], sizeof out[0]))
                        fail_msg("%s %s cache %d refresh %d: skipping passes changed the tokens", archs[a],
                                 cfgs[i].strategy, cache, refresh);
                    assert_int_equal(skipped[1], 0);
                    assert_int_equal(calls[0] + skipped[0], calls[1]);
                    char what[96];
                    snprintf(what, sizeof what, "%s %s cache %d refresh %d", archs[a], cfgs[i].strategy, cache,
                             refresh);
                    check_skips(&r[0], &r[1], what);
                    skipped_any += skipped[0] > 0;
                }
        rec_free(&r[0]);
        rec_free(&r[1]);
        smdiff_model_free(m);
    }
    assert_true(skipped_any > 0); /* the configurations do exercise the skip */
}

/* ---------------------------------------------------------- batches */

typedef struct job {
    config c;
    int cache, refresh;
    int64_t seed;
    int32_t ids[40];
    size_t n_ids;
    int is_canvas;
} job;

/* Different prompts and lengths, a canvas, strategies, soft-masks,
 * caches, temperatures and seeds. */
static const job JOBS[] = {
    {{"maskgit_plus", 16, 0, 8, SMDIFF_SM_OFF, 0, 0}, 0, 0, 1, {5, 9, 14}, 3, 0},
    {{"low_confidence", 24, 8, 24, SMDIFF_SM_ENTROPY, 0, 0.8}, 0, 0, 2, {7, 3, 30, 31, 2}, 5, 0},
    {{"threshold", 32, 8, 32, SMDIFF_SM_CONSTANT, 1, 0}, SMDIFF_CACHE_DUAL, 0, 3, {11}, 1, 0},
    {{"factor", 16, 8, 16, SMDIFF_SM_OFF, 0, 0}, SMDIFF_CACHE_PREFIX, 2, 4, {8, 8}, 2, 0},
    {{"remdm_cap", 8, 0, 12, SMDIFF_SM_ENTROPY, 0, 1.0}, 0, 0, 5, {4, 6}, 2, 0},
    {{"entropy", 0, 0, 6, SMDIFF_SM_ENTROPY, 0, 0.7},
     SMDIFF_CACHE_DUAL,
     0,
     6,
     {4, 158, 158, 158, 20, 21, 158, 158, 158, 30},
     10,
     1},
};
#define N_JOBS (sizeof JOBS / sizeof JOBS[0])

static smdiff_sampler *job_sampler(const job *j) {
    config c = j->c;
    if (j->is_canvas) c.gen = 1; /* not used for a canvas */
    return sampler_for(&c, j->cache, j->refresh, j->seed);
}

/* What job j gives alone, through the public calls. */
static size_t alone(smdiff_model *m, const job *j, int32_t *out, size_t *n_out) {
    smdiff_sampler *s = job_sampler(j);
    int32_t rc;
    if (j->is_canvas) {
        memcpy(out, j->ids, sizeof(int32_t) * j->n_ids);
        rc = smdiff_generate_canvas(s, m, out, j->n_ids);
        *n_out = j->n_ids;
    } else {
        rc = smdiff_generate_tokens(s, m, j->ids, j->n_ids, out, 64, n_out);
    }
    if (rc) fail_msg("%s alone: %s", j->c.strategy, smdiff_sampler_last_error(s));
    smdiff_sampler_free(s);
    return j->is_canvas ? j->n_ids : (size_t)j->c.gen;
}

static void test_batch_equals_alone(void **state) {
    (void)state;
    for (int threads = 1; threads <= 2; threads++) {
        smdiff_model *m = test_load_tiny("dream", threads);
        smdiff_batch *b;
        assert_int_equal(smdiff_batch_create(m, &b), 0);
        smdiff_sampler *s[N_JOBS];
        size_t id[N_JOBS];
        for (size_t i = 0; i < N_JOBS; i++) {
            s[i] = job_sampler(&JOBS[i]);
            assert_int_equal(smdiff_batch_add(b, s[i], JOBS[i].ids, JOBS[i].n_ids, JOBS[i].is_canvas, &id[i]), 0);
            assert_int_equal(id[i], i);
        }
        assert_int_equal(smdiff_batch_run(b), 0);
        for (size_t i = 0; i < N_JOBS; i++) {
            int32_t want[64], got[64];
            size_t nw = 0, ng = 0, len = alone(m, &JOBS[i], want, &nw);
            if (smdiff_batch_result(b, id[i], got, 64, &ng)) fail_msg("%s", smdiff_batch_last_error(b));
            assert_int_equal(ng, nw);
            if (memcmp(got, want, sizeof(int32_t) * len))
                fail_msg("job %zu (%s) differs in a batch on %d threads", i, JOBS[i].c.strategy, threads);
        }
        smdiff_batch_free(b);
        for (size_t i = 0; i < N_JOBS; i++) smdiff_sampler_free(s[i]);
        smdiff_model_free(m);
    }
}

/* Through the loop's batch entry with the recording model: one forward
 * pass per step, carrying every sequence still running. */
static void test_batch_one_pass_per_step(void **state) {
    (void)state;
    smdiff_model *m = test_load_tiny("llada", 1);
    rec r;
    rec_init(&r, m);
    const config c1 = {"low_confidence", 16, 8, 16, SMDIFF_SM_ENTROPY, 0, 0};
    const config c2 = {"low_confidence", 8, 0, 8, SMDIFF_SM_OFF, 0, 0};
    smdiff_sampler *s[2] = {sampler_for(&c1, SMDIFF_CACHE_DUAL, 0, 1), sampler_for(&c2, 0, 0, 2)};
    int has;
    assert_int_equal(sd_gen_batch_open(s[0], &r.gm, PROMPT, 0, 3, 64, &has), 0);
    assert_true(has);
    assert_int_equal(sd_gen_batch_open(s[1], &r.gm, PROMPT, 0, 2, 64, &has), 0);
    /* a sampler in a batch runs nothing else */
    int32_t out[16];
    size_t n;
    assert_int_equal(sd_generate(s[1], &r.gm, PROMPT, 3, out, 16, &n), SMDIFF_E_STATE);
    sd_gen_fwd fwd[2];
    float *logits = NULL;
    size_t cap = 0;
    int32_t status[2] = {1, 1};
    sd_error err = {0};
    int steps = 0;
    while (status[0] == 1) {
        size_t k = status[1] == 1 ? 2 : 1;
        assert_int_equal(sd_gen_batch_step(s, k, &r.gm, fwd, &logits, &cap, status, &err), 0);
        steps++;
        assert_int_equal(r.calls, steps);
        assert_int_equal(r.n_seqs[steps - 1], (int)k);
    }
    assert_int_equal(steps, 16);
    assert_int_equal(status[0], 0);
    assert_int_equal(status[1], 0); /* finished after its 8 steps */
    if (sd_gen_result(s[0], out, 16, &n)) fail_msg("%s", smdiff_sampler_last_error(s[0]));
    assert_int_equal(n, 16);
    sd_gen_batch_close(s[0]);
    sd_gen_batch_close(s[1]);
    assert_int_equal(sd_generate(s[1], &r.gm, PROMPT, 3, out, 16, &n), 0);
    sd_free(logits);
    smdiff_sampler_free(s[0]);
    smdiff_sampler_free(s[1]);
    rec_free(&r);
    smdiff_model_free(m);
}

static int32_t failing(const smdiff_step_view *v, int32_t *commit, int32_t *n_commit, int32_t *remask,
                       int32_t *n_remask, void *ud) {
    (void)v, (void)commit, (void)remask, (void)ud;
    *n_commit = *n_remask = 0;
    return v->step == 1 ? SMDIFF_E_NUMERIC : SMDIFF_OK;
}

static void test_batch_api(void **state) {
    (void)state;
    smdiff_model *m = test_load_tiny("dream", 1);
    smdiff_batch *b;
    assert_int_equal(smdiff_batch_create(NULL, &b), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_batch_create(m, &b), 0);
    /* options: family 800 only, bounds, not below what is held */
    int64_t v;
    assert_int_equal(smdiff_batch_get_int(b, SMDIFF_BATCH_CAPACITY, &v), 0);
    assert_int_equal(v, 8);
    assert_int_equal(smdiff_batch_set_int(b, SMDIFF_SAMPLER_STEPS, 2), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_batch_last_error(b), "sampler option"));
    assert_non_null(strstr(smdiff_last_error(), "batch option"));
    assert_int_equal(smdiff_sampler_set_int(NULL, SMDIFF_BATCH_CAPACITY, 2), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_batch_set_int(b, SMDIFF_BATCH_CAPACITY, 0), SMDIFF_E_RANGE);
    assert_int_equal(smdiff_batch_set_int(b, SMDIFF_BATCH_CAPACITY, 2), 0);
    int32_t key;
    assert_int_equal(smdiff_batch_option_key("capacity", &key), 0);
    assert_int_equal(key, SMDIFF_BATCH_CAPACITY);

    smdiff_decoder d = {sizeof d, SMDIFF_DECODER_ABI_VERSION, "test_failing", NULL, failing, NULL, 0, 0, 0, 0, 0, 0};
    assert_int_equal(smdiff_decoder_register(&d, NULL), 0);
    const config good = {"maskgit_plus", 8, 0, 8, SMDIFF_SM_OFF, 0, 0};
    smdiff_sampler *s1 = sampler_for(&good, 0, 0, 1), *s2 = sampler_for(&good, 0, 0, 2),
                   *s3 = sampler_for(&good, 0, 0, 3);
    assert_int_equal(smdiff_sampler_set_strategy(s2, "test_failing"), 0);
    size_t id1, id2, id3;
    assert_int_equal(smdiff_batch_add(b, s1, PROMPT, 3, 0, &id1), 0);
    assert_int_equal(smdiff_batch_add(b, s1, PROMPT, 3, 0, &id3), SMDIFF_E_STATE); /* busy sampler */
    assert_int_equal(smdiff_batch_add(b, s2, PROMPT, 3, 0, &id2), 0);
    assert_int_equal(smdiff_batch_add(b, s3, PROMPT, 3, 0, &id3), SMDIFF_E_STATE); /* full */
    assert_non_null(strstr(smdiff_batch_last_error(b), "full"));
    assert_int_equal(smdiff_batch_set_int(b, SMDIFF_BATCH_CAPACITY, 1), SMDIFF_E_STATE);
    /* a sampler in a batch is not used elsewhere */
    int32_t out[64];
    size_t n;
    assert_int_equal(smdiff_generate_tokens(s1, m, PROMPT, 3, out, 64, &n), SMDIFF_E_STATE);
    /* bad requests are refused and leave nothing behind */
    assert_int_equal(smdiff_batch_add(b, NULL, PROMPT, 3, 0, &id3), SMDIFF_E_INVAL);
    size_t running = 99;
    assert_int_equal(smdiff_batch_step(b, &running), 0);
    assert_int_equal(running, 2);
    assert_int_equal(smdiff_batch_result(b, id1, out, 64, &n), SMDIFF_E_STATE);
    assert_int_equal(smdiff_batch_result(b, 7, out, 64, &n), SMDIFF_E_NOT_FOUND);
    assert_int_equal(smdiff_batch_step(b, &running), 0);
    assert_int_equal(running, 1); /* s2's strategy failed at its second step */
    assert_int_equal(smdiff_batch_result(b, id2, out, 64, &n), SMDIFF_E_NUMERIC);
    assert_non_null(strstr(smdiff_batch_last_error(b), "test_failing"));
    /* a slot freed mid-run takes another sequence */
    assert_int_equal(smdiff_batch_remove(b, id2), 0);
    assert_int_equal(smdiff_batch_remove(b, id2), SMDIFF_E_NOT_FOUND);
    assert_int_equal(smdiff_batch_add(b, s3, PROMPT, 2, 0, &id3), 0);
    assert_int_equal(id3, id2);
    assert_int_equal(smdiff_batch_run(b), 0);
    assert_int_equal(smdiff_batch_result(b, id1, out, 4, &n), SMDIFF_E_BUFFER);
    assert_int_equal(smdiff_batch_result(b, id1, out, 64, &n), 0);
    assert_int_equal(n, 8);
    int32_t want[64];
    size_t nw;
    smdiff_sampler *s4 = sampler_for(&good, 0, 0, 1);
    assert_int_equal(smdiff_generate_tokens(s4, m, PROMPT, 3, want, 64, &nw), 0);
    assert_memory_equal(out, want, sizeof(int32_t) * 8);
    /* the sampler's options were put back when its sequence finished */
    int64_t steps;
    assert_int_equal(smdiff_sampler_get_int(s1, SMDIFF_SAMPLER_STEPS, &steps), 0);
    assert_int_equal(steps, 8);
    smdiff_batch_free(b); /* frees the slots; s1, s3 may run again */
    assert_int_equal(smdiff_generate_tokens(s1, m, PROMPT, 3, out, 64, &n), 0);
    assert_int_equal(smdiff_batch_step(NULL, NULL), SMDIFF_E_INVAL);
    assert_string_equal(smdiff_batch_last_error(NULL), "batch is NULL");
    smdiff_sampler_free(s1);
    smdiff_sampler_free(s2);
    smdiff_sampler_free(s3);
    smdiff_sampler_free(s4);
    assert_int_equal(smdiff_decoder_unregister("test_failing"), 0);
    smdiff_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refresh_every_step_is_exact), cmocka_unit_test(test_cached_rows),
        cmocka_unit_test(test_cached_runs_complete),        cmocka_unit_test(test_cache_needs_a_caching_model),
        cmocka_unit_test(test_batch_equals_alone),          cmocka_unit_test(test_batch_one_pass_per_step),
        cmocka_unit_test(test_batch_api),            cmocka_unit_test(test_skip_with_block_caches),
    };
    return cmocka_run_group_tests_name("cache_batch", tests, NULL, NULL);
}
