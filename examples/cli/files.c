/* files.c -- the files the CLI opens itself (token and prompt files, logs,
 * CSVs, dumps), under the rules the library keeps for its own
 * (docs/RELIABILITY.md): an input that is not a regular file is refused at
 * once -- a FIFO is never waited on, a device never read -- and an output
 * path that exists and is not a regular file is refused, never written;
 * every write is checked. Files the CLI replaces whole (a trimmed log, the
 * loss plot) go through smdiff_write_file, the library's atomic write.
 * The library's file layer is internal (the CLI uses the public API only),
 * so the few lines of opening live here. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char *kind_of(mode_t m) {
    return S_ISDIR(m) ? "folder" : S_ISFIFO(m) ? "FIFO" : S_ISCHR(m) ? "character device"
         : S_ISBLK(m) ? "block device" : S_ISSOCK(m) ? "socket" : "special file";
}

FILE *cli_fopen(const char *path, const char *mode, const char *what) {
    int out = mode[0] != 'r';
    struct stat st;
    if (out && stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        fprintf(stderr, "%s: %s '%s' exists and is a %s, not a regular file; refusing to replace it\n", cli_prog(),
                what, path, kind_of(st.st_mode));
        return NULL;
    }
    /* O_NONBLOCK: opening a FIFO neither waits for a writer nor a reader */
    int flags = out ? O_WRONLY | O_CREAT | (mode[0] == 'a' ? O_APPEND : O_TRUNC) : O_RDONLY;
    int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC, 0666);
    if (fd < 0) {
        fprintf(stderr, "%s: %s '%s': %s\n", cli_prog(), what, path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { /* swapped in after stat, or an input */
        fprintf(stderr, "%s: %s '%s' is a %s, not a regular file\n", cli_prog(), what, path, kind_of(st.st_mode));
        close(fd);
        return NULL;
    }
    FILE *f = NULL;
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 || !(f = fdopen(fd, mode))) {
        fprintf(stderr, "%s: %s '%s': %s\n", cli_prog(), what, path, strerror(errno));
        close(fd);
    }
    return f;
}

int cli_fclose(FILE *f, const char *path, const char *what) {
    int bad = ferror(f), e = 0;
    if (fflush(f) != 0) bad = 1, e = errno;
    if (fclose(f) != 0 && !e) bad = 1, e = errno;
    if (!bad) return 0;
    fprintf(stderr, "%s: %s '%s': a write failed%s%s\n", cli_prog(), what, path, e ? ": " : "", e ? strerror(e) : "");
    return CLI_EXIT_FAIL;
}

int cli_write_file(const char *path, const char *what, const void *data, size_t n) {
    int32_t rc = smdiff_write_file(path, data, n);
    return rc ? cli_fail(what, rc, smdiff_last_error()) : 0;
}
