/* numfmt.h -- tensor number formats: one type enum for every layer, with
 * ggml's type numbers (the numbers GGUF files store), one table of names,
 * block sizes and bytes per block, and the conversions between the
 * formats and f32.
 *
 * A type's elements are stored in blocks: `block` elements take `bytes`
 * bytes (1 and 4 for F32; 32 and 34 for Q8_0: an f16 scale and 32 int8).
 * A row of n elements of a type is n / block blocks, so n must be a
 * multiple of the block size. Numbers missing from the enum (4, 5, 31..33,
 * 36..38) were used by ggml once and removed; they are invalid here as they
 * are in ggml.
 *
 * Layer rule: io/ parses and writes files, nn/ and train/ compute, and all
 * of them name element types with SD_GGML_* from this header.
 */
#ifndef SD_CORE_NUMFMT_H
#define SD_CORE_NUMFMT_H

#include <stddef.h>
#include <stdint.h>

/* ggml element types (ggml.h's enum ggml_type; GGUF tensor infos store
 * these numbers). */
typedef enum sd_ggml_type {
    SD_GGML_F32 = 0,
    SD_GGML_F16 = 1,
    SD_GGML_Q4_0 = 2,
    SD_GGML_Q4_1 = 3,
    /* 4, 5: Q4_2, Q4_3 (removed from ggml) */
    SD_GGML_Q5_0 = 6,
    SD_GGML_Q5_1 = 7,
    SD_GGML_Q8_0 = 8,
    SD_GGML_Q8_1 = 9,
    SD_GGML_Q2_K = 10,
    SD_GGML_Q3_K = 11,
    SD_GGML_Q4_K = 12,
    SD_GGML_Q5_K = 13,
    SD_GGML_Q6_K = 14,
    SD_GGML_Q8_K = 15,
    SD_GGML_IQ2_XXS = 16,
    SD_GGML_IQ2_XS = 17,
    SD_GGML_IQ3_XXS = 18,
    SD_GGML_IQ1_S = 19,
    SD_GGML_IQ4_NL = 20,
    SD_GGML_IQ3_S = 21,
    SD_GGML_IQ2_S = 22,
    SD_GGML_IQ4_XS = 23,
    SD_GGML_I8 = 24,
    SD_GGML_I16 = 25,
    SD_GGML_I32 = 26,
    SD_GGML_I64 = 27,
    SD_GGML_F64 = 28,
    SD_GGML_IQ1_M = 29,
    SD_GGML_BF16 = 30,
    /* 31..33: Q4_0_4_4, Q4_0_4_8, Q4_0_8_8 (removed; repacked at load time now) */
    SD_GGML_TQ1_0 = 34,
    SD_GGML_TQ2_0 = 35,
    /* 36..38: IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8 (removed) */
    SD_GGML_MXFP4 = 39,
    SD_GGML_NVFP4 = 40,
    SD_GGML_TYPE_COUNT = 41 /* one past the largest number known here */
} sd_ggml_type;

/* Elements per block (ggml-common.h's QK* constants). */
#define SD_QK4_0 32
#define SD_QK4_1 32
#define SD_QK5_0 32
#define SD_QK5_1 32
#define SD_QK8_0 32
#define SD_QK8_1 32
#define SD_QK_K 256 /* the k-quants' (and IQ*, TQ*) super-block */
#define SD_QK4_NL 32
#define SD_QK_MXFP4 32
#define SD_QK_NVFP4 64

/* One row of the type table. */
typedef struct sd_ggml_type_info {
    const char *name;   /* ggml's name: "F32", "Q4_K", ... */
    uint32_t block;     /* elements per block */
    uint32_t bytes;     /* bytes per block */
    uint32_t supported; /* 1: sd_ggml_to_f32 / sd_ggml_from_f32 convert it and the
                           weight kernels compute with it */
} sd_ggml_type_info;

/* The table row of a type, or NULL for a number that is not a ggml type. */
const sd_ggml_type_info *sd_ggml_type_info_of(uint32_t type);
/* ggml's name of a type; "unknown" for other numbers. */
const char *sd_ggml_type_name(uint32_t type);
/* Elements per block; 0 for an unknown type. */
uint32_t sd_ggml_block_size(uint32_t type);
/* Bytes per block; 0 for an unknown type. */
uint32_t sd_ggml_block_bytes(uint32_t type);
/* Bytes of n elements (n a multiple of the block size); 0 for an unknown
 * type, a bad element count or a size that does not fit in 64 bits. */
uint64_t sd_ggml_type_size(uint32_t type, uint64_t n_elements);
/* Bytes of one row of cols elements (ggml_row_size); 0 as above, or for
 * cols < 0. */
size_t sd_ggml_row_size(uint32_t type, int64_t cols);
/* 1 for the types smdiff converts and computes with: F32, F16, BF16 and
 * the block formats of core/quant.h (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K ..
 * Q6_K, IQ4_NL, IQ4_XS). Files with other known types parse, but their
 * tensors cannot be used; Q8_K is ggml's activation format, never a
 * weight type. */
int sd_ggml_is_supported(uint32_t type);

/* ------------------------------------------------- scalar conversions */

/* IEEE half with subnormals, inf and nan (nan stays nan); f32 -> f16 and
 * f32 -> bf16 round to nearest, ties to even. */
float sd_f16_to_f32(uint16_t h);
/* The same by field decoding, one case at a time (reference for tests). */
float sd_f16_to_f32_ref(uint16_t h);
uint16_t sd_f32_to_f16(float f);
float sd_bf16_to_f32(uint16_t h);
uint16_t sd_f32_to_bf16(float f);

/* ---------------------------------------------------- row conversions */

/* n elements starting at element 0 of src (of type) to f32. n must be a
 * multiple of the block size. src may be unaligned. For a type that
 * sd_ggml_is_supported() refuses, dst is filled with NaN. This is the
 * plain-C conversion (for the block formats core/quant.h's dequantisers,
 * which define their values); nn/ops.h has the vectorised one for weight
 * panels, equal bit for bit. */
void sd_ggml_to_f32(uint32_t type, const void *src, float *dst, int64_t n);
/* f32 to type (a supported one) for writers; an unsupported type gives
 * zeros. The block formats use core/quant.h's quantisers (Q8_0 is ggml's
 * reference rule, byte for byte). */
void sd_ggml_from_f32(uint32_t type, const float *src, void *dst, int64_t n);

#endif
