/* ops.h -- the numerical kernels of the transformer core.
 *
 * Every fast kernel has a naive reference beside it (suffix _ref): plain
 * loops with double accumulators, written for obviousness, used by the
 * tests to check the fast versions on odd shapes. The fast versions use
 * AVX2/FMA/F16C when the CPU has them (checked once at run time; the build
 * has no -march) and plain C otherwise.
 *
 * All matrices are row-major floats. `pool` may be NULL (run inline).
 */
#ifndef SD_NN_OPS_H
#define SD_NN_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "core/numfmt.h" /* SD_GGML_* weight types, sd_ggml_row_size */
#include "core/pool.h"

/* Whether the SIMD paths are in use (for benchmarks and test messages). */
int sd_ops_simd(void);
/* Force the scalar paths on (1) or back to auto-detection (0), so tests
 * can exercise both on a machine that has AVX2. Not thread-safe. */
void sd_ops_force_scalar(int on);
/* Keep the AVX-512 kernels off (1) or back to auto-detection (0), so tests
 * exercise the AVX2 kernels on a machine that has AVX-512. Not thread-safe. */
void sd_ops_force_no_avx512(int on);

/* Rows [r0, r0+n) of a matrix W[*, cols] of a supported type (core/numfmt.h)
 * -> out[n, cols] f32. */
void sd_dequant_rows(uint32_t type, const void *w, int64_t cols, int64_t r0, int64_t n,
                     float *out, sd_pool *pool);
void sd_dequant_rows_ref(uint32_t type, const void *w, int64_t cols, int64_t r0, int64_t n,
                         float *out);

/* out[L, d] = x[L, d] / sqrt(mean_j x[i,j]^2 + eps) * w[d]  (out may equal x) */
void sd_rmsnorm(float *out, const float *x, const float *w, int64_t L, int64_t d, float eps,
                sd_pool *pool);
void sd_rmsnorm_ref(float *out, const float *x, const float *w, int64_t L, int64_t d, float eps);

/* Weight-only LayerNorm with adaLN modulation (MDLM's DiT):
 *   out[i,:] = ((x[i,:] - mean) / sqrt(var + eps) * w) * (1 + scale) + shift
 * x[L, d], w/shift/scale [d] (shift and scale may be NULL: no modulation);
 * mean and (biased) variance over the row. out may equal x. */
void sd_layernorm_mod(float *out, const float *x, const float *w, const float *shift,
                      const float *scale, int64_t L, int64_t d, float eps, sd_pool *pool);
void sd_layernorm_mod_ref(float *out, const float *x, const float *w, const float *shift,
                          const float *scale, int64_t L, int64_t d, float eps);

/* RoPE tables: cos/sin[n, hd/2], row r for position pos[r] (NULL: r), of
 * angle p * base^(-2i/hd) for position p and frequency i, computed in
 * double. */
void sd_rope_table(float *cos_t, float *sin_t, const int32_t *pos, int64_t n, int64_t hd, float base);

/* Rotate, in place, n_heads heads of width hd in each of L rows of x
 * (row stride ld floats). neox = 1: pairs (i, i + hd/2) -- Qwen2/Dream and
 * the Hugging Face layout; neox = 0: adjacent pairs (2i, 2i+1) -- llama.cpp's
 * "normal" mode, used for LLaDA files whose Q/K rows were permuted. */
void sd_rope(float *x, int64_t L, int64_t n_heads, int64_t hd, int64_t ld, const float *cos_t,
             const float *sin_t, int neox, sd_pool *pool);
void sd_rope_ref(float *x, int64_t L, int64_t n_heads, int64_t hd, int64_t ld, float base,
                 int neox);

/* SwiGLU: g[n] = silu(g) * u = g / (1 + exp(-g)) * u, in place on g. */
void sd_swiglu(float *g, const float *u, int64_t n, sd_pool *pool);
void sd_swiglu_ref(float *g, const float *u, int64_t n);

/* GELU, tanh approximation, in place:
 *   x = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
void sd_gelu_tanh(float *x, int64_t n, sd_pool *pool);
void sd_gelu_tanh_ref(float *x, int64_t n);

/* Grouped-query attention of n query rows against the keys and values of
 * a canvas of L positions, all heads:
 *   q   [n, H*hd]    rows at canvas positions pos[n] (NULL: 0..n-1)
 *   k, v [L, Hkv*hd] head h reads kv head h / (H/Hkv)
 *   out [n, H*hd]    = softmax(q_h k_g^T / sqrt(hd) [+ causal mask: keys
 *                    <= the row's position]) v_g; may be q itself (each
 *                    row is read before it is written), else disjoint
 *   scratch          sd_attention_scratch_floats(hd, threads) floats, 64-byte
 *                    aligned, threads the pool's (1 without one)
 * Tiled with an online softmax: no n x L score matrix, memory per thread is
 * a few tiles. A row's result does not depend on the other rows asked for,
 * so a subset of rows equals those rows of the whole. Work items (head x
 * tile of 64 queries) are spread over the pool; the products run on
 * AVX-512 (head size a multiple of 32), AVX2 or plain C, as the CPU has. */
void sd_attention(float *out, const float *q, int64_t n, const int32_t *pos, const float *k, const float *v,
                  int64_t L, int64_t H, int64_t Hkv, int64_t hd, int causal, float *scratch, sd_pool *pool);
void sd_attention_ref(float *out, const float *q, int64_t n, const int32_t *pos, const float *k, const float *v,
                      int64_t L, int64_t H, int64_t Hkv, int64_t hd, int causal);
size_t sd_attention_scratch_floats(int64_t hd, int n_threads);

/* out[M, ldc] (columns [0, rows)) = x[M, cols] @ W^T + beta * out for a
 * weight W[rows, cols] of any supported type (beta 0 or 1: 1 adds the
 * product to out, e.g. onto the residual stream). F32 goes straight to sd_sgemm; other types are
 * dequantised panel by panel into `panel` (panel_floats floats, at least
 * cols floats) and multiplied panel by panel, so W is never expanded whole. */
void sd_matmul_w(float *out, int64_t ldc, float beta, const float *x, int64_t M, uint32_t type, const void *w,
                 int64_t rows, int64_t cols, float *panel, size_t panel_floats, sd_pool *pool);
/* Naive reference: per element, double accumulation, rows dequantised by
 * sd_dequant_rows_ref. */
void sd_matmul_w_ref(float *out, int64_t ldc, float beta, const float *x, int64_t M, uint32_t type,
                     const void *w, int64_t rows, int64_t cols);

/* Floats of the panel scratch sd_matmul_w uses for weights of up to
 * max_cols columns. */
size_t sd_panel_floats(int64_t max_cols);

#endif
