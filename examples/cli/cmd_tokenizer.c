/* cmd_tokenizer.c -- `smdiff tokenizer train`: learn a byte-level BPE
 * vocabulary from a corpus (smdiff_tokenizer_train) and write it as a
 * vocabulary-only GGUF tokenizer for `smdiff train --tokenizer`;
 * `smdiff tokenizer corpus`: tokenize a corpus into a token file
 * (smdiff_train_tokenize_corpus) without training a model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define MAX_SPECIALS 64

static void usage_train(FILE *f) {
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
            "  --progress       show progress on stderr even when it is not a terminal\n"
            "  --no-progress    never show progress\n"
            "  -h, --help       this text\n");
}

static void usage_corpus(FILE *f) {
    fprintf(f,
            "usage: smdiff tokenizer corpus -t TOKENIZER [--eos TOKEN] -o OUT.i32 PATH...\n"
            "\n"
            "Tokenizes every file under the PATHs (one document each, no special-token\n"
            "parsing) into OUT.i32 (little-endian int32), the EOS token after each\n"
            "document, as `smdiff train --corpus` does before it trains.\n"
            "  -t, --tokenizer T  a GGUF file or Hugging Face tokenizer folder\n"
            "  --eos TOKEN        the document separator (default <|endoftext|>)\n"
            "  -o, --out FILE     output token file (written atomically)\n"
            "  -h, --help         this text\n");
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: smdiff tokenizer train|corpus [options] PATH...\n"
            "\n"
            "  train    learn a byte-level BPE tokenizer from a corpus\n"
            "  corpus   tokenize a corpus into a token file for `smdiff train`\n"
            "\n"
            "`smdiff tokenizer train --help` and `smdiff tokenizer corpus --help` describe them.\n"
            "  -h, --help   this text\n");
}

enum { O_VOCAB = CLI_OPT_FIRST, O_PRE, O_SPECIAL, O_EOS };
static const struct option train_opts[] = {
    {"vocab-size", required_argument, NULL, O_VOCAB}, {"pre", required_argument, NULL, O_PRE},
    {"special", required_argument, NULL, O_SPECIAL},  {"out", required_argument, NULL, 'o'},
    CLI_PROGRESS_OPTIONS,                             CLI_HELP_OPTION,
    {0, 0, 0, 0},
};
static const struct option corpus_opts[] = {
    {"tokenizer", required_argument, NULL, 't'}, {"eos", required_argument, NULL, O_EOS},
    {"out", required_argument, NULL, 'o'},       CLI_HELP_OPTION,
    {0, 0, 0, 0},
};
static const struct option help_only[] = {CLI_HELP_OPTION, {0, 0, 0, 0}};
const cli_spec cli_spec_tokenizer = {"tokenizer", "h", help_only, usage};
const cli_spec cli_spec_tokenizer_train = {"tokenizer train", "o:h", train_opts, usage_train};
const cli_spec cli_spec_tokenizer_corpus = {"tokenizer corpus", "t:o:h", corpus_opts, usage_corpus};

typedef struct progress_state {
    double start, merge_start, last;
    int show, tty;
} progress_state;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One status line, rewritten in place at most 5 times a second on a
 * terminal, a line every 2 seconds elsewhere (--progress). */
static int32_t show_progress(const smdiff_tokenizer_train_progress *p, void *ud) {
    progress_state *s = ud;
    double t = now();
    if (p->phase == SMDIFF_TOKENIZER_TRAIN_MERGING && s->merge_start == 0) s->merge_start = t;
    if (!s->show || t - s->last < (s->tty ? 0.2 : 2.0)) return 0;
    s->last = t;
    if (p->phase == SMDIFF_TOKENIZER_TRAIN_READING) {
        fprintf(stderr, "%ssmdiff tokenizer: read %zu files, %.1f MB, %zu distinct pre-tokens%s", s->tty ? "\r" : "",
                p->n_documents, p->n_bytes / 1e6, p->n_words, s->tty ? "\033[K" : "\n");
    } else {
        size_t done = p->n_tokens - 256, total = p->n_tokens_target - 256;
        double el = t - s->merge_start, left = done ? el * (double)(total - done) / (double)done : 0;
        fprintf(stderr, "%ssmdiff tokenizer: %zu merges, %zu/%zu tokens learned, %.0f s, about %.0f s left%s",
                s->tty ? "\r" : "", p->n_merges, done, total, el, left, s->tty ? "\033[K" : "\n");
    }
    return 0;
}

