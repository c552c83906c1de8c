/* test_forward.c -- the transformer kernels against their naive references
 * on odd shapes (both the SIMD and the scalar paths), and properties of the
 * forward pass on random in-memory weights: row subsets, causal prefixes,
 * stored types, the llama.cpp Q/K permutation, abort, arena and argument
 * errors. Logits against the independent PyTorch reference are checked in
 * test_model.c (through GGUF files). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/pool.h"
#include "core/rng.h"
#include "io/gguf.h"
#include "nn/ops.h"
#include "nn/qgemm.h"
#include "nn/transformer.h"
#include "smdiff/smdiff.h"

/* ------------------------------------------------------------ helpers */

static uint64_t lcg_state = 88172645463325252ull;
static float frand(void) { /* uniform in [-1, 1) */
    lcg_state ^= lcg_state << 13;
    lcg_state ^= lcg_state >> 7;
    lcg_state ^= lcg_state << 17;
    return (float)((lcg_state >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}
static void fill(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = frand() * scale;
}

/* max |a - b| / max(max |b|, floor) */
static double rel_err(const float *a, const float *b, int64_t n, double floor) {
    double m = floor, e = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(b[i]) > m) m = fabs(b[i]);
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= e)) e = d; /* NaN propagates as failure */
    }
    return e / m;
}

#define ASSERT_CLOSE(a, b, n, tol)                                                         \
    do {                                                                                   \
        double e_ = rel_err((a), (b), (n), 1e-30);                                         \
        if (!(e_ <= (tol))) fail_msg("%s vs %s: relative error %g > %g", #a, #b, e_, (double)(tol)); \
    } while (0)

/* Both code paths: SIMD (if the CPU has it) and scalar. */
/* body on each kernel path: the best the CPU has, scalar C, and AVX2
 * without AVX-512 (the same as the first where the CPU lacks AVX-512) */
#define FOR_EACH_PATH(body)                        \
    for (int path_ = 0; path_ < 3; path_++) {      \
        sd_ops_force_scalar(path_ == 1);           \
        sd_ops_force_no_avx512(path_ == 2);        \
        body;                                      \
    }                                              \
    sd_ops_force_scalar(0), sd_ops_force_no_avx512(0)

static uint16_t f32_to_f16_bits(float f) { /* round to nearest, normals only (tests) */
    union { float f; uint32_t u; } v = {f};
    uint32_t sign = (v.u >> 16) & 0x8000, e = (v.u >> 23) & 0xff, m = v.u & 0x7fffff;
    if (e == 0 && m == 0) return (uint16_t)sign;
    int32_t ne = (int32_t)e - 127 + 15;
    if (ne <= 0) return (uint16_t)sign; /* flush tiny values: tests use moderate ones */
    uint32_t hm = m >> 13, rest = m & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (hm & 1))) hm++;
    if (hm == 0x400) { hm = 0; ne++; }
    return (uint16_t)(sign | ((uint32_t)ne << 10) | hm);
}

/* ---------------------------------------------------------- kernels */

