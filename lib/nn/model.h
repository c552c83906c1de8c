/* model.h -- the loaded model object (weights, tokenizer, architecture). */
#ifndef SD_NN_MODEL_H
#define SD_NN_MODEL_H

#include <stdatomic.h>

#include "core/error.h"
#include "core/options.h"
#include "nn/transformer.h"
#include "smdiff/smdiff.h"

struct sd_gguf;
struct sd_tokenizer;

struct smdiff_model {
    atomic_int refcount;
    uint64_t serial;           /* unique in the process (result caches key on it, not on the address) */
    int loaded;
    struct sd_tokenizer *tok;  /* NULL until a tokenizer is loaded; owned */
    sd_optval opt[SMDIFF_MODEL_OPT_LAST_ - SMDIFF_MODEL_OPT_FIRST_ + 1];
    sd_error err;

    /* nn: weights and what the forward pass needs (set by sd_model_load). */
    struct sd_gguf *gguf;     /* the mapped file; weights point into it */
    sd_weights w;
    float *owned_f32;         /* 1-D tensors stored in another type, as F32 */
    float *cond_owned;        /* mdlm without time conditioning: w.cond_const */
    sd_pool *pool;            /* worker pool of `threads` threads */
    atomic_int pool_busy;     /* a pool serves one caller: others run inline */
    int threads;
};

extern const sd_option_table sd_model_options;

/* Load a GGUF file of architecture dream, llada or mdlm into an unloaded model:
 * hyperparameters from llama.cpp's metadata keys, weights mapped in place
 * (1-D tensors of a non-F32 type converted), shapes validated, BLAS threads
 * and the worker pool set from SMDIFF_MODEL_THREADS. On failure the model
 * is left unloaded and the message is in m->err. */
int32_t sd_model_load(struct smdiff_model *m, const char *path);

/* Architecture name of a loaded model ("dream", "llada", "mdlm"). */
const char *sd_model_arch_name(const struct smdiff_model *m);

/* Logits for rows of a canvas of input embeddings embd[n_pos, d], with a
 * private arena; the arguments are already validated. Thread-safe. */
int32_t sd_model_forward(const struct smdiff_model *m, const float *embd, int64_t n_pos,
                         const int32_t *rows, int64_t n_rows, float *logits);

/* Release everything the model owns (called when the last reference goes). */
void sd_model_destroy(struct smdiff_model *m);

/* A call that receives a model holds a reference to it for its duration
 * (smdiff.h, "Threads and lifetimes"), so another thread may drop the last
 * reference meanwhile: SD_MODEL_HOLD(m) as the first statement of such a
 * function adds one and drops it when the function returns, however it
 * returns (the cleanup attribute of GCC and Clang). m may be NULL. */
struct smdiff_model *sd_model_hold(const struct smdiff_model *m);
void sd_model_unhold(struct smdiff_model **held);
#define SD_MODEL_HOLD(m) \
    struct smdiff_model *sd_held_model_ __attribute__((cleanup(sd_model_unhold), unused)) = sd_model_hold(m)

#endif
