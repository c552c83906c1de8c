/* canvas.c -- the token canvas of `smdiff generate` (docs/DECODING.md,
 * "Infilling"): the prompt's {{fill:N}} markers become N mask ids each
 * (the text between them tokenized piece by piece); with --suffix, the
 * suffix is tokenized onto the end, after gen_length masks when the
 * prompt has no marker (gen_length left at its default: at most what the
 * context leaves). A prompt with neither is the plain prompt, and
 * smdiff_generate_tokens appends the generation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MARK "{{fill:"

/* A growing id array. */
typedef struct ids_buf {
    int32_t *v;
    size_t n, cap;
} ids_buf;

static int32_t reserve(ids_buf *b, size_t more) {
    if (b->n + more <= b->cap) return SMDIFF_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + more) cap *= 2;
    int32_t *v = realloc(b->v, sizeof *v * cap);
    if (!v) return SMDIFF_E_NOMEM;
    b->v = v, b->cap = cap;
    return SMDIFF_OK;
}

static int32_t add_masks(ids_buf *b, int32_t mask, size_t count) {
    int32_t rc = reserve(b, count);
    for (size_t i = 0; !rc && i < count; i++) b->v[b->n++] = mask;
    return rc;
}

/* Tokenize text[0..len) onto the end of b. */
static int32_t add_text(const smdiff_model *m, const char *text, size_t len, ids_buf *b) {
    size_t n = 0;
    int32_t rc = smdiff_model_tokenize(m, text, len, SMDIFF_TOKENIZE_PARSE_SPECIAL, NULL, 0, &n);
    if (rc != SMDIFF_OK && rc != SMDIFF_E_BUFFER) return rc;
    if ((rc = reserve(b, n + 1))) return rc;
    rc = smdiff_model_tokenize(m, text, len, SMDIFF_TOKENIZE_PARSE_SPECIAL, b->v + b->n, b->cap - b->n, &n);
    if (rc == SMDIFF_OK) b->n += n;
    return rc;
}

/* The count of a marker whose digits start at s: digits then "}}", *end
 * set past it; 0 if malformed. */
static long marker_count(const char *s, const char **end) {
    char *e;
    if (*s < '0' || *s > '9') return 0;
    long n = strtol(s, &e, 10);
    if (strncmp(e, "}}", 2) != 0 || n < 1 || n > 1048576) return 0;
    *end = e + 2;
    return n;
}

/* The prompt text, markers expanded, onto b; *markers counts them. */
static int32_t add_prompt(const smdiff_model *m, const char *prompt, int32_t mask, ids_buf *b, int *markers) {
    const char *p = prompt;
    int32_t rc = SMDIFF_OK;
    for (const char *at; !rc && (at = strstr(p, MARK)) != NULL;) {
        const char *end = NULL;
        long count = marker_count(at + strlen(MARK), &end);
        if (!count) {
            fprintf(stderr, "smdiff generate: malformed marker at \"%.24s\": write {{fill:N}}, N >= 1\n", at);
            return SMDIFF_E_INVAL;
        }
        if (!(rc = add_text(m, p, (size_t)(at - p), b))) rc = add_masks(b, mask, (size_t)count);
        (*markers)++;
        p = end;
    }
    return rc ? rc : add_text(m, p, strlen(p), b);
}

/* The span before the suffix (the prompt has no marker): gen_length, or
 * left at its default, at most what the context leaves. */
static int32_t add_span_and_suffix(const smdiff_model *m, const char *suffix, int32_t mask, int64_t gen_length,
                                   int gen_set, ids_buf *b) {
    ids_buf tail = {NULL, 0, 0};
    int64_t ctx = 0;
    int32_t rc = add_text(m, suffix, strlen(suffix), &tail);
    if (!rc) rc = smdiff_model_property(m, SMDIFF_PROP_CONTEXT, &ctx);
    int64_t room = ctx - (int64_t)(b->n + tail.n);
    if (!rc && !gen_set && gen_length > room) gen_length = room;
    if (!rc && gen_length < 1) {
        fprintf(stderr, "smdiff generate: the prompt and the suffix fill the context of %lld tokens\n",
                (long long)ctx);
        rc = SMDIFF_E_INVAL;
    }
    if (!rc) rc = add_masks(b, mask, (size_t)gen_length);
    if (!rc && !(rc = reserve(b, tail.n))) {
        memcpy(b->v + b->n, tail.v, sizeof *tail.v * tail.n);
        b->n += tail.n;
    }
    free(tail.v);
    return rc;
}

int cli_canvas(const smdiff_model *m, const int32_t *ids_in, size_t n_in, const char *prompt,
               const char *suffix, int64_t gen_length, int gen_set, int32_t **ids, size_t *n, int *infill) {
    ids_buf b = {NULL, 0, 0};
    int64_t mask = -1;
    int markers = 0;
    int32_t rc = smdiff_model_property(m, SMDIFF_PROP_MASK_ID, &mask);
    if (!rc && ids_in && !(rc = reserve(&b, n_in))) {
        memcpy(b.v, ids_in, sizeof *ids_in * n_in);
        b.n = n_in;
    }
    if (!rc && prompt) rc = add_prompt(m, prompt, (int32_t)mask, &b, &markers);
    if (!rc && suffix && !markers) rc = add_span_and_suffix(m, suffix, (int32_t)mask, gen_length, gen_set, &b);
    else if (!rc && suffix) rc = add_text(m, suffix, strlen(suffix), &b);
    if (rc) {
        free(b.v);
        return rc == SMDIFF_E_INVAL ? 2 : cli_fail("build the canvas", rc, smdiff_last_error());
    }
    *ids = b.v;
    *n = b.n;
    *infill = markers > 0 || suffix != NULL;
    return 0;
}
