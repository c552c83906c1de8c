/*
 * smdiff_decoder.h -- plug-in interface for decoder strategies.
 *
 * A decoder strategy decides, at each denoising step, which still-masked
 * positions to commit (and, for remasking strategies, which committed
 * positions to mask again). smdiff's own strategies ("origin",
 * "maskgit_plus", "topk_margin", "entropy", "low_confidence", "random",
 * "threshold", "factor", "remdm_cap", "remdm_loop", "ddpm_cache") register through exactly this
 * interface, and a user
 * strategy that declares the same behaviour as a built-in (below) gets
 * exactly the same step views and so the same tokens: the denoising loop
 * never looks at a strategy's name.
 *
 * A strategy declares, in its smdiff_decoder struct:
 *   schedule    how many positions the sampler asks for at each step and
 *               how many steps a block runs (SMDIFF_SCHEDULE_*);
 *   confidence  what view->confidence holds (SMDIFF_CONFIDENCE_*);
 *   needs       which per-position fields of the view it reads
 *               (SMDIFF_NEED_*); the others are NULL in its views, and the
 *               entropy, the one that costs extra, is computed only when
 *               declared;
 *   scratch_per_position  bytes of scratch memory it wants per masked
 *               position (view->scratch), so it never allocates per step.
 * A zero in every one of these fields is the behaviour of version 1 of this
 * interface (Dream's timestep schedule, the sampling distribution's
 * confidence, every field of the view, no scratch), so a strategy that sets
 * none of them behaves as before.
 *
 * A strategy that re-masks committed positions (ReMDM) also declares
 *   remask      1: the view lists the block's committed positions (the
 *               candidates for re-masking), the block runs its whole step
 *               budget even when nothing in it is masked, and steps may
 *               exceed the number of positions to fill.
 * and how a block ends
 *   final       SMDIFF_FINAL_COMMIT_ALL (default): the block's last step
 *               commits every position still masked with its candidate;
 *               SMDIFF_FINAL_ARGMAX: the last step commits only what the
 *               strategy chose, then one more forward pass runs (no
 *               select call; the step callback sees it as the block's last
 *               step) and every position still masked takes the most
 *               probable token of that prediction (MDLM's noise removal).
 *
 * ABI rules: both structs below start with struct_size; the library fills
 * smdiff_step_view.struct_size with the size it was built with and only
 * appends fields in later versions, so a strategy must read a field only
 * when struct_size shows it is present. A strategy sets
 * smdiff_decoder.struct_size = sizeof(smdiff_decoder) and
 * abi_version = SMDIFF_DECODER_ABI_VERSION; the library also accepts
 * abi_version 1 (the struct up to `release`, with the defaults above) and
 * refuses any other. Version 2 (smdiff 0.2) made the view's counts size_t:
 * strategies compiled against version 1 must be recompiled. Fields appended
 * to a version-2 smdiff_decoder (remask, final) are read only when its struct_size
 * covers them (absent: 0); a struct_size larger than the library's struct is
 * accepted when the bytes the library does not know are all zero.
 */
#ifndef SMDIFF_DECODER_H
#define SMDIFF_DECODER_H

#include <stddef.h>

#include "smdiff.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SMDIFF_DECODER_ABI_VERSION 2

/* smdiff_decoder.schedule: view->n_transfer (the commits the schedule asks
 * for; a strategy may follow or ignore it) and the steps of a block. */
#define SMDIFF_SCHEDULE_TIMESTEP   0 /* Dream (default): int(n_masked * (1 - s/t)) in float32,
                                        all that remain at the block's last step;
                                        steps / n_blocks steps per block */
#define SMDIFF_SCHEDULE_EVEN       1 /* LLaDA's get_num_transfer_tokens: the block's
                                        block_length masks split evenly over its
                                        steps / n_blocks steps, the remainder one each to
                                        the first steps */
#define SMDIFF_SCHEDULE_UNTIL_DONE 2 /* Fast-dLLM: n_masked; the block runs until no mask
                                        is left, at most block_length steps
                                        (SMDIFF_SAMPLER_STEPS is not used) */

