/* test_tokenizer_parity.c -- Hugging Face parity of the tokenizer: the
 * Unicode normaliser a tokenizer declares, and special tokens matched
 * whole inside text.
 *
 * Expected ids come from tests/ref/tokenizer_ref.py (Python's unicodedata
 * and a byte-level BPE written there from GPT-2's algorithm), committed as
 * tests/data/tokenizer_parity.json. Tokenizer files are in
 * tests/data/tokenizers/ (sources and licences in tests/data/SOURCES.md), so this
 * test needs nothing outside the repository.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <utf8proc.h>

#include "core/alloc.h"
#include "io/gguf.h"
#include "smdiff/smdiff.h"
#include "testutil.h"
#include "text/tokenizer.h"

#define TOKDIR "tests/data/tokenizers/"

static json_t *fixture;

static int setup(void **state) {
    (void)state;
    json_error_t je;
    fixture = json_load_file(test_data_path("tokenizer_parity.json"), 0, &je);
    if (!fixture) {
        printf("tokenizer_parity.json: %s (line %d)\n", je.text, je.line);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    json_decref(fixture);
    return 0;
}

static json_t *cases(void) { return json_object_get(fixture, "cases"); }

/* Every case's ids for tokenizer `name`, special tokens parsed (Hugging
 * Face's default: split_special_tokens = False). */
static void check_cases(const sd_tokenizer *t, const char *name) {
    size_t i;
    json_t *c;
    int checked = 0;
    json_array_foreach(cases(), i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        json_t *want = json_object_get(json_object_get(c, "ids"), name);
        assert_non_null(text);
        assert_true(json_is_array(want));
        size_t n = 0;
        int32_t *ids = test_tokenize(t, text, strlen(text), SD_TOK_PARSE_SPECIAL, &n);
        int same = n == json_array_size(want);
        for (size_t k = 0; same && k < n; k++) same = ids[k] == json_integer_value(json_array_get(want, k));
        if (!same) {
            print_message("%s, case %zu: got", name, i);
            for (size_t k = 0; k < n; k++) print_message(" %d", ids[k]);
            print_message("\n  want");
            for (size_t k = 0; k < json_array_size(want); k++)
                print_message(" %d", (int)json_integer_value(json_array_get(want, k)));
            print_message("\n");
            fail();
        }
        free(ids);
        checked++;
    }
    assert_true(checked >= 16);
}

/* ------------------------------------------------------------ Dream: NFC */

static sd_tokenizer *load_dream(void) {
    sd_tokenizer *t = NULL;
    sd_error err = {0};
    int32_t rc = sd_tokenizer_from_hf_dir(TOKDIR "dream-qwen2.5", &t, &err);
    if (rc) print_message("load: %s\n", err.msg);
    assert_int_equal(rc, SMDIFF_OK);
    return t;
}

static void test_dream_nfc(void **state) {
    (void)state;
    sd_tokenizer *t = load_dream();
    assert_int_equal(sd_tokenizer_normalizer(t), SD_NORM_NFC); /* tokenizer_class DreamTokenizer */
    check_cases(t, "dream");
    /* the point of it: composed and decomposed spellings tokenize alike */
    size_t a = 0, b = 0;
    int32_t *x = test_tokenize(t, "caf\xc3\xa9", 5, 0, &a), *y = test_tokenize(t, "cafe\xcc\x81", 6, 0, &b);
    assert_int_equal(a, b);
    assert_memory_equal(x, y, a * sizeof(int32_t));
    free(x);
    free(y);
    sd_tokenizer_free(t);
}

