/* vecmath.h -- the single-precision elementwise math every layer shares:
 * exp, one element at a time and 8 lanes at a time, and what is built on
 * it (sigmoid, SiLU).
 *
 * nn/ (softmax, SwiGLU), diffusion/ (the per-row statistics), train/
 * (softmax, SwiGLU, cross-entropy) and eval/ (the gate's softmax) all call
 * these, so inference, training and evaluation compute the same functions. Code that needs double precision
 * (references, sums that must be exact to 1e-12) uses libm's exp.
 *
 * Both forms reduce x = n ln2 + r, |r| <= ln2/2, and scale a polynomial
 * for e^r by 2^n through the exponent bits:
 *   sd_expf     evaluates in double (degree-8 Taylor, relative error below
 *               3e-10) and rounds once, so it is correctly rounded in all
 *               but rare cases, like libm's expf; full float range. The
 *               training path needs that accuracy: its gradients are
 *               checked against float64 PyTorch after two AdamW steps,
 *               where tiny gradients are amplified.
 *   sd_v8_exp   8 lanes in float arithmetic with Cephes' expf polynomial
 *               (~1 ulp; ln2 split in two parts so r is exact), for the
 *               vectorised kernels. Valid for x in [SD_EXP_LO, SD_EXP_HI]
 *               where 2^n stays a normal float: sd_v8_exp_core requires
 *               it, sd_v8_exp clamps to it (so exp(-inf) is e^-87 ~
 *               1.6e-38, not 0). NaN stays NaN. sd_v1_exp is one lane of
 *               it (the same steps, written once for both), for the
 *               scalar tails of vectorised loops that must agree with
 *               their bodies (the sampling statistics).
 *
 * The 8-lane form uses GCC/clang vector extensions and is always inlined:
 * a kernel compiled with __attribute__((target("avx2,fma"))) gets AVX2
 * code, the baseline build SSE pairs. To let a*b+c fuse into FMA, wrap
 * the kernels in SD_FP_CONTRACT_FAST_BEGIN / _END (GCC in ISO C mode does
 * not contract otherwise); results then differ from the unfused build in
 * the last bits only, and each build stays deterministic.
 */
#ifndef SD_CORE_VECMATH_H
#define SD_CORE_VECMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define SD_EXP_LO (-87.0f)
#define SD_EXP_HI (88.0f)

/* Cephes expf constants. */
#define SD_EXP_LOG2E 1.44269504088896341f
#define SD_EXP_C1 0.693359375f    /* ln 2, high part (exact in 9 bits) */
#define SD_EXP_C2 (-2.12194440e-4f) /* ln 2 - C1 */
#define SD_EXP_P0 1.9875691500e-4f
#define SD_EXP_P1 1.3981999507e-3f
#define SD_EXP_P2 8.3334519073e-3f
#define SD_EXP_P3 4.1665795894e-2f
#define SD_EXP_P4 1.6666665459e-1f
#define SD_EXP_P5 5.0000001201e-1f
#define SD_EXP_ROUND 12582912.0f /* 1.5 * 2^23: adding and subtracting it rounds to an integer */

/* Cephes' steps for exp(y), written once for float and for 8 lanes: T is
 * the type, K(c) makes constant c of that type. Sets n (the power of two,
 * still as T) and p (e^r); the caller scales p by 2^n. */
#define SD_EXP_CEPHES_STEPS(T, K, y, n, p)                           \
    do {                                                             \
        n = ((y) * K(SD_EXP_LOG2E) + K(SD_EXP_ROUND)) - K(SD_EXP_ROUND); \
        T r_ = (y) - n * K(SD_EXP_C1) - n * K(SD_EXP_C2);            \
        p = K(SD_EXP_P0);                                            \
        p = p * r_ + K(SD_EXP_P1);                                   \
        p = p * r_ + K(SD_EXP_P2);                                   \
        p = p * r_ + K(SD_EXP_P3);                                   \
        p = p * r_ + K(SD_EXP_P4);                                   \
        p = p * r_ + K(SD_EXP_P5);                                   \
        p = p * r_ * r_ + r_ + K(1.0f);                              \
    } while (0)
#define SD_EXP_K1(c) (c)

#if defined(__clang__)
#define SD_FP_CONTRACT_FAST_BEGIN _Pragma("clang fp contract(fast)")
#define SD_FP_CONTRACT_FAST_END _Pragma("clang fp contract(on)")
#elif defined(__GNUC__)
#define SD_FP_CONTRACT_FAST_BEGIN _Pragma("GCC push_options") _Pragma("GCC optimize(\"fp-contract=fast\")")
#define SD_FP_CONTRACT_FAST_END _Pragma("GCC pop_options")
#else
#define SD_FP_CONTRACT_FAST_BEGIN
#define SD_FP_CONTRACT_FAST_END
#endif

/* ------------------------------------------------------------- scalar */

/* exp(x) for any float x: 0 below about -103.9, inf above ln(FLT_MAX),
 * NaN for NaN. */
