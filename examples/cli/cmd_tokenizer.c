/* cmd_tokenizer.c -- `smdiff tokenizer train`: learn a byte-level BPE
 * vocabulary from a corpus (smdiff_tokenizer_train) and write it as a
 * vocabulary-only GGUF tokenizer for `smdiff train --tokenizer`;
 * `smdiff tokenizer corpus`: tokenize a corpus into a token file
 * (smdiff_train_tokenize_corpus) without training a model. */
#define SMDIFF_EXPERIMENTAL
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define MAX_SPECIALS 64

static void usage(FILE *f) {
    fprintf(f,
            "usage: smdiff tokenizer train --vocab-size N [--pre NAME] [--special TOKEN]...\n"
            "                              -o OUT.gguf PATH...\n"
            "\n"
            "Learns a byte-level BPE vocabulary of N tokens (256 bytes + learned tokens +\n"
            "special tokens) from every file under the PATHs (folders walked in name order,\n"
            "each file one document) and writes it as a vocabulary-only GGUF tokenizer,\n"
            "which `smdiff train --tokenizer` and `smdiff tokenize` read. The same corpus\n"
            "and options always give the same file (docs/TOKENIZER.md).\n"
            "\n"
            "  --vocab-size N   total vocabulary size, at least 256 + the number of specials\n"
            "  --pre NAME       pre-tokenizer: qwen2 (default; suits code), gpt2, llama-bpe,\n"
            "                   bailingmoe\n"
            "  --special TOKEN  a control token, appended after the learned tokens in the\n"
            "                   order given (repeatable). Default: <|endoftext|> <|mask|>.\n"
            "                   <|endoftext|> becomes the EOS id, <|mask|> the mask id.\n"
            "  -o, --out FILE   output GGUF file (written atomically)\n"
            "\n"
            "Progress goes to standard error when it is a terminal.\n"
            "\n"
            "usage: smdiff tokenizer corpus -t TOKENIZER [--eos TOKEN] -o OUT.i32 PATH...\n"
            "\n"
            "Tokenizes every file under the PATHs (one document each, no special-token\n"
            "parsing) into OUT.i32 (little-endian int32), the EOS token after each\n"
            "document, as `smdiff train --corpus` does before it trains.\n"
            "  -t, --tokenizer T  a GGUF file or Hugging Face tokenizer folder\n"
            "  --eos TOKEN        the document separator (default <|endoftext|>)\n");
}

typedef struct progress_state {
    double start, merge_start, last;
    int tty;
} progress_state;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One status line, rewritten in place at most 5 times a second. */
static int32_t show_progress(const smdiff_tokenizer_train_progress *p, void *ud) {
    progress_state *s = ud;
    double t = now();
    if (p->phase == SMDIFF_TOKENIZER_TRAIN_MERGING && s->merge_start == 0) s->merge_start = t;
    if (!s->tty || t - s->last < 0.2) return 0;
    s->last = t;
    if (p->phase == SMDIFF_TOKENIZER_TRAIN_READING) {
        fprintf(stderr, "\rsmdiff tokenizer: read %zu files, %.1f MB, %zu distinct pre-tokens\033[K",
                p->n_documents, p->n_bytes / 1e6, p->n_words);
    } else {
        size_t done = p->n_tokens - 256, total = p->n_tokens_target - 256;
        double el = t - s->merge_start, left = done ? el * (double)(total - done) / (double)done : 0;
        fprintf(stderr, "\rsmdiff tokenizer: %zu merges, %zu/%zu tokens learned, %.0f s, about %.0f s left\033[K",
                p->n_merges, done, total, el, left);
    }
    return 0;
}

