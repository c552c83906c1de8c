/* gguf.c -- GGUF reader (validate everything once, then cheap lookups) and
 * atomic writer. See gguf.h for the layout and docs/FORMATS.md for the
 * full list of checks.
 *
 * Reading never trusts a length or count from the file: every read goes
 * through a cursor that checks the remaining bytes first, and every count
 * is bounded by the bytes left divided by the smallest possible encoding of
 * one item before anything is allocated for it, so a hostile header can make
 * us allocate at most a small multiple of the file size. Beyond that, the
 * arrays grow with the entries actually parsed, never with a claimed count.
 *
 * The tensor element types (names, block sizes) and their conversions are
 * the numeric base's, in core/numfmt.c; this file is only the container.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/checksum.h"
#include "io/file.h"
#include "io/gguf.h"

#define GGUF_HEADER_BYTES 24u   /* magic, version, n_tensors, n_kv */
#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_KEY_LEN 65535u /* spec: keys are at most 65535 bytes */
#define GGUF_MAX_NAME_LEN 255u  /* ggml uses 64; be lenient but bounded */
#define GGUF_READ_ALIGN 4096u   /* base alignment of the read() fallback buffer */

static const char *gguf_type_name(uint32_t t) {
    static const char *names[] = {"uint8", "int8",  "uint16", "int16",  "uint32",
                                  "int32", "float32", "bool", "string", "array",
                                  "uint64", "int64", "float64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "invalid";
}

/* Bytes of one scalar value of a fixed-size metadata type; 0 otherwise. */
uint32_t sd_gguf_scalar_size(uint32_t t) {
    switch (t) {
    case SD_GGUF_UINT8: case SD_GGUF_INT8: case SD_GGUF_BOOL: return 1;
    case SD_GGUF_UINT16: case SD_GGUF_INT16: return 2;
    case SD_GGUF_UINT32: case SD_GGUF_INT32: case SD_GGUF_FLOAT32: return 4;
    case SD_GGUF_UINT64: case SD_GGUF_INT64: case SD_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* ------------------------------------------------------------- reader */

typedef struct {
    sd_gguf_str key;
    uint32_t type;         /* SD_GGUF_* */
    uint32_t arr_type;     /* element type when type == ARRAY */
    uint64_t arr_count;
    const uint8_t *val;    /* value bytes (array: first element) */
    uint64_t *str_off;     /* string arrays: offset of each element from val */
} gguf_kv;

struct sd_gguf {
    const uint8_t *base;
    size_t size;
    void *map;             /* mmap base, or NULL */
    void *owned;           /* read() fallback buffer (sd_malloc), or NULL */
    uint32_t version;
    uint64_t alignment;
    int64_t n_kv;
    gguf_kv *kv;
    int64_t n_tensors;
    sd_gguf_tensor *tensors;
    /* Open-addressing hash tables of indices + 1 (0 = empty), power-of-2 sized. */
    uint64_t kv_cap, t_cap;
    uint64_t kv_alloc, t_alloc;  /* allocated entries of kv and tensors */
    int64_t *kv_hash, *t_hash;
    int has_checksum;      /* SD_GGUF_CHECKSUM_KEY present and matching */
    uint64_t data_start;   /* file offset of the tensor data section */
};

typedef struct {
    const uint8_t *p;
    size_t size, pos;
} cursor;

static int cur_need(const cursor *c, uint64_t n) { return n <= c->size - c->pos; }

static uint32_t rd_u32(cursor *c) {
    uint32_t v;
    memcpy(&v, c->p + c->pos, 4);
    c->pos += 4;
    return v;
}

static uint64_t rd_u64(cursor *c) {
    uint64_t v;
    memcpy(&v, c->p + c->pos, 8);
    c->pos += 8;
    return v;
}

static uint64_t hash_bytes(const char *s, uint64_t n) {
    uint64_t h = 1469598103934665603ull;  /* FNV-1a */
    for (uint64_t i = 0; i < n; i++) { h ^= (uint8_t)s[i]; h *= 1099511628211ull; }
    return h;
}

/* Printable copy of a file string for error messages (never trust it). */
static const char *printable(const char *s, uint64_t n, char *buf, size_t size) {
    size_t k = 0;
    for (uint64_t i = 0; i < n && k + 4 < size; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[k++] = (ch >= 32 && ch < 127) ? (char)ch : '?';
    }
    if (n > size - 4) { buf[k++] = '.'; buf[k++] = '.'; buf[k++] = '.'; }
    buf[k] = '\0';
    return buf;
}

/* Read a string; what names what is being read for the error message. */
static int32_t rd_str(cursor *c, sd_gguf_str *out, uint64_t max_len, const char *what,
                      sd_error *err) {
    if (!cur_need(c, 8))
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: %s: string length at byte %zu past end of file (%zu bytes)",
                       what, c->pos, c->size);
    uint64_t n = rd_u64(c);
    if (n > max_len)
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: %s: string length %" PRIu64 " exceeds the limit %" PRIu64,
                       what, n, max_len);
    if (!cur_need(c, n))
        return sd_fail(err, SMDIFF_E_FORMAT,
                       "gguf: %s: string of %" PRIu64 " bytes at byte %zu past end of file (%zu bytes)",
                       what, n, c->pos, c->size);
    out->ptr = (const char *)c->p + c->pos;
    out->len = n;
    c->pos += (size_t)n;
    return SMDIFF_OK;
}

/* Insert index i under (s, n); returns the existing index if the name is
 * already there, -1 if inserted. */
static int64_t hash_insert(int64_t *tab, uint64_t cap, const char *s, uint64_t n, int64_t i,
                           const sd_gguf_str *(*name_of)(const void *, int64_t), const void *ctx) {
    uint64_t h = hash_bytes(s, n) & (cap - 1);
    while (tab[h]) {
        const sd_gguf_str *o = name_of(ctx, tab[h] - 1);
        if (o->len == n && memcmp(o->ptr, s, (size_t)n) == 0) return tab[h] - 1;
        h = (h + 1) & (cap - 1);
    }
    tab[h] = i + 1;
    return -1;
}

static int64_t hash_find(const int64_t *tab, uint64_t cap, const char *s, uint64_t n,
                         const sd_gguf_str *(*name_of)(const void *, int64_t), const void *ctx) {
    if (!cap) return -1;
    uint64_t h = hash_bytes(s, n) & (cap - 1);
    while (tab[h]) {
        const sd_gguf_str *o = name_of(ctx, tab[h] - 1);
        if (o->len == n && memcmp(o->ptr, s, (size_t)n) == 0) return tab[h] - 1;
        h = (h + 1) & (cap - 1);
    }
    return -1;
}

static const sd_gguf_str *kv_name(const void *g, int64_t i) { return &((const sd_gguf *)g)->kv[i].key; }
static const sd_gguf_str *t_name(const void *g, int64_t i) { return &((const sd_gguf *)g)->tensors[i].name; }

/* Grow *p (elements of elem bytes, *cap allocated) to hold need, zeroing
 * the new part. Arrays grow with what the file actually contains, never
 * with a count it claims, so a hostile count costs nothing. */
static int grow_array(void **p, uint64_t *cap, uint64_t need, size_t elem) {
    if (need <= *cap) return 0;
    uint64_t nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    size_t bytes;
    if (nc > SIZE_MAX || sd_mul_size((size_t)nc, elem, &bytes)) return -1;
    void *q = sd_realloc(*p, bytes);
    if (!q) return -1;
    memset((uint8_t *)q + *cap * elem, 0, (size_t)(nc - *cap) * elem);
    *p = q;
    *cap = nc;
    return 0;
}

/* Insert entry i (entries 0..i-1 already in) into a table kept at most half
 * full, rehashing into a table twice as large when needed. Returns -1 when
 * inserted, the index of an entry with the same name, or -2 without memory. */
static int64_t hash_add(int64_t **tab, uint64_t *cap, int64_t i, const char *s, uint64_t n,
                        const sd_gguf_str *(*name_of)(const void *, int64_t), const void *ctx) {
    if ((uint64_t)(i + 1) * 2 > *cap) {
        uint64_t nc = *cap ? *cap * 2 : 16;
        int64_t *nt = sd_calloc((size_t)nc, sizeof *nt);
        if (!nt) return -2;
        for (int64_t j = 0; j < i; j++) {
            const sd_gguf_str *o = name_of(ctx, j);
            hash_insert(nt, nc, o->ptr, o->len, j, name_of, ctx);
        }
        sd_free(*tab);
        *tab = nt;
        *cap = nc;
    }
    return hash_insert(*tab, *cap, s, n, i, name_of, ctx);
}

/* Parse one metadata value of type t at the cursor; fills kv. */
static int32_t parse_value(sd_gguf *g, cursor *c, gguf_kv *kv, const char *kname, sd_error *err) {
    uint32_t t = kv->type;
    kv->val = c->p + c->pos;
    uint32_t sz = sd_gguf_scalar_size(t);
    if (sz) {
        if (!cur_need(c, sz))
            return sd_fail(err, SMDIFF_E_FORMAT, "gguf: key '%s': %s value at byte %zu past end of file (%zu bytes)",
                           kname, gguf_type_name(t), c->pos, c->size);
        if (t == SD_GGUF_BOOL && c->p[c->pos] > 1)
            return sd_fail(err, SMDIFF_E_FORMAT, "gguf: key '%s': bool value %u is not 0 or 1", kname,
                           c->p[c->pos]);
        c->pos += sz;
        return SMDIFF_OK;
    }
    if (t == SD_GGUF_STRING) {
        sd_gguf_str s;
        char what[160];
        snprintf(what, sizeof what, "key '%s' value", kname);
        int32_t rc = rd_str(c, &s, UINT64_MAX, what, err);
        return rc;
    }
    if (t != SD_GGUF_ARRAY)
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: key '%s': invalid value type %u", kname, t);
    if (!cur_need(c, 12))
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: key '%s': array header at byte %zu past end of file (%zu bytes)",
                       kname, c->pos, c->size);
    uint32_t et = rd_u32(c);
    uint64_t n = rd_u64(c);
    kv->arr_type = et;
    kv->arr_count = n;
    kv->val = c->p + c->pos;
    uint64_t left = c->size - c->pos;
    uint32_t esz = sd_gguf_scalar_size(et);
    if (esz) {
        if (n > left / esz)
            return sd_fail(err, SMDIFF_E_FORMAT,
                           "gguf: key '%s': array of %" PRIu64 " %s needs more than the %" PRIu64
                           " bytes left in the file",
                           kname, n, gguf_type_name(et), left);
        if (et == SD_GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (c->p[c->pos + i] > 1)
                    return sd_fail(err, SMDIFF_E_FORMAT, "gguf: key '%s': bool element %" PRIu64 " is %u, not 0 or 1",
                                   kname, i, c->p[c->pos + i]);
        c->pos += (size_t)(n * esz);
        return SMDIFF_OK;
    }
    if (et == SD_GGUF_STRING) {
        if (n > left / 8)  /* each element is at least its 8-byte length */
            return sd_fail(err, SMDIFF_E_FORMAT,
                           "gguf: key '%s': array of %" PRIu64 " strings needs more than the %" PRIu64
                           " bytes left in the file",
                           kname, n, left);
        size_t start = c->pos;
        uint64_t cap = 0;
        for (uint64_t i = 0; i < n; i++) {
            if (grow_array((void **)&kv->str_off, &cap, i + 1, sizeof(uint64_t)))
                return sd_fail(err, SMDIFF_E_NOMEM, "gguf: key '%s': no memory for %" PRIu64 " string offsets", kname, i + 1);
            kv->str_off[i] = c->pos - start;
            sd_gguf_str s;
            char what[192];
            snprintf(what, sizeof what, "key '%s' element %" PRIu64, kname, i);
            int32_t rc = rd_str(c, &s, UINT64_MAX, what, err);
            if (rc) return rc;
        }
        return SMDIFF_OK;
    }
    (void)g;
    return sd_fail(err, SMDIFF_E_FORMAT, "gguf: key '%s': array element type %u (%s) is not supported",
                   kname, et, gguf_type_name(et));
}

static int32_t parse(sd_gguf *g, sd_error *err) {
    cursor c = {g->base, g->size, 0};
    char nb[80];
    if (!cur_need(&c, GGUF_HEADER_BYTES))
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: file of %zu bytes is shorter than the 24-byte header", g->size);
    if (memcmp(c.p, "GGUF", 4) != 0)
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: bad magic (expected \"GGUF\")");
    c.pos = 4;
    g->version = rd_u32(&c);
    if (g->version != 2 && g->version != 3) {
        if ((g->version & 0xffffu) == 0 && g->version)
            return sd_fail(err, SMDIFF_E_FORMAT, "gguf: version %u: big-endian files are not supported", g->version);
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: version %u not supported (only 2 and 3)", g->version);
    }
    uint64_t n_tensors = rd_u64(&c);
    uint64_t n_kv = rd_u64(&c);
    uint64_t left = c.size - c.pos;
    /* Smallest key/value: 8-byte length + 1-byte key + u32 type + 1-byte value.
     * Smallest tensor info: 8 + 1 name + u32 n_dims + u64 dim + u32 type + u64 offset. */
    if (n_kv > left / 14)
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: n_kv %" PRIu64 " cannot fit in the %" PRIu64 " bytes after the header",
                       n_kv, left);
    if (n_tensors > left / 33)
        return sd_fail(err, SMDIFF_E_FORMAT,
                       "gguf: n_tensors %" PRIu64 " cannot fit in the %" PRIu64 " bytes after the header", n_tensors, left);

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (grow_array((void **)&g->kv, &g->kv_alloc, i + 1, sizeof *g->kv))
            return sd_fail(err, SMDIFF_E_NOMEM, "gguf: no memory for %" PRIu64 " keys", i + 1);
        gguf_kv *kv = &g->kv[i];
        char what[64];
        snprintf(what, sizeof what, "metadata key #%" PRIu64, i);
        int32_t rc = rd_str(&c, &kv->key, GGUF_MAX_KEY_LEN, what, err);
        if (rc) return rc;
        g->n_kv = (int64_t)i + 1;  /* so close() frees str_off of this entry */
        printable(kv->key.ptr, kv->key.len, nb, sizeof nb);
        if (kv->key.len == 0 || memchr(kv->key.ptr, 0, (size_t)kv->key.len))
            return sd_fail(err, SMDIFF_E_FORMAT, "gguf: metadata key #%" PRIu64 " '%s' is empty or contains a NUL byte",
                           i, nb);
        int64_t dup = hash_add(&g->kv_hash, &g->kv_cap, (int64_t)i, kv->key.ptr, kv->key.len, kv_name, g);
        if (dup == -2) return sd_fail(err, SMDIFF_E_NOMEM, "gguf: no memory for the key index");
        if (dup >= 0) return sd_fail(err, SMDIFF_E_FORMAT, "gguf: metadata key '%s' appears twice", nb);
        if (!cur_need(&c, 4))
            return sd_fail(err, SMDIFF_E_FORMAT, "gguf: key '%s': type at byte %zu past end of file (%zu bytes)",
                           nb, c.pos, c.size);
        kv->type = rd_u32(&c);
        rc = parse_value(g, &c, kv, nb, err);
        if (rc) return rc;
        if (kv->key.len == 17 && memcmp(kv->key.ptr, "general.alignment", 17) == 0) {
            if (kv->type != SD_GGUF_UINT32)
                return sd_fail(err, SMDIFF_E_FORMAT, "gguf: general.alignment has type %s, expected uint32",
                               gguf_type_name(kv->type));
            uint32_t a;
            memcpy(&a, kv->val, 4);
            if (a == 0 || (a & (a - 1)))
                return sd_fail(err, SMDIFF_E_FORMAT, "gguf: general.alignment %u is not a power of two", a);
            g->alignment = a;
        }
    }

    for (uint64_t i = 0; i < n_tensors; i++) {
        if (grow_array((void **)&g->tensors, &g->t_alloc, i + 1, sizeof *g->tensors))
            return sd_fail(err, SMDIFF_E_NOMEM, "gguf: no memory for %" PRIu64 " tensors", i + 1);
        sd_gguf_tensor *t = &g->tensors[i];
        char what[64];
        snprintf(what, sizeof what, "tensor #%" PRIu64 " name", i);
        int32_t rc = rd_str(&c, &t->name, GGUF_MAX_NAME_LEN, what, err);
        if (rc) return rc;
        g->n_tensors = (int64_t)i + 1;
        printable(t->name.ptr, t->name.len, nb, sizeof nb);
        if (t->name.len == 0 || memchr(t->name.ptr, 0, (size_t)t->name.len))
            return sd_fail(err, SMDIFF_E_FORMAT, "gguf: tensor #%" PRIu64 " name '%s' is empty or contains a NUL byte", i, nb);
        int64_t dup = hash_add(&g->t_hash, &g->t_cap, (int64_t)i, t->name.ptr, t->name.len, t_name, g);
        if (dup == -2) return sd_fail(err, SMDIFF_E_NOMEM, "gguf: no memory for the tensor index");
        if (dup >= 0) return sd_fail(err, SMDIFF_E_FORMAT, "gguf: tensor '%s' appears twice", nb);
        if (!cur_need(&c, 4))
            return sd_fail(err, SMDIFF_E_FORMAT, "gguf: tensor '%s': n_dims at byte %zu past end of file (%zu bytes)",
                           nb, c.pos, c.size);
        t->n_dims = rd_u32(&c);
        if (t->n_dims < 1 || t->n_dims > 4)
            return sd_fail(err, SMDIFF_E_FORMAT, "gguf: tensor '%s': n_dims %u not in 1..4", nb, t->n_dims);
        if (!cur_need(&c, 8ull * t->n_dims + 12))
            return sd_fail(err, SMDIFF_E_FORMAT, "gguf: tensor '%s': info at byte %zu past end of file (%zu bytes)",
                           nb, c.pos, c.size);
        uint64_t nel = 1;
        for (uint32_t d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t ne = rd_u64(&c);
            if (ne == 0 || ne > (uint64_t)INT64_MAX)
                return sd_fail(err, SMDIFF_E_FORMAT, "gguf: tensor '%s': dimension %u is %" PRIu64 " (must be 1..2^63-1)",
                               nb, d, ne);
            if (nel > (uint64_t)INT64_MAX / ne)
                return sd_fail(err, SMDIFF_E_FORMAT, "gguf: tensor '%s': element count overflows at dimension %u", nb, d);
            nel *= ne;
            t->ne[d] = ne;
        }
        t->type = rd_u32(&c);
        t->offset = rd_u64(&c);
        const sd_ggml_type_info *tr = sd_ggml_type_info_of(t->type);
        if (!tr)
            return sd_fail(err, SMDIFF_E_FORMAT, "gguf: tensor '%s': unknown ggml type id %u", nb, t->type);
        if (t->ne[0] % tr->block)
            return sd_fail(err, SMDIFF_E_FORMAT, "gguf: tensor '%s': row length %" PRIu64 " is not a multiple of the %s block size %u",
                           nb, t->ne[0], tr->name, tr->block);
        t->n_bytes = sd_ggml_type_size(t->type, nel);
        if (t->n_bytes == 0 || t->n_bytes > (uint64_t)INT64_MAX)
            return sd_fail(err, SMDIFF_E_FORMAT, "gguf: tensor '%s': byte size overflows", nb);
        if (t->offset % g->alignment)
            return sd_fail(err, SMDIFF_E_FORMAT, "gguf: tensor '%s': offset %" PRIu64 " is not a multiple of general.alignment %" PRIu64,
                           nb, t->offset, g->alignment);
    }

    /* The data section starts at the next multiple of the alignment. */
    uint64_t data_start = c.pos;
    uint64_t rem = data_start % g->alignment;
    if (rem) data_start += g->alignment - rem;
    g->data_start = data_start;
    if (n_tensors && data_start > g->size)
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: data section at byte %" PRIu64 " past end of file (%zu bytes)",
                       data_start, g->size);
    for (uint64_t i = 0; i < n_tensors; i++) {
        sd_gguf_tensor *t = &g->tensors[i];
        uint64_t room = (uint64_t)g->size - data_start;
        if (t->offset > room || t->n_bytes > room - t->offset)
            return sd_fail(err, SMDIFF_E_FORMAT,
                           "gguf: tensor '%s': data [offset %" PRIu64 ", %" PRIu64 " bytes] past end of file (%zu bytes)",
                           printable(t->name.ptr, t->name.len, nb, sizeof nb), data_start + t->offset, t->n_bytes,
                           g->size);
        t->data = g->base + data_start + t->offset;
    }
    return SMDIFF_OK;
}

