/* fuzz_hf_tokenizer.c -- libFuzzer target: Hugging Face tokenizer files.
 *
 * The first byte of an input picks a file, the rest is its contents:
 *   0     a tokenizer.json on its own (read as a tokenizer.json file)
 *   1..6  vocab.json, merges.txt, added_tokens.json, tokenizer_config.json,
 *         special_tokens_map.json or config.json of a tokenizer folder whose
 *         other files are those of tests/data/hf_tiny_dream (run from the
 *         repository root)
 * and the tokenizer loader (sd_tokenizer_load, as smdiff_model_load_tokenizer
 * calls it) reads it from a scratch folder on /dev/shm (or $TMPDIR). It
 * must refuse with SMDIFF_E_FORMAT, SMDIFF_E_UNSUPPORTED, SMDIFF_E_NOT_FOUND
 * or SMDIFF_E_NOMEM, or give a tokenizer whose encoding of a fixed text
 * stays inside its vocabulary and decodes; anything else traps. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "fuzz_scratch.h"
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const FILES[7] = {"tokenizer.json", "vocab.json", "merges.txt", "added_tokens.json",
                                     "tokenizer_config.json", "special_tokens_map.json", "config.json"};
static char dir[256];
static char *fixture[7];
static size_t fixture_n[7];

static void put(const char *name, const void *b, size_t n) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(b, 1, n, f) != n) || fclose(f)) abort();
}

static void setup(void) {
    fuzz_scratch("fuzz_hf_tokenizer", dir, sizeof dir);
    mkdir(dir, 0700);
    for (int i = 1; i < 7; i++) {
        char p[300];
        snprintf(p, sizeof p, "tests/data/hf_tiny_dream/%s", FILES[i]);
        FILE *f = fopen(p, "rb");
        if (!f) continue; /* not in the fixture: absent unless fuzzed */
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        fixture[i] = malloc((size_t)n + 1);
        if (!fixture[i] || fread(fixture[i], 1, (size_t)n, f) != (size_t)n) abort();
        fixture_n[i] = (size_t)n;
        fclose(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) setup();
    if (size < 1) return 0;
    int which = data[0] % 7;
    char path[400];
    if (which == 0) {
        put(FILES[0], data + 1, size - 1);
        snprintf(path, sizeof path, "%s/%s", dir, FILES[0]);
    } else {
        char p[400];
        snprintf(p, sizeof p, "%s/%s", dir, FILES[0]);
        unlink(p); /* else the folder is read as tokenizer.json's */
        for (int i = 1; i < 7; i++) {
            snprintf(p, sizeof p, "%s/%s", dir, FILES[i]);
            if (i == which) put(FILES[i], data + 1, size - 1);
            else if (fixture[i]) put(FILES[i], fixture[i], fixture_n[i]);
            else unlink(p);
        }
        snprintf(path, sizeof path, "%s", dir);
    }
    sd_tokenizer *t = NULL;
    sd_error err = {0};
    int32_t rc = sd_tokenizer_load(path, &t, &err);
    if (rc) {
        if (rc != SMDIFF_E_FORMAT && rc != SMDIFF_E_UNSUPPORTED && rc != SMDIFF_E_NOT_FOUND && rc != SMDIFF_E_NOMEM) {
            fprintf(stderr, "fuzz_hf_tokenizer: %s: %s\n", smdiff_err_name(rc), err.msg);
            __builtin_trap();
        }
        return 0;
    }
    static const char text[] = "Hello, w\xc3\xb6rld! <|mask|> 12345 \xe4\xb8\xad  \n\tend";
    size_t n_ids = 0;
    rc = sd_tokenizer_encode(t, text, sizeof text - 1, SMDIFF_TOKENIZE_PARSE_SPECIAL, NULL, 0, &n_ids, &err);
    if (rc != SMDIFF_OK && rc != SMDIFF_E_BUFFER) __builtin_trap();
    int32_t *ids = sd_malloc((n_ids ? n_ids : 1) * sizeof *ids);
    if (!ids) abort();
    if (sd_tokenizer_encode(t, text, sizeof text - 1, SMDIFF_TOKENIZE_PARSE_SPECIAL, ids, n_ids, &n_ids, &err))
        __builtin_trap();
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= sd_tokenizer_n_vocab(t)) __builtin_trap();
    char out[1024];
    size_t n_out = 0;
    rc = sd_tokenizer_decode(t, ids, n_ids, SMDIFF_DETOKENIZE_SPECIAL, out, sizeof out, &n_out, &err);
    if (rc != SMDIFF_OK && rc != SMDIFF_E_BUFFER) __builtin_trap();
    sd_free(ids);
    sd_tokenizer_free(t);
    return 0;
}
