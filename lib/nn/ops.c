/* ops.c -- transformer kernels, fast and reference. See ops.h. */
#include <math.h>
#include <string.h>

#include "blas.h"
#include "core/cpu.h"
#include "core/vecmath.h"
#include "ops.h"
#include "qgemm.h"
#include "core/quant.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SD_X86 1
#include <immintrin.h>
#define SD_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define SD_TARGET_AVX512 __attribute__((target("avx2,fma,f16c,avx512f")))
#else
#define SD_X86 0
#endif

/* ------------------------------------------------------------ dispatch */

static int force_scalar, force_no_avx512;

int sd_ops_simd(void) { return !force_scalar && sd_cpu_has(SD_CPU_SET_AVX2); }
void sd_ops_force_scalar(int on) { force_scalar = on; }
void sd_ops_force_no_avx512(int on) { force_no_avx512 = on; }
/* Whether the AVX-512 kernels are in use (they need AVX2's too). */
static int ops_avx512(void) { return sd_ops_simd() && !force_no_avx512 && sd_cpu_has(SD_CPU_SET_AVX512); }

static void run(sd_pool *pool, sd_pool_fn fn, void *ctx, int64_t n) {
    if (n <= 0) return;
    if (pool)
        sd_pool_run(pool, fn, ctx, n);
    else
        fn(ctx, 0, n, 0);
}

/* ----------------------------------------------- exp and reductions */

/* exp is core/vecmath.h's in both paths. Its 8-lane form is generic
 * (untargeted) code, so it is called through memory: no vector value
 * crosses from an AVX2 kernel into it (clang refuses that), and inlined
 * there it compiles to AVX2, with multiply-adds fused in the kernels
 * compiled under SD_FP_CONTRACT_FAST_BEGIN. */
SD_FP_CONTRACT_FAST_BEGIN
/* g[0..8) = silu(g) * u. */
SD_V8_INLINE void swiglu8(float *g, const float *u) {
    sd_v8f gv = sd_v8_load(g);
    sd_v8_store(g, gv / (sd_v8_splat(1.0f) + sd_v8_exp(-gv)) * sd_v8_load(u));
}

#define GELU_K0 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_K1 0.044715f

/* x[0..8) = gelu_tanh(x) = 0.5 x (1 + tanh z), z = K0 (x + K1 x^3), written
 * as x sigmoid(2 z) = x / (1 + exp(-2 z)) (the same function; tanh a =
 * 2 sigmoid(2a) - 1), so it costs one exp and no tanh. */
SD_V8_INLINE void gelu8(float *x) {
    sd_v8f v = sd_v8_load(x);
    sd_v8f z2 = sd_v8_splat(2.0f * GELU_K0) * (v + sd_v8_splat(GELU_K1) * v * v * v);
    sd_v8_store(x, v / (sd_v8_splat(1.0f) + sd_v8_exp(-z2)));
}

/* One lane of gelu8, for scalar tails and the scalar path. */
static inline float gelu1(float v) {
    return v / (1.0f + sd_v1_exp(-(2.0f * GELU_K0) * (v + GELU_K1 * v * v * v)));
}
SD_FP_CONTRACT_FAST_END


/* ------------------------------------------------------ half, bfloat16 */

static inline uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* ---------------------------------------------------------- dequantise */

/* One row of cols elements: src (of type) -> dst f32: the numeric base's
 * plain conversion. Shapes: src[cols], dst[cols]. */
static void dequant_row_scalar(uint32_t type, const unsigned char *src, int64_t cols, float *dst) {
    sd_ggml_to_f32(type, src, dst, cols);
}

#if SD_X86
SD_TARGET_AVX2 static void dequant_row_avx2(uint32_t type, const unsigned char *src, int64_t cols,
                                            float *dst) {
    int64_t j = 0;
    switch (type) {
    case SD_GGML_F16:
        for (; j + 8 <= cols; j += 8)
            _mm256_storeu_ps(dst + j, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * j))));
        for (; j < cols; j++) dst[j] = sd_f16_to_f32(rd16(src + 2 * j));
        break;
    case SD_GGML_BF16:
        for (; j + 8 <= cols; j += 8) {
            __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + 2 * j)));
            _mm256_storeu_ps(dst + j, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
        }
        for (; j < cols; j++) dst[j] = sd_bf16_to_f32(rd16(src + 2 * j));
        break;
    default: dequant_row_scalar(type, src, cols, dst); break;
    }
}
#endif

typedef struct {
    uint32_t type;
    const unsigned char *w;
    int64_t cols, r0;
    float *out;
    size_t row_bytes;
} dequant_ctx;

static void dequant_range(void *vctx, int64_t b, int64_t e, int t) {
    (void)t;
    const dequant_ctx *c = vctx;
    for (int64_t i = b; i < e; i++) {
        const unsigned char *src = c->w + (size_t)(c->r0 + i) * c->row_bytes;
        float *dst = c->out + i * c->cols;
        if (sd_quant_is_block(c->type)) { /* qgemm's dequantisers, vectorised per path */
            sd_qdequant_row(c->type, src, c->cols, dst);
            continue;
        }
#if SD_X86
        if (sd_ops_simd()) {
            dequant_row_avx2(c->type, src, c->cols, dst);
            continue;
        }
#endif
        dequant_row_scalar(c->type, src, c->cols, dst);
    }
}

void sd_dequant_rows(uint32_t type, const void *w, int64_t cols, int64_t r0, int64_t n,
                     float *out, sd_pool *pool) {
    dequant_ctx c = {type, w, cols, r0, out, sd_ggml_row_size(type, cols)};
    /* Below ~16K elements a fork-join costs more than it saves. */
    run(n * cols >= 16384 ? pool : NULL, dequant_range, &c, n);
}

