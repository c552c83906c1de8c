/* bench_decode.c -- tokens per second of whole generations (docs/PERFORMANCE.md,
 * "Decoding: caches and batches"): the Qwen2.5-0.5B-shaped dream model of
 * qwen05b.h (F32 random weights, or BENCH_FTYPE), a prompt of 20 tokens and 256 or 1,024
 * generated, blocks of 32, for: uncached decoding with a fixed step count
 * (one token a step), the same in one block (its steps need logits for
 * every masked row, not a block's: what blocks save without a cache), the
 * prefix cache, the dual cache, the dual cache with threshold decoding, and
 * batches of 1, 4 and 8 sequences (dual cache, threshold).
 *
 * A whole generation at this size takes hours on a small machine, so the
 * benchmark times the steps the run is made of, on the real loop
 * (sd_generate and the batch entry, stopped by the step callback), and
 * composes the run from them:
 *   refresh   a step that computes every row (every uncached step; a
 *             cached run's first step of each block)
 *   dual      a dual-cache step of a block (its 32 rows and the row
 *             before them)
 *   prefix    a prefix-cache step, at the first block (the rows from the
 *             block to the end of the canvas) and, equal to a dual step, at
 *             the last; the run's mean is their mean (the cost is linear in
 *             the rows computed)
 * A block of fixed-step decoding runs 32 steps; with threshold decoding it
 * runs S steps. Random weights are never confident (their own S would be
 * 32), so S is taken from a real model: by default the mean steps per block
 * of 32 that threshold decoding (0.9) took on the bundled model in
 * docs/DECODING.md's measurement, S_THRESHOLD_BUNDLED -- that small model
 * is rarely confident, so it commits barely more than one token a step --
 * or BENCH_THRESHOLD_STEPS. The threshold rows are printed once more for a
 * model that commits 4 tokens a step (S = 8; BENCH_WHATIF_STEPS), labelled
 * "if S = ..." -- arithmetic on the same timed steps, not a measurement of
 * such a model. tokens/s = tokens / (blocks x block time); every ratio is
 * against the uncached figure of the same run.
 *
 * Times are CPU seconds of the process (clock.h), one thread by default
 * (BENCH_THREADS=n for more): on a shared machine the CPU time of one
 * thread holds when wall time does not. Wall seconds are printed beside.
 *
 *   BENCH_QUICK=1   generation length 256 only, batches of 1 and 8
 *   BENCH_FTYPE=T   the matrices in file type T of `smdiff quantize`
 *                   (q4_k_m, q8_0, bf16, ...; default f32): a cached step's
 *                   few rows then run on the integer kernels
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/pool.h"
#include "diffusion/generate.h"
#include "diffusion/sampler.h"
#include "nn/blas.h"
#include "nn/transformer.h"
#include "smdiff/smdiff.h"

#include "clock.h"
#include "qwen05b.h"

#define PROMPT 20
#define BLOCK 32
/* threshold 0.9 on the bundled model, blocks of 32 (docs/DECODING.md) */
#define S_THRESHOLD_BUNDLED 30.7

/* The CPU and wall time at the end of each step, up to `stop` steps. */
typedef struct clock_log {
    double cpu[64], wall[64];
    int n, stop;
} clock_log;

static int32_t on_step(size_t step, size_t n_steps, const int32_t *canvas, const uint8_t *committed,
                       const float *lambda, size_t n, void *ud) {
    (void)step, (void)n_steps, (void)canvas, (void)committed, (void)lambda, (void)n;
    clock_log *c = ud;
    c->cpu[c->n] = cpu_now(), c->wall[c->n] = now();
    return ++c->n >= c->stop;
}

static smdiff_sampler *sampler(int G, int block, int cache, const char *strategy, int threads) {
    smdiff_sampler *s;
    smdiff_softmask *sm;
    if (smdiff_sampler_create(&s) || smdiff_softmask_create(&sm)) exit(1);
    smdiff_sampler_set_int(s, SMDIFF_SAMPLER_GEN_LENGTH, G);
    smdiff_sampler_set_int(s, SMDIFF_SAMPLER_BLOCK_LENGTH, block);
    smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STEPS, G);
    smdiff_sampler_set_int(s, SMDIFF_SAMPLER_THREADS, threads);
    smdiff_sampler_set_int(s, SMDIFF_SAMPLER_CACHE, cache);
    smdiff_sampler_set_int(s, SMDIFF_SAMPLER_STOP_AT_EOS, 0);
    smdiff_sampler_set_strategy(s, strategy);
    smdiff_softmask_set_int(sm, SMDIFF_SM_MODE, SMDIFF_SM_OFF);
    smdiff_sampler_set_softmask(s, sm);
    smdiff_softmask_free(sm);
    return s;
}