/* The checksum key's value against the hash of the whole image with those
 * 8 bytes as zeros (gguf.h). */
static int32_t check_checksum(sd_gguf *g, sd_error *err) {
    int64_t i = sd_gguf_find_key(g, SD_GGUF_CHECKSUM_KEY), ia = sd_gguf_find_key(g, SD_GGUF_CHECKSUM_ALGO_KEY);
    if (i < 0 && ia < 0) return SMDIFF_OK;
    if (i < 0 || ia < 0)
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: %s without %s: the file is corrupt",
                       i < 0 ? SD_GGUF_CHECKSUM_ALGO_KEY : SD_GGUF_CHECKSUM_KEY,
                       i < 0 ? SD_GGUF_CHECKSUM_KEY : SD_GGUF_CHECKSUM_ALGO_KEY);
    const gguf_kv *kv = &g->kv[i], *ka = &g->kv[ia];
    sd_gguf_str algo = {0};
    if (ka->type == SD_GGUF_STRING) {
        memcpy(&algo.len, ka->val, 8);
        algo.ptr = (const char *)ka->val + 8;
    }
    if (ka->type != SD_GGUF_STRING || algo.len != strlen(SD_GGUF_CHECKSUM_ALGO) ||
        memcmp(algo.ptr, SD_GGUF_CHECKSUM_ALGO, algo.len))
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: %s is not \"%s\" (the file is corrupt, or written by a newer "
                       "smdiff)", SD_GGUF_CHECKSUM_ALGO_KEY, SD_GGUF_CHECKSUM_ALGO);
    if (kv->type != SD_GGUF_UINT64)
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: key %s has type %s, not uint64", SD_GGUF_CHECKSUM_KEY,
                       gguf_type_name(kv->type));
    size_t off = (size_t)(kv->val - g->base);
    uint64_t stored, zero = 0;
    memcpy(&stored, kv->val, 8);
    sd_hash h;
    sd_hash_reset(&h);
    sd_hash_update(&h, g->base, off);
    sd_hash_update(&h, &zero, 8);
    sd_hash_update(&h, g->base + off + 8, g->size - off - 8);
    uint64_t computed = sd_hash_digest(&h);
    if (computed != stored)
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: checksum mismatch (stored %016" PRIx64 ", contents hash to %016" PRIx64
                       "): the file is corrupt or was changed after it was written", stored, computed);
    g->has_checksum = 1;
    return SMDIFF_OK;
}

