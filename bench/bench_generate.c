/* bench_generate.c -- where the time of a denoising step goes.
 *
 * Part 1 (no model): per-row statistics (stats.h) and soft-mask mixing at
 *   vocabulary 151936 with 256 masked rows, d 896 -- the work of a step
 *   outside the forward pass -- on 1 and 2 threads, greedy and sampled.
 * Part 2: full generations with a Qwen2.5-0.5B-shaped dream model (24
 *   layers, d 896, 14 heads, 2 KV heads, ffn 4864, vocab 151936; random F16
 *   weights made in memory): prompt 20 + 256 generated tokens (L = 276), a
 *   few steps (3), SM off and on; per-step seconds in the forward pass, in
 *   statistics + strategy, and in building the input embeddings (SM mix).
 *
 *   BENCH_QUICK=1   part 1 and a two-step generation only
 *   BENCH_GEN_RUN=r only generation run r (0 SM off greedy, 1 SM constant
 *                   greedy, 2 SM constant T 0.7 top-p 0.95)
 *
 * Prints a table (docs/PERFORMANCE.md, "Generation"); never fails on
 * slowness.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/pool.h"
#include "core/rng.h"
#include "diffusion/generate.h"
#include "diffusion/stats.h"
#include "io/gguf.h"
#include "nn/blas.h"
#include "nn/ops.h"
#include "nn/transformer.h"
#include "smdiff/smdiff.h"

#include "qwen05b.h"
#include "clock.h"

static double best_of(int reps, void (*fn)(void *), void *ctx) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        fn(ctx);
        double t = now() - t0;
        if (t < best) best = t;
    }
    return best;
}

/* ------------------------------------------------------- part 1: stats */

typedef struct stats_job {
    sd_pool *pool;
    const float *logits;
    int64_t R, V;
    const uint64_t *ids;
    sd_stats_params p;
    void *scratch;
    const sd_stats_out *out;
} stats_job;

static void run_stats(void *c) {
    stats_job *j = c;
    if (sd_stats_rows(j->pool, j->logits, j->R, j->V, j->ids, &j->p, j->scratch, j->out, NULL)) {
        fprintf(stderr, "stats failed\n");
        exit(1);
    }
}

typedef struct mix_job {
    const float *table; /* [V, d] */
    int64_t d, R;
    const float *e_mask;
    const int32_t *sm_ids; /* [R, k] */
    const float *sm_probs; /* [R, k] */
    int32_t k;
    float *out;
} mix_job;

static void run_mix(void *c) {
    mix_job *j = c;
    for (int64_t r = 0; r < j->R; r++)
        sd_softmask_mix(j->table, j->d, j->e_mask, j->sm_ids + r * j->k, j->sm_probs + r * j->k, j->k, 0.5f,
                        j->out + r * j->d);
}

