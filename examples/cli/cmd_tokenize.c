/* cmd_tokenize.c -- `smdiff tokenize MODEL_OR_TOKENIZER_DIR [--ids]
 * [--parse-special] [--add-bos] < text`: tokenize standard input with the
 * tokenizer of a GGUF file or a Hugging Face tokenizer directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: smdiff tokenize MODEL.gguf|TOKENIZER_DIR [--ids] [--parse-special] [--add-bos] < text\n"
            "       smdiff tokenize MODEL.gguf|TOKENIZER_DIR --save TOKENIZER.gguf\n"
            "  Tokenizes standard input. Prints one token per line as ID<TAB>\"piece\" (bytes\n"
            "  outside printable ASCII escaped), or with --ids only the ids, space separated.\n"
            "  --parse-special  match special tokens written in the text (<|im_start|>, ...)\n"
            "  --add-bos        prepend BOS when the model asks for it (add_bos_token)\n"
            "  --save FILE      write the tokenizer as a vocabulary-only GGUF file instead\n");
}

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

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL, *save = NULL;
    int ids_only = 0;
    int32_t flags = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else if (!strcmp(argv[i], "--ids")) ids_only = 1;
        else if (!strcmp(argv[i], "--parse-special")) flags |= SMDIFF_TOKENIZE_PARSE_SPECIAL;
        else if (!strcmp(argv[i], "--add-bos")) flags |= SMDIFF_TOKENIZE_ADD_BOS;
        else if (!strcmp(argv[i], "--save") && i + 1 < argc) save = argv[++i];
        else if (argv[i][0] == '-' || path) { usage(stderr); return 2; }
        else path = argv[i];
    }
    if (!path) { usage(stderr); return 2; }
    smdiff_model *m = NULL;
    int32_t rc = smdiff_model_create(&m);
    if (rc != SMDIFF_OK) return cli_fail("create model", rc, smdiff_last_error());
    rc = smdiff_model_load_tokenizer(m, path);
    if (rc != SMDIFF_OK) {
        int r = cli_fail(path, rc, smdiff_last_error());
        smdiff_model_free(m);
        return r;
    }
    if (save) {
        /* Export instead of tokenizing: a vocabulary-only GGUF. */
        rc = smdiff_model_save_tokenizer(m, save);
        int r = rc ? cli_fail(save, rc, smdiff_last_error()) : 0;
        if (!rc) fprintf(stderr, "smdiff: tokenizer of %s written to %s\n", path, save);
        smdiff_model_free(m);
        return r;
    }
    size_t n = 0;
    char *text = read_all(stdin, &n);
    if (!text) {
        smdiff_model_free(m);
        fprintf(stderr, "smdiff: tokenize: cannot read standard input\n");
        return 1;
    }
    size_t n_ids = 0;
    rc = smdiff_model_tokenize(m, text, n, flags, NULL, 0, &n_ids);  /* size query */
    int32_t *ids = (rc == SMDIFF_OK || rc == SMDIFF_E_BUFFER) ? malloc(sizeof(int32_t) * (n_ids + 1)) : NULL;
    if (ids) rc = smdiff_model_tokenize(m, text, n, flags, ids, n_ids, &n_ids);
    int ret = 0;
    if (rc != SMDIFF_OK) {
        ret = cli_fail("tokenize", rc, smdiff_last_error());
    } else if (ids_only) {
        for (size_t i = 0; i < n_ids; i++) printf(i ? " %d" : "%d", (int)ids[i]);
        putchar('\n');
    } else {
        char piece[1024];
        for (size_t i = 0; i < n_ids; i++) {
            size_t len = 0;
            if (smdiff_model_token_piece(m, ids[i], piece, sizeof piece, &len) != SMDIFF_OK) len = 0;
            printf("%d\t", (int)ids[i]);
            print_piece((const unsigned char *)piece, len);
            putchar('\n');
        }
    }
    free(ids);
    free(text);
    smdiff_model_free(m);
    return ret;
}