void sd_dequant_rows_ref(uint32_t type, const void *w, int64_t cols, int64_t r0, int64_t n,
                         float *out) {
    size_t rb = sd_ggml_row_size(type, cols);
    for (int64_t i = 0; i < n; i++)
        dequant_row_scalar(type, (const unsigned char *)w + (size_t)(r0 + i) * rb, cols, out + i * cols);
}

/* ------------------------------------------------------------ RMSNorm */

typedef struct {
    float *out;
    const float *x, *w;
    int64_t d;
    float eps;
} rmsnorm_ctx;

static void rmsnorm_range(void *vctx, int64_t b, int64_t e, int t) {
    /* rows [b, e) of x[L, d] -> out[L, d]; w[d] */
    (void)t;
    const rmsnorm_ctx *c = vctx;
    for (int64_t i = b; i < e; i++) {
        const float *xi = c->x + i * c->d;
        float *oi = c->out + i * c->d;
        /* Four partial sums: shorter dependency chains, better rounding. */
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int64_t j = 0;
        for (; j + 4 <= c->d; j += 4) {
            s0 += xi[j] * xi[j];
            s1 += xi[j + 1] * xi[j + 1];
            s2 += xi[j + 2] * xi[j + 2];
            s3 += xi[j + 3] * xi[j + 3];
        }
        for (; j < c->d; j++) s0 += xi[j] * xi[j];
        float scale = 1.0f / sqrtf((s0 + s1 + s2 + s3) / (float)c->d + c->eps);
        for (j = 0; j < c->d; j++) oi[j] = xi[j] * scale * c->w[j];
    }
}

void sd_rmsnorm(float *out, const float *x, const float *w, int64_t L, int64_t d, float eps,
                sd_pool *pool) {
    rmsnorm_ctx c = {out, x, w, d, eps};
    run(L * d >= 16384 ? pool : NULL, rmsnorm_range, &c, L);
}

void sd_rmsnorm_ref(float *out, const float *x, const float *w, int64_t L, int64_t d, float eps) {
    /* x[L, d], w[d] -> out[L, d] */
    for (int64_t i = 0; i < L; i++) {
        double ss = 0;
        for (int64_t j = 0; j < d; j++) ss += (double)x[i * d + j] * x[i * d + j];
        double scale = 1.0 / sqrt(ss / (double)d + eps);
        for (int64_t j = 0; j < d; j++) out[i * d + j] = (float)(x[i * d + j] * scale * w[j]);
    }
}

/* ------------------------------------------------ LayerNorm (adaLN) */

typedef struct {
    float *out;
    const float *x, *w, *shift, *scale;
    int64_t d;
    float eps;
} layernorm_ctx;

static void layernorm_range(void *vctx, int64_t b, int64_t e, int t) {
    /* rows [b, e) of x[L, d] -> out[L, d]; w, shift, scale [d] */
    (void)t;
    const layernorm_ctx *c = vctx;
    const int64_t d = c->d;
    for (int64_t i = b; i < e; i++) {
        const float *xi = c->x + i * d;
        float *oi = c->out + i * d;
        /* Two passes (mean, then centred squares): no cancellation. */
        float s = 0;
        for (int64_t j = 0; j < d; j++) s += xi[j];
        const float mean = s / (float)d;
        float ss = 0;
        for (int64_t j = 0; j < d; j++) ss += (xi[j] - mean) * (xi[j] - mean);
        const float rstd = 1.0f / sqrtf(ss / (float)d + c->eps);
        for (int64_t j = 0; j < d; j++) {
            float y = (xi[j] - mean) * rstd * c->w[j];
            if (c->scale) y = y * (1.0f + c->scale[j]) + c->shift[j];
            oi[j] = y;
        }
    }
}

void sd_layernorm_mod(float *out, const float *x, const float *w, const float *shift,
                      const float *scale, int64_t L, int64_t d, float eps, sd_pool *pool) {
    layernorm_ctx c = {out, x, w, shift, scale, d, eps};
    if (!shift || !scale) c.shift = c.scale = NULL;
    run(L * d >= 16384 ? pool : NULL, layernorm_range, &c, L);
}

void sd_layernorm_mod_ref(float *out, const float *x, const float *w, const float *shift,
                          const float *scale, int64_t L, int64_t d, float eps) {
    for (int64_t i = 0; i < L; i++) {
        double m = 0, v = 0;
        for (int64_t j = 0; j < d; j++) m += x[i * d + j];
        m /= (double)d;
        for (int64_t j = 0; j < d; j++) v += (x[i * d + j] - m) * (x[i * d + j] - m);
        double r = 1.0 / sqrt(v / (double)d + eps);
        for (int64_t j = 0; j < d; j++) {
            double y = (x[i * d + j] - m) * r * w[j];
            if (shift && scale) y = y * (1.0 + scale[j]) + shift[j];
            out[i * d + j] = (float)y;
        }
    }
}

/* --------------------------------------------------------------- RoPE */

void sd_rope_table(float *cos_t, float *sin_t, const int32_t *pos, int64_t n, int64_t hd, float base) {
    /* cos_t, sin_t [n, hd/2]; row r for position pos[r] (NULL: r) */
    int64_t half = hd / 2;
    for (int64_t i = 0; i < half; i++) {
        double inv_freq = pow((double)base, -2.0 * (double)i / (double)hd);
        for (int64_t r = 0; r < n; r++) {
            double a = (double)(pos ? pos[r] : r) * inv_freq;
            cos_t[r * half + i] = (float)cos(a);
            sin_t[r * half + i] = (float)sin(a);
        }
    }
}

typedef struct {
    float *x;
    int64_t n_heads, hd, ld;
    const float *cos_t, *sin_t;
    int neox;
} rope_ctx;

