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

/* Keys and values of every layer for a canvas of up to n_ctx positions:
 * what a partial forward attends to for the rows it does not compute.
 *   k, v [n_layer][n_ctx][Hkv*hd]
 * A forward with a cache writes the keys and values of the rows it
 * computes and reads every other row's from the cache. */
typedef struct sd_kv_cache {
    float *k, *v;
    int64_t n_ctx;
} sd_kv_cache;

/* Floats of a cache for n_ctx positions (keys and values together). */
size_t sd_kv_cache_floats(const sd_hparams *hp, int64_t n_ctx);
/* Point c at mem, sd_kv_cache_floats(hp, n_ctx) floats owned by the caller. */
void sd_kv_cache_init(sd_kv_cache *c, const sd_hparams *hp, float *mem, int64_t n_ctx);

/* One sequence of a forward pass: some rows of a canvas of L positions.
 *   embd  [L, d]  the canvas's input embeddings; rows pos[] are read
 *   pos   [n]     canvas positions of the rows computed (distinct, any
 *                 order); NULL: all L, in order (n == L)
 *   cache         NULL: no cache -- every row is computed (pos NULL) and
 *                 attends to the others' fresh keys; else the rows computed
 *                 write their keys and values into it and attend to all L
 *                 of its rows (the others' as last written: a partial
 *                 forward) */
typedef struct sd_fwd_seq {
    const float *embd;
    int64_t L;
    const int32_t *pos;
    int64_t n;
    const sd_kv_cache *cache;
    float sigma; /* mdlm with time conditioning: the step's noise level
                  * (sd_forward_sigma); ignored otherwise */
} sd_fwd_seq;

/* Arena bytes a forward over n_total rows (all sequences) with n_out
 * logit rows needs, its pool having n_threads threads (1 without one). */
size_t sd_forward_batch_scratch_bytes(const sd_hparams *hp, int64_t n_total, int64_t n_out, int n_threads);

/* Forward pass of several sequences at once: their rows are stacked (in
 * sequence order, each in its pos order) and share every product with a
 * weight; each attends only to its own canvas.
 *   out    [n_out] stacked row indices whose logits are wanted
 *   logits [n_out, V] out (may be NULL when n_out == 0)
 *   hidden [N, d]  optional out: final hidden states of the stacked rows
 * With a cache refreshed by a full forward (pos NULL) of the same inputs,
 * a partial forward gives the same rows as the full one, to float
 * rounding. Returns SMDIFF_OK, SMDIFF_E_INVAL / SMDIFF_E_RANGE (bad
 * sequence, position or row), SMDIFF_E_ABORTED, SMDIFF_E_NOMEM (arena too
 * small), SMDIFF_E_UNSUPPORTED (an mdlm model asked for a cache or some
 * rows: its conditioning follows each step's noise level, so keys and
 * values from one step do not hold at the next; it computes whole
 * canvases, one sequence after another). */
int32_t sd_forward_batch(const sd_weights *w, const sd_fwd_seq *seqs, int64_t n_seqs, const int32_t *out,
                         int64_t n_out, float *logits, float *hidden, const sd_forward_opts *opts,
                         sd_arena *scratch, sd_error *err);

/* Arena bytes the forward pass needs for a canvas of L positions and
 * n_rows logit rows, its pool having n_threads threads (1 without one):
 * linear in L (docs/ARCHITECTURE.md, "Memory"). */
size_t sd_forward_scratch_bytes(const sd_hparams *hp, int64_t L, int64_t n_rows, int n_threads);

/* Forward pass of one whole canvas (sd_forward_batch with one sequence, no
 * cache).
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
size_t sd_dit_scratch_bytes(const sd_hparams *hp, int64_t L, int64_t n_rows, int n_threads);

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