static int32_t open_common(sd_gguf *g, sd_gguf **out, sd_error *err) {
    int32_t rc = parse(g, err);
    if (!rc) rc = check_checksum(g, err);
    if (rc) {
        sd_gguf_close(g);
        return rc;
    }
    *out = g;
    return SMDIFF_OK;
}

int32_t sd_gguf_open_memory(const void *buf, size_t size, sd_gguf **out, sd_error *err) {
    if (!out || (!buf && size)) return sd_fail(err, SMDIFF_E_INVAL, "gguf: NULL argument");
    *out = NULL;
    sd_gguf *g = sd_calloc(1, sizeof *g);
    if (!g) return sd_fail(err, SMDIFF_E_NOMEM, "gguf: no memory");
    static const uint8_t empty[1] = {0};
    g->base = buf ? buf : empty;
    g->size = size;
    return open_common(g, out, err);
}

int32_t sd_gguf_open(const char *path, int use_mmap, sd_gguf **out, sd_error *err) {
    if (!path || !out) return sd_fail(err, SMDIFF_E_INVAL, "gguf: NULL argument");
    *out = NULL;
    int fd;
    uint64_t fsize;
    int32_t orc = sd_file_open_input(path, "gguf", &fd, &fsize, err);
    if (orc) return orc;
    if (fsize > SIZE_MAX) {
        close(fd);
        return sd_fail(err, SMDIFF_E_NOMEM, "gguf: '%s' (%" PRIu64 " bytes) does not fit the address space", path, fsize);
    }
    size_t size = (size_t)fsize;
    if (fsize < GGUF_HEADER_BYTES) {
        close(fd);
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: '%s': file of %zu bytes is shorter than the 24-byte header", path,
                       size);
    }
    sd_gguf *g = sd_calloc(1, sizeof *g);
    if (!g) {
        close(fd);
        return sd_fail(err, SMDIFF_E_NOMEM, "gguf: no memory");
    }
    g->size = size;
    if (use_mmap) {
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            sd_free(g);
            /* ENOMEM: the address space is full (ulimit -v) */
            return sd_fail(err, e == ENOMEM ? SMDIFF_E_NOMEM : SMDIFF_E_IO, "gguf: cannot map '%s': %s", path,
                           strerror(e));
        }
        g->map = m;
        g->base = m;
    } else {
        /* Page-align the copy so tensor data is as aligned as with mmap. */
        if (size > SIZE_MAX - GGUF_READ_ALIGN || !(g->owned = sd_malloc(size + GGUF_READ_ALIGN))) {
            close(fd);
            sd_free(g);
            return sd_fail(err, SMDIFF_E_NOMEM, "gguf: no memory to read '%s' (%zu bytes)", path, size);
        }
        uintptr_t a = ((uintptr_t)g->owned + GGUF_READ_ALIGN - 1) & ~(uintptr_t)(GGUF_READ_ALIGN - 1);
        uint8_t *dst = (uint8_t *)a;
        size_t got = 0;
        while (got < size) {
            ssize_t r = read(fd, dst + got, size - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                int e = r < 0 ? errno : 0;
                close(fd);
                sd_free(g->owned);
                sd_free(g);
                return sd_fail(err, SMDIFF_E_IO, "gguf: reading '%s' failed at byte %zu: %s", path, got,
                               e ? strerror(e) : "file shrank");
            }
            got += (size_t)r;
        }
        g->base = dst;
    }
    close(fd);
    return open_common(g, out, err);
}