static int train(int argc, char **argv) {
    static const struct option opts[] = {
        {"vocab-size", required_argument, NULL, 'v'}, {"pre", required_argument, NULL, 'p'},
        {"special", required_argument, NULL, 's'},    {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0},
    };
    const char *specials[MAX_SPECIALS], *pre = "qwen2", *out = NULL;
    size_t n_specials = 0;
    long long vocab = -1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'v':
            vocab = strtoll(optarg, &end, 10);
            if (*end || end == optarg || vocab <= 0) {
                fprintf(stderr, "smdiff tokenizer train: --vocab-size wants a positive integer, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'p': pre = optarg; break;
        case 's':
            if (n_specials == MAX_SPECIALS) {
                fprintf(stderr, "smdiff tokenizer train: at most %d --special tokens\n", MAX_SPECIALS);
                return 2;
            }
            specials[n_specials++] = optarg;
            break;
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (vocab < 0 || !out || optind >= argc) {
        fprintf(stderr, "smdiff tokenizer train: --vocab-size, -o and at least one PATH are required\n\n");
        usage(stderr);
        return 2;
    }
    if (n_specials == 0) specials[n_specials++] = "<|endoftext|>", specials[n_specials++] = "<|mask|>";
    progress_state st = {now(), 0, 0, isatty(2)};
    int32_t rc = smdiff_tokenizer_train((const char *const *)(argv + optind), (size_t)(argc - optind),
                                        (size_t)vocab, pre, specials, n_specials, out, show_progress, &st);
    if (st.tty) fprintf(stderr, "\r\033[K");
    if (rc) return cli_fail("tokenizer train", rc, smdiff_last_error());
    fprintf(stderr, "smdiff tokenizer: %lld tokens (pre-tokenizer %s) written to %s in %.1f s; specials:",
            vocab, pre, out, now() - st.start);
    for (size_t i = 0; i < n_specials; i++)
        fprintf(stderr, " %s=%lld", specials[i], vocab - (long long)n_specials + (long long)i);
    fprintf(stderr, "\n");
    return 0;
}

/* The id of a special token's text, -1 if it is not one token. */
static int32_t special_id(const smdiff_model *m, const char *text) {
    int32_t ids[2];
    size_t n = 0;
    if (smdiff_model_tokenize(m, text, strlen(text), SMDIFF_TOKENIZE_PARSE_SPECIAL, ids, 2, &n) || n != 1)
        return -1;
    return ids[0];
}

static int corpus(int argc, char **argv) {
    static const struct option opts[] = {
        {"tokenizer", required_argument, NULL, 't'}, {"eos", required_argument, NULL, 'e'},
        {"out", required_argument, NULL, 'o'},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *tok = NULL, *eos = "<|endoftext|>", *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': tok = optarg; break;
        case 'e': eos = optarg; break;
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!tok || !out || optind >= argc) {
        fprintf(stderr, "smdiff tokenizer corpus: -t, -o and at least one PATH are required\n\n");
        usage(stderr);
        return 2;
    }
    smdiff_model *m = NULL;
    int32_t rc = smdiff_model_create(&m);
    if (!rc) rc = smdiff_model_load_tokenizer(m, tok);
    if (rc) {
        smdiff_model_free(m);
        return cli_fail(tok, rc, smdiff_last_error());
    }
    int32_t eos_id = special_id(m, eos);
    size_t n_tokens = 0, n_docs = 0;
    if (eos_id < 0) {
        fprintf(stderr, "smdiff tokenizer corpus: %s is not a single token of %s\n", eos, tok);
        smdiff_model_free(m);
        return 1;
    }
    rc = smdiff_train_tokenize_corpus(m, (const char *const *)(argv + optind), (size_t)(argc - optind), eos_id,
                                      out, &n_tokens, &n_docs);
    smdiff_model_free(m);
    if (rc) return cli_fail("tokenizer corpus", rc, smdiff_last_error());
    fprintf(stderr, "smdiff tokenizer: %zu documents, %zu tokens (EOS %s = %d included) -> %s\n", n_docs,
            n_tokens, eos, (int)eos_id, out);
    return 0;
}

int cmd_tokenizer(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "train")) return train(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "corpus")) return corpus(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "smdiff tokenizer: unknown or missing subcommand (train, corpus)\n\n");
    usage(stderr);
    return 2;
}
