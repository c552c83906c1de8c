/* bench_train.c -- training throughput: tokens/s and the fraction of the
 * sgemm peak for one MDLM step (forward + backward + AdamW) with soft-masking
 * off and on (two-pass), and the SM/plain cost ratio. Run by `make bench`.
 *
 * The peak is measured in the same run: sd_sgemm on a square 1024 problem
 * (best of several). Useful FLOPs of a step count the matrix products only
 * (sd_tmodel_forward_flops, the count the trainer's compute column uses):
 *   forward  2 N P_blocks + 4 B L^2 d n_layer (QK^T, PV) + 2 R d V (head),
 *   backward twice the forward (input and weight gradients),
 * with N = B L rows, R = masked rows; SM adds one forward (pass 1).
 *
 * usage: bench_train [d n_layer n_head n_head_kv n_ff n_vocab B L steps]
 * default shape: the bundled model's (models/train-bundled.sh): d 160, 6
 * layers, 5/5 heads, F 512, V 50258 (GPT-2 + mask), B 16, L 128;
 * `bench_train 256 4 4 4 704 50258 8 128` is the wider shape of earlier
 * figures. BENCH_QUICK=1 runs fewer steps; BENCH_THREADS=n sets the
 * threads (default: all CPUs). Every figure is also given in process CPU
 * time (clock.h; the peak too), which holds on a shared machine where
 * wall time does not -- with one thread it is the single-core figure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "core/rng.h"
#include "nn/blas.h"
#include "train/objective.h"
#include "train/optim.h"
#include "clock.h"

/* The best sgemm rate by wall time; *cpu_rate (kept if higher) by CPU time. */
static double sgemm_peak(double *cpu_rate) {
    enum { n = 1024 };
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    double best = 1e9, best_cpu = 1e9;
    for (int r = 0; r < 6; r++) {
        double t0 = now(), c0 = cpu_now();
        sd_sgemm(0, 1, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = now() - t0, dc = cpu_now() - c0;
        if (dt < best) best = dt;
        if (dc > 0 && dc < best_cpu) best_cpu = dc;
    }
    free(a), free(b), free(c);
    double rc = 2.0 * n * n * n / best_cpu;
    if (rc > *cpu_rate) *cpu_rate = rc;
    return 2.0 * n * n * n / best;
}

int main(int argc, char **argv) {
    int64_t a[9] = {160, 6, 5, 5, 512, 50258, 16, 128, 0};
    for (int i = 1; i < argc && i <= 9; i++) a[i - 1] = atoll(argv[i]);
    int quick = getenv("BENCH_QUICK") != NULL;
    int steps = a[8] > 0 ? (int)a[8] : quick ? 3 : 8;
    sd_hparams hp = {0};
    hp.arch = SD_ARCH_LLADA;
    hp.n_embd = (int32_t)a[0], hp.n_layer = (int32_t)a[1], hp.n_head = (int32_t)a[2];
    hp.n_head_kv = (int32_t)a[3], hp.n_ff = (int32_t)a[4], hp.n_vocab = (int32_t)a[5];
    hp.norm_eps = 1e-5f, hp.rope_base = 10000.0f, hp.mask_id = hp.n_vocab - 1, hp.rope_permuted = 1;
    int64_t B = a[6], L = a[7], N = B * L;
    if (getenv("BENCH_THREADS") && atoi(getenv("BENCH_THREADS")) > 0) sd_blas_set_threads(atoi(getenv("BENCH_THREADS")));
    double load[3] = {0, 0, 0}, peak_cpu = 0;
    getloadavg(load, 3);
    double peak = sgemm_peak(&peak_cpu);
    printf("sgemm peak (1024^3, %d threads, core %s): %.1f GFLOP/s wall, %.1f by CPU time; load average %.2f\n",
           sd_blas_get_threads(), sd_blas_corename(), peak * 1e-9, peak_cpu * 1e-9, load[0]);

    sd_tmodel *m = NULL;
    sd_error err = {0};
    if (sd_tmodel_create(&hp, B, L, 0, &m, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    sd_pool *pool = NULL;
    if (sd_pool_create(sd_blas_get_threads(), &pool, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    m->pool = pool;
    sd_rng rng;
    sd_rng_init(&rng, 1, 0);
    sd_tmodel_init_random(m, &rng, 0.02f, 1e-6, 6.66, -0.75);
    sd_objective_ws ws;
    sd_objective_opts oo;
    sd_objective_defaults(&oo);
    sd_adamw_opts ao;
    sd_adamw_defaults(&ao);
    sd_adamw opt;
    if (sd_objective_ws_init(&ws, m, 3, &err) || sd_adamw_init(&opt, &ao, m->params, m->n_params, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    opt.pool = pool;
    int64_t d = hp.n_embd, hd = d / hp.n_head, kd = hp.n_head_kv * hd, F = hp.n_ff, V = hp.n_vocab;
    double p_blocks = (double)hp.n_layer * (2.0 * d * d + 2.0 * d * kd + 3.0 * d * F);
    printf("model: d %lld, %d layers, heads %d/%d, F %lld, V %lld: %.2fM parameters (%.2fM in blocks); "
           "batch %lld x %lld\n",
           (long long)d, hp.n_layer, hp.n_head, hp.n_head_kv, (long long)F, (long long)V,
           m->n_params * 1e-6, p_blocks * 1e-6, (long long)B, (long long)L);

    int32_t *x0 = malloc(sizeof(int32_t) * (size_t)N);
    for (int64_t i = 0; i < N; i++) x0[i] = (int32_t)sd_rng_below(&rng, (uint64_t)V - 1);
    float t[1024];
    /* The machine is shared: each figure is the best of its repetitions
     * (the least disturbed run), and the peak is re-measured around the
     * steps, keeping its best, so both sides of the ratio see the same
     * conditions as closely as possible. */
    double time_plain = 0, cpu_plain = 0;
    for (int sm = 0; sm < 2; sm++) {
        double best = 1e30, flops_best = 0, best_cpu = 1e30, flops_cpu = 0;
        for (int s = -1; s < steps; s++) { /* step -1 warms up */
            sd_mdlm_sample(&rng, &oo, B, L, t, ws.masked);
            for (int64_t b = 0; b < B; b++) t[b] = 0.5f; /* fixed work per step: about half masked */
            double t0 = now(), c0 = cpu_now(), loss;
            int64_t R;
            int32_t rc = sd_mdlm_loss_grad(m, &ws, &oo, x0, B, L, ws.masked, t, sm, &loss, &R);
            if (!rc) rc = sd_adamw_step(&opt, m->params, m->grads, m->tensors, m->n_tensors, NULL, &err);
            if (rc) {
                fprintf(stderr, "bench_train: step failed: %s\n", m->err.msg[0] ? m->err.msg : err.msg);
                return 1;
            }
            double dt = now() - t0, dc = cpu_now() - c0;
            if (s < 0) continue;
            double fwd = sd_tmodel_forward_flops(&hp, B, L, R);
            if (dt < best) {
                best = dt;
                flops_best = 3.0 * fwd + (sm ? fwd : 0.0);
            }
            if (dc < best_cpu) {
                best_cpu = dc;
                flops_cpu = 3.0 * fwd + (sm ? fwd : 0.0);
            }
        }
        double p2 = sgemm_peak(&peak_cpu);
        if (p2 > peak) peak = p2;
        double tps = N / best, rate = flops_best / best;
        if (!sm) time_plain = best;
        printf("SM %-3s: %.3f s/step (best of %d), %.0f tokens/s, %.1f GFLOP/s useful = %.0f%% of sgemm peak "
               "(%.1f GFLOP/s)%s",
               sm ? "on" : "off", best, steps, tps, rate * 1e-9, 100.0 * rate / peak, peak * 1e-9,
               sm ? "" : "\n");
        if (sm) printf(", %.2fx the plain step\n", best / time_plain);
        if (!sm) cpu_plain = best_cpu;
        printf("        CPU time: %.3f s/step, %.1f GFLOP/s = %.0f%% of the CPU-time peak (%.1f)%s", best_cpu,
               flops_cpu / best_cpu * 1e-9, 100.0 * flops_cpu / best_cpu / peak_cpu, peak_cpu * 1e-9, sm ? "" : "\n");
        if (sm) printf(", %.2fx the plain step\n", best_cpu / cpu_plain);
    }
    free(x0);
    sd_adamw_free(&opt);
    sd_objective_ws_free(&ws);
    sd_tmodel_free(m);
    sd_pool_free(pool);
    return 0;
}
