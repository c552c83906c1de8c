/* generate.h -- the denoising loop (DECODING.md).
 *
 * The loop reaches the model only through sd_gen_model, so it can be tested
 * with a synthetic model as well as run on a loaded smdiff_model.
 */
#ifndef SD_DIFFUSION_GENERATE_H
#define SD_DIFFUSION_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include <stdatomic.h>

#include "core/arena.h"
#include "core/error.h"
#include "nn/transformer.h"
#include "sampler.h"

struct smdiff_model;

/* One sequence's part of a forward pass. */
typedef struct sd_gen_fwd {
    const float *embd;    /* [L, n_embd] the canvas's input embeddings */
    int64_t L;
    const int32_t *pos;   /* [n_pos] canvas positions to compute, ascending;
                             NULL: all L (a refresh when cache is set) */
    int64_t n_pos;
    const int32_t *rows;  /* [n_rows] canvas rows whose logits are wanted,
                             ascending, each among the positions computed */
    int64_t n_rows;
    float *cache;         /* the sequence's key/value cache (cache_floats(L)
                             floats), or NULL (then pos is NULL) */
} sd_gen_fwd;

typedef struct sd_gen_model {
    int32_t n_vocab, n_embd, n_ctx;
    int32_t mask_id;
    int32_t eos_id;        /* -1: none (EOS handling off) */
    int32_t shift_logits;  /* 1: row i predicts position i+1 (dream) */
    /* Input embedding of token id into out[n_embd]. */
    void (*embed)(void *ctx, int32_t id, float *out);
    /* One forward pass for n sequences: their logits rows, in order, into
     * logits [sum of n_rows, n_vocab]. abort_fn (may be NULL) is polled
     * between layers; a non-zero answer returns SMDIFF_E_ABORTED. */
    int32_t (*forward)(void *ctx, const sd_gen_fwd *seqs, size_t n, float *logits, int (*abort_fn)(void *),
                       void *abort_ud, sd_error *err);
    /* Floats of a key/value cache for a canvas of L positions; NULL: the
     * model cannot cache (cache options are refused). */
    size_t (*cache_floats)(void *ctx, int64_t L);
    void *ctx;
} sd_gen_model;

/* The transformer core as the loop sees it: weights, the worker pool of
 * their non-BLAS work, and the forward scratch (an arena kept between
 * calls). */
typedef struct sd_gen_model_ctx {
    const sd_weights *w;
    sd_pool *pool;          /* may be NULL */
    atomic_int *pool_busy;  /* a shared pool's flag (one caller at a time; the
                               others run inline); NULL: the pool is ours */
    sd_arena arena;
    size_t arena_bytes;
} sd_gen_model_ctx;
/* The view of a loaded model (its weights, pool and EOS id). */
void sd_gen_model_of(const struct smdiff_model *model, sd_gen_model_ctx *ctx, sd_gen_model *gm);
/* The view of weights with a pool of one's own (benchmarks); eos_id -1:
 * none. */
void sd_gen_model_of_weights(const sd_weights *w, sd_pool *pool, int32_t eos_id, sd_gen_model_ctx *ctx,
                             sd_gen_model *gm);
void sd_gen_model_ctx_free(sd_gen_model_ctx *ctx);

/* Run the sampler's loop on prompt[n_prompt]; out[capacity] receives the
 * generated ids (see smdiff_generate_tokens for the contract), *n_out how
 * many precede the first EOS. Errors are recorded on s->err. The arrays,
 * worker pool and forward scratch live in the sampler's workspace: made on
 * the first run, grown when a run needs more, freed with the sampler. */
int32_t sd_generate(struct smdiff_sampler *s, const sd_gen_model *m, const int32_t *prompt,
                    size_t n_prompt, int32_t *out, size_t capacity, size_t *n_out);

/* The same on a loaded model. */
int32_t sd_generate_model(struct smdiff_sampler *s, const struct smdiff_model *model,
                          const int32_t *prompt, size_t n_prompt, int32_t *out, size_t capacity,
                          size_t *n_out);

/* Fill the masked positions of canvas[n_canvas] in place (infilling: see
 * smdiff_generate_canvas for the contract); the canvas is unchanged on
 * failure. */
int32_t sd_generate_canvas(struct smdiff_sampler *s, const sd_gen_model *m, int32_t *canvas,
                           size_t n_canvas);

/* The same on a loaded model. */
int32_t sd_generate_canvas_model(struct smdiff_sampler *s, const struct smdiff_model *model,
                                 int32_t *canvas, size_t n_canvas);

/* Batches (api_batch.c): runs on several samplers advanced together, one
 * forward pass per step for all of them. A sampler runs one sequence of a
 * batch at a time and no other run meanwhile (SMDIFF_E_STATE).
 *
 * Open a run: checked and planned as sd_generate (ids a prompt, capacity
 * the output's) or sd_generate_canvas (is_canvas) would; *has_step is 0
 * when there is nothing to run. */
int32_t sd_gen_batch_open(struct smdiff_sampler *s, const sd_gen_model *m, const int32_t *ids, int is_canvas,
                          size_t n_ids, size_t capacity, int *has_step);
/* One step of each of the n open runs with a step left: one forward pass
 * over the rows all of them need. fwd is scratch for n requests; the
 * logits buffer (*logits, *logits_cap floats) is grown as needed.
 * status[i] receives 1 (more steps), 0 (finished) or the error that
 * stopped run i (recorded on its sampler). A returned error (the shared
 * forward pass failed, in err) advances no run; status[i] < 0 marks the
 * runs that failed before it. */
int32_t sd_gen_batch_step(struct smdiff_sampler *const *s, size_t n, const sd_gen_model *m, sd_gen_fwd *fwd,
                          float **logits, size_t *logits_cap, int32_t *status, sd_error *err);
/* A finished run's result: for a prompt, out[capacity >= gen_length] the
 * generated ids and *n_out how many precede the first EOS; for a canvas,
 * out[capacity >= its length] the canvas and *n_out its length. */
int32_t sd_gen_result(struct smdiff_sampler *s, int32_t *out, size_t capacity, size_t *n_out);
/* The sampler leaves its batch (it may run again). */
void sd_gen_batch_close(struct smdiff_sampler *s);

/* Free a sampler's workspace (NULL is fine). */
void sd_gen_workspace_free(struct sd_gen_workspace *ws);

#endif