void sd_gguf_close(sd_gguf *g) {
    if (!g) return;
    if (g->kv)
        for (int64_t i = 0; i < g->n_kv; i++) sd_free(g->kv[i].str_off);
    sd_free(g->kv);
    sd_free(g->tensors);
    sd_free(g->kv_hash);
    sd_free(g->t_hash);
    if (g->map) munmap(g->map, g->size);
    sd_free(g->owned);
    sd_free(g);
}

uint32_t sd_gguf_version(const sd_gguf *g) { return g->version; }
int sd_gguf_has_checksum(const sd_gguf *g) { return g->has_checksum; }
uint64_t sd_gguf_data_offset(const sd_gguf *g) { return g->data_start; }
uint64_t sd_gguf_alignment(const sd_gguf *g) { return g->alignment; }
int64_t sd_gguf_n_kv(const sd_gguf *g) { return g->n_kv; }
int64_t sd_gguf_n_tensors(const sd_gguf *g) { return g->n_tensors; }
size_t sd_gguf_file_size(const sd_gguf *g) { return g->size; }

int64_t sd_gguf_find_key(const sd_gguf *g, const char *key) {
    if (!g || !key) return -1;
    return hash_find(g->kv_hash, g->kv_cap, key, strlen(key), kv_name, g);
}

