/* json.h -- Jansson documents from files and buffers with smdiff's error
 * rules: files are read through io/file.h (regular files only, never a
 * blocking open), and Jansson's own allocation failure (it allocates with
 * malloc: its allocator hook is process-wide, so smdiff leaves it to the
 * host) is reported as SMDIFF_E_NOMEM, not as a malformed file or a
 * damaged document (json.c says how Jansson's failures are told apart). */
#ifndef SD_IO_JSON_H
#define SD_IO_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "core/error.h"

/* Parse text[n] (name is for messages). SMDIFF_E_FORMAT naming the line
 * and Jansson's reason, SMDIFF_E_NOMEM. */
int32_t sd_json_parse(const char *text, size_t n, const char *name, size_t flags, json_t **out, sd_error *err);

/* Read and parse path; SMDIFF_E_IO as sd_file_read_all, then as
 * sd_json_parse. */
int32_t sd_json_load(const char *path, size_t flags, json_t **out, sd_error *err);

#endif
