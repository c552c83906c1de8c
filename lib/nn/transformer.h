/* transformer.h -- the transformer core: weights of a dream/llada/mdlm
 * model and a forward pass over input embeddings that returns logits only
 * for the rows asked for.
 *
 * Shapes (row-major, floats unless noted):
 *   d = n_embd, H = n_head, Hkv = n_head_kv, hd = d / H, F = n_ff, V = n_vocab
 *   token_embd [V, d]      (any supported type, core/numfmt.h: rows dequantised on use)
 *   per layer:  attn_norm [d], wq [H*hd, d], wk [Hkv*hd, d], wv [Hkv*hd, d],
 *               bq/bk/bv (dream only), wo [d, H*hd], ffn_norm [d],
 *               w_gate [F, d], w_up [F, d], w_down [d, F]
 *   output_norm [d], output [V, d]
 * mdlm (MDLM's DiT, nn/dit.c; C = n_cond, T = n_freq): w_gate unused,
 *   per layer also adaln [6d, C], adaln_b [6d], b_up [F], b_down [d];
 *   time_fc1 [C, T], time_fc1_b [C], time_fc2 [C, C], time_fc2_b [C],
 *   output_adaln [2d, C], output_adaln_b [2d], output_b [V].
 * A weight matrix W [out, in] multiplies activations X [L, in] as X @ W^T.
 */
#ifndef SD_NN_TRANSFORMER_H
#define SD_NN_TRANSFORMER_H

#include <stdint.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/pool.h"

typedef enum { SD_ARCH_DREAM = 1, SD_ARCH_LLADA = 2, SD_ARCH_MDLM = 3 } sd_arch;

/* A weight tensor as stored: data in the mapping (or owned), its ggml type,
 * shape [rows, cols] (cols = ne[0]). */
typedef struct sd_weight {
    const void *data;
    uint32_t type;
    int64_t rows, cols;
} sd_weight;

typedef struct sd_layer_weights {
    sd_weight attn_norm, wq, wk, wv, bq, bk, bv, wo, ffn_norm, w_gate, w_up, w_down;
    sd_weight adaln, adaln_b, b_up, b_down; /* mdlm only */
} sd_layer_weights;

typedef struct sd_hparams {
    sd_arch arch;
    int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    float norm_eps, rope_base;
    int32_t shift_logits;   /* dream: row i predicts position i+1 */
    int32_t rope_permuted;  /* llada from llama.cpp: Q/K rows permuted for adjacent-pair RoPE */
    int32_t mask_id, bos_id, eos_id, pad_id;
    /* mdlm: conditioning width, timestep features (even), and whether the
     * conditioning follows the noise level (0: constant, precomputed). */
    int32_t n_cond, n_freq, time_cond;
} sd_hparams;

/* What a model file may declare: the loader's bounds, which the converter
 * applies before it writes a file (sd_hparams_check). */
#define SD_HP_MAX_LAYERS 4096
#define SD_HP_MAX_EMBD (1 << 20)
#define SD_HP_MAX_FF (1 << 20)
#define SD_HP_MAX_HEADS 4096
#define SD_HP_MAX_CTX (1 << 24)
#define SD_HP_MAX_VOCAB (1 << 24)
#define SD_HP_MAX_REAL 1e30 /* RoPE base and norm epsilon: in (0, this] */

/* SMDIFF_OK if hp is what the loader accepts: sizes within the bounds
 * above, heads dividing the width into even head sizes and kv heads
 * dividing heads, RoPE base and norm epsilon in (0, SD_HP_MAX_REAL], token
 * ids -1 or inside the vocabulary; else SMDIFF_E_FORMAT naming the value. */
int32_t sd_hparams_check(const sd_hparams *hp, sd_error *err);

typedef struct sd_weights {
    sd_hparams hp;
    sd_weight token_embd, output_norm, output;
    sd_layer_weights *layers;  /* [n_layer] */
    /* mdlm only (see the shapes above) */
    sd_weight time_fc1, time_fc1_b, time_fc2, time_fc2_b, output_adaln, output_adaln_b, output_b;
    /* mdlm without time conditioning: every adaLN output, computed once at
     * load ([n_layer * 6d + 2d], sd_dit_conditioning); NULL otherwise. */
    const float *cond_const;
} sd_weights;

