/* generate.h -- the denoising loop (DECODING.md).
 *
 * The loop reaches the model only through sd_gen_model, so it can be tested
 * with a synthetic model as well as run on a loaded smdiff_model.
 */
#ifndef SD_DIFFUSION_GENERATE_H
#define SD_DIFFUSION_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "sampler.h"

struct smdiff_model;

typedef struct sd_gen_model {
    int32_t n_vocab, n_embd, n_ctx;
    int32_t mask_id;
    int32_t eos_id;        /* -1: none (EOS handling off) */
    int32_t shift_logits;  /* 1: row i predicts position i+1 (dream) */
    /* Input embedding of token id into out[n_embd]. */
    void (*embed)(void *ctx, int32_t id, float *out);
    /* Logits [n_rows, n_vocab] of canvas rows for input embeddings
     * embd [L, n_embd]. abort_fn (may be NULL) is polled between layers;
     * a non-zero answer returns SMDIFF_E_ABORTED. */
    int32_t (*forward)(void *ctx, const float *embd, int64_t L, const int32_t *rows,
                       int64_t n_rows, float *logits, int (*abort_fn)(void *), void *abort_ud,
                       sd_error *err);
    void *ctx;
} sd_gen_model;

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

/* Free a sampler's workspace (NULL is fine). */
void sd_gen_workspace_free(struct sd_gen_workspace *ws);

#endif