static void rope_range(void *vctx, int64_t b, int64_t e, int t) {
    /* positions [b, e) of x[L, ld], heads [n_heads, hd] from column 0; tables [L, hd/2] */
    (void)t;
    const rope_ctx *c = vctx;
    int64_t half = c->hd / 2;
    for (int64_t p = b; p < e; p++) {
        const float *cs = c->cos_t + p * half, *sn = c->sin_t + p * half;
        for (int64_t h = 0; h < c->n_heads; h++) {
            float *v = c->x + p * c->ld + h * c->hd;
            if (c->neox) {
                for (int64_t i = 0; i < half; i++) {
                    float a = v[i], bb = v[i + half];
                    v[i] = a * cs[i] - bb * sn[i];
                    v[i + half] = a * sn[i] + bb * cs[i];
                }
            } else {
                for (int64_t i = 0; i < half; i++) {
                    float a = v[2 * i], bb = v[2 * i + 1];
                    v[2 * i] = a * cs[i] - bb * sn[i];
                    v[2 * i + 1] = a * sn[i] + bb * cs[i];
                }
            }
        }
    }
}

void sd_rope(float *x, int64_t L, int64_t n_heads, int64_t hd, int64_t ld, const float *cos_t,
             const float *sin_t, int neox, sd_pool *pool) {
    rope_ctx c = {x, n_heads, hd, ld, cos_t, sin_t, neox};
    run(L * n_heads * hd >= 16384 ? pool : NULL, rope_range, &c, L);
}

void sd_rope_ref(float *x, int64_t L, int64_t n_heads, int64_t hd, int64_t ld, float base,
                 int neox) {
    int64_t half = hd / 2;
    for (int64_t p = 0; p < L; p++)
        for (int64_t h = 0; h < n_heads; h++) {
            float *v = x + p * ld + h * hd;
            for (int64_t i = 0; i < half; i++) {
                double a = (double)p * pow((double)base, -2.0 * (double)i / (double)hd);
                int64_t i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
                double x0 = v[i0], x1 = v[i1];
                v[i0] = (float)(x0 * cos(a) - x1 * sin(a));
                v[i1] = (float)(x0 * sin(a) + x1 * cos(a));
            }
        }
}

/* ------------------------------------------------------------- SwiGLU */

typedef struct {
    float *g;
    const float *u;
} swiglu_ctx;

#if SD_X86
SD_FP_CONTRACT_FAST_BEGIN
SD_TARGET_AVX2 static void swiglu_avx2(float *g, const float *u, int64_t b, int64_t e) {
    /* g[b:e], u[b:e]; g in place */
    int64_t j = b;
    for (; j + 8 <= e; j += 8) swiglu8(g + j, u + j);
    for (; j < e; j++) g[j] = g[j] / (1.0f + sd_v1_exp(-g[j])) * u[j]; /* as swiglu8, one lane */
}
SD_FP_CONTRACT_FAST_END
#endif

/* Items are chunks of 1024 elements so threads split evenly. */
#define SWIGLU_CHUNK 1024
typedef struct {
    swiglu_ctx s;
    int64_t n;
} swiglu_job;

static void swiglu_range(void *vctx, int64_t b, int64_t e, int t) {
    (void)t;
    const swiglu_job *c = vctx;
    int64_t lo = b * SWIGLU_CHUNK, hi = e * SWIGLU_CHUNK < c->n ? e * SWIGLU_CHUNK : c->n;
#if SD_X86
    if (sd_ops_simd()) {
        swiglu_avx2(c->s.g, c->s.u, lo, hi);
        return;
    }
#endif
    for (int64_t j = lo; j < hi; j++) c->s.g[j] = sd_siluf(c->s.g[j]) * c->s.u[j];
}

void sd_swiglu(float *g, const float *u, int64_t n, sd_pool *pool) {
    swiglu_job c = {{g, u}, n};
    int64_t chunks = (n + SWIGLU_CHUNK - 1) / SWIGLU_CHUNK;
    run(n >= 16384 ? pool : NULL, swiglu_range, &c, chunks);
}

void sd_swiglu_ref(float *g, const float *u, int64_t n) {
    for (int64_t j = 0; j < n; j++) g[j] = (float)((double)g[j] / (1.0 + exp(-(double)g[j])) * u[j]);
}

/* ---------------------------------------------------------- GELU */

typedef struct {
    float *x;
    int64_t n;
} gelu_job;

#if SD_X86
SD_FP_CONTRACT_FAST_BEGIN
SD_TARGET_AVX2 static void gelu_avx2(float *x, int64_t b, int64_t e) {
    int64_t j = b;
    for (; j + 8 <= e; j += 8) gelu8(x + j);
    for (; j < e; j++) x[j] = gelu1(x[j]);
}
SD_FP_CONTRACT_FAST_END
#endif

static void gelu_range(void *vctx, int64_t b, int64_t e, int t) {
    (void)t;
    const gelu_job *c = vctx;
    int64_t lo = b * SWIGLU_CHUNK, hi = e * SWIGLU_CHUNK < c->n ? e * SWIGLU_CHUNK : c->n;
#if SD_X86
    if (sd_ops_simd()) {
        gelu_avx2(c->x, lo, hi);
        return;
    }
#endif
    for (int64_t j = lo; j < hi; j++) c->x[j] = gelu1(c->x[j]);
}

void sd_gelu_tanh(float *x, int64_t n, sd_pool *pool) {
    gelu_job c = {x, n};
    int64_t chunks = (n + SWIGLU_CHUNK - 1) / SWIGLU_CHUNK;
    run(n >= 16384 ? pool : NULL, gelu_range, &c, chunks);
}

void sd_gelu_tanh_ref(float *x, int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        double v = x[j];
        x[j] = (float)(0.5 * v * (1.0 + tanh(sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v))));
    }
}

