/* ops.h -- forward and backward of every op of the dream/llada blocks, for
 * training (llm.c style).
 *
 * Conventions:
 *   - row-major float32; N = B * L rows (B sequences of L positions);
 *   - a weight W [out, in] multiplies activations X [N, in] as X @ W^T,
 *     exactly as sd_weights in nn/transformer.h, so trained parameters can be
 *     written as the GGUF tensors the inference path loads;
 *   - every backward ACCUMULATES (+=) into the gradients of its inputs and
 *     parameters (llm.c's convention): the caller zeroes them once per step,
 *     and a tensor read by two ops (the residual stream) sums both
 *     contributions without extra buffers;
 *   - every matrix product goes through sd_sgemm (nn/blas.h).
 * Each backward sits directly below its forward; the math is written out in
 * docs/TRAINING.md.
 */
#ifndef SD_TRAIN_OPS_H
#define SD_TRAIN_OPS_H

#include <stdint.h>

#include "core/pool.h"

/* RoPE pairing. NEOX rotates (x[i], x[i + hd/2]) (Qwen2/dream, and Hugging
 * Face llama weights); ADJACENT rotates (x[2i], x[2i+1]) (llama.cpp's
 * layout for llama-family files, whose Q/K rows are permuted so that this
 * pairing gives the same result as NEOX on the original rows). */
enum { SD_ROPE_NEOX = 0, SD_ROPE_ADJACENT = 1 };

/* ---- embedding ---------------------------------------------------------- */

/* out[n,:] = E[ids[n],:]
 *   out [N,d], E [V,d], ids [N] (caller checked 0 <= id < V) */
void sd_tr_embed_fwd(float *out, const float *E, const int32_t *ids, int64_t N, int64_t d);
/* dE[ids[n],:] += dout[n,:] */
void sd_tr_embed_bwd(float *dE, const float *dout, const int32_t *ids, int64_t N, int64_t d);

/* Soft-mask input embedding on S chosen rows (docs/METHOD.md section 1):
 *   out[rows[s],:] = (1 - lam[s]) E[mask_id] + lam[s] * sum_i pi[s,i] E[ids[s,i]]
 *   out [N,d] (other rows untouched), E [V,d], rows [S], ids/pi [S,k], lam [S].
 * pi is used as given (the caller renormalised it over the top k). */
void sd_tr_softmix_fwd(float *out, const float *E, int32_t mask_id, const int32_t *rows,
                       const int32_t *ids, const float *pi, const float *lam, int64_t S, int32_t k,
                       int64_t d);
/* dE[mask] += (1-lam) dout_row, dE[ids_i] += lam pi_i dout_row,
 * dlam[s] += dout_row . (sum_i pi_i E[ids_i] - E[mask]).  pi, ids: constants. */
void sd_tr_softmix_bwd(float *dE, float *dlam, const float *dout, const float *E, int32_t mask_id,
                       const int32_t *rows, const int32_t *ids, const float *pi, const float *lam,
                       int64_t S, int32_t k, int64_t d);

/* lambda from pass-1 entropies and the raw SM parameters r = (r_s, r_a, r_b):
 *   omega_s = sigmoid(r_s), omega_a = softplus(r_a), omega_b = -softplus(r_b)
 *   lam[s]  = omega_s * sigmoid(omega_a * (-H[s] - omega_b))
 *   lam [S], H [S] (constants), raw [3]. Computed in double. */
void sd_tr_sm_lambda_fwd(float *lam, const float *H, int64_t S, const float raw[3]);
/* draw[j] += sum_s dlam[s] * dlam[s]/dr_j */
void sd_tr_sm_lambda_bwd(float draw[3], const float *dlam, const float *H, int64_t S,
                         const float raw[3]);

/* ---- RMSNorm ------------------------------------------------------------ */

/* out[n,:] = x[n,:] * rstd[n] * w,  rstd[n] = 1 / sqrt(mean(x[n,:]^2) + eps)
 *   out [N,d], rstd [N] (saved for backward), x [N,d], w [d] */
