/* bench_mdlm.c -- the paper's architecture at the paper's size: MDLM's
 * 169M DiT (d 768, 12 blocks, 12 heads, F 3072, cond 128, V 50258) at
 * 1,024 positions. Seconds per forward (all 1,024 rows through the head, as
 * an evaluation does) and per training step (plain MDLM and soft-masked
 * two-pass, about half the positions masked), each with its useful FLOPs as
 * a fraction of the sgemm peak measured in the same run on the step's own
 * shapes (M = 1024; N, K from the model). Random weights, F32, made in
 * memory: the trainer's parameters, viewed as the inference weights.
 *
 * Targets (issue 20): forward >= 85% of the peak, training >= 50%.
 *   BENCH_QUICK=1   L = 256 and one repetition: a smoke run
 * Run through `make bench`. Prints a table; never fails on slowness. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/arena.h"
#include "core/pool.h"
#include "core/rng.h"
#include "nn/blas.h"
#include "train/objective.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Best GFLOP/s of C = A @ B^T over the step's shapes (M = L). */
static double peak_gflops(int64_t M, const int64_t (*nk)[2], int n_shapes) {
    double best = 0;
    for (int s = 0; s < n_shapes; s++) {
        int64_t N = nk[s][0], K = nk[s][1];
        float *A = calloc((size_t)(M * K), 4), *B = calloc((size_t)(N * K), 4), *C = malloc((size_t)(M * N) * 4);
        for (int64_t i = 0; i < M * K; i++) A[i] = (float)(i % 7) * 0.1f;
        for (int64_t i = 0; i < N * K; i++) B[i] = (float)(i % 5) * 0.1f;
        for (int r = 0; r < 3; r++) {
            double t0 = now();
            sd_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
            double g = 2.0 * (double)M * (double)N * (double)K / (now() - t0) / 1e9;
            if (g > best) best = g;
        }
        free(A), free(B), free(C);
    }
    return best;
}

int main(void) {
    int quick = getenv("BENCH_QUICK") && atoi(getenv("BENCH_QUICK")) > 0;
    int64_t L = quick ? 256 : 1024;
    int reps = quick ? 1 : 3;
    setvbuf(stdout, NULL, _IOLBF, 0);
    sd_hparams hp = {0};
    hp.arch = SD_ARCH_MDLM;
    hp.n_vocab = 50258, hp.n_embd = 768, hp.n_layer = 12, hp.n_head = hp.n_head_kv = 12, hp.n_ff = 3072;
    hp.n_cond = 128, hp.n_freq = 256, hp.n_ctx = 1024, hp.norm_eps = 1e-5f, hp.rope_base = 10000.0f;
    hp.mask_id = 50257, hp.eos_id = 50256;
    sd_tmodel *m = NULL;
    sd_error err = {0};
    sd_pool *pool = NULL;
    if (sd_tmodel_create(&hp, 1, L, 0, &m, &err) || sd_pool_create(sd_blas_get_threads(), &pool, &err)) {
        fprintf(stderr, "bench_mdlm: %s\n", err.msg);
        return 1;
    }
    m->pool = pool;
    sd_rng rng;
    sd_rng_init(&rng, 1, 0);
    sd_tmodel_init_random(m, &rng, 0.02f, 1e-6, 6.66, -0.75);
    const int64_t nk[5][2] = {{768, 768}, {3072, 768}, {768, 3072}, {4608, 128}, {50258, 768}};
    double peak = peak_gflops(L, nk, 5);
    printf("bench_mdlm%s: MDLM DiT 169M shape (%.1fM parameters), L = %lld, %d BLAS threads (core %s)\n"
           "sgemm peak on the step's shapes: %.1f GFLOP/s\n",
           quick ? " (quick)" : "", m->n_params / 1e6, (long long)L, sd_blas_get_threads(), sd_blas_corename(), peak);

    /* forward: the inference pass on the trainer's weights, every row's logits */
    sd_layer_weights *lw = calloc((size_t)hp.n_layer, sizeof *lw);
    sd_weights w;
    sd_tmodel_as_weights(m, &w, lw);
    float *embd = malloc(sizeof(float) * (size_t)(L * hp.n_embd)), *logits = malloc(sizeof(float) * (size_t)(L * hp.n_vocab));
    int32_t *rows = malloc(sizeof(int32_t) * (size_t)L);
    for (int64_t i = 0; i < L; i++) {
        rows[i] = (int32_t)i;
        sd_embed_token(&w, (int32_t)sd_rng_below(&rng, 50000), embd + i * hp.n_embd);
    }
    sd_arena arena;
    if (sd_arena_init(&arena, sd_forward_scratch_bytes(&hp, L, L, pool ? sd_pool_threads(pool) : 1), 0)) return 1;
    sd_forward_opts fo = {0, pool, NULL, NULL};
    double best = 1e30;
    for (int r = 0; r <= reps; r++) { /* r = 0 warms up */
        double t0 = now();
        if (sd_forward(&w, embd, L, rows, L, logits, NULL, &fo, &arena, &err)) {
            fprintf(stderr, "bench_mdlm: %s\n", err.msg);
            return 1;
        }
        if (r && now() - t0 < best) best = now() - t0;
    }
    double fl = sd_forward_flops(&w, L, L);
    printf("forward:  %.3f s, %.1f GFLOP, %.1f GFLOP/s = %.0f%% of the peak (target 85%%)\n", best, fl / 1e9,
           fl / best / 1e9, 100.0 * fl / best / 1e9 / peak);
    sd_arena_destroy(&arena);

    /* training steps: plain MDLM and SM two-pass, half the positions masked */
    sd_objective_ws ws;
    sd_objective_opts oo;
    sd_objective_defaults(&oo);
    if (sd_objective_ws_init(&ws, m, 3, &err)) {
        fprintf(stderr, "bench_mdlm: %s\n", err.msg);
        return 1;
    }
    int32_t *x0 = malloc(sizeof(int32_t) * (size_t)L);
    for (int64_t i = 0; i < L; i++) x0[i] = (int32_t)sd_rng_below(&rng, 50000);
    for (int sm = 0; sm < 2; sm++) {
        double tb = 1e30, flb = 0;
        for (int r = 0; r <= reps; r++) {
            float t[1];
            sd_mdlm_sample(&rng, &oo, 1, L, t, ws.masked);
            t[0] = 0.5f;
            double t0 = now(), loss;
            int64_t R;
            sd_tmodel_zero_grad(m);
            if (sd_mdlm_loss_grad(m, &ws, &oo, x0, 1, L, ws.masked, t, sm, &loss, &R)) {
                fprintf(stderr, "bench_mdlm: %s\n", m->err.msg);
                return 1;
            }
            double dt = now() - t0, f = sd_tmodel_forward_flops(&hp, 1, L, R);
            if (r && dt < tb) tb = dt, flb = 3.0 * f + (sm ? f : 0.0);
        }
        printf("train %s: %.3f s/step, %.1f GFLOP/s = %.0f%% of the peak (target 50%%)\n", sm ? "SM  " : "MDLM",
               tb, flb / tb / 1e9, 100.0 * flb / tb / 1e9 / peak);
    }
    free(x0), free(embd), free(logits), free(rows), free(lw);
    sd_objective_ws_free(&ws);
    sd_tmodel_free(m);
    sd_pool_free(pool);
    return 0;
}
