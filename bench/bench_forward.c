/* bench_forward.c -- the transformer forward pass against the machine's
 * sgemm peak, on a Qwen2.5-0.5B-shaped dream model (random weights made in
 * memory, F32 and F16).
 *
 * One run measures, in the same process and environment:
 *   1. sgemm GFLOP/s on the shapes of one step (M = L; N, K from the model)
 *      with 1 and 2 BLAS threads; the best shape is the "peak";
 *   2. seconds per forward for L = 256 and 1024, logits for 1, 64 and all
 *      rows, 1 and 2 threads, F32 and F16 weights; model FLOPs as
 *      docs/METHOD.md section 4 counts them and their rate as a fraction of the
 *      peak at the same thread count;
 *   3. peak resident memory during the L = 256 forwards against the bytes
 *      of the weights.
 * Each rate is given by wall time and by process CPU time ("cpu"): on a
 * shared machine the second is the robust one for 1 thread (with 2, it
 * also counts OpenBLAS's spin-waiting). "of peak" compares wall with wall,
 * "cpu peak" CPU with CPU, at the same thread count.
 *
 *   BENCH_QUICK=1   reduced set (L = 256, 2 threads, 64 rows): under a minute
 *   BENCH_THREADS=1 or 2   only that thread count (e.g. 1 on a machine whose
 *                   second core is busy: the 2-thread figures mean nothing there)
 *
 * Run through `make bench`. Prints a table; never fails on slowness.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/pool.h"
#include "nn/blas.h"
#include "nn/ops.h"
#include "nn/transformer.h"

#include "benchutil.h"
#include "qwen05b.h"

/* ---------------------------------------------------------- forward */

static double time_forward(const sd_weights *w, sd_pool *pool, int64_t L, int64_t n_rows, int reps,
                           float *embd, float *logits, int32_t *rows, double *cpu_s) {
    for (int64_t i = 0; i < n_rows; i++) rows[i] = (int32_t)(n_rows == 1 ? L / 2 : i * (L / n_rows));
    sd_arena a;
    if (sd_arena_init(&a, sd_forward_scratch_bytes(&w->hp, L, n_rows, pool ? sd_pool_threads(pool) : 1), 0)) return -1;
    sd_forward_opts o = {0, pool, NULL, NULL};
    sd_error err = {0};
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now(), c0 = cpu_now();
        if (sd_forward(w, embd, L, rows, n_rows, logits, NULL, &o, &a, &err)) {
            fprintf(stderr, "forward failed: %s\n", err.msg);
            exit(1);
        }
        double t = now() - t0, c = cpu_now() - c0;
        if (t < best) {
            best = t;
            if (cpu_s) *cpu_s = c;
        }
    }
    sd_arena_destroy(&a);
    return best;
}

