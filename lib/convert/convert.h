/* convert.h -- Hugging Face checkpoint (config.json + safetensors +
 * tokenizer files) -> GGUF with llama.cpp's metadata keys and tensor names,
 * for the `dream` (DreamModel) and `llada` (LLaDAModelLM) architectures,
 * and for MDLM's DiT (`mdlm`: config.json with model_type "mdlm" or
 * architectures ["MDLM"], tensors named backbone.*; docs/MODELS.md).
 *
 * The output matches what llama.cpp's convert_hf_to_gguf.py writes for the
 * same checkpoint (names, shapes, the LLaDA Q/K row permutation, which
 * tensors stay F32), so one loader handles both; docs/FORMATS.md lists the
 * mapping and the few keys where we differ.
 */
#ifndef SD_CONVERT_CONVERT_H
#define SD_CONVERT_CONVERT_H

#include <stdint.h>

#include "core/error.h"
#include "io/gguf.h"
#include "smdiff/smdiff.h"

/* Called after each tensor is written: bytes written so far and in total. */
typedef void (*sd_convert_progress_fn)(void *user, uint64_t bytes_done, uint64_t bytes_total);

/* The public API's progress callback behind sd_convert_progress_fn: pass
 * sd_convert_progress_adapter with an sd_progress_ctx as its user pointer
 * (smdiff_convert_hf and smdiff_quantize). */
typedef struct sd_progress_ctx {
    smdiff_progress_fn fn;
    void *user_data;
} sd_progress_ctx;

static inline void sd_convert_progress_adapter(void *user, uint64_t done, uint64_t total) {
    const sd_progress_ctx *p = user;
    p->fn(done, total, p->user_data);
}

/* MDLM's timestep features (its TimestepEmbedder's frequency_embedding_size). */
#define SD_CONVERT_MDLM_FREQ 256u

typedef struct sd_convert_opts {
    const char *type_name;      /* file type of the 2-D weights, a name of
                                   convert/quantize.h ("f16", "q8_0", "q4_k_m", ...,
                                   with its recipe); NULL: "f16" */
    const char *tokenizer_pre;  /* tokenizer.ggml.pre; NULL: "qwen2" (dream), "default" (llada) */
    const char *name;           /* general.name; NULL: the directory's base name */
    sd_convert_progress_fn progress;
    void *progress_user;
} sd_convert_opts;

/* Convert hf_dir to a GGUF file at out_path (written atomically).
 * SMDIFF_E_IO for unreadable files, SMDIFF_E_FORMAT for malformed ones
 * (missing/mis-shaped tensors, unknown tensors, bad config values),
 * SMDIFF_E_UNSUPPORTED for an architecture other than Dream/LLaDA/MDLM,
 * SMDIFF_E_INVAL for an unknown type_name. Rows are converted on every
 * online CPU. */
int32_t sd_convert_hf(const char *hf_dir, const char *out_path, const sd_convert_opts *opts, sd_error *err);

/* The tokenizer part alone: load hf_dir's tokenizer files with the text
 * layer's Hugging Face loader (text/tokenizer.h, the one parser of those
 * files) padded to vocab_size, and set tokenizer.ggml.* on w: the tokens
 * (ids missing from the files are "[PAD<id>]" of type UNUSED), token types
 * (1 normal, 3 control = an added token that is special or looks special,
 * <|...|>, 4 user-defined = any other added token, 5 unused), merges,
 * special token ids, add_bos/eos flags, the chat template; pre is written
 * as tokenizer.ggml.pre. force_add_bos >= 0 overrides tokenizer_config's
 * add_bos_token. */
int32_t sd_convert_vocab(const char *hf_dir, uint64_t vocab_size, const char *pre, int force_add_bos,
                         sd_gguf_writer *w, sd_error *err);

/* llama.cpp's LLaDA Q/K permutation as a row map: the GGUF row r of a
 * (n_head * head_dim)-row projection holds the HF row returned here.
 * Within a head, GGUF rows 2i and 2i+1 are HF rows i and i + head_dim/2,
 * turning half-split (NeoX) RoPE pairs into adjacent pairs. */
uint64_t sd_convert_llada_perm_row(uint64_t r, uint64_t head_dim);

#endif
