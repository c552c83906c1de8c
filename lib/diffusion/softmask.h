/* softmask.h -- the soft-masking rule (docs/METHOD.md section 1).
 *
 * For a still-masked position with previous prediction p (softmax of raw
 * logits, temperature 1):
 *     H      = -sum_v p_v log p_v                    (nats, full vocabulary)
 *     lambda = omega_s * sigmoid(omega_a * (-H - omega_b))        mode entropy
 *     lambda = constant                                           mode constant
 *     e      = (1 - lambda) * E[MASK] + lambda * sum_{i in topk(p)} pi_i E[v_i]
 *     pi_i   = p_i / sum_{j in topk(p)} p_j
 * lambda is 0 at step 0 (no previous prediction) and outside the active
 * window [window_start, window_end) of the step budget, and falls linearly
 * to 0 across the window when fade is on.
 *
 * The constrained parameters come from unconstrained raw values when
 * training: omega_s = sigmoid(r_s), omega_a = softplus(r_a),
 * omega_b = -softplus(r_b).
 */
#ifndef SD_DIFFUSION_SOFTMASK_H
#define SD_DIFFUSION_SOFTMASK_H

#include <stdint.h>

#include "core/error.h"
#include "core/options.h"

struct smdiff_softmask {
    sd_optval opt[SMDIFF_SM_OPT_LAST_ - SMDIFF_SM_OPT_FIRST_ + 1];
    sd_error err;
};

extern const sd_option_table sd_softmask_options;

/* The schedule a loaded model stores (smdiff.softmask.* metadata, see
 * docs/API.md), the reference defaults for what it does not store.
 * SMDIFF_E_FORMAT naming the key for a value of the wrong type or out of
 * bounds. */
struct smdiff_model;
int32_t sd_softmask_from_model(const struct smdiff_model *m, struct smdiff_softmask *sm, sd_error *err);

/* Entropy (nats) of probs[n] as given; zero entries contribute nothing. */
double sd_entropy(const float *probs, int64_t n);

/* The window/fade factor in [0,1] at fraction f of a step budget. */
double sd_softmask_window(const struct smdiff_softmask *sm, double f);

/* The window/fade factor in [0,1] for step of n_steps (0 at step 0, which
 * has no previous prediction). */
double sd_softmask_gate(const struct smdiff_softmask *sm, int32_t step, int32_t n_steps);

/* lambda from an entropy, before the gate. */
double sd_softmask_lambda_from_entropy(const struct smdiff_softmask *sm, double entropy);

/* Constraint maps between raw (trainable) and constrained parameters. */
double sd_sigmoid(double x);
double sd_softplus(double x);
double sd_softplus_inv(double y); /* y > 0 */
double sd_logit(double y);        /* y in (0,1) */

/* Mix one soft-masked input embedding (shape [d]):
 *   out = (1 - lambda) * e_mask + lambda * sum_i w_i * E[ids_i]
 * with w = probs renormalised over the k given candidates.
 *   embd: [vocab, d] embedding table, e_mask: [d] */
void sd_softmask_mix(const float *embd, int64_t d, const float *e_mask, const int32_t *ids,
                     const float *probs, int32_t k, float lambda, float *out);

#endif
