/* servetest.h -- helpers of the server tests (test_serve_*.c): the bundled
 * model, a deliberately slow decoder strategy, an HTTP client over real
 * sockets whose responses are parsed by http-parser, and SSE splitting. */
#ifndef SMDIFF_SERVETEST_H
#define SMDIFF_SERVETEST_H

#include <stddef.h>
#include <stdint.h>

#include "smdiff/smdiff.h"

/* The bundled model (models/smdiff-gutenberg-18m-sm.gguf), loaded once and
 * kept for the process; NULL if the file is missing. */
smdiff_model *st_bundled_model(void);

/* Register the strategy "test_slow": commits the lowest n_transfer masked
 * positions (as a left-to-right decoder) after sleeping st_slow_ms
 * milliseconds, so tests can hold slots busy without burning CPU.
 * Idempotent. */
void st_register_slow(void);
extern volatile int st_slow_ms;

/* One HTTP response. */
typedef struct st_resp {
    int status;
    char *body;      /* NUL-terminated, chunked coding removed */
    size_t n;
    char head[4096]; /* "name: value\n" lines, names lower-cased */
    int complete;    /* the message ended (length, last chunk) */
    int keep_alive;
} st_resp;

void st_resp_free(st_resp *r);
/* Value of a header (lower-case name) or NULL; static buffer. */
const char *st_header(const st_resp *r, const char *name);

/* Parse up to max responses from data[0..n); returns how many ended. */
int st_parse_responses(const char *data, size_t n, st_resp *out, int max);

int st_connect(int port);          /* -1 on failure */
int st_send_all(int fd, const char *s, size_t n);
/* Read until EOF or timeout (seconds); malloc'd, NUL-terminated. */
char *st_read_all(int fd, size_t *n, double timeout);
/* One request on a fresh connection ("Connection: close"); returns the
 * status (0 if no response came). extra: header lines or NULL. */
int st_request(int port, const char *method, const char *path, const char *body, const char *extra,
               st_resp *out);

/* Split an SSE body into the payloads of its "data:" lines. Returns the
 * count; out[i] are malloc'd (free with st_free_events). */
int st_sse_events(const char *body, char ***out);
void st_free_events(char **ev, int n);

double st_now(void);

#endif
