/* faultshim.c -- an LD_PRELOAD shim for the command-line fault tests
 * (tests/test_cli_faults.c): it makes the Nth write-side system call of a
 * process fail, as a disk that returns EIO or fills up would.
 *
 * Counted: write, pwrite, pwrite64, writev, fsync, fdatasync and rename
 * (and renameat) calls made through the dynamic symbol table -- what
 * libsmdiff's file layer (lib/io/file.c) calls -- except writes to
 * standard error, so the command can still say what went wrong.
 *   SMDIFF_SHIM_FAIL=N:ERRNO  fail the N-th counted call (0-based) with ERRNO
 *   SMDIFF_SHIM_COUNT=PATH    write the number of counted calls to PATH at exit
 * Built as $(BUILD)/tests/faultshim.so; not linked into anything. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

static atomic_long calls;
static long fail_at = -1;
static int fail_errno;

__attribute__((constructor)) static void shim_init(void) {
    const char *f = getenv("SMDIFF_SHIM_FAIL");
    if (f && sscanf(f, "%ld:%d", &fail_at, &fail_errno) != 2) fail_at = -1;
}

__attribute__((destructor)) static void shim_fini(void) {
    const char *p = getenv("SMDIFF_SHIM_COUNT");
    if (!p) return;
    FILE *f = fopen(p, "w");
    if (f) {
        fprintf(f, "%ld\n", atomic_load(&calls));
        fclose(f);
    }
}

/* 0 to go on, or -1 with errno set: this call is the one to fail. */
static int counted(void) {
    long k = atomic_fetch_add(&calls, 1);
    if (k != fail_at) return 0;
    errno = fail_errno;
    return -1;
}

/* The next definition of name (libc's), looked up once. */
#define REAL(name, fnptr_type) \
    static fnptr_type real_##name; \
    if (!real_##name) real_##name = (fnptr_type)dlsym(RTLD_NEXT, #name)

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef int (*sync_fn)(int);
typedef int (*rename_fn)(const char *, const char *);
typedef int (*renameat_fn)(int, const char *, int, const char *);

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(write, write_fn);
    if (fd != 2 && counted()) return -1;
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite, pwrite_fn);
    if (counted()) return -1;
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite64, pwrite_fn);
    if (counted()) return -1;
    return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int n) {
    REAL(writev, writev_fn);
    if (fd != 2 && counted()) return -1;
    return real_writev(fd, iov, n);
}

int fsync(int fd) {
    REAL(fsync, sync_fn);
    if (counted()) return -1;
    return real_fsync(fd);
}

int fdatasync(int fd) {
    REAL(fdatasync, sync_fn);
    if (counted()) return -1;
    return real_fdatasync(fd);
}

int rename(const char *a, const char *b) {
    REAL(rename, rename_fn);
    if (counted()) return -1;
    return real_rename(a, b);
}

int renameat(int da, const char *a, int db, const char *b) {
    REAL(renameat, renameat_fn);
    if (counted()) return -1;
    return real_renameat(da, a, db, b);
}
