/* json.c -- Jansson through io/file.h; see json.h. */
#include "io/json.h"

#include <string.h>

#include "core/alloc.h"
#include "io/file.h"

/* ---- telling an allocation failure from a syntax error ------------------
 * (Found by tests/test_alloc.c, which fails Jansson's allocations in turn.)
 * Jansson (2.14) reports some allocation failures as syntax errors (a
 * string whose copy cannot be allocated is "string or '}' expected"). So
 * when it reports one, this scanner -- the JSON grammar as Jansson accepts
 * it without JSON_DECODE_ANY, allocating nothing -- decides: if the text is
 * well-formed, the failure was memory. Hand-written because no library
 * checks syntax without allocating. */

#define JSON_MAX_DEPTH 2048 /* Jansson's JSON_PARSER_MAX_DEPTH */

typedef struct {
    const unsigned char *p, *end;
} scan;

static void ws(scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int lit(scan *s, const char *w) {
    for (; *w; w++, s->p++)
        if (s->p >= s->end || *s->p != (unsigned char)*w) return 0;
    return 1;
}

static int hex(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static int digit(const scan *s) { return s->p < s->end && *s->p >= '0' && *s->p <= '9'; }

static int string(scan *s) {
    s->p++; /* the opening quote */
    while (s->p < s->end) {
        unsigned char c = *s->p++;
        if (c == '"') return 1;
        if (c < 0x20) return 0;
        if (c != '\\') continue;
        if (s->p >= s->end) return 0;
        c = *s->p++;
        if (c == 'u') {
            for (int i = 0; i < 4; i++)
                if (s->p >= s->end || !hex(*s->p++)) return 0;
        } else if (!strchr("\"\\/bfnrt", c) || !c) {
            return 0;
        }
    }
    return 0;
}

static int number(scan *s) {
    if (*s->p == '-') s->p++;
    if (!digit(s)) return 0;
    if (*s->p == '0') s->p++;
    else
        while (digit(s)) s->p++;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!digit(s)) return 0;
        while (digit(s)) s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (!digit(s)) return 0;
        while (digit(s)) s->p++;
    }
    return 1;
}

static int value(scan *s, int depth);

static int container(scan *s, int depth) {
    if (depth > JSON_MAX_DEPTH) return 0;
    unsigned char close = *s->p == '{' ? '}' : ']';
    int object = close == '}';
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 1;
    }
    for (;;) {
        if (object) {
            if (s->p >= s->end || *s->p != '"' || !string(s)) return 0;
            ws(s);
            if (s->p >= s->end || *s->p++ != ':') return 0;
            ws(s);
        }
        if (!value(s, depth)) return 0;
        ws(s);
        if (s->p >= s->end) return 0;
        unsigned char c = *s->p++;
        if (c == close) return 1;
        if (c != ',') return 0;
        ws(s);
    }
}

static int value(scan *s, int depth) {
    if (s->p >= s->end) return 0;
    switch (*s->p) {
    case '{': case '[': return container(s, depth + 1);
    case '"': return string(s);
    case 't': return lit(s, "true");
    case 'f': return lit(s, "false");
    case 'n': return lit(s, "null");
    default: return number(s);
    }
}

/* Whether text[n] is one JSON object or array and nothing else. */
static int well_formed(const char *text, size_t n) {
    scan s = {(const unsigned char *)text, (const unsigned char *)text + n};
    ws(&s);
    if (s.p >= s.end || (*s.p != '{' && *s.p != '[') || !container(&s, 1)) return 0;
    ws(&s);
    return s.p == s.end;
}

int32_t sd_json_parse(const char *text, size_t n, const char *name, size_t flags, json_t **out, sd_error *err) {
    json_error_t je;
    *out = json_loadb(text, n, flags, &je);
    if (*out) {
        /* Jansson (2.14) can also return a damaged tree when an allocation
         * fails: a string whose buffer could not grow is cut short. Parsing
         * the same bytes twice gives equal trees unless that happened. */
        json_t *again = json_loadb(text, n, flags, &je);
        int same = again && json_equal(*out, again);
        json_decref(again);
        if (same) return SMDIFF_OK;
        json_decref(*out);
        *out = NULL;
        return sd_fail(err, SMDIFF_E_NOMEM, "%s: out of memory parsing JSON", name);
    }
    enum json_error_code code = json_error_code(&je);
    /* Jansson records out_of_memory for most allocation failures, nothing
     * at all when the lexer's first buffer cannot be allocated, and a
     * syntax error for some (above). */
    int memory = code == json_error_out_of_memory || !je.text[0] ||
                 ((code == json_error_invalid_syntax || code == json_error_premature_end_of_input) &&
                  well_formed(text, n));
    if (memory) return sd_fail(err, SMDIFF_E_NOMEM, "%s: out of memory parsing JSON", name);
    return sd_fail(err, SMDIFF_E_FORMAT, "%s: JSON invalid at line %d: %s", name, je.line, je.text);
}

int32_t sd_json_load(const char *path, size_t flags, json_t **out, sd_error *err) {
    char *text;
    size_t n;
    *out = NULL;
    int32_t rc = sd_file_read_all(path, "json", &text, &n, err);
    if (rc) return rc;
    rc = sd_json_parse(text, n, path, flags, out, err);
    sd_free(text);
    return rc;
}
