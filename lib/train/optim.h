/* optim.h -- AdamW with decoupled weight decay, global-norm gradient
 * clipping, a warm-up + constant/cosine learning-rate schedule, a separate
 * learning rate for the soft-masking parameters, and an optional EMA of the
 * weights.
 *
 * The update follows PyTorch's torch.optim.AdamW (so the reference step in
 * tests/ref/train_ref.py is the same algorithm), at step t = 1, 2, ...:
 *     p <- p * (1 - lr * wd)                       (decay group only)
 *     m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2
 *     p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * Groups (sd_ttensor.group): DECAY (matrices, embeddings) gets weight decay;
 * NO_DECAY (norms, biases) does not; SM (the raw soft-masking parameters)
 * uses sm_lr and no decay.
 */
#ifndef SD_TRAIN_OPTIM_H
#define SD_TRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/pool.h"
#include "train/model_train.h"

enum { SD_LR_CONSTANT = 0, SD_LR_COSINE = 1 };

typedef struct sd_adamw_opts {
    double lr;           /* peak learning rate of the backbone */
    double sm_lr;        /* peak learning rate of the SM parameters */
    double beta1, beta2, eps;
    double weight_decay; /* decoupled, DECAY group only */
    double grad_clip;    /* max global L2 norm of all gradients; 0 = no clipping */
    int64_t warmup_steps;/* linear warm-up from lr/warmup to lr over this many steps */
    int64_t total_steps; /* cosine: steps until the floor is reached */
    int schedule;        /* SD_LR_CONSTANT or SD_LR_COSINE */
    double min_lr_frac;  /* cosine floor as a fraction of the peak */
    double ema_decay;    /* 0: no EMA; else ema <- d ema + (1 - d) p after each step */
} sd_adamw_opts;

/* Sensible defaults: lr 3e-4, sm_lr 1e-2 (the paper's), betas (0.9, 0.999),
 * eps 1e-8, wd 0.01, clip 1.0, no warm-up, constant, no EMA. */
void sd_adamw_defaults(sd_adamw_opts *o);

typedef struct sd_adamw {
    sd_adamw_opts o;
    size_t n;
    float *m, *v; /* [n] moments */
    float *ema;   /* [n] or NULL */
    int64_t step; /* steps taken */
    sd_pool *pool;/* borrowed, may be NULL: threads for the update loop */
} sd_adamw;

/* Allocate state for n parameters (EMA starts as a copy of params).
 * Returns SMDIFF_OK, SMDIFF_E_INVAL (bad option), SMDIFF_E_NOMEM. */
int32_t sd_adamw_init(sd_adamw *opt, const sd_adamw_opts *o, const float *params, size_t n,
                      sd_error *err);
void sd_adamw_free(sd_adamw *opt); /* accepts a zeroed struct */

/* Learning rate at 0-based step s for a peak value. */
double sd_lr_at(const sd_adamw_opts *o, int64_t s, double peak);

/* L2 norm of g[n] (accumulated in double). */
double sd_global_norm(const float *g, size_t n);

/* One step: clip grads in place to the global norm (if set), then update
 * params tensor by tensor. *grad_norm (may be NULL) gets the norm before
 * clipping. A non-finite norm returns SMDIFF_E_NUMERIC and changes
 * nothing, so the caller keeps its last good state. */
int32_t sd_adamw_step(sd_adamw *opt, float *params, float *grads, const sd_ttensor *tensors,
                      int32_t n_tensors, double *grad_norm, sd_error *err);

#endif
