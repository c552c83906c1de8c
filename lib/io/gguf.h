/* gguf.h -- GGUF model files (versions 2 and 3): a bounds-checked reader
 * over a read-only mapping, and an atomic writer.
 *
 * Layout (all little-endian):
 *   magic "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv x { string key, u32 type, value },
 *   n_tensors x { string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset },
 *   padding to general.alignment (default 32), tensor data.
 * string = u64 length + bytes (no NUL). Array value = u32 elem type, u64 count, elems.
 *
 * The reader validates everything before returning a handle; afterwards
 * every accessor is a cheap lookup and no pointer it returns can point
 * outside the mapping. Errors are SMDIFF_E_IO (open/map) or
 * SMDIFF_E_FORMAT with a message naming the offending field.
 */
#ifndef SD_IO_GGUF_H
#define SD_IO_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/numfmt.h" /* SD_GGML_* element types, conversions */

/* Metadata value types (GGUF spec numbering). */
enum {
    SD_GGUF_UINT8 = 0, SD_GGUF_INT8 = 1, SD_GGUF_UINT16 = 2, SD_GGUF_INT16 = 3,
    SD_GGUF_UINT32 = 4, SD_GGUF_INT32 = 5, SD_GGUF_FLOAT32 = 6, SD_GGUF_BOOL = 7,
    SD_GGUF_STRING = 8, SD_GGUF_ARRAY = 9, SD_GGUF_UINT64 = 10, SD_GGUF_INT64 = 11,
    SD_GGUF_FLOAT64 = 12,
};

typedef struct sd_gguf sd_gguf;

typedef struct sd_gguf_str {
    const char *ptr;  /* not NUL-terminated; points into the mapping */
    uint64_t len;
} sd_gguf_str;

typedef struct sd_gguf_tensor {
    sd_gguf_str name;
    uint32_t n_dims;      /* 1..4 */
    uint64_t ne[4];       /* ne[0] is the fastest-varying (row length), unused dims = 1 */
    uint32_t type;        /* SD_GGML_* (core/numfmt.h) */
    uint64_t offset;      /* relative to the data section */
    uint64_t n_bytes;     /* validated: data + offset + n_bytes <= file end */
    const void *data;     /* into the mapping, aligned to general.alignment */
} sd_gguf_tensor;

/* Checksum: smdiff's writer ends every file's metadata with two keys,
 * SD_GGUF_CHECKSUM_ALGO_KEY (the string "xxh3_64") and, last,
 * SD_GGUF_CHECKSUM_KEY, a uint64 holding the XXH3-64 hash (core/checksum.h)
 * of the whole file with that key's own 8 value bytes taken as zeros. The
 * reader checks it whenever either key is present and refuses a file whose
 * bytes do not match, or that has only one of the two (a flipped byte in a
 * key's name cannot hide the checksum): SMDIFF_E_FORMAT. Files of other
 * tools have neither key and are read as before. */
#define SD_GGUF_CHECKSUM_ALGO_KEY "smdiff.checksum_algorithm"
#define SD_GGUF_CHECKSUM_ALGO "xxh3_64"
#define SD_GGUF_CHECKSUM_KEY "smdiff.checksum"

/* Open and validate (a checksum included). Only regular files are opened,
 * without blocking (io/file.h): anything else is SMDIFF_E_IO at once.
 * use_mmap = 0 reads the file into memory instead. */
int32_t sd_gguf_open(const char *path, int use_mmap, sd_gguf **out, sd_error *err);
/* Validate an in-memory image (for fuzzing and tests); buf must outlive the handle. */
int32_t sd_gguf_open_memory(const void *buf, size_t size, sd_gguf **out, sd_error *err);
void sd_gguf_close(sd_gguf *g);  /* accepts NULL */

uint32_t sd_gguf_version(const sd_gguf *g);
/* 1 if the file carries a checksum (then it matched), 0 if not. */
int sd_gguf_has_checksum(const sd_gguf *g);
/* File offset of the tensor data section (tensor offsets count from it). */
uint64_t sd_gguf_data_offset(const sd_gguf *g);
uint64_t sd_gguf_alignment(const sd_gguf *g);