sd_gguf_str sd_gguf_key(const sd_gguf *g, int64_t i) {
    sd_gguf_str none = {"", 0};
    if (!g || i < 0 || i >= g->n_kv) return none;
    return g->kv[i].key;
}

uint32_t sd_gguf_kv_type(const sd_gguf *g, int64_t i) {
    if (!g || i < 0 || i >= g->n_kv) return UINT32_MAX;
    return g->kv[i].type;
}

uint32_t sd_gguf_kv_arr_type(const sd_gguf *g, int64_t i) {
    if (!g || i < 0 || i >= g->n_kv || g->kv[i].type != SD_GGUF_ARRAY) return UINT32_MAX;
    return g->kv[i].arr_type;
}

const sd_gguf_tensor *sd_gguf_tensor_at(const sd_gguf *g, int64_t i) {
    if (!g || i < 0 || i >= g->n_tensors) return NULL;
    return &g->tensors[i];
}

const sd_gguf_tensor *sd_gguf_find_tensor(const sd_gguf *g, const char *name) {
    if (!g || !name) return NULL;
    int64_t i = hash_find(g->t_hash, g->t_cap, name, strlen(name), t_name, g);
    return i < 0 ? NULL : &g->tensors[i];
}

/* Scalar of numeric type t at p, as integer (is_int) or double. Returns 0
 * if t is not numeric. For integers, *neg tells a negative signed value. */
