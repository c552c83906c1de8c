/* utf8.c -- UTF-8 helpers and Unicode normalisation. See utf8.h.
 *
 * Normalisation is utf8proc's (Debian libutf8proc): its decompose and
 * reencode steps write into a buffer we provide, so every allocation still
 * goes through sd_malloc, and it keeps no state, so any number of threads
 * may normalise at once.
 */
#include <string.h>
#include <utf8proc.h>

#include "core/alloc.h"
#include "utf8.h"

size_t sd_utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t sd_utf8_get(const uint8_t *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    uint8_t c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    size_t len;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) { len = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

/* ------------------------------------------------------------ streaming */

/* Whether p[0..k) (k < the length its lead byte announces) can still be
 * completed into a valid character: the lead is C2..F4 and the second byte,
 * if present, lies in the range the lead allows (no overlong, surrogate or
 * > U+10FFFF forms). */
static int utf8_prefix_possible(const uint8_t *p, size_t k) {
    uint8_t c = p[0];
    if (c < 0xC2 || c > 0xF4) return 0;
    if (k >= 2) {
        uint8_t lo = 0x80, hi = 0xBF;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;
        else if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;
        if (p[1] < lo || p[1] > hi) return 0;
    }
    for (size_t j = 2; j < k; j++)
        if ((p[j] & 0xC0) != 0x80) return 0;
    return 1;
}

size_t sd_utf8_complete_prefix(const char *buf, size_t n) {
    const uint8_t *s = (const uint8_t *)buf;
    /* The last sequence starts at most 3 bytes back (a 4-byte one missing
     * its last byte). */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        uint8_t c = s[n - back];
        if ((c & 0xC0) == 0x80) continue;
        size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
        if (need <= back) return n;
        return utf8_prefix_possible(s + n - back, back) ? n - back : n;
    }
    return n;
}

/* -------------------------------------------------------- normalisation */

static const char *const k_norm_names[] = {"", "NFC", "NFD", "NFKC", "NFKD"};
#define N_NORMS ((int32_t)(sizeof k_norm_names / sizeof k_norm_names[0]))

const char *sd_norm_name(int32_t form) { return form >= 0 && form < N_NORMS ? k_norm_names[form] : NULL; }

int32_t sd_norm_parse(const char *name, size_t len) {
    for (int32_t i = 1; i < N_NORMS; i++)
        if (strlen(k_norm_names[i]) == len && !memcmp(k_norm_names[i], name, len)) return i;
    return -1;
}

void sd_norm_buf_free(sd_norm_buf *b) {
    sd_free(b->cps);
    sd_free(b->out);
    memset(b, 0, sizeof *b);
}

static int grow_bytes(char **p, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 256;
    while (nc < need) {
        if (nc > SIZE_MAX / 2) return -1;
        nc *= 2;
    }
    char *np = sd_realloc(*p, nc);
    if (!np) return -1;
    *p = np;
    *cap = nc;
    return 0;
}

static utf8proc_option_t norm_options(int32_t form) {
    utf8proc_option_t o = UTF8PROC_STABLE;
    o |= (form == SD_NORM_NFC || form == SD_NORM_NFKC) ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE;
    if (form == SD_NORM_NFKC || form == SD_NORM_NFKD) o |= UTF8PROC_COMPAT;
    return o;
}

/* Append the normalised form of the valid run s[0..n) to b->out at *len. */
static int normalize_run(int32_t form, const uint8_t *s, size_t n, sd_norm_buf *b, size_t *len) {
    if (n == 0) return 0;
    utf8proc_option_t opt = norm_options(form);
    utf8proc_ssize_t k;
    for (;;) {
        k = utf8proc_decompose(s, (utf8proc_ssize_t)n, b->cps, (utf8proc_ssize_t)b->cap, opt);
        if (k < 0 || (size_t)k <= b->cap) break;
        /* reencode writes up to 4 bytes per code point and a NUL in place */
        size_t bytes;
        if (sd_mul_size((size_t)k + 1, sizeof(int32_t), &bytes)) return -1;
        int32_t *np = sd_realloc(b->cps, bytes);
        if (!np) return -1;
        b->cps = np;
        b->cap = (size_t)k;
    }
    if (k >= 0) k = utf8proc_reencode(b->cps, k, opt);
    if (k < 0) {
        /* utf8proc refused a run sd_utf8_get accepted (should not happen):
         * keep the bytes as they are rather than lose them */
        if (grow_bytes(&b->out, &b->out_cap, *len + n)) return -1;
        memcpy(b->out + *len, s, n);
        *len += n;
        return 0;
    }
    if (grow_bytes(&b->out, &b->out_cap, *len + (size_t)k)) return -1;
    memcpy(b->out + *len, b->cps, (size_t)k);
    *len += (size_t)k;
    return 0;
}

/* Code points below this are left as they are by the form and never
 * combine with what precedes them (UAX #15's stable code points): for
 * NFC all of U+0000..U+02FF (the combining marks start at U+0300; Latin-1
 * letters are precomposed already), for the other forms only ASCII. Text
 * can be cut before any of them and each piece normalised on its own, so
 * only the stretches around other code points go through utf8proc. */
static uint32_t stable_below(int32_t form) { return form == SD_NORM_NFC ? 0x300 : 0x80; }

/* The length of the valid character at s[0..n) if the form may change it
 * or combine it with its neighbours, else 0 (a stable character, or an
 * invalid byte, which is kept as it is). */
static size_t unstable_at(const uint8_t *s, size_t n, uint32_t lim) {
    if (s[0] < 0x80) return 0;
    uint32_t cp;
    size_t cl = sd_utf8_get(s, n, &cp);
    return cl && cp >= lim ? cl : 0;
}

static int append_raw(sd_norm_buf *b, size_t *len, const uint8_t *s, size_t n) {
    if (n == 0) return 0;
    if (grow_bytes(&b->out, &b->out_cap, *len + n)) return -1;
    memcpy(b->out + *len, s, n);
    *len += n;
    return 0;
}

int sd_utf8_normalize(int32_t form, const uint8_t *s, size_t n, sd_norm_buf *b, const uint8_t **out,
                      size_t *out_len) {
    *out = NULL;
    uint32_t lim = stable_below(form);
    size_t i = 0;
    while (form != SD_NORM_NONE && i < n && !unstable_at(s + i, n - i, lim)) i++;
    if (form == SD_NORM_NONE || i == n) { /* nothing the form changes */
        *out = s;
        *out_len = n;
        return 0;
    }
    size_t len = 0, done = 0, cut = 0; /* cut: where a piece may start */
    for (i = 0; i < n;) {
        size_t cl = unstable_at(s + i, n - i, lim);
        if (!cl) {
            uint32_t cp;
            size_t vl = s[i] < 0x80 ? 1 : sd_utf8_get(s + i, n - i, &cp);
            cut = vl ? i : i + 1; /* before a stable character, after an invalid byte */
            i += vl ? vl : 1;
            continue;
        }
        size_t start = cut > done ? cut : done, j = i + cl;
        while (j < n && (cl = unstable_at(s + j, n - j, lim))) j += cl;
        if (append_raw(b, &len, s + done, start - done) || normalize_run(form, s + start, j - start, b, &len))
            return -1;
        done = i = j;
    }
    if (append_raw(b, &len, s + done, n - done)) return -1;
    *out = (const uint8_t *)b->out;
    *out_len = len;
    return 0;
}
