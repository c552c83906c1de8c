/* test_safetensors.c -- safetensors reader: fixtures written by hand by
 * tests/ref/make_hf_fixture.py (NumPy, no safetensors package), sharded
 * directories, and hostile headers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "io/safetensors.h"

#define DATA "tests/data/"

static void test_misc_file(void **state) {
    (void)state;
    sd_st *st = NULL;
    sd_error err = {0};
    int32_t rc = sd_st_open(DATA "st_misc.safetensors", &st, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_int_equal(sd_st_n_tensors(st), 5);  /* __metadata__ is not a tensor */
    const sd_st_tensor *a = sd_st_find(st, "a");
    assert_non_null(a);
    assert_int_equal(a->dtype, SD_ST_F32);
    assert_int_equal(a->n_dims, 2);
    assert_true(a->shape[0] == 2 && a->shape[1] == 3 && a->n_elements == 6 && a->n_bytes == 24);
    float f[6];
    assert_int_equal(sd_st_to_f32(a, f, &err), 0);
    for (int i = 0; i < 6; i++) assert_true(f[i] == (float)i * 0.5f - 1.0f);
    const sd_st_tensor *b = sd_st_find(st, "b");
    assert_int_equal(b->dtype, SD_ST_F16);
    assert_int_equal(sd_st_to_f32(b, f, &err), 0);
    assert_true(f[0] == 1.0f && f[1] == -2.0f && f[2] == 65504.0f && f[3] == ldexpf(1, -24));
    const sd_st_tensor *c = sd_st_find(st, "c");
    assert_int_equal(c->dtype, SD_ST_BF16);
    assert_int_equal(sd_st_to_f32(c, f, &err), 0);
    assert_true(f[0] == 1.0f && f[1] == -0.5f && f[2] == 3.0f && f[3] == 0.25f);
    const sd_st_tensor *d = sd_st_find(st, "d");
    assert_int_equal(d->dtype, SD_ST_I64);
    int64_t iv[3];
    memcpy(iv, d->data, 24);
    assert_true(iv[0] == 1 && iv[1] == -2 && iv[2] == (INT64_C(1) << 40));
    assert_int_equal(sd_st_to_f32(d, f, &err), SMDIFF_E_UNSUPPORTED);
    const sd_st_tensor *e = sd_st_find(st, "e");
    assert_true(e->n_elements == 0 && e->n_bytes == 0 && e->shape[1] == 5);
    assert_null(sd_st_find(st, "__metadata__"));
    assert_null(sd_st_tensor_at(st, 5));
    sd_st_close(st);
}

static void test_truncated_every_byte(void **state) {
    (void)state;
    size_t n;
    uint8_t *full = test_read_file(DATA "st_misc.safetensors", &n);
    assert_non_null(full);
    for (size_t k = 0; k < n; k++) {
        void *c = malloc(k ? k : 1);
        memcpy(c, full, k);
        sd_st *st = NULL;
        sd_error err = {0};
        int32_t rc = sd_st_open_memory(c, k, &st, &err);
        if (rc != SMDIFF_E_FORMAT) fail_msg("cut at %zu of %zu: rc %d", k, n, rc);
        assert_null(st);
        free(c);
    }
    free(full);
}

