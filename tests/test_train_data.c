/* test_train_data.c -- corpus to token stream (lib/train/data.c) with a
 * stand-in tokenizer (one id per byte, or three to force the two-call
 * path): document order (sorted, recursive, hidden entries skipped, empty
 * files skipped), EOS after each document, the token file round trip, and
 * errors (missing path, empty corpus, a failing tokenizer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "core/alloc.h"
#include "train/data.h"

static char dir[256];

/* id = byte + 1 (EOS is 0); `ud` points to ids per byte */
static int32_t byte_tok(void *ud, const char *text, size_t n, int32_t *out, size_t cap, size_t *n_out) {
    int rep = *(int *)ud;
    *n_out = n * (size_t)rep;
    if (cap < *n_out) return SMDIFF_E_BUFFER;
    for (size_t i = 0; i < n; i++)
        for (int r = 0; r < rep; r++) out[i * (size_t)rep + (size_t)r] = (unsigned char)text[i] + 1;
    return SMDIFF_OK;
}

static int32_t failing_tok(void *ud, const char *text, size_t n, int32_t *out, size_t cap, size_t *n_out) {
    (void)ud, (void)text, (void)n, (void)out, (void)cap;
    *n_out = 0;
    return SMDIFF_E_UNSUPPORTED;
}

static void put(const char *rel, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_walk_and_tokens(void **state) {
    (void)state;
    char sub[300], p[300];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    mkdir(sub, 0755);
    put("b.txt", "hi");
    put("a.txt", "abc");
    put("sub/c.txt", "x");
    put(".hidden", "zzz");
    put("empty.txt", "");
    const char *paths[1] = {dir};
    for (int rep = 1; rep <= 3; rep += 2) {
        int32_t *tok = NULL;
        int64_t n = 0, docs = 0;
        sd_error err = {0};
        assert_int_equal(sd_data_tokenize_paths(paths, 1, byte_tok, &rep, 0, &tok, &n, &docs, &err), 0);
        assert_int_equal(docs, 3);
        const char *want = "abc\0hi\0x\0";
        assert_int_equal(n, (int64_t)(6 * rep + 3));
        int64_t k = 0;
        for (int i = 0; i < 9; i++) {
            if (want[i] == 0) {
                assert_int_equal(tok[k++], 0);
                continue;
            }
            for (int r = 0; r < rep; r++) assert_int_equal(tok[k++], (unsigned char)want[i] + 1);
        }
        if (rep == 1) {
            snprintf(p, sizeof p, "%s/out.i32", dir);
            assert_int_equal(sd_data_write_tokens(p, tok, n, &err), 0);
            FILE *f = fopen(p, "rb");
            unsigned char b[36];
            assert_int_equal(fread(b, 1, 36, f), 36);
            assert_int_equal(fgetc(f), EOF);
            fclose(f);
            for (int i = 0; i < 9; i++)
                assert_int_equal(b[4 * i] | b[4 * i + 1] << 8 | b[4 * i + 2] << 16 | b[4 * i + 3] << 24, tok[i]);
            unlink(p);
        }
        sd_free(tok);
    }
    /* a file given directly, twice: two documents */
    snprintf(p, sizeof p, "%s/a.txt", dir);
    const char *two[2] = {p, p};
    int rep = 1;
    int32_t *tok = NULL;
    int64_t n = 0;
    assert_int_equal(sd_data_tokenize_paths(two, 2, byte_tok, &rep, 7, &tok, &n, NULL, NULL), 0);
    assert_int_equal(n, 8);
    assert_int_equal(tok[3], 7);
    assert_int_equal(tok[7], 7);
    sd_free(tok);
}

static void test_errors(void **state) {
    (void)state;
    int rep = 1;
    int32_t *tok = (int32_t *)1;
    int64_t n = 5;
    sd_error err = {0};
    const char *missing[1] = {"no/such/corpus"};
    assert_int_equal(sd_data_tokenize_paths(missing, 1, byte_tok, &rep, 0, &tok, &n, NULL, &err), SMDIFF_E_IO);
    assert_non_null(strstr(err.msg, "no/such/corpus"));
    char empty[300];
    snprintf(empty, sizeof empty, "%s/emptydir", dir);
    mkdir(empty, 0755);
    const char *e[1] = {empty};
    assert_int_equal(sd_data_tokenize_paths(e, 1, byte_tok, &rep, 0, &tok, &n, NULL, &err), SMDIFF_E_INVAL);
    assert_non_null(strstr(err.msg, "empty corpus"));
    assert_null(tok);
    rmdir(empty);
    const char *paths[1] = {dir};
    assert_int_equal(sd_data_tokenize_paths(paths, 1, failing_tok, NULL, 0, &tok, &n, NULL, &err),
                     SMDIFF_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "tokenizing"));
    assert_int_equal(sd_data_tokenize_paths(paths, 1, byte_tok, &rep, -1, &tok, &n, NULL, &err), SMDIFF_E_INVAL);
    int32_t t[2] = {1, 2};
    assert_int_equal(sd_data_write_tokens("no/such/dir/t.i32", t, 2, &err), SMDIFF_E_IO);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/smdiff_test_data_%d", (int)getpid());
    mkdir(dir, 0755);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk_and_tokens),
        cmocka_unit_test(test_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) rc = 1;
    return rc;
}
