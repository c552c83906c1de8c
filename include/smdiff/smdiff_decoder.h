/*
 * smdiff_decoder.h -- plug-in interface for decoder strategies.
 *
 * A decoder strategy decides, at each denoising step, which still-masked
 * positions to commit (and, for remasking strategies, which committed
 * positions to mask again). smdiff's own strategies ("origin",
 * "maskgit_plus", "topk_margin", "entropy", "low_confidence", "random",
 * "threshold") register through exactly this interface.
 *
 * ABI rules: both structs below start with struct_size; the library fills
 * smdiff_step_view.struct_size with the size it was built with and only
 * appends fields in later versions, so a strategy must read a field only
 * when struct_size shows it is present. A strategy sets
 * smdiff_decoder.struct_size = sizeof(smdiff_decoder) and
 * abi_version = SMDIFF_DECODER_ABI_VERSION; a library refuses an
 * abi_version it does not know.
 */
#ifndef SMDIFF_DECODER_H
#define SMDIFF_DECODER_H

#include "smdiff.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SMDIFF_DECODER_ABI_VERSION 1

/* Read-only view of one denoising step, built by the sampler. Arrays are
 * indexed by the i-th still-masked position of the current block, i in
 * [0, n_masked). Valid only during the select call. */
typedef struct smdiff_step_view {
    uint32_t struct_size;      /* sizeof as the library built it */
    int32_t step;              /* 0-based step within the current block */
    int32_t n_steps;           /* steps budgeted for the current block */
    int32_t block;             /* 0-based block index */
    int32_t n_blocks;
    int32_t n_masked;          /* masked positions in the current block */
    int32_t n_masked_total;    /* masked positions in the whole generation */
    int32_t n_transfer;        /* commits the schedule asks for this step
                                  (LLaDA get_num_transfer_tokens, Dream's
                                  int(n_masked*(1-s/t))); a strategy may
                                  follow or ignore it */
    double t;                  /* Dream timestep t = linspace(1, eps, n+1)[step] */
    double s;                  /* next timestep */
    double alg_temp;           /* position-sampling temperature (0 = top-k) */
    double threshold;          /* confidence threshold option */
    const int32_t *position;   /* [n_masked] canvas index of each masked position */
    const int32_t *token;      /* [n_masked] sampled candidate token */
    const float *confidence;   /* [n_masked] probability of the candidate
                                  (after temperature/top-k/top-p; LLaDA-family
                                  built-ins get softmax(logits) at temperature
                                  1, see docs/DECODING.md) */
    const float *top1;         /* [n_masked] largest probability of the
                                  sampling distribution (as Dream's topk_margin) */
    const float *top2;         /* [n_masked] second largest probability */
    const float *entropy;      /* [n_masked] entropy in nats of the sampling
                                  distribution (Dream's entropy strategy) */
    /* Random numbers from the sampler's stream, so runs are reproducible:
     * uniform in [0,1). rng_state is opaque. */
    double (*uniform)(void *rng_state);
    void *rng_state;
} smdiff_step_view;

/* A strategy. Callbacks receive the user_data given at registration. */
typedef struct smdiff_decoder {
    uint32_t struct_size;      /* sizeof(smdiff_decoder) */
    uint32_t abi_version;      /* SMDIFF_DECODER_ABI_VERSION */
    const char *name;          /* unique, [a-z0-9_]{1,63}; copied at registration */
    const char *description;   /* one line, may be NULL; copied */
    /* Choose positions for this step.
     *   commit[]: capacity view->n_masked; write indices i (into the view's
     *             arrays) of positions to commit, each at most once.
     *   *n_commit: number written.
     *   remask[], *n_remask: canvas positions (committed earlier in this
     *             block) to mask again; capacity view->n_masked; leave
     *             *n_remask = 0 if the strategy never remasks.
     * Return SMDIFF_OK or a negative SMDIFF_E_* code to fail the run. On the
     * last step of a block the sampler commits everything still masked
     * whatever the strategy chose. */
    int32_t (*select)(const smdiff_step_view *view, int32_t *commit, int32_t *n_commit,
                      int32_t *remask, int32_t *n_remask, void *user_data);
    /* Called when the strategy is unregistered or the library state is torn
     * down; may be NULL. */
    void (*release)(void *user_data);
} smdiff_decoder;

/* Register a strategy. The struct is copied (name and description too).
 * Returns SMDIFF_E_INVAL for a NULL pointer, a missing select, an invalid
 * name or a struct_size smaller than the version-1 layout;
 * SMDIFF_E_UNSUPPORTED for an unknown abi_version; SMDIFF_E_STATE if the
 * name is taken. Thread-safe (a global registry behind a mutex). */
SMDIFF_API int32_t smdiff_decoder_register(const smdiff_decoder *decoder, void *user_data);

/* Remove a user strategy by name; built-ins cannot be removed
 * (SMDIFF_E_STATE). Samplers that selected it fail their next run with
 * SMDIFF_E_NOT_FOUND. Thread-safe, but must not race a run that uses it. */
SMDIFF_API int32_t smdiff_decoder_unregister(const char *name);

/* Number of registered strategies, and the i-th name (0-based, registration
 * order, built-ins first). Thread-safe. */
SMDIFF_API int32_t smdiff_decoder_count(int32_t *out);
SMDIFF_API int32_t smdiff_decoder_name(int32_t index, const char **name,
                                       const char **description);

#ifdef __cplusplus
}
#endif

#endif /* SMDIFF_DECODER_H */
