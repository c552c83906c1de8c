/* bench_quant.c -- a denoising step with quantised weights on the
 * Qwen2.5-0.5B shape (bench/qwen05b.h, random weights), against the
 * machine's peaks measured in the same run.
 *
 * One run measures, in the same process:
 *   1. the sgemm peak on the step's shapes (M = 256) and the memory read
 *      bandwidth (a 512 MB buffer), for each thread count;
 *   2. for the weights of F32, BF16, Q8_0, Q4_K_M and Q6_K files (each
 *      tensor in the type smdiff quantize's recipe gives it; on this shape
 *      rows of 896 are not whole 256-blocks, so the K-quant files hold
 *      Q5_0/Q8_0 matrices with Q4_K/Q6_K only in ffn_down, as llama.cpp's
 *      files of Qwen2.5-0.5B do), seconds per step:
 *        - 256 positions: a forward over a canvas of 256 with the logits of
 *          every position (the panel path: dequantised weights, f32 GEMM),
 *          as GFLOP/s and a fraction of the sgemm peak, and against F32;
 *        - 32 active positions: a forward over 32 positions with their
 *          logits, the products of a cached-decoding step (the few-row
 *          integer kernels for the block formats), as the weight bytes read
 *          per second and a fraction of the measured bandwidth;
 *   3. the kernel choice of every block format: one product with a
 *      896 x 4864 weight (ffn_down's shape) for M = 8 .. 32 activation rows
 *      by the few-row integer kernels and by dequantised panels + f32 GEMM
 *      (sd_qgemm_force_few_max(0)), 1 thread, CPU time; the ratio is what
 *      sd_qgemm_few_max's per-type limit rests on.
 * Times are the best of BENCH_REPS (default 2) runs, by wall time and by
 * process CPU time ("cpu"; on a shared machine the robust one for 1
 * thread); "vs F32" compares wall with wall, "cpu" CPU time with CPU time.
 *
 *   BENCH_QUICK=1   1 thread, one repetition
 *   BENCH_THREADS=1 or 2   only that thread count
 *
 * Run through `make bench`. Prints a table; never fails on slowness.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "core/numfmt.h"
#include "core/quant.h"
#include "core/arena.h"
#include "nn/ops.h"
#include "nn/qgemm.h"
#include "nn/transformer.h"
#include "qwen05b.h"

typedef struct {
    double wall, cpu;
} timing;

static timing time_step(const sd_weights *w, sd_pool *pool, int64_t L, int reps, const float *embd, float *logits,
                        int32_t *rows) {
    for (int64_t i = 0; i < L; i++) rows[i] = (int32_t)i;
    sd_arena a;
    timing best = {1e30, 1e30};
    if (sd_arena_init(&a, sd_forward_scratch_bytes(&w->hp, L, L, pool ? sd_pool_threads(pool) : 1), 0)) return best;
    sd_forward_opts o = {0, pool, NULL, NULL};
    sd_error err = {0};
    for (int r = 0; r < reps; r++) {
        double t0 = now(), c0 = cpu_now();
        if (sd_forward(w, embd, L, rows, L, logits, NULL, &o, &a, &err)) {
            fprintf(stderr, "forward failed: %s\n", err.msg);
            exit(1);
        }
        double t = now() - t0, c = cpu_now() - c0;
        if (t < best.wall) best.wall = t;
        if (c < best.cpu) best.cpu = c;
    }
    sd_arena_destroy(&a);
    return best;
}

/* Tensors per storage type, e.g. "Q5_0 x96 Q8_0 x49 Q6_K x14 F32 x97". */
static void describe(const sd_weights *w, char *buf, size_t n) {
    const sd_weight *all[24 * 12 + 3];
    int k = 0;
    all[k++] = &w->token_embd;
    all[k++] = &w->output;
    all[k++] = &w->output_norm;
    for (int i = 0; i < w->hp.n_layer; i++) {
        const sd_layer_weights *l = &w->layers[i];
        const sd_weight *t[12] = {&l->attn_norm, &l->wq, &l->wk, &l->wv, &l->bq, &l->bk,
                                  &l->bv, &l->wo, &l->ffn_norm, &l->w_gate, &l->w_up, &l->w_down};
        for (int j = 0; j < 12; j++) all[k++] = t[j];
    }
    uint32_t types[16];
    int counts[16], nt = 0;
    for (int i = 0; i < k; i++) {
        int j = 0;
        while (j < nt && types[j] != all[i]->type) j++;
        if (j == nt) types[nt] = all[i]->type, counts[nt++] = 0;
        counts[j]++;
    }
    size_t pos = 0;
    buf[0] = '\0';
    for (int j = 0; j < nt && pos < n; j++)
        pos += (size_t)snprintf(buf + pos, n - pos, "%s%s x%d", j ? " " : "", sd_ggml_type_name(types[j]), counts[j]);
}