static void test_dream_sharded_dir(void **state) {
    (void)state;
    sd_st *st = NULL, *exp = NULL;
    sd_error err = {0};
    int32_t rc = sd_st_open_dir(DATA "hf_dream_tiny", &st, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_int_equal(sd_st_n_tensors(st), 27);
    const sd_st_tensor *t = sd_st_find(st, "model.layers.1.mlp.down_proj.weight");
    assert_non_null(t);
    assert_string_equal(t->file, "model-00002-of-00002.safetensors");
    assert_true(t->dtype == SD_ST_BF16 && t->shape[0] == 32 && t->shape[1] == 48);
    t = sd_st_find(st, "model.embed_tokens.weight");
    assert_string_equal(t->file, "model-00001-of-00002.safetensors");
    /* bf16 values equal the f32 the script wrote beside them. */
    rc = sd_st_open(DATA "hf_dream_tiny_expected.safetensors", &exp, &err);
    if (rc) fail_msg("%s", err.msg);
    const sd_st_tensor *e = sd_st_find(exp, "token_embd.weight");
    float *a = malloc(64 * 32 * 4), *b = malloc(64 * 32 * 4);
    assert_int_equal(sd_st_to_f32(t, a, &err), 0);
    assert_int_equal(sd_st_to_f32(e, b, &err), 0);
    assert_memory_equal(a, b, 64 * 32 * 4);
    free(a);
    free(b);
    sd_st_close(exp);
    sd_st_close(st);
    rc = sd_st_open_dir(DATA "hf_llada_tiny", &st, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_int_equal(sd_st_n_tensors(st), 21);
    assert_non_null(sd_st_find(st, "model.transformer.blocks.1.ff_out.weight"));
    sd_st_close(st);
    assert_int_equal(sd_st_open_dir("/nonexistent_smdiff", &st, &err), SMDIFF_E_IO);
    assert_int_equal(sd_st_open(DATA "nonexistent.safetensors", &st, &err), SMDIFF_E_IO);
}

/* Build a file from a header string and n data bytes, expect a failure. */
static void expect_bad(const char *json, size_t data, uint64_t hlen_override, const char *needle) {
    size_t hl = strlen(json);
    size_t n = 8 + hl + data;
    uint8_t *p = calloc(1, n);
    uint64_t h = hlen_override ? hlen_override : hl;
    memcpy(p, &h, 8);
    memcpy(p + 8, json, hl);
    sd_st *st = NULL;
    sd_error err = {0};
    int32_t rc = sd_st_open_memory(p, n, &st, &err);
    if (rc != SMDIFF_E_FORMAT || !strstr(err.msg, needle))
        fail_msg("expected SMDIFF_E_FORMAT with '%s' for %s: rc %d, %s", needle, json, rc, err.msg);
    assert_null(st);
    free(p);
}

static void test_hostile(void **state) {
    (void)state;
    const char *ok = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    size_t hl = strlen(ok);
    uint8_t buf[256];
    uint64_t h = hl;
    memcpy(buf, &h, 8);
    memcpy(buf + 8, ok, hl);
    memset(buf + 8 + hl, 0, 8);
    sd_st *st = NULL;
    sd_error err = {0};
    assert_int_equal(sd_st_open_memory(buf, 16 + hl, &st, &err), 0);
    sd_st_close(st);

    expect_bad(ok, 8, UINT64_MAX, "exceeds the 100 MB limit");
    expect_bad(ok, 8, 1000, "does not fit");
    expect_bad("{\"x\":", 0, 0, "JSON invalid");
    expect_bad("[1,2]", 0, 0, "not a JSON object");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0, "JSON invalid");
    expect_bad("{\"x\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, "unknown dtype 'Q4'");
    expect_bad("{\"x\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, "dtype missing");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, 0, "shape[0]");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, 0, "shape[0]");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[1,2,3,4,5,6,7,8,9],\"data_offsets\":[0,8]}}", 8, 0, "over 8 dims");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, 0, "begin <= end");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, 0, "data_offsets missing");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, 0,
               "data_offsets [0, 16] past the end of the data area (8 bytes)");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0, "shape x F32 needs 12");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, 0,
               "overflow");
    expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9223372036854775807]}}", 8, 0, "past the end");
    expect_bad("{\"x\":3}", 0, 0, "not an object");
    expect_bad("{\"__metadata__\":[]}", 0, 0, "__metadata__");
}

static void test_hostile_index(void **state) {
    (void)state;
    char dir[128], p[256];
    snprintf(dir, sizeof dir, "/tmp/smdiff_test_st.%d", (int)getpid());
    mkdir(dir, 0700);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    sd_st *st = NULL;
    sd_error err = {0};
    const char *bad[] = {
        "{\"weight_map\":{\"x\":\"../etc/passwd\"}}",
        "{\"weight_map\":{\"x\":\"/etc/passwd\"}}",
        "{\"weight_map\":{\"x\":\"..\"}}",
        "{\"weight_map\":[]}",
        "not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(p, "w");
        fputs(bad[i], f);
        fclose(f);
        int32_t rc = sd_st_open_dir(dir, &st, &err);
        if (rc != SMDIFF_E_FORMAT) fail_msg("%s: rc %d %s", bad[i], rc, err.msg);
    }
    /* An index naming a tensor its shard lacks. */
    char shard[300];
    snprintf(shard, sizeof shard, "%s/s1.safetensors", dir);
    FILE *f = fopen(shard, "wb");
    const char *hj = "{\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    uint64_t hl = strlen(hj);
    fwrite(&hl, 8, 1, f);
    fputs(hj, f);
    fwrite("\0\0\0\0", 1, 4, f);
    fclose(f);
    f = fopen(p, "w");
    fputs("{\"weight_map\":{\"x\":\"s1.safetensors\"}}", f);
    fclose(f);
    assert_int_equal(sd_st_open_dir(dir, &st, &err), SMDIFF_E_FORMAT);
    assert_non_null(strstr(err.msg, "'x' is not in shard"));
    f = fopen(p, "w");
    fputs("{\"weight_map\":{\"y\":\"s1.safetensors\"}}", f);
    fclose(f);
    assert_int_equal(sd_st_open_dir(dir, &st, &err), 0);
    sd_st_close(st);
    f = fopen(p, "w");
    fputs("{\"weight_map\":{\"y\":\"s2.safetensors\"}}", f);
    fclose(f);
    assert_int_equal(sd_st_open_dir(dir, &st, &err), SMDIFF_E_IO);
    unlink(p);
    unlink(shard);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_misc_file),
        cmocka_unit_test(test_truncated_every_byte),
        cmocka_unit_test(test_dream_sharded_dir),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_hostile_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
