/* buf.c -- small helpers of the serve/ layer: a growable byte buffer,
 * UTF-8 repair for JSON, clocks and request ids. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "serve.h"
#include "text/utf8.h"

static int grow(sd_sbuf *b, size_t extra) {
    if (b->oom) return -1;
    if (b->n + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = sd_realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int sd_sbuf_add(sd_sbuf *b, const void *p, size_t n) {
    if (grow(b, n)) return -1;
    if (n) memcpy(b->data + b->n, p, n);
    b->n += n;
    b->data[b->n] = '\0';
    return 0;
}

char *sd_sbuf_grow(sd_sbuf *b, size_t extra) { return grow(b, extra) ? NULL : b->data + b->n; }

int sd_sbuf_str(sd_sbuf *b, const char *s) { return sd_sbuf_add(b, s, strlen(s)); }

int sd_sbuf_printf(sd_sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0 || grow(b, (size_t)need)) return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->n, (size_t)need + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)need;
    return 0;
}

void sd_sbuf_free(sd_sbuf *b) {
    sd_free(b->data);
    memset(b, 0, sizeof *b);
}

char *sd_sbuf_take(sd_sbuf *b, size_t *n) {
    char *p = b->data;
    if (n) *n = b->n;
    memset(b, 0, sizeof *b);
    return p;
}

/* Every invalid byte becomes U+FFFD; valid characters (the text layer's
 * strict decoding: no overlongs, no surrogates, at most U+10FFFF) are
 * copied in runs. */
int sd_utf8_repair(sd_sbuf *b, const char *text, size_t n) {
    const uint8_t *s = (const uint8_t *)text;
    size_t i = 0, run = 0; /* run: start of the valid stretch being copied */
    while (i < n) {
        uint32_t cp;
        size_t k = sd_utf8_get(s + i, n - i, &cp);
        if (k) {
            i += k;
            continue;
        }
        if (sd_sbuf_add(b, text + run, i - run) || sd_sbuf_add(b, "\xEF\xBF\xBD", 3)) return -1;
        run = ++i;
    }
    return sd_sbuf_add(b, text + run, n - run);
}

double sd_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int64_t sd_unix_time(void) { return (int64_t)time(NULL); }

/* splitmix64 over (time, counter): ids only need to differ, not to be
 * unguessable (they carry no authority). */
void sd_new_id(const char *prefix, char out[40]) {
    static atomic_uint_fast64_t counter;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    uint64_t x = (uint64_t)t.tv_sec * 1000000007ull + (uint64_t)t.tv_nsec + (atomic_fetch_add(&counter, 1) << 40);
    uint64_t h[2];
    for (int i = 0; i < 2; i++) {
        uint64_t z = (x += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        h[i] = z ^ (z >> 31);
    }
    snprintf(out, 40, "%.12s%016llx%08llx", prefix, (unsigned long long)h[0],
             (unsigned long long)(h[1] & 0xffffffffull));
}

int sd_strn_ieq(const char *a, size_t n, const char *b) {
    size_t m = strlen(b);
    if (m != n) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
        if (x != y) return 0;
    }
    return 1;
}
