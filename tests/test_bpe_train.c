/* test_bpe_train.c -- smdiff_tokenizer_train (lib/text/bpe_train.c):
 * merges equal to an independent naive Python trainer
 * (tests/ref/bpe_train_ref.py) on a committed corpus for two
 * pre-tokenizers; exact round trips on the corpus and on random bytes
 * (invalid UTF-8 included); byte-identical output across runs and path
 * orders; every bad argument refused with its own code and message; the
 * progress callback and abort; the `smdiff tokenizer train` and `corpus`
 * commands. */
#ifndef SMDIFF_EXPERIMENTAL /* the Makefile defines it for every test */
#define SMDIFF_EXPERIMENTAL
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "core/error.h"
#include "io/gguf.h"
#include "smdiff/smdiff.h"

#define CORPUS "tests/data/bpe_train/corpus"

static const char *const k_files[] = {
    CORPUS "/colorsys.py",     CORPUS "/graphlib.py", CORPUS "/html___init__.py", CORPUS "/json_encoder.py",
    CORPUS "/secrets.py",      CORPUS "/shlex.py",    CORPUS "/this.py",          CORPUS "/unicode.txt",
};
#define N_FILES (sizeof k_files / sizeof k_files[0])
static const char *const k_specials[] = {"<|endoftext|>", "<|mask|>"};

static char dir[64];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/smdiff_bpe_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A path in the test's folder; each call has its own buffer (a test makes
 * fewer than 32 paths). */