static inline float sd_expf(float x) {
    if (!(x == x)) return x;
    if (x < -104.0f) return 0.0f;
    if (x > 88.72283172607422f) return INFINITY; /* the largest float below ln(FLT_MAX) */
    double y = x;
    double n = (y * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0; /* 1.5 * 2^52: rounds */
    double r = y - n * 0.6931471805599453;
    double p = 1.0 / 40320;
    p = p * r + 1.0 / 5040;
    p = p * r + 1.0 / 720;
    p = p * r + 1.0 / 120;
    p = p * r + 1.0 / 24;
    p = p * r + 1.0 / 6;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t bits = ((int64_t)n + 1023) * ((int64_t)1 << 52);
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return (float)(p * scale);
}

/* One lane of sd_v8_exp (below): the same steps on one float, so a scalar
 * tail of a vectorised loop computes what the vector body would. y in
 * [SD_EXP_LO, SD_EXP_HI] (or NaN) for the _core form; sd_v1_exp clamps. */
static inline float sd_v1_exp_core(float y) {
    float n, p;
    SD_EXP_CEPHES_STEPS(float, SD_EXP_K1, y, n, p);
    if (!(n == n)) return n; /* NaN in, NaN out (and no NaN-to-int conversion) */
    int32_t bits = ((int32_t)n + 127) * (1 << 23);
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float sd_v1_exp(float x) {
    x = x < SD_EXP_LO ? SD_EXP_LO : (x > SD_EXP_HI ? SD_EXP_HI : x);
    return sd_v1_exp_core(x);
}

/* 1 / (1 + exp(-x)) and x * sigmoid(x). */
static inline float sd_sigmoidf(float x) { return 1.0f / (1.0f + sd_expf(-x)); }
static inline float sd_siluf(float x) { return x / (1.0f + sd_expf(-x)); }

/* ----------------------------------------------------------- 8 lanes */

#if defined(__GNUC__) || defined(__clang__)
#define SD_HAVE_V8 1
typedef float sd_v8f __attribute__((vector_size(32)));
typedef int32_t sd_v8i __attribute__((vector_size(32)));
#define SD_V8_INLINE static inline __attribute__((always_inline))

/* No vector crosses an ABI boundary here (everything is inlined), so the
 * compilers' note about AVX vector returns without AVX does not apply. GCC
 * reports it at the end of the translation unit, so the including file
 * keeps it off from here on. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpsabi"
#else
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

/* The lane operations, written once for a width W (vector types sd_vWf,
 * sd_vWi) and instantiated below for 8 lanes (the kernels' usual width)
 * and 16 (kernels compiled for AVX-512: the attention's softmax; compiled
 * for AVX2, 16 lanes go through the stack):
 *   sd_vW_splat, sd_vW_load, sd_vW_store (unaligned), sd_vW_max and
 *   sd_vW_min (lane-wise; b where either is NaN), sd_vW_exp_core (lanes in
 *   [SD_EXP_LO, SD_EXP_HI] or NaN) and sd_vW_exp (clamped to that range;
 *   NaN stays NaN). */
#define SD_VEC_OPS(W)                                                                             \
    SD_V8_INLINE sd_v##W##f sd_v##W##_splat(float a) { return (sd_v##W##f){0} + a; }             \
    SD_V8_INLINE sd_v##W##f sd_v##W##_load(const float *p) {                                      \
        sd_v##W##f v;                                                                             \
        memcpy(&v, p, sizeof v);                                                                  \
        return v;                                                                                 \
    }                                                                                             \
    SD_V8_INLINE void sd_v##W##_store(float *p, sd_v##W##f v) { memcpy(p, &v, sizeof v); }       \
    SD_V8_INLINE sd_v##W##f sd_v##W##_max(sd_v##W##f a, sd_v##W##f b) {                           \
        sd_v##W##i m = (sd_v##W##i)(a > b);                                                       \
        return (sd_v##W##f)(((sd_v##W##i)a & m) | ((sd_v##W##i)b & ~m));                          \
    }                                                                                             \
    SD_V8_INLINE sd_v##W##f sd_v##W##_min(sd_v##W##f a, sd_v##W##f b) {                           \
        sd_v##W##i m = (sd_v##W##i)(a < b);                                                       \
        return (sd_v##W##f)(((sd_v##W##i)a & m) | ((sd_v##W##i)b & ~m));                          \
    }                                                                                             \
    SD_V8_INLINE sd_v##W##f sd_v##W##_exp_core(sd_v##W##f y) {                                    \
        sd_v##W##f n, p;                                                                          \
        SD_EXP_CEPHES_STEPS(sd_v##W##f, sd_v##W##_splat, y, n, p);                                \
        sd_v##W##i bits = (__builtin_convertvector(n, sd_v##W##i) + 127) << 23;                   \
        return p * (sd_v##W##f)bits;                                                              \
    }                                                                                             \
    SD_V8_INLINE sd_v##W##f sd_v##W##_exp(sd_v##W##f x) {                                         \
        x = sd_v##W##_max(sd_v##W##_splat(SD_EXP_LO), x);                                         \
        x = sd_v##W##_min(sd_v##W##_splat(SD_EXP_HI), x);                                         \
        return sd_v##W##_exp_core(x);                                                             \
    }

typedef float sd_v16f __attribute__((vector_size(64)));
typedef int32_t sd_v16i __attribute__((vector_size(64)));
SD_VEC_OPS(8)
SD_VEC_OPS(16)

/* Sum of the lanes in a fixed order (results do not depend on the ISA). */
SD_V8_INLINE float sd_v8_hsum(sd_v8f v) {
    float s = 0;
    for (int j = 0; j < 8; j++) s += v[j];
    return s;
}

#else
#define SD_HAVE_V8 0
#endif

#endif
