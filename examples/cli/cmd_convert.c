/* cmd_convert.c -- `smdiff convert HF_DIR OUT.gguf [--type T]`: turn a
 * Hugging Face Dream or LLaDA checkpoint into a GGUF file with llama.cpp's
 * keys and tensor names, showing progress and a time estimate on stderr. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: smdiff convert HF_DIR OUT.gguf [--type f32|f16|bf16|q8_0] [--pre NAME] [--name NAME]\n"
            "  HF_DIR   config.json, model.safetensors or model-*.safetensors + index,\n"
            "           vocab.json + merges.txt (or tokenizer.json), tokenizer_config.json\n"
            "  --type   type of the 2-D weights (default f16); norms and biases stay f32,\n"
            "           q8_0 falls back to f16 for rows that are not multiples of 32\n"
            "  --pre    tokenizer.ggml.pre (default qwen2 for Dream, default for LLaDA)\n"
            "  --name   general.name (default: the directory name)\n");
}

typedef struct {
    struct timespec start;
    int shown;
} progress_state;

static double since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

static void on_progress(uint64_t done, uint64_t total, void *user) {
    progress_state *p = user;
    double el = since(&p->start);
    double frac = total ? (double)done / (double)total : 1.0;
    double left = frac > 0 ? el / frac - el : 0;
    fprintf(stderr, "\rconverting: %5.1f%% (%.2f of %.2f GB), %.0f s elapsed, ~%.0f s left   ", 100.0 * frac,
            (double)done / 1e9, (double)total / 1e9, el, left);
    p->shown = 1;
}

int cmd_convert(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    const char *pos[2] = {NULL, NULL}, *type = "f16", *pre = NULL, *name = NULL;
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            type = argv[++i];
        } else if (!strcmp(argv[i], "--pre") && i + 1 < argc) {
            pre = argv[++i];
        } else if (!strcmp(argv[i], "--name") && i + 1 < argc) {
            name = argv[++i];
        } else if (argv[i][0] == '-' || n_pos == 2) {
            fprintf(stderr, "smdiff convert: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            pos[n_pos++] = argv[i];
        }
    }
    if (n_pos != 2) {
        usage(stderr);
        return 2;
    }
    progress_state ps = {{0, 0}, 0};
    clock_gettime(CLOCK_MONOTONIC, &ps.start);
    int32_t rc = smdiff_convert_hf(pos[0], pos[1], type, pre, name, on_progress, &ps);
    if (ps.shown) fputc('\n', stderr);
    if (rc == SMDIFF_E_INVAL) { /* an unknown --type: a usage error */
        fprintf(stderr, "smdiff convert: %s\n", smdiff_last_error());
        usage(stderr);
        return 2;
    }
    if (rc != SMDIFF_OK) return cli_fail("convert", rc, smdiff_last_error());
    fprintf(stderr, "wrote %s in %.1f s\n", pos[1], since(&ps.start));
    return 0;
}
