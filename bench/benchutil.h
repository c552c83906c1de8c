/* benchutil.h -- what the benchmarks share besides clock.h's clocks:
 * resident-memory marks, and the machine's own peaks measured in
 * the same run (sgemm GFLOP/s, memory read bandwidth), against which the
 * benchmarks state their results as fractions. Header-only: each
 * benchmark is its own program. */
#ifndef SMDIFF_BENCH_BENCHUTIL_H
#define SMDIFF_BENCH_BENCHUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "core/alloc.h"
#include "core/pool.h"
#include "nn/blas.h"

/* VmHWM / VmRSS of this process in bytes (Linux). */
static inline long long proc_status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n)) v = atoll(line + n + 1);
    fclose(f);
    return v;
}

/* Reset the peak-RSS mark to the current RSS (Linux >= 4.0). */
static inline void reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}


/* ----------------------------------------------------------- sgemm */

/* GFLOP/s of C = A @ B^T by wall time; *cpu_gflops by process CPU time. */
static inline double sgemm_gflops(int64_t M, int64_t N, int64_t K, double min_s, double *cpu_gflops) {
    float *A = sd_malloc(sizeof(float) * (size_t)(M * K)), *B = sd_malloc(sizeof(float) * (size_t)(N * K));
    float *C = sd_malloc(sizeof(float) * (size_t)(M * N));
    for (int64_t i = 0; i < M * K; i++) A[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    for (int64_t i = 0; i < N * K; i++) B[i] = (float)((i * 40503u) % 1000) / 500.0f - 1.0f;
    /* C = A @ B^T, as the forward pass multiplies by weights */
    sd_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
    int reps = 0;
    double t0 = now(), c0 = cpu_now(), t;
    do {
        sd_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
        reps++;
        t = now() - t0;
    } while (t < min_s);
    *cpu_gflops = 2.0 * (double)M * (double)N * (double)K * reps / (cpu_now() - c0) / 1e9;
    sd_free(A);
    sd_free(B);
    sd_free(C);
    return 2.0 * (double)M * (double)N * (double)K * reps / t / 1e9;
}

/* ------------------------------------------------------ memory bandwidth */

/* Sums of 32 floats at a time from 4 independent accumulators: streams
 * the buffer at the rate the memory delivers it (compiled for AVX2 where
 * the compiler can; plain C otherwise). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2")))
#endif
static inline float bench_sum_range(const float *p, size_t n) {
    float a[32] = {0};
    for (size_t i = 0; i + 32 <= n; i += 32)
        for (int k = 0; k < 32; k++) a[k] += p[i + k];
    float s = 0;
    for (int k = 0; k < 32; k++) s += a[k];
    return s;
}

typedef struct {
    const float *buf;
    size_t n;
    float sums[64];
} bench_bw_job;

static inline void bench_bw_range(void *ctx, int64_t b, int64_t e, int t) {
    bench_bw_job *j = ctx;
    size_t per = j->n / 64;
    for (int64_t c = b; c < e; c++) j->sums[c] = bench_sum_range(j->buf + (size_t)c * per, per);
    (void)t;
}

/* Read bandwidth in GB/s: the best of `reps` passes over a buffer of
 * `bytes` (much larger than the caches), split over pool's threads (NULL:
 * one thread). */
static inline double bench_read_bandwidth(size_t bytes, int reps, sd_pool *pool) {
    size_t n = bytes / sizeof(float);
    float *buf = sd_malloc(n * sizeof(float));
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++) buf[i] = (float)(i & 1023);
    bench_bw_job j = {buf, n, {0}};
    double best = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (pool)
            sd_pool_run(pool, bench_bw_range, &j, 64);
        else
            bench_bw_range(&j, 0, 64, 0);
        double t = now() - t0, gbs = (double)(n / 64 * 64) * sizeof(float) / t / 1e9;
        if (gbs > best) best = gbs;
    }
    volatile float sink = j.sums[0];
    (void)sink;
    sd_free(buf);
    return best;
}

#endif