static void test_half_conversions(void **state) {
    (void)state;
    assert_true(sd_f16_to_f32(0x3c00) == 1.0f);
    assert_true(sd_f16_to_f32(0xc000) == -2.0f);
    assert_true(sd_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(sd_f16_to_f32(0x0001) == ldexpf(1.0f, -24)); /* smallest subnormal */
    assert_true(sd_f16_to_f32(0x03ff) == ldexpf(1023.0f, -24));
    assert_true(isinf(sd_f16_to_f32(0x7c00)) && sd_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(sd_f16_to_f32(0x7e00)));
    assert_true(sd_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(sd_bf16_to_f32(0xc040) == -3.0f);
}

static void test_dequant_rows(void **state) {
    (void)state;
    enum { ROWS = 7, COLS = 96 + 32 }; /* Q8_0 needs multiples of 32; F16 also tried at 37 */
    uint16_t h[ROWS * COLS];
    unsigned char q[ROWS * (COLS / 32) * 34];
    for (int i = 0; i < ROWS * COLS; i++) h[i] = f32_to_f16_bits(frand() * 3.0f);
    for (size_t i = 0; i < sizeof q; i++) q[i] = (unsigned char)(int)(frand() * 127.0f); /* int first: frand() may be negative */
    for (int r = 0; r < ROWS; r++) { /* sane f16 scales in each Q8_0 block */
        for (int b = 0; b < COLS / 32; b++) {
            uint16_t s = f32_to_f16_bits(0.01f + 0.001f * (float)b);
            q[(r * (COLS / 32) + b) * 34] = (unsigned char)(s & 0xff);
            q[(r * (COLS / 32) + b) * 34 + 1] = (unsigned char)(s >> 8);
        }
    }
    float a[ROWS * COLS], b[ROWS * COLS];
    uint32_t types[] = {SD_GGML_F16, SD_GGML_BF16, SD_GGML_Q8_0};
    for (int t = 0; t < 3; t++) {
        const void *src = types[t] == SD_GGML_Q8_0 ? (const void *)q : (const void *)h;
        FOR_EACH_PATH({
            sd_dequant_rows(types[t], src, COLS, 2, ROWS - 2, a, NULL);
            sd_dequant_rows_ref(types[t], src, COLS, 2, ROWS - 2, b);
            /* Conversions are exact: bit-identical. */
            assert_memory_equal(a, b, sizeof(float) * (ROWS - 2) * COLS);
        });
    }
    /* odd row length for F16 (SIMD tail) */
    FOR_EACH_PATH({
        sd_dequant_rows(SD_GGML_F16, h, 37, 1, 3, a, NULL);
        sd_dequant_rows_ref(SD_GGML_F16, h, 37, 1, 3, b);
        assert_memory_equal(a, b, sizeof(float) * 3 * 37);
    });
    /* hand-computed Q8_0 block: scale 0.5 (f16 0x3800), q = -3 -> -1.5 */
    unsigned char blk[34] = {0x00, 0x38};
    for (int j = 0; j < 32; j++) blk[2 + j] = (unsigned char)(int8_t)(j - 3);
    FOR_EACH_PATH({
        sd_dequant_rows(SD_GGML_Q8_0, blk, 32, 0, 1, a, NULL);
        assert_true(a[0] == -1.5f && a[3] == 0.0f && a[31] == 14.0f);
    });
    assert_int_equal(sd_ggml_row_size(SD_GGML_Q8_0, 33), 0);
    assert_int_equal(sd_ggml_row_size(SD_GGML_Q8_0, 64), 68);
    assert_int_equal(sd_ggml_row_size(99, 64), 0);
}

static void test_rmsnorm(void **state) {
    (void)state;
    enum { L = 5, D = 37 };
    float x[L * D], w[D], a[L * D], b[L * D];
    fill(x, L * D, 2.0f);
    fill(w, D, 1.0f);
    FOR_EACH_PATH({
        sd_rmsnorm(a, x, w, L, D, 1e-5f, NULL);
        sd_rmsnorm_ref(b, x, w, L, D, 1e-5f);
        ASSERT_CLOSE(a, b, L * D, 1e-6);
    });
    /* in place */
    memcpy(a, x, sizeof x);
    sd_rmsnorm(a, a, w, L, D, 1e-5f, NULL);
    ASSERT_CLOSE(a, b, L * D, 1e-6);
}

static void test_rope(void **state) {
    (void)state;
    enum { L = 7, NH = 3, HD = 6, LD = NH * HD + 4 };
    float x[L * LD], a[L * LD], b[L * LD], ct[L * HD / 2], st[L * HD / 2];
    fill(x, L * LD, 1.0f);
    sd_rope_table(ct, st, NULL, L, HD, 10000.0f);
    for (int neox = 0; neox < 2; neox++) {
        memcpy(a, x, sizeof x);
        memcpy(b, x, sizeof x);
        sd_rope(a, L, NH, HD, LD, ct, st, neox, NULL);
        sd_rope_ref(b, L, NH, HD, LD, 10000.0f, neox);
        ASSERT_CLOSE(a, b, L * LD, 1e-6);
        /* columns past the heads untouched */
        for (int p = 0; p < L; p++) assert_memory_equal(a + p * LD + NH * HD, x + p * LD + NH * HD, 4 * sizeof(float));
    }
    /* Position 0 is the identity. */
    memcpy(a, x, sizeof x);
    sd_rope(a, 1, NH, HD, LD, ct, st, 1, NULL);
    assert_memory_equal(a, x, sizeof(float) * NH * HD);
    /* llama.cpp's permutation: within a head, output row 2i+c comes from
     * input row c*hd/2 + i. Adjacent-pair RoPE on permuted vectors equals
     * half-split RoPE on the originals, permuted. */
    float perm[L * LD];
    for (int p = 0; p < L; p++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < HD / 2; i++)
                for (int c = 0; c < 2; c++)
                    perm[p * LD + h * HD + 2 * i + c] = x[p * LD + h * HD + c * HD / 2 + i];
    memcpy(a, x, sizeof x);
    sd_rope(a, L, NH, HD, LD, ct, st, 1, NULL);
    sd_rope(perm, L, NH, HD, LD, ct, st, 0, NULL);
    for (int p = 0; p < L; p++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < HD / 2; i++)
                for (int c = 0; c < 2; c++)
                    assert_float_equal(perm[p * LD + h * HD + 2 * i + c], a[p * LD + h * HD + c * HD / 2 + i], 1e-6);
}

static void test_swiglu(void **state) {
    (void)state;
    enum { N = 1037 };
    float g[N], u[N], a[N], b[N];
    fill(g, N, 20.0f);
    fill(u, N, 2.0f);
    g[0] = -100.0f; /* exp(100) saturates: silu -> -0 */
    g[1] = 100.0f;
    FOR_EACH_PATH({
        memcpy(a, g, sizeof g);
        memcpy(b, g, sizeof g);
        sd_swiglu(a, u, N, NULL);
        sd_swiglu_ref(b, u, N);
        for (int i = 0; i < N; i++)
            if (fabsf(a[i] - b[i]) > 1e-6f * (1.0f + fabsf(b[i]))) fail_msg("swiglu[%d] %g vs %g", i, a[i], b[i]);
    });
}

/* sd_attention with its own scratch (pool: its threads) */
static void attention(float *out, const float *q, int64_t n, const int32_t *pos, const float *k, const float *v,
                      int64_t L, int64_t H, int64_t Hkv, int64_t hd, int causal, sd_pool *pool) {
    float *s = aligned_alloc(64, sizeof(float) * sd_attention_scratch_floats(hd, pool ? sd_pool_threads(pool) : 1));
    assert_non_null(s);
    sd_attention(out, q, n, pos, k, v, L, H, Hkv, hd, causal, s, pool);
    free(s);
}

static void test_attention(void **state) {
    (void)state;
    /* odd small shape (one tile, generic head size) and a shape with several
     * query and key tiles, the last ones partial, at the SIMD head size 64 */
    struct { int L, H, HKV, HD; float qs; } shapes[] = {{13, 6, 2, 10, 1.5f}, {150, 4, 2, 64, 0.6f}};
    for (int sh = 0; sh < 2; sh++) {
        const int L = shapes[sh].L, H = shapes[sh].H, HKV = shapes[sh].HKV, HD = shapes[sh].HD;
        float *q = malloc(sizeof(float) * L * H * HD), *k = malloc(sizeof(float) * L * HKV * HD);
        float *v = malloc(sizeof(float) * L * HKV * HD), *a = malloc(sizeof(float) * L * H * HD);
        float *b = malloc(sizeof(float) * L * H * HD), *c = malloc(sizeof(float) * L * H * HD);
        fill(q, L * H * HD, shapes[sh].qs); /* scores spread widely: the running maximum moves */
        fill(k, L * HKV * HD, 1.5f);
        fill(v, L * HKV * HD, 1.0f);
        for (int causal = 0; causal < 2; causal++) {
            FOR_EACH_PATH({
                attention(a, q, L, NULL, k, v, L, H, HKV, HD, causal, NULL);
                sd_attention_ref(b, q, L, NULL, k, v, L, H, HKV, HD, causal);
                ASSERT_CLOSE(a, b, L * H * HD, 1e-5);
                /* a subset of rows, in any order: exactly those rows of the whole */
                int32_t pos[40];
                int n = 0;
                for (int p = L - 1; p >= 0 && n < 40; p -= 3) pos[n++] = p;
                float *qs = malloc(sizeof(float) * n * H * HD);
                for (int i = 0; i < n; i++) memcpy(qs + i * H * HD, q + pos[i] * H * HD, sizeof(float) * H * HD);
                attention(c, qs, n, pos, k, v, L, H, HKV, HD, causal, NULL);
                for (int i = 0; i < n; i++)
                    assert_memory_equal(c + i * H * HD, a + pos[i] * H * HD, sizeof(float) * H * HD);
                /* in place (out == q), on a pool of 2 threads: the same bits */
                sd_error err = {0};
                sd_pool *pool;
                assert_int_equal(sd_pool_create(2, &pool, &err), 0);
                attention(qs, qs, n, pos, k, v, L, H, HKV, HD, causal, pool);
                assert_memory_equal(qs, c, sizeof(float) * n * H * HD);
                sd_pool_free(pool);
                free(qs);
            });
        }
        /* causal row 0 attends only to position 0: output = v_g[0] */
        attention(a, q, L, NULL, k, v, L, H, HKV, HD, 1, NULL);
        for (int h = 0; h < H; h++)
            for (int cc = 0; cc < HD; cc++) assert_float_equal(a[h * HD + cc], v[(h / (H / HKV)) * HD + cc], 1e-6);
        free(q), free(k), free(v), free(a), free(b), free(c);
    }
}

static void test_matmul_w(void **state) {
    (void)state;
    enum { M = 5, ROWS = 70, COLS = 64 };
    float x[M * COLS], wf[ROWS * COLS], a[M * (ROWS + 3)], b[M * (ROWS + 3)];
    fill(x, M * COLS, 1.0f);
    fill(wf, ROWS * COLS, 1.0f);
    uint16_t wh[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++) wh[i] = f32_to_f16_bits(wf[i]);
    unsigned char wq[ROWS * (COLS / 32) * 34];
    for (size_t i = 0; i < sizeof wq; i++) wq[i] = (unsigned char)(int)(frand() * 127.0f); /* int first: frand() may be negative */
    for (int blk = 0; blk < ROWS * COLS / 32; blk++) { wq[blk * 34] = 0x66; wq[blk * 34 + 1] = 0x20; }
    float panel[16 * COLS];
    struct { uint32_t t; const void *w; } cases[] = {{SD_GGML_F32, wf}, {SD_GGML_F16, wh}, {SD_GGML_BF16, wh}, {SD_GGML_Q8_0, wq}};
    sd_qgemm_force_few_max(0); /* the panel path for every M (the few-row kernels: test_quant) */
    for (int c = 0; c < 4; c++)
        for (int beta = 0; beta < 2; beta++) {
            fill(a, M * (ROWS + 3), 1.0f);
            memcpy(b, a, sizeof a);
            /* panel of 16 rows: 5 panels, the last one partial */
            sd_matmul_w(a, ROWS + 3, (float)beta, x, M, cases[c].t, cases[c].w, ROWS, COLS, panel, 16 * COLS, NULL);
            sd_matmul_w_ref(b, ROWS + 3, (float)beta, x, M, cases[c].t, cases[c].w, ROWS, COLS);
            ASSERT_CLOSE(a, b, M * (ROWS + 3), 1e-5);
        }
    sd_qgemm_force_few_max(-1);
    /* Q8_0 with M = 5 takes the few-row integer kernels: the activations
     * are rounded to 8 bits per block of 32 (relative error up to 1/254 of
     * the block's largest value per element), so the product agrees to
     * about 1e-2 relative, not to f32 rounding. */
    assert_true(sd_qgemm_few_max(SD_GGML_Q8_0) >= M);
    fill(a, M * (ROWS + 3), 1.0f);
    memcpy(b, a, sizeof a);
    sd_matmul_w(a, ROWS + 3, 1.0f, x, M, SD_GGML_Q8_0, wq, ROWS, COLS, panel, 16 * COLS, NULL);
    sd_matmul_w_ref(b, ROWS + 3, 1.0f, x, M, SD_GGML_Q8_0, wq, ROWS, COLS);
    ASSERT_CLOSE(a, b, M * (ROWS + 3), 1e-2);
    assert_true(rel_err(a, b, M * (ROWS + 3), 1e-30) > 1e-6); /* it was the integer path */
    /* 33 and 40 rows (above SD_QGEMM_FEW_ROWS, up to SD_QGEMM_SPLIT_ROWS)
     * go to the integer kernels in two chunks: each activation row's
     * product is its own, so the result is bit for bit that of the two
     * halves computed apart */
    enum { MB = 40 };
    static float xb[MB * COLS], c1[MB * (ROWS + 3)], c2[MB * (ROWS + 3)], cr[MB * (ROWS + 3)];
    fill(xb, MB * COLS, 1.0f);
    for (int m = 33; m <= MB; m += MB - 33) {
        int h = (m + 1) / 2;
        fill(c1, MB * (ROWS + 3), 1.0f);
        memcpy(c2, c1, sizeof c1);
        memcpy(cr, c1, sizeof c1);
        sd_matmul_w(c1, ROWS + 3, 1.0f, xb, m, SD_GGML_Q8_0, wq, ROWS, COLS, panel, 16 * COLS, NULL);
        sd_matmul_w(c2, ROWS + 3, 1.0f, xb, h, SD_GGML_Q8_0, wq, ROWS, COLS, panel, 16 * COLS, NULL);
        sd_matmul_w(c2 + h * (ROWS + 3), ROWS + 3, 1.0f, xb + h * COLS, m - h, SD_GGML_Q8_0, wq, ROWS, COLS, panel,
                    16 * COLS, NULL);
        assert_memory_equal(c1, c2, sizeof(float) * (size_t)m * (ROWS + 3));
        sd_matmul_w_ref(cr, ROWS + 3, 1.0f, xb, m, SD_GGML_Q8_0, wq, ROWS, COLS);
        ASSERT_CLOSE(c1, cr, m * (ROWS + 3), 1e-2);
        assert_true(rel_err(c1, cr, m * (ROWS + 3), 1e-30) > 1e-6); /* the integer path, not panels */
    }
}

/* ------------------------------------------------- forward on random weights */

typedef struct {
    sd_weights w;
    sd_layer_weights layers[3];
    void *blobs[64];
    int n_blobs;
} test_model;

static void *blob(test_model *m, size_t bytes) {
    void *p = sd_malloc(bytes);
    assert_non_null(p);
    m->blobs[m->n_blobs++] = p;
    return p;
}

/* A weight of type (F32 or F16) with random values; for F16 the values are
 * the rounded ones, and `f32_twin` (if given) receives them as F32. */
static sd_weight rand_weight(test_model *m, int64_t rows, int64_t cols, uint32_t type, float scale,
                             float offset) {
    sd_weight w = {NULL, type, rows, cols};
    float *f = blob(m, sizeof(float) * (size_t)(rows * cols));
    for (int64_t i = 0; i < rows * cols; i++) f[i] = offset + frand() * scale;
    if (type == SD_GGML_F16) {
        uint16_t *h = blob(m, 2 * (size_t)(rows * cols));
        for (int64_t i = 0; i < rows * cols; i++) h[i] = f32_to_f16_bits(f[i]);
        w.data = h;
    } else {
        w.data = f;
    }
    return w;
}

static void model_init(test_model *m, sd_arch arch, uint32_t mat_type) {
    memset(m, 0, sizeof *m);
    lcg_state = 12345;
    sd_hparams *hp = &m->w.hp;
    hp->arch = arch;
    hp->n_vocab = 67; hp->n_embd = 24; hp->n_layer = 3; hp->n_head = 6; hp->n_head_kv = 3;
    hp->n_ff = 40; hp->n_ctx = 64; hp->norm_eps = 1e-6f; hp->rope_base = 10000.0f;
    hp->mask_id = 66;
    int64_t d = 24, qd = 24, kd = 12, F = 40; /* head size 4 */
    m->w.layers = m->layers;
    m->w.token_embd = rand_weight(m, 67, d, mat_type, 1.0f, 0);
    m->w.output_norm = rand_weight(m, 1, d, SD_GGML_F32, 0.1f, 1.0f);
    m->w.output = rand_weight(m, 67, d, mat_type, 0.3f, 0);
    for (int i = 0; i < 3; i++) {
        sd_layer_weights *l = &m->layers[i];
        l->attn_norm = rand_weight(m, 1, d, SD_GGML_F32, 0.1f, 1.0f);
        l->wq = rand_weight(m, qd, d, mat_type, 0.3f, 0);
        l->wk = rand_weight(m, kd, d, mat_type, 0.3f, 0);
        l->wv = rand_weight(m, kd, d, mat_type, 0.3f, 0);
        if (arch == SD_ARCH_DREAM) {
            l->bq = rand_weight(m, 1, qd, SD_GGML_F32, 0.1f, 0);
            l->bk = rand_weight(m, 1, kd, SD_GGML_F32, 0.1f, 0);
            l->bv = rand_weight(m, 1, kd, SD_GGML_F32, 0.1f, 0);
        }
        l->wo = rand_weight(m, d, qd, mat_type, 0.3f, 0);
        l->ffn_norm = rand_weight(m, 1, d, SD_GGML_F32, 0.1f, 1.0f);
        l->w_gate = rand_weight(m, F, d, mat_type, 0.3f, 0);
        l->w_up = rand_weight(m, F, d, mat_type, 0.3f, 0);
        l->w_down = rand_weight(m, d, F, mat_type, 0.3f, 0);
    }
}

static void model_free(test_model *m) {
    for (int i = 0; i < m->n_blobs; i++) sd_free(m->blobs[i]);
}

/* logits[n_rows, V] (and hidden if given) for a canvas of L embeddings */
static int32_t run_forward(const sd_weights *w, const float *embd, int64_t L, const int32_t *rows,
                           int64_t n_rows, float *logits, float *hidden, int causal, sd_pool *pool) {
    sd_arena a;
    assert_int_equal(sd_arena_init(&a, sd_forward_scratch_bytes(&w->hp, L, n_rows, pool ? sd_pool_threads(pool) : 1), 0), 0);
    sd_forward_opts o = {causal, pool, NULL, NULL};
    sd_error err = {0};
    int32_t rc = sd_forward(w, embd, L, rows, n_rows, logits, hidden, &o, &a, &err);
    if (rc) fprintf(stderr, "sd_forward: %s\n", err.msg);
    sd_arena_destroy(&a);
    return rc;
}

enum { TL = 11, TV = 67, TD = 24 };

static void canvas(const sd_weights *w, float *embd) {
    for (int i = 0; i < TL; i++) sd_embed_token(w, (int32_t)((i * 7 + 3) % TV), embd + i * TD);
}

static void test_forward_rows_and_threads(void **state) {
    (void)state;
    test_model m;
    model_init(&m, SD_ARCH_DREAM, SD_GGML_F32);
    sd_error err = {0};
    assert_int_equal(sd_weights_validate(&m.w, &err), 0);
    float embd[TL * TD], full[TL * TV], part[3 * TV], hidden[TL * TD], hidden2[TL * TD];
    canvas(&m.w, embd);
    int32_t all[TL];
    for (int i = 0; i < TL; i++) all[i] = i;
    assert_int_equal(run_forward(&m.w, embd, TL, all, TL, full, hidden, 0, NULL), 0);
    int32_t rows[3] = {10, 0, 4};
    assert_int_equal(run_forward(&m.w, embd, TL, rows, 3, part, NULL, 0, NULL), 0);
    for (int r = 0; r < 3; r++) ASSERT_CLOSE(part + r * TV, full + rows[r] * TV, TV, 1e-6);
    /* n_rows = 0: hidden states only, the same ones */
    assert_int_equal(run_forward(&m.w, embd, TL, NULL, 0, NULL, hidden2, 0, NULL), 0);
    assert_memory_equal(hidden, hidden2, sizeof hidden);
    /* logits = hidden @ output^T */
    const float *out_w = m.w.output.data;
    for (int i = 0; i < TL; i++)
        for (int v = 0; v < TV; v += 13) {
            double s = 0;
            for (int j = 0; j < TD; j++) s += (double)hidden[i * TD + j] * out_w[v * TD + j];
            assert_float_equal(full[i * TV + v], (float)s, 1e-4);
        }
    /* a pool of 2 threads gives the same result (deterministic partition) */
    sd_pool *pool;
    assert_int_equal(sd_pool_create(2, &pool, &err), 0);
    assert_int_equal(run_forward(&m.w, embd, TL, rows, 3, part, NULL, 0, pool), 0);
    for (int r = 0; r < 3; r++) ASSERT_CLOSE(part + r * TV, full + rows[r] * TV, TV, 1e-6);
    sd_pool_free(pool);
    model_free(&m);
}

static void test_forward_causal(void **state) {
    (void)state;
    test_model m;
    model_init(&m, SD_ARCH_LLADA, SD_GGML_F32);
    float embd[TL * TD], causal[TL * TV], bidir[TL * TV], prefix[TV];
    canvas(&m.w, embd);
    int32_t all[TL];
    for (int i = 0; i < TL; i++) all[i] = i;
    assert_int_equal(run_forward(&m.w, embd, TL, all, TL, causal, NULL, 1, NULL), 0);
    assert_int_equal(run_forward(&m.w, embd, TL, all, TL, bidir, NULL, 0, NULL), 0);
    /* Causal row i sees only positions <= i: it equals the last row of a
     * causal forward over the prefix of length i + 1 (later positions
     * cannot leak in), and differs from the bidirectional row. */
    for (int i = 0; i < TL; i += 3) {
        int32_t last = i;
        assert_int_equal(run_forward(&m.w, embd, i + 1, &last, 1, prefix, NULL, 1, NULL), 0);
        ASSERT_CLOSE(causal + i * TV, prefix, TV, 1e-5);
    }
    assert_true(rel_err(causal, bidir, TV, 1e-30) > 1e-3);
    /* With one layer, the causal row i also equals the last row of a
     * bidirectional forward over the prefix (no deeper layer to differ). */
    m.w.hp.n_layer = 1;
    assert_int_equal(run_forward(&m.w, embd, TL, all, TL, causal, NULL, 1, NULL), 0);
    for (int i = 0; i < TL; i += 2) {
        int32_t last = i;
        assert_int_equal(run_forward(&m.w, embd, i + 1, &last, 1, prefix, NULL, 0, NULL), 0);
        ASSERT_CLOSE(causal + i * TV, prefix, TV, 1e-5);
    }
    model_free(&m);
}

static void test_forward_f16_and_permuted(void **state) {
    (void)state;
    /* F16 weights (dequantised in panels) against the same values as F32. */
    test_model mh, mf;
    model_init(&mh, SD_ARCH_DREAM, SD_GGML_F16);
    model_init(&mf, SD_ARCH_DREAM, SD_GGML_F32);
    sd_weight *wh[] = {&mh.w.token_embd, &mh.w.output}, *wf[] = {&mf.w.token_embd, &mf.w.output};
    for (int i = 0; i < 2; i++) sd_dequant_rows_ref(SD_GGML_F16, wh[i]->data, TD, 0, TV, (float *)wf[i]->data);
    for (int l = 0; l < 3; l++) {
        sd_weight *h[] = {&mh.layers[l].wq, &mh.layers[l].wk, &mh.layers[l].wv, &mh.layers[l].wo,
                          &mh.layers[l].w_gate, &mh.layers[l].w_up, &mh.layers[l].w_down};
        sd_weight *f[] = {&mf.layers[l].wq, &mf.layers[l].wk, &mf.layers[l].wv, &mf.layers[l].wo,
                          &mf.layers[l].w_gate, &mf.layers[l].w_up, &mf.layers[l].w_down};
        for (int i = 0; i < 7; i++) sd_dequant_rows_ref(SD_GGML_F16, h[i]->data, h[i]->cols, 0, h[i]->rows, (float *)f[i]->data);
    }
    float embd[TL * TD], a[TL * TV], b[TL * TV];
    canvas(&mh.w, embd);
    int32_t all[TL];
    for (int i = 0; i < TL; i++) all[i] = i;
    assert_int_equal(run_forward(&mh.w, embd, TL, all, TL, a, NULL, 0, NULL), 0);
    assert_int_equal(run_forward(&mf.w, embd, TL, all, TL, b, NULL, 0, NULL), 0);
    ASSERT_CLOSE(a, b, TL * TV, 1e-5);
    model_free(&mh);

    /* llada: permuting Q/K rows as llama.cpp does and switching to
     * adjacent-pair RoPE leaves the logits unchanged. */
    test_model mp;
    model_init(&mp, SD_ARCH_LLADA, SD_GGML_F32);
    assert_int_equal(run_forward(&mp.w, embd, TL, all, TL, a, NULL, 0, NULL), 0);
    for (int l = 0; l < 3; l++) {
        sd_weight *t[] = {&mp.layers[l].wq, &mp.layers[l].wk};
        int heads[] = {6, 3};
        for (int i = 0; i < 2; i++) {
            float *w = (float *)t[i]->data, tmp[24 * 24];
            int64_t hd = 4, cols = t[i]->cols;
            memcpy(tmp, w, sizeof(float) * (size_t)(t[i]->rows * cols));
            for (int h = 0; h < heads[i]; h++)
                for (int j = 0; j < hd / 2; j++)
                    for (int c = 0; c < 2; c++)
                        memcpy(w + (h * hd + 2 * j + c) * cols, tmp + (h * hd + c * hd / 2 + j) * cols, sizeof(float) * (size_t)cols);
        }
    }
    mp.w.hp.rope_permuted = 1;
    assert_int_equal(run_forward(&mp.w, embd, TL, all, TL, b, NULL, 0, NULL), 0);
    ASSERT_CLOSE(b, a, TL * TV, 1e-5);
    /* and without the flag the permuted file would be wrong */
    mp.w.hp.rope_permuted = 0;
    assert_int_equal(run_forward(&mp.w, embd, TL, all, TL, b, NULL, 0, NULL), 0);
    assert_true(rel_err(b, a, TL * TV, 1e-30) > 1e-3);
    model_free(&mp);
    model_free(&mf);
}

/* ------------------------------------------- partial forwards, caches */

enum { PL = 70 }; /* a canvas longer than one key tile (64) */

static void long_canvas(const sd_weights *w, float *embd, int salt) {
    for (int i = 0; i < PL; i++) sd_embed_token(w, (int32_t)((i * 7 + 3 + salt) % TV), embd + i * TD);
}

/* One sequence through sd_forward_batch with its own arena. */
static int32_t run_batch(const sd_weights *w, const sd_fwd_seq *seqs, int64_t n_seqs, const int32_t *out,
                         int64_t n_out, float *logits, int causal) {
    int64_t N = 0;
    for (int64_t i = 0; i < n_seqs; i++) N += seqs[i].n;
    sd_arena a;
    assert_int_equal(sd_arena_init(&a, sd_forward_batch_scratch_bytes(&w->hp, N, n_out, 1), 0), 0);
    sd_forward_opts o = {causal, NULL, NULL, NULL};
    sd_error err = {0};
    int32_t rc = sd_forward_batch(w, seqs, n_seqs, out, n_out, logits, NULL, &o, &a, &err);
    if (rc) fprintf(stderr, "sd_forward_batch: %s\n", err.msg);
    sd_arena_destroy(&a);
    return rc;
}

/* A partial forward -- some rows against the keys and values a full
 * forward of the same inputs left in the cache -- gives those rows of the
 * full forward; a full forward through a cache gives the uncached one; a
 * partial forward writes its rows' keys and values and leaves the others. */
static void test_forward_partial(void **state) {
    (void)state;
    for (int arch = SD_ARCH_DREAM; arch <= SD_ARCH_LLADA; arch++)
        for (int causal = 0; causal < 2; causal++) {
            test_model m;
            model_init(&m, (sd_arch)arch, SD_GGML_F32);
            const sd_hparams *hp = &m.w.hp;
            float *embd = malloc(sizeof(float) * PL * TD), *full = malloc(sizeof(float) * PL * TV);
            float *cached = malloc(sizeof(float) * PL * TV), *part = malloc(sizeof(float) * PL * TV);
            float *mem = malloc(sizeof(float) * sd_kv_cache_floats(hp, PL));
            sd_kv_cache cache;
            sd_kv_cache_init(&cache, hp, mem, PL);
            long_canvas(&m.w, embd, 0);
            int32_t all[PL];
            for (int i = 0; i < PL; i++) all[i] = i;
            assert_int_equal(run_forward(&m.w, embd, PL, all, PL, full, NULL, causal, NULL), 0);
            sd_fwd_seq refresh = {embd, PL, NULL, PL, &cache, 0.0f};
            assert_int_equal(run_batch(&m.w, &refresh, 1, all, PL, cached, causal), 0);
            ASSERT_CLOSE(cached, full, PL * TV, 1e-6);
            /* a block and the row before it (dream's shifted logits), in
             * any order, and a row from each end */
            int32_t pos[] = {40, 33, 34, 35, 36, 37, 38, 39, 0, 69, 32};
            int np = (int)(sizeof pos / sizeof pos[0]);
            int32_t rows[] = {2, 9, 10, 0};
            sd_fwd_seq partial = {embd, PL, pos, np, &cache, 0.0f};
            assert_int_equal(run_batch(&m.w, &partial, 1, rows, 4, part, causal), 0);
            for (int r = 0; r < 4; r++) ASSERT_CLOSE(part + r * TV, full + pos[rows[r]] * TV, TV, 1e-5);
            /* new inputs at the block: its layer-0 keys and values are
             * written (they depend on the row's own input alone), the
             * others' stay */
            const size_t kd = 12;
            float *k0 = malloc(sizeof(float) * PL * kd);
            memcpy(k0, cache.k, sizeof(float) * PL * kd);
            float *embd2 = malloc(sizeof(float) * PL * TD);
            long_canvas(&m.w, embd2, 5);
            float *mem2 = malloc(sizeof(float) * sd_kv_cache_floats(hp, PL));
            sd_kv_cache fresh;
            sd_kv_cache_init(&fresh, hp, mem2, PL);
            sd_fwd_seq again = {embd2, PL, NULL, PL, &fresh, 0.0f};
            assert_int_equal(run_batch(&m.w, &again, 1, all, PL, full, causal), 0);
            partial.embd = embd2;
            assert_int_equal(run_batch(&m.w, &partial, 1, rows, 4, part, causal), 0);
            for (int p = 0; p < PL; p++) {
                int in = 0;
                for (int i = 0; i < np; i++) in |= pos[i] == p;
                const float *want = in ? fresh.k + p * kd : k0 + p * kd;
                ASSERT_CLOSE(cache.k + p * kd, want, (int64_t)kd, 1e-6);
            }
            /* all rows through the cache, in a scrambled order: the full
             * forward of the new inputs */
            int32_t perm[PL];
            for (int i = 0; i < PL; i++) perm[i] = (int32_t)((i * 31) % PL);
            sd_fwd_seq every = {embd2, PL, perm, PL, &cache, 0.0f};
            assert_int_equal(run_batch(&m.w, &every, 1, all, PL, part, causal), 0);
            for (int i = 0; i < PL; i++) ASSERT_CLOSE(part + i * TV, full + perm[i] * TV, TV, 1e-5);
            free(embd), free(full), free(cached), free(part), free(mem), free(mem2), free(k0), free(embd2);
            model_free(&m);
        }
}

/* Several sequences in one call -- of different lengths, one partial
 * against its cache, one whole without a cache -- give what each gives
 * alone. */
static void test_forward_batch(void **state) {
    (void)state;
    test_model m;
    model_init(&m, SD_ARCH_DREAM, SD_GGML_F32);
    const sd_hparams *hp = &m.w.hp;
    float *ea = malloc(sizeof(float) * PL * TD), eb[TL * TD], *mem = malloc(sizeof(float) * sd_kv_cache_floats(hp, PL));
    long_canvas(&m.w, ea, 3);
    canvas(&m.w, eb);
    sd_kv_cache cache;
    sd_kv_cache_init(&cache, hp, mem, PL);
    int32_t all[PL];
    for (int i = 0; i < PL; i++) all[i] = i;
    float *la = malloc(sizeof(float) * PL * TV), lb[TL * TV], both[6 * TV], alone[3 * TV];
    sd_fwd_seq fa = {ea, PL, NULL, PL, &cache, 0.0f};
    assert_int_equal(run_batch(&m.w, &fa, 1, all, PL, la, 0), 0);
    assert_int_equal(run_forward(&m.w, eb, TL, all, TL, lb, NULL, 0, NULL), 0);
    int32_t pos[] = {5, 6, 7};
    sd_fwd_seq seqs[2] = {{ea, PL, pos, 3, &cache, 0.0f}, {eb, TL, NULL, TL, NULL, 0.0f}};
    int32_t out[] = {0, 3 + 10, 2, 3 + 0, 1, 3 + 4}; /* rows of both, interleaved */
    assert_int_equal(run_batch(&m.w, seqs, 2, out, 6, both, 0), 0);
    for (int r = 0; r < 6; r += 2) {
        ASSERT_CLOSE(both + r * TV, la + pos[out[r]] * TV, TV, 1e-5);
        ASSERT_CLOSE(both + (r + 1) * TV, lb + (out[r + 1] - 3) * TV, TV, 1e-5);
    }
    /* the same rows alone */
    int32_t ra[] = {0, 2, 1};
    assert_int_equal(run_batch(&m.w, seqs, 1, ra, 3, alone, 0), 0);
    for (int r = 0; r < 3; r++) ASSERT_CLOSE(alone + r * TV, both + 2 * r * TV, TV, 1e-6);
    /* bad requests: a partial forward without a cache, a position off the
     * canvas, an output row past the stacked rows, a short cache */
    sd_fwd_seq bad = {ea, PL, pos, 3, NULL, 0.0f};
    assert_int_equal(run_batch(&m.w, &bad, 1, ra, 1, alone, 0), SMDIFF_E_INVAL);
    int32_t off[] = {PL};
    sd_fwd_seq bad2 = {ea, PL, off, 1, &cache, 0.0f};
    assert_int_equal(run_batch(&m.w, &bad2, 1, ra, 1, alone, 0), SMDIFF_E_RANGE);
    int32_t past[] = {3};
    assert_int_equal(run_batch(&m.w, seqs, 1, past, 1, alone, 0), SMDIFF_E_RANGE);
    cache.n_ctx = PL - 1;
    assert_int_equal(run_batch(&m.w, seqs, 1, ra, 1, alone, 0), SMDIFF_E_INVAL);
    free(ea), free(mem), free(la);
    model_free(&m);
}

/* Scratch grows linearly with the canvas (no L x L scores, the
 * feed-forward in chunks), and a 4,096-position canvas runs in exactly
 * what sd_forward_scratch_bytes says. */
static void test_forward_long_canvas(void **state) {
    (void)state;
    test_model m;
    model_init(&m, SD_ARCH_LLADA, SD_GGML_F32);
    m.w.hp.n_layer = 1;
    const sd_hparams *hp = &m.w.hp;
    size_t b1 = sd_forward_scratch_bytes(hp, 1024, 1, 1), b2 = sd_forward_scratch_bytes(hp, 2048, 1, 1),
           b4 = sd_forward_scratch_bytes(hp, 4096, 2, 1);
    assert_true(b4 - b2 <= 2 * (b2 - b1) + 4096);
    enum { LL = 4096 };
    float *embd = malloc(sizeof(float) * LL * TD), logits[2 * TV];
    for (int i = 0; i < LL; i++) sd_embed_token(&m.w, (int32_t)((i * 13 + 1) % TV), embd + i * TD);
    int32_t rows[2] = {LL - 1, 17};
    sd_arena a;
    assert_int_equal(sd_arena_init(&a, b4, 0), 0);
    sd_forward_opts o = {1, NULL, NULL, NULL}; /* causal: half the work */
    sd_error err = {0};
    assert_int_equal(sd_forward(&m.w, embd, LL, rows, 2, logits, NULL, &o, &a, &err), 0);
    assert_true(a.high_water <= b4);
    /* causal row 17 is the last row of the 18-position prefix */
    float prefix[TV];
    int32_t last = 17;
    assert_int_equal(run_forward(&m.w, embd, 18, &last, 1, prefix, NULL, 1, NULL), 0);
    ASSERT_CLOSE(logits + TV, prefix, TV, 1e-5);
    for (int v = 0; v < TV; v++) assert_true(isfinite(logits[v]));
    sd_arena_destroy(&a);
    free(embd);
    model_free(&m);
}

static int abort_after(void *ud) { return --*(int *)ud < 0; }

static void test_forward_errors(void **state) {
    (void)state;
    test_model m;
    model_init(&m, SD_ARCH_DREAM, SD_GGML_F32);
    float embd[TL * TD], out[TV];
    canvas(&m.w, embd);
    sd_error err = {0};
    sd_arena a;
    size_t need = sd_forward_scratch_bytes(&m.w.hp, TL, 1, 1);
    assert_true(need > 0);
    int32_t row = 2;
    /* arena one byte short of the need */
    assert_int_equal(sd_arena_init(&a, need - 64, 0), 0);
    assert_int_equal(sd_forward(&m.w, embd, TL, &row, 1, out, NULL, NULL, &a, &err), SMDIFF_E_NOMEM);
    assert_int_equal(a.used_total, 0); /* nothing left behind */
    sd_arena_destroy(&a);
    assert_int_equal(sd_arena_init(&a, need, 0), 0);
    assert_int_equal(sd_forward(&m.w, embd, TL, &row, 1, out, NULL, NULL, &a, &err), 0);
    row = TL;
    assert_int_equal(sd_forward(&m.w, embd, TL, &row, 1, out, NULL, NULL, &a, &err), SMDIFF_E_RANGE);
    row = -1;
    assert_int_equal(sd_forward(&m.w, embd, TL, &row, 1, out, NULL, NULL, &a, &err), SMDIFF_E_RANGE);
    assert_int_equal(sd_forward(&m.w, embd, 0, &row, 0, out, NULL, NULL, &a, &err), SMDIFF_E_INVAL);
    row = 0;
    int budget = 2;
    sd_forward_opts o = {0, NULL, abort_after, &budget};
    assert_int_equal(sd_forward(&m.w, embd, TL, &row, 1, out, NULL, &o, &a, &err), SMDIFF_E_ABORTED);
    assert_int_equal(a.used_total, 0);
    sd_arena_destroy(&a);

    /* validation names the tensor */
    m.layers[1].wk.rows = 11;
    assert_int_equal(sd_weights_validate(&m.w, &err), SMDIFF_E_FORMAT);
    assert_non_null(strstr(err.msg, "blk.1.attn_k.weight"));
    m.layers[1].wk.rows = 12;
    m.layers[2].ffn_norm.data = NULL;
    assert_int_equal(sd_weights_validate(&m.w, &err), SMDIFF_E_FORMAT);
    assert_non_null(strstr(err.msg, "blk.2.ffn_norm.weight"));
    m.w.hp.n_head_kv = 4;
    assert_int_equal(sd_weights_validate(&m.w, &err), SMDIFF_E_FORMAT);
    model_free(&m);
}

int main(void) {
    printf("ops SIMD path available: %s\n", sd_ops_simd() ? "yes (AVX2/FMA/F16C)" : "no (scalar only)");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_half_conversions), cmocka_unit_test(test_dequant_rows),
        cmocka_unit_test(test_rmsnorm),          cmocka_unit_test(test_rope),
        cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_attention),        cmocka_unit_test(test_matmul_w),
        cmocka_unit_test(test_forward_rows_and_threads), cmocka_unit_test(test_forward_causal),
        cmocka_unit_test(test_forward_f16_and_permuted), cmocka_unit_test(test_forward_errors),
        cmocka_unit_test(test_forward_partial), cmocka_unit_test(test_forward_batch),
        cmocka_unit_test(test_forward_long_canvas),
    };
    return cmocka_run_group_tests_name("forward", tests, NULL, NULL);
}