/* Seconds (CPU, wall) of step 0 (a refresh) and of step 1 (cached, or
 * another full step) of one sequence. */
static void single(sd_gen_model *gm, int G, int block, int cache, int threads, double cpu[2], double wall[2]) {
    smdiff_sampler *s = sampler(G, block, cache, "low_confidence", threads);
    clock_log c = {{0}, {0}, 0, 2};
    smdiff_sampler_set_step_callback(s, on_step, &c);
    int32_t prompt[PROMPT], *out = malloc(sizeof(int32_t) * (size_t)G);
    for (int i = 0; i < PROMPT; i++) prompt[i] = 1000 + 37 * i;
    size_t n;
    double c0 = cpu_now(), w0 = now();
    int32_t rc = sd_generate(s, gm, prompt, PROMPT, out, (size_t)G, &n);
    if (rc != SMDIFF_E_ABORTED || c.n != 2) {
        fprintf(stderr, "generation failed: %s\n", smdiff_sampler_last_error(s));
        exit(1);
    }
    cpu[0] = c.cpu[0] - c0, cpu[1] = c.cpu[1] - c.cpu[0];
    wall[0] = c.wall[0] - w0, wall[1] = c.wall[1] - c.wall[0];
    free(out);
    smdiff_sampler_free(s);
}

/* The same for B sequences of a batch (dual cache, threshold), through
 * the loop's batch entry: one forward pass per step for all of them. */
static void batched(sd_gen_model *gm, int G, int B, int threads, double cpu[2], double wall[2]) {
    smdiff_sampler *s[8];
    int32_t prompt[PROMPT];
    for (int b = 0; b < B; b++) {
        s[b] = sampler(G, BLOCK, SMDIFF_CACHE_DUAL, "threshold", threads);
        for (int i = 0; i < PROMPT; i++) prompt[i] = 1000 + 37 * i + b;
        int has;
        if (sd_gen_batch_open(s[b], gm, prompt, 0, PROMPT, (size_t)G, &has) || !has) exit(1);
    }
    sd_gen_fwd fwd[8];
    float *logits = NULL;
    size_t cap = 0;
    int32_t status[8];
    sd_error err = {0};
    for (int k = 0; k < 2; k++) {
        double c0 = cpu_now(), w0 = now();
        if (sd_gen_batch_step(s, (size_t)B, gm, fwd, &logits, &cap, status, &err)) {
            fprintf(stderr, "batch step failed: %s\n", err.msg);
            exit(1);
        }
        cpu[k] = cpu_now() - c0, wall[k] = now() - w0;
    }
    sd_free(logits);
    for (int b = 0; b < B; b++) {
        sd_gen_batch_close(s[b]);
        smdiff_sampler_free(s[b]);
    }
}

static void row(int G, const char *what, double full, double step, double steps_per_block, int seqs, double base,
                double wall_full, double wall_step, double *tps_out) {
    double blocks = (double)G / BLOCK, block_s = full + (steps_per_block - 1) * step;
    double tps = seqs * BLOCK / block_s;
    if (tps_out) *tps_out = tps;
    printf("%5d  %-24s %9.2f %9.3f %7.1f %10.1f %10.3f %8.1fx   %7.2f %8.3f\n", G, what, full, step, steps_per_block,
           blocks * block_s, tps, base > 0 ? tps / base : 1.0, wall_full, wall_step);
}

