/* fuzz_tokenizer.c -- libFuzzer target for tokenize / detokenize / pieces /
 * chat template / UTF-8 streaming helper. Self-contained: build with
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Ilib \
 *         fuzz/fuzz_tokenizer.c <library sources or libsmdiff.a> <deps>
 * It loads the Qwen2 (Dream) tokenizer from SMDIFF_FUZZ_TOKENIZER (a GGUF
 * file or tokenizer directory) or from tests/data/tokenizers/dream-qwen2.5
 * (run from the repository root), and falls back to a small tokenizer built
 * from arrays (NFC, like Dream's) when neither loads.
 *
 * Properties checked (a violation traps):
 *   decode(encode(x)) == the text the encoder saw (x itself, or with the
 *   tokenizer's normaliser -- Dream's NFC -- x normalised between added
 *   tokens, as sd_tokenizer_pretokenize hands it out), with and without
 *   special-token parsing;
 *   the two-call pattern reports the same sizes as the filled call;
 *   ids taken from the input decode to OK or SMDIFF_E_RANGE, never worse;
 *   streaming with smdiff_utf8_complete reproduces the whole output. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sd_tokenizer *tok;

#define CHECK(c)                                                             \
    do {                                                                     \
        if (!(c)) {                                                          \
            fprintf(stderr, "fuzz_tokenizer: check failed: %s (line %d)\n", #c, __LINE__); \
            __builtin_trap();                                                \
        }                                                                    \
    } while (0)

static sd_tokenizer *fallback(void) {
    /* 256 byte tokens in the byte-level alphabet, three merges, two specials. */
    static char bytes[256][4];
    const char *toks[262];
    int32_t types[262];
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int cp = b;
        if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174))) {
            int k = 0;
            for (int i = 0; i < b; i++)
                if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174))) k++;
            cp = 256 + k;
        }
        if (cp < 0x80) { bytes[b][0] = (char)cp; bytes[b][1] = 0; }
        else { bytes[b][0] = (char)(0xC0 | (cp >> 6)); bytes[b][1] = (char)(0x80 | (cp & 0x3F)); bytes[b][2] = 0; }
        toks[n] = bytes[b];
        types[n++] = SD_TOKEN_NORMAL;
    }
    toks[n] = "th"; types[n++] = SD_TOKEN_NORMAL;
    toks[n] = "the"; types[n++] = SD_TOKEN_NORMAL;
    toks[n] = "\xc4\xa0the"; types[n++] = SD_TOKEN_NORMAL;
    toks[n] = "<|im_start|>"; types[n++] = SD_TOKEN_CONTROL;
    toks[n] = "<|im_end|>"; types[n++] = SD_TOKEN_CONTROL;
    toks[n] = "<tool_call>"; types[n++] = SD_TOKEN_USER_DEFINED;
    const char *merges[] = {"t h", "th e", "\xc4\xa0 the"};
    sd_tokenizer_spec s;
    memset(&s, 0, sizeof s);
    s.n_tokens = n;
    s.tokens = toks;
    s.token_types = types;
    s.n_merges = 3;
    s.merges = merges;
    s.pre = "qwen2";
    s.normalizer = SD_NORM_NFC; /* as Dream's */
    s.bos_id = s.eos_id = s.pad_id = s.mask_id = -1;
    sd_tokenizer *t = NULL;
    sd_error err = {0};
    if (sd_tokenizer_create(&s, &t, &err)) {
        fprintf(stderr, "fuzz_tokenizer: fallback tokenizer failed: %s\n", err.msg);
        abort();
    }
    return t;
}

static void init(void) {
    if (tok) return;
    sd_error err = {0};
    const char *env = getenv("SMDIFF_FUZZ_TOKENIZER");
    const char *path = env ? env : "tests/data/tokenizers/dream-qwen2.5";
    if (sd_tokenizer_load(path, &tok, &err) != 0) {
        fprintf(stderr, "fuzz_tokenizer: %s: %s; using a small built-in tokenizer\n", path, err.msg);
        tok = fallback();
    }
}

typedef struct seen_text {
    char *buf;
    size_t len, cap;
} seen_text;

static int collect_piece(void *user, const char *text, size_t len) {
    seen_text *st = user;
    if (st->len + len > st->cap) {
        st->cap = 2 * (st->len + len) + 64;
        st->buf = realloc(st->buf, st->cap);
        CHECK(st->buf);
    }
    memcpy(st->buf + st->len, text, len);
    st->len += len;
    return 0;
}

