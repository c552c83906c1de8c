/* walk.c -- corpus documents in a deterministic order (see walk.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "io/file.h"
#include "walk.h"

typedef struct walker {
    sd_walk_fn fn;
    void *ud;
    sd_error *err;
    char *buf;
    size_t cap;
} walker;

/* Read the open regular file fd whole into w->buf; *len gets its size. */
static int32_t read_all(walker *w, int fd, const char *path, size_t *len) {
    size_t n = 0;
    for (;;) {
        if (n + 65536 > w->cap) {
            size_t cap = (n + 65536) * 2;
            char *b = sd_realloc(w->buf, cap);
            if (!b) return sd_fail(w->err, SMDIFF_E_NOMEM, "corpus: out of memory reading %s", path);
            w->buf = b;
            w->cap = cap;
        }
        ssize_t got = read(fd, w->buf + n, w->cap - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return sd_fail(w->err, SMDIFF_E_IO, "corpus: read error in %s: %s", path, strerror(errno));
        if (got == 0) break;
        n += (size_t)got;
    }
    *len = n;
    return SMDIFF_OK;
}

/* A path given to walk that is neither a regular file nor a folder. */
static int32_t not_a_file(walker *w, const char *path) {
    const char *what = "special file";
    sd_file_probe(path, &what);
    return sd_fail(w->err, SMDIFF_E_IO, "corpus: %s is a %s, not a regular file or a folder", path, what);
}

static int32_t visit_file(walker *w, const char *path, int named) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return sd_fail(w->err, SMDIFF_E_IO, "corpus: cannot open %s: %s", path, strerror(errno));
    struct stat st;
    int32_t rc = SMDIFF_OK;
    size_t len = 0;
    if (fstat(fd, &st) != 0) rc = sd_fail(w->err, SMDIFF_E_IO, "corpus: %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode)) {
        if (named) rc = not_a_file(w, path);
        close(fd);
        return rc;
    }
    if (!rc) rc = read_all(w, fd, path, &len);
    close(fd);
    if (!rc) rc = w->fn(w->ud, path, w->buf ? w->buf : "", len, w->err);
    return rc;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The visible entries of folder path, sorted; *n gets their number. */
static int32_t list_folder(walker *w, const char *path, char ***out, size_t *n) {
    DIR *d = opendir(path);
    if (!d) return sd_fail(w->err, SMDIFF_E_IO, "corpus: cannot open folder %s: %s", path, strerror(errno));
    char **names = NULL;
    size_t cap = 0;
    int32_t rc = SMDIFF_OK;
    struct dirent *e;
    *n = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* ., .., hidden files and folders */
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **t = sd_realloc(names, cap * sizeof *names);
            if (!t) {
                rc = sd_fail(w->err, SMDIFF_E_NOMEM, "corpus: out of memory listing %s", path);
                break;
            }
            names = t;
        }
        names[*n] = sd_strdup(e->d_name);
        if (!names[*n]) rc = sd_fail(w->err, SMDIFF_E_NOMEM, "corpus: out of memory listing %s", path);
        else (*n)++;
    }
    closedir(d);
    if (*n) qsort(names, *n, sizeof *names, cmp_names);
    *out = names;
    return rc;
}

static int32_t visit(walker *w, const char *path, int depth) {
    struct stat st;
    if (stat(path, &st) != 0) return sd_fail(w->err, SMDIFF_E_IO, "corpus: %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        if (S_ISREG(st.st_mode)) return visit_file(w, path, depth == 0);
        if (depth == 0) return not_a_file(w, path);
        return SMDIFF_OK; /* FIFOs, sockets, devices inside a folder: not text */
    }
    if (depth > 64) return sd_fail(w->err, SMDIFF_E_IO, "corpus: %s: folders nested too deep", path);
    char **names = NULL;
    size_t n = 0;
    int32_t rc = list_folder(w, path, &names, &n);
    size_t plen = strlen(path);
    for (size_t i = 0; !rc && i < n; i++) {
        size_t len = plen + 1 + strlen(names[i]) + 1;
        char *child = sd_malloc(len);
        if (!child) {
            rc = sd_fail(w->err, SMDIFF_E_NOMEM, "corpus: out of memory");
            break;
        }
        snprintf(child, len, "%s/%s", path, names[i]);
        rc = visit(w, child, depth + 1);
        sd_free(child);
    }
    for (size_t i = 0; i < n; i++) sd_free(names[i]);
    sd_free(names);
    return rc;
}

int32_t sd_walk_documents(const char *const *paths, size_t n_paths, sd_walk_fn fn, void *ud,
                          sd_error *err) {
    if (!paths || !fn) return sd_fail(err, SMDIFF_E_INVAL, "corpus: no paths or no callback");
    walker w = {fn, ud, err, NULL, 0};
    int32_t rc = SMDIFF_OK;
    for (size_t i = 0; !rc && i < n_paths; i++) {
        if (!paths[i]) rc = sd_fail(err, SMDIFF_E_INVAL, "corpus: path %zu is NULL", i);
        else rc = visit(&w, paths[i], 0);
    }
    sd_free(w.buf);
    return rc;
}