/* Metadata lookup; -1 if absent. */
int64_t sd_gguf_find_key(const sd_gguf *g, const char *key);
int64_t sd_gguf_n_kv(const sd_gguf *g);
sd_gguf_str sd_gguf_key(const sd_gguf *g, int64_t i);
uint32_t sd_gguf_kv_type(const sd_gguf *g, int64_t i);

/* Typed getters: SMDIFF_E_NOT_FOUND if absent, SMDIFF_E_FORMAT if the
 * stored type cannot be represented (integers convert between widths when
 * the value fits; floats between f32/f64). */
int32_t sd_gguf_get_u64(const sd_gguf *g, const char *key, uint64_t *out, sd_error *err);
int32_t sd_gguf_get_i64(const sd_gguf *g, const char *key, int64_t *out, sd_error *err);
int32_t sd_gguf_get_f64(const sd_gguf *g, const char *key, double *out, sd_error *err);
int32_t sd_gguf_get_bool(const sd_gguf *g, const char *key, int *out, sd_error *err);
int32_t sd_gguf_get_str(const sd_gguf *g, const char *key, sd_gguf_str *out, sd_error *err);

/* Arrays: element type and count; element access by index. */
int32_t sd_gguf_get_arr(const sd_gguf *g, const char *key, uint32_t *elem_type,
                        uint64_t *count, sd_error *err);
int32_t sd_gguf_arr_str(const sd_gguf *g, const char *key, uint64_t i, sd_gguf_str *out);
int32_t sd_gguf_arr_i64(const sd_gguf *g, const char *key, uint64_t i, int64_t *out);
int32_t sd_gguf_arr_f64(const sd_gguf *g, const char *key, uint64_t i, double *out);

/* Raw little-endian elements of a fixed-size (non-string) array, or NULL if
 * the key is absent, not an array, or an array of strings. May be unaligned
 * (read elements with memcpy). */
const void *sd_gguf_arr_data(const sd_gguf *g, const char *key);
/* Element type of array kv i; UINT32_MAX if it is not an array. */
uint32_t sd_gguf_kv_arr_type(const sd_gguf *g, int64_t i);
/* Size in bytes of the file (or memory image). */
size_t sd_gguf_file_size(const sd_gguf *g);

/* Bytes of one value of a fixed-size metadata type (SD_GGUF_UINT8 ..
 * SD_GGUF_FLOAT64, BOOL); 0 for STRING, ARRAY and unknown types. */
uint32_t sd_gguf_scalar_size(uint32_t type);

/* Format any value as text (for smdiff_model_meta / `smdiff info`). */
int32_t sd_gguf_value_text(const sd_gguf *g, int64_t kv_index, char *buf, size_t size,
                           size_t *needed);

int64_t sd_gguf_n_tensors(const sd_gguf *g);
const sd_gguf_tensor *sd_gguf_tensor_at(const sd_gguf *g, int64_t i);
const sd_gguf_tensor *sd_gguf_find_tensor(const sd_gguf *g, const char *name); /* NULL if absent */

/* ------------------------------------------------------------- writer */

typedef struct sd_gguf_writer sd_gguf_writer;

int32_t sd_gguf_writer_create(sd_gguf_writer **out, sd_error *err);
void sd_gguf_writer_free(sd_gguf_writer *w);
/* The message of the writer's last failing set/add call. */
const sd_error *sd_gguf_writer_error(const sd_gguf_writer *w);

/* Metadata, kept in insertion order; setting an existing key replaces it
 * (keeping its position). Setters return SMDIFF_E_INVAL for a bad key or
 * value, SMDIFF_E_NOMEM; the message is in sd_gguf_writer_error(). A
 * uint32 "general.alignment" (power of two) sets the tensor alignment. */