/* 3. Few-row integer kernels against dequantised panels, per block format. */
static void kernel_choice(int reps) {
    static const uint32_t types[] = {SD_GGML_Q4_0, SD_GGML_Q4_1, SD_GGML_Q5_0, SD_GGML_Q5_1, SD_GGML_Q8_0,
                                     SD_GGML_Q2_K, SD_GGML_Q3_K, SD_GGML_Q4_K, SD_GGML_Q5_K, SD_GGML_Q6_K,
                                     SD_GGML_IQ4_NL, SD_GGML_IQ4_XS};
    const int64_t R = 896, C = 4864, Ms[4] = {8, 16, 24, 32};
    size_t pf = sd_panel_floats(C);
    float *w = sd_malloc(sizeof(float) * (size_t)(R * C)), *x = sd_malloc(sizeof(float) * (size_t)(32 * C));
    float *out = sd_malloc(sizeof(float) * (size_t)(32 * R)), *panel = sd_malloc(sizeof(float) * pf);
    void *q = sd_malloc(sd_ggml_row_size(SD_GGML_Q8_0, C) * (size_t)R); /* the largest block format row */
    for (int64_t i = 0; i < R * C; i++) w[i] = bench_frand(0.05f);
    for (int64_t i = 0; i < 32 * C; i++) x[i] = bench_frand(1.0f);
    printf("\nfew-row kernels / panels, weight %lld x %lld, 1 thread, CPU ms per product (best of %d):\n",
           (long long)R, (long long)C, 2 * reps + 1);
    printf("%-7s", "type");
    for (int k = 0; k < 4; k++) printf("   M=%-2lld ms  ratio", (long long)Ms[k]);
    printf("   limit\n");
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        size_t row = sd_ggml_row_size(types[t], C);
        for (int64_t r = 0; r < R; r++) sd_quant_quantize(types[t], w + r * C, (char *)q + (size_t)r * row, C);
        printf("%-7s", sd_ggml_type_name(types[t]));
        for (int k = 0; k < 4; k++) {
            double best[2] = {1e30, 1e30};
            for (int rep = 0; rep < 2 * (2 * reps + 1); rep++) {
                int panels = rep & 1;
                sd_qgemm_force_few_max(panels ? 0 : -1);
                double c0 = cpu_now();
                sd_matmul_w(out, R, 0.0f, x, Ms[k], types[t], q, R, C, panel, pf, NULL);
                double c = cpu_now() - c0;
                if (c < best[panels]) best[panels] = c;
            }
            printf("   %7.2f %6.2f", 1e3 * best[0], best[0] / best[1]);
        }
        sd_qgemm_force_few_max(-1);
        printf("   %5lld\n", (long long)sd_qgemm_few_max(types[t]));
    }
    sd_free(w);
    sd_free(x);
    sd_free(out);
    sd_free(panel);
    sd_free(q);
}