static void roundtrip(const uint8_t *data, size_t size, int32_t eflags, int32_t dflags) {
    sd_error err = {0};
    seen_text seen = {0};
    CHECK(sd_tokenizer_pretokenize(tok, (const char *)data, size, eflags, collect_piece, &seen, &err) == 0);
    if (sd_tokenizer_normalizer(tok) == SD_NORM_NONE) CHECK(seen.len == size && (size == 0 || !memcmp(seen.buf, data, size)));
    const char *want = seen.buf; /* what decoding must give back */
    size_t wlen = seen.len;
    size_t need = 0, n = 0;
    int32_t rc = sd_tokenizer_encode(tok, (const char *)data, size, eflags, NULL, 0, &need, &err);
    CHECK(rc == 0 || rc == SMDIFF_E_BUFFER);
    int32_t *ids = malloc(sizeof(int32_t) * (need + 1));
    CHECK(ids);
    CHECK(sd_tokenizer_encode(tok, (const char *)data, size, eflags, ids, need, &n, &err) == 0);
    CHECK(n == need);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] >= 0 && ids[i] < sd_tokenizer_n_vocab(tok));
    size_t blen = 0;
    rc = sd_tokenizer_decode(tok, ids, n, dflags, NULL, 0, &blen, &err);
    CHECK(rc == 0 || rc == SMDIFF_E_BUFFER);
    char *back = malloc(blen + 1);
    CHECK(back);
    size_t got = 0;
    CHECK(sd_tokenizer_decode(tok, ids, n, dflags, back, blen, &got, &err) == 0);
    CHECK(got == wlen && (wlen == 0 || memcmp(back, want, wlen) == 0));
    /* streaming: piece by piece through the UTF-8 holder */
    char *stream = malloc(wlen + 1);
    char pend[512];
    size_t out = 0, np = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pl = 0;
        if (sd_tokenizer_token_type(tok, ids[i]) == SD_TOKEN_CONTROL && !(dflags & SD_DETOK_SPECIAL)) continue;
        CHECK(sd_tokenizer_piece(tok, ids[i], pend + np, sizeof pend - np, &pl, &err) == 0);
        np += pl;
        size_t k = sd_utf8_complete_prefix(pend, np);
        CHECK(k <= np && np - k <= 3);
        memcpy(stream + out, pend, k);
        out += k;
        memmove(pend, pend + k, np - k);
        np -= k;
    }
    memcpy(stream + out, pend, np);
    out += np;
    CHECK(out == wlen && (wlen == 0 || memcmp(stream, want, wlen) == 0));
    free(stream);
    free(back);
    free(ids);
    free(seen.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init();
    roundtrip(data, size, 0, 0);
    roundtrip(data, size, SD_TOK_PARSE_SPECIAL, SD_DETOK_SPECIAL);
    /* The input read as ids: every id is either decoded or refused. */
    size_t n = size / 4;
    if (n) {
        int32_t *ids = malloc(sizeof(int32_t) * n);
        memcpy(ids, data, n * 4);
        for (size_t i = 0; i < n; i++)
            if (i % 2) ids[i] = (int32_t)((uint32_t)ids[i] % (uint32_t)(sd_tokenizer_n_vocab(tok) + 2));
        sd_error err = {0};
        size_t need = 0;
        int32_t rc = sd_tokenizer_decode(tok, ids, n, SD_DETOK_SPECIAL, NULL, 0, &need, &err);
        CHECK(rc == 0 || rc == SMDIFF_E_BUFFER || rc == SMDIFF_E_RANGE);
        if (rc == SMDIFF_E_BUFFER) {
            char *buf = malloc(need);
            size_t got = 0;
            CHECK(sd_tokenizer_decode(tok, ids, n, SD_DETOK_SPECIAL, buf, need, &got, &err) == 0 && got == need);
            free(buf);
        }
        free(ids);
    }
    /* Chat template: the input split at NUL bytes into role/content pairs. */
    char *copy = malloc(size + 1);
    memcpy(copy, data, size);
    copy[size] = '\0';
    const char *parts[16];
    int np = 0;
    for (size_t i = 0, st = 0; i <= size && np < 16; i++)
        if (i == size || copy[i] == '\0') {
            parts[np++] = copy + st;
            st = i + 1;
        }
    int nm = np / 2;
    const char *roles[8], *contents[8];
    static const char *const known[] = {"system", "user", "assistant", "tool"};
    for (int i = 0; i < nm; i++) {
        roles[i] = (parts[2 * i][0] & 4) ? parts[2 * i] : known[(uint8_t)parts[2 * i][0] % 4];
        contents[i] = parts[2 * i + 1];
    }
    sd_error err = {0};
    size_t need = 0;
    int32_t rc = sd_tokenizer_chat(tok, nm, roles, contents, (int32_t)(size & 1), NULL, 0, &need, &err);
    if (rc == SMDIFF_E_BUFFER) {
        char *buf = malloc(need);
        size_t need2 = 0;
        CHECK(sd_tokenizer_chat(tok, nm, roles, contents, (int32_t)(size & 1), buf, need, &need2, &err) == 0);
        CHECK(need2 == need && strlen(buf) + 1 == need);
        free(buf);
    } else {
        CHECK(rc == SMDIFF_E_UNSUPPORTED);
    }
    free(copy);
    return 0;
}