/* ---------------------------------------------------------- attention */

/* Tiled attention with an online softmax (the FlashAttention recurrence,
 * here on a CPU): a work item is one head h and a tile of up to ATT_TQ
 * query rows. It walks the keys in tiles of ATT_TK and keeps, per query,
 * the running maximum m of its scores, the running sum l of exp(s - m) and
 * the running output acc; when a tile raises m, l and acc are rescaled by
 * exp(m_old - m_new). So memory is a few tiles per thread whatever the
 * canvas length.
 *
 * Layout: the item's queries are copied once, scaled and transposed, to
 * qt[hd, ATT_TQ], so a score tile is computed as st[key, query] =
 * K[key] . qt[:, query] with the keys read in place (no packing per tile)
 * and the softmax runs down the columns, 8 or 16 queries per vector.
 * Tiles of 64 queries x 32 keys keep qt, the scores, the accumulators and
 * the key and value tiles within a 48 KiB L1 (tiles of 64 or 128 keys ran
 * about 20% slower on the AVX-512 Xeon of docs/PERFORMANCE.md). Every
 * query's arithmetic stays in its own column (its own lane), in the same
 * order whichever rows share its tile, so computing a subset of rows gives
 * the same bits as computing them all. */
#define ATT_TQ 64 /* query rows per work item (a multiple of 32) */
#define ATT_TK 32 /* keys per tile */

static size_t pad16(size_t floats) { return (floats + 15) & ~(size_t)15; }

/* Per-thread scratch, in floats: transposed queries qt[hd, ATT_TQ], output
 * accumulators acc[ATT_TQ, hd], scores st[ATT_TK, ATT_TQ], and per query
 * m, l and the tile's count of visible keys. */
static size_t att_thread_floats(int64_t hd) {
    return 2 * pad16((size_t)(ATT_TQ * hd)) + pad16(ATT_TK * ATT_TQ) + 3 * pad16(ATT_TQ);
}

size_t sd_attention_scratch_floats(int64_t hd, int n_threads) {
    return (size_t)(n_threads > 0 ? n_threads : 1) * att_thread_floats(hd);
}

typedef struct att_ctx {
    float *out;
    const float *q, *k, *v;
    const int32_t *pos;
    int64_t n, L, H, group, hd, n_tiles;
    int causal;
    float scale;
    float *scratch;
} att_ctx;

/* st[j, i] = k[j] . qt[:, i] for keys j < kv_n (rows of stride ldk) and
 * queries i < nq16 (qt[hd, ATT_TQ]). */
static void qk_tile_c(const float *qt, const float *k, int64_t ldk, int64_t kv_n, int64_t hd, int64_t nq16,
                      float *st) {
    for (int64_t j = 0; j < kv_n; j++) {
        float *sj = st + j * ATT_TQ;
        for (int64_t i = 0; i < nq16; i++) sj[i] = 0;
        for (int64_t c = 0; c < hd; c++) {
            float kc = k[j * ldk + c];
            for (int64_t i = 0; i < nq16; i++) sj[i] += kc * qt[c * ATT_TQ + i];
        }
    }
}

/* acc[i, :] += sum over j < kv_n of p[j, i] v[j, :] for queries i < nq4
 * (p: the score tile after the softmax; v rows of stride ldv). */
static void pv_tile_c(float *acc, const float *p, const float *v, int64_t ldv, int64_t kv_n, int64_t hd,
                      int64_t nq4) {
    for (int64_t i = 0; i < nq4; i++)
        for (int64_t j = 0; j < kv_n; j++) {
            float pij = p[j * ATT_TQ + i];
            const float *vj = v + j * ldv;
            for (int64_t c = 0; c < hd; c++) acc[i * hd + c] += pij * vj[c];
        }
}

#if SD_X86
/* The same two products with the accumulators in registers: 4 keys x 16
 * queries for the scores, 4 queries x 16 channels for P V. Each sum runs
 * in the same order as in the C code, one fused multiply-add per term. */
SD_TARGET_AVX2 static void qk_tile_avx2(const float *qt, const float *k, int64_t ldk, int64_t kv_n, int64_t hd,
                                        int64_t nq16, float *st) {
    int64_t j = 0;
    for (; j + 4 <= kv_n; j += 4) {
        const float *k0 = k + j * ldk, *k1 = k0 + ldk, *k2 = k1 + ldk, *k3 = k2 + ldk;
        float *s0 = st + j * ATT_TQ;
        for (int64_t i = 0; i < nq16; i += 16) {
            __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00,
                   a30 = a00, a31 = a00;
            for (int64_t c = 0; c < hd; c++) {
                __m256 q0 = _mm256_load_ps(qt + c * ATT_TQ + i), q1 = _mm256_load_ps(qt + c * ATT_TQ + i + 8);
                __m256 b = _mm256_broadcast_ss(k0 + c);
                a00 = _mm256_fmadd_ps(b, q0, a00), a01 = _mm256_fmadd_ps(b, q1, a01);
                b = _mm256_broadcast_ss(k1 + c);
                a10 = _mm256_fmadd_ps(b, q0, a10), a11 = _mm256_fmadd_ps(b, q1, a11);
                b = _mm256_broadcast_ss(k2 + c);
                a20 = _mm256_fmadd_ps(b, q0, a20), a21 = _mm256_fmadd_ps(b, q1, a21);
                b = _mm256_broadcast_ss(k3 + c);
                a30 = _mm256_fmadd_ps(b, q0, a30), a31 = _mm256_fmadd_ps(b, q1, a31);
            }
            float *si = s0 + i;
            _mm256_store_ps(si, a00), _mm256_store_ps(si + 8, a01);
            _mm256_store_ps(si + ATT_TQ, a10), _mm256_store_ps(si + ATT_TQ + 8, a11);
            _mm256_store_ps(si + 2 * ATT_TQ, a20), _mm256_store_ps(si + 2 * ATT_TQ + 8, a21);
            _mm256_store_ps(si + 3 * ATT_TQ, a30), _mm256_store_ps(si + 3 * ATT_TQ + 8, a31);
        }
    }
    for (; j < kv_n; j++) /* the last 1..3 keys, one at a time */
        for (int64_t i = 0; i < nq16; i += 16) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0;
            for (int64_t c = 0; c < hd; c++) {
                __m256 b = _mm256_broadcast_ss(k + j * ldk + c);
                a0 = _mm256_fmadd_ps(b, _mm256_load_ps(qt + c * ATT_TQ + i), a0);
                a1 = _mm256_fmadd_ps(b, _mm256_load_ps(qt + c * ATT_TQ + i + 8), a1);
            }
            _mm256_store_ps(st + j * ATT_TQ + i, a0), _mm256_store_ps(st + j * ATT_TQ + i + 8, a1);
        }
}

