/* data.h -- a text corpus to a token stream for training.
 *
 * Files and folders (walked recursively, entries in byte order of their
 * names, hidden entries skipped) are read as documents in a deterministic
 * order; each is tokenized by a caller-supplied function (the model's
 * tokenizer, through whatever layer provides it) and followed by the EOS
 * id. The stream is written once as a token file (little-endian int32,
 * atomic write) that `smdiff train --tokens` reads; the trainer draws
 * random windows of it, the last part being the validation set.
 */
#ifndef SD_TRAIN_DATA_H
#define SD_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Tokenize text[0..n) into out (capacity cap ids). Two-call pattern as
 * smdiff_model_tokenize: *n_out receives the count needed; returns 0, or
 * SMDIFF_E_BUFFER when cap is too small (called again with more room), or
 * another negative code (which stops the walk). */
typedef int32_t (*sd_tokenize_fn)(void *ud, const char *text, size_t n, int32_t *out, size_t cap,
                                  size_t *n_out);

/* Tokenize every document under paths[n_paths] into *tokens (sd_malloc'd,
 * freed by the caller with sd_free), EOS after each document (eos_id >= 0).
 * *n_docs (may be NULL) gets the number of documents. Returns SMDIFF_OK,
 * SMDIFF_E_IO (unreadable path, with its name), SMDIFF_E_INVAL (no
 * documents or no tokens: "empty corpus"), SMDIFF_E_NOMEM, or the
 * tokenizer's code. */
int32_t sd_data_tokenize_paths(const char *const *paths, int32_t n_paths, sd_tokenize_fn fn,
                               void *ud, int32_t eos_id, int32_t **tokens, int64_t *n_tokens,
                               int64_t *n_docs, sd_error *err);

/* Write tokens[n] as little-endian int32 to path atomically (temporary
 * file in the same folder, fsync, rename). SMDIFF_E_IO on failure. */
int32_t sd_data_write_tokens(const char *path, const int32_t *tokens, int64_t n, sd_error *err);

#endif
