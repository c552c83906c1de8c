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
#else
#define SD_X86 0
#endif

/* ------------------------------------------------------------ dispatch */

static int force_scalar;

int sd_ops_simd(void) { return !force_scalar && sd_cpu_has(SD_CPU_SET_AVX2); }
void sd_ops_force_scalar(int on) { force_scalar = on; }

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
/* out[0..8) = exp(in[0..8) - m); out may equal in. */
SD_V8_INLINE void exp8_shifted(const float *in, float m, float *out) {
    sd_v8_store(out, sd_v8_exp(sd_v8_load(in) - sd_v8_splat(m)));
}

/* g[0..8) = silu(g) * u. */
SD_V8_INLINE void swiglu8(float *g, const float *u) {
    sd_v8f gv = sd_v8_load(g);
    sd_v8_store(g, gv / (sd_v8_splat(1.0f) + sd_v8_exp(-gv)) * sd_v8_load(u));
}
SD_FP_CONTRACT_FAST_END

#if SD_X86

SD_TARGET_AVX2 static inline float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

SD_TARGET_AVX2 static inline float hmax_avx2(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
#endif

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

void sd_rope_table(float *cos_t, float *sin_t, int64_t L, int64_t hd, float base) {
    /* cos_t, sin_t [L, hd/2] */
    int64_t half = hd / 2;
    for (int64_t i = 0; i < half; i++) {
        double inv_freq = pow((double)base, -2.0 * (double)i / (double)hd);
        for (int64_t p = 0; p < L; p++) {
            double a = (double)p * inv_freq;
            cos_t[p * half + i] = (float)cos(a);
            sin_t[p * half + i] = (float)sin(a);
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

/* ------------------------------------------------------------ softmax */

#if SD_X86
SD_FP_CONTRACT_FAST_BEGIN
/* Softmax of x[n] in place. */
SD_TARGET_AVX2 static void softmax_row_avx2(float *x, int64_t n) {
    /* x[n] in place */
    int64_t j = 0;
    __m256 vm = _mm256_set1_ps(-INFINITY);
    for (; j + 8 <= n; j += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + j));
    float m = hmax_avx2(vm);
    for (; j < n; j++) m = x[j] > m ? x[j] : m;
    __m256 vs = _mm256_setzero_ps();
    for (j = 0; j + 8 <= n; j += 8) {
        exp8_shifted(x + j, m, x + j);
        vs = _mm256_add_ps(vs, _mm256_loadu_ps(x + j));
    }
    float s = hsum_avx2(vs);
    for (; j < n; j++) {
        x[j] = sd_v1_exp(x[j] - m); /* the vector body's exp, one lane */
        s += x[j];
    }
    __m256 inv = _mm256_set1_ps(1.0f / s);
    for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(x + j, _mm256_mul_ps(_mm256_loadu_ps(x + j), inv));
    for (; j < n; j++) x[j] *= 1.0f / s;
}
SD_FP_CONTRACT_FAST_END
#endif

/* One row in place over n valid columns; columns [n, total) set to 0. */
static void softmax_row(float *x, int64_t n, int64_t total) {
#if SD_X86
    if (sd_ops_simd()) {
        softmax_row_avx2(x, n);
        for (int64_t j = n; j < total; j++) x[j] = 0;
        return;
    }
#endif
    float m = -INFINITY;
    for (int64_t j = 0; j < n; j++) m = x[j] > m ? x[j] : m;
    float s = 0;
    for (int64_t j = 0; j < n; j++) {
        x[j] = sd_expf(x[j] - m);
        s += x[j];
    }
    float inv = 1.0f / s;
    for (int64_t j = 0; j < n; j++) x[j] *= inv;
    for (int64_t j = n; j < total; j++) x[j] = 0;
}


typedef struct {
    float *x;
    int64_t cols, ld, row0;
    int causal;
} softmax_ctx;

static void softmax_range(void *vctx, int64_t b, int64_t e, int t) {
    /* rows [b, e) of x[n, ld], first cols columns */
    (void)t;
    const softmax_ctx *c = vctx;
    for (int64_t i = b; i < e; i++) {
        int64_t n = c->cols;
        if (c->causal) {
            n = c->row0 + i + 1;
            if (n > c->cols) n = c->cols;
        }
        softmax_row(c->x + i * c->ld, n, c->cols);
    }
}

void sd_softmax_rows(float *x, int64_t n, int64_t cols, int64_t ld, int causal, int64_t row0,
                     sd_pool *pool) {
    softmax_ctx c = {x, cols, ld, row0, causal};
    run(n * cols >= 16384 ? pool : NULL, softmax_range, &c, n);
}

void sd_softmax_rows_ref(float *x, int64_t n, int64_t cols, int64_t ld, int causal,
                         int64_t row0) {
    for (int64_t i = 0; i < n; i++) {
        float *r = x + i * ld;
        int64_t lim = causal ? (row0 + i + 1 < cols ? row0 + i + 1 : cols) : cols;
        double m = -INFINITY, s = 0;
        for (int64_t j = 0; j < lim; j++) m = r[j] > m ? r[j] : m;
        for (int64_t j = 0; j < lim; j++) s += exp((double)r[j] - m);
        for (int64_t j = 0; j < cols; j++) r[j] = j < lim ? (float)(exp((double)r[j] - m) / s) : 0.0f;
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

#define GELU_K0 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_K1 0.044715f

typedef struct {
    float *x;
    int64_t n;
} gelu_job;

static void gelu_range(void *vctx, int64_t b, int64_t e, int t) {
    (void)t;
    const gelu_job *c = vctx;
    int64_t lo = b * SWIGLU_CHUNK, hi = e * SWIGLU_CHUNK < c->n ? e * SWIGLU_CHUNK : c->n;
    for (int64_t j = lo; j < hi; j++) {
        float v = c->x[j];
        c->x[j] = 0.5f * v * (1.0f + tanhf(GELU_K0 * (v + GELU_K1 * v * v * v)));
    }
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

void sd_attention(float *out, const float *q, const float *k, const float *v, int64_t L,
                  int64_t H, int64_t Hkv, int64_t hd, int causal, float *scores, sd_pool *pool) {
    /* q[L, H*hd], k, v[L, Hkv*hd] -> out[L, H*hd]; scores[L, L] scratch */
    int64_t group = H / Hkv, ldq = H * hd, ldk = Hkv * hd;
    float scale = 1.0f / sqrtf((float)hd);
    for (int64_t h = 0; h < H; h++) {
        int64_t g = h / group;
        /* scores[L, L] = scale * q_h[L, hd] @ k_g[L, hd]^T */
        sd_sgemm(0, 1, L, L, hd, scale, q + h * hd, ldq, k + g * hd, ldk, 0.0f, scores, L);
        sd_softmax_rows(scores, L, L, L, causal, 0, pool);
        /* out_h[L, hd] = scores[L, L] @ v_g[L, hd] */
        sd_sgemm(0, 0, L, hd, L, 1.0f, scores, L, v + g * hd, ldk, 0.0f, out + h * hd, ldq);
    }
}

void sd_attention_ref(float *out, const float *q, const float *k, const float *v, int64_t L,
                      int64_t H, int64_t Hkv, int64_t hd, int causal) {
    /* q[L, H*hd], k, v[L, Hkv*hd] -> out[L, H*hd]; hd <= 512 (test shapes) */
    int64_t group = H / Hkv, ldq = H * hd, ldk = Hkv * hd;
    double scale = 1.0 / sqrt((double)hd);
    for (int64_t h = 0; h < H; h++) {
        int64_t g = h / group;
        for (int64_t i = 0; i < L; i++) {
            int64_t lim = causal ? i + 1 : L;
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
                double p = exp(dot * scale - m);
                s += p;
                for (int64_t c = 0; c < hd_c; c++) acc[c] += p * v[j * ldk + g * hd + c];
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
    if (M <= sd_qgemm_few_max(type) && sd_qgemm_scratch_bytes(type, M, cols) <= panel_floats * sizeof(float)) {
        sd_qgemm_few(out, ldc, beta, x, M, type, w, rows, cols, panel, pool);
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