int32_t sd_gguf_set_u32(sd_gguf_writer *w, const char *key, uint32_t v);
int32_t sd_gguf_set_i32(sd_gguf_writer *w, const char *key, int32_t v);
int32_t sd_gguf_set_u64(sd_gguf_writer *w, const char *key, uint64_t v);
int32_t sd_gguf_set_f32(sd_gguf_writer *w, const char *key, float v);
int32_t sd_gguf_set_bool(sd_gguf_writer *w, const char *key, int v);
int32_t sd_gguf_set_str(sd_gguf_writer *w, const char *key, const char *v);
int32_t sd_gguf_set_arr_str(sd_gguf_writer *w, const char *key, const char *const *v, uint64_t n);
int32_t sd_gguf_set_arr_i32(sd_gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
int32_t sd_gguf_set_arr_f32(sd_gguf_writer *w, const char *key, const float *v, uint64_t n);
/* Any fixed-size scalar type (SD_GGUF_UINT8..FLOAT64 except STRING/ARRAY);
 * value points to one little-endian value of that type. */
int32_t sd_gguf_set_scalar(sd_gguf_writer *w, const char *key, uint32_t type, const void *value);
/* String of n bytes (may contain any bytes, including NUL). */
int32_t sd_gguf_set_strn(sd_gguf_writer *w, const char *key, const char *v, uint64_t n);
/* Array of n fixed-size elements of elem_type (packed, little-endian). */
int32_t sd_gguf_set_arr(sd_gguf_writer *w, const char *key, uint32_t elem_type, const void *v, uint64_t n);
/* Array of strings with explicit lengths (lens NULL: NUL-terminated). */
int32_t sd_gguf_set_arr_strn(sd_gguf_writer *w, const char *key, const char *const *v, const uint64_t *lens,
                             uint64_t n);

/* Copy metadata entry i of the reader g into w under the same key, with
 * its type (scalars at their own width, strings, arrays of any element
 * type). SMDIFF_E_FORMAT, SMDIFF_E_NOMEM or the setter's error. */
int32_t sd_gguf_copy_kv(sd_gguf_writer *w, const sd_gguf *g, int64_t i, sd_error *err);

/* Add a tensor; data (n_bytes = sd_ggml_type_size) is copied or, with
 * borrow = 1, referenced until the file is written. ne[0] is the row length.
 * SMDIFF_E_INVAL for a bad name/shape/type or a duplicate name. */
int32_t sd_gguf_add_tensor(sd_gguf_writer *w, const char *name, uint32_t n_dims,
                           const uint64_t *ne, uint32_t type, const void *data, int borrow);

/* Produces a tensor's n_bytes of data into dst at write time; returns
 * SMDIFF_OK or a code (with a message in err). */
typedef int32_t (*sd_gguf_fill_fn)(void *user, const char *name, void *dst, uint64_t n_bytes, sd_error *err);
/* Add a tensor whose data is produced by fill while the file is written, so
 * a converter needs memory for one tensor at a time. */
int32_t sd_gguf_add_tensor_fill(sd_gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne,
                                uint32_t type, sd_gguf_fill_fn fill, void *user);

/* Called after each tensor's data is written (bytes so far, total). */
typedef void (*sd_gguf_progress_fn)(void *user, uint64_t bytes_done, uint64_t bytes_total);
void sd_gguf_writer_set_progress(sd_gguf_writer *w, sd_gguf_progress_fn fn, void *user);

/* Write a GGUF v3 file to path atomically (io/file.h: a temporary file in
 * the same folder, fsync, rename, fsync of the folder). On any failure the
 * temporary file is removed and the previous file at path (if any) is
 * untouched; SMDIFF_E_IO for file errors (a path that exists and is not a
 * regular file included), SMDIFF_E_INVAL for a bad general.alignment. The
 * file ends its metadata with SD_GGUF_CHECKSUM_KEY (any such key set on the
 * writer is dropped). The writer can be written again afterwards. */
int32_t sd_gguf_write(sd_gguf_writer *w, const char *path, sd_error *err);

#endif
