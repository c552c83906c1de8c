/* safetensors.h -- bounds-checked reader of Hugging Face safetensors files,
 * single or sharded (model.safetensors.index.json).
 *
 * Layout: u64 little-endian header length N, N bytes of JSON
 *   { "name": {"dtype": "F32", "shape": [r, c], "data_offsets": [begin, end]},
 *     ..., "__metadata__": {"k": "v"} }
 * then the data area; offsets are relative to its start (byte 8 + N).
 *
 * Everything is validated when a file is opened: header length (at most
 * 100 MB and inside the file), JSON syntax (Jansson, duplicate keys refused),
 * every entry's dtype, shape (non-negative, product without overflow),
 * data_offsets (begin <= end, inside the data area) and that the byte count
 * equals shape product x dtype size. Failures are SMDIFF_E_FORMAT naming the
 * tensor and field; open failures SMDIFF_E_IO. Jansson allocates with its own
 * (global) allocator while the header is parsed; nothing of it outlives the
 * open call.
 */
#ifndef SD_IO_SAFETENSORS_H
#define SD_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Element types (safetensors dtype strings). Only F32, F16, BF16 convert. */
enum {
    SD_ST_BOOL, SD_ST_U8, SD_ST_I8, SD_ST_F8_E5M2, SD_ST_F8_E4M3, SD_ST_I16, SD_ST_U16,
    SD_ST_F16, SD_ST_BF16, SD_ST_I32, SD_ST_U32, SD_ST_F32, SD_ST_F64, SD_ST_I64, SD_ST_U64,
    SD_ST_N_DTYPES
};

#define SD_ST_MAX_DIMS 8

typedef struct sd_st_tensor {
    const char *name;        /* NUL-terminated, owned by the handle */
    uint32_t dtype;          /* SD_ST_* */
    uint32_t n_dims;         /* 0..SD_ST_MAX_DIMS (0 = scalar) */
    uint64_t shape[SD_ST_MAX_DIMS]; /* PyTorch order: shape[n_dims-1] is the fastest-varying */
    uint64_t n_elements;
    uint64_t n_bytes;
    const void *data;        /* into the mapping; may be unaligned */
    const char *file;        /* shard file name (as in the index), or the path */
} sd_st_tensor;

typedef struct sd_st sd_st;

/* Open one .safetensors file (mmap). */
int32_t sd_st_open(const char *path, sd_st **out, sd_error *err);
/* Validate an in-memory image (fuzzing, tests); buf must outlive the handle. */
int32_t sd_st_open_memory(const void *buf, size_t size, sd_st **out, sd_error *err);
/* Open a Hugging Face model directory: model.safetensors.index.json (all
 * shards it names, every weight_map entry checked against its shard) or
 * else model.safetensors. Shard names must be plain file names. */
int32_t sd_st_open_dir(const char *dir, sd_st **out, sd_error *err);
void sd_st_close(sd_st *st); /* accepts NULL */

int64_t sd_st_n_tensors(const sd_st *st);
const sd_st_tensor *sd_st_tensor_at(const sd_st *st, int64_t i);   /* NULL out of range */
const sd_st_tensor *sd_st_find(const sd_st *st, const char *name);  /* NULL if absent */

/* Bytes per element of a dtype; 0 for an invalid id. */
uint32_t sd_st_dtype_size(uint32_t dtype);
const char *sd_st_dtype_name(uint32_t dtype);

/* Convert a F32/F16/BF16 tensor's elements (row-major) to f32; dst holds
 * n_elements. SMDIFF_E_UNSUPPORTED for other dtypes. */
int32_t sd_st_to_f32(const sd_st_tensor *t, float *dst, sd_error *err);

#endif
