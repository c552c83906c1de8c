/* model_step.c -- load a GGUF model by mmap and time denoising steps on
 * it; report the memory against the file and the documented activations
 * (docs/PERFORMANCE.md, "Memory"), and the memory plan for other canvas
 * lengths. A benchmark tool, not installed.
 *
 *   model_step FILE [--threads N] [--positions L[,L...]] [--reps R] [--plan L[,L...]]
 *
 * A step is one forward over a canvas of L positions (every position a
 * mask id, as the first step of a generation) with the logits of every
 * position. Prints per L the best wall time and the process CPU time; then
 * the peak resident memory (VmHWM) against file size + 20% + activations,
 * where activations = the forward's arena (sd_forward_scratch_bytes) + the
 * logits [L, vocab] + the input canvas [L, d] of the largest L run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "benchutil.h"
#include "nn/model.h"
#include "nn/transformer.h"
#include "smdiff/smdiff.h"

static int parse_list(const char *s, int64_t *out, int cap) {
    int n = 0;
    while (*s && n < cap) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v <= 0) return -1;
        out[n++] = v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int threads = 0, reps = 1;
    int64_t Ls[8] = {256}, plan[8] = {512, 2048};
    int nL = 1, nP = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--positions") && i + 1 < argc) nL = parse_list(argv[++i], Ls, 8);
        else if (!strcmp(argv[i], "--plan") && i + 1 < argc) nP = parse_list(argv[++i], plan, 8);
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else nL = -1;
    }
    if (!path || nL <= 0 || nP < 0 || reps < 1) {
        fprintf(stderr, "usage: model_step FILE [--threads N] [--positions L,...] [--reps R] [--plan L,...]\n");
        return 2;
    }
    struct stat st;
    if (stat(path, &st)) {
        perror(path);
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    double t0 = now();
    smdiff_model *m;
    if (smdiff_model_create(&m) || smdiff_model_set_int(m, SMDIFF_MODEL_THREADS, threads) ||
        smdiff_model_load_file(m, path)) {
        fprintf(stderr, "model_step: %s\n", smdiff_last_error());
        return 1;
    }
    double load_s = now() - t0;
    long long rss_loaded = proc_status_kb("VmRSS:") * 1024;
    int64_t V, d, mask;
    smdiff_model_property(m, SMDIFF_PROP_VOCAB_SIZE, &V);
    smdiff_model_property(m, SMDIFF_PROP_EMBED_DIM, &d);
    smdiff_model_property(m, SMDIFF_PROP_MASK_ID, &mask);
    printf("%s: %.3f GB, loaded by mmap in %.1f s (resident after loading %.2f GB), %d threads\n", path,
           (double)st.st_size / 1e9, load_s, rss_loaded / 1e9, m->threads);
    int64_t maxL = 0;
    for (int i = 0; i < nL; i++) maxL = Ls[i] > maxL ? Ls[i] : maxL;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)maxL), *rows = malloc(sizeof(int32_t) * (size_t)maxL);
    float *logits = malloc(sizeof(float) * (size_t)(maxL * V));
    if (!ids || !rows || !logits) {
        fprintf(stderr, "model_step: out of memory for %lld logits\n", (long long)(maxL * V));
        return 1;
    }
    for (int64_t i = 0; i < maxL; i++) ids[i] = (int32_t)(mask >= 0 ? mask : 0), rows[i] = (int32_t)i;
    reset_peak_rss();
    printf("%-6s %10s %10s %10s\n", "L", "s/step", "cpu s", "GFLOP/s");
    for (int i = 0; i < nL; i++) {
        double best = 1e30, best_cpu = 1e30;
        for (int r = 0; r < reps; r++) {
            double w0 = now(), c0 = cpu_now();
            if (smdiff_model_logits(m, ids, (size_t)Ls[i], rows, (size_t)Ls[i], logits, (size_t)(Ls[i] * V))) {
                fprintf(stderr, "model_step: %s\n", smdiff_last_error());
                return 1;
            }
            double w = now() - w0, c = cpu_now() - c0;
            if (w < best) best = w, best_cpu = c;
        }
        double fl = sd_forward_flops(&m->w, Ls[i], Ls[i]);
        printf("%-6lld %10.2f %10.2f %10.1f\n", (long long)Ls[i], best, best_cpu, fl / best / 1e9);
    }
    long long hwm = proc_status_kb("VmHWM:") * 1024;
    size_t act = sd_forward_scratch_bytes(&m->w.hp, maxL, maxL) + sizeof(float) * (size_t)(maxL * V) +
                 sizeof(float) * (size_t)(maxL * d);
    double limit = 1.2 * (double)st.st_size + (double)act;
    printf("peak resident %.3f GB; file %.3f GB + 20%% + activations %.3f GB (arena %.3f, logits %.3f, canvas %.3f) "
           "= %.3f GB: %s\n",
           hwm / 1e9, (double)st.st_size / 1e9, act / 1e9, sd_forward_scratch_bytes(&m->w.hp, maxL, maxL) / 1e9,
           sizeof(float) * (double)(maxL * V) / 1e9, sizeof(float) * (double)(maxL * d) / 1e9, limit / 1e9,
           (double)hwm <= limit ? "within" : "ABOVE");
    printf("memory plan (weights mapped + activations of a step with every position's logits):\n");
    printf("%-6s %10s %10s %10s %10s %10s\n", "L", "arena GB", "logits GB", "canvas GB", "total GB", "+weights");
    for (int i = 0; i < nP; i++) {
        int64_t L = plan[i];
        double ar = sd_forward_scratch_bytes(&m->w.hp, L, L) / 1e9, lg = 4.0 * (double)(L * V) / 1e9,
               cv = 4.0 * (double)(L * d) / 1e9;
        printf("%-6lld %10.3f %10.3f %10.3f %10.3f %10.3f\n", (long long)L, ar, lg, cv, ar + lg + cv,
               ar + lg + cv + (double)st.st_size / 1e9);
    }
    free(ids);
    free(rows);
    free(logits);
    smdiff_model_free(m);
    return 0;
}
