/* test_quantize.c -- `smdiff quantize` and smdiff_quantize: every file type
 * writes a file that loads and whose stored values are the original ones
 * within the type's error, the per-tensor recipes, the report against an
 * independent recount, determinism across thread counts, refused inputs
 * and options, and the command line. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "convert/quantize.h"
#include "core/quant.h"
#include "io/gguf.h"
#include "smdiff/smdiff.h"
#include "testutil.h"

static char tmpdir[64];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/smdiff_test_quantize_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    return rmdir(tmpdir);
}

static void tmp_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

static uint64_t nel_of(const sd_gguf_tensor *t) { return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; }

/* --------------------------------------------------------------- recipes */

/* llama.cpp's choices for a Dream-7B-shaped file (28 layers, 28 query and
 * 4 kv heads, rows of 3584 and 18944: whole 256-blocks), restated as
 * expectations: which tensors of which layers get which type. */
static void test_recipes(void **state) {
    (void)state;
    sd_qmodel_info m = {28, 7, 0};
    const sd_qftype *f = sd_qftype_find("Q4_K_M");
    assert_non_null(f);
    assert_true(sd_qftype_find("q4_k") == f); /* llama.cpp's alias */
    assert_null(sd_qftype_find("q4_k_x"));
    assert_int_equal(f->file_type, 15);
    /* use_more_bits(i, 28): i < 3, i >= 24, or (i - 3) % 3 == 2: 0 1 2 5 8 ... 23 24 25 26 27 */
    int more[28] = {0};
    for (int i = 0; i < 28; i++) more[i] = i < 3 || i >= 24 || (i - 3) % 3 == 2;
    char name[64];
    for (int i = 0; i < 28; i++) {
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", i);
        assert_int_equal(sd_qftype_tensor_type(f, 0, name, 2, 3584, SD_GGML_F32, &m),
                         more[i] ? SD_GGML_Q6_K : SD_GGML_Q4_K);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", i);
        assert_int_equal(sd_qftype_tensor_type(f, 0, name, 2, 18944, SD_GGML_BF16, &m),
                         more[i] ? SD_GGML_Q6_K : SD_GGML_Q4_K);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", i);
        assert_int_equal(sd_qftype_tensor_type(f, 0, name, 2, 3584, SD_GGML_F32, &m), SD_GGML_Q4_K);
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", i);
        assert_int_equal(sd_qftype_tensor_type(f, 0, name, 1, 3584, SD_GGML_F32, &m), SD_GGML_F32);
        snprintf(name, sizeof name, "blk.%d.attn_q.bias", i);
        assert_int_equal(sd_qftype_tensor_type(f, 0, name, 1, 3584, SD_GGML_F32, &m), SD_GGML_F32);
    }
    assert_int_equal(sd_qftype_tensor_type(f, 0, "output.weight", 2, 3584, SD_GGML_F32, &m), SD_GGML_Q6_K);
    assert_int_equal(sd_qftype_tensor_type(f, 0, "token_embd.weight", 2, 3584, SD_GGML_F32, &m), SD_GGML_Q4_K);
    /* pure: one type */
    assert_int_equal(sd_qftype_tensor_type(f, 1, "output.weight", 2, 3584, SD_GGML_F32, &m), SD_GGML_Q4_K);
    assert_int_equal(sd_qftype_tensor_type(f, 1, "blk.0.attn_v.weight", 2, 3584, SD_GGML_F32, &m), SD_GGML_Q4_K);
    /* a tied head: the embedding is the head */
    sd_qmodel_info tied = {28, 7, 1};
    assert_int_equal(sd_qftype_tensor_type(f, 0, "token_embd.weight", 2, 3584, SD_GGML_F32, &tied), SD_GGML_Q6_K);
    /* the other mixtures, for the layers where they differ */
    struct {
        const char *ft, *name;
        uint32_t want;
    } cases[] = {
        {"q3_k_m", "blk.1.attn_v.weight", SD_GGML_Q5_K},   {"q3_k_m", "blk.2.attn_v.weight", SD_GGML_Q4_K},
        {"q3_k_m", "blk.0.ffn_down.weight", SD_GGML_Q5_K}, {"q3_k_m", "blk.2.ffn_down.weight", SD_GGML_Q4_K},
        {"q3_k_m", "blk.9.attn_output.weight", SD_GGML_Q4_K}, {"q3_k_m", "blk.9.ffn_up.weight", SD_GGML_Q3_K},
        {"q3_k_s", "blk.0.attn_v.weight", SD_GGML_Q3_K},   {"q3_k_s", "output.weight", SD_GGML_Q6_K},
        {"q3_k_l", "blk.9.attn_v.weight", SD_GGML_Q5_K},   {"q3_k_l", "blk.9.attn_output.weight", SD_GGML_Q5_K},
        {"q4_k_s", "blk.3.attn_v.weight", SD_GGML_Q5_K},   {"q4_k_s", "blk.4.attn_v.weight", SD_GGML_Q4_K},
        {"q4_k_s", "blk.2.ffn_down.weight", SD_GGML_Q5_K}, {"q4_k_s", "blk.3.ffn_down.weight", SD_GGML_Q4_K},
        {"q5_k_m", "blk.5.ffn_down.weight", SD_GGML_Q6_K}, {"q5_k_m", "blk.6.ffn_down.weight", SD_GGML_Q5_K},
        {"q5_k_s", "blk.0.attn_v.weight", SD_GGML_Q5_K},   {"q2_k", "blk.4.attn_v.weight", SD_GGML_Q4_K},
        {"q2_k", "blk.4.ffn_down.weight", SD_GGML_Q3_K},   {"q2_k", "blk.4.attn_output.weight", SD_GGML_Q3_K},
        {"q2_k", "blk.4.ffn_gate.weight", SD_GGML_Q2_K},   {"iq4_xs", "blk.4.attn_v.weight", SD_GGML_Q5_K},
        {"iq4_xs", "blk.2.ffn_down.weight", SD_GGML_Q5_K}, {"iq4_xs", "blk.3.ffn_down.weight", SD_GGML_IQ4_XS},
        {"q4_0", "output.weight", SD_GGML_Q6_K},           {"q4_0", "blk.0.attn_v.weight", SD_GGML_Q4_0},
        {"q8_0", "output.weight", SD_GGML_Q8_0},           {"f16", "output.weight", SD_GGML_F16},
        {"bf16", "blk.0.attn_v.weight", SD_GGML_BF16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t got = sd_qftype_tensor_type(sd_qftype_find(cases[i].ft), 0, cases[i].name, 2, 3584, SD_GGML_F32, &m);
        if (got != cases[i].want)
            fail_msg("%s %s: %s, want %s", cases[i].ft, cases[i].name, sd_ggml_type_name(got),
                     sd_ggml_type_name(cases[i].want));
    }
    /* the q2_k attn_v rule depends on grouped-query attention */
    sd_qmodel_info mha = {28, 1, 0};
    assert_int_equal(sd_qftype_tensor_type(sd_qftype_find("q2_k"), 0, "blk.4.attn_v.weight", 2, 3584, SD_GGML_F32, &mha),
                     SD_GGML_Q3_K);
    /* fallbacks for rows that are not whole blocks (Qwen2.5-0.5B: 896) */
    assert_int_equal(sd_qftype_tensor_type(f, 0, "blk.9.attn_q.weight", 2, 896, SD_GGML_F32, &m), SD_GGML_Q5_0);
    assert_int_equal(sd_qftype_tensor_type(f, 0, "blk.0.attn_v.weight", 2, 896, SD_GGML_F32, &m), SD_GGML_Q8_0);
    assert_int_equal(sd_qftype_tensor_type(f, 0, "output.weight", 2, 896, SD_GGML_F32, &m), SD_GGML_Q8_0);
    assert_int_equal(sd_qftype_tensor_type(sd_qftype_find("q5_k_s"), 0, "blk.9.attn_q.weight", 2, 896, SD_GGML_F32, &m),
                     SD_GGML_Q5_1);
    assert_int_equal(sd_qftype_tensor_type(sd_qftype_find("q3_k_s"), 0, "blk.9.attn_q.weight", 2, 896, SD_GGML_F32, &m),
                     SD_GGML_Q4_0);
    assert_int_equal(sd_qftype_tensor_type(sd_qftype_find("iq4_xs"), 0, "blk.9.attn_q.weight", 2, 896, SD_GGML_F32, &m),
                     SD_GGML_IQ4_NL);
    assert_int_equal(sd_qftype_tensor_type(f, 0, "blk.9.attn_q.weight", 2, 48, SD_GGML_F32, &m), SD_GGML_F16);
    assert_int_equal(sd_qftype_tensor_type(sd_qftype_find("q8_0"), 0, "blk.9.attn_q.weight", 2, 48, SD_GGML_F32, &m),
                     SD_GGML_F16);
}

/* ------------------------------------------------------ every file type */

/* The stored values of one tensor against the source's: root mean square
 * of the difference, relative to that of the values; the sums of squares
 * added to *sq_err, *sq_val. */
static double tensor_rel_err(const sd_gguf_tensor *src, const sd_gguf_tensor *out, double *sq_err, double *sq_val) {
    uint64_t n = nel_of(src);
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    sd_ggml_to_f32(src->type, src->data, a, (int64_t)n);
    sd_ggml_to_f32(out->type, out->data, b, (int64_t)n);
    double e = 0, v = 0;
    for (uint64_t i = 0; i < n; i++) {
        e += ((double)b[i] - a[i]) * ((double)b[i] - a[i]);
        v += (double)a[i] * a[i];
    }
    free(a);
    free(b);
    *sq_err += e;
    *sq_val += v;
    return v > 0 ? sqrt(e / v) : 0;
}

/* Relative RMS error of Gaussian weights in each block format, as
 * core/quant.c's searching quantisers reach it (test_quant.c prints the
 * per-type errors on normal data): the limits leave about 30% over them.
 * F16 and BF16 are 2^-11 and 2^-8 relative rounding at most. */
static double type_limit(uint32_t t) {
    switch (t) {
    case SD_GGML_F32: return 0;
    case SD_GGML_F16: return 5e-4;
    case SD_GGML_BF16: return 4e-3;
    case SD_GGML_Q8_0: return 8e-3;
    case SD_GGML_Q6_K: return 2.5e-2;
    case SD_GGML_Q5_0: case SD_GGML_Q5_1: case SD_GGML_Q5_K: return 5e-2;
    case SD_GGML_Q4_0: case SD_GGML_Q4_1: case SD_GGML_Q4_K: case SD_GGML_IQ4_NL: case SD_GGML_IQ4_XS: return 1.1e-1;
    case SD_GGML_Q3_K: return 2.2e-1;
    case SD_GGML_Q2_K: return 4.5e-1;
    default: return -1;
    }
}

/* Every file type from the F32 tiny dream (d = 32: the K-quants fall back)
 * and the d = 256 model of the mixture fixture's shape, written by
 * smdiff_quantize: each tensor in the type its recipe names, its values
 * the source's within the type's limit, the report equal to a recount of
 * the written file, the file loading and giving finite logits. */
static void check_file_type(const char *src_path, const char *ft) {
    char out[128];
    tmp_path(out, sizeof out, "q.gguf");
    smdiff_quant_report rep;
    int64_t opts[] = {SMDIFF_QUANT_THREADS, 2, 0};
    if (smdiff_quantize(src_path, out, ft, opts, NULL, NULL, &rep)) fail_msg("%s: %s", ft, smdiff_last_error());
    sd_gguf *src = NULL, *q = NULL;
    sd_error err;
    assert_int_equal(sd_gguf_open(src_path, 1, &src, &err), 0);
    if (sd_gguf_open(out, 1, &q, &err)) fail_msg("%s: %s", ft, err.msg);
    const sd_qftype *f = sd_qftype_find(ft);
    int64_t ftv;
    assert_int_equal(sd_gguf_get_i64(q, "general.file_type", &ftv, &err), 0);
    assert_int_equal(ftv, f->file_type);
    assert_int_equal(sd_gguf_n_tensors(q), sd_gguf_n_tensors(src));
    /* the writer closes every file with the two checksum keys (gguf.h) */
    assert_int_equal(sd_gguf_n_kv(q), sd_gguf_n_kv(src) + (sd_gguf_find_key(src, "general.file_type") < 0) +
                                          (sd_gguf_find_key(src, "general.quantization_version") < 0) +
                                          (sd_gguf_find_key(src, SD_GGUF_CHECKSUM_KEY) < 0) +
                                          (sd_gguf_find_key(src, SD_GGUF_CHECKSUM_ALGO_KEY) < 0));
    sd_qmodel_info info = {0, 1, sd_gguf_find_tensor(src, "output.weight") == NULL};
    sd_gguf_str arch;
    assert_int_equal(sd_gguf_get_str(src, "general.architecture", &arch, &err), 0);
    char key[96];
    int64_t v, h, kv;
    snprintf(key, sizeof key, "%.*s.block_count", (int)arch.len, arch.ptr);
    assert_int_equal(sd_gguf_get_i64(src, key, &v, &err), 0);
    info.n_layer = (int32_t)v;
    snprintf(key, sizeof key, "%.*s.attention.head_count", (int)arch.len, arch.ptr);
    assert_int_equal(sd_gguf_get_i64(src, key, &h, &err), 0);
    snprintf(key, sizeof key, "%.*s.attention.head_count_kv", (int)arch.len, arch.ptr);
    assert_int_equal(sd_gguf_get_i64(src, key, &kv, &err), 0);
    info.n_gqa = (int32_t)(h / kv);
    double sums[16][2] = {{0}};
    /* recount the report from the file */
    smdiff_quant_report want;
    memset(&want, 0, sizeof want);
    for (int64_t i = 0; i < sd_gguf_n_tensors(q); i++) {
        const sd_gguf_tensor *t = sd_gguf_tensor_at(q, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        const sd_gguf_tensor *s = sd_gguf_find_tensor(src, name);
        assert_non_null(s);
        uint32_t expect = sd_qftype_tensor_type(f, 0, name, s->n_dims, s->ne[0], s->type, &info);
        if (t->type != expect)
            fail_msg("%s: %s stored as %s, the recipe says %s", ft, name, sd_ggml_type_name(t->type),
                     sd_ggml_type_name(expect));
        size_t k = 0;
        while (k < want.n_types && strcmp(want.types[k].type, sd_ggml_type_name(t->type))) k++;
        double e = tensor_rel_err(s, t, &sums[k][0], &sums[k][1]), lim = type_limit(t->type);
        if (!(e <= lim)) fail_msg("%s: %s (%s) relative error %.4g above %.4g", ft, name, sd_ggml_type_name(t->type), e, lim);
        if (k == want.n_types) snprintf(want.types[want.n_types++].type, 16, "%s", sd_ggml_type_name(t->type));
        want.types[k].n_tensors++;
        want.types[k].n_elements += nel_of(t);
        want.types[k].n_bytes += t->n_bytes;
        want.in_bytes += s->n_bytes;
        want.out_bytes += t->n_bytes;
    }
    assert_int_equal(rep.n_types, want.n_types);
    assert_int_equal(rep.in_bytes, want.in_bytes);
    assert_int_equal(rep.out_bytes, want.out_bytes);
    for (size_t k = 0; k < want.n_types; k++) {
        assert_string_equal(rep.types[k].type, want.types[k].type);
        assert_int_equal(rep.types[k].n_tensors, want.types[k].n_tensors);
        assert_int_equal(rep.types[k].n_elements, want.types[k].n_elements);
        assert_int_equal(rep.types[k].n_bytes, want.types[k].n_bytes);
        double n = (double)want.types[k].n_elements;
        double re = sqrt(sums[k][0] / n), rv = sqrt(sums[k][1] / n);
        if (!(fabs(rep.types[k].rms_error - re) <= 1e-9 + 1e-6 * re && fabs(rep.types[k].rms_value - rv) <= 1e-6 * rv))
            fail_msg("%s %s: report rms error %.9g / value %.9g, recount %.9g / %.9g", ft, want.types[k].type,
                     rep.types[k].rms_error, rep.types[k].rms_value, re, rv);
    }
    sd_gguf_close(q);
    sd_gguf_close(src);
    /* loads and computes */
    smdiff_model *m;
    assert_int_equal(smdiff_model_create(&m), 0);
    if (smdiff_model_load_file(m, out)) fail_msg("%s: loading: %s", ft, smdiff_last_error());
    int64_t V;
    assert_int_equal(smdiff_model_property(m, SMDIFF_PROP_VOCAB_SIZE, &V), 0);
    int32_t ids[5] = {0, 1, 2, 3, 4}, rows[2] = {0, 4};
    float *lg = malloc(sizeof(float) * 2 * (size_t)V);
    assert_int_equal(smdiff_model_logits(m, ids, 5, rows, 2, lg, 2 * (size_t)V), 0);
    for (int64_t i = 0; i < 2 * V; i++) assert_true(isfinite(lg[i]));
    free(lg);
    smdiff_model_free(m);
    unlink(out);
}

/* An F32 copy of a file (its tensors dequantised): a d = 256 source for the
 * K-quants, from a fixture stored quantised. */
static void f32_copy(const char *from, const char *to) {
    sd_gguf *g = NULL;
    sd_gguf_writer *w = NULL;
    sd_error err;
    assert_int_equal(sd_gguf_open(from, 1, &g, &err), 0);
    assert_int_equal(sd_gguf_writer_create(&w, &err), 0);
    for (int64_t i = 0; i < sd_gguf_n_kv(g); i++) assert_int_equal(sd_gguf_copy_kv(w, g, i, &err), 0);
    for (int64_t i = 0; i < sd_gguf_n_tensors(g); i++) {
        const sd_gguf_tensor *t = sd_gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        float *f = malloc(nel_of(t) * sizeof(float));
        sd_ggml_to_f32(t->type, t->data, f, (int64_t)nel_of(t));
        assert_int_equal(sd_gguf_add_tensor(w, name, t->n_dims, t->ne, SD_GGML_F32, f, 0), 0);
        free(f);
    }
    if (sd_gguf_write(w, to, &err)) fail_msg("%s", err.msg);
    sd_gguf_writer_free(w);
    sd_gguf_close(g);
}

static void test_every_file_type(void **state) {
    (void)state;
    const char *types[] = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s",
                           "q4_k_m", "q5_k_s", "q5_k_m", "q6_k", "iq4_nl", "iq4_xs", "f16", "bf16", "f32"};
    char big[128];
    tmp_path(big, sizeof big, "dreamq_f32.gguf");
    f32_copy(test_data_path("tiny_dreamq_q5_k.gguf"), big);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        check_file_type(test_data_path("tiny_dream_f32.gguf"), types[i]); /* d = 32: K-quants fall back */
        check_file_type(test_data_path("tiny_llada_bf16.gguf"), types[i]); /* BF16 source */
        check_file_type(big, types[i]);                                     /* d = 256 */
    }
    unlink(big);
}

