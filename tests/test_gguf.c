/* test_gguf.c -- GGUF reader, writer, type conversions, hostile files.
 *
 * Expected values are hand-computed (f16/bf16/q8_0 blocks), taken from an
 * independent parse of the real llama.cpp vocab files (key counts and array
 * lengths listed by a 30-line Python struct reader), or are properties that
 * do not depend on the code under test (every truncation must fail).
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "core/alloc.h"
#include "io/gguf.h"

#define VOCAB_DIR "tests/data/tokenizers/llama.cpp-vocab/"

static int str_eq(sd_gguf_str s, const char *c) { return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0; }

static float bits_f32(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* ------------------------------------------------------------ byte builder */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bb;

static void bb_put(bb *b, const void *s, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}
static void bb_u32(bb *b, uint32_t v) { bb_put(b, &v, 4); }
static void bb_u64(bb *b, uint64_t v) { bb_put(b, &v, 8); }
static void bb_str(bb *b, const char *s) {
    bb_u64(b, strlen(s));
    bb_put(b, s, strlen(s));
}
static void bb_pad(bb *b, size_t a) {
    static const uint8_t z[64];
    while (b->len % a) bb_put(b, z, 1);
}
static void bb_header(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    bb_put(b, "GGUF", 4);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}

static void expect_format(const bb *b, const char *needle) {
    sd_gguf *g = NULL;
    sd_error err = {0};
    void *c = malloc(b->len ? b->len : 1);
    memcpy(c, b->p, b->len);
    int32_t rc = sd_gguf_open_memory(c, b->len, &g, &err);
    if (rc != SMDIFF_E_FORMAT || !strstr(err.msg, needle))
        fail_msg("expected SMDIFF_E_FORMAT mentioning '%s', got %d: %s", needle, rc, err.msg);
    assert_null(g);
    free(c);
}

/* ----------------------------------------------------------- conversions */

