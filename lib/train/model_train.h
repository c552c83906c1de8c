/* model_train.h -- a dream/llada/mdlm transformer held as F32 master parameters
 * with gradients, a forward pass that keeps its activations, and the
 * backward pass (llm.c style: one arena of parameters, one of gradients,
 * one of activations sized from (B, L)).
 *
 * Parameter names and layouts are those of sd_weights (nn/transformer.h)
 * and of the GGUF tensors (token_embd.weight, blk.N.attn_q.weight, ...), so
 * a trained model can be written as a GGUF that the inference path loads.
 * The three raw soft-masking parameters r = (r_s, r_a, r_b) sit at the end
 * of the parameter arena (tensor "smdiff.softmask.raw") so that clipping,
 * the optimizer and checkpoints treat them like any other parameter.
 *
 * Shapes: d = n_embd, H = n_head, Hkv = n_head_kv, hd = d / H, F = n_ff,
 * V = n_vocab, N = B * L rows.
 */
#ifndef SD_TRAIN_MODEL_TRAIN_H
#define SD_TRAIN_MODEL_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/rng.h"
#include "nn/transformer.h"

/* Pointers into one arena (parameters or gradients). bq/bk/bv are NULL for
 * llada. */
typedef struct sd_tlayer {
    float *attn_norm, *wq, *wk, *wv, *bq, *bk, *bv, *wo, *ffn_norm, *w_gate, *w_up, *w_down;
    float *adaln, *adaln_b, *b_up, *b_down; /* mdlm only (w_gate NULL then) */
} sd_tlayer;

typedef struct sd_tparams {
    float *token_embd, *output_norm, *output;
    sd_tlayer *layers; /* [n_layer] */
    float *sm_raw;     /* [3]: r_s, r_a, r_b */
    /* mdlm only: the timestep MLP, the head's adaLN and bias */
    float *time_fc1, *time_fc1_b, *time_fc2, *time_fc2_b, *output_adaln, *output_adaln_b, *output_b;
} sd_tparams;

/* One named parameter tensor: GGUF name, shape [rows, cols] (cols = ne[0]),
 * offset in floats into the arenas, and its optimizer group. */
enum { SD_TGROUP_DECAY = 0, SD_TGROUP_NO_DECAY = 1, SD_TGROUP_SM = 2 };
typedef struct sd_ttensor {
    char name[48];
    int64_t rows, cols;
    size_t offset;
    int group; /* SD_TGROUP_*: matrices decay; norms and biases do not; SM has its own LR */
} sd_ttensor;

/* Saved activations of one layer. */
typedef struct sd_tlayer_acts {
    float *x;      /* [N,d]   layer input (residual stream) */
    float *ln1;    /* [N,d] */
    float *rstd1;  /* [N] */
    float *q;      /* [N,H*hd]   after bias and RoPE */
    float *k;      /* [N,Hkv*hd] after bias and RoPE */
    float *v;      /* [N,Hkv*hd] */
    float *att;    /* [B,H,L,L]  softmax probabilities */
    float *atty;   /* [N,H*hd]   attention output before wo */
    float *x2;     /* [N,d]      residual after attention */
    float *ln2;    /* [N,d] */
    float *rstd2;  /* [N] */
    float *g, *u;  /* [N,F] gate and up projections (mdlm: u before GELU, no g) */
    float *hs;     /* [N,F] silu(g) * u (mdlm: gelu(u)) */
    /* mdlm only: LayerNorm means, the attention and MLP branch outputs
     * before their gates */
    float *mean1, *mean2; /* [N] */
    float *ao, *mo;       /* [N,d] */
} sd_tlayer_acts;

typedef struct sd_tacts {
    sd_tlayer_acts *layers;
    float *x_out;   /* [N,d] final residual */
    float *lnf;     /* [N,d] */
    float *rstdf;   /* [N] */
    float *hrows;   /* [R,d] gathered rows of lnf that need logits */
    float *logits;  /* [R,V]; after a forward with targets: their gradient (in place) */
    float *losses;  /* [R] per-row cross-entropy */
    float *lam;     /* [N] lambda of the soft rows */
    /* backward scratch */
    float *dx;      /* [N,d] gradient of the residual stream */
    float *dln;     /* [N,d] */
    float *dq, *dk, *dv, *datty; /* [N,H*hd] / [N,Hkv*hd] */
    float *dg, *du, *dhs;        /* [N,F] */
    float *dP;      /* [L,L] */
    float *dhrows;  /* [R,d] */
    float *dlam;    /* [N] */
    float *rope_cos, *rope_sin; /* [L, hd/2] */
    /* mdlm only: the conditioning of Bc sequences (Bc = B with time
     * conditioning, else 1: sigma = 0 for all) */
    float *meanf;   /* [N] */
    float *t_feat;  /* [Bc, T] timestep features */
    float *t_h1, *t_a1, *t_h2, *t_c; /* [Bc, C] fc1 out, silu, fc2 out, silu = c */
    float *mod;     /* adaLN outputs, chunk-major: layer l's chunk j (shift, scale,
                       gate for attention, then for the MLP) at [(6 l + j) Bc d],
                       [Bc, d]; the head's two after the layers' */
    float *dmod;    /* the same shape */
    float *mod_rows;/* [Bc, 6d] one product's rows before the rearrangement */
    float *t_dc, *t_da; /* [Bc, C] */
} sd_tacts;

