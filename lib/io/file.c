/* file.c -- non-blocking regular-file inputs and atomic outputs; see file.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "io/file.h"

#define TMP_TAG ".smdiff-tmp."

static sd_io_fault_fn fault_fn = NULL;
static void *fault_user = NULL;

void sd_io_set_fault_hook(sd_io_fault_fn fn, void *user) {
    fault_fn = fn;
    fault_user = user;
}

/* The injected errno for op, or 0. */
static int fault(sd_io_op op, const char *path) { return fault_fn ? fault_fn(op, path, fault_user) : 0; }

static const char *kind_word(mode_t m) {
    if (S_ISDIR(m)) return "folder";
    if (S_ISFIFO(m)) return "FIFO";
    if (S_ISCHR(m)) return "character device";
    if (S_ISBLK(m)) return "block device";
    if (S_ISSOCK(m)) return "socket";
    if (S_ISLNK(m)) return "symbolic link";
    return "special file";
}

sd_file_kind sd_file_probe(const char *path, const char **what) {
    struct stat st;
    const char *w = "missing";
    sd_file_kind k;
    if (stat(path, &st) != 0) {
        k = errno == ENOENT || errno == ENOTDIR ? SD_FILE_ABSENT : SD_FILE_OTHER;
        if (k == SD_FILE_OTHER) w = "unreadable path";
    } else if (S_ISREG(st.st_mode)) {
        k = SD_FILE_REGULAR, w = "regular file";
    } else if (S_ISDIR(st.st_mode)) {
        k = SD_FILE_FOLDER, w = "folder";
    } else {
        k = SD_FILE_OTHER, w = kind_word(st.st_mode);
    }
    if (what) *what = w;
    return k;
}

/* ------------------------------------------------------------------ input */