/* hd a multiple of 16. */
SD_TARGET_AVX2 static void pv_tile_avx2(float *acc, const float *p, const float *v, int64_t ldv, int64_t kv_n,
                                        int64_t hd, int64_t nq4) {
    for (int64_t i = 0; i < nq4; i += 4) {
        const float *pi = p + i;
        for (int64_t c = 0; c < hd; c += 16) {
            float *o = acc + i * hd + c;
            __m256 a00 = _mm256_load_ps(o), a01 = _mm256_load_ps(o + 8);
            __m256 a10 = _mm256_load_ps(o + hd), a11 = _mm256_load_ps(o + hd + 8);
            __m256 a20 = _mm256_load_ps(o + 2 * hd), a21 = _mm256_load_ps(o + 2 * hd + 8);
            __m256 a30 = _mm256_load_ps(o + 3 * hd), a31 = _mm256_load_ps(o + 3 * hd + 8);
            for (int64_t j = 0; j < kv_n; j++) {
                const float *vj = v + j * ldv + c, *pj = pi + j * ATT_TQ;
                __m256 v0 = _mm256_loadu_ps(vj), v1 = _mm256_loadu_ps(vj + 8);
                __m256 b = _mm256_broadcast_ss(pj);
                a00 = _mm256_fmadd_ps(b, v0, a00), a01 = _mm256_fmadd_ps(b, v1, a01);
                b = _mm256_broadcast_ss(pj + 1);
                a10 = _mm256_fmadd_ps(b, v0, a10), a11 = _mm256_fmadd_ps(b, v1, a11);
                b = _mm256_broadcast_ss(pj + 2);
                a20 = _mm256_fmadd_ps(b, v0, a20), a21 = _mm256_fmadd_ps(b, v1, a21);
                b = _mm256_broadcast_ss(pj + 3);
                a30 = _mm256_fmadd_ps(b, v0, a30), a31 = _mm256_fmadd_ps(b, v1, a31);
            }
            _mm256_store_ps(o, a00), _mm256_store_ps(o + 8, a01);
            _mm256_store_ps(o + hd, a10), _mm256_store_ps(o + hd + 8, a11);
            _mm256_store_ps(o + 2 * hd, a20), _mm256_store_ps(o + 2 * hd + 8, a21);
            _mm256_store_ps(o + 3 * hd, a30), _mm256_store_ps(o + 3 * hd + 8, a31);
        }
    }
}

/* The same with 16 lanes, for CPUs with AVX-512F: 8 keys x 32 queries for
 * the scores, 8 queries x 32 channels for P V (hd a multiple of 32). */
SD_TARGET_AVX512 static void qk_tile_avx512(const float *qt, const float *k, int64_t ldk, int64_t kv_n,
                                            int64_t hd, int64_t nq32, float *st) {
    int64_t j = 0;
    for (; j + 8 <= kv_n; j += 8) /* 8 keys x 32 queries: 16 accumulators */
        for (int64_t i = 0; i < nq32; i += 32) {
            __m512 a[8][2];
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
            for (int64_t c = 0; c < hd; c++) {
                __m512 q0 = _mm512_load_ps(qt + c * ATT_TQ + i), q1 = _mm512_load_ps(qt + c * ATT_TQ + i + 16);
#pragma GCC unroll 8
                for (int r = 0; r < 8; r++) {
                    __m512 b = _mm512_set1_ps(k[(j + r) * ldk + c]);
                    a[r][0] = _mm512_fmadd_ps(b, q0, a[r][0]), a[r][1] = _mm512_fmadd_ps(b, q1, a[r][1]);
                }
            }
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++) {
                _mm512_store_ps(st + (j + r) * ATT_TQ + i, a[r][0]);
                _mm512_store_ps(st + (j + r) * ATT_TQ + i + 16, a[r][1]);
            }
        }
    for (; j < kv_n; j++) /* the last 1..7 keys, one at a time */
        for (int64_t i = 0; i < nq32; i += 32) {
            __m512 a0 = _mm512_setzero_ps(), a1 = a0;
            for (int64_t c = 0; c < hd; c++) {
                __m512 b = _mm512_set1_ps(k[j * ldk + c]);
                a0 = _mm512_fmadd_ps(b, _mm512_load_ps(qt + c * ATT_TQ + i), a0);
                a1 = _mm512_fmadd_ps(b, _mm512_load_ps(qt + c * ATT_TQ + i + 16), a1);
            }
            _mm512_store_ps(st + j * ATT_TQ + i, a0), _mm512_store_ps(st + j * ATT_TQ + i + 16, a1);
        }
}

/* 8 queries x 32 channels: each V row loaded serves 8 queries (nq8 a
 * multiple of 8; the padded queries' p are 0). */