/* The normaliser travels through GGUF (smdiff.tokenizer.normalizer). */
static void test_dream_nfc_via_gguf(void **state) {
    (void)state;
    sd_tokenizer *t = load_dream(), *back = NULL;
    sd_gguf_writer *w = NULL;
    sd_error err = {0};
    assert_int_equal(sd_gguf_writer_create(&w, &err), SMDIFF_OK);
    assert_int_equal(sd_tokenizer_to_gguf(t, w, &err), SMDIFF_OK);
    char path[64];
    snprintf(path, sizeof path, "/tmp/smdiff_tok_parity_%d.gguf", (int)getpid());
    assert_int_equal(sd_gguf_write(w, path, &err), SMDIFF_OK);
    sd_gguf_writer_free(w);
    sd_gguf *g = NULL;
    assert_int_equal(sd_gguf_open(path, 1, &g, &err), SMDIFF_OK);
    sd_gguf_str v = {0};
    assert_int_equal(sd_gguf_get_str(g, "smdiff.tokenizer.normalizer", &v, &err), SMDIFF_OK);
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.ptr, "NFC", 3);
    assert_int_equal(sd_tokenizer_from_gguf(g, &back, &err), SMDIFF_OK);
    sd_gguf_close(g);
    unlink(path);
    assert_int_equal(sd_tokenizer_normalizer(back), SD_NORM_NFC);
    check_cases(back, "dream");
    sd_tokenizer_free(back);
    sd_tokenizer_free(t);
}

/* A GGUF naming a normaliser smdiff does not know is refused; one without
 * the key (llama.cpp's files) has none. */
static void test_gguf_normalizer_key(void **state) {
    (void)state;
    static const char *const toks[] = {"a", "b", "ab"};
    static const char *const merges[] = {"a b"};
    const char *values[] = {NULL, "NFKD", "NFX"};
    int32_t want_rc[] = {SMDIFF_OK, SMDIFF_OK, SMDIFF_E_UNSUPPORTED};
    int32_t want_form[] = {SD_NORM_NONE, SD_NORM_NFKD, 0};
    for (int k = 0; k < 3; k++) {
        sd_gguf_writer *w = NULL;
        sd_error err = {0};
        assert_int_equal(sd_gguf_writer_create(&w, &err), SMDIFF_OK);
        assert_int_equal(sd_gguf_set_str(w, "tokenizer.ggml.model", "gpt2"), SMDIFF_OK);
        assert_int_equal(sd_gguf_set_str(w, "tokenizer.ggml.pre", "gpt2"), SMDIFF_OK);
        assert_int_equal(sd_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 3), SMDIFF_OK);
        assert_int_equal(sd_gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, 1), SMDIFF_OK);
        if (values[k]) assert_int_equal(sd_gguf_set_str(w, "smdiff.tokenizer.normalizer", values[k]), SMDIFF_OK);
        char path[64];
        snprintf(path, sizeof path, "/tmp/smdiff_tok_norm_%d.gguf", (int)getpid());
        assert_int_equal(sd_gguf_write(w, path, &err), SMDIFF_OK);
        sd_gguf_writer_free(w);
        sd_gguf *g = NULL;
        sd_tokenizer *t = NULL;
        assert_int_equal(sd_gguf_open(path, 1, &g, &err), SMDIFF_OK);
        assert_int_equal(sd_tokenizer_from_gguf(g, &t, &err), want_rc[k]);
        if (t) assert_int_equal(sd_tokenizer_normalizer(t), want_form[k]);
        else assert_non_null(strstr(err.msg, "NFX"));
        sd_tokenizer_free(t);
        sd_gguf_close(g);
        unlink(path);
    }
}

/* -------------------------------------------------- GPT-2: <|endoftext|> */

static void test_gpt2_endoftext(void **state) {
    (void)state;
    sd_tokenizer *t = NULL;
    sd_error err = {0};
    assert_int_equal(sd_tokenizer_from_hf_dir(TOKDIR "gpt2", &t, &err), SMDIFF_OK);
    assert_int_equal(sd_tokenizer_normalizer(t), SD_NORM_NONE);
    assert_int_equal(sd_tokenizer_token_type(t, 50256), SD_TOKEN_CONTROL);
    assert_int_equal(sd_tokenizer_special_id(t, 0), 50256);
    assert_int_equal(sd_tokenizer_special_id(t, 1), 50256);
    check_cases(t, "gpt2");
    sd_tokenizer_free(t);
}