/* Per-call options of the forward pass. */
typedef struct sd_forward_opts {
    int causal;                 /* 1: causal attention mask (AR reference model) */
    sd_pool *pool;              /* threads for non-BLAS work; may be NULL */
    int (*abort_fn)(void *ud);  /* polled between layers; non-zero aborts */
    void *abort_ud;
} sd_forward_opts;

/* Arena bytes the forward pass needs for a canvas of L positions and
 * n_rows logit rows. */
size_t sd_forward_scratch_bytes(const sd_hparams *hp, int64_t L, int64_t n_rows);

/* Forward pass.
 *   embd   [L, d]  input embeddings (soft-masked mixtures allowed)
 *   rows   [n_rows] canvas rows whose logits are wanted
 *   logits [n_rows, V] out (may be NULL when n_rows == 0)
 *   hidden [L, d]  optional out: final hidden states after output_norm
 * Returns SMDIFF_OK, SMDIFF_E_ABORTED, SMDIFF_E_NOMEM (arena too small). */
int32_t sd_forward(const sd_weights *w, const float *embd, int64_t L, const int32_t *rows,
                   int64_t n_rows, float *logits, float *hidden, const sd_forward_opts *opts,
                   sd_arena *scratch, sd_error *err);

/* The same for a model whose conditioning follows the noise level (mdlm
 * with time conditioning): sigma = sigma(t) of the step (MDLM's log-linear
 * schedule: -log(1 - (1 - 1e-3) t)). sd_forward passes sigma = 0; other
 * architectures ignore it. */
int32_t sd_forward_sigma(const sd_weights *w, float sigma, const float *embd, int64_t L,
                         const int32_t *rows, int64_t n_rows, float *logits, float *hidden,
                         const sd_forward_opts *opts, sd_arena *scratch, sd_error *err);

/* The mdlm forward pass (nn/dit.c), reached through sd_forward_sigma. */
int32_t sd_dit_forward(const sd_weights *w, float sigma, const float *embd, int64_t L,
                       const int32_t *rows, int64_t n_rows, float *logits, float *hidden,
                       const sd_forward_opts *opts, sd_arena *scratch, sd_error *err);
size_t sd_dit_scratch_bytes(const sd_hparams *hp, int64_t L, int64_t n_rows);

/* mdlm: the adaLN outputs for noise level sigma, out[sd_dit_cond_floats]:
 * per layer (shift, scale, gate) for attention then for the MLP, each [d],
 * then the final layer's (shift, scale). scratch: sd_dit_cond_scratch floats. */
size_t sd_dit_cond_floats(const sd_hparams *hp);
size_t sd_dit_cond_scratch(const sd_hparams *hp);
void sd_dit_conditioning(const sd_weights *w, float sigma, float *out, float *scratch);

/* MDLM's "subs" output: the mask logit is pushed to this value (added). */
#define SD_DIT_MASK_LOGIT (-1.0e6f)

/* Input embedding of token id (dequantised row of token_embd) into out[d]. */
void sd_embed_token(const sd_weights *w, int32_t id, float *out);

/* Check that the hyperparameters are consistent and every tensor has the
 * shape and a type the forward pass needs (norms and biases F32; matrices
 * F32, F16, BF16 or a block format of core/quant.h, any mixture). SMDIFF_E_FORMAT
 * naming the first offending tensor. */
int32_t sd_weights_validate(const sd_weights *w, sd_error *err);

/* Parameter counts: all, and without token_embd and output (the
 * "non-embedding" count of the performance model, docs/METHOD.md section 4). */
void sd_weights_n_params(const sd_weights *w, int64_t *total, int64_t *non_embedding);

/* Model FLOPs of one forward over L positions with n_rows logit rows, as
 * docs/METHOD.md section 4 counts them: 2*P_ne*L + 4*L^2*d*layers + 2*d*V*n_rows. */
double sd_forward_flops(const sd_weights *w, int64_t L, int64_t n_rows);

#endif
