/* file.h -- every file smdiff reads whole or writes goes through here, so
 * the rules below hold everywhere (docs/RELIABILITY.md):
 *
 *  - Inputs are opened without blocking and refused at once unless they are
 *    regular files: a FIFO, a device, a socket or a folder given where a
 *    file is expected is an SMDIFF_E_IO naming what it is, never a read
 *    that waits forever.
 *  - Outputs are written atomically: a temporary file in the destination's
 *    folder, every write checked, fsync, rename over the destination, fsync
 *    of the folder. On any failure the temporary file is removed and the
 *    destination keeps its previous contents. A destination that exists and
 *    is not a regular file (a folder, FIFO, device, socket) is refused,
 *    never replaced; a symbolic link to a regular file is followed (the
 *    link stays, its target is replaced).
 *  - Temporary files are named ".<name>.smdiff-tmp.<pid>.<n>" next to the
 *    destination <name>. A process killed while writing leaves one behind;
 *    the next atomic write to the same destination removes those whose
 *    process is gone (kill(pid, 0) fails with ESRCH).
 */
#ifndef SD_IO_FILE_H
#define SD_IO_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* What a path is: absent, a regular file, a folder, or something else. */
typedef enum { SD_FILE_ABSENT, SD_FILE_REGULAR, SD_FILE_FOLDER, SD_FILE_OTHER } sd_file_kind;

/* The kind of path (following symbolic links); *what (may be NULL)
 * receives a word for it ("FIFO", "character device", ...). A path that
 * cannot be examined for another reason than its absence counts as OTHER. */
sd_file_kind sd_file_probe(const char *path, const char **what);

/* Open path for reading without blocking; SMDIFF_E_IO unless it is a
 * regular file ("<what>: '<path>' is a FIFO, not a regular file").
 * *fd receives the descriptor (blocking mode restored), *size its size. */
int32_t sd_file_open_input(const char *path, const char *what, int *fd, uint64_t *size, sd_error *err);

/* Read a whole regular file into sd_malloc'd memory, NUL-terminated
 * (*len excludes the NUL). SMDIFF_E_IO, SMDIFF_E_NOMEM. */
int32_t sd_file_read_all(const char *path, const char *what, char **data, size_t *len, sd_error *err);

/* ---- atomic output ------------------------------------------------------ */

typedef struct sd_atomic_file {
    int fd;
    char *path;   /* the destination (symbolic links resolved) */
    char *tmp;    /* the temporary file */
    char *dir;    /* the destination's folder */
    const char *what;
} sd_atomic_file;

/* Create the temporary file for path (removing stale ones of the same
 * destination first). SMDIFF_E_IO if path is not a regular file or cannot
 * be created; SMDIFF_E_NOMEM. On failure f needs no abort. */
int32_t sd_atomic_open(sd_atomic_file *f, const char *path, const char *what, sd_error *err);

/* Write n bytes at the end, or at offset (sd_atomic_pwrite). SMDIFF_E_IO
 * with errno's text. */
int32_t sd_atomic_write(sd_atomic_file *f, const void *buf, size_t n, sd_error *err);
int32_t sd_atomic_pwrite(sd_atomic_file *f, const void *buf, size_t n, uint64_t offset, sd_error *err);

/* fsync, close, rename over the destination, fsync of the folder; on
 * failure the temporary file is removed. Either way f is finished. */
int32_t sd_atomic_commit(sd_atomic_file *f, sd_error *err);

/* Close and remove the temporary file (after a failure). Accepts a file
 * that sd_atomic_open did not open. */
void sd_atomic_abort(sd_atomic_file *f);

/* The whole of data[n] to path atomically. */
int32_t sd_atomic_write_file(const char *path, const char *what, const void *data, size_t n, sd_error *err);

/* Remove the temporary files of interrupted writes to path whose process
 * is gone; returns how many were removed, -1 when memory ran out. Called
 * by sd_atomic_open. */
int sd_atomic_clean_stale(const char *path);

/* ---- fault injection (tests) --------------------------------------------
 * Called before each operation of an atomic write with the temporary
 * file's path; a non-zero return is taken as that operation's errno (the
 * operation is not done). Not thread-safe: set it while no write runs. */
typedef enum {
    SD_IO_CREATE, /* creating the temporary file */
    SD_IO_WRITE,  /* each write(2) or pwrite(2) */
    SD_IO_FSYNC,  /* fsync of the file */
    SD_IO_CLOSE,  /* close of the file */
    SD_IO_RENAME, /* rename over the destination */
    SD_IO_DIRSYNC /* fsync of the folder */
} sd_io_op;
typedef int (*sd_io_fault_fn)(sd_io_op op, const char *path, void *user);
void sd_io_set_fault_hook(sd_io_fault_fn fn, void *user);

#endif
