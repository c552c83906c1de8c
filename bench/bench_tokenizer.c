/* bench_tokenizer.c -- tokenization throughput (MB/s, one thread) on the
 * Gutenberg corpus with the Qwen2 (Dream) vocabulary, and tokenizer load
 * times. Run by `make bench SHARED_DATA=DIR` (the corpus is DIR/corpora/
 * gutenberg, the 68 raw Project Gutenberg novels of docs/RESULTS.md; without
 * it only the load times are measured); figures go to docs/PERFORMANCE.md.
 *
 * Every file is tokenized in one call (as a caller would), the whole
 * corpus 3 times; the best pass is reported, with the ids checked to
 * decode back to the input bytes so the timing covers a correct run. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/gguf.h"
#include "text/tokenizer.h"
#include "clock.h"

/* The CPU model and the load average: the figures depend on both (the
 * machines are shared). */
static void print_machine(void) {
    char line[512], model[256] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) snprintf(model, sizeof model, "%s", c + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    if (f) fclose(f);
    double la = -1;
    f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &la) != 1) la = -1;
        fclose(f);
    }
    printf("machine: %s, load average %.2f\n", model, la);
}

/* Write the tokenizer as GGUF metadata and time loading it back (best of
 * 5): the path a model file takes. */
static void bench_gguf_load(const sd_tokenizer *t) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/smdiff_bench_qwen2_%d.gguf", (int)getpid());
    sd_error err = {0};
    sd_gguf_writer *w = NULL;
    if (sd_gguf_writer_create(&w, &err) || sd_tokenizer_to_gguf(t, w, &err) || sd_gguf_write(w, path, &err)) {
        printf("tokenizer: GGUF write failed: %s\n", err.msg);
        sd_gguf_writer_free(w);
        return;
    }
    sd_gguf_writer_free(w);
    double best_wall = 1e30, best_cpu = 1e30, best_open = 1e30;
    for (int i = 0; i < 5; i++) {
        sd_tokenizer *u = NULL;
        double a = now(), c = cpu_now();
        int32_t rc = sd_tokenizer_load(path, &u, &err);
        double wall = now() - a, cpu = cpu_now() - c;
        sd_tokenizer_free(u);
        if (rc) { printf("tokenizer: GGUF load failed: %s\n", err.msg); break; }
        if (wall < best_wall) best_wall = wall;
        if (cpu < best_cpu) best_cpu = cpu;
        sd_gguf *g = NULL;
        c = cpu_now();
        if (sd_gguf_open(path, 1, &g, &err) == 0) {
            double o = cpu_now() - c;
            if (o < best_open) best_open = o;
        }
        sd_gguf_close(g);
    }
    unlink(path);
    printf("tokenizer: GGUF load of the %d-token vocabulary: %.1f ms wall, %.1f ms CPU "
           "(of which sd_gguf_open %.1f ms CPU), best of 5\n",
           sd_tokenizer_n_vocab(t), best_wall * 1e3, best_cpu * 1e3, best_open * 1e3);
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long s = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)s + 1);
    *n = b ? fread(b, 1, (size_t)s, f) : 0;
    fclose(f);
    return b;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void) {
    const char *tokdir = "tests/data/tokenizers/dream-qwen2.5";
    const char *data = getenv("SMDIFF_SHARED_DATA");
    char corpus[2048];
    snprintf(corpus, sizeof corpus, "%s/corpora/gutenberg", data && *data ? data : "$SMDIFF_SHARED_DATA");
    sd_error err = {0};
    sd_tokenizer *t = NULL;
    double t0 = now();
    if (sd_tokenizer_from_hf_dir(tokdir, &t, &err)) {
        printf("bench_tokenizer: cannot load %s: %s\n", tokdir, err.msg);
        return 1;
    }
    double load_hf = now() - t0;
    print_machine();
    bench_gguf_load(t);
    printf("tokenizer: Qwen2 vocabulary (%d tokens, pre-tokenizer %s), HF files load %.1f ms\n",
           sd_tokenizer_n_vocab(t), sd_tokenizer_pre_name(t), load_hf * 1e3);

    DIR *d = opendir(corpus);
    if (!d) {
        printf("bench_tokenizer: throughput skipped: no corpus at %s (make bench SHARED_DATA=DIR)\n", corpus);
        sd_tokenizer_free(t);
        return 0;
    }
    char *names[1024];
    int nf = 0;
    struct dirent *de;
    while ((de = readdir(d)) && nf < 1024)
        if (strstr(de->d_name, ".txt")) names[nf++] = strdup(de->d_name);
    closedir(d);
    qsort(names, (size_t)nf, sizeof names[0], cmp_str);
    char **texts = malloc(sizeof(char *) * (size_t)nf);
    size_t *lens = malloc(sizeof(size_t) * (size_t)nf);
    size_t total = 0, max_len = 0;
    for (int i = 0; i < nf; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", corpus, names[i]);
        texts[i] = slurp(path, &lens[i]);
        total += lens[i];
        if (lens[i] > max_len) max_len = lens[i];
    }
    int32_t *ids = malloc(sizeof(int32_t) * (max_len + 1));
    char *back = malloc(max_len + 1);
    double best = 1e30, best_cpu = 1e30;
    size_t n_tokens = 0;
    int bad = 0;
    for (int pass = 0; pass < 3; pass++) {
        double a = now(), ac = cpu_now();
        n_tokens = 0;
        for (int i = 0; i < nf; i++) {
            size_t n = 0;
            if (sd_tokenizer_encode(t, texts[i], lens[i], 0, ids, max_len + 1, &n, &err)) {
                printf("bench_tokenizer: encode failed on %s: %s\n", names[i], err.msg);
                return 1;
            }
            n_tokens += n;
        }
        double el = now() - a, elc = cpu_now() - ac;
        if (el < best) best = el;
        if (elc < best_cpu) best_cpu = elc;
    }
    for (int i = 0; i < nf; i++) {  /* correctness of what was timed */
        size_t n = 0, nb = 0;
        sd_tokenizer_encode(t, texts[i], lens[i], 0, ids, max_len + 1, &n, &err);
        if (sd_tokenizer_decode(t, ids, n, 0, back, max_len + 1, &nb, &err) || nb != lens[i] ||
            memcmp(back, texts[i], nb))
            bad++;
    }
    printf("tokenizer: %d files, %.2f MB, %zu tokens (%.2f bytes/token), round trip %s\n", nf,
           total / 1e6, n_tokens, (double)total / (double)n_tokens, bad ? "FAILED" : "exact");
    printf("tokenizer: encode %.3f s wall best of 3 passes = %.2f MB/s (1 thread); "
           "%.3f s CPU = %.2f MB/s per CPU second\n", best, total / 1e6 / best, best_cpu,
           total / 1e6 / best_cpu);
    for (int i = 0; i < nf; i++) {
        free(texts[i]);
        free(names[i]);
    }
    free(texts);
    free(lens);
    free(ids);
    free(back);
    sd_tokenizer_free(t);
    return bad ? 1 : 0;
}