/* GPT-2 plus the bundled models' <|mask|> (added_tokens.json) and a
 * special-tokens map: <|endoftext|> is still the special token. */
static void test_gpt2_mask_endoftext(void **state) {
    (void)state;
    sd_tokenizer *t = NULL;
    sd_error err = {0};
    int32_t rc = sd_tokenizer_from_hf_files(TOKDIR "gpt2/encoder.json", TOKDIR "gpt2/vocab.bpe",
                                            "models/gpt2-mask", NULL, &t, &err);
    if (rc) print_message("load: %s\n", err.msg);
    assert_int_equal(rc, SMDIFF_OK);
    assert_int_equal(sd_tokenizer_token_type(t, 50256), SD_TOKEN_CONTROL);
    assert_int_equal(sd_tokenizer_token_type(t, 50257), SD_TOKEN_CONTROL);
    assert_int_equal(sd_tokenizer_special_id(t, 1), 50256);
    assert_int_equal(sd_tokenizer_special_id(t, 3), 50257);
    check_cases(t, "gpt2_mask");
    /* without special-token parsing it is text, and decodes back as text */
    size_t n = 0;
    int32_t *ids = test_tokenize(t, "a<|endoftext|>", 14, 0, &n);
    assert_true(n > 2);
    for (size_t k = 0; k < n; k++) assert_int_not_equal(ids[k], 50256);
    free(ids);
    sd_tokenizer_free(t);
}

/* -------------------------------------- where the special ids come from */

