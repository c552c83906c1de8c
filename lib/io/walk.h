/* walk.h -- the documents of a corpus: files and folders given by path,
 * folders walked recursively with entries in byte order of their names
 * (readdir's order depends on the file system) and hidden entries skipped,
 * each regular file read whole and handed to a callback. The order is a
 * function of the paths and the tree alone, so whatever is built from the
 * walk (a token stream, a trained vocabulary) is deterministic.
 *
 * A path named by the caller must be a regular file or a folder: anything
 * else (FIFO, socket, device) is an error, since reading a FIFO may wait
 * forever. Inside folders such entries are skipped. Files are opened with
 * O_NONBLOCK and checked with fstat, so a FIFO swapped in after the check
 * is refused too.
 */
#ifndef SD_IO_WALK_H
#define SD_IO_WALK_H

#include <stddef.h>

#include "core/error.h"

/* Called once per document with its whole text (not NUL-terminated, may be
 * empty; valid only during the call). Return SMDIFF_OK to go on, or an
 * error code (recorded in err by the callback) to stop the walk. */
typedef int32_t (*sd_walk_fn)(void *ud, const char *path, const char *text, size_t len, sd_error *err);

/* Walk paths[n_paths] in order. Returns SMDIFF_OK, SMDIFF_E_IO (unreadable
 * path, bad file type, read error; the message names the path),
 * SMDIFF_E_NOMEM, or the callback's code. */
int32_t sd_walk_documents(const char *const *paths, size_t n_paths, sd_walk_fn fn, void *ud,
                          sd_error *err);

#endif