int main(void) {
    int quick = getenv("BENCH_QUICK") && atoi(getenv("BENCH_QUICK")) > 0;
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress visible when piped to a file */
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("bench_forward%s: OpenBLAS core %s (OPENBLAS_CORETYPE=%s), ops SIMD %s\n", quick ? " (quick)" : "",
           sd_blas_corename(), ct ? ct : "unset", sd_ops_simd() ? "AVX2/FMA/F16C" : "scalar");

    int threads_list[2] = {1, 2}, n_threads = quick ? 1 : 2;
    if (quick) threads_list[0] = 2;
    /* BENCH_THREADS=1 or 2: only that thread count */
    if (getenv("BENCH_THREADS")) {
        int bt = atoi(getenv("BENCH_THREADS"));
        threads_list[0] = bt == 1 ? 1 : 2;
        n_threads = 1;
    }
    int64_t Ls[2] = {256, 1024}, nL = quick ? 1 : 2;

    /* 1. sgemm peak on the step's shapes */
    double peak[3] = {0, 0, 0}, cpu_peak[3] = {0, 0, 0};
    const int64_t shapes[4][2] = {{896, 896}, {128, 896}, {4864, 896}, {896, 4864}}; /* N, K */
    printf("\nsgemm C[M,N] = A[M,K] @ B[N,K]^T, GFLOP/s by wall and by CPU time\n%-6s %-6s %-6s %-6s %10s %10s\n",
           "thr", "M", "N", "K", "GFLOP/s", "cpu GF/s");
    for (int ti = 0; ti < n_threads; ti++) {
        int t = threads_list[ti];
        sd_blas_set_threads(t);
        for (int li = 0; li < nL; li++)
            for (int s = 0; s < 4; s++) {
                double cg, g = sgemm_gflops(Ls[li], shapes[s][0], shapes[s][1], quick ? 0.2 : 0.4, &cg);
                printf("%-6d %-6lld %-6lld %-6lld %10.1f %10.1f\n", t, (long long)Ls[li], (long long)shapes[s][0],
                       (long long)shapes[s][1], g, cg);
                if (g > peak[t]) peak[t] = g;
                if (cg > cpu_peak[t]) cpu_peak[t] = cg;
            }
        printf("peak with %d thread%s: %.1f GFLOP/s (by CPU time %.1f)\n", t, t > 1 ? "s" : "", peak[t], cpu_peak[t]);
    }

    /* 2. forward */
    int64_t V = 151936, d = 896, maxL = Ls[nL - 1];
    float *embd = sd_malloc(sizeof(float) * (size_t)(maxL * d));
    int32_t *rows = sd_malloc(sizeof(int32_t) * (size_t)maxL);
    for (int64_t i = 0; i < maxL * d; i++) embd[i] = bench_frand(1.0f);
    printf("\nforward, Qwen2.5-0.5B-shaped dream (24 x d 896, 14/2 heads, ffn 4864, vocab 151936)\n");
    printf("%-5s %-4s %-5s %-6s %9s %9s %9s %9s %9s %9s\n", "type", "thr", "L", "rows", "s/fwd", "GFLOP", "GFLOP/s",
           "of peak", "cpu s", "cpu peak");
    double f32_time[2][2][3] = {{{0}}}, f32_cpu[2][2][3] = {{{0}}}; /* [threads][L][rows], for F16 vs F32 */
    uint32_t types[2] = {SD_GGML_F32, SD_GGML_F16};
    for (int ty = 0; ty < 2; ty++) {
        bench_model bm;
        double tb = now();
        bench_model_build(&bm, types[ty]);
        int64_t total, ne;
        sd_weights_n_params(&bm.w, &total, &ne);
        printf("%s weights: %.1f M parameters (%.1f M non-embedding), %.2f GB, made in %.1f s\n",
               ty ? "F16" : "F32", total / 1e6, ne / 1e6, bm.bytes / 1e9, now() - tb);
        long long hwm_256 = 0;
        for (int ti = 0; ti < n_threads; ti++) {
            int t = threads_list[ti];
            sd_blas_set_threads(t);
            sd_pool *pool = NULL;
            sd_error err = {0};
            if (t > 1 && sd_pool_create(t, &pool, &err)) {
                fprintf(stderr, "pool: %s\n", err.msg);
                return 1;
            }
            for (int li = 0; li < nL; li++) {
                int64_t L = Ls[li];
                int64_t rows_list[3] = {1, 64, L};
                int r0 = quick ? 1 : 0, r1 = quick ? 2 : 3;
                /* per canvas length, so pages touched by a longer canvas
                 * do not count in the L = 256 resident-memory figure */
                float *logits = sd_malloc(sizeof(float) * (size_t)(L * V));
                if (L == 256) reset_peak_rss();
                for (int ri = r0; ri < r1; ri++) {
                    int64_t nr = rows_list[ri];
                    int reps = L <= 256 && !quick ? 2 : 1;
                    /* L = 256 takes the best of 2 (the first warms caches and
                     * the arena's pages); L = 1024 runs once to keep the
                     * whole benchmark within a few minutes. */
                    if (quick) time_forward(&bm.w, pool, L, nr, 1, embd, logits, rows, NULL); /* warm */
                    double cpu = 0, s = time_forward(&bm.w, pool, L, nr, reps, embd, logits, rows, &cpu);
                    double fl = sd_forward_flops(&bm.w, L, nr);
                    printf("%-5s %-4d %-5lld %-6lld %9.3f %9.1f %9.1f %8.0f%% %9.3f %8.0f%%\n", ty ? "F16" : "F32", t,
                           (long long)L, (long long)nr, s, fl / 1e9, fl / s / 1e9, 100.0 * fl / s / 1e9 / peak[t],
                           cpu, 100.0 * fl / cpu / 1e9 / cpu_peak[t]);
                    if (ty == 0) {
                        f32_time[ti][li][ri] = s;
                        f32_cpu[ti][li][ri] = cpu;
                    } else if (f32_time[ti][li][ri] > 0) {
                        printf("      F16 / F32: wall time %.2f, cpu time %.2f\n", s / f32_time[ti][li][ri],
                               cpu / f32_cpu[ti][li][ri]);
                    }
                }
                if (L == 256) {
                    long long h = proc_status_kb("VmHWM:");
                    if (h > hwm_256) hwm_256 = h;
                }
                sd_free(logits);
            }
            sd_pool_free(pool);
        }
        printf("%s peak RSS during the L = 256 forwards: %.2f GB = weights %.2f GB x %.3f "
               "(includes the logits of the largest row count, the canvas, the arena and OpenBLAS's buffers)\n",
               ty ? "F16" : "F32", hwm_256 * 1024 / 1e9, bm.bytes / 1e9, hwm_256 * 1024.0 / (double)bm.bytes);
        bench_model_release(&bm);
    }
    sd_free(embd);
    sd_free(rows);
    return 0;
}
