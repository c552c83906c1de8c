/* checkpoint.h -- a trainable model to and from GGUF.
 *
 * The file is what `smdiff generate` loads: llama.cpp's architecture keys
 * ({arch}.block_count, .embedding_length, ...), diffusion.shift_logits, the
 * special token ids, the tokenizer (tokenizer.* keys copied from a source
 * GGUF), llama.cpp's tensor names, and the learned soft-masking parameters
 * in our namespace: smdiff.softmask.mode/k/scale/steepness/centre (what the
 * decoder reads) plus smdiff.softmask.raw, the three unconstrained values
 * as trained, so a reload resumes them bit for bit.
 *
 * RoPE: the inference path treats every llada file as llama.cpp writes it,
 * with Q/K rows permuted for adjacent-pair RoPE. A llada model trained with
 * NEOX pairing (rope_permuted = 0) is therefore written with its Q/K rows
 * permuted the way llama.cpp's converter does (row 2i <- i, 2i+1 <- i+hd/2
 * within each head), which gives identical outputs. dream is NEOX as is.
 */
#ifndef SD_TRAIN_CHECKPOINT_H
#define SD_TRAIN_CHECKPOINT_H

#include <stdint.h>

#include "core/error.h"
#include "train/model_train.h"

struct sd_gguf;

typedef struct sd_ckpt_opts {
    const char *name;                     /* general.name (NULL: "smdiff-trained") */
    uint32_t matrix_type;                 /* SD_GGML_F32 (default 0), F16, BF16 or Q8_0 for 2-D tensors */
    int32_t sm_k;                         /* smdiff.softmask.k (<= 0: not written) */
    const struct sd_gguf *tokenizer_from; /* copy its tokenizer.* keys (NULL: none) */
} sd_ckpt_opts;

/* Write m as a GGUF file at path, atomically (io's writer: temporary file,
 * fsync, rename). opts may be NULL. Norms and biases are always F32.
 * Returns SMDIFF_OK, SMDIFF_E_INVAL (bad type, Q8_0 with rows not a
 * multiple of 32), SMDIFF_E_IO, SMDIFF_E_NOMEM. */
int32_t sd_tmodel_save_gguf(const sd_tmodel *m, const char *path, const sd_ckpt_opts *opts,
                            sd_error *err);

/* Create a trainable model from a dream/llada GGUF (hyperparameters as the
 * inference loader reads them; every tensor converted to F32 master
 * weights; a tied head (no output.weight) becomes an untied copy; SM raw
 * values from smdiff.softmask.raw, else from scale/steepness/centre, else
 * the reference initial values). Activations for B_max x L_max, R_max.
 * Returns SMDIFF_OK, SMDIFF_E_IO, SMDIFF_E_FORMAT, SMDIFF_E_NOMEM. */
int32_t sd_tmodel_load_gguf(const char *path, int64_t B_max, int64_t L_max, int64_t R_max,
                            sd_tmodel **out, sd_error *err);

/* The same from a model already loaded for inference (its weights are
 * copied and converted; the model is not changed). */
struct smdiff_model;
int32_t sd_tmodel_from_model(const struct smdiff_model *model, int64_t B_max, int64_t L_max,
                             int64_t R_max, sd_tmodel **out, sd_error *err);

#endif
