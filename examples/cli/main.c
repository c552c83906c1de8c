/* main.c -- dispatch `smdiff COMMAND ...` to its cmd_* function. */
#include <stdio.h>
#include <string.h>

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
    {"convert", cmd_convert, "convert a Hugging Face Dream/LLaDA checkpoint to GGUF"},
    {"train", cmd_train, "train or fine-tune a model (MDLM with soft-masking, or AR)"},
};

int cli_fail(const char *what, int32_t status, const char *detail) {
    fprintf(stderr, "smdiff: %s: %s (%s)%s%s\n", what, smdiff_strerror(status),
            smdiff_err_name(status), detail && *detail ? ": " : "", detail ? detail : "");
    return 1;
}

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
