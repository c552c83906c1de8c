/* likelihood.h -- how well a model predicts text: the MDLM validation bound
 * on fixed, seeded noise, and an autoregressive reference model's scores
 * and features for sample quality (docs/TRAINING.md, "Evaluation").
 *
 * ELBO (validation perplexity). For windows x [n_win, L] and D draws per
 * window, draw j of window i uses
 *     u_i ~ U(0,1) from the Philox stream (seed, first + i + 1),
 *     t_ij = eps + (1 - eps) (u_i + j) / D           (stratified in t)
 *     m_ijp ~ Bernoulli(t_ij) from the same stream,   p = 0..L-1
 * and the bound of one draw is the training loss
 *     b_ij = (1/L) sum_{p: m_ijp} -log p_theta(x_ip | x masked by m_ij) / t_ij
 * Per window, the mean of b_ij over its D draws, in nats per token; exp
 * of the mean over windows is the perplexity bound. The noise depends on
 * (seed, i, j, L) only, never on the model or the batching, so two models
 * are compared on identical t and masks. Besides the plain single-pass
 * bound, each soft-mask setting gives the two-pass bound an SM model is
 * trained on (pass 1 on the masked input; pass 2 with the soft-masked
 * embeddings of the setting's omega and k), all from the same pass 1: the
 * differences are paired, window by window (the go/no-go of SM).
 *
 * AR scores. For sequences s [n, L] under a causal model, the mean
 * next-token negative log-likelihood of positions 1..L-1 given their
 * prefix, per sequence, and as features the final hidden state (after the
 * output RMSNorm) of the last position, the summary MAUVE quantises. */
#ifndef SD_EVAL_LIKELIHOOD_H
#define SD_EVAL_LIKELIHOOD_H

#include <stdint.h>

#include "core/error.h"

struct smdiff_model;

typedef struct sd_elbo_opts {
    int64_t L;       /* window length (<= the model's context) */
    int32_t draws;   /* D >= 1 noise draws per window */
    uint64_t seed;
    double eps;      /* lower end of t, as in training (1e-3) */
    int threads;     /* 0 = all CPUs */
    int64_t batch;   /* sequences per forward (0 = 8) */
    int64_t first;   /* number of the first window (its stream is first + 1) */
} sd_elbo_opts;

/* One two-pass setting: the model's own soft-mask (raw parameters as
 * loaded, k from smdiff.softmask.k, else 3), or the given omega and k. */
typedef struct sd_elbo_sm {
    int own;          /* 1: the model's own; the fields below are ignored */
    double omega[3];  /* omega_s in (0,1), omega_a > 0, omega_b < 0 */
    int32_t k;        /* 1..64 */
} sd_elbo_sm;

/* Bounds of a loaded dream/llada model on windows [n_win, L] (row-major
 * ids); its weights are converted to the training layer's F32 model once
 * per call. window_nll[i * (1 + n_sm) + c] gets window i's bound in nats
 * per token: c = 0 single pass, c = 1 + j two-pass under sm[j].
 * *n_masked (may be NULL) the masked positions scored. Returns
 * SMDIFF_E_INVAL for bad options, SMDIFF_E_RANGE for ids outside the
 * vocabulary, SMDIFF_E_NOMEM. */
int32_t sd_eval_elbo(const struct smdiff_model *model, const int32_t *windows, int64_t n_win,
                     const sd_elbo_opts *o, const sd_elbo_sm *sm, int32_t n_sm, double *window_nll,
                     int64_t *n_masked, sd_error *err);

/* Causal-model scores of seqs [n, L]: nll [n] (mean over L-1 predictions,
 * may be NULL) and features [n, d] (may be NULL; *d_out gets d). */
int32_t sd_eval_ar(const struct smdiff_model *model, const int32_t *seqs, int64_t n, int64_t L,
                   int threads, double *nll, float *features, int64_t *d_out, sd_error *err);

#endif