/* -------------------------------------------------- determinism, refusals */

static void *slurp(const char *path, size_t *n) {
    void *b = test_read_file(path, n);
    if (!b) fail_msg("cannot read %s", path);
    return b;
}

/* The same bytes on 1 and 2 threads (and the same as a second run). */
static void test_deterministic(void **state) {
    (void)state;
    char a[128], b[128], src[128];
    tmp_path(a, sizeof a, "t1.gguf");
    tmp_path(b, sizeof b, "t2.gguf");
    tmp_path(src, sizeof src, "src.gguf");
    f32_copy(test_data_path("tiny_dreamq_q6_k.gguf"), src);
    int64_t one[] = {SMDIFF_QUANT_THREADS, 1, 0}, two[] = {SMDIFF_QUANT_THREADS, 2, 0};
    const char *types[] = {"q4_k_m", "iq4_xs", "q5_1"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(smdiff_quantize(src, a, types[i], one, NULL, NULL, NULL), 0);
        assert_int_equal(smdiff_quantize(src, b, types[i], two, NULL, NULL, NULL), 0);
        size_t na, nb;
        void *x = slurp(a, &na), *y = slurp(b, &nb);
        assert_int_equal(na, nb);
        if (memcmp(x, y, na)) fail_msg("%s: 1 and 2 threads wrote different files", types[i]);
        free(x);
        free(y);
    }
    unlink(a);
    unlink(b);
    unlink(src);
}