static void part1(void) {
    const int64_t V = 151936, R = 256, d = 896;
    float *logits = sd_malloc(sizeof(float) * (size_t)(V * R));
    float *table = sd_malloc(sizeof(float) * (size_t)(V * d));
    float *out = sd_malloc(sizeof(float) * (size_t)(R * d));
    float *e_mask = sd_malloc(sizeof(float) * (size_t)d);
    uint64_t *ids = sd_malloc(sizeof(uint64_t) * (size_t)R);
    /* the statistics' arrays, as the denoising loop has them */
    int32_t *tok = sd_malloc(sizeof(int32_t) * (size_t)R), *sm_ids = sd_malloc(sizeof(int32_t) * 3 * (size_t)R);
    float *f = sd_malloc(sizeof(float) * 5 * (size_t)R), *sm_probs = sd_malloc(sizeof(float) * 3 * (size_t)R);
    sd_stats_params widest = {1, 40, 0.95, 3, 0, 0, 0, 0};
    void *scratch = sd_malloc(sd_stats_scratch_bytes(2, V, &widest));
    if (!logits || !table || !out || !e_mask || !ids || !tok || !sm_ids || !f || !sm_probs || !scratch) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    sd_rng rng;
    sd_rng_init(&rng, 1, 0);
    for (int64_t i = 0; i < V * R; i++) logits[i] = (float)(sd_rng_normal(&rng) * 3.0);
    for (int64_t i = 0; i < V * d; i++) table[i] = (float)sd_rng_uniform(&rng) - 0.5f;
    for (int64_t i = 0; i < d; i++) e_mask[i] = 0.1f;
    for (int64_t r = 0; r < R; r++) ids[r] = (uint64_t)r;
    printf("\npart 1: statistics + SM mixing, vocab %lld, %lld masked rows, d %lld (ms, best of 5)\n",
           (long long)V, (long long)R, (long long)d);
    printf("%-42s %10s %10s %12s\n", "", "1 thread", "2 threads", "CPU, 1 thr");
    struct {
        const char *label;
        double T, top_p;
        int32_t top_k, skip_h;
    } cfg[] = {{"stats, greedy (T 0)", 0, 1, 0, 0},
               {"stats, greedy, no H(p) (SM not entropy)", 0, 1, 0, 1},
               {"stats, sampled T 1", 1, 1, 0, 0},
               {"stats, sampled T 0.7", 0.7, 1, 0, 0},
               {"stats, T 0.7 top-k 40", 0.7, 1, 40, 0},
               {"stats, T 0.7 top-p 0.95 (flat rows)", 0.7, 0.95, 0, 0}};
    sd_pool *pool2;
    if (sd_pool_create(2, &pool2, NULL)) exit(1);
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        double t[2], cpu = 0;
        int reps = c == 5 ? 2 : 5;
        for (int th = 0; th < 2; th++) {
            sd_stats_out so = {tok, f, NULL, f + R, f + 2 * R, NULL, cfg[c].skip_h ? NULL : f + 3 * R, sm_ids,
                               sm_probs, NULL};
            stats_job j = {th ? pool2 : NULL, logits, R, V, ids, {cfg[c].T, cfg[c].top_k, cfg[c].top_p, 3, 0, 7, 1, cfg[c].skip_h},
                           scratch, &so};
            double c0 = cpu_now();
            t[th] = best_of(reps, run_stats, &j);
            if (th == 0) cpu = (cpu_now() - c0) / reps;
        }
        printf("%-42s %10.2f %10.2f %12.2f\n", cfg[c].label, t[0] * 1e3, t[1] * 1e3, cpu * 1e3);
    }
    mix_job mj = {table, d, R, e_mask, sm_ids, sm_probs, 3, out};
    double tm = best_of(5, run_mix, &mj);
    printf("%-42s %10.3f %10s\n", "SM mix, k 3, 256 rows", tm * 1e3, "-");
    sd_pool_free(pool2);
    sd_free(logits);
    sd_free(table);
    sd_free(out);
    sd_free(e_mask);
    sd_free(ids);
    sd_free(tok);
    sd_free(sm_ids);
    sd_free(f);
    sd_free(sm_probs);
    sd_free(scratch);
}

/* --------------------------------------------------- part 2: generation */

typedef struct bmodel {
    bench_model m;
    sd_pool *pool;
    sd_gen_model_ctx ctx;
    sd_gen_model inner;   /* the loop's view of the weights */
    double cpu_forward;
} bmodel;

/* The inner view's callbacks on its own context; the forward timed in
 * process CPU time. */
static void bm_embed(void *ctx, int32_t id, float *out) {
    bmodel *bm = ctx;
    bm->inner.embed(bm->inner.ctx, id, out);
}

static size_t bm_cache_floats(void *ctx, int64_t L) {
    bmodel *bm = ctx;
    return bm->inner.cache_floats(bm->inner.ctx, L);
}

static int32_t bm_forward(void *ctx, const sd_gen_fwd *f, size_t n, float *logits, int (*abort_fn)(void *),
                          void *abort_ud, sd_error *err) {
    bmodel *bm = ctx;
    double c0 = cpu_now();
    int32_t rc = bm->inner.forward(bm->inner.ctx, f, n, logits, abort_fn, abort_ud, err);
    bm->cpu_forward += cpu_now() - c0;
    return rc;
}

