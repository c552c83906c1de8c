/* trainer.h -- the training loop's state: model, AdamW, objective, data
 * windows and the random stream, with exact save/resume.
 *
 * A step draws B windows of L tokens from the training tokens (uniform
 * start positions from the Philox stream), evaluates the objective (MDLM,
 * with SM two-pass on a fraction of batches, or AR) and takes one AdamW
 * step. Everything random comes from one generator seeded by opts.seed, so
 * a run is a function of (seed, data, options, BLAS thread count).
 *
 * The state file (sd_trainer_save_state) holds the exact F32 master
 * parameters, both Adam moments, the step, and the generator's full state;
 * loading it into a trainer of the same shape continues the run so that
 * the loss curve is identical to an uninterrupted one. The model file for
 * inference is written separately (checkpoint.h).
 */
#ifndef SD_TRAIN_TRAINER_H
#define SD_TRAIN_TRAINER_H

#include <stdint.h>

#include "core/error.h"
#include "core/pool.h"
#include "core/rng.h"
#include "train/model_train.h"
#include "train/objective.h"
#include "train/optim.h"

struct sd_gguf;
struct sd_gguf_writer;

typedef struct sd_trainer_opts {
    int64_t B, L;          /* batch: B windows of L tokens */
    uint64_t seed;
    sd_objective_opts obj;
    sd_adamw_opts adam;
} sd_trainer_opts;

typedef struct sd_trainer {
    sd_trainer_opts o;
    sd_tmodel *m;          /* owned */
    sd_adamw opt;
    sd_objective_ws ws;
    sd_rng rng;
    sd_pool *pool;         /* borrowed, may be NULL */
    const int32_t *data;   /* borrowed training tokens */
    int64_t n_data;
    int32_t *batch;        /* [B*L] */
    int64_t step;          /* steps taken */
    /* compute accounting (docs/TRAINING.md, "Iso-compute"): the matrix FLOPs
     * of the passes the steps ran (an SM step: pass 1 forward, pass 2
     * forward and backward), kept in the state file, and those of the
     * nominal plain step -- forward and backward of a batch with the
     * expected masked rows B L (1 + eps) / 2 (MDLM) or B (L - 1) (AR). */
    double flops, plain_flops;
    int last_sm;           /* the last step used the SM two-pass */
    float last_grad_sm[3]; /* the raw SM parameters' gradient of the last step, clipped as AdamW saw it */
    sd_error err;
} sd_trainer;

/* Take ownership of m (freed by sd_trainer_free, also on failure) and set
 * up the optimizer and objective for opts. Returns SMDIFF_OK,
 * SMDIFF_E_INVAL (batch larger than the model's activations, bad options),
 * SMDIFF_E_NOMEM. */
int32_t sd_trainer_create(sd_tmodel *m, const sd_trainer_opts *opts, sd_pool *pool,
                          sd_trainer **out, sd_error *err);
void sd_trainer_free(sd_trainer *t); /* accepts NULL */

/* Borrow the training tokens (ids < n_vocab). SMDIFF_E_INVAL if there are
 * fewer than L tokens ("corpus smaller than one sequence") or an id is out
 * of range. */
int32_t sd_trainer_set_data(sd_trainer *t, const int32_t *tokens, int64_t n);

/* One step. *loss and *grad_norm may be NULL. SMDIFF_E_NUMERIC when the
 * loss or the gradient is not finite: the parameters and the optimizer are
 * left as they were before the step, so the last good state can be saved. */
int32_t sd_trainer_step(sd_trainer *t, double *loss, double *grad_norm);

/* Mean MDLM (or AR) loss over n_batches fixed batches of tokens, without
 * SM and without touching the training stream: windows, t and masks come
 * from the stream (seed, SD_STREAM_TRAIN_EVAL), so evaluations are comparable
 * across steps. */
int32_t sd_trainer_eval(sd_trainer *t, const int32_t *tokens, int64_t n, int32_t n_batches,
                        double *loss);

/* Exact state to/from a GGUF file (atomic write, closed by the writer's
 * checksum), compute accounting included (a state written before it was
 * kept resumes with flops = steps x plain_flops, exact for runs without
 * SM). Loading checks that the parameter layout, batch shape and objective
 * match: SMDIFF_E_FORMAT ("shape mismatch on resume") otherwise;
 * SMDIFF_E_IO if unreadable; SMDIFF_E_FORMAT for a file without a
 * checksum or whose checksum does not match (io/gguf.h). */
int32_t sd_trainer_save_state(sd_trainer *t, const char *path);
int32_t sd_trainer_load_state(sd_trainer *t, const char *path);
/* The same in parts: the state as a writer the caller may add keys to
 * (then writes and frees it), and loading from an opened file (name is for
 * messages; the checksum is the caller's business). */
int32_t sd_trainer_state_writer(sd_trainer *t, struct sd_gguf_writer **out);
int32_t sd_trainer_load_state_from(sd_trainer *t, const struct sd_gguf *g, const char *name);
/* What sd_trainer_load_state_from checks before it changes anything. */
int32_t sd_trainer_check_state(sd_trainer *t, const struct sd_gguf *g, const char *name);

#endif