static const char *tmp(const char *name) {
    static char buf[32][256];
    static int k;
    k = (k + 1) % 32;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int32_t train(const char *const *paths, size_t n, size_t vocab, const char *pre,
                     const char *const *specials, size_t n_specials, const char *out) {
    return smdiff_tokenizer_train(paths, n, vocab, pre, specials, n_specials, out, NULL, NULL);
}

/* The merges in the file, compared line by line with a reference file
 * whose first line is a header. */
static void assert_merges_equal(const char *gguf, const char *ref_path) {
    char *ref = test_read_file(ref_path, NULL);
    assert_non_null(ref);
    sd_gguf *g = NULL;
    assert_int_equal(sd_gguf_open(gguf, 0, &g, NULL), SMDIFF_OK);
    uint32_t type;
    uint64_t n = 0;
    assert_int_equal(sd_gguf_get_arr(g, "tokenizer.ggml.merges", &type, &n, NULL), SMDIFF_OK);
    char *line = strchr(ref, '\n') + 1;
    uint64_t i = 0;
    for (; *line; i++) {
        char *end = strchr(line, '\n');
        assert_non_null(end);
        assert_true(i < n);
        sd_gguf_str s;
        assert_int_equal(sd_gguf_arr_str(g, "tokenizer.ggml.merges", i, &s), SMDIFF_OK);
        if (s.len != (uint64_t)(end - line) || memcmp(s.ptr, line, s.len))
            fail_msg("merge %llu: smdiff has \"%.*s\", the reference \"%.*s\"", (unsigned long long)i,
                     (int)s.len, s.ptr, (int)(end - line), line);
        line = end + 1;
    }
    assert_int_equal(i, n);
    sd_gguf_close(g);
    free(ref);
}

static smdiff_model *load(const char *path) {
    smdiff_model *m = NULL;
    assert_int_equal(smdiff_model_create(&m), SMDIFF_OK);
    assert_int_equal(smdiff_model_load_tokenizer(m, path), SMDIFF_OK);
    return m;
}

/* An integer tokenizer key of a GGUF file, the vocabulary size for
 * "n_vocab", -1 if absent. */
static int64_t key(const char *path, const char *k) {
    sd_gguf *g = NULL;
    assert_int_equal(sd_gguf_open(path, 0, &g, NULL), SMDIFF_OK);
    int64_t v = -1;
    uint32_t type;
    uint64_t n;
    if (!strcmp(k, "n_vocab")) {
        assert_int_equal(sd_gguf_get_arr(g, "tokenizer.ggml.tokens", &type, &n, NULL), SMDIFF_OK);
        v = (int64_t)n;
    } else if (sd_gguf_find_key(g, k) >= 0) {
        assert_int_equal(sd_gguf_get_i64(g, k, &v, NULL), SMDIFF_OK);
    }
    sd_gguf_close(g);
    return v;
}

/* decode(encode(text)) == text; returns the number of ids. */
static size_t roundtrip(const smdiff_model *m, const char *text, size_t n) {
    size_t n_ids = 0, n_back = 0;
    int32_t rc = smdiff_model_tokenize(m, text, n, 0, NULL, 0, &n_ids);
    assert_true(rc == SMDIFF_OK || rc == SMDIFF_E_BUFFER);
    int32_t *ids = malloc(sizeof(int32_t) * (n_ids + 1));
    char *back = malloc(n + 1);
    assert_int_equal(smdiff_model_tokenize(m, text, n, 0, ids, n_ids, &n_ids), SMDIFF_OK);
    assert_int_equal(smdiff_model_detokenize(m, ids, n_ids, 0, back, n, &n_back), SMDIFF_OK);
    assert_int_equal(n_back, n);
    assert_memory_equal(back, text, n);
    free(ids);
    free(back);
    return n_ids;
}

static void test_matches_reference_qwen2(void **state) {
    (void)state;
    const char *out = tmp("q.gguf");
    const char *folder = CORPUS;
    assert_int_equal(train(&folder, 1, 1024, "qwen2", k_specials, 2, out), SMDIFF_OK);
    assert_merges_equal(out, "tests/data/bpe_train/merges_qwen2_1024.txt");
    assert_int_equal(key(out, "n_vocab"), 1024);
    assert_int_equal(key(out, "tokenizer.ggml.eos_token_id"), 1022);
    assert_int_equal(key(out, "tokenizer.ggml.mask_token_id"), 1023);
    assert_int_equal(key(out, "tokenizer.ggml.bos_token_id"), -1);
    smdiff_model *m = load(out);
    /* the specials are whole tokens when parsed, and only then */
    int32_t ids[64];
    size_t n = 0;
    assert_int_equal(smdiff_model_tokenize(m, "x<|mask|>", 9, SMDIFF_TOKENIZE_PARSE_SPECIAL, ids, 64, &n), SMDIFF_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[1], 1023);
    assert_int_equal(smdiff_model_tokenize(m, "x<|mask|>", 9, 0, ids, 64, &n), SMDIFF_OK);
    assert_true(n > 2);
    smdiff_model_free(m);
}

static void test_matches_reference_gpt2(void **state) {
    (void)state;
    const char *out = tmp("g.gguf");
    assert_int_equal(train(k_files, N_FILES, 700, "gpt2", NULL, 0, out), SMDIFF_OK);
    assert_merges_equal(out, "tests/data/bpe_train/merges_gpt2_700.txt");
    assert_int_equal(key(out, "n_vocab"), 700);
    assert_int_equal(key(out, "tokenizer.ggml.eos_token_id"), -1);
}

static void test_roundtrip_corpus(void **state) {
    (void)state;
    const char *out = tmp("rt.gguf");
    assert_int_equal(train(k_files, N_FILES, 1024, "qwen2", k_specials, 2, out), SMDIFF_OK);
    smdiff_model *m = load(out);
    size_t bytes = 0, ids = 0;
    for (size_t i = 0; i < N_FILES; i++) {
        size_t n;
        char *text = test_read_file(k_files[i], &n);
        ids += roundtrip(m, text, n);
        bytes += n;
        free(text);
    }
    /* the learned merges are used: over 2.5 bytes per token here
     * (bytes alone would give 1) */
    print_message("corpus: %zu bytes, %zu tokens, %.2f bytes/token\n", bytes, ids, (double)bytes / (double)ids);
    assert_true(2 * bytes > 5 * ids);
    smdiff_model_free(m);
}

static uint64_t rng_next(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void test_roundtrip_random_bytes(void **state) {
    (void)state;
    const char *out = tmp("rb.gguf");
    assert_int_equal(train(k_files, N_FILES, 1024, "qwen2", k_specials, 2, out), SMDIFF_OK);
    smdiff_model *m = load(out);
    size_t n_src;
    char *src = test_read_file(CORPUS "/unicode.txt", &n_src);
    uint64_t s = 12345;
    char buf[4096];
    for (int trial = 0; trial < 300; trial++) {
        size_t n = rng_next(&s) % sizeof buf;
        int mode = trial % 3;
        for (size_t i = 0; i < n; i++) {
            if (mode == 0) buf[i] = (char)rng_next(&s);                      /* any byte */
            else if (mode == 1) buf[i] = (char)(0x80 | rng_next(&s));        /* only high bytes */
            else buf[i] = rng_next(&s) % 8 ? src[rng_next(&s) % n_src]       /* text with holes */
                                            : (char)rng_next(&s);
        }
        roundtrip(m, buf, n);
    }
    /* every single byte, and truncated multi-byte sequences */
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        assert_int_equal(roundtrip(m, &c, 1), 1);
    }
    roundtrip(m, "\xe4\xbd", 2);
    roundtrip(m, "\xf0\x9f\x8e", 3);
    static const char bad[] = "\xed\xa0\x80 surrogate \xc0\xaf overlong";
    roundtrip(m, bad, sizeof bad - 1);
    free(src);
    smdiff_model_free(m);
}

static void test_deterministic(void **state) {
    (void)state;
    const char *a = tmp("d1.gguf"), *b = tmp("d2.gguf"), *c = tmp("d3.gguf");
    assert_int_equal(train(k_files, N_FILES, 900, "qwen2", k_specials, 2, a), SMDIFF_OK);
    assert_int_equal(train(k_files, N_FILES, 900, "qwen2", k_specials, 2, b), SMDIFF_OK);
    /* the paths in reverse order: counts do not depend on the order */
    const char *rev[N_FILES];
    for (size_t i = 0; i < N_FILES; i++) rev[i] = k_files[N_FILES - 1 - i];
    assert_int_equal(train(rev, N_FILES, 900, "qwen2", k_specials, 2, c), SMDIFF_OK);
    size_t na, nb, nc;
    char *x = test_read_file(a, &na), *y = test_read_file(b, &nb), *z = test_read_file(c, &nc);
    assert_int_equal(na, nb);
    assert_memory_equal(x, y, na);
    assert_int_equal(na, nc);
    assert_memory_equal(x, z, na);
    free(x), free(y), free(z);
}

/* rc, a message containing `needle`, and no output file. */
static void expect_fail(int32_t got, int32_t want, const char *needle, const char *out) {
    assert_int_equal(got, want);
    if (!strstr(smdiff_last_error(), needle))
        fail_msg("message \"%s\" does not mention \"%s\"", smdiff_last_error(), needle);
    if (out) assert_int_not_equal(access(out, F_OK), 0);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void test_bad_arguments(void **state) {
    (void)state;
    const char *out = tmp("bad.gguf");
    const char *corpus = CORPUS;
    expect_fail(train(&corpus, 1, 257, "qwen2", k_specials, 2, out), SMDIFF_E_INVAL, "smaller than the 256", out);
    expect_fail(train(&corpus, 1, 255, "qwen2", NULL, 0, out), SMDIFF_E_INVAL, "smaller than the 256", out);
    expect_fail(train(&corpus, 1, (1u << 24) + 1, "qwen2", NULL, 0, out), SMDIFF_E_INVAL, "above the limit", out);
    expect_fail(train(NULL, 1, 300, "qwen2", NULL, 0, out), SMDIFF_E_INVAL, "no corpus", out);
    expect_fail(train(&corpus, 0, 300, "qwen2", NULL, 0, out), SMDIFF_E_INVAL, "no corpus", out);
    expect_fail(train(&corpus, 1, 300, "qwen2", NULL, 2, out), SMDIFF_E_INVAL, "specials is NULL", out);
    expect_fail(train(&corpus, 1, 300, "qwen2", NULL, 0, NULL), SMDIFF_E_INVAL, "no output path", NULL);
    expect_fail(train(&corpus, 1, 300, "bert", NULL, 0, out), SMDIFF_E_UNSUPPORTED, "\"bert\"", out);
    expect_fail(train(&corpus, 1, 300, NULL, NULL, 0, out), SMDIFF_E_UNSUPPORTED, "not known", out);
    const char *dup[] = {"<|mask|>", "<|mask|>"}, *empty[] = {""}, *byte[] = {"a"};
    expect_fail(train(&corpus, 1, 300, "qwen2", dup, 2, out), SMDIFF_E_INVAL, "given twice", out);
    expect_fail(train(&corpus, 1, 300, "qwen2", empty, 1, out), SMDIFF_E_INVAL, "empty", out);
    expect_fail(train(&corpus, 1, 300, "qwen2", byte, 1, out), SMDIFF_E_INVAL, "text of another token", out);

    /* empty corpus: an empty folder, an empty file */
    const char *empty_dir = tmp("empty");
    assert_int_equal(mkdir(empty_dir, 0755), 0);
    expect_fail(train(&empty_dir, 1, 300, "qwen2", NULL, 0, out), SMDIFF_E_INVAL, "empty corpus", out);
    const char *empty_file = tmp("empty.txt");
    write_file(empty_file, "");
    expect_fail(train(&empty_file, 1, 300, "qwen2", NULL, 0, out), SMDIFF_E_INVAL, "empty corpus", out);
    /* too small for the vocabulary asked for: says what it supports */
    const char *small = tmp("small.txt");
    write_file(small, "abcabc abd");
    expect_fail(train(&small, 1, 300, "qwen2", NULL, 0, out), SMDIFF_E_INVAL, "vocabulary size 2", out);
    /* unreadable paths; a FIFO is refused, not waited on */
    const char *missing = tmp("no/such/file");
    expect_fail(train(&missing, 1, 300, "qwen2", NULL, 0, out), SMDIFF_E_IO, missing, out);
    const char *fifo = tmp("fifo");
    assert_int_equal(mkfifo(fifo, 0644), 0);
    expect_fail(train(&fifo, 1, 300, "qwen2", NULL, 0, out), SMDIFF_E_IO, "not a regular file", out);
    /* an unwritable output leaves nothing behind */
    expect_fail(train(&corpus, 1, 300, "qwen2", NULL, 0, tmp("no/such/dir/out.gguf")), SMDIFF_E_IO, "out.gguf",
                NULL);
    /* the smallest vocabulary is valid: bytes and specials, no merge */
    assert_int_equal(train(&corpus, 1, 258, "qwen2", k_specials, 2, out), SMDIFF_OK);
    smdiff_model *m = load(out);
    assert_int_equal(roundtrip(m, "abc", 3), 3);
    smdiff_model_free(m);
}

typedef struct seen {
    size_t calls_read, calls_merge, last_merges, stop_at;
    int monotonic;
} seen;

static int32_t on_progress(const smdiff_tokenizer_train_progress *p, void *ud) {
    seen *s = ud;
    if (p->phase == SMDIFF_TOKENIZER_TRAIN_READING) {
        s->calls_read++;
        if (p->n_documents != s->calls_read) s->monotonic = 0;
    } else {
        s->calls_merge++;
        if (p->n_merges != s->last_merges + 1 || p->n_tokens_target != 500 || p->n_tokens > 500)
            s->monotonic = 0;
        s->last_merges = p->n_merges;
    }
    return s->stop_at && s->calls_merge == s->stop_at;
}

static void test_progress_and_abort(void **state) {
    (void)state;
    seen s = {0, 0, 0, 0, 1};
    const char *corpus = CORPUS, *out = tmp("p.gguf");
    assert_int_equal(smdiff_tokenizer_train(&corpus, 1, 502, "qwen2", k_specials, 2, out, on_progress, &s), SMDIFF_OK);
    assert_true(s.monotonic);
    assert_int_equal(s.calls_read, N_FILES);
    assert_int_equal(s.calls_merge, s.last_merges);
    assert_true(s.calls_merge >= 244);
    seen stop = {0, 0, 0, 10, 1};
    const char *out2 = tmp("p2.gguf");
    expect_fail(smdiff_tokenizer_train(&corpus, 1, 502, "qwen2", k_specials, 2, out2, on_progress, &stop),
                SMDIFF_E_ABORTED, "progress callback", out2);
    assert_int_equal(stop.calls_merge, 10);
}

static void test_cli(void **state) {
    (void)state;
    const char *cli = test_cli_path();
    if (!cli) SKIP_BECAUSE("the smdiff CLI is not built");
    char cmd[1024], outbuf[4096];
    const char *api = tmp("api.gguf"), *cmdline = tmp("cli.gguf");
    assert_int_equal(train(k_files, N_FILES, 800, "qwen2", k_specials, 2, api), SMDIFF_OK);
    snprintf(cmd, sizeof cmd, "%s tokenizer train --vocab-size 800 -o %s %s 2>&1", cli, cmdline, CORPUS);
    assert_int_equal(test_run(cmd, outbuf, sizeof outbuf), 0);
    assert_non_null(strstr(outbuf, "<|mask|>=799"));
    size_t na, nb;
    char *x = test_read_file(api, &na), *y = test_read_file(cmdline, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(x, y, na);
    free(x), free(y);
    /* the corpus's token file: one document per file, EOS (798) after each */
    const char *i32 = tmp("c.i32");
    snprintf(cmd, sizeof cmd, "%s tokenizer corpus -t %s -o %s %s 2>&1", cli, api, i32, CORPUS);
    assert_int_equal(test_run(cmd, outbuf, sizeof outbuf), 0);
    size_t nt;
    int32_t *ids = test_read_file(i32, &nt);
    nt /= 4;
    size_t n_eos = 0;
    for (size_t i = 0; i < nt; i++) n_eos += ids[i] == 798;
    assert_int_equal(n_eos, N_FILES);
    assert_int_equal(ids[nt - 1], 798);
    free(ids);
    snprintf(cmd, sizeof cmd, "%s tokenizer corpus -t %s --eos '<|nope|>' -o %s %s 2>&1", cli, api, i32, CORPUS);
    assert_int_equal(test_run(cmd, outbuf, sizeof outbuf), 1);
    assert_non_null(strstr(outbuf, "not a single token"));
    snprintf(cmd, sizeof cmd, "%s tokenizer train --vocab-size 800 %s 2>&1", cli, CORPUS);
    assert_int_equal(test_run(cmd, outbuf, sizeof outbuf), 2);
    snprintf(cmd, sizeof cmd, "%s tokenizer train --vocab-size 12 -o %s %s 2>&1", cli, tmp("x.gguf"), CORPUS);
    assert_int_equal(test_run(cmd, outbuf, sizeof outbuf), 1);
    assert_non_null(strstr(outbuf, "SMDIFF_E_INVAL"));
    snprintf(cmd, sizeof cmd, "%s tokenizer frobnicate 2>&1", cli);
    assert_int_equal(test_run(cmd, outbuf, sizeof outbuf), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference_qwen2),
        cmocka_unit_test(test_matches_reference_gpt2),
        cmocka_unit_test(test_roundtrip_corpus),
        cmocka_unit_test(test_roundtrip_random_bytes),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_progress_and_abort),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