static void part2(int quick) {
    bmodel bm;
    memset(&bm, 0, sizeof bm);
    double t0 = now();
    bench_model_build(&bm.m, SD_GGML_F16);
    if (sd_pool_create(2, &bm.pool, NULL)) exit(1);
    sd_blas_set_threads(2);
    printf("\npart 2: generation, Qwen2.5-0.5B-shaped dream, F16 random weights (built in %.1f s), "
           "prompt 20 + 256, 2 threads\n",
           now() - t0);
    sd_gen_model_of_weights(&bm.m.w, bm.pool, -1, &bm.ctx, &bm.inner);
    sd_gen_model gm = bm.inner;
    gm.embed = bm_embed;
    gm.forward = bm_forward;
    gm.cache_floats = bm_cache_floats;
    gm.ctx = &bm;
    int32_t prompt[20], out[256];
    size_t n_out;
    for (int i = 0; i < 20; i++) prompt[i] = 1000 + 37 * i;
    printf("%-26s %6s %12s %12s %12s %10s\n", "run", "steps", "forward ms", "stats ms", "embed ms",
           "outside %");
    int n_runs = quick ? 1 : 3, first = 0;
    const char *only = getenv("BENCH_GEN_RUN");
    if (only && atoi(only) >= 0 && atoi(only) < 3) {
        first = atoi(only);
        n_runs = first + 1;
    }
    for (int run = first; run < n_runs; run++) {
        smdiff_sampler *s;
        if (smdiff_sampler_create(&s)) exit(1);
        int steps = quick ? 2 : 3;
        smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, 256);
        smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, steps);
        smdiff_sampler_set_int(s, SMDIFF_SAMPLER_THREADS, 2);
        smdiff_softmask *sm;
        smdiff_softmask_create(&sm);
        const char *label = "SM off, greedy";
        if (run == 0) smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, SMDIFF_SM_OFF);
        if (run >= 1) {
            smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, SMDIFF_SM_CONSTANT);
            label = "SM constant 0.5, greedy";
        }
        if (run == 2) {
            smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TEMPERATURE, 0.7);
            smdiff_sampler_set_double(s, SMDIFF_SAMPLER_TOP_P, 0.95);
            label = "SM on, T 0.7 top-p 0.95";
        }
        smdiff_sampler_set_softmask(s, sm);
        smdiff_softmask_free(sm);
        bm.cpu_forward = 0;
        double cpu0 = cpu_now();
        int32_t rc = sd_generate(s, &gm, prompt, 20, out, 256, &n_out);
        double cpu_all = cpu_now() - cpu0;
        if (rc) {
            fprintf(stderr, "generate failed: %s\n", smdiff_sampler_last_error(s));
            exit(1);
        }
        int k = s->steps_run;
        double f = s->time_forward / k * 1e3, st = s->time_stats / k * 1e3, e = s->time_embed / k * 1e3;
        printf("%-26s %6d %12.1f %12.2f %12.2f %9.2f%%\n", label, k, f, st, e, 100 * (st + e) / (f + st + e));
        /* The same split in process CPU time (both threads; holds on a
         * shared machine): the forward callback's CPU against everything
         * else sd_generate spent. OpenBLAS's spin-waiting counts as forward. */
        printf("%-26s %6s %12.1f %12.2f %12s %9.2f%%   (CPU ms per step)\n", "  same, CPU time", "",
               bm.cpu_forward / k * 1e3, (cpu_all - bm.cpu_forward) / k * 1e3, "(incl.)",
               100 * (cpu_all - bm.cpu_forward) / cpu_all);
        smdiff_sampler_free(s);
    }
    sd_gen_model_ctx_free(&bm.ctx);
    sd_pool_free(bm.pool);
    bench_model_release(&bm.m);
}

int main(void) {
    int quick = getenv("BENCH_QUICK") && atoi(getenv("BENCH_QUICK")) > 0;
    const char *ct = getenv("OPENBLAS_CORETYPE");
    double load[3] = {0, 0, 0};
    getloadavg(load, 3);
    printf("bench_generate%s: OpenBLAS core %s (OPENBLAS_CORETYPE=%s), load average %.2f %.2f %.2f "
           "on %d CPUs\n",
           quick ? " (quick)" : "", sd_blas_corename(), ct ? ct : "unset", load[0], load[1], load[2],
           sd_cpu_count());
    part1();
    part2(quick);
    return 0;
}