static void test_f16_to_f32_hand(void **state) {
    (void)state;
    assert_true(sd_f16_to_f32(0x3c00) == 1.0f);
    assert_true(sd_f16_to_f32(0xc000) == -2.0f);
    assert_true(sd_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(sd_f16_to_f32(0x3555) == 0.333251953125f);      /* 1365/4096 */
    assert_true(sd_f16_to_f32(0x0400) == ldexpf(1.0f, -14));    /* smallest normal */
    assert_true(sd_f16_to_f32(0x0001) == ldexpf(1.0f, -24));    /* smallest subnormal */
    assert_true(sd_f16_to_f32(0x03ff) == ldexpf(1023.0f, -24)); /* largest subnormal */
    assert_true(sd_f16_to_f32(0x8001) == -ldexpf(1.0f, -24));
    float nz = sd_f16_to_f32(0x8000);
    assert_true(nz == 0.0f && signbit(nz));
    assert_true(isinf(sd_f16_to_f32(0x7c00)) && sd_f16_to_f32(0x7c00) > 0);
    assert_true(isinf(sd_f16_to_f32(0xfc00)) && sd_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(sd_f16_to_f32(0x7e00)));
    assert_true(isnan(sd_f16_to_f32(0x7c01)));  /* signalling payload stays nan */
    /* All 65536 halves: fast == field-by-field == the value from the IEEE
     * definition (ldexp), bit for bit; a nan stays a nan of the same sign
     * (the fast path may quiet a signalling nan). */
    for (uint32_t h = 0; h < 65536; h++) {
        float fast = sd_f16_to_f32((uint16_t)h), ref = sd_f16_to_f32_ref((uint16_t)h);
        uint32_t fb, rb;
        memcpy(&fb, &fast, 4);
        memcpy(&rb, &ref, 4);
        if (isnan(ref) ? !(isnan(fast) && signbit(fast) == signbit(ref)) : fb != rb)
            fail_msg("f16 0x%04x: fast 0x%08x, reference 0x%08x", h, fb, rb);
        uint32_t e = (h >> 10) & 31, m = h & 1023;
        float def = e == 31 ? (m ? NAN : INFINITY) : e ? ldexpf(1.0f + (float)m / 1024.0f, (int)e - 15)
                                                       : ldexpf((float)m, -24);
        if (h & 0x8000) def = -def;
        if (e == 31 && m) assert_true(isnan(fast));
        else if (fast != def || signbit(fast) != signbit(def)) fail_msg("f16 0x%04x: %g, IEEE says %g", h, fast, def);
    }
}

static void test_f32_to_f16_hand(void **state) {
    (void)state;
    assert_int_equal(sd_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(sd_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(sd_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(sd_f32_to_f16(65519.0f), 0x7bff);      /* below the midpoint 65520 */
    assert_int_equal(sd_f32_to_f16(65520.0f), 0x7c00);      /* tie, rounds to even = inf */
    assert_int_equal(sd_f32_to_f16(1e6f), 0x7c00);
    assert_int_equal(sd_f32_to_f16(-1e6f), 0xfc00);
    assert_int_equal(sd_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);      /* tie -> even */
    assert_int_equal(sd_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);  /* tie -> even (up) */
    assert_int_equal(sd_f32_to_f16(1.0f + ldexpf(1, -11) + ldexpf(1, -20)), 0x3c01);  /* above tie */
    assert_int_equal(sd_f32_to_f16(ldexpf(1, -24)), 0x0001);
    assert_int_equal(sd_f32_to_f16(ldexpf(1, -25)), 0x0000);             /* tie with 0 -> 0 */
    assert_int_equal(sd_f32_to_f16(ldexpf(3, -26)), 0x0001);             /* 0.75 ulp -> 1 */
    assert_int_equal(sd_f32_to_f16(ldexpf(3, -25)), 0x0002);             /* 1.5 ulp tie -> 2 */
    assert_int_equal(sd_f32_to_f16(ldexpf(5, -25)), 0x0002);             /* 2.5 ulp tie -> 2 */
    assert_int_equal(sd_f32_to_f16(ldexpf(1023, -24)), 0x03ff);
    assert_int_equal(sd_f32_to_f16(ldexpf(2047, -25)), 0x0400);          /* rounds up into normal */
    assert_int_equal(sd_f32_to_f16(1e-10f), 0x0000);
    assert_int_equal(sd_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(sd_f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(sd_f32_to_f16(-INFINITY), 0xfc00);
    uint16_t n = sd_f32_to_f16(NAN);
    assert_true((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
    n = sd_f32_to_f16(bits_f32(0x7f800001u));  /* nan with a payload lost in the shift */
    assert_true((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
    /* Every finite half survives f16 -> f32 -> f16 exactly. */
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
        assert_int_equal(sd_f32_to_f16(sd_f16_to_f32((uint16_t)h)), h);
    }
}

static void test_bf16_hand(void **state) {
    (void)state;
    assert_int_equal(sd_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(sd_f32_to_bf16(bits_f32(0x3f808000u)), 0x3f80);  /* tie -> even */
    assert_int_equal(sd_f32_to_bf16(bits_f32(0x3f818000u)), 0x3f82);  /* tie -> even (up) */
    assert_int_equal(sd_f32_to_bf16(bits_f32(0x3f808001u)), 0x3f81);  /* above tie */
    assert_int_equal(sd_f32_to_bf16(bits_f32(0x3f807fffu)), 0x3f80);  /* below tie */
    assert_int_equal(sd_f32_to_bf16(bits_f32(0x7f7fffffu)), 0x7f80);  /* FLT_MAX rounds to inf */
    assert_int_equal(sd_f32_to_bf16(-INFINITY), 0xff80);
    assert_int_equal(sd_f32_to_bf16(bits_f32(0x7f800001u)), 0x7fc0);  /* snan -> quiet nan, not inf */
    assert_int_equal(sd_f32_to_bf16(bits_f32(0xffc00000u)), 0xffc0);
    assert_int_equal(sd_f32_to_bf16(bits_f32(0x00010000u)), 0x0001);  /* subnormal kept */
    assert_true(sd_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(sd_bf16_to_f32(0xc0a0) == -5.0f);
    assert_true(sd_bf16_to_f32(0x3e80) == 0.25f);
}

static void test_q8_0_hand(void **state) {
    (void)state;
    /* Dequantise a hand-made block: d = 0.5 (f16 0x3800). */
    uint8_t blk[34] = {0x00, 0x38};
    int8_t q[32] = {-128, 127, 1, -1, 0, 5};
    memcpy(blk + 2, q, 32);
    float out[32];
    sd_ggml_to_f32(SD_GGML_Q8_0, blk, out, 32);
    assert_true(out[0] == -64.0f && out[1] == 63.5f && out[2] == 0.5f && out[3] == -0.5f);
    assert_true(out[4] == 0.0f && out[5] == 2.5f && out[31] == 0.0f);

    /* Quantise x_j = j - 16: amax 16, d = 16/127 -> f16 0x3008 (0.1259765625);
     * q_j = round((j-16) * 127/16): j=0 -> -127, 17 -> 8, 31 -> round(119.06) = 119,
     * 18 -> round(15.875) = 16, 8 -> round(-63.5) = -64 (half away from zero). */
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    uint8_t enc[34];
    sd_ggml_from_f32(SD_GGML_Q8_0, x, enc, 32);
    assert_int_equal(enc[0], 0x08);
    assert_int_equal(enc[1], 0x30);
    assert_int_equal((int8_t)enc[2 + 0], -127);
    assert_int_equal((int8_t)enc[2 + 16], 0);
    assert_int_equal((int8_t)enc[2 + 17], 8);
    assert_int_equal((int8_t)enc[2 + 18], 16);
    assert_int_equal((int8_t)enc[2 + 8], -64);
    assert_int_equal((int8_t)enc[2 + 31], 119);
    sd_ggml_to_f32(SD_GGML_Q8_0, enc, out, 32);
    assert_true(out[0] == -127 * 0.1259765625f);
    /* An all-zero block has d = 0 and zero quants (no division by zero). */
    float z[32] = {0};
    sd_ggml_from_f32(SD_GGML_Q8_0, z, enc, 32);
    for (int j = 0; j < 34; j++) assert_int_equal(enc[j], 0);

    /* Sizes of the block formats (computed with since issue 15) and of types we parse only. */
    assert_int_equal(sd_ggml_type_size(SD_GGML_Q8_0, 64), 68);
    assert_int_equal(sd_ggml_type_size(SD_GGML_Q8_0, 33), 0);
    assert_int_equal(sd_ggml_type_size(12 /* Q4_K */, 512), 288);
    assert_int_equal(sd_ggml_type_size(14 /* Q6_K */, 256), 210);
    assert_int_equal(sd_ggml_type_size(2 /* Q4_0 */, 32), 18);
    assert_int_equal(sd_ggml_type_size(4 /* removed */, 32), 0);
    assert_int_equal(sd_ggml_type_size(1000, 32), 0);
    assert_string_equal(sd_ggml_type_name(SD_GGML_BF16), "BF16");
    assert_true(sd_ggml_is_supported(12));
    assert_false(sd_ggml_is_supported(16 /* IQ2_XXS */));
    float nanbuf[256];
    sd_ggml_to_f32(16, blk, nanbuf, 0);  /* n = 0: touches nothing */
}

static void test_f16_bf16_arrays(void **state) {
    (void)state;
    float x[4] = {1.0f, -0.5f, 65504.0f, ldexpf(1, -24)};
    uint16_t h[4];
    float y[4];
    sd_ggml_from_f32(SD_GGML_F16, x, h, 4);
    assert_int_equal(h[0], 0x3c00);
    assert_int_equal(h[1], 0xb800);
    assert_int_equal(h[2], 0x7bff);
    assert_int_equal(h[3], 0x0001);
    sd_ggml_to_f32(SD_GGML_F16, h, y, 4);
    for (int i = 0; i < 4; i++) assert_true(x[i] == y[i]);
    sd_ggml_from_f32(SD_GGML_BF16, x, h, 4);
    assert_int_equal(h[0], 0x3f80);
    assert_int_equal(h[1], 0xbf00);
    assert_int_equal(h[2], 0x4780);  /* 65504 = 0x477fe000 rounds up to 65536 */
}

/* ---------------------------------------------------------- real files */

/* vocab-only GGUFs written by llama.cpp (tests/data/SOURCES.md) */
static void need_file(const char *path) {
    if (access(path, R_OK) != 0) fail_msg("%s: test fixture missing", path);
}

static void check_gpt2_vocab(int use_mmap) {
    need_file(VOCAB_DIR "ggml-vocab-gpt-2.gguf");
    sd_gguf *g = NULL;
    sd_error err = {0};
    int32_t rc = sd_gguf_open(VOCAB_DIR "ggml-vocab-gpt-2.gguf", use_mmap, &g, &err);
    if (rc) fail_msg("open: %s", err.msg);
    assert_int_equal(sd_gguf_version(g), 3);
    assert_int_equal(sd_gguf_n_kv(g), 16);
    assert_int_equal(sd_gguf_n_tensors(g), 0);
    assert_int_equal(sd_gguf_alignment(g), 32);
    assert_true(str_eq(sd_gguf_key(g, 0), "general.architecture"));
    sd_gguf_str s;
    assert_int_equal(sd_gguf_get_str(g, "general.architecture", &s, &err), 0);
    assert_true(str_eq(s, "gpt2"));
    assert_int_equal(sd_gguf_get_str(g, "tokenizer.ggml.pre", &s, &err), 0);
    assert_true(str_eq(s, "gpt-2"));
    uint32_t et;
    uint64_t n;
    assert_int_equal(sd_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, &err), 0);
    assert_int_equal(et, SD_GGUF_STRING);
    assert_int_equal(n, 50257);
    assert_int_equal(sd_gguf_arr_str(g, "tokenizer.ggml.tokens", 0, &s), 0);
    assert_true(str_eq(s, "!"));
    assert_int_equal(sd_gguf_arr_str(g, "tokenizer.ggml.tokens", 50256, &s), 0);
    assert_true(str_eq(s, "<|endoftext|>"));
    assert_int_equal(sd_gguf_arr_str(g, "tokenizer.ggml.tokens", 50257, &s), SMDIFF_E_RANGE);
    assert_int_equal(sd_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &n, &err), 0);
    assert_int_equal(n, 50000);
    assert_int_equal(sd_gguf_arr_str(g, "tokenizer.ggml.merges", 0, &s), 0);
    assert_true(str_eq(s, "\xc4\xa0 t"));  /* "Ġ t" */
    int64_t tt;
    assert_int_equal(sd_gguf_arr_i64(g, "tokenizer.ggml.token_type", 50256, &tt), 0);
    assert_int_equal(tt, 3);
    assert_int_equal(sd_gguf_arr_i64(g, "tokenizer.ggml.token_type", 0, &tt), 0);
    assert_int_equal(tt, 1);
    uint64_t u;
    assert_int_equal(sd_gguf_get_u64(g, "tokenizer.ggml.bos_token_id", &u, &err), 0);
    assert_int_equal(u, 50256);
    assert_int_equal(sd_gguf_get_u64(g, "gpt2.context_length", &u, &err), 0);
    assert_int_equal(u, 1024);
    double eps;
    assert_int_equal(sd_gguf_get_f64(g, "gpt2.attention.layer_norm_epsilon", &eps, &err), 0);
    assert_true(fabs(eps - 1e-5) < 1e-11);
    assert_int_equal(sd_gguf_get_u64(g, "no.such.key", &u, &err), SMDIFF_E_NOT_FOUND);
    assert_int_equal(sd_gguf_get_u64(g, "general.name", &u, &err), SMDIFF_E_FORMAT);
    assert_int_equal(sd_gguf_arr_i64(g, "tokenizer.ggml.tokens", 0, &tt), SMDIFF_E_FORMAT);
    /* Text form, for `smdiff info`. */
    char buf[256];
    size_t need = 0;
    int64_t k = sd_gguf_find_key(g, "tokenizer.ggml.tokens");
    assert_true(k >= 0);
    assert_int_equal(sd_gguf_value_text(g, k, buf, sizeof buf, &need), 0);
    assert_string_equal(buf, "[\"!\", \"\"\", \"#\", \"$\", \"%\", \"&\", \"'\", \"(\", ... (50257 items)]");
    assert_int_equal(sd_gguf_value_text(g, k, buf, 5, &need), SMDIFF_E_BUFFER);
    assert_int_equal(need, strlen("[\"!\", \"\"\", \"#\", \"$\", \"%\", \"&\", \"'\", \"(\", ... (50257 items)]") + 1);
    assert_int_equal(sd_gguf_value_text(g, sd_gguf_find_key(g, "gpt2.block_count"), buf, sizeof buf, NULL), 0);
    assert_string_equal(buf, "12");
    sd_gguf_close(g);
}

static void test_real_gpt2_mmap(void **state) { (void)state; check_gpt2_vocab(1); }
static void test_real_gpt2_read(void **state) { (void)state; check_gpt2_vocab(0); }

static void test_real_bert(void **state) {
    (void)state;
    need_file(VOCAB_DIR "ggml-vocab-bert-bge.gguf");
    sd_gguf *g = NULL;
    sd_error err = {0};
    int32_t rc = sd_gguf_open(VOCAB_DIR "ggml-vocab-bert-bge.gguf", 1, &g, &err);
    if (rc) fail_msg("open: %s", err.msg);
    assert_int_equal(sd_gguf_n_kv(g), 20);
    uint64_t n;
    assert_int_equal(sd_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &n, &err), 0);
    assert_int_equal(n, 30522);
    sd_gguf_str s;
    assert_int_equal(sd_gguf_arr_str(g, "tokenizer.ggml.tokens", 0, &s), 0);
    assert_true(str_eq(s, "[PAD]"));
    int b = 1;
    assert_int_equal(sd_gguf_get_bool(g, "bert.attention.causal", &b, &err), 0);
    assert_int_equal(b, 0);
    uint64_t m;
    assert_int_equal(sd_gguf_get_u64(g, "tokenizer.ggml.mask_token_id", &m, &err), 0);
    assert_int_equal(m, 103);
    int64_t tt;
    assert_int_equal(sd_gguf_arr_i64(g, "tokenizer.ggml.token_type", 0, &tt), 0);
    assert_int_equal(tt, 3);
    sd_gguf_close(g);
}

static void test_open_errors(void **state) {
    (void)state;
    sd_gguf *g = (sd_gguf *)1;
    sd_error err = {0};
    assert_int_equal(sd_gguf_open("/nonexistent/x.gguf", 1, &g, &err), SMDIFF_E_IO);
    assert_null(g);
    assert_int_equal(sd_gguf_open("/tmp", 1, &g, &err), SMDIFF_E_IO);
    if (access(VOCAB_DIR "ggml-vocab-gpt-2.gguf.inp", R_OK) == 0) {
        assert_int_equal(sd_gguf_open(VOCAB_DIR "ggml-vocab-gpt-2.gguf.inp", 1, &g, &err), SMDIFF_E_FORMAT);
        assert_non_null(strstr(err.msg, "magic"));
    }
}

/* ------------------------------------------------------- writer round trip */

static char tmpdir[256];

static int setup_tmp(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/smdiff_test_gguf.%d", (int)getpid());
    mkdir(tmpdir, 0700);
    return 0;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static int teardown_tmp(void **state) {
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char p[600];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

static void test_writer_roundtrip(void **state) {
    (void)state;
    sd_gguf_writer *w = NULL;
    sd_error err = {0};
    assert_int_equal(sd_gguf_writer_create(&w, &err), 0);
    /* Every value type. */
    uint8_t u8 = 200; int8_t i8 = -100; uint16_t u16 = 60000; int16_t i16 = -30000;
    int64_t i64 = -(INT64_C(1) << 40); double f64 = 3.141592653589793;
    assert_int_equal(sd_gguf_set_str(w, "general.architecture", "dream"), 0);
    assert_int_equal(sd_gguf_set_scalar(w, "t.u8", SD_GGUF_UINT8, &u8), 0);
    assert_int_equal(sd_gguf_set_scalar(w, "t.i8", SD_GGUF_INT8, &i8), 0);
    assert_int_equal(sd_gguf_set_scalar(w, "t.u16", SD_GGUF_UINT16, &u16), 0);
    assert_int_equal(sd_gguf_set_scalar(w, "t.i16", SD_GGUF_INT16, &i16), 0);
    assert_int_equal(sd_gguf_set_u32(w, "t.u32", 4000000000u), 0);
    assert_int_equal(sd_gguf_set_i32(w, "t.i32", -2000000000), 0);
    assert_int_equal(sd_gguf_set_f32(w, "t.f32", 0.1f), 0);
    assert_int_equal(sd_gguf_set_bool(w, "t.bool", 1), 0);
    assert_int_equal(sd_gguf_set_u64(w, "t.u64", UINT64_MAX), 0);
    assert_int_equal(sd_gguf_set_scalar(w, "t.i64", SD_GGUF_INT64, &i64), 0);
    assert_int_equal(sd_gguf_set_scalar(w, "t.f64", SD_GGUF_FLOAT64, &f64), 0);
    assert_int_equal(sd_gguf_set_strn(w, "t.bin", "a\0b", 3), 0);
    const char *strs[] = {"x", "", "hello world"};
    assert_int_equal(sd_gguf_set_arr_str(w, "t.arr_str", strs, 3), 0);
    int32_t ai[] = {-1, 2, -3};
    assert_int_equal(sd_gguf_set_arr_i32(w, "t.arr_i32", ai, 3), 0);
    float af[] = {0.5f, -1.25f};
    assert_int_equal(sd_gguf_set_arr_f32(w, "t.arr_f32", af, 2), 0);
    uint8_t ab[] = {1, 0, 1};
    assert_int_equal(sd_gguf_set_arr(w, "t.arr_bool", SD_GGUF_BOOL, ab, 3), 0);
    double ad[] = {1e300, -2.5};
    assert_int_equal(sd_gguf_set_arr(w, "t.arr_f64", SD_GGUF_FLOAT64, ad, 2), 0);
    assert_int_equal(sd_gguf_set_arr(w, "t.arr_empty", SD_GGUF_UINT16, NULL, 0), 0);
    /* Replacing keeps the first position. */
    assert_int_equal(sd_gguf_set_u32(w, "t.u32", 7), 0);
    assert_int_equal(sd_gguf_set_u32(w, "general.alignment", 64), 0);
    /* Bad calls are refused with a message. */
    assert_int_equal(sd_gguf_set_u32(w, "", 1), SMDIFF_E_INVAL);
    uint8_t two = 2;
    assert_int_equal(sd_gguf_set_scalar(w, "t.badbool", SD_GGUF_BOOL, &two), SMDIFF_E_INVAL);
    assert_int_equal(sd_gguf_set_scalar(w, "t.badtype", SD_GGUF_STRING, &two), SMDIFF_E_INVAL);

    /* Every tensor type smdiff computes with, plus one it only carries. */
    float src[2 * 64];
    for (int i = 0; i < 128; i++) src[i] = sinf((float)i * 0.37f) * 3.0f;
    uint64_t ne2[2] = {64, 2}, ne1[1] = {3};
    uint8_t f16[256], bf16[256], q8[2 * 68], qk[144];
    sd_ggml_from_f32(SD_GGML_F16, src, f16, 128);
    sd_ggml_from_f32(SD_GGML_BF16, src, bf16, 128);
    sd_ggml_from_f32(SD_GGML_Q8_0, src, q8, 128);
    for (int i = 0; i < 144; i++) qk[i] = (uint8_t)i;
    assert_int_equal(sd_gguf_add_tensor(w, "w.f32", 2, ne2, SD_GGML_F32, src, 1), 0);
    assert_int_equal(sd_gguf_add_tensor(w, "w.f16", 2, ne2, SD_GGML_F16, f16, 0), 0);
    assert_int_equal(sd_gguf_add_tensor(w, "w.bf16", 2, ne2, SD_GGML_BF16, bf16, 0), 0);
    assert_int_equal(sd_gguf_add_tensor(w, "w.q8", 2, ne2, SD_GGML_Q8_0, q8, 0), 0);
    assert_int_equal(sd_gguf_add_tensor(w, "w.odd", 1, ne1, SD_GGML_F32, src, 0), 0);
    uint64_t nek[1] = {256};
    assert_int_equal(sd_gguf_add_tensor(w, "w.q4k", 1, nek, 12, qk, 0), 0);
    assert_int_equal(sd_gguf_add_tensor(w, "w.f32", 2, ne2, SD_GGML_F32, src, 0), SMDIFF_E_INVAL);
    uint64_t bad[1] = {33};
    assert_int_equal(sd_gguf_add_tensor(w, "w.bad", 1, bad, SD_GGML_Q8_0, q8, 0), SMDIFF_E_INVAL);
    assert_int_equal(sd_gguf_add_tensor(w, "w.bad", 5, ne2, SD_GGML_F32, src, 0), SMDIFF_E_INVAL);

    char path[300];
    snprintf(path, sizeof path, "%s/rt.gguf", tmpdir);
    int32_t rc = sd_gguf_write(w, path, &err);
    if (rc) fail_msg("write: %s", err.msg);
    sd_gguf_writer_free(w);
    assert_int_equal(count_entries(tmpdir), 1);  /* no temp file left */

    for (int use_mmap = 0; use_mmap < 2; use_mmap++) {
        sd_gguf *g = NULL;
        rc = sd_gguf_open(path, use_mmap, &g, &err);
        if (rc) fail_msg("open: %s", err.msg);
        assert_int_equal(sd_gguf_version(g), 3);
        assert_int_equal(sd_gguf_alignment(g), 64);
        assert_int_equal(sd_gguf_n_kv(g), 22); /* the 20 set and the two checksum keys, last */
        assert_true(str_eq(sd_gguf_key(g, 20), SD_GGUF_CHECKSUM_ALGO_KEY));
        assert_true(str_eq(sd_gguf_key(g, 21), SD_GGUF_CHECKSUM_KEY));
        assert_int_equal(sd_gguf_has_checksum(g), 1);
        const char *order[] = {"general.architecture", "t.u8", "t.i8", "t.u16", "t.i16", "t.u32"};
        for (int i = 0; i < 6; i++) assert_true(str_eq(sd_gguf_key(g, i), order[i]));
        assert_true(str_eq(sd_gguf_key(g, 19), "general.alignment"));
        uint64_t u;
        int64_t i;
        double d;
        int b;
        sd_gguf_str s;
        assert_int_equal(sd_gguf_get_u64(g, "t.u8", &u, &err), 0); assert_int_equal(u, 200);
        assert_int_equal(sd_gguf_get_i64(g, "t.i8", &i, &err), 0); assert_int_equal(i, -100);
        assert_int_equal(sd_gguf_get_u64(g, "t.i8", &u, &err), SMDIFF_E_FORMAT);  /* negative */
        assert_int_equal(sd_gguf_get_u64(g, "t.u16", &u, &err), 0); assert_int_equal(u, 60000);
        assert_int_equal(sd_gguf_get_i64(g, "t.i16", &i, &err), 0); assert_int_equal(i, -30000);
        assert_int_equal(sd_gguf_get_u64(g, "t.u32", &u, &err), 0); assert_int_equal(u, 7);
        assert_int_equal(sd_gguf_kv_type(g, 5), SD_GGUF_UINT32);
        assert_int_equal(sd_gguf_get_i64(g, "t.i32", &i, &err), 0); assert_int_equal(i, -2000000000);
        assert_int_equal(sd_gguf_get_f64(g, "t.f32", &d, &err), 0); assert_true((float)d == 0.1f);
        assert_int_equal(sd_gguf_get_bool(g, "t.bool", &b, &err), 0); assert_int_equal(b, 1);
        assert_int_equal(sd_gguf_get_u64(g, "t.u64", &u, &err), 0); assert_true(u == UINT64_MAX);
        assert_int_equal(sd_gguf_get_i64(g, "t.u64", &i, &err), SMDIFF_E_FORMAT);  /* does not fit */
        assert_int_equal(sd_gguf_get_i64(g, "t.i64", &i, &err), 0); assert_true(i == i64);
        assert_int_equal(sd_gguf_get_f64(g, "t.f64", &d, &err), 0); assert_true(d == f64);
        assert_int_equal(sd_gguf_get_bool(g, "t.u8", &b, &err), SMDIFF_E_FORMAT);
        assert_int_equal(sd_gguf_get_str(g, "t.bin", &s, &err), 0);
        assert_true(s.len == 3 && memcmp(s.ptr, "a\0b", 3) == 0);
        uint32_t et;
        uint64_t n;
        assert_int_equal(sd_gguf_get_arr(g, "t.arr_str", &et, &n, &err), 0);
        assert_true(et == SD_GGUF_STRING && n == 3);
        for (uint64_t k = 0; k < 3; k++) {
            assert_int_equal(sd_gguf_arr_str(g, "t.arr_str", k, &s), 0);
            assert_true(str_eq(s, strs[k]));
        }
        for (uint64_t k = 0; k < 3; k++) {
            assert_int_equal(sd_gguf_arr_i64(g, "t.arr_i32", k, &i), 0);
            assert_int_equal(i, ai[k]);
        }
        assert_int_equal(sd_gguf_arr_f64(g, "t.arr_f32", 1, &d), 0); assert_true(d == -1.25);
        assert_int_equal(sd_gguf_arr_i64(g, "t.arr_bool", 2, &i), 0); assert_int_equal(i, 1);
        assert_int_equal(sd_gguf_arr_f64(g, "t.arr_f64", 0, &d), 0); assert_true(d == 1e300);
        assert_int_equal(sd_gguf_get_arr(g, "t.arr_empty", &et, &n, &err), 0);
        assert_true(et == SD_GGUF_UINT16 && n == 0);
        assert_non_null(sd_gguf_arr_data(g, "t.arr_i32"));
        assert_null(sd_gguf_arr_data(g, "t.arr_str"));

        assert_int_equal(sd_gguf_n_tensors(g), 6);
        const sd_gguf_tensor *t = sd_gguf_find_tensor(g, "w.f32");
        assert_non_null(t);
        assert_true(t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 2 && t->ne[2] == 1 && t->ne[3] == 1);
        assert_int_equal(t->n_bytes, 512);
        assert_int_equal(memcmp(t->data, src, 512), 0);
        const char *names[] = {"w.f16", "w.bf16", "w.q8"};
        const void *encs[] = {f16, bf16, q8};
        uint32_t types[] = {SD_GGML_F16, SD_GGML_BF16, SD_GGML_Q8_0};
        for (int k = 0; k < 3; k++) {
            t = sd_gguf_find_tensor(g, names[k]);
            assert_non_null(t);
            assert_int_equal(t->type, types[k]);
            assert_int_equal(t->n_bytes, sd_ggml_type_size(types[k], 128));
            assert_int_equal(memcmp(t->data, encs[k], t->n_bytes), 0);
            assert_int_equal(t->offset % 64, 0);
            assert_int_equal((uintptr_t)t->data % 64, 0);
            float back[128];
            sd_ggml_to_f32(t->type, t->data, back, 128);
            /* f16: rel 2^-11; bf16: rel 2^-8; q8_0: half a quant step amax/254
             * plus the f16 rounding of the scale (rel 2^-11 of up to 127 steps). */
            for (int e = 0; e < 128; e++) {
                float amax = 0.0f;
                for (int j = e / 32 * 32; j < e / 32 * 32 + 32; j++) amax = fmaxf(amax, fabsf(src[j]));
                float tol = k == 0 ? fabsf(src[e]) * 0x1p-11f
                          : k == 1 ? fabsf(src[e]) * 0x1p-8f
                                   : amax / 254 + amax * 0x1p-11f + 1e-6f;
                if (fabsf(back[e] - src[e]) > tol) fail_msg("%s[%d]: %g vs %g", names[k], e, back[e], src[e]);
            }
        }
        t = sd_gguf_find_tensor(g, "w.q4k");
        assert_non_null(t);
        assert_int_equal(t->n_bytes, 144);
        assert_int_equal(memcmp(t->data, qk, 144), 0);
        assert_null(sd_gguf_find_tensor(g, "w.none"));
        assert_ptr_equal(sd_gguf_tensor_at(g, 0), sd_gguf_find_tensor(g, "w.f32"));
        assert_null(sd_gguf_tensor_at(g, 6));
        sd_gguf_close(g);
    }
    unlink(path);
}


/* Many keys and tensors: the indexes grow (rehash) while parsing. */
static void test_many_entries(void **state) {
    (void)state;
    sd_gguf_writer *w = NULL;
    sd_error err = {0};
    assert_int_equal(sd_gguf_writer_create(&w, &err), 0);
    char k[64];
    for (uint32_t i = 0; i < 3000; i++) {
        snprintf(k, sizeof k, "key.%u", i);
        assert_int_equal(sd_gguf_set_u32(w, k, i * 7), 0);
    }
    float v[32] = {0};
    uint64_t ne[1] = {32};
    for (int i = 0; i < 700; i++) {
        snprintf(k, sizeof k, "blk.%d.w", i);
        v[0] = (float)i;
        assert_int_equal(sd_gguf_add_tensor(w, k, 1, ne, SD_GGML_F32, v, 0), 0);
    }
    char path[300];
    snprintf(path, sizeof path, "%s/many.gguf", tmpdir);
    assert_int_equal(sd_gguf_write(w, path, &err), 0);
    sd_gguf_writer_free(w);
    sd_gguf *g = NULL;
    if (sd_gguf_open(path, 1, &g, &err)) fail_msg("%s", err.msg);
    assert_int_equal(sd_gguf_n_kv(g), 3002); /* and the checksum's two */
    assert_int_equal(sd_gguf_n_tensors(g), 700);
    for (uint32_t i = 0; i < 3000; i++) {
        snprintf(k, sizeof k, "key.%u", i);
        uint64_t u;
        assert_int_equal(sd_gguf_find_key(g, k), (int64_t)i);
        assert_int_equal(sd_gguf_get_u64(g, k, &u, &err), 0);
        assert_int_equal(u, i * 7);
    }
    for (int i = 0; i < 700; i++) {
        snprintf(k, sizeof k, "blk.%d.w", i);
        const sd_gguf_tensor *t = sd_gguf_find_tensor(g, k);
        assert_non_null(t);
        assert_ptr_equal(t, sd_gguf_tensor_at(g, i));
        assert_true(((const float *)t->data)[0] == (float)i);
    }
    assert_null(sd_gguf_find_tensor(g, "blk.700.w"));
    assert_int_equal(sd_gguf_find_key(g, "key.3000"), -1);
    sd_gguf_close(g);
    unlink(path);
}

static int32_t fill_fail(void *user, const char *name, void *dst, uint64_t n, sd_error *err) {
    (void)user; (void)dst; (void)n;
    return sd_fail(err, SMDIFF_E_IO, "fill of '%s' failed on purpose", name);
}

static int32_t fill_ramp(void *user, const char *name, void *dst, uint64_t n, sd_error *err) {
    (void)user; (void)name; (void)err;
    float *f = dst;
    for (uint64_t i = 0; i < n / 4; i++) f[i] = (float)i;
    return SMDIFF_OK;
}

static void test_writer_failures(void **state) {
    (void)state;
    sd_gguf_writer *w = NULL;
    sd_error err = {0};
    assert_int_equal(sd_gguf_writer_create(&w, &err), 0);
    assert_int_equal(sd_gguf_set_str(w, "general.architecture", "llada"), 0);
    uint64_t ne[1] = {16};
    assert_int_equal(sd_gguf_add_tensor_fill(w, "a", 1, ne, SD_GGML_F32, fill_ramp, NULL), 0);
    char path[400], notdir[300];
    /* Parent is a regular file: creating the temp file fails. */
    snprintf(notdir, sizeof notdir, "%s/plainfile", tmpdir);
    FILE *f = fopen(notdir, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/out.gguf", notdir);
    assert_int_equal(sd_gguf_write(w, path, &err), SMDIFF_E_IO);
    assert_int_equal(sd_gguf_write(w, "/nonexistent_dir_smdiff/x.gguf", &err), SMDIFF_E_IO);
    assert_non_null(strstr(err.msg, "cannot create"));
    /* A good write, then a failing one must leave the good file untouched. */
    snprintf(path, sizeof path, "%s/keep.gguf", tmpdir);
    assert_int_equal(sd_gguf_write(w, path, &err), 0);
    assert_int_equal(sd_gguf_add_tensor_fill(w, "b", 1, ne, SD_GGML_F32, fill_fail, NULL), 0);
    assert_int_equal(sd_gguf_write(w, path, &err), SMDIFF_E_IO);
    assert_non_null(strstr(err.msg, "on purpose"));
    assert_int_equal(count_entries(tmpdir), 2);  /* plainfile + keep.gguf, no temp */
    sd_gguf *g = NULL;
    assert_int_equal(sd_gguf_open(path, 1, &g, &err), 0);
    assert_int_equal(sd_gguf_n_tensors(g), 1);
    const sd_gguf_tensor *t = sd_gguf_find_tensor(g, "a");
    assert_true(((const float *)t->data)[15] == 15.0f);
    sd_gguf_close(g);
    /* A real write error in the middle of the data (file size limit, as a
     * full disk would do): SMDIFF_E_IO, no temp file, old file intact. */
    {
        static float big[16384];
        uint64_t nb[1] = {16384};
        assert_int_equal(sd_gguf_add_tensor(w, "big", 1, nb, SD_GGML_F32, big, 1), 0);
        struct rlimit old, lim;
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
        lim = old;
        lim.rlim_cur = 16384;
        void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        sd_gguf_writer *w2 = NULL;
        assert_int_equal(sd_gguf_writer_create(&w2, &err), 0);
        assert_int_equal(sd_gguf_add_tensor(w2, "big", 1, nb, SD_GGML_F32, big, 1), 0);
        int32_t wrc = sd_gguf_write(w2, path, &err);
        setrlimit(RLIMIT_FSIZE, &old);
        signal(SIGXFSZ, prev);
        sd_gguf_writer_free(w2);
        assert_int_equal(wrc, SMDIFF_E_IO);
        if (!strstr(err.msg, strerror(EFBIG))) fail_msg("%s", err.msg);
        assert_int_equal(count_entries(tmpdir), 2);
        assert_int_equal(sd_gguf_open(path, 1, &g, &err), 0);
        assert_non_null(sd_gguf_find_tensor(g, "a"));
        sd_gguf_close(g);
    }
    /* Bad alignment key is refused before touching the disk. */
    assert_int_equal(sd_gguf_set_u32(w, "general.alignment", 48), 0);
    assert_int_equal(sd_gguf_write(w, path, &err), SMDIFF_E_INVAL);
    sd_gguf_writer_free(w);
    unlink(path);
    unlink(notdir);
}


/* ------------------------------------------- independent reference file */

/* tests/data/gguf_ref.gguf was written by tests/ref/make_gguf_fixture.py
 * (struct + NumPy): read it, then rebuild it with our writer and encoders
 * from its f32 tensor and require the same bytes. */
static void test_reference_file(void **state) {
    (void)state;
    const char *ref = "tests/data/gguf_ref.gguf";
    sd_gguf *g = NULL;
    sd_error err = {0};
    if (sd_gguf_open(ref, 1, &g, &err)) fail_msg("%s", err.msg);
    assert_int_equal(sd_gguf_n_kv(g), 18); /* 16 and the checksum's two; it matched */
    assert_int_equal(sd_gguf_has_checksum(g), 1);
    uint64_t u;
    int64_t i;
    double d;
    int b;
    sd_gguf_str s;
    assert_int_equal(sd_gguf_get_u64(g, "ref.u8", &u, &err), 0); assert_int_equal(u, 200);
    assert_int_equal(sd_gguf_get_i64(g, "ref.i8", &i, &err), 0); assert_int_equal(i, -100);
    assert_int_equal(sd_gguf_get_u64(g, "ref.u16", &u, &err), 0); assert_int_equal(u, 60000);
    assert_int_equal(sd_gguf_get_i64(g, "ref.i16", &i, &err), 0); assert_int_equal(i, -30000);
    assert_int_equal(sd_gguf_get_u64(g, "ref.u32", &u, &err), 0); assert_int_equal(u, 4000000000u);
    assert_int_equal(sd_gguf_get_i64(g, "ref.i32", &i, &err), 0); assert_int_equal(i, -2000000000);
    assert_int_equal(sd_gguf_get_f64(g, "ref.f32", &d, &err), 0); assert_true((float)d == 0.1f);
    assert_int_equal(sd_gguf_get_bool(g, "ref.bool", &b, &err), 0); assert_int_equal(b, 1);
    assert_int_equal(sd_gguf_get_str(g, "ref.str", &s, &err), 0); assert_true(str_eq(s, "h\xc3\xa9llo"));
    assert_int_equal(sd_gguf_get_u64(g, "ref.u64", &u, &err), 0); assert_true(u == UINT64_MAX);
    assert_int_equal(sd_gguf_get_i64(g, "ref.i64", &i, &err), 0); assert_true(i == -(INT64_C(1) << 40));
    assert_int_equal(sd_gguf_get_f64(g, "ref.f64", &d, &err), 0); assert_true(d == 3.141592653589793);
    assert_int_equal(sd_gguf_arr_str(g, "ref.arr_str", 2, &s), 0); assert_true(str_eq(s, "hello world"));
    assert_int_equal(sd_gguf_arr_i64(g, "ref.arr_i32", 2, &i), 0); assert_int_equal(i, -3);
    assert_int_equal(sd_gguf_arr_f64(g, "ref.arr_f32", 1, &d), 0); assert_true(d == -1.25);
    const sd_gguf_tensor *t32 = sd_gguf_find_tensor(g, "t.f32");
    assert_non_null(t32);
    assert_true(t32->ne[0] == 64 && t32->ne[1] == 3);
    float src[192];
    memcpy(src, t32->data, sizeof src);
    assert_true(src[2] == 70000.0f);

    /* Rebuild with our writer and encoders. */
    sd_gguf_writer *w = NULL;
    assert_int_equal(sd_gguf_writer_create(&w, &err), 0);
    uint8_t u8 = 200; int8_t i8 = -100; uint16_t u16 = 60000; int16_t i16 = -30000;
    int64_t i64 = -(INT64_C(1) << 40); double f64 = 3.141592653589793;
    const char *strs[] = {"x", "", "hello world"};
    int32_t ai[] = {-1, 2, -3};
    float af[] = {0.5f, -1.25f};
    assert_int_equal(sd_gguf_set_str(w, "general.architecture", "dream"), 0);
    assert_int_equal(sd_gguf_set_scalar(w, "ref.u8", SD_GGUF_UINT8, &u8), 0);
    assert_int_equal(sd_gguf_set_scalar(w, "ref.i8", SD_GGUF_INT8, &i8), 0);
    assert_int_equal(sd_gguf_set_scalar(w, "ref.u16", SD_GGUF_UINT16, &u16), 0);
    assert_int_equal(sd_gguf_set_scalar(w, "ref.i16", SD_GGUF_INT16, &i16), 0);
    assert_int_equal(sd_gguf_set_u32(w, "ref.u32", 4000000000u), 0);
    assert_int_equal(sd_gguf_set_i32(w, "ref.i32", -2000000000), 0);
    assert_int_equal(sd_gguf_set_f32(w, "ref.f32", 0.1f), 0);
    assert_int_equal(sd_gguf_set_bool(w, "ref.bool", 1), 0);
    assert_int_equal(sd_gguf_set_str(w, "ref.str", "h\xc3\xa9llo"), 0);
    assert_int_equal(sd_gguf_set_u64(w, "ref.u64", UINT64_MAX), 0);
    assert_int_equal(sd_gguf_set_scalar(w, "ref.i64", SD_GGUF_INT64, &i64), 0);
    assert_int_equal(sd_gguf_set_scalar(w, "ref.f64", SD_GGUF_FLOAT64, &f64), 0);
    assert_int_equal(sd_gguf_set_arr_str(w, "ref.arr_str", strs, 3), 0);
    assert_int_equal(sd_gguf_set_arr_i32(w, "ref.arr_i32", ai, 3), 0);
    assert_int_equal(sd_gguf_set_arr_f32(w, "ref.arr_f32", af, 2), 0);
    uint64_t ne[2] = {64, 3};
    uint8_t f16[384], bf16[384], q8[3 * 2 * 34];
    sd_ggml_from_f32(SD_GGML_F16, src, f16, 192);
    sd_ggml_from_f32(SD_GGML_BF16, src, bf16, 192);
    sd_ggml_from_f32(SD_GGML_Q8_0, src, q8, 192);
    assert_int_equal(sd_gguf_add_tensor(w, "t.f32", 2, ne, SD_GGML_F32, src, 0), 0);
    assert_int_equal(sd_gguf_add_tensor(w, "t.f16", 2, ne, SD_GGML_F16, f16, 0), 0);
    assert_int_equal(sd_gguf_add_tensor(w, "t.bf16", 2, ne, SD_GGML_BF16, bf16, 0), 0);
    assert_int_equal(sd_gguf_add_tensor(w, "t.q8_0", 2, ne, SD_GGML_Q8_0, q8, 0), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/ref_rebuilt.gguf", tmpdir);
    assert_int_equal(sd_gguf_write(w, path, &err), 0);
    sd_gguf_writer_free(w);
    size_t n_ref, n_out;
    uint8_t *a = test_read_file(ref, &n_ref), *c = test_read_file(path, &n_out);
    assert_non_null(a);
    assert_non_null(c);
    assert_int_equal(n_out, n_ref);
    for (size_t k = 0; k < n_ref; k++)
        if (a[k] != c[k])
            fail_msg("byte %zu of %zu differs: ours 0x%02x, reference 0x%02x", k, n_ref, c[k], a[k]);
    free(a);
    free(c);
    unlink(path);
    sd_gguf_close(g);
}

/* --------------------------------------------------------- corrupt files */

/* A small valid file whose last byte is tensor data (so every truncation
 * cuts something that is needed). */
static void small_valid(bb *b) {
    bb_header(b, 3, 2, 3);
    bb_str(b, "general.architecture"); bb_u32(b, SD_GGUF_STRING); bb_str(b, "dream");
    bb_str(b, "tok"); bb_u32(b, SD_GGUF_ARRAY); bb_u32(b, SD_GGUF_STRING); bb_u64(b, 2);
    bb_str(b, "ab"); bb_str(b, "c");
    bb_str(b, "flag"); bb_u32(b, SD_GGUF_BOOL); bb_put(b, "\x01", 1);
    bb_str(b, "w1"); bb_u32(b, 2); bb_u64(b, 4); bb_u64(b, 2); bb_u32(b, SD_GGML_F16); bb_u64(b, 0);
    bb_str(b, "w2"); bb_u32(b, 1); bb_u64(b, 8); bb_u32(b, SD_GGML_F32); bb_u64(b, 32);
    bb_pad(b, 32);
    uint16_t h[8];
    for (int i = 0; i < 8; i++) h[i] = 0x3c00;
    bb_put(b, h, 16);
    bb_pad(b, 32);
    float f[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    bb_put(b, f, 32);
}

static void test_truncated_every_byte(void **state) {
    (void)state;
    bb b = {0};
    small_valid(&b);
    sd_gguf *g = NULL;
    sd_error err = {0};
    void *full = malloc(b.len);
    memcpy(full, b.p, b.len);
    assert_int_equal(sd_gguf_open_memory(full, b.len, &g, &err), 0);
    const sd_gguf_tensor *t = sd_gguf_find_tensor(g, "w2");
    assert_true(((const float *)t->data)[7] == 8.0f);
    sd_gguf_close(g);
    free(full);
    for (size_t n = 0; n < b.len; n++) {
        void *c = malloc(n ? n : 1);
        memcpy(c, b.p, n);
        g = NULL;
        int32_t rc = sd_gguf_open_memory(c, n, &g, &err);
        if (rc != SMDIFF_E_FORMAT) fail_msg("truncated at %zu of %zu: rc %d", n, b.len, rc);
        assert_null(g);
        free(c);
    }
    /* The same through a file (read fallback and mmap), for a few cuts. */
    char path[300];
    snprintf(path, sizeof path, "%s/trunc.gguf", tmpdir);
    size_t cuts[] = {0, 3, 23, 24, 40, b.len - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        FILE *f = fopen(path, "wb");
        fwrite(b.p, 1, cuts[k], f);
        fclose(f);
        assert_int_equal(sd_gguf_open(path, 1, &g, &err), SMDIFF_E_FORMAT);
        assert_int_equal(sd_gguf_open(path, 0, &g, &err), SMDIFF_E_FORMAT);
    }
    unlink(path);
    free(b.p);
}

static void test_hostile_header(void **state) {
    (void)state;
    bb b = {0};
    bb_put(&b, "GGUX", 4); bb_u32(&b, 3); bb_u64(&b, 0); bb_u64(&b, 0);
    expect_format(&b, "magic");
    b.len = 0; bb_header(&b, 1, 0, 0); expect_format(&b, "version 1");
    b.len = 0; bb_header(&b, 4, 0, 0); expect_format(&b, "version 4");
    b.len = 0; bb_header(&b, 0x03000000u, 0, 0); expect_format(&b, "big-endian");
    b.len = 0; bb_header(&b, 2, 0, 0);
    sd_gguf *g = NULL;
    sd_error err = {0};
    assert_int_equal(sd_gguf_open_memory(b.p, b.len, &g, &err), 0);  /* empty v2 file is valid */
    assert_int_equal(sd_gguf_version(g), 2);
    sd_gguf_close(g);
    b.len = 0; bb_header(&b, 3, 0, UINT64_MAX); expect_format(&b, "n_kv");
    b.len = 0; bb_header(&b, 3, UINT64_MAX / 2, 0); expect_format(&b, "n_tensors");
    b.len = 0; bb_header(&b, 3, 0, 1); bb_u64(&b, UINT64_MAX); bb_u32(&b, 0); bb_u64(&b, 0);
    expect_format(&b, "metadata key #0");
    b.len = 0; bb_header(&b, 3, 0, 1); bb_u64(&b, 100000); bb_put(&b, "abcdefghijklmn", 14);
    expect_format(&b, "exceeds the limit");
    b.len = 0; bb_header(&b, 3, 0, 1); bb_u64(&b, 1000); bb_put(&b, "abcdefghijklmn", 14);
    expect_format(&b, "past end of file");
    free(b.p);
}

static void test_hostile_metadata(void **state) {
    (void)state;
    bb b = {0};
    bb_header(&b, 3, 0, 2); bb_str(&b, "a"); bb_u32(&b, SD_GGUF_UINT8); bb_put(&b, "x", 1);
    bb_str(&b, "a"); bb_u32(&b, SD_GGUF_UINT8); bb_put(&b, "x", 1);
    expect_format(&b, "'a' appears twice");
    b.len = 0; bb_header(&b, 3, 0, 1); bb_str(&b, "k"); bb_u32(&b, 13); bb_u64(&b, 0);
    expect_format(&b, "invalid value type 13");
    b.len = 0; bb_header(&b, 3, 0, 1); bb_str(&b, "k"); bb_u32(&b, SD_GGUF_BOOL); bb_put(&b, "\x02", 1);
    bb_u64(&b, 0);
    expect_format(&b, "bool value 2");
    b.len = 0; bb_header(&b, 3, 0, 1); bb_str(&b, "k"); bb_u32(&b, SD_GGUF_ARRAY); bb_u32(&b, SD_GGUF_UINT32);
    bb_u64(&b, UINT64_MAX / 2); bb_u64(&b, 0);
    expect_format(&b, "array of 9223372036854775807 uint32");
    b.len = 0; bb_header(&b, 3, 0, 1); bb_str(&b, "k"); bb_u32(&b, SD_GGUF_ARRAY); bb_u32(&b, SD_GGUF_STRING);
    bb_u64(&b, UINT64_MAX); bb_u64(&b, 0);
    expect_format(&b, "strings needs more");
    b.len = 0; bb_header(&b, 3, 0, 1); bb_str(&b, "k"); bb_u32(&b, SD_GGUF_ARRAY); bb_u32(&b, SD_GGUF_STRING);
    bb_u64(&b, 2); bb_str(&b, "ok"); bb_u64(&b, 1u << 30); bb_u64(&b, 0);
    expect_format(&b, "key 'k' element 1");
    b.len = 0; bb_header(&b, 3, 0, 1); bb_str(&b, "k"); bb_u32(&b, SD_GGUF_ARRAY); bb_u32(&b, SD_GGUF_ARRAY);
    bb_u64(&b, 1); bb_u64(&b, 0);
    expect_format(&b, "array element type 9");
    b.len = 0; bb_header(&b, 3, 0, 1); bb_str(&b, "general.alignment"); bb_u32(&b, SD_GGUF_UINT32); bb_u32(&b, 48);
    expect_format(&b, "general.alignment 48");
    b.len = 0; bb_header(&b, 3, 0, 1); bb_str(&b, "general.alignment"); bb_u32(&b, SD_GGUF_UINT32); bb_u32(&b, 0);
    expect_format(&b, "general.alignment 0");
    b.len = 0; bb_header(&b, 3, 0, 1); bb_str(&b, "general.alignment"); bb_u32(&b, SD_GGUF_UINT64); bb_u64(&b, 32);
    expect_format(&b, "general.alignment has type uint64");
    b.len = 0; bb_header(&b, 3, 0, 1); bb_u64(&b, 2); bb_put(&b, "a\0", 2); bb_u32(&b, SD_GGUF_UINT8);
    bb_put(&b, "x", 1); bb_u64(&b, 0);
    expect_format(&b, "NUL");
    free(b.p);
}

/* One tensor info + data; each parameter can be made hostile. */
static void one_tensor(bb *b, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset, size_t data) {
    b->len = 0;
    bb_header(b, 3, 1, 0);
    bb_str(b, "blk.0.attn_q.weight");
    bb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) bb_u64(b, ne[d]);
    bb_u32(b, type);
    bb_u64(b, offset);
    bb_pad(b, 32);
    for (size_t i = 0; i < data; i++) bb_put(b, "\0", 1);
}

static void test_hostile_tensors(void **state) {
    (void)state;
    bb b = {0};
    uint64_t ne[5] = {4, 4, 1, 1, 1};
    sd_gguf *g = NULL;
    sd_error err = {0};
    one_tensor(&b, 2, ne, SD_GGML_F32, 0, 64);
    assert_int_equal(sd_gguf_open_memory(b.p, b.len, &g, &err), 0);
    sd_gguf_close(g);
    one_tensor(&b, 2, ne, SD_GGML_F32, 0, 63);
    expect_format(&b, "tensor 'blk.0.attn_q.weight': data [offset 96, 64 bytes] past end of file (159 bytes)");
    one_tensor(&b, 2, ne, SD_GGML_F32, 4096, 64);
    expect_format(&b, "past end of file");
    one_tensor(&b, 2, ne, SD_GGML_F32, UINT64_MAX - 31, 64);
    expect_format(&b, "past end of file");
    one_tensor(&b, 2, ne, SD_GGML_F32, 16, 128);
    expect_format(&b, "offset 16 is not a multiple of general.alignment 32");
    one_tensor(&b, 0, ne, SD_GGML_F32, 0, 64);
    expect_format(&b, "n_dims 0");
    one_tensor(&b, 5, ne, SD_GGML_F32, 0, 64);
    expect_format(&b, "n_dims 5");
    uint64_t big[2] = {UINT64_C(1) << 32, UINT64_C(1) << 32};
    one_tensor(&b, 2, big, SD_GGML_F32, 0, 64);
    expect_format(&b, "element count overflows");
    uint64_t bytes_over[2] = {UINT64_C(1) << 31, UINT64_C(1) << 31};  /* 2^62 elements x 4 bytes */
    one_tensor(&b, 2, bytes_over, SD_GGML_F32, 0, 64);
    expect_format(&b, "byte size overflows");
    uint64_t zero[2] = {4, 0};
    one_tensor(&b, 2, zero, SD_GGML_F32, 0, 64);
    expect_format(&b, "dimension 1 is 0");
    one_tensor(&b, 2, ne, 4, 0, 64);
    expect_format(&b, "unknown ggml type id 4");
    one_tensor(&b, 2, ne, 0xffffffffu, 0, 64);
    expect_format(&b, "unknown ggml type id 4294967295");
    one_tensor(&b, 2, ne, SD_GGML_Q8_0, 0, 64);
    expect_format(&b, "not a multiple of the Q8_0 block size 32");
    /* A known but not computable type still parses. */
    uint64_t kne[1] = {256};
    one_tensor(&b, 1, kne, 14 /* Q6_K */, 0, 210);
    assert_int_equal(sd_gguf_open_memory(b.p, b.len, &g, &err), 0);
    assert_int_equal(sd_gguf_tensor_at(g, 0)->n_bytes, 210);
    sd_gguf_close(g);
    /* Duplicate tensor names. */
    b.len = 0;
    bb_header(&b, 3, 2, 0);
    for (int k = 0; k < 2; k++) {
        bb_str(&b, "x"); bb_u32(&b, 1); bb_u64(&b, 8); bb_u32(&b, SD_GGML_F32); bb_u64(&b, 0);
    }
    bb_pad(&b, 32);
    for (int i = 0; i < 32; i++) bb_put(&b, "\0", 1);
    expect_format(&b, "tensor 'x' appears twice");
    /* Hostile tensor count versus file size. */
    b.len = 0;
    bb_header(&b, 3, 1000, 0);
    bb_str(&b, "x"); bb_u32(&b, 1); bb_u64(&b, 8); bb_u32(&b, SD_GGML_F32); bb_u64(&b, 0);
    expect_format(&b, "n_tensors 1000");
    free(b.p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_to_f32_hand),
        cmocka_unit_test(test_f32_to_f16_hand),
        cmocka_unit_test(test_bf16_hand),
        cmocka_unit_test(test_q8_0_hand),
        cmocka_unit_test(test_f16_bf16_arrays),
        cmocka_unit_test(test_real_gpt2_mmap),
        cmocka_unit_test(test_real_gpt2_read),
        cmocka_unit_test(test_real_bert),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_writer_roundtrip),
        cmocka_unit_test(test_writer_failures),
        cmocka_unit_test(test_many_entries),
        cmocka_unit_test(test_reference_file),
        cmocka_unit_test(test_truncated_every_byte),
        cmocka_unit_test(test_hostile_header),
        cmocka_unit_test(test_hostile_metadata),
        cmocka_unit_test(test_hostile_tensors),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
