/* objective.h -- training objectives: MDLM (the masked-diffusion ELBO of
 * the linear schedule), soft-masking two-pass training (docs/METHOD.md section
 * 1), and autoregressive next-token loss (the causal reference model).
 *
 * MDLM, for a batch x0 [B, L] of clean tokens:
 *   t_b ~ U(eps, 1) per sequence (or antithetic: t_b = eps + (1-eps)(u+b)/B
 *   from one u), each token masked independently with probability t_b,
 *   loss = (1 / (B L)) sum_b (1 / t_b) sum_{masked p} -log p_theta(x0[b,p] | x_t)
 *   The logit row that predicts position p is p itself (llada), or p - 1
 *   for dream's shifted logits (p = 0 uses row 0).
 *
 * SM two-pass (with probability sm_prob per batch, else plain MDLM):
 *   pass 1: forward on the masked batch, no gradient; for every masked
 *     position its predicted distribution gives the top-k ids, their
 *     renormalised probabilities pi and the entropy H (all constants);
 *   pass 2: the masked positions take the SM input embedding
 *     (1-lam) E[MASK] + lam sum_i pi_i E[v_i] with lam from H and the
 *     current raw SM parameters; forward + backward of the same loss, so
 *     the gradient reaches the model and, through lam, omega.
 *
 * AR: causal attention, row p predicts x0[p+1], loss averaged over the
 *   B (L-1) predictions.
 *
 * All randomness comes from the caller's Philox generator, so a run is a
 * function of its seed.
 */
#ifndef SD_TRAIN_OBJECTIVE_H
#define SD_TRAIN_OBJECTIVE_H

#include <stdint.h>

#include "core/rng.h"
#include "train/model_train.h"

enum { SD_OBJ_MDLM = 0, SD_OBJ_AR = 1 };

typedef struct sd_objective_opts {
    int kind;           /* SD_OBJ_MDLM or SD_OBJ_AR */
    double eps;         /* lower bound of t (default 1e-3) */
    int antithetic;     /* 1: low-discrepancy t across the batch */
    int sm;             /* 1: soft-masking two-pass training */
    double sm_prob;     /* probability a batch uses SM (default 0.8) */
    int32_t sm_k;       /* top-k of the SM mixture (default 3) */
} sd_objective_opts;

void sd_objective_defaults(sd_objective_opts *o);

/* Buffers of one batch (sized for the model's B_max x L_max). */
typedef struct sd_objective_ws {
    int64_t cap;               /* B_max * L_max */
    int32_t k_max;
    float *t;                  /* [B_max] */
    uint8_t *masked;           /* [cap] */
    int32_t *ids;              /* [cap] model input ids */
    int32_t *loss_rows, *loss_targets; /* [cap] */
    float *loss_weights;       /* [cap] */
    int32_t *loss_pos;         /* [cap] position each loss row predicts */
    int32_t *soft_rows, *soft_ids; /* [cap], [cap * k_max] */
    float *soft_pi, *soft_entropy; /* [cap * k_max], [cap] */
    sd_tbatch batch;           /* the batch of the last pass */
} sd_objective_ws;

int32_t sd_objective_ws_init(sd_objective_ws *ws, const sd_tmodel *m, int32_t k_max, sd_error *err);
void sd_objective_ws_free(sd_objective_ws *ws); /* accepts a zeroed struct */

/* Draw t [B] and the mask [B*L] for an MDLM batch. */
void sd_mdlm_sample(sd_rng *rng, const sd_objective_opts *o, int64_t B, int64_t L, float *t,
                    uint8_t *masked);

/* MDLM loss and gradient for a given mask and t (deterministic): zeroes
 * the model's gradients, runs pass 1 + pass 2 when use_sm (k = o->sm_k),
 * else one pass, and accumulates the gradient. x0 [B*L]. *loss gets the
 * loss, *n_masked the masked count (either may be NULL). */
int32_t sd_mdlm_loss_grad(sd_tmodel *m, sd_objective_ws *ws, const sd_objective_opts *o,
                          const int32_t *x0, int64_t B, int64_t L, const uint8_t *masked,
                          const float *t, int use_sm, double *loss, int64_t *n_masked);

/* The same loss without the backward (evaluation); gradients untouched. */
int32_t sd_mdlm_loss(sd_tmodel *m, sd_objective_ws *ws, const sd_objective_opts *o,
                     const int32_t *x0, int64_t B, int64_t L, const uint8_t *masked,
                     const float *t, int use_sm, double *loss, int64_t *n_masked);

/* One soft-mask setting of sd_mdlm_eval_settings: raw SM parameters
 * (r_s, r_a, r_b as in model_train.h) and the top-k of the mixture. */
typedef struct sd_sm_setting {
    float raw[3];
    int32_t k;
} sd_sm_setting;

/* The bound of one masked batch without SM and under each of n_set
 * soft-mask settings, all from one pass 1 (whose predictions are every
 * setting's pass-2 constants): seq_loss[b * (1 + n_set) + c] gets sequence
 * b's bound (1 / L) sum_{masked p} -log p / t_b -- column 0 single pass
 * (pass 1's own loss), column 1 + j the two-pass bound under set[j].
 * Forward only (gradients untouched); the model's raw SM parameters are
 * restored. Every k must be <= ws->k_max. */
int32_t sd_mdlm_eval_settings(sd_tmodel *m, sd_objective_ws *ws, const int32_t *x0, int64_t B, int64_t L,
                              const uint8_t *masked, const float *t, const sd_sm_setting *set, int32_t n_set,
                              double *seq_loss, int64_t *n_masked);

/* Autoregressive next-token loss and gradient (zeroes gradients first). */
int32_t sd_ar_loss_grad(sd_tmodel *m, sd_objective_ws *ws, const int32_t *x0, int64_t B, int64_t L,
                        double *loss);

/* The same without the backward (evaluation); gradients untouched. */
int32_t sd_ar_loss(sd_tmodel *m, sd_objective_ws *ws, const int32_t *x0, int64_t B, int64_t L,
                   double *loss);

/* One objective evaluation with its randomness drawn from rng: the mask
 * and t, and whether SM is used (probability o->sm_prob when o->sm).
 * *used_sm (may be NULL) says whether it was. */
int32_t sd_objective_loss_grad(sd_tmodel *m, sd_objective_ws *ws, const sd_objective_opts *o,
                               sd_rng *rng, const int32_t *x0, int64_t B, int64_t L, double *loss,
                               int *used_sm);

#endif