static int n_progress;
static uint64_t last_done, last_total;
static void on_progress(uint64_t done, uint64_t total, void *user) {
    assert_ptr_equal(user, &n_progress);
    assert_true(done >= last_done && done <= total);
    n_progress++;
    last_done = done;
    last_total = total;
}

static void test_refusals_and_options(void **state) {
    (void)state;
    char out[128];
    tmp_path(out, sizeof out, "r.gguf");
    char f32[256];
    snprintf(f32, sizeof f32, "%s", test_data_path("tiny_dream_f32.gguf")); /* test_data_path's buffer is reused */
    assert_int_equal(smdiff_quantize(NULL, out, "q4_0", NULL, NULL, NULL, NULL), SMDIFF_E_INVAL);
    assert_int_equal(smdiff_quantize(f32, out, "q4_2", NULL, NULL, NULL, NULL), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_last_error(), "iq4_xs")); /* the names are listed */
    int64_t bad_family[] = {SMDIFF_SAMPLER_STEPS, 4, 0};
    assert_int_equal(smdiff_quantize(f32, out, "q4_0", bad_family, NULL, NULL, NULL), SMDIFF_E_INVAL);
    assert_non_null(strstr(smdiff_last_error(), "sampler option, not a quantizer option"));
    int64_t range[] = {SMDIFF_QUANT_THREADS, 5000, 0};
    assert_int_equal(smdiff_quantize(f32, out, "q4_0", range, NULL, NULL, NULL), SMDIFF_E_RANGE);
    int64_t pure_bad[] = {SMDIFF_QUANT_PURE, 2, 0};
    assert_int_equal(smdiff_quantize(f32, out, "q4_0", pure_bad, NULL, NULL, NULL), SMDIFF_E_RANGE);
    assert_int_equal(access(out, F_OK), -1);
    assert_int_equal(smdiff_quantize("/nonexistent_smdiff.gguf", out, "q4_0", NULL, NULL, NULL, NULL), SMDIFF_E_IO);
    /* an input already quantised */
    assert_int_equal(smdiff_quantize(test_data_path("tiny_dream_q4_0.gguf"), out, "q8_0", NULL, NULL, NULL, NULL),
                     SMDIFF_E_UNSUPPORTED);
    assert_non_null(strstr(smdiff_last_error(), "token_embd.weight is Q4_0"));
    /* option lookup */
    int32_t key;
    const char *name;
    assert_int_equal(smdiff_quantize_option_key("pure", &key), 0);
    assert_int_equal(key, SMDIFF_QUANT_PURE);
    assert_int_equal(smdiff_quantize_option_info(SMDIFF_QUANT_THREADS, &name, NULL, NULL, NULL, NULL), 0);
    assert_string_equal(name, "threads");
    assert_int_equal(smdiff_quantize_option_info(SMDIFF_MODEL_THREADS, &name, NULL, NULL, NULL, NULL), SMDIFF_E_INVAL);
    /* pure: one type everywhere (but the fallback); progress per tensor */
    int64_t pure[] = {SMDIFF_QUANT_PURE, 1, 0};
    n_progress = 0;
    last_done = 0;
    assert_int_equal(smdiff_quantize(f32, out, "q8_0", pure, on_progress, &n_progress, NULL), 0);
    sd_gguf *g = NULL;
    sd_error err;
    assert_int_equal(sd_gguf_open(out, 1, &g, &err), 0);
    assert_int_equal(n_progress, sd_gguf_n_tensors(g));
    assert_int_equal(last_done, last_total);
    assert_int_equal(sd_gguf_find_tensor(g, "output.weight")->type, SD_GGML_Q8_0);
    sd_gguf_close(g);
    assert_int_equal(smdiff_quantize(f32, out, "q4_0", pure, NULL, NULL, NULL), 0);
    assert_int_equal(sd_gguf_open(out, 1, &g, &err), 0);
    assert_int_equal(sd_gguf_find_tensor(g, "output.weight")->type, SD_GGML_Q4_0); /* no Q6_K head */
    sd_gguf_close(g);
    unlink(out);
}