typedef struct {
    int kind;  /* 0 none, 1 unsigned, 2 signed, 3 float, 4 bool */
    uint64_t u;
    int64_t i;
    double f;
} scalar;

static scalar load_scalar(uint32_t t, const uint8_t *p) {
    scalar s = {0, 0, 0, 0.0};
    switch (t) {
    case SD_GGUF_UINT8: s.kind = 1; s.u = p[0]; break;
    case SD_GGUF_INT8: s.kind = 2; s.i = (int8_t)p[0]; break;
    case SD_GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); s.kind = 1; s.u = v; break; }
    case SD_GGUF_INT16: { int16_t v; memcpy(&v, p, 2); s.kind = 2; s.i = v; break; }
    case SD_GGUF_UINT32: { uint32_t v; memcpy(&v, p, 4); s.kind = 1; s.u = v; break; }
    case SD_GGUF_INT32: { int32_t v; memcpy(&v, p, 4); s.kind = 2; s.i = v; break; }
    case SD_GGUF_UINT64: { uint64_t v; memcpy(&v, p, 8); s.kind = 1; s.u = v; break; }
    case SD_GGUF_INT64: { int64_t v; memcpy(&v, p, 8); s.kind = 2; s.i = v; break; }
    case SD_GGUF_FLOAT32: { float v; memcpy(&v, p, 4); s.kind = 3; s.f = v; break; }
    case SD_GGUF_FLOAT64: { double v; memcpy(&v, p, 8); s.kind = 3; s.f = v; break; }
    case SD_GGUF_BOOL: s.kind = 4; s.u = p[0]; break;
    default: break;
    }
    return s;
}