int main(void) {
    int quick = getenv("BENCH_QUICK") && atoi(getenv("BENCH_QUICK")) > 0;
    int reps = quick ? 1 : getenv("BENCH_REPS") ? atoi(getenv("BENCH_REPS")) : 2;
    if (reps < 1) reps = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int threads_list[2] = {1, 2}, n_threads = quick ? 1 : 2;
    if (getenv("BENCH_THREADS")) {
        threads_list[0] = atoi(getenv("BENCH_THREADS")) == 1 ? 1 : 2;
        n_threads = 1;
    }
    printf("bench_quant%s: OpenBLAS core %s, ops SIMD %s, integer kernels %s\n", quick ? " (quick)" : "",
           sd_blas_corename(), sd_ops_simd() ? "AVX2/FMA/F16C" : "scalar", sd_qgemm_isa_name(sd_qgemm_isa()));

    /* 1. peaks */
    double peak[3] = {0}, cpu_peak[3] = {0}, bw[3] = {0};
    const int64_t shapes[4][2] = {{896, 896}, {128, 896}, {4864, 896}, {896, 4864}}; /* N, K */
    sd_pool *pools[3] = {NULL, NULL, NULL};
    for (int ti = 0; ti < n_threads; ti++) {
        int t = threads_list[ti];
        sd_error err = {0};
        if (t > 1 && sd_pool_create(t, &pools[t], &err)) {
            fprintf(stderr, "pool: %s\n", err.msg);
            return 1;
        }
        sd_blas_set_threads(t);
        for (int s = 0; s < 4; s++) {
            double cg, g = sgemm_gflops(256, shapes[s][0], shapes[s][1], quick ? 0.2 : 0.4, &cg);
            if (g > peak[t]) peak[t] = g;
            if (cg > cpu_peak[t]) cpu_peak[t] = cg;
        }
        bw[t] = bench_read_bandwidth((size_t)512 << 20, quick ? 2 : 4, pools[t]);
        printf("%d thread%s: sgemm peak %.1f GFLOP/s (by CPU time %.1f) on the step's shapes at M = 256; "
               "memory read bandwidth %.1f GB/s\n", t, t > 1 ? "s" : " ", peak[t], cpu_peak[t], bw[t]);
    }

    /* 2. steps */
    const char *ftypes[5] = {"f32", "bf16", "q8_0", "q4_k_m", "q6_k"};
    int64_t d = 896, V = 151936, Ls[2] = {256, 32};
    float *embd = sd_malloc(sizeof(float) * (size_t)(256 * d));
    int32_t *rows = sd_malloc(sizeof(int32_t) * 256);
    float *logits = sd_malloc(sizeof(float) * (size_t)(256 * V));
    for (int64_t i = 0; i < 256 * d; i++) embd[i] = bench_frand(1.0f);
    printf("\nstep = forward over L positions with the logits of all L; 32 positions: GB/s of weight bytes read\n");
    printf("%-7s %-4s %-4s %9s %9s %9s %8s %8s %8s %9s %10s\n", "file", "thr", "L", "s/step", "cpu s", "GFLOP/s",
           "of peak", "vs F32", "cpu", "GB/s", "of bandw.");
    timing f32[3][2];
    memset(f32, 0, sizeof f32);
    for (int fi = 0; fi < 5; fi++) {
        bench_model bm;
        double tb = now();
        bench_model_build_ftype(&bm, ftypes[fi]);
        char desc[256];
        describe(&bm.w, desc, sizeof desc);
        printf("%s: %.3f GB of weights (%s), made in %.1f s\n", ftypes[fi], bm.bytes / 1e9, desc, now() - tb);
        for (int ti = 0; ti < n_threads; ti++) {
            int t = threads_list[ti];
            sd_blas_set_threads(t);
            for (int li = 0; li < 2; li++) {
                int64_t L = Ls[li];
                time_step(&bm.w, pools[t], L, 1, embd, logits, rows); /* warm the pages */
                timing s = time_step(&bm.w, pools[t], L, reps, embd, logits, rows);
                double fl = sd_forward_flops(&bm.w, L, L), gfs = fl / s.wall / 1e9;
                if (fi == 0) f32[t][li] = s;
                double vs = f32[t][li].wall > 0 ? s.wall / f32[t][li].wall : 0;
                double vc = f32[t][li].cpu > 0 ? s.cpu / f32[t][li].cpu : 0;
                printf("%-7s %-4d %-4lld %9.3f %9.3f %9.1f %7.0f%% %7.2fx %7.2fx", ftypes[fi], t, (long long)L, s.wall,
                       s.cpu, gfs, 100.0 * gfs / peak[t], vs, vc);
                if (L == 32) {
                    double gb = (double)bm.bytes / s.wall / 1e9;
                    printf(" %9.2f %9.0f%%", gb, 100.0 * gb / bw[t]);
                }
                printf("\n");
            }
        }
        bench_model_release(&bm);
    }
    for (int t = 0; t < 3; t++) sd_pool_free(pools[t]);
    kernel_choice(quick ? 1 : reps);
    sd_free(embd);
    sd_free(rows);
    sd_free(logits);
    return 0;
}
