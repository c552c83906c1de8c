/* data.c -- corpus walking, tokenization into one stream, token files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "data.h"
#include "io/file.h"
#include "io/walk.h"

typedef struct walk {
    sd_tokenize_fn fn;
    void *ud;
    int32_t eos;
    int32_t *tok;
    size_t n, cap;
    int64_t docs;
} walk;

static int32_t grow(walk *w, size_t need, sd_error *err) {
    if (need <= w->cap) return SMDIFF_OK;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < need) cap *= 2;
    int32_t *t = sd_realloc(w->tok, cap * sizeof(int32_t));
    if (!t) return sd_fail(err, SMDIFF_E_NOMEM, "corpus: out of memory for %zu tokens", need);
    w->tok = t;
    w->cap = cap;
    return SMDIFF_OK;
}

/* sd_walk_fn: tokenize one document and append it with its EOS. */
static int32_t add_document(void *ud, const char *path, const char *text, size_t len, sd_error *err) {
    walk *w = ud;
    if (len == 0) return SMDIFF_OK;
    size_t n_out = 0;
    /* room for about one token per 2 bytes, then exactly what is needed */
    int32_t rc = grow(w, w->n + len / 2 + 2, err);
    if (!rc) rc = w->fn(w->ud, text, len, w->tok + w->n, w->cap - w->n - 1, &n_out);
    if (rc == SMDIFF_E_BUFFER) {
        rc = grow(w, w->n + n_out + 1, err);
        if (!rc) rc = w->fn(w->ud, text, len, w->tok + w->n, w->cap - w->n - 1, &n_out);
    }
    if (rc) {
        if (!err->code) sd_fail(err, rc, "corpus: tokenizing %s failed", path);
    } else if (n_out > 0) {
        w->n += n_out;
        w->tok[w->n++] = w->eos; /* room reserved above */
        w->docs++;
    }
    return rc;
}

int32_t sd_data_tokenize_paths(const char *const *paths, int32_t n_paths, sd_tokenize_fn fn,
                               void *ud, int32_t eos_id, int32_t **tokens, int64_t *n_tokens,
                               int64_t *n_docs, sd_error *err) {
    sd_error local = {0};
    if (!err) err = &local;
    sd_error_clear(err);
    if (!paths || n_paths < 1 || !fn || !tokens || !n_tokens || eos_id < 0)
        return sd_fail(err, SMDIFF_E_INVAL, "corpus: no paths, tokenizer or EOS id");
    *tokens = NULL;
    *n_tokens = 0;
    walk w = {fn, ud, eos_id, NULL, 0, 0, 0};
    int32_t rc = sd_walk_documents(paths, (size_t)n_paths, add_document, &w, err);
    if (!rc && w.n == 0) rc = sd_fail(err, SMDIFF_E_INVAL, "corpus: empty corpus (no text in %d path(s))", n_paths);
    if (rc) {
        sd_free(w.tok);
        return rc;
    }
    *tokens = w.tok;
    *n_tokens = (int64_t)w.n;
    if (n_docs) *n_docs = w.docs;
    return SMDIFF_OK;
}

int32_t sd_data_write_tokens(const char *path, const int32_t *tokens, int64_t n, sd_error *err) {
    if (!path || (!tokens && n) || n < 0) return sd_fail(err, SMDIFF_E_INVAL, "token file: bad arguments");
    sd_atomic_file f;
    int32_t rc = sd_atomic_open(&f, path, "token file", err);
    if (rc) return rc;
    /* little-endian whatever the host, in chunks */
    unsigned char buf[1 << 16];
    for (int64_t i = 0; !rc && i < n;) {
        size_t k = 0;
        for (; i < n && k + 4 <= sizeof buf; i++, k += 4) {
            uint32_t v = (uint32_t)tokens[i];
            buf[k] = (unsigned char)v, buf[k + 1] = (unsigned char)(v >> 8);
            buf[k + 2] = (unsigned char)(v >> 16), buf[k + 3] = (unsigned char)(v >> 24);
        }
        rc = sd_atomic_write(&f, buf, k, err);
    }
    if (rc) {
        sd_atomic_abort(&f);
        return rc;
    }
    return sd_atomic_commit(&f, err);
}