static int32_t find_or_fail(const sd_gguf *g, const char *key, sd_error *err, const gguf_kv **kv) {
    if (!g || !key) return sd_fail(err, SMDIFF_E_INVAL, "gguf: NULL argument");
    int64_t i = sd_gguf_find_key(g, key);
    if (i < 0) return sd_fail(err, SMDIFF_E_NOT_FOUND, "gguf: key '%s' not found", key);
    *kv = &g->kv[i];
    return SMDIFF_OK;
}

int32_t sd_gguf_get_u64(const sd_gguf *g, const char *key, uint64_t *out, sd_error *err) {
    const gguf_kv *kv = NULL;
    int32_t rc = find_or_fail(g, key, err, &kv);
    if (rc) return rc;
    scalar s = load_scalar(kv->type, kv->val);
    if (s.kind == 1) { *out = s.u; return SMDIFF_OK; }
    if (s.kind == 2 && s.i >= 0) { *out = (uint64_t)s.i; return SMDIFF_OK; }
    return sd_fail(err, SMDIFF_E_FORMAT, "gguf: key '%s' has type %s, expected a non-negative integer", key,
                   gguf_type_name(kv->type));
}

int32_t sd_gguf_get_i64(const sd_gguf *g, const char *key, int64_t *out, sd_error *err) {
    const gguf_kv *kv = NULL;
    int32_t rc = find_or_fail(g, key, err, &kv);
    if (rc) return rc;
    scalar s = load_scalar(kv->type, kv->val);
    if (s.kind == 2) { *out = s.i; return SMDIFF_OK; }
    if (s.kind == 1 && s.u <= (uint64_t)INT64_MAX) { *out = (int64_t)s.u; return SMDIFF_OK; }
    return sd_fail(err, SMDIFF_E_FORMAT, "gguf: key '%s' has type %s, expected an integer that fits int64", key,
                   gguf_type_name(kv->type));
}

int32_t sd_gguf_get_f64(const sd_gguf *g, const char *key, double *out, sd_error *err) {
    const gguf_kv *kv = NULL;
    int32_t rc = find_or_fail(g, key, err, &kv);
    if (rc) return rc;
    scalar s = load_scalar(kv->type, kv->val);
    if (s.kind == 3) { *out = s.f; return SMDIFF_OK; }
    /* Some writers store e.g. rope.freq_base as an integer. */
    if (s.kind == 1) { *out = (double)s.u; return SMDIFF_OK; }
    if (s.kind == 2) { *out = (double)s.i; return SMDIFF_OK; }
    return sd_fail(err, SMDIFF_E_FORMAT, "gguf: key '%s' has type %s, expected a number", key, gguf_type_name(kv->type));
}

int32_t sd_gguf_get_bool(const sd_gguf *g, const char *key, int *out, sd_error *err) {
    const gguf_kv *kv = NULL;
    int32_t rc = find_or_fail(g, key, err, &kv);
    if (rc) return rc;
    if (kv->type != SD_GGUF_BOOL)
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: key '%s' has type %s, expected bool", key, gguf_type_name(kv->type));
    *out = kv->val[0] != 0;
    return SMDIFF_OK;
}

int32_t sd_gguf_get_str(const sd_gguf *g, const char *key, sd_gguf_str *out, sd_error *err) {
    const gguf_kv *kv = NULL;
    int32_t rc = find_or_fail(g, key, err, &kv);
    if (rc) return rc;
    if (kv->type != SD_GGUF_STRING)
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: key '%s' has type %s, expected string", key, gguf_type_name(kv->type));
    memcpy(&out->len, kv->val, 8);
    out->ptr = (const char *)kv->val + 8;
    return SMDIFF_OK;
}

int32_t sd_gguf_get_arr(const sd_gguf *g, const char *key, uint32_t *elem_type, uint64_t *count, sd_error *err) {
    const gguf_kv *kv = NULL;
    int32_t rc = find_or_fail(g, key, err, &kv);
    if (rc) return rc;
    if (kv->type != SD_GGUF_ARRAY)
        return sd_fail(err, SMDIFF_E_FORMAT, "gguf: key '%s' has type %s, expected array", key, gguf_type_name(kv->type));
    if (elem_type) *elem_type = kv->arr_type;
    if (count) *count = kv->arr_count;
    return SMDIFF_OK;
}

static int32_t arr_elem(const sd_gguf *g, const char *key, uint64_t i, const gguf_kv **kv) {
    if (!g || !key) return SMDIFF_E_INVAL;
    int64_t k = sd_gguf_find_key(g, key);
    if (k < 0) return SMDIFF_E_NOT_FOUND;
    *kv = &g->kv[k];
    if ((*kv)->type != SD_GGUF_ARRAY) return SMDIFF_E_FORMAT;
    if (i >= (*kv)->arr_count) return SMDIFF_E_RANGE;
    return SMDIFF_OK;
}

int32_t sd_gguf_arr_str(const sd_gguf *g, const char *key, uint64_t i, sd_gguf_str *out) {
    const gguf_kv *kv = NULL;
    int32_t rc = arr_elem(g, key, i, &kv);
    if (rc) return rc;
    if (kv->arr_type != SD_GGUF_STRING) return SMDIFF_E_FORMAT;
    const uint8_t *p = kv->val + kv->str_off[i];
    memcpy(&out->len, p, 8);
    out->ptr = (const char *)p + 8;
    return SMDIFF_OK;
}

