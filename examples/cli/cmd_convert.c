/* cmd_convert.c -- `smdiff convert HF_DIR OUT.gguf [--type T]`: turn a
 * Hugging Face Dream or LLaDA checkpoint into a GGUF file with llama.cpp's
 * keys and tensor names, showing progress and a time estimate on stderr. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "io/convert.h"

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

static void on_progress(void *user, uint64_t done, uint64_t total) {
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
    const char *pos[2] = {NULL, NULL};
    int n_pos = 0;
    sd_convert_opts o = {SD_GGML_F16, NULL, NULL, on_progress, NULL};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            const char *t = argv[++i];
            if (!strcmp(t, "f32")) o.out_type = SD_GGML_F32;
            else if (!strcmp(t, "f16")) o.out_type = SD_GGML_F16;
            else if (!strcmp(t, "bf16")) o.out_type = SD_GGML_BF16;
            else if (!strcmp(t, "q8_0")) o.out_type = SD_GGML_Q8_0;
            else {
                fprintf(stderr, "smdiff convert: unknown --type '%s'\n", t);
                usage(stderr);
                return 2;
            }
        } else if (!strcmp(argv[i], "--pre") && i + 1 < argc) {
            o.tokenizer_pre = argv[++i];
        } else if (!strcmp(argv[i], "--name") && i + 1 < argc) {
            o.name = argv[++i];
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
    o.progress_user = &ps;
    sd_error err = {0, {0}};
    int32_t rc = sd_convert_hf(pos[0], pos[1], &o, &err);
    if (ps.shown) fputc('\n', stderr);
    if (rc != SMDIFF_OK) return cli_fail("convert", rc, err.msg);
    fprintf(stderr, "wrote %s in %.1f s\n", pos[1], since(&ps.start));
    return 0;
}