SD_TARGET_AVX512 static void pv_tile_avx512(float *acc, const float *p, const float *v, int64_t ldv,
                                            int64_t kv_n, int64_t hd, int64_t nq8) {
    for (int64_t i = 0; i < nq8; i += 8) {
        const float *pi = p + i;
        for (int64_t c = 0; c < hd; c += 32) {
            float *o = acc + i * hd + c;
            __m512 a[8][2];
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++) a[r][0] = _mm512_load_ps(o + r * hd), a[r][1] = _mm512_load_ps(o + r * hd + 16);
            for (int64_t j = 0; j < kv_n; j++) {
                const float *vj = v + j * ldv + c, *pj = pi + j * ATT_TQ;
                __m512 v0 = _mm512_loadu_ps(vj), v1 = _mm512_loadu_ps(vj + 16);
#pragma GCC unroll 8
                for (int r = 0; r < 8; r++) {
                    __m512 b = _mm512_set1_ps(pj[r]);
                    a[r][0] = _mm512_fmadd_ps(b, v0, a[r][0]), a[r][1] = _mm512_fmadd_ps(b, v1, a[r][1]);
                }
            }
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++) _mm512_store_ps(o + r * hd, a[r][0]), _mm512_store_ps(o + r * hd + 16, a[r][1]);
        }
    }
}
#endif

/* One tile's step of the online softmax, W queries (columns of st) at a
 * time: query i sees the first lim[i] of the tile's kv_n keys. st becomes
 * exp(s - m_new) (0 for keys it does not see), m and l are updated and
 * acc's rows rescaled by exp(m_old - m_new). A query that has seen no key
 * yet keeps m = -inf, l = 0.
 *
 * Written once as a macro over the vector width: 8 lanes (core/vecmath.h's
 * sd_v8) for the generic and AVX2 callers, 16 (sd_v16) for AVX-512, where
 * the same code on 8 lanes ran at half speed and 16 lanes compiled for
 * AVX2 went through the stack. `masked` (a constant where inlined): some
 * query of the block sees fewer than kv_n keys, so only then do the loops
 * carry compares. */