static int train(int argc, char **argv) {
    const char *specials[MAX_SPECIALS], *pre = "qwen2", *out = NULL;
    size_t n_specials = 0, n_paths = 0;
    int64_t vocab = -1;
    int c;
    cli_args a;
    cli_begin(&a, &cli_spec_tokenizer_train);
    while ((c = cli_next(&a, argc, argv)) > 0) {
        switch (c) {
        case O_VOCAB:
            /* the library's own limits (256 + specials .. 2^24) are checked when it runs */
            if (cli_count(a.opt, optarg, 1, 1 << 24, &vocab)) return CLI_EXIT_USAGE;
            break;
        case O_PRE: pre = optarg; break;
        case O_SPECIAL:
            if (n_specials == MAX_SPECIALS) return cli_usage_error("at most %d --special tokens", MAX_SPECIALS);
            specials[n_specials++] = optarg;
            break;
        case 'o': out = optarg; break;
        case CLI_ARG: argv[++n_paths] = optarg; break; /* PATHs to argv[1..]: getopt is past them */
        }
    }
    if (c < 0) return a.status;
    if (vocab < 0 || !out || !n_paths) return cli_usage_error("--vocab-size, -o and at least one PATH are required");
    if (n_specials == 0) specials[n_specials++] = "<|endoftext|>", specials[n_specials++] = "<|mask|>";
    progress_state st = {now(), 0, 0, cli_progress(&a), isatty(2)};
    const char *const *paths = (const char *const *)argv + 1;
    int32_t rc = smdiff_tokenizer_train(paths, n_paths, (size_t)vocab, pre, specials, n_specials, out,
                                        show_progress, &st);
    if (st.show && st.tty) fprintf(stderr, "\r\033[K");
    if (rc) return cli_fail("tokenizer train", rc, smdiff_last_error());
    fprintf(stderr, "smdiff tokenizer: %lld tokens (pre-tokenizer %s) written to %s in %.1f s; specials:",
            (long long)vocab, pre, out, now() - st.start);
    for (size_t i = 0; i < n_specials; i++)
        fprintf(stderr, " %s=%lld", specials[i], (long long)vocab - (long long)n_specials + (long long)i);
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
    const char *tok = NULL, *eos = "<|endoftext|>", *out = NULL;
    size_t n_paths = 0;
    int c;
    cli_args a;
    cli_begin(&a, &cli_spec_tokenizer_corpus);
    while ((c = cli_next(&a, argc, argv)) > 0) {
        switch (c) {
        case 't': tok = optarg; break;
        case O_EOS: eos = optarg; break;
        case 'o': out = optarg; break;
        case CLI_ARG: argv[++n_paths] = optarg; break; /* PATHs to argv[1..]: getopt is past them */
        }
    }
    if (c < 0) return a.status;
    if (!tok || !out || !n_paths) return cli_usage_error("-t, -o and at least one PATH are required");
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
        fprintf(stderr, "%s: %s is not a single token of %s\n", cli_prog(), eos, tok);
        smdiff_model_free(m);
        return 1;
    }
    rc = smdiff_train_tokenize_corpus(m, (const char *const *)argv + 1, n_paths, eos_id, out, &n_tokens, &n_docs);
    smdiff_model_free(m);
    if (rc) return cli_fail("tokenizer corpus", rc, smdiff_last_error());
    fprintf(stderr, "smdiff tokenizer: %zu documents, %zu tokens (EOS %s = %d included) -> %s\n", n_docs,
            n_tokens, eos, (int)eos_id, out);
    return 0;
}

int cmd_tokenizer(int argc, char **argv) {
    static const cli_subcommand subs[] = {{"train", train}, {"corpus", corpus}};
    return cli_dispatch(&cli_spec_tokenizer, subs, 2, argc, argv);
}