void sd_tr_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int64_t N,
                       int64_t d, float eps);
void sd_tr_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w,
                       const float *rstd, int64_t N, int64_t d);

/* ---- linear ------------------------------------------------------------- */

/* out = x @ W^T (+ b)
 *   out [N,O], x [N,I], W [O,I], b [O] or NULL */
void sd_tr_matmul_fwd(float *out, const float *x, const float *W, const float *b, int64_t N,
                      int64_t I, int64_t O);
/* dx += dout @ W (skipped when dx is NULL), dW += dout^T @ x, db += colsum(dout)
 * (skipped when db is NULL). */
void sd_tr_matmul_bwd(float *dx, float *dW, float *db, const float *dout, const float *x,
                      const float *W, int64_t N, int64_t I, int64_t O);
/* Naive triple loop of the forward, the reference for the tests. */
void sd_tr_matmul_fwd_ref(float *out, const float *x, const float *W, const float *b, int64_t N,
                          int64_t I, int64_t O);

/* ---- RoPE --------------------------------------------------------------- */

/* The cos/sin tables [L, hd/2] come from nn/ops.h's sd_rope_table, the
 * inference path's, so both paths rotate by the same angles. */
/* In place on x [B, L, nh, hd] (position l of each sequence), pairing by mode. */
void sd_tr_rope_fwd(float *x, const float *cos_t, const float *sin_t, int64_t B, int64_t L,
                    int64_t nh, int64_t hd, int mode);
/* The rotation is orthogonal, so the backward rotates the gradient by the
 * opposite angle, in place: dx [B, L, nh, hd] (d wrt rotated -> d wrt input). */
void sd_tr_rope_bwd(float *dx, const float *cos_t, const float *sin_t, int64_t B, int64_t L,
                    int64_t nh, int64_t hd, int mode);

/* ---- attention ---------------------------------------------------------- */

/* Scaled dot-product attention with grouped KV heads (head h reads KV head
 * h / (H / Hkv)), bidirectional or causal within each sequence.
 *   out [B,L,H,hd], att [B,H,L,L] (softmax probabilities, saved),
 *   q [B,L,H,hd], k, v [B,L,Hkv,hd] */
void sd_tr_attention_fwd(float *out, float *att, const float *q, const float *k, const float *v,
                         int64_t B, int64_t L, int64_t H, int64_t Hkv, int64_t hd, int causal);
/* dq, dk, dv accumulate; scratch [L,L]. */
void sd_tr_attention_bwd(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                         const float *att, const float *q, const float *k, const float *v,
                         int64_t B, int64_t L, int64_t H, int64_t Hkv, int64_t hd);

/* ---- SwiGLU ------------------------------------------------------------- */

/* h = silu(g) * u,  silu(g) = g * sigmoid(g);  h, g, u [n] */
void sd_tr_swiglu_fwd(float *h, const float *g, const float *u, int64_t n);
void sd_tr_swiglu_bwd(float *dg, float *du, const float *dh, const float *g, const float *u,
                      int64_t n);

/* ---- MDLM's DiT (architecture mdlm, nn/dit.c) ---------------------------
 * Building blocks of its training pass, each checked against finite
 * differences (tests/test_train_grad.c); the trainer does not assemble them
 * into an mdlm model yet (docs/MODELS.md). The conditioning is per
 * sequence: rows n of sequence b = n / L read shift/scale/gate row b. */

/* Weight-only LayerNorm with adaLN modulation:
 *   out[n,:] = (x[n,:] - mean[n]) * rstd[n] * w * (1 + scale[b,:]) + shift[b,:]
 *   out [N,d], mean/rstd [N] (saved for backward), x [N,d], w [d],
 *   shift/scale [B,d], N = B * L */
void sd_tr_layernorm_mod_fwd(float *out, float *mean, float *rstd, const float *x, const float *w,
                             const float *shift, const float *scale, int64_t B, int64_t L, int64_t d,
                             float eps);