#define SD_SOFTMAX_TILE(W, VF, VI)                                                                              \
    SD_V8_INLINE void softmax_block##W(float *st, int64_t kv_n, VF lv, float *m, float *l, float *acc,         \
                                       int64_t hd, const int masked) {                                        \
        const VF ninf = sd_v##W##_splat(-INFINITY);                                                           \
        VF mt = ninf;                                                                                         \
        for (int64_t j = 0; j < kv_n; j++) {                                                                  \
            VF s = sd_v##W##_load(st + j * ATT_TQ);                                                           \
            if (masked) {                                                                                     \
                VI seen = (VI)(sd_v##W##_splat((float)j) < lv);                                               \
                s = (VF)(((VI)s & seen) | ((VI)ninf & ~seen));                                                \
            }                                                                                                 \
            mt = sd_v##W##_max(mt, s);                                                                        \
        }                                                                                                     \
        VF mo = sd_v##W##_load(m), mn = sd_v##W##_max(mo, mt), sum = sd_v##W##_splat(0.0f);                   \
        VI had = (VI)(mo > ninf); /* lanes that had seen a key: their corr is exp(m_old - m_new) */            \
        VF corr = (VF)((VI)sd_v##W##_exp(mo - mn) & had);                                                     \
        for (int64_t j = 0; j < kv_n; j++) {                                                                  \
            VF p = sd_v##W##_exp(sd_v##W##_load(st + j * ATT_TQ) - mn);                                       \
            if (masked) p = (VF)((VI)p & (VI)(sd_v##W##_splat((float)j) < lv));                               \
            sd_v##W##_store(st + j * ATT_TQ, p);                                                              \
            sum += p;                                                                                         \
        }                                                                                                     \
        sd_v##W##_store(l, sd_v##W##_load(l) * corr + sum);                                                   \
        sd_v##W##_store(m, mn);                                                                               \
        float cf[W];                                                                                          \
        sd_v##W##_store(cf, corr);                                                                            \
        for (int r = 0; r < W; r++) {                                                                         \
            if (cf[r] == 1.0f) continue;                                                                      \
            float *a = acc + r * hd;                                                                          \
            int64_t c = 0;                                                                                    \
            for (; c + W <= hd; c += W) sd_v##W##_store(a + c, sd_v##W##_load(a + c) * sd_v##W##_splat(cf[r])); \
            for (; c < hd; c++) a[c] *= cf[r];                                                                \
        }                                                                                                     \
    }                                                                                                         \
    SD_V8_INLINE void online_softmax##W(float *st, int64_t kv_n, const float *lim, float *m, float *l,          \
                                        float *acc, int64_t hd, int64_t nq) {                                 \
        for (int64_t i = 0; i < nq; i += W) {                                                                 \
            int full = 1;                                                                                     \
            for (int r = 0; r < W; r++) full &= lim[i + r] == (float)kv_n;                                    \
            VF lv = sd_v##W##_load(lim + i);                                                                  \
            if (full) softmax_block##W(st + i, kv_n, lv, m + i, l + i, acc + i * hd, hd, 0);                  \
            else softmax_block##W(st + i, kv_n, lv, m + i, l + i, acc + i * hd, hd, 1);                       \
        }                                                                                                     \
    }

SD_FP_CONTRACT_FAST_BEGIN
SD_SOFTMAX_TILE(8, sd_v8f, sd_v8i)
SD_SOFTMAX_TILE(16, sd_v16f, sd_v16i)

/* nq: a multiple of 16 (of W in both) */
static void online_softmax_c(float *st, int64_t kv_n, const float *lim, float *m, float *l, float *acc, int64_t hd,
                             int64_t nq) {
    online_softmax8(st, kv_n, lim, m, l, acc, hd, nq);
}
#if SD_X86
SD_TARGET_AVX2 static void online_softmax_avx2(float *st, int64_t kv_n, const float *lim, float *m, float *l,
                                               float *acc, int64_t hd, int64_t nq) {
    online_softmax8(st, kv_n, lim, m, l, acc, hd, nq);
}
SD_TARGET_AVX512 static void online_softmax_avx512(float *st, int64_t kv_n, const float *lim, float *m, float *l,
                                                   float *acc, int64_t hd, int64_t nq) {
    online_softmax16(st, kv_n, lim, m, l, acc, hd, nq);
}
#endif
SD_FP_CONTRACT_FAST_END

/* Work item: head h = item / n_tiles, query tile item % n_tiles. */
static void att_item(const att_ctx *c, int64_t item, float *ws) {
    const int64_t hd = c->hd, ldq = c->H * hd, ldk = (c->H / c->group) * hd;
    const int64_t h = item / c->n_tiles, i0 = (item % c->n_tiles) * ATT_TQ, g = h / c->group;
    /* nqp: the queries rounded up to a multiple of 32, padded with zeros */
    const int64_t nq = c->n - i0 < ATT_TQ ? c->n - i0 : ATT_TQ, nqp = (nq + 31) & ~(int64_t)31;
    float *qt = ws, *acc = qt + pad16((size_t)(ATT_TQ * hd)), *st = acc + pad16((size_t)(ATT_TQ * hd));
    float *m = st + pad16(ATT_TK * ATT_TQ), *l = m + pad16(ATT_TQ), *lim = l + pad16(ATT_TQ);
    int64_t kmax = 0, last[ATT_TQ]; /* keys any row of the tile sees; each row's last key + 1 */
    for (int64_t i = 0; i < nqp; i++) {
        const float *qi = c->q + (i0 + i) * ldq + h * hd;
        for (int64_t cc = 0; cc < hd; cc++) qt[cc * ATT_TQ + i] = i < nq ? qi[cc] * c->scale : 0.0f;
        m[i] = -INFINITY, l[i] = 0;
        last[i] = i >= nq ? 0 : !c->causal ? c->L : (c->pos ? c->pos[i0 + i] : i0 + i) + 1;
        if (last[i] > c->L) last[i] = c->L;
        kmax = last[i] > kmax ? last[i] : kmax;
    }
    memset(acc, 0, sizeof(float) * (size_t)(nqp * hd));
    /* 2: AVX-512 products (hd a multiple of 32), 1: AVX2, 0: C */
    const int simd = hd % 32 == 0 && ops_avx512() ? 2 : sd_ops_simd();
    const int64_t nq4 = (nq + 3) & ~(int64_t)3;
    for (int64_t j0 = 0; j0 < kmax; j0 += ATT_TK) {
        int64_t kv_n = kmax - j0 < ATT_TK ? kmax - j0 : ATT_TK;
        const float *kj = c->k + j0 * ldk + g * hd, *vj = c->v + j0 * ldk + g * hd;
        for (int64_t i = 0; i < nqp; i++) {
            int64_t seen = last[i] - j0;
            lim[i] = (float)(seen < 0 ? 0 : seen > kv_n ? kv_n : seen);
        }
#if SD_X86
        if (simd == 2) {
            qk_tile_avx512(qt, kj, ldk, kv_n, hd, nqp, st);
            online_softmax_avx512(st, kv_n, lim, m, l, acc, hd, nqp);
            pv_tile_avx512(acc, st, vj, ldk, kv_n, hd, (nq + 7) & ~(int64_t)7);
            continue;
        }
        if (simd) {
            qk_tile_avx2(qt, kj, ldk, kv_n, hd, nqp, st);
            online_softmax_avx2(st, kv_n, lim, m, l, acc, hd, nqp);
            if (hd % 16 == 0) pv_tile_avx2(acc, st, vj, ldk, kv_n, hd, nq4);
            else pv_tile_c(acc, st, vj, ldk, kv_n, hd, nq4);
            continue;
        }
#endif
        qk_tile_c(qt, kj, ldk, kv_n, hd, nqp, st);
        online_softmax_c(st, kv_n, lim, m, l, acc, hd, nqp);
        pv_tile_c(acc, st, vj, ldk, kv_n, hd, nq4);
    }
    for (int64_t i = 0; i < nq; i++) {
        float *oi = c->out + (i0 + i) * ldq + h * hd, inv = l[i] > 0 ? 1.0f / l[i] : 0.0f;
        for (int64_t cc = 0; cc < hd; cc++) oi[cc] = acc[i * hd + cc] * inv;
    }
}

static void att_range(void *vctx, int64_t b, int64_t e, int t) {
    const att_ctx *c = vctx;
    float *ws = c->scratch + (size_t)t * att_thread_floats(c->hd);
    for (int64_t i = b; i < e; i++) att_item(c, i, ws);
}

void sd_attention(float *out, const float *q, int64_t n, const int32_t *pos, const float *k, const float *v,
                  int64_t L, int64_t H, int64_t Hkv, int64_t hd, int causal, float *scratch, sd_pool *pool) {
    /* q[n, H*hd] (rows at canvas positions pos), k, v[L, Hkv*hd] -> out[n, H*hd] */
    if (n <= 0) return;
    att_ctx c = {out, q, k, v, pos, n, L, H, H / Hkv, hd, (n + ATT_TQ - 1) / ATT_TQ, causal,
                 1.0f / sqrtf((float)hd), scratch};
    /* The scratch holds one slice per pool thread; below ~1 MFLOP the
     * fork-join costs more than it saves. */
    double work = 4.0 * (double)n * (double)L * (double)(H * hd);
    run(work >= 1e6 ? pool : NULL, att_range, &c, H * c.n_tiles);
}

void sd_attention_ref(float *out, const float *q, int64_t n, const int32_t *pos, const float *k, const float *v,
                      int64_t L, int64_t H, int64_t Hkv, int64_t hd, int causal) {
    /* q[n, H*hd], k, v[L, Hkv*hd] -> out[n, H*hd]; hd <= 512 (test shapes) */
    int64_t group = H / Hkv, ldq = H * hd, ldk = Hkv * hd;
    double scale = 1.0 / sqrt((double)hd);
    for (int64_t h = 0; h < H; h++) {
        int64_t g = h / group;
        for (int64_t i = 0; i < n; i++) {
            int64_t p = pos ? pos[i] : i, lim = causal ? (p + 1 < L ? p + 1 : L) : L;
            double m = -INFINITY, s = 0;
            for (int64_t j = 0; j < lim; j++) {
                double dot = 0;
                for (int64_t c = 0; c < hd; c++) dot += (double)q[i * ldq + h * hd + c] * k[j * ldk + g * hd + c];
                dot *= scale;
                m = dot > m ? dot : m;
            }
            for (int64_t c = 0; c < hd; c++) out[i * ldq + h * hd + c] = 0;
            double acc[512];
            int64_t hd_c = hd < 512 ? hd : 512;
            for (int64_t c = 0; c < hd_c; c++) acc[c] = 0;
            for (int64_t j = 0; j < lim; j++) {
                double dot = 0;
                for (int64_t c = 0; c < hd; c++) dot += (double)q[i * ldq + h * hd + c] * k[j * ldk + g * hd + c];
                double pr = exp(dot * scale - m);
                s += pr;
                for (int64_t c = 0; c < hd_c; c++) acc[c] += pr * v[j * ldk + g * hd + c];
            }
            for (int64_t c = 0; c < hd_c; c++) out[i * ldq + h * hd + c] = (float)(acc[c] / s);
        }
    }
}

/* ------------------------------------------------------ weight matmul */

/* Panels of at least 512 rows, or about 2 MiB when that is more (rows of
 * 896: 576 rows). Each GEMM call packs the activations x[M, cols] again,
 * which costs about as much as multiplying them by 8 weight rows: with
 * 96-row panels (2 MiB of rows of 4864) that was 20% of the GEMM kernel's
 * time on a 256-row canvas (perf), with 512 rows it is under 2%. The panel
 * (up to 512 x the widest row: 10 MB for Qwen2.5-0.5B, 39 MB for Dream-7B)
 * goes through L3 between the dequantisation that writes it and the GEMM
 * that packs it. */
#define PANEL_TARGET_FLOATS ((size_t)512 * 1024)
#define PANEL_MIN_ROWS 512

size_t sd_panel_floats(int64_t max_cols) {
    size_t min = (size_t)max_cols * PANEL_MIN_ROWS;
    return min > PANEL_TARGET_FLOATS ? min : PANEL_TARGET_FLOATS;
}

void sd_matmul_w(float *out, int64_t ldc, float beta, const float *x, int64_t M, uint32_t type, const void *w,
                 int64_t rows, int64_t cols, float *panel, size_t panel_floats, sd_pool *pool) {
    /* x[M, cols] @ W[rows, cols]^T -> out[M, ldc] columns [0, rows); panel[p, cols] */
    if (M <= 0 || rows <= 0) return;
    if (type == SD_GGML_F32) {
        sd_sgemm(0, 1, M, rows, cols, 1.0f, x, cols, w, cols, beta, out, ldc);
        return;
    }
    /* Few rows of a block format: integer products on the stored blocks
     * (memory-bound: the weights are read once, never expanded); the
     * activations' 8-bit blocks go into the panel scratch. */
    int64_t few = sd_qgemm_few_max(type);
    int64_t chunks = M <= few ? 1 : few == SD_QGEMM_FEW_ROWS && M <= SD_QGEMM_SPLIT_ROWS ? 2 : 0;
    int64_t per = chunks ? (M + chunks - 1) / chunks : 0;
    if (chunks && sd_qgemm_scratch_bytes(type, per, cols) <= panel_floats * sizeof(float)) {
        for (int64_t i0 = 0; i0 < M; i0 += per) {
            int64_t n = M - i0 < per ? M - i0 : per;
            sd_qgemm_few(out + i0 * ldc, ldc, beta, x + i0 * cols, n, type, w, rows, cols, panel, pool);
        }
        return;
    }
    int64_t p = (int64_t)(panel_floats / (size_t)cols);
    if (p > rows) p = rows;
    if (p >= 16) p -= p % 16; /* whole SIMD tiles for the GEMM kernel */
    for (int64_t r0 = 0; r0 < rows; r0 += p) {
        int64_t n = rows - r0 < p ? rows - r0 : p;
        sd_dequant_rows(type, w, cols, r0, n, panel, pool);
        sd_sgemm(0, 1, M, n, cols, 1.0f, x, cols, panel, cols, beta, out + r0, ldc);
    }
}

void sd_matmul_w_ref(float *out, int64_t ldc, float beta, const float *x, int64_t M, uint32_t type,
                     const void *w, int64_t rows, int64_t cols) {
    /* x[M, cols] @ W[rows, cols]^T -> out[M, ldc]; cols <= 8192 (test shapes) */
    float row[8192];
    for (int64_t r = 0; r < rows; r++) {
        if (cols > 8192) return; /* reference is for test shapes only */
        sd_dequant_rows_ref(type, w, cols, r, 1, row);
        for (int64_t i = 0; i < M; i++) {
            double acc = 0;
            for (int64_t c = 0; c < cols; c++) acc += (double)x[i * cols + c] * row[c];
            out[i * ldc + r] = (float)(acc + (beta != 0.0f ? (double)beta * out[i * ldc + r] : 0.0));
        }
    }
}