int main(void) {
    int quick = getenv("BENCH_QUICK") && atoi(getenv("BENCH_QUICK")) > 0;
    int threads = getenv("BENCH_THREADS") ? atoi(getenv("BENCH_THREADS")) : 1;
    double S = getenv("BENCH_THRESHOLD_STEPS") ? atof(getenv("BENCH_THRESHOLD_STEPS")) : S_THRESHOLD_BUNDLED;
    double S_if = getenv("BENCH_WHATIF_STEPS") ? atof(getenv("BENCH_WHATIF_STEPS")) : 8.0;
    if (!(S >= 1 && S <= BLOCK) || !(S_if >= 1 && S_if <= BLOCK)) {
        fprintf(stderr, "bench_decode: steps per block must lie in [1, %d]\n", BLOCK);
        return 1;
    }
    if (threads < 1) threads = 1;
    double load[3] = {0, 0, 0};
    getloadavg(load, 3);
    const char *ftype = getenv("BENCH_FTYPE") ? getenv("BENCH_FTYPE") : "f32";
    printf("bench_decode%s: Qwen2.5-0.5B-shaped dream, %s random weights, prompt %d, blocks of %d, "
           "%d thread%s, OpenBLAS core %s, load average %.2f on %d CPUs\n",
           quick ? " (quick)" : "", ftype, PROMPT, BLOCK, threads, threads > 1 ? "s" : "", sd_blas_corename(),
           load[0], sd_cpu_count());
    printf("threshold decoding: %.1f steps per block (%s); rows \"if S = %.0f\": arithmetic for a model "
           "committing %.0f tokens a step, not measured\n",
           S, getenv("BENCH_THRESHOLD_STEPS") ? "BENCH_THRESHOLD_STEPS" : "the bundled model's, docs/DECODING.md",
           S_if, BLOCK / S_if);
    bench_model bm;
    double t0 = now();
    bench_model_build_ftype(&bm, ftype);
    sd_pool *pool = NULL;
    if (threads > 1 && sd_pool_create(threads, &pool, NULL)) return 1;
    sd_blas_set_threads(threads);
    sd_gen_model_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    sd_gen_model gm;
    sd_gen_model_of_weights(&bm.w, pool, -1, &ctx, &gm);
    printf("model built in %.1f s\n\n", now() - t0);
    printf("%5s  %-24s %9s %9s %7s %10s %10s %9s   %7s %8s\n", "gen", "configuration", "full s", "step s",
           "st/blk", "run s", "tokens/s", "vs uncached", "wall f", "wall st");
    const int gens[2] = {256, 1024};
    for (int gi = 0; gi < (quick ? 1 : 2); gi++) {
        int G = gens[gi];
        double c1[2], w1[2], cu[2], wu[2], cp[2], wp[2], cd[2], wd[2], base;
        single(&gm, G, 0, SMDIFF_CACHE_OFF, threads, c1, w1); /* one block: logits for all G rows */
        single(&gm, G, BLOCK, SMDIFF_CACHE_OFF, threads, cu, wu);
        single(&gm, G, BLOCK, SMDIFF_CACHE_PREFIX, threads, cp, wp);
        single(&gm, G, BLOCK, SMDIFF_CACHE_DUAL, threads, cd, wd);
        double full = (cu[0] + cu[1] + cp[0] + cd[0]) / 4; /* every full step, one figure */
        double wfull = (wu[0] + wu[1] + wp[0] + wd[0]) / 4;
        row(G, "uncached, fixed steps", full, full, BLOCK, 1, 0, wfull, wfull, &base);
        double f1 = (c1[0] + c1[1]) / 2, wf1 = (w1[0] + w1[1]) / 2;
        row(G, "uncached, one block", f1, f1, BLOCK, 1, base, wf1, wf1, NULL);
        row(G, "prefix cache", full, (cp[1] + cd[1]) / 2, BLOCK, 1, base, wfull, (wp[1] + wd[1]) / 2, NULL);
        row(G, "dual cache", full, cd[1], BLOCK, 1, base, wfull, wd[1], NULL);
        const int Bs[3] = {1, 4, 8};
        double cb[3][2], wb[3][2];
        for (int bi = 0; bi < 3; bi++)
            if (!quick || Bs[bi] != 4) batched(&gm, G, Bs[bi], threads, cb[bi], wb[bi]);
        for (int k = 0; k < 2; k++) {
            double s_k = k ? S_if : S;
            char what[64];
            if (k) snprintf(what, sizeof what, "if S = %.0f: dual + thr.", s_k);
            else snprintf(what, sizeof what, "dual cache + threshold");
            row(G, what, full, cd[1], s_k, 1, base, wfull, wd[1], NULL);
            for (int bi = 0; bi < 3; bi++) {
                if (quick && Bs[bi] == 4) continue;
                if (k) snprintf(what, sizeof what, "if S = %.0f: batch of %d", s_k, Bs[bi]);
                else snprintf(what, sizeof what, "batch of %d, dual + thr.", Bs[bi]);
                row(G, what, cb[bi][0], cb[bi][1], s_k, Bs[bi], base, wb[bi][0], wb[bi][1], NULL);
            }
        }
        fflush(stdout);
    }
    sd_gen_model_ctx_free(&ctx);
    sd_pool_free(pool);
    bench_model_release(&bm);
    return 0;
}