/* dx, dw, dshift, dscale accumulate (dshift/dscale may be NULL). */
void sd_tr_layernorm_mod_bwd(float *dx, float *dw, float *dshift, float *dscale, const float *dout,
                             const float *x, const float *w, const float *scale, const float *mean,
                             const float *rstd, int64_t B, int64_t L, int64_t d);

/* Gated residual: out[n,:] = x[n,:] + gate[b,:] * y[n,:]  (out may alias x). */
void sd_tr_gated_add_fwd(float *out, const float *x, const float *gate, const float *y, int64_t B,
                         int64_t L, int64_t d);
/* dx += dout (skipped when NULL), dy += gate * dout, dgate[b,:] += sum over
 * the sequence's rows of dout * y. */
void sd_tr_gated_add_bwd(float *dx, float *dgate, float *dy, const float *dout, const float *gate,
                         const float *y, int64_t B, int64_t L, int64_t d);

/* h = gelu_tanh(u) (nn/ops.h's sd_gelu_tanh, the inference kernel); h, u [n] */
void sd_tr_gelu_fwd(float *h, const float *u, int64_t n);
void sd_tr_gelu_bwd(float *du, const float *dh, const float *u, int64_t n);

/* h = silu(u) = u * sigmoid(u) (the timestep MLP's activations); h, u [n] */
void sd_tr_silu_fwd(float *h, const float *u, int64_t n);
void sd_tr_silu_bwd(float *du, const float *dh, const float *u, int64_t n);

/* ---- rows, residuals ---------------------------------------------------- */

/* out[r,:] = x[rows[r],:];  out [R,d], x [N,d] */
void sd_tr_gather_rows(float *out, const float *x, const int32_t *rows, int64_t R, int64_t d);
/* dx[rows[r],:] += dout[r,:] (rows may repeat) */
void sd_tr_scatter_add_rows(float *dx, const float *dout, const int32_t *rows, int64_t R,
                            int64_t d);
/* out = a + b; n floats (out may alias a) */
void sd_tr_add(float *out, const float *a, const float *b, int64_t n);
/* dst += src */
void sd_tr_acc(float *dst, const float *src, int64_t n);

/* ---- cross-entropy ------------------------------------------------------ */

/* loss[r] = logsumexp(logits[r,:]) - logits[r, targets[r]]
 *   loss [R], logits [R,V], targets [R] */
void sd_tr_xent_fwd(float *loss, const float *logits, const int32_t *targets, int64_t R,
                    int64_t V);
/* For the total  sum_r w[r] * loss[r]:
 *   dlogits[r,:] += w[r] * (softmax(logits[r,:]) - onehot(targets[r])) */
void sd_tr_xent_bwd(float *dlogits, const float *logits, const int32_t *targets, const float *w,
                    int64_t R, int64_t V);

/* Fused forward + backward, in place, as the training step uses it: reads
 * logits [R,V], writes loss [R] and replaces each logits row by
 * w[r] * (softmax - onehot(targets[r])) (the gradient of sum_r w[r] loss[r]),
 * so the logits' memory serves as their gradient. One exp per element (the
 * 8-lane exp of core/vecmath.h, AVX2 where the CPU has it); rows split over
 * pool (may be NULL). The naive twin is sd_tr_xent_fwd + sd_tr_xent_bwd. */
void sd_tr_xent_fused(float *loss, float *logits, const int32_t *targets, const float *w,
                      int64_t R, int64_t V, sd_pool *pool);

/* Per-row softmax statistics used to build SM inputs (pass 1):
 * the k most probable ids (descending, ties to the lower id), their
 * probabilities renormalised over the k, and the entropy (nats) of the full
 * softmax.  logits [V]; ids, pi [k]; returns H (NaN for a row holding NaN
 * or +inf). The inference statistics kernels (diffusion/stats_kernels.h),
 * shared with decoding; _ref is the naive twin the tests check them by. */
double sd_tr_topk_entropy(const float *logits, int64_t V, int32_t k, int32_t *ids, float *pi);
double sd_tr_topk_entropy_ref(const float *logits, int64_t V, int32_t k, int32_t *ids, float *pi);

#endif
