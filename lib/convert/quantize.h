/* quantize.h -- GGUF files with their matrices in a block format: the file
 * types by name (the names llama.cpp's quantiser takes), the per-tensor
 * recipes of the mixtures (_S, _M, _L), a threaded row quantiser that also
 * measures the reconstruction error, and the F32/F16/BF16 -> quantised
 * GGUF rewrite behind `smdiff quantize` (docs/FORMATS.md).
 *
 * The recipes are llama.cpp's (llama_tensor_get_type in its quantiser),
 * restated as rules over tensor names and layer numbers:
 *  - 1-D tensors (norms, biases) keep their type;
 *  - output.weight (token_embd.weight when the head is tied) gets Q6_K,
 *    or Q8_0 when its rows are not whole 256-blocks of the file's type
 *    (Q8_0 files keep Q8_0);
 *  - the _S/_M/_L mixtures give attn_v, ffn_down and attn_output more bits
 *    in some layers (quantize.c, tensor_type_of, lists them);
 *  - a type whose block does not divide the row length falls back: Q2_K,
 *    Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, IQ4_XS ->
 *    IQ4_NL, and F16 if even that does not divide it.
 * `pure` skips the mixtures and the output rule: every matrix in the
 * named type, only the fallback applies.
 */
#ifndef SD_CONVERT_QUANTIZE_H
#define SD_CONVERT_QUANTIZE_H

#include <stdint.h>

#include "core/error.h"
#include "core/pool.h"
#include "io/gguf.h"
#include "smdiff/smdiff.h"

/* A file type: what `--type NAME` asks for. */
typedef struct sd_qftype {
    const char *name;   /* "q4_k_m" (lower case; lookups ignore case) */
    uint32_t base;      /* SD_GGML_* type of the matrices without a rule */
    uint32_t file_type; /* llama.cpp's general.file_type (LLAMA_FTYPE_*) */
    int recipe;         /* which mixture (quantize.c) */
} sd_qftype;

/* The file type called name ("q4_k_m", "Q4_K_M", "q4_k" = "q4_k_m"), or
 * NULL. */
const sd_qftype *sd_qftype_find(const char *name);
/* Every name sd_qftype_find accepts, comma-separated, for messages. */
const char *sd_qftype_names(void);

/* What the recipes need to know of a model. */
typedef struct sd_qmodel_info {
    int32_t n_layer; /* blk.N tensors: N < n_layer */
    int32_t n_gqa;   /* query heads per kv head (1 when unknown) */
    int tied;        /* no output.weight: token_embd.weight is also the head */
} sd_qmodel_info;

/* The storage type of one tensor of a file of type f: name (GGUF name),
 * n_dims, cols (ne[0]) and its current type. Returns in_type for tensors
 * the recipes leave alone (1-D). */
uint32_t sd_qftype_tensor_type(const sd_qftype *f, int pure, const char *name, uint32_t n_dims, uint64_t cols,
                               uint32_t in_type, const sd_qmodel_info *info);

/* Sums of squares over converted values, for the reconstruction error. */
typedef struct sd_qerr {
    double sq_err; /* sum of (stored - original)^2 */
    double sq_val; /* sum of original^2 */
} sd_qerr;

/* Row r of a source matrix as f32 into out[cols]. */
typedef void (*sd_qrow_fn)(const void *user, uint64_t r, float *out);

/* dst[rows] rows of cols elements of type (any supported type) from the
 * rows get() gives, on pool's threads (NULL: inline); err_sum (may be
 * NULL) receives the sums of the stored values against the originals.
 * SMDIFF_E_FORMAT naming the row for a value that is not finite or too
 * large for the type's f16 scales, SMDIFF_E_NOMEM, SMDIFF_E_INVAL for a
 * type or row length that does not fit. The bytes do not depend on the
 * number of threads. */
int32_t sd_quantize_rows(uint32_t type, uint64_t rows, uint64_t cols, sd_qrow_fn get, const void *user, void *dst,
                         sd_pool *pool, sd_qerr *err_sum, sd_error *err);

/* The options of a rewrite. */
typedef struct sd_quantize_opts {
    int threads; /* 0: every online CPU */
    int pure;
    void (*progress)(void *user, uint64_t done, uint64_t total); /* bytes written */
    void *progress_user;
} sd_quantize_opts;

/* Rewrite the GGUF file in_path as out_path (atomically) with its tensors
 * in the types of f: the metadata copied, general.file_type and
 * general.quantization_version (2) set. The 2-D tensors to convert must be
 * F32, F16 or BF16 (SMDIFF_E_UNSUPPORTED names an already quantised one);
 * report (may be NULL) gets the per-type summary. SMDIFF_E_IO,
 * SMDIFF_E_FORMAT (the reader's), SMDIFF_E_NOMEM. */
int32_t sd_quantize_gguf(const char *in_path, const char *out_path, const sd_qftype *f, const sd_quantize_opts *opts,
                         smdiff_quant_report *report, sd_error *err);

#endif