/* A batch for one forward/backward.
 *   ids [B*L]: input token ids (the mask id where masked).
 *   Soft rows (SM pass 2): n_soft distinct rows of [0,N) whose input embedding is
 *     the SM mixture; soft_ids/soft_pi [n_soft, k] (constants from pass 1,
 *     pi renormalised over the k), soft_entropy [n_soft] (constant);
 *     lambda comes from the model's raw SM parameters.
 *   Loss rows: n_loss rows of [0,N) whose logits are computed (rows may
 *     repeat: dream's shift makes row 0 predict positions 0 and 1);
 *     targets [n_loss] (NULL: logits only, no loss, as in pass 1) and
 *     weights [n_loss]: loss = sum_r weights[r] * CE(row r, target r). */
typedef struct sd_tbatch {
    int64_t B, L;
    const int32_t *ids;
    int causal;
    int64_t n_soft;
    int32_t k;
    const int32_t *soft_rows, *soft_ids;
    const float *soft_pi, *soft_entropy;
    int64_t n_loss;
    const int32_t *loss_rows, *loss_targets;
    const float *loss_weights;
    /* mdlm with time conditioning: each sequence's t [B], its conditioning
     * at MDLM's log-linear sigma(t) = -log(1 - (1 - 1e-3) t); NULL: t = 0.
     * Ignored by the other architectures. */
    const float *t;
    /* 1: no backward will follow this forward (SM's first pass, the
     * evaluations): the attention takes the inference kernel and keeps no
     * L x L probabilities, and sd_tmodel_backward refuses it. */
    int no_grad;
} sd_tbatch;

typedef struct sd_tmodel {
    sd_hparams hp;
    int rope_mode; /* SD_ROPE_* */
    int has_bias;  /* q/k/v biases (dream) */
    int dit;       /* mdlm: MDLM's DiT blocks (nn/dit.c) */
    size_t n_params;
    float *params, *grads; /* one allocation each, [n_params] */
    sd_tparams p, g;
    sd_ttensor *tensors;
    int32_t n_tensors;
    /* activation arena, sized at creation for B_max x L_max and R_max loss rows */
    int64_t B_max, L_max, R_max;
    float *act_mem;
    size_t act_floats;
    sd_tacts a;
    sd_pool *pool;    /* borrowed, may be NULL: threads for the non-BLAS loops */
    int have_forward; /* activations hold a forward of this batch shape */
    int64_t fw_B, fw_L, fw_R;
    double flops;     /* matrix FLOPs of every forward and backward run so far
                         (sd_tmodel_forward_flops each forward, twice that each backward) */
    sd_error err;
} sd_tmodel;

/* Create a model of the given shape with zeroed parameters and gradients
 * and activations for up to B_max x L_max rows with R_max logit rows
 * (R_max <= 0 means B_max * L_max). hp->arch selects biases (dream) and
 * the RoPE pairing (dream: NEOX; llada: ADJACENT if rope_permuted, else
 * NEOX); mdlm is MDLM's DiT (nn/dit.c), its conditioning constant
 * (sigma = 0) or, with time conditioning, each sequence's (sd_tbatch.t).
 * Returns SMDIFF_OK, SMDIFF_E_INVAL (bad shape: H % Hkv, d % H,
 * odd hd, ...), SMDIFF_E_NOMEM. On failure *out is NULL and err says why. */
int32_t sd_tmodel_create(const sd_hparams *hp, int64_t B_max, int64_t L_max, int64_t R_max,
                         sd_tmodel **out, sd_error *err);
void sd_tmodel_free(sd_tmodel *m); /* accepts NULL */

/* Initialise from scratch: matrices and embeddings ~ N(0, std^2) from rng,
 * norms 1, biases 0, SM raw values from (omega_s, omega_a, omega_b). */
void sd_tmodel_init_random(sd_tmodel *m, sd_rng *rng, float std, double omega_s, double omega_a,
                           double omega_b);

/* Matrix FLOPs of one forward of a batch of B sequences of L tokens with
 * R logit rows, counting the products that run (docs/METHOD.md section 4):
 *     2 N P_mat + 4 B L^2 (H hd) n_layer + 2 R d V,   N = B L,
 * P_mat the blocks' matrix weights (q, k, v, o, gate, up, down per layer;
 * norms and biases are not products), the attention's QK^T and PV over the
 * full L x L (causal batches compute it too). A backward runs twice these
 * products (each one's input and weight gradients). */
double sd_tmodel_forward_flops(const sd_hparams *hp, int64_t B, int64_t L, int64_t R);

/* View the F32 master parameters as the inference path's weights (type F32,
 * no copy): w->layers must point to n_layer entries the caller provides.
 * Lets sd_forward (nn/transformer.h) run the model being trained, and is
 * the shape a GGUF checkpoint is written from. The view follows the params. */
void sd_tmodel_as_weights(const sd_tmodel *m, sd_weights *w, sd_layer_weights *layers);

/* Look a tensor up by name; NULL if absent. */
const sd_ttensor *sd_tmodel_find(const sd_tmodel *m, const char *name);

void sd_tmodel_zero_grad(sd_tmodel *m);

/* Forward pass; keeps activations for sd_tmodel_backward. Writes the
 * loss (sum over loss rows of weight * CE) to *loss when targets are given
 * (loss may be NULL). Without targets the logits of the loss rows stay in
 * m->a.logits [n_loss, V]; with targets that memory is overwritten by the
 * logits' gradient (fused cross-entropy, as llm.c does), per-row losses
 * in m->a.losses.
 * Returns SMDIFF_E_INVAL for a batch that does not fit or has ids out of
 * range, SMDIFF_E_NUMERIC for a non-finite loss. */
int32_t sd_tmodel_forward(sd_tmodel *m, const sd_tbatch *b, double *loss);

/* Backward pass of the last forward (same batch, with targets): ACCUMULATES
 * the gradient of the loss into m->grads (including the raw SM parameters
 * through lambda of the soft rows). */
int32_t sd_tmodel_backward(sd_tmodel *m, const sd_tbatch *b);

#endif