int32_t sd_gguf_arr_i64(const sd_gguf *g, const char *key, uint64_t i, int64_t *out) {
    const gguf_kv *kv = NULL;
    int32_t rc = arr_elem(g, key, i, &kv);
    if (rc) return rc;
    uint32_t sz = sd_gguf_scalar_size(kv->arr_type);
    if (!sz) return SMDIFF_E_FORMAT;
    scalar s = load_scalar(kv->arr_type, kv->val + i * sz);
    if (s.kind == 2) { *out = s.i; return SMDIFF_OK; }
    if ((s.kind == 1 || s.kind == 4) && s.u <= (uint64_t)INT64_MAX) { *out = (int64_t)s.u; return SMDIFF_OK; }
    return SMDIFF_E_FORMAT;
}

int32_t sd_gguf_arr_f64(const sd_gguf *g, const char *key, uint64_t i, double *out) {
    const gguf_kv *kv = NULL;
    int32_t rc = arr_elem(g, key, i, &kv);
    if (rc) return rc;
    uint32_t sz = sd_gguf_scalar_size(kv->arr_type);
    if (!sz) return SMDIFF_E_FORMAT;
    scalar s = load_scalar(kv->arr_type, kv->val + i * sz);
    if (s.kind == 3) *out = s.f;
    else if (s.kind == 2) *out = (double)s.i;
    else if (s.kind == 1) *out = (double)s.u;
    else return SMDIFF_E_FORMAT;
    return SMDIFF_OK;
}

const void *sd_gguf_arr_data(const sd_gguf *g, const char *key) {
    int64_t k = sd_gguf_find_key(g, key);
    if (k < 0) return NULL;
    const gguf_kv *kv = &g->kv[k];
    if (kv->type != SD_GGUF_ARRAY || !sd_gguf_scalar_size(kv->arr_type)) return NULL;
    return kv->val;
}

/* Appends to a bounded text buffer, counting what it would need. */
typedef struct {
    char *buf;
    size_t size, len;
} textbuf;

static void tb_put(textbuf *tb, const char *s, size_t n) {
    if (tb->len < tb->size) {
        size_t room = tb->size - tb->len;
        memcpy(tb->buf + tb->len, s, n < room ? n : room);
    }
    tb->len += n;
}

static void tb_printf(textbuf *tb, const char *fmt, ...) SD_PRINTF(2, 3);
static void tb_printf(textbuf *tb, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) tb_put(tb, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void tb_scalar(textbuf *tb, uint32_t t, const uint8_t *p) {
    scalar s = load_scalar(t, p);
    switch (s.kind) {
    case 1: tb_printf(tb, "%" PRIu64, s.u); break;
    case 2: tb_printf(tb, "%" PRId64, s.i); break;
    case 3: tb_printf(tb, "%.9g", s.f); break;
    case 4: tb_put(tb, s.u ? "true" : "false", s.u ? 4 : 5); break;
    default: break;
    }
}

#define VALUE_TEXT_MAX_ELEMS 8

int32_t sd_gguf_value_text(const sd_gguf *g, int64_t kv_index, char *buf, size_t size, size_t *needed) {
    if (!g || kv_index < 0 || kv_index >= g->n_kv || (!buf && size)) return SMDIFF_E_INVAL;
    const gguf_kv *kv = &g->kv[kv_index];
    textbuf tb = {buf, size, 0};
    if (kv->type == SD_GGUF_STRING) {
        uint64_t n;
        memcpy(&n, kv->val, 8);
        tb_put(&tb, (const char *)kv->val + 8, (size_t)n);
    } else if (kv->type == SD_GGUF_ARRAY) {
        tb_put(&tb, "[", 1);
        uint64_t shown = kv->arr_count < VALUE_TEXT_MAX_ELEMS ? kv->arr_count : VALUE_TEXT_MAX_ELEMS;
        for (uint64_t i = 0; i < shown; i++) {
            if (i) tb_put(&tb, ", ", 2);
            if (kv->arr_type == SD_GGUF_STRING) {
                const uint8_t *p = kv->val + kv->str_off[i];
                uint64_t n;
                memcpy(&n, p, 8);
                tb_put(&tb, "\"", 1);
                tb_put(&tb, (const char *)p + 8, (size_t)n);
                tb_put(&tb, "\"", 1);
            } else {
                tb_scalar(&tb, kv->arr_type, kv->val + i * sd_gguf_scalar_size(kv->arr_type));
            }
        }
        if (shown < kv->arr_count) tb_printf(&tb, ", ... (%" PRIu64 " items)", kv->arr_count);
        tb_put(&tb, "]", 1);
    } else {
        tb_scalar(&tb, kv->type, kv->val);
    }
    if (needed) *needed = tb.len + 1;
    if (tb.len + 1 > size) {
        if (size) buf[size - 1] = '\0';
        return SMDIFF_E_BUFFER;
    }
    buf[tb.len] = '\0';
    return SMDIFF_OK;
}
