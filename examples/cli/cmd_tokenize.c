/* cmd_tokenize.c -- `smdiff tokenize MODEL_OR_TOKENIZER_DIR [--ids]
 * [--parse-special] [--add-bos] < text`: tokenize standard input (or -p
 * TEXT, -f FILE) with the tokenizer of a GGUF file or a Hugging Face
 * tokenizer directory; or export that tokenizer with --save. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: smdiff tokenize [-m] MODEL.gguf|TOKENIZER_DIR [-p TEXT | -f FILE] [--ids]\n"
            "                       [--parse-special] [--add-bos]\n"
            "       smdiff tokenize [-m] MODEL.gguf|TOKENIZER_DIR --save TOKENIZER.gguf\n"
            "\n"
            "Tokenizes standard input (or TEXT, or FILE). Prints one token per line as\n"
            "ID<TAB>\"piece\" (bytes outside printable ASCII escaped), or with --ids only the\n"
            "ids, space separated.\n"
            "  -m, --model PATH   the GGUF file or tokenizer folder (or give it as the argument)\n"
            "  -p, --prompt TEXT  tokenize TEXT instead of standard input\n"
            "  -f, --file FILE    tokenize the contents of FILE instead of standard input\n"
            "  --ids              print only the ids\n"
            "  --parse-special    match special tokens written in the text (<|im_start|>, ...)\n"
            "  --add-bos          prepend BOS when the model asks for it (add_bos_token)\n"
            "  --save FILE        write the tokenizer as a vocabulary-only GGUF file instead\n"
            "  -h, --help         this text\n");
}

enum { O_IDS = CLI_OPT_FIRST, O_PARSE_SPECIAL, O_ADD_BOS, O_SAVE };
static const struct option longopts[] = {
    {"model", required_argument, NULL, 'm'},        {"prompt", required_argument, NULL, 'p'},
    {"file", required_argument, NULL, 'f'},         {"ids", no_argument, NULL, O_IDS},
    {"parse-special", no_argument, NULL, O_PARSE_SPECIAL}, {"add-bos", no_argument, NULL, O_ADD_BOS},
    {"save", required_argument, NULL, O_SAVE},      CLI_HELP_OPTION,
    {0, 0, 0, 0},
};
const cli_spec cli_spec_tokenize = {"tokenize", "m:p:f:h", longopts, usage};

static char *read_all(FILE *f, size_t *n) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
        if (len == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); return NULL; }
            buf = nb;
            cap *= 2;
        }
    }
    if (ferror(f)) {
        free(buf);
        return NULL;
    }
    *n = len;
    return buf;
}

static void print_piece(const unsigned char *p, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('"');
}

/* The ids, one line each with their pieces or all on one line; stops at
 * the first failed write. 0 or CLI_EXIT_FAIL. */
static int print_ids(const smdiff_model *m, const int32_t *ids, size_t n_ids, int ids_only) {
    char piece[1024];
    for (size_t i = 0; i < n_ids && !ferror(stdout); i++) {
        if (ids_only) {
            printf(i ? " %d" : "%d", (int)ids[i]);
            continue;
        }
        size_t len = 0;
        if (smdiff_model_token_piece(m, ids[i], piece, sizeof piece, &len) != SMDIFF_OK) len = 0;
        printf("%d\t", (int)ids[i]);
        print_piece((const unsigned char *)piece, len);
        putchar('\n');
    }
    if (ids_only) putchar('\n');
    return cli_check_stdout();
}

/* The text to tokenize: -p, -f or standard input; NULL after saying why. */
static char *input_text(const char *prompt, const char *file, size_t *n) {
    if (prompt) {
        *n = strlen(prompt);
        char *t = malloc(*n + 1);
        if (t) memcpy(t, prompt, *n + 1);
        return t;
    }
    FILE *f = file ? cli_fopen(file, "rb", "text file") : stdin;
    if (!f) return NULL;
    char *text = read_all(f, n);
    if (!text) fprintf(stderr, "%s: cannot read %s\n", cli_prog(), file ? file : "standard input");
    if (file) fclose(f);
    return text;
}

static int tokenize(const smdiff_model *m, const char *prompt, const char *file, int32_t flags, int ids_only) {
    size_t n = 0, n_ids = 0;
    char *text = input_text(prompt, file, &n);
    if (!text) return CLI_EXIT_FAIL;
    int32_t rc = smdiff_model_tokenize(m, text, n, flags, NULL, 0, &n_ids); /* size query */
    int32_t *ids = (rc == SMDIFF_OK || rc == SMDIFF_E_BUFFER) ? malloc(sizeof(int32_t) * (n_ids + 1)) : NULL;
    if (ids) rc = smdiff_model_tokenize(m, text, n, flags, ids, n_ids, &n_ids);
    else if (rc == SMDIFF_OK || rc == SMDIFF_E_BUFFER) rc = SMDIFF_E_NOMEM;
    int ret = rc ? cli_fail("tokenize", rc, smdiff_last_error()) : print_ids(m, ids, n_ids, ids_only);
    free(ids);
    free(text);
    return ret;
}

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL, *save = NULL, *prompt = NULL, *file = NULL;
    int ids_only = 0, c;
    int32_t flags = 0;
    cli_args a;
    cli_begin(&a, &cli_spec_tokenize);
    while ((c = cli_next(&a, argc, argv)) > 0) {
        switch (c) {
        case 'm':
        case CLI_ARG:
            if (path) return cli_usage_error("one model or tokenizer, not '%s' too", optarg);
            path = optarg;
            break;
        case 'p': prompt = optarg; break;
        case 'f': file = optarg; break;
        case O_IDS: ids_only = 1; break;
        case O_PARSE_SPECIAL: flags |= SMDIFF_TOKENIZE_PARSE_SPECIAL; break;
        case O_ADD_BOS: flags |= SMDIFF_TOKENIZE_ADD_BOS; break;
        case O_SAVE: save = optarg; break;
        }
    }
    if (c < 0) return a.status;
    if (!path) return cli_usage_error("which model or tokenizer folder?");
    if (prompt && file) return cli_usage_error("-p and -f both give the text: one of them");
    smdiff_model *m = NULL;
    int32_t rc = smdiff_model_create(&m);
    if (rc != SMDIFF_OK) return cli_fail("create model", rc, smdiff_last_error());
    rc = smdiff_model_load_tokenizer(m, path);
    int ret;
    if (rc != SMDIFF_OK) {
        ret = cli_fail(path, rc, smdiff_last_error());
    } else if (save) {
        /* Export instead of tokenizing: a vocabulary-only GGUF. */
        rc = smdiff_model_save_tokenizer(m, save);
        ret = rc ? cli_fail(save, rc, smdiff_last_error()) : CLI_EXIT_OK;
        if (!rc) fprintf(stderr, "%s: tokenizer of %s written to %s\n", cli_prog(), path, save);
    } else {
        ret = tokenize(m, prompt, file, flags, ids_only);
    }
    smdiff_model_free(m);
    return ret;
}