/* A weight that is not finite is refused, naming the tensor and row. */
static void test_non_finite_weight(void **state) {
    (void)state;
    char src[128], out[128];
    tmp_path(src, sizeof src, "nan.gguf");
    tmp_path(out, sizeof out, "nan_q.gguf");
    size_t n;
    unsigned char *buf = slurp(test_data_path("tiny_dream_f32.gguf"), &n);
    sd_gguf *g = NULL;
    sd_error err;
    assert_int_equal(sd_gguf_open_memory(buf, n, &g, &err), 0);
    const sd_gguf_tensor *t = sd_gguf_find_tensor(g, "blk.1.ffn_up.weight");
    float nan = NAN;
    memcpy((unsigned char *)t->data + 4 * (5 * t->ne[0] + 3), &nan, 4); /* row 5 */
    sd_gguf_close(g);
    FILE *f = fopen(src, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
    free(buf);
    assert_int_equal(smdiff_quantize(src, out, "q4_0", NULL, NULL, NULL, NULL), SMDIFF_E_FORMAT);
    const char *msg = smdiff_last_error();
    if (!strstr(msg, "blk.1.ffn_up.weight") || !strstr(msg, "row 5")) fail_msg("%s", msg);
    assert_int_equal(access(out, F_OK), -1);
    /* finite, but beyond what an f16 scale reaches: refused, not stored as
     * an infinite scale the loader would refuse */
    buf = slurp(src, &n);
    assert_int_equal(sd_gguf_open_memory(buf, n, &g, &err), 0);
    t = sd_gguf_find_tensor(g, "blk.1.ffn_up.weight");
    float big = 1e30f;
    memcpy((unsigned char *)t->data + 4 * (5 * t->ne[0] + 3), &big, 4);
    sd_gguf_close(g);
    f = fopen(src, "wb");
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
    free(buf);
    assert_int_equal(smdiff_quantize(src, out, "q4_k_m", NULL, NULL, NULL, NULL), SMDIFF_E_FORMAT);
    msg = smdiff_last_error();
    if (!strstr(msg, "blk.1.ffn_up.weight") || !strstr(msg, "row 5") || !strstr(msg, "too large")) fail_msg("%s", msg);
    assert_int_equal(smdiff_quantize(src, out, "f32", NULL, NULL, NULL, NULL), SMDIFF_OK);
    unlink(out);
    unlink(src);
}

/* --------------------------------------------------------------- the CLI */

static void test_cli(void **state) {
    (void)state;
    const char *cli = test_cli_path();
    if (!cli) SKIP_BECAUSE("the smdiff CLI is not built (run through make check)");
    char out[128], cmd[1024], txt[4096];
    tmp_path(out, sizeof out, "cli.gguf");
    /* the summary on standard output, one line per storage type */
    snprintf(cmd, sizeof cmd, "%s quantize %s %s --type q4_k_m --threads 2 2>/dev/null", cli,
             test_data_path("tiny_dream_f32.gguf"), out);
    assert_int_equal(test_run(cmd, txt, sizeof txt), 0);
    if (!strstr(txt, "rel. error") || !strstr(txt, "\nQ5_0 ") || !strstr(txt, "\nQ8_0 ") || !strstr(txt, "\nF32 ") ||
        !strstr(txt, "tensor data:"))
        fail_msg("summary:\n%s", txt);
    smdiff_model *m;
    assert_int_equal(smdiff_model_create(&m), 0);
    assert_int_equal(smdiff_model_load_file(m, out), 0);
    smdiff_model_free(m);
    /* a progress bar only on request when stderr is not a terminal */
    snprintf(cmd, sizeof cmd, "%s quantize %s %s --type q8_0 --progress 2>&1 >/dev/null", cli,
             test_data_path("tiny_dream_f32.gguf"), out);
    assert_int_equal(test_run(cmd, txt, sizeof txt), 0);
    assert_non_null(strstr(txt, "100.0%"));
    snprintf(cmd, sizeof cmd, "%s quantize %s %s --type q8_0 2>&1 >/dev/null", cli,
             test_data_path("tiny_dream_f32.gguf"), out);
    assert_int_equal(test_run(cmd, txt, sizeof txt), 0);
    assert_null(strstr(txt, "%"));
    /* usage errors: 2; a failure while running: 1 */
    const char *bad[] = {"--type q9", "--type q4_0 --threads 1x", "--type q4_0 --threads -1", "", "--type q4_0 --bogus",
                         "--threads"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s quantize %s %s %s 2>/dev/null", cli, test_data_path("tiny_dream_f32.gguf"), out,
                 bad[i]);
        if (test_run(cmd, txt, sizeof txt) != 2) fail_msg("'%s' should be a usage error", bad[i]);
    }
    snprintf(cmd, sizeof cmd, "%s quantize %s %s --type q4_0 2>/dev/null", cli, test_data_path("tiny_dream_q4_0.gguf"),
             out);
    assert_int_equal(test_run(cmd, txt, sizeof txt), 1);
    snprintf(cmd, sizeof cmd, "%s quantize --help", cli);
    assert_int_equal(test_run(cmd, txt, sizeof txt), 0);
    assert_non_null(strstr(txt, "q4_k_m"));
    unlink(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recipes),         cmocka_unit_test(test_every_file_type),
        cmocka_unit_test(test_deterministic),   cmocka_unit_test(test_refusals_and_options),
        cmocka_unit_test(test_non_finite_weight), cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
