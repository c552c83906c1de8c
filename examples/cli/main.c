/* main.c -- dispatch `smdiff COMMAND ...` to its cmd_* function. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"version", cmd_version, "library version, BLAS backend, threads, decoder strategies"},
    {"info", cmd_info, "describe a model file: architecture, sizes, tokenizer, soft-mask"},
    {"generate", cmd_generate, "decode text with soft-masking and any decoder strategy"},
    {"tokenize", cmd_tokenize, "tokenize standard input with a model's or tokenizer directory's tokenizer"},
    {"tokenizer", cmd_tokenizer, "train a byte-level BPE tokenizer on a corpus; tokenize a corpus to a token file"},
    {"convert", cmd_convert, "convert a Hugging Face Dream/LLaDA checkpoint to GGUF"},
    {"train", cmd_train, "train or fine-tune a model (MDLM with soft-masking, or AR)"},
    {"eval", cmd_eval, "validation bound, generative perplexity, entropy and MAUVE of samples"},
};

int cli_fail(const char *what, int32_t status, const char *detail) {
    fprintf(stderr, "smdiff: %s: %s (%s)%s%s\n", what, smdiff_strerror(status),
            smdiff_err_name(status), detail && *detail ? ": " : "", detail ? detail : "");
    return 1;
}

static int readable(const char *path) { return access(path, R_OK) == 0; }

const char *cli_default_model(void) {
    static char buf[4096];
    const char *env = getenv("SMDIFF_MODEL");
    if (env && *env) return env;
    if (readable("models/" CLI_DEFAULT_MODEL)) return "models/" CLI_DEFAULT_MODEL;
    char exe[4000];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = '\0';
    static const char *const rel[] = {"/../../models/", "/../models/", "/../share/smdiff/"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s%s", exe, rel[i], CLI_DEFAULT_MODEL);
        if (readable(buf)) return buf;
    }
    return NULL;
}

int32_t *cli_read_tokens(const char *path, int64_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "smdiff: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size < 0 || size % 4) {
        fprintf(stderr, "smdiff: %s: size %ld is not a whole number of int32 tokens\n", path, size);
        fclose(f);
        return NULL;
    }
    int32_t *t = malloc(size ? (size_t)size : 4);
    *n = size / 4;
    if (!t || fread(t, 4, (size_t)*n, f) != (size_t)*n) {
        fprintf(stderr, "smdiff: %s: read failed\n", path);
        free(t);
        t = NULL;
    }
    fclose(f);
    return t;
}

int64_t cli_val_tokens(int64_t n, int64_t seq) { return n / 100 > seq ? n / 100 : seq; }

static void usage(FILE *f) {
    fprintf(f, "usage: smdiff COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`smdiff COMMAND --help` describes a command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) return cmd_version(1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "smdiff: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