/* smdiff_decoder.confidence: what view->confidence[i] holds. */
#define SMDIFF_CONFIDENCE_SAMPLED  0 /* default: q[token], q the sampling distribution
                                        after temperature, top-p and top-k (Dream's
                                        sample_tokens) */
#define SMDIFF_CONFIDENCE_RAW      1 /* softmax(logits)[token] at temperature 1, no
                                        filter (LLaDA's x0_p) */

/* smdiff_decoder.final: how a block's last positions are decided. */
#define SMDIFF_FINAL_COMMIT_ALL 0 /* default: the last step commits them all */
#define SMDIFF_FINAL_ARGMAX     1 /* one more forward pass; its argmax fills them */

/* smdiff_decoder.needs: bits naming the per-position fields of the view the
 * strategy reads; fields not named are NULL. 0 means SMDIFF_NEED_ALL. */
#define SMDIFF_NEED_POSITION   0x01u /* position[] */
#define SMDIFF_NEED_TOKEN      0x02u /* token[] */
#define SMDIFF_NEED_CONFIDENCE 0x04u /* confidence[] */
#define SMDIFF_NEED_TOP2       0x08u /* top1[] and top2[] */
#define SMDIFF_NEED_ENTROPY    0x10u /* entropy[]: costs a multiply-add per logit */
#define SMDIFF_NEED_RANDOM     0x20u /* uniform and rng_state */
#define SMDIFF_NEED_ALL        0x3fu

/* Largest scratch_per_position the library accepts. */
#define SMDIFF_DECODER_MAX_SCRATCH 4096

/* Read-only view of one denoising step, built by the sampler. Arrays are
 * indexed by the i-th still-masked position of the current block, i in
 * [0, n_masked), in canvas order. Valid only during the select call. */
typedef struct smdiff_step_view {
    uint32_t struct_size;      /* sizeof as the library built it */
    size_t step;               /* 0-based step within the current block */
    size_t n_steps;            /* steps budgeted for the current block */
    size_t block;              /* 0-based block index */
    size_t n_blocks;
    size_t n_masked;           /* masked positions in the current block */
    size_t n_masked_total;     /* masked positions in the whole generation */
    size_t n_transfer;         /* commits the declared schedule asks for this
                                  step; a strategy may follow or ignore it */
    double t;                  /* Dream timestep t = linspace(1, eps, n_steps+1)[step] */
    double s;                  /* next timestep */
    double alg_temp;           /* position-sampling temperature (0 = top-k) */
    double threshold;          /* confidence threshold option */
    const int32_t *position;   /* [n_masked] canvas index of each masked position */
    const int32_t *token;      /* [n_masked] sampled candidate token */
    const float *confidence;   /* [n_masked] the declared confidence of the
                                  candidate (SMDIFF_CONFIDENCE_*) */
    const float *top1;         /* [n_masked] largest probability of the
                                  sampling distribution q (Dream's topk_margin) */
    const float *top2;         /* [n_masked] second largest probability of q */
    const float *entropy;      /* [n_masked] entropy of q in nats (Dream's
                                  entropy strategy) */
    /* Random numbers from the sampler's stream, so runs are reproducible:
     * uniform in [0,1). rng_state is opaque. */
    double (*uniform)(void *rng_state);
    void *rng_state;
    /* n_masked * scratch_per_position bytes, 64-byte aligned, for the
     * strategy's own use during this call (NULL when it declared none). */
    void *scratch;
    /* ---- appended in smdiff 0.2: re-masking (check struct_size first).
     * The committed arrays are filled only for a strategy that declares
     * remask = 1 (else n_committed is 0 and they are NULL): the positions
     * of the current block committed at earlier steps and still holding
     * their token -- never prompt or context positions -- in canvas order. */
    size_t n_committed;
    const int32_t *committed_position; /* [n_committed] canvas index */
    const int32_t *committed_token;    /* [n_committed] the token it holds */
    const float *committed_confidence; /* [n_committed] its declared confidence
                                          when it was committed; NULL unless
                                          SMDIFF_NEED_CONFIDENCE is declared */
    size_t remask_capacity;            /* room in select's remask[] (the block
                                          length: >= n_masked + n_committed) */
    /* ReMDM's parameters, the sampler's SMDIFF_SAMPLER_REMDM_* options. */
    double remdm_eta;                  /* eta: remasking probability cap */
    double remdm_t_on, remdm_t_off;    /* loop schedule: the loop phase's times */
    double remdm_alpha_on;             /* loop schedule: alpha held in the loop */
    /* ---- appended in smdiff 0.2 (issue 18; check struct_size first) */
    double factor;                     /* Fast-dLLM's factor rule: the sampler's
                                          SMDIFF_SAMPLER_FACTOR */
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
     *   remask[], *n_remask: canvas positions (committed at an earlier
     *             step of this block, not prompt or context) to mask
     *             again; capacity view->remask_capacity (at least
     *             view->n_masked); leave *n_remask = 0 if the strategy
     *             never remasks. A re-masked position's soft-mask input at
     *             the next step is the token it held (a one-hot prediction).
     * Return SMDIFF_OK or a negative SMDIFF_E_* code to fail the run. On the
     * last step of a block the sampler re-masks nothing and, unless the
     * strategy declares SMDIFF_FINAL_ARGMAX, commits everything still
     * masked whatever the strategy chose. */
    int32_t (*select)(const smdiff_step_view *view, int32_t *commit, int32_t *n_commit,
                      int32_t *remask, int32_t *n_remask, void *user_data);
    /* Called when the strategy is unregistered or the library state is torn
     * down; may be NULL. */
    void (*release)(void *user_data);
    /* ---- version 2: the declaration (see the top of this file) */
    int32_t schedule;          /* SMDIFF_SCHEDULE_*, default TIMESTEP */
    int32_t confidence;        /* SMDIFF_CONFIDENCE_*, default SAMPLED */
    uint32_t needs;            /* SMDIFF_NEED_* bits, 0 = all */
    size_t scratch_per_position; /* bytes, at most SMDIFF_DECODER_MAX_SCRATCH */
    /* ---- appended in smdiff 0.2 (read when struct_size covers it) */
    int32_t remask;            /* 0 (default) or 1: re-masks committed positions
                                  (see the top of this file) */
    int32_t final;             /* SMDIFF_FINAL_* (default COMMIT_ALL; appended
                                  in smdiff 0.2, issue 20) */
} smdiff_decoder;

/* Register a strategy. The struct is copied (name and description too).
 * Returns SMDIFF_E_INVAL for a NULL pointer, a missing select, an invalid
 * name, a struct_size smaller than its version's layout, or a declaration
 * field out of range (an unknown schedule, confidence or needs bit, too
 * much scratch, a remask other than 0 or 1, an unknown final);
 * SMDIFF_E_UNSUPPORTED for an
 * abi_version other than 1 or 2, or a struct larger than the library's
 * with non-zero bytes it does not know;
 * SMDIFF_E_STATE if the name is taken. Thread-safe (a global registry
 * behind a mutex). */
SMDIFF_API int32_t smdiff_decoder_register(const smdiff_decoder *decoder, void *user_data);

/* Remove a user strategy by name; built-ins cannot be removed
 * (SMDIFF_E_STATE). Samplers that selected it fail their next run with
 * SMDIFF_E_NOT_FOUND. Thread-safe, but must not race a run that uses it. */
SMDIFF_API int32_t smdiff_decoder_unregister(const char *name);

/* Number of registered strategies, and the i-th name (0-based, registration
 * order, built-ins first). Thread-safe. */
SMDIFF_API int32_t smdiff_decoder_count(size_t *out);
SMDIFF_API int32_t smdiff_decoder_name(size_t index, const char **name,
                                       const char **description);

#ifdef __cplusplus
}
#endif

#endif /* SMDIFF_DECODER_H */