int32_t sd_file_open_input(const char *path, const char *what, int *fd_out, uint64_t *size, sd_error *err) {
    if (!path || !fd_out) return sd_fail(err, SMDIFF_E_INVAL, "%s: NULL path", what);
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer; regular files ignore the flag. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return sd_fail(err, SMDIFF_E_IO, "%s: cannot open '%s': %s", what, path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sd_fail(err, SMDIFF_E_IO, "%s: cannot examine '%s': %s", what, path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sd_fail(err, SMDIFF_E_IO, "%s: '%s' is a %s, not a regular file", what, path, kind_word(st.st_mode));
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *fd_out = fd;
    if (size) *size = (uint64_t)st.st_size;
    return SMDIFF_OK;
}

int32_t sd_file_read_all(const char *path, const char *what, char **data, size_t *len, sd_error *err) {
    int fd;
    uint64_t size;
    int32_t rc = sd_file_open_input(path, what, &fd, &size, err);
    if (rc) return rc;
    char *buf = size < SIZE_MAX ? sd_malloc((size_t)size + 1) : NULL;
    if (!buf) {
        close(fd);
        return sd_fail(err, SMDIFF_E_NOMEM, "%s: no memory to read '%s' (%llu bytes)", what, path,
                       (unsigned long long)size);
    }
    size_t got = 0;
    while (got < (size_t)size) {
        ssize_t r = read(fd, buf + got, (size_t)size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            sd_free(buf);
            return sd_fail(err, SMDIFF_E_IO, "%s: reading '%s' failed: %s", what, path, strerror(e));
        }
        if (r == 0) break; /* shrank while being read: take what is there */
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return SMDIFF_OK;
}

/* ----------------------------------------------------------------- output */

/* dir and base name of path; *dir is sd_malloc'd ("." when path has no slash). */
static int split_path(const char *path, char **dir, const char **base) {
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 1;
    *dir = sd_malloc(n + 1);
    if (!*dir) return -1;
    memcpy(*dir, slash ? path : ".", n);
    (*dir)[n] = '\0';
    *base = slash ? slash + 1 : path;
    return 0;
}

/* Stale temporaries of dir/base removed; -1 if memory ran out. */
static int clean_stale(const char *dir, const char *base) {
    size_t bl = strlen(base), tl = strlen(TMP_TAG);
    int removed = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *n = e->d_name;
        if (n[0] != '.' || strncmp(n + 1, base, bl) || strncmp(n + 1 + bl, TMP_TAG, tl)) continue;
        char *end;
        long pid = strtol(n + 1 + bl + tl, &end, 10);
        if (end == n + 1 + bl + tl || *end != '.' || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* its writer may still run */
        char *p = sd_path_join(dir, n);
        if (!p) {
            removed = -1;
            break;
        }
        if (unlink(p) == 0) {
            removed++;
            SD_LOGI("removed %s, left by an interrupted write (process %ld is gone)", p, pid);
        }
        sd_free(p);
    }
    if (d) closedir(d);
    return removed;
}

int sd_atomic_clean_stale(const char *path) {
    char *dir;
    const char *base;
    if (!path || split_path(path, &dir, &base)) return -1;
    int n = clean_stale(dir, base);
    sd_free(dir);
    return n;
}

/* The file an output path names: path itself, or the target of a symbolic
 * link to a regular file; refuses anything else that exists. */
static int32_t resolve_output(const char *path, const char *what, char **dest, mode_t *mode, sd_error *err) {
    struct stat ls, st;
    *mode = 0644;
    if (lstat(path, &ls) != 0) {
        if (errno != ENOENT)
            return sd_fail(err, SMDIFF_E_IO, "%s: cannot examine '%s': %s", what, path, strerror(errno));
        *dest = sd_strdup(path);
        return *dest ? SMDIFF_OK : sd_fail(err, SMDIFF_E_NOMEM, "%s: no memory", what);
    }
    if (S_ISLNK(ls.st_mode)) {
        if (stat(path, &st) != 0)
            return sd_fail(err, SMDIFF_E_IO, "%s: '%s' is a symbolic link to nothing (%s); refusing to replace it",
                           what, path, strerror(errno));
    } else {
        st = ls;
    }
    if (!S_ISREG(st.st_mode))
        return sd_fail(err, SMDIFF_E_IO, "%s: '%s' exists and is a %s, not a regular file; refusing to replace it",
                       what, path, kind_word(st.st_mode));
    *mode = st.st_mode & 07777;
    if (!S_ISLNK(ls.st_mode)) {
        *dest = sd_strdup(path);
        return *dest ? SMDIFF_OK : sd_fail(err, SMDIFF_E_NOMEM, "%s: no memory", what);
    }
    char *real = realpath(path, NULL); /* malloc'd by libc */
    if (!real) return sd_fail(err, SMDIFF_E_IO, "%s: cannot resolve '%s': %s", what, path, strerror(errno));
    *dest = sd_strdup(real);
    free(real);
    return *dest ? SMDIFF_OK : sd_fail(err, SMDIFF_E_NOMEM, "%s: no memory", what);
}

int32_t sd_atomic_open(sd_atomic_file *f, const char *path, const char *what, sd_error *err) {
    static atomic_uint counter;
    f->fd = -1;
    f->path = f->tmp = f->dir = NULL;
    f->what = what;
    if (!path || !*path) return sd_fail(err, SMDIFF_E_INVAL, "%s: empty output path", what);
    mode_t mode;
    int32_t rc = resolve_output(path, what, &f->path, &mode, err);
    if (rc) return rc;
    const char *base;
    size_t n = strlen(f->path) + 64;
    if (split_path(f->path, &f->dir, &base) || !(f->tmp = sd_malloc(n)) || clean_stale(f->dir, base) < 0) {
        sd_atomic_abort(f);
        return sd_fail(err, SMDIFF_E_NOMEM, "%s: no memory", what);
    }
    snprintf(f->tmp, n, "%s/.%s" TMP_TAG "%ld.%u", f->dir, base, (long)getpid(), atomic_fetch_add(&counter, 1));
    int e = fault(SD_IO_CREATE, f->tmp);
    if (!e) {
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (f->fd < 0) e = errno;
    }
    if (e) {
        rc = sd_fail(err, SMDIFF_E_IO, "%s: cannot create a file next to '%s': %s", what, path, strerror(e));
        sd_free(f->tmp);
        f->tmp = NULL; /* nothing to remove */
        sd_atomic_abort(f);
        return rc;
    }
    return SMDIFF_OK;
}

static int32_t write_at(sd_atomic_file *f, const void *buf, size_t n, int64_t offset, sd_error *err) {
    const char *p = buf;
    while (n) {
        int e = fault(SD_IO_WRITE, f->tmp);
        ssize_t r = -1;
        if (!e) {
            r = offset < 0 ? write(f->fd, p, n) : pwrite(f->fd, p, n, (off_t)offset);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) e = errno;
            else if (r == 0) e = ENOSPC;
        }
        if (e) return sd_fail(err, SMDIFF_E_IO, "%s: writing '%s' failed: %s", f->what, f->path, strerror(e));
        p += r;
        n -= (size_t)r;
        if (offset >= 0) offset += r;
    }
    return SMDIFF_OK;
}

int32_t sd_atomic_write(sd_atomic_file *f, const void *buf, size_t n, sd_error *err) {
    return write_at(f, buf, n, -1, err);
}

int32_t sd_atomic_pwrite(sd_atomic_file *f, const void *buf, size_t n, uint64_t offset, sd_error *err) {
    return write_at(f, buf, n, (int64_t)offset, err);
}

/* A folder fsync that the filesystem does not support is not a failure. */
static int dirsync_unsupported(int e) { return e == EINVAL || e == EROFS || e == ENOTSUP || e == EBADF; }

int32_t sd_atomic_commit(sd_atomic_file *f, sd_error *err) {
    int e = fault(SD_IO_FSYNC, f->tmp);
    if (!e && fsync(f->fd) != 0) e = errno;
    if (e) {
        int32_t rc = sd_fail(err, SMDIFF_E_IO, "%s: writing '%s' failed at fsync: %s", f->what, f->path, strerror(e));
        sd_atomic_abort(f);
        return rc;
    }
    e = fault(SD_IO_CLOSE, f->tmp);
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0 && !e) e = errno;
    if (!e) e = fault(SD_IO_RENAME, f->tmp);
    if (!e && rename(f->tmp, f->path) != 0) e = errno;
    if (e) {
        int32_t rc = sd_fail(err, SMDIFF_E_IO, "%s: writing '%s' failed: %s", f->what, f->path, strerror(e));
        sd_atomic_abort(f);
        return rc;
    }
    /* The rename itself must reach the disk too. */
    int32_t rc = SMDIFF_OK;
    e = fault(SD_IO_DIRSYNC, f->tmp);
    int dfd = e ? -1 : open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!e && dfd >= 0 && fsync(dfd) != 0) e = errno;
    if (dfd >= 0) close(dfd);
    if (e && !dirsync_unsupported(e))
        rc = sd_fail(err, SMDIFF_E_IO, "%s: '%s' was written but its folder %s could not be synced: %s", f->what,
                     f->path, f->dir, strerror(e));
    sd_free(f->tmp);
    f->tmp = NULL;
    sd_atomic_abort(f); /* frees the rest */
    return rc;
}

void sd_atomic_abort(sd_atomic_file *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp) unlink(f->tmp);
    sd_free(f->tmp);
    sd_free(f->path);
    sd_free(f->dir);
    f->tmp = f->path = f->dir = NULL;
}

int32_t sd_atomic_write_file(const char *path, const char *what, const void *data, size_t n, sd_error *err) {
    sd_atomic_file f;
    int32_t rc = sd_atomic_open(&f, path, what, err);
    if (rc) return rc;
    if ((rc = sd_atomic_write(&f, data, n, err))) {
        sd_atomic_abort(&f);
        return rc;
    }
    return sd_atomic_commit(&f, err);
}