static void put_file(const char *dir, const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* Texts the tokenizer config names (sep and cls included) become control
 * tokens, as Hugging Face makes them special; an id only the model's
 * config.json gives is used but leaves the token as it is (Hugging Face's
 * tokenizer never reads that file); GPT-2's class default <|endoftext|>
 * comes before config.json's id; ids up to the size asked for are padding
 * rows (their "[PAD<id>]" names are checked in the converted file,
 * test_convert). */
static void test_special_sources(void **state) {
    (void)state;
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/smdiff_tok_specials_%d", (int)getpid());
    assert_int_equal(mkdir(dir, 0700), 0);
    put_file(dir, "vocab.json", "{\"a\": 0, \"s\": 1, \"c\": 2, \"e\": 3, \"<|endoftext|>\": 4}");
    put_file(dir, "merges.txt", "#version: 0.2\n");
    put_file(dir, "config.json", "{\"eos_token_id\": 3, \"bos_token_id\": 0, \"pad_token_id\": 7}");
    put_file(dir, "tokenizer_config.json",
             "{\"tokenizer_class\": \"PreTrainedTokenizerFast\", \"sep_token\": \"s\", "
             "\"cls_token\": {\"content\": \"c\"}, \"bos_token\": null}");
    sd_hf_opts pad = {NULL, 8};
    sd_hf_extras x;
    sd_tokenizer *t = NULL;
    sd_error err = {0};
    int32_t rc = sd_tokenizer_from_hf(dir, &pad, &t, &x, &err);
    if (rc) print_message("load: %s\n", err.msg);
    assert_int_equal(rc, SMDIFF_OK);
    assert_int_equal(x.sep_id, 1);
    assert_int_equal(x.cls_id, 2);
    assert_int_equal(x.unk_id, -1);
    assert_int_equal(sd_tokenizer_token_type(t, 1), SD_TOKEN_CONTROL);
    assert_int_equal(sd_tokenizer_token_type(t, 2), SD_TOKEN_CONTROL);
    assert_int_equal(sd_tokenizer_special_id(t, 1), 3); /* eos from config.json ... */
    assert_int_equal(sd_tokenizer_token_type(t, 3), SD_TOKEN_NORMAL); /* ... not made special */
    assert_int_equal(sd_tokenizer_special_id(t, 0), 0); /* null text: config.json's id */
    assert_int_equal(sd_tokenizer_special_id(t, 2), 7); /* a padding row */
    assert_int_equal(sd_tokenizer_n_vocab(t), 8);
    assert_int_equal(sd_tokenizer_token_type(t, 7), SD_TOKEN_UNUSED);
    sd_hf_extras_free(&x);
    sd_tokenizer_free(t);
    /* an id config.json gives outside the vocabulary is refused */
    put_file(dir, "config.json", "{\"eos_token_id\": 8}");
    assert_int_equal(sd_tokenizer_from_hf(dir, &pad, &t, &x, &err), SMDIFF_E_FORMAT);
    assert_non_null(strstr(err.msg, "eos_token_id"));
    sd_hf_extras_free(&x);
    put_file(dir, "config.json", "{\"eos_token_id\": 3}");
    /* GPT-2's class: <|endoftext|> is bos, eos and unk before config.json */
    put_file(dir, "tokenizer_config.json", "{\"tokenizer_class\": \"GPT2Tokenizer\"}");
    rc = sd_tokenizer_from_hf(dir, NULL, &t, &x, &err);
    if (rc) print_message("load: %s\n", err.msg);
    assert_int_equal(rc, SMDIFF_OK);
    assert_int_equal(sd_tokenizer_special_id(t, 0), 4);
    assert_int_equal(sd_tokenizer_special_id(t, 1), 4);
    assert_int_equal(x.unk_id, 4);
    assert_int_equal(sd_tokenizer_token_type(t, 4), SD_TOKEN_CONTROL);
    sd_hf_extras_free(&x);
    sd_tokenizer_free(t);
    const char *files[] = {"vocab.json", "merges.txt", "config.json", "tokenizer_config.json"};
    char path[256];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* ------------------------------------------ every normal form, by bytes */

/* GPT-2's byte-level alphabet, written out here: printable Latin-1 bytes
 * stand for themselves, the rest take U+0100.. in byte order. */
static size_t byte_symbol(int b, char *out) {
    int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    int cp = b;
    if (!keep) {
        int k = 0;
        for (int i = 0; i < b; i++) k += !((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174);
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* A tokenizer.json whose vocabulary is the 256 bytes (id = byte) and has
 * no merges, declaring `normalizer`: its ids are the bytes the encoder saw. */
static sd_tokenizer *bytes_tokenizer(json_t *normalizer) {
    json_t *vocab = json_object();
    for (int b = 0; b < 256; b++) {
        char s[3] = {0};
        byte_symbol(b, s);
        json_object_set_new(vocab, s, json_integer(b));
    }
    json_t *root = json_pack("{s:s, s:[], s:o, s:{s:s, s:b, s:b, s:b}, s:{s:s, s:o, s:[]}}", "version", "1.0",
                             "added_tokens", "normalizer", normalizer, "pre_tokenizer", "type", "ByteLevel",
                             "add_prefix_space", 0, "trim_offsets", 0, "use_regex", 1, "model", "type", "BPE",
                             "vocab", vocab, "merges");
    assert_non_null(root);
    char path[64];
    snprintf(path, sizeof path, "/tmp/smdiff_tok_bytes_%d.json", (int)getpid());
    assert_int_equal(json_dump_file(root, path, JSON_COMPACT), 0);
    json_decref(root);
    sd_tokenizer *t = NULL;
    sd_error err = {0};
    int32_t rc = sd_tokenizer_from_hf_json(path, &t, &err);
    unlink(path);
    if (rc) print_message("load: %s\n", err.msg);
    assert_int_equal(rc, SMDIFF_OK);
    return t;
}

static void check_form(const sd_tokenizer *t, const char *field) {
    size_t i;
    json_t *c;
    json_array_foreach(cases(), i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        const char *want = json_string_value(json_object_get(c, field));
        size_t n = 0, wl = strlen(want);
        int32_t *ids = test_tokenize(t, text, strlen(text), 0, &n);
        char *got = malloc(n + 1);
        for (size_t k = 0; k < n; k++) got[k] = (char)ids[k];
        if (n != wl || memcmp(got, want, wl)) fail_msg("%s of case %zu differs from Python's unicodedata", field, i);
        free(got);
        free(ids);
    }
}

static void test_normal_forms(void **state) {
    (void)state;
    static const struct {
        const char *type, *field;
        int32_t form;
    } forms[] = {{"NFC", "nfc", SD_NORM_NFC}, {"NFD", "nfd", SD_NORM_NFD},
                 {"NFKC", "nfkc", SD_NORM_NFKC}, {"NFKD", "nfkd", SD_NORM_NFKD}};
    for (size_t k = 0; k < 4; k++) {
        sd_tokenizer *t = bytes_tokenizer(json_pack("{s:s}", "type", forms[k].type));
        assert_int_equal(sd_tokenizer_normalizer(t), forms[k].form);
        check_form(t, forms[k].field);
        sd_tokenizer_free(t);
    }
    /* a Sequence of one is that one */
    sd_tokenizer *t = bytes_tokenizer(json_pack("{s:s, s:[{s:s}]}", "type", "Sequence", "normalizers", "type", "NFKC"));
    assert_int_equal(sd_tokenizer_normalizer(t), SD_NORM_NFKC);
    check_form(t, "nfkc");
    sd_tokenizer_free(t);
    /* none, and one that is not applied (logged): the text as given */
    json_t *other[] = {json_null(), json_pack("{s:s}", "type", "Lowercase")};
    for (int k = 0; k < 2; k++) {
        t = bytes_tokenizer(other[k]);
        assert_int_equal(sd_tokenizer_normalizer(t), SD_NORM_NONE);
        check_form(t, "text");
        sd_tokenizer_free(t);
    }
}

/* --------------------------------------------- the encoder's pieces */

typedef struct pieces {
    char text[256];
    size_t len;
    int n, stop_after;
} pieces;

static int on_piece(void *user, const char *text, size_t len) {
    pieces *p = user;
    assert_true(p->len + len < sizeof p->text);
    memcpy(p->text + p->len, text, len);
    p->len += len;
    p->n++;
    return p->stop_after && p->n >= p->stop_after ? 7 : 0;
}

/* sd_tokenizer_pretokenize hands out the normalised text, added tokens
 * whole (with SD_TOK_PARSE_SPECIAL); invalid bytes pass through unchanged
 * (each valid run normalised on its own); a callback can stop it. */
static void test_pretokenize(void **state) {
    (void)state;
    sd_tokenizer *t = load_dream();
    const char *s = "e\xcc\x81<|endoftext|>\xcc\x81 x\xff" "e\xcc\x81";
    const char *want = "\xc3\xa9<|endoftext|>\xcc\x81 x\xff\xc3\xa9";
    pieces p = {0};
    sd_error err = {0};
    assert_int_equal(sd_tokenizer_pretokenize(t, s, strlen(s), SD_TOK_PARSE_SPECIAL, on_piece, &p, &err), 0);
    assert_int_equal(p.len, strlen(want));
    assert_memory_equal(p.text, want, p.len);
    /* "<|endoftext|>" is one piece with special-token parsing, text without */
    pieces plain = {0};
    assert_int_equal(sd_tokenizer_pretokenize(t, s, strlen(s), 0, on_piece, &plain, &err), 0);
    assert_int_equal(plain.len, strlen(want));
    assert_memory_equal(plain.text, want, plain.len);
    assert_true(plain.n > p.n);
    pieces q = {0};
    q.stop_after = 2;
    assert_int_equal(sd_tokenizer_pretokenize(t, s, strlen(s), SD_TOK_PARSE_SPECIAL, on_piece, &q, &err), 7);
    assert_int_equal(q.n, 2);
    assert_int_equal(sd_tokenizer_pretokenize(t, NULL, 3, 0, on_piece, &q, &err), -1);
    assert_int_equal(err.code, SMDIFF_E_INVAL);
    assert_int_equal(sd_tokenizer_pretokenize(t, s, 3, 0, NULL, NULL, &err), -1);
    sd_tokenizer_free(t);
}

/* Out of memory inside the normaliser (or anywhere in an encode call):
 * SMDIFF_E_NOMEM, and nothing the call allocated is left behind. */
typedef struct oom_hook {
    long allocs, fail_at; /* fail the allocation with this index; -1 never */
    int failed;
} oom_hook;

static void *oom_alloc(size_t n, void *ud) {
    oom_hook *h = ud;
    if (h->fail_at >= 0 && h->allocs++ == h->fail_at) {
        h->failed = 1;
        return NULL;
    }
    return malloc(n);
}

static void oom_free(void *p, void *ud) {
    (void)ud;
    free(p);
}

static void test_encode_out_of_memory(void **state) {
    (void)state;
    oom_hook h = {0, -1, 0};
    assert_int_equal(smdiff_set_allocator(oom_alloc, oom_free, &h), SMDIFF_OK);
    static char sym[256][3];
    const char *toks[256];
    for (int b = 0; b < 256; b++) {
        byte_symbol(b, sym[b]);
        toks[b] = sym[b];
    }
    sd_tokenizer_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.n_tokens = 256;
    spec.tokens = toks;
    spec.pre = "gpt2";
    spec.normalizer = SD_NORM_NFC;
    spec.bos_id = spec.eos_id = spec.pad_id = spec.mask_id = -1;
    sd_tokenizer *t = NULL;
    sd_error err = {0};
    assert_int_equal(sd_tokenizer_create(&spec, &t, &err), SMDIFF_OK);
    int64_t live = sd_alloc_live();
    const char *text = "Cafe\xcc\x81 de\xcc\x81ja\xcc\x80 vu \xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab\xff"
                       "q\xcc\x87\xcc\xa3 and more text to fill the cache";
    int32_t ids[256];
    size_t n = 0;
    int saw_ok = 0, injected = 0;
    for (long k = 0; !saw_ok; k++) {
        h.allocs = 0, h.fail_at = k, h.failed = 0;
        int32_t rc = sd_tokenizer_encode(t, text, strlen(text), 0, ids, 256, &n, &err);
        if (h.failed) {
            assert_int_equal(rc, SMDIFF_E_NOMEM);
            injected++;
        } else {
            assert_int_equal(rc, SMDIFF_OK);
            saw_ok = 1;
        }
        assert_int_equal(sd_alloc_live(), live);
    }
    assert_true(injected >= 3); /* match data, normaliser buffers, BPE scratch */
    h.fail_at = -1;
    sd_tokenizer_free(t);
    assert_int_equal(smdiff_set_allocator(NULL, NULL, NULL), SMDIFF_OK);
}

/* sd_utf8_normalize cuts the text before stable characters and normalises
 * only the stretches between them: the result must equal utf8proc's
 * normalisation of each whole valid run (invalid bytes kept), on random
 * mixes of the characters where the forms differ. */
static void test_normalize_pieces(void **state) {
    (void)state;
    static const char *const pool[] = {
        "a", "e", " ", "\n", "A", "\xc3\xa9", "\xc3\x85", "\xc2\xbd", "\xc2\xa0",   /* Latin-1 */
        "\xcc\x81", "\xcc\x80", "\xcc\x88", "\xcc\xa3", "\xcc\x87", "\xcd\x82", /* marks */
        "\xe1\x84\x92", "\xe1\x85\xa1", "\xe1\x86\xab", "\xed\x95\x9c",       /* jamo, syllable */
        "\xe0\xad\x87", "\xe0\xac\xbe", "\xe0\xa5\x98", "\xe0\xa4\xbc",       /* Oriya, Devanagari */
        "\xe2\x84\xab", "\xe2\x84\xa6", "\xef\xac\x81", "\xe2\x91\xa0", "\xef\xbc\xa1", /* singletons, compat */
        "\xe4\xbd\xa0", "\xf0\x9f\x91\x8d", "\xe2\x80\x94",                       /* CJK, emoji, dash */
        "\xff", "\xcc", "\x80",                                                          /* invalid */
    };
    static const int32_t forms[] = {SD_NORM_NFC, SD_NORM_NFD, SD_NORM_NFKC, SD_NORM_NFKD};
    static const utf8proc_option_t opts[] = {
        UTF8PROC_STABLE | UTF8PROC_COMPOSE, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE,
        UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT};
    uint64_t r = 0x9E3779B97F4A7C15ull;
    sd_norm_buf nb = {0};
    char text[400], want[4000];
    int iters = 3000;
    for (int it = 0; it < iters; it++) {
        size_t n = 0, len = 1 + it % 40;
        for (size_t k = 0; k < len; k++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            const char *c = pool[r % (sizeof pool / sizeof pool[0])];
            memcpy(text + n, c, strlen(c));
            n += strlen(c);
        }
        int f = it % 4;
        /* expected: whole valid runs through utf8proc_map, invalid bytes kept */
        size_t wl = 0, run = 0, i = 0;
        while (i <= n) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t cl = i < n ? utf8proc_iterate((const uint8_t *)text + i, (utf8proc_ssize_t)(n - i), &cp) : -1;
            if (cl > 0) {
                i += (size_t)cl;
                continue;
            }
            if (i > run) {
                uint8_t *o = NULL;
                utf8proc_ssize_t ol = utf8proc_map((const uint8_t *)text + run, (utf8proc_ssize_t)(i - run), &o, opts[f]);
                assert_true(ol >= 0);
                memcpy(want + wl, o, (size_t)ol);
                wl += (size_t)ol;
                free(o);
            }
            if (i < n) want[wl++] = text[i];
            run = ++i;
        }
        const uint8_t *got = NULL;
        size_t gl = 0;
        assert_int_equal(sd_utf8_normalize(forms[f], (const uint8_t *)text, n, &nb, &got, &gl), 0);
        if (gl != wl || memcmp(got, want, wl)) fail_msg("iteration %d, form %s differs from utf8proc", it, sd_norm_name(forms[f]));
    }
    sd_norm_buf_free(&nb);
}

/* The byte-level alphabet is GPT-2's (checked against the table written
 * out above). */
static void test_bytelevel_alphabet(void **state) {
    (void)state;
    for (int b = 0; b < 256; b++) {
        char want[4], got[4];
        size_t wl = byte_symbol(b, want);
        assert_int_equal(sd_byte_level_char((uint8_t)b, got), wl);
        assert_memory_equal(got, want, wl);
    }
    char sp[4];
    assert_int_equal(sd_byte_level_char(' ', sp), 2);
    assert_memory_equal(sp, "\xc4\xa0", 2); /* U+0120 */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dream_nfc),
        cmocka_unit_test(test_dream_nfc_via_gguf),
        cmocka_unit_test(test_gguf_normalizer_key),
        cmocka_unit_test(test_gpt2_endoftext),
        cmocka_unit_test(test_gpt2_mask_endoftext),
        cmocka_unit_test(test_special_sources),
        cmocka_unit_test(test_normal_forms),
        cmocka_unit_test(test_pretokenize),
        cmocka_unit_test(test_normalize_pieces),
        cmocka_unit_test(test_encode_out_of_memory),
        cmocka_unit_test(test_bytelevel_alphabet),
    };
    return cmocka_run_group_tests_name("tokenizer_parity", tests, setup, teardown);
}
