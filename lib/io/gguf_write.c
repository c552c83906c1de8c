/* gguf_write.c -- GGUF v3 writer: metadata in insertion order, tensors
 * aligned to general.alignment, written atomically (io/file.h: temporary
 * file in the destination folder, fsync, rename, fsync of the folder) so a
 * crash or a full disk never leaves a half-written model under the final
 * name, and closed by the smdiff.checksum key (gguf.h) that readers check.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/checksum.h"
#include "io/file.h"
#include "io/gguf.h"

#define W_DEFAULT_ALIGNMENT 32u
#define W_MAX_NAME_LEN 255u
#define W_BUF_BYTES (1u << 20)

typedef struct {
    char *key;
    uint32_t type;
    uint8_t *blob;   /* value exactly as serialised after the type field */
    size_t blob_len;
} wkv;

typedef struct {
    char *name;
    uint32_t n_dims;
    uint64_t ne[4];
    uint32_t type;
    uint64_t n_bytes;
    const void *data;  /* borrowed or == owned */
    void *owned;
    sd_gguf_fill_fn fill;
    void *fill_user;
} wtensor;

struct sd_gguf_writer {
    wkv *kv;
    int64_t n_kv, cap_kv;
    wtensor *t;
    int64_t n_t, cap_t;
    sd_gguf_progress_fn progress;
    void *progress_user;
    sd_error err;
};

int32_t sd_gguf_writer_create(sd_gguf_writer **out, sd_error *err) {
    if (!out) return sd_fail(err, SMDIFF_E_INVAL, "gguf writer: NULL argument");
    *out = sd_calloc(1, sizeof **out);
    if (!*out) return sd_fail(err, SMDIFF_E_NOMEM, "gguf writer: no memory");
    return SMDIFF_OK;
}

void sd_gguf_writer_free(sd_gguf_writer *w) {
    if (!w) return;
    for (int64_t i = 0; i < w->n_kv; i++) {
        sd_free(w->kv[i].key);
        sd_free(w->kv[i].blob);
    }
    for (int64_t i = 0; i < w->n_t; i++) {
        sd_free(w->t[i].name);
        sd_free(w->t[i].owned);
    }
    sd_free(w->kv);
    sd_free(w->t);
    sd_free(w);
}

const sd_error *sd_gguf_writer_error(const sd_gguf_writer *w) { return &w->err; }

void sd_gguf_writer_set_progress(sd_gguf_writer *w, sd_gguf_progress_fn fn, void *user) {
    w->progress = fn;
    w->progress_user = user;
}

/* Store (key, type, blob), taking ownership of blob; replaces an existing key
 * in place so insertion order is that of the first set. */
static int32_t put_kv(sd_gguf_writer *w, const char *key, uint32_t type, uint8_t *blob, size_t len) {
    if (!key || !key[0] || strlen(key) > 65535) {
        sd_free(blob);
        return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: invalid key");
    }
    for (int64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            sd_free(w->kv[i].blob);
            w->kv[i].type = type;
            w->kv[i].blob = blob;
            w->kv[i].blob_len = len;
            return SMDIFF_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        int64_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        wkv *nk = sd_realloc(w->kv, (size_t)cap * sizeof *nk);
        if (!nk) { sd_free(blob); return sd_fail(&w->err, SMDIFF_E_NOMEM, "gguf writer: no memory"); }
        w->kv = nk;
        w->cap_kv = cap;
    }
    char *k = sd_strdup(key);
    if (!k) { sd_free(blob); return sd_fail(&w->err, SMDIFF_E_NOMEM, "gguf writer: no memory"); }
    w->kv[w->n_kv++] = (wkv){k, type, blob, len};
    return SMDIFF_OK;
}

int32_t sd_gguf_set_scalar(sd_gguf_writer *w, const char *key, uint32_t type, const void *value) {
    if (!w) return SMDIFF_E_INVAL;
    uint32_t sz = sd_gguf_scalar_size(type);
    if (!sz || !value) return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: key '%s': bad scalar type %u", key ? key : "", type);
    if (type == SD_GGUF_BOOL && *(const uint8_t *)value > 1)
        return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: key '%s': bool must be 0 or 1", key ? key : "");
    uint8_t *b = sd_malloc(sz);
    if (!b) return sd_fail(&w->err, SMDIFF_E_NOMEM, "gguf writer: no memory");
    memcpy(b, value, sz);
    return put_kv(w, key, type, b, sz);
}

int32_t sd_gguf_set_u32(sd_gguf_writer *w, const char *key, uint32_t v) { return sd_gguf_set_scalar(w, key, SD_GGUF_UINT32, &v); }
int32_t sd_gguf_set_i32(sd_gguf_writer *w, const char *key, int32_t v) { return sd_gguf_set_scalar(w, key, SD_GGUF_INT32, &v); }
int32_t sd_gguf_set_u64(sd_gguf_writer *w, const char *key, uint64_t v) { return sd_gguf_set_scalar(w, key, SD_GGUF_UINT64, &v); }
int32_t sd_gguf_set_f32(sd_gguf_writer *w, const char *key, float v) { return sd_gguf_set_scalar(w, key, SD_GGUF_FLOAT32, &v); }
int32_t sd_gguf_set_bool(sd_gguf_writer *w, const char *key, int v) {
    uint8_t b = v ? 1 : 0;
    return sd_gguf_set_scalar(w, key, SD_GGUF_BOOL, &b);
}

int32_t sd_gguf_set_strn(sd_gguf_writer *w, const char *key, const char *v, uint64_t n) {
    if (!w) return SMDIFF_E_INVAL;
    if (!v && n) return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: key '%s': NULL string", key ? key : "");
    uint8_t *b = sd_malloc((size_t)n + 8);
    if (!b) return sd_fail(&w->err, SMDIFF_E_NOMEM, "gguf writer: no memory");
    memcpy(b, &n, 8);
    if (n) memcpy(b + 8, v, (size_t)n);
    return put_kv(w, key, SD_GGUF_STRING, b, (size_t)n + 8);
}

int32_t sd_gguf_set_str(sd_gguf_writer *w, const char *key, const char *v) {
    if (!w) return SMDIFF_E_INVAL;
    if (!v) return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: key '%s': NULL string", key ? key : "");
    return sd_gguf_set_strn(w, key, v, strlen(v));
}

int32_t sd_gguf_set_arr(sd_gguf_writer *w, const char *key, uint32_t elem_type, const void *v, uint64_t n) {
    if (!w) return SMDIFF_E_INVAL;
    uint32_t sz = sd_gguf_scalar_size(elem_type);
    size_t bytes;
    if (!sz || (!v && n) || sd_mul_size((size_t)n, sz, &bytes) || bytes > SIZE_MAX - 12)
        return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: key '%s': bad array (type %u, %" PRIu64 " elements)",
                       key ? key : "", elem_type, n);
    if (elem_type == SD_GGUF_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (((const uint8_t *)v)[i] > 1)
                return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: key '%s': bool element not 0 or 1", key ? key : "");
    uint8_t *b = sd_malloc(bytes + 12);
    if (!b) return sd_fail(&w->err, SMDIFF_E_NOMEM, "gguf writer: no memory");
    memcpy(b, &elem_type, 4);
    memcpy(b + 4, &n, 8);
    if (bytes) memcpy(b + 12, v, bytes);
    return put_kv(w, key, SD_GGUF_ARRAY, b, bytes + 12);
}

int32_t sd_gguf_set_arr_i32(sd_gguf_writer *w, const char *key, const int32_t *v, uint64_t n) {
    return sd_gguf_set_arr(w, key, SD_GGUF_INT32, v, n);
}

int32_t sd_gguf_set_arr_f32(sd_gguf_writer *w, const char *key, const float *v, uint64_t n) {
    return sd_gguf_set_arr(w, key, SD_GGUF_FLOAT32, v, n);
}

int32_t sd_gguf_set_arr_strn(sd_gguf_writer *w, const char *key, const char *const *v, const uint64_t *lens,
                             uint64_t n) {
    if (!w) return SMDIFF_E_INVAL;
    if (!v && n) return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: key '%s': NULL array", key ? key : "");
    size_t bytes = 12;
    for (uint64_t i = 0; i < n; i++) {
        if (!v[i]) return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: key '%s': NULL element %" PRIu64, key ? key : "", i);
        uint64_t len = lens ? lens[i] : strlen(v[i]);
        if (len > SIZE_MAX - 8 - bytes) return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: key '%s': array too large", key ? key : "");
        bytes += 8 + (size_t)len;
    }
    uint8_t *b = sd_malloc(bytes);
    if (!b) return sd_fail(&w->err, SMDIFF_E_NOMEM, "gguf writer: no memory");
    uint32_t et = SD_GGUF_STRING;
    memcpy(b, &et, 4);
    memcpy(b + 4, &n, 8);
    size_t pos = 12;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = lens ? lens[i] : strlen(v[i]);
        memcpy(b + pos, &len, 8);
        if (len) memcpy(b + pos + 8, v[i], (size_t)len);
        pos += 8 + (size_t)len;
    }
    return put_kv(w, key, SD_GGUF_ARRAY, b, bytes);
}

int32_t sd_gguf_set_arr_str(sd_gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    return sd_gguf_set_arr_strn(w, key, v, NULL, n);
}

static int32_t add_tensor_common(sd_gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne,
                                 uint32_t type, wtensor *t) {
    if (!name || !name[0] || strlen(name) > W_MAX_NAME_LEN)
        return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: tensor name empty or longer than %u bytes", W_MAX_NAME_LEN);
    if (n_dims < 1 || n_dims > 4 || !ne)
        return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: tensor '%s': n_dims %u not in 1..4", name, n_dims);
    uint32_t block = sd_ggml_block_size(type);
    if (!block) return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: tensor '%s': unknown type %u", name, type);
    uint64_t nel = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] == 0 || nel > (uint64_t)INT64_MAX / ne[d])
            return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: tensor '%s': bad dimension %u", name, d);
        nel *= ne[d];
    }
    if (ne[0] % block)
        return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: tensor '%s': row length %" PRIu64 " not a multiple of %u",
                       name, ne[0], block);
    for (int64_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: tensor '%s' added twice", name);
    memset(t, 0, sizeof *t);
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < 4; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->type = type;
    t->n_bytes = sd_ggml_type_size(type, nel);
    if (!t->n_bytes) return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: tensor '%s': size overflows", name);
    if (w->n_t == w->cap_t) {
        int64_t cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *nt = sd_realloc(w->t, (size_t)cap * sizeof *nt);
        if (!nt) return sd_fail(&w->err, SMDIFF_E_NOMEM, "gguf writer: no memory");
        w->t = nt;
        w->cap_t = cap;
    }
    t->name = sd_strdup(name);
    if (!t->name) return sd_fail(&w->err, SMDIFF_E_NOMEM, "gguf writer: no memory");
    return SMDIFF_OK;
}

int32_t sd_gguf_add_tensor(sd_gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                           const void *data, int borrow) {
    if (!w) return SMDIFF_E_INVAL;
    if (!data) return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: tensor '%s': NULL data", name ? name : "");
    wtensor t;
    int32_t rc = add_tensor_common(w, name, n_dims, ne, type, &t);
    if (rc) return rc;
    if (borrow) {
        t.data = data;
    } else {
        if (t.n_bytes > SIZE_MAX || !(t.owned = sd_malloc((size_t)t.n_bytes))) {
            sd_free(t.name);
            return sd_fail(&w->err, SMDIFF_E_NOMEM, "gguf writer: tensor '%s': no memory for %" PRIu64 " bytes", name,
                           t.n_bytes);
        }
        memcpy(t.owned, data, (size_t)t.n_bytes);
        t.data = t.owned;
    }
    w->t[w->n_t++] = t;
    return SMDIFF_OK;
}

int32_t sd_gguf_add_tensor_fill(sd_gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne,
                                uint32_t type, sd_gguf_fill_fn fill, void *user) {
    if (!w) return SMDIFF_E_INVAL;
    if (!fill) return sd_fail(&w->err, SMDIFF_E_INVAL, "gguf writer: tensor '%s': NULL fill function", name ? name : "");
    wtensor t;
    int32_t rc = add_tensor_common(w, name, n_dims, ne, type, &t);
    if (rc) return rc;
    t.fill = fill;
    t.fill_user = user;
    w->t[w->n_t++] = t;
    return SMDIFF_OK;
}

/* ---------------------------------------------------------- file output */

typedef struct {
    sd_atomic_file af;
    uint8_t *buf;
    size_t len;
    uint64_t written;
    sd_hash hash;      /* of every byte written, the checksum's value as zeros */
    sd_error *err;
} wfile;

static int wf_flush(wfile *f) {
    sd_hash_update(&f->hash, f->buf, f->len);
    int32_t rc = sd_atomic_write(&f->af, f->buf, f->len, f->err);
    f->len = 0;
    return rc ? -1 : 0;
}

static int wf_put(wfile *f, const void *p, size_t n) {
    const uint8_t *s = p;
    f->written += n;
    while (n) {
        size_t room = W_BUF_BYTES - f->len;
        size_t k = n < room ? n : room;
        memcpy(f->buf + f->len, s, k);
        f->len += k;
        s += k;
        n -= k;
        if (f->len == W_BUF_BYTES && wf_flush(f)) return -1;
    }
    return 0;
}

static int wf_pad(wfile *f, uint64_t align) {
    static const uint8_t zeros[64] = {0};
    while (f->written % align) {
        uint64_t k = align - f->written % align;
        if (k > sizeof zeros) k = sizeof zeros;
        if (wf_put(f, zeros, (size_t)k)) return -1;
    }
    return 0;
}

static uint64_t writer_alignment(const sd_gguf_writer *w, int *bad) {
    *bad = 0;
    for (int64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") == 0) {
            uint32_t a;
            if (w->kv[i].type != SD_GGUF_UINT32) { *bad = 1; return 0; }
            memcpy(&a, w->kv[i].blob, 4);
            if (a == 0 || (a & (a - 1))) { *bad = 1; return 0; }
            return a;
        }
    }
    return W_DEFAULT_ALIGNMENT;
}

static int is_checksum_key(const char *k) {
    return !strcmp(k, SD_GGUF_CHECKSUM_KEY) || !strcmp(k, SD_GGUF_CHECKSUM_ALGO_KEY);
}

/* Everything but the checksum's value, which goes in last (see
 * sd_gguf_write); *ck_off receives its offset. The writer's own
 * checksum keys (copied from a source file, say) are never written: the
 * file gets its own, as the last two keys. Failures are recorded in f->err. */
static int32_t write_all(sd_gguf_writer *w, wfile *f, uint64_t align, uint64_t *ck_off) {
    uint32_t version = 3;
    uint64_t n_t = (uint64_t)w->n_t, n_kv = 2;
    for (int64_t i = 0; i < w->n_kv; i++) n_kv += !is_checksum_key(w->kv[i].key);
    int bad = wf_put(f, "GGUF", 4) || wf_put(f, &version, 4) || wf_put(f, &n_t, 8) || wf_put(f, &n_kv, 8);
    for (int64_t i = 0; i < w->n_kv && !bad; i++) {
        if (is_checksum_key(w->kv[i].key)) continue;
        uint64_t kl = strlen(w->kv[i].key);
        bad = wf_put(f, &kl, 8) || wf_put(f, w->kv[i].key, (size_t)kl) || wf_put(f, &w->kv[i].type, 4) ||
              wf_put(f, w->kv[i].blob, w->kv[i].blob_len);
    }
    uint64_t al = strlen(SD_GGUF_CHECKSUM_ALGO_KEY), av = strlen(SD_GGUF_CHECKSUM_ALGO);
    uint64_t kl = strlen(SD_GGUF_CHECKSUM_KEY), zero = 0;
    uint32_t st = SD_GGUF_STRING, ct = SD_GGUF_UINT64;
    if (!bad)
        bad = wf_put(f, &al, 8) || wf_put(f, SD_GGUF_CHECKSUM_ALGO_KEY, (size_t)al) || wf_put(f, &st, 4) ||
              wf_put(f, &av, 8) || wf_put(f, SD_GGUF_CHECKSUM_ALGO, (size_t)av);
    if (!bad) bad = wf_put(f, &kl, 8) || wf_put(f, SD_GGUF_CHECKSUM_KEY, (size_t)kl) || wf_put(f, &ct, 4);
    *ck_off = f->written;
    if (!bad) bad = wf_put(f, &zero, 8);
    uint64_t offset = 0, total = 0;
    for (int64_t i = 0; i < w->n_t && !bad; i++) {
        const wtensor *t = &w->t[i];
        uint64_t nl = strlen(t->name);
        bad = wf_put(f, &nl, 8) || wf_put(f, t->name, (size_t)nl) || wf_put(f, &t->n_dims, 4) ||
              wf_put(f, t->ne, 8u * t->n_dims) || wf_put(f, &t->type, 4) || wf_put(f, &offset, 8);
        offset += (t->n_bytes + align - 1) / align * align;
        total += t->n_bytes;
    }
    if (!bad && w->n_t) bad = wf_pad(f, align);
    if (bad) return SMDIFF_E_IO;
    uint64_t done = 0;
    for (int64_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        if (t->fill) {
            /* Produced on demand so a converter holds one tensor at a time. */
            void *tmp = t->n_bytes <= SIZE_MAX ? sd_malloc((size_t)t->n_bytes) : NULL;
            if (!tmp) return sd_fail(f->err, SMDIFF_E_NOMEM, "gguf writer: tensor '%s': no memory for %" PRIu64 " bytes",
                                     t->name, t->n_bytes);
            sd_error ferr;
            sd_error_clear(&ferr);
            int32_t rc = t->fill(t->fill_user, t->name, tmp, t->n_bytes, &ferr);
            if (rc) {
                sd_free(tmp);
                if (ferr.code) return sd_error_forward(f->err, &ferr);
                return sd_fail(f->err, rc, "gguf writer: tensor '%s': producing data failed", t->name);
            }
            bad = wf_put(f, tmp, (size_t)t->n_bytes);
            sd_free(tmp);
        } else {
            bad = wf_put(f, t->data, (size_t)t->n_bytes);
        }
        if (!bad) bad = wf_pad(f, align);
        if (bad) return SMDIFF_E_IO;
        done += t->n_bytes;
        if (w->progress) w->progress(w->progress_user, done, total);
    }
    return wf_flush(f) ? SMDIFF_E_IO : SMDIFF_OK;
}

int32_t sd_gguf_write(sd_gguf_writer *w, const char *path, sd_error *err) {
    if (!w || !path) return sd_fail(err, SMDIFF_E_INVAL, "gguf writer: NULL argument");
    int bad_align;
    uint64_t align = writer_alignment(w, &bad_align);
    if (bad_align)
        return sd_fail(err, SMDIFF_E_INVAL, "gguf writer: general.alignment must be a uint32 power of two");
    wfile f = {.buf = sd_malloc(W_BUF_BYTES), .err = err};
    if (!f.buf) return sd_fail(err, SMDIFF_E_NOMEM, "gguf writer: no memory");
    int32_t rc = sd_atomic_open(&f.af, path, "gguf writer", err);
    if (rc) {
        sd_free(f.buf);
        return rc;
    }
    sd_error_clear(&w->err);
    sd_hash_reset(&f.hash);
    uint64_t ck_off = 0;
    rc = write_all(w, &f, align, &ck_off);
    if (!rc) {
        /* the hash of the whole file with the checksum's 8 bytes as zeros */
        uint64_t digest = sd_hash_digest(&f.hash);
        rc = sd_atomic_pwrite(&f.af, &digest, 8, ck_off, err);
    }
    sd_free(f.buf);
    if (!rc) return sd_atomic_commit(&f.af, err);
    sd_atomic_abort(&f.af);
    w->err = *(err ? err : sd_tls_error());
    return rc;
}

/* ------------------------------------------------------------ copying */

int32_t sd_gguf_copy_kv(sd_gguf_writer *w, const sd_gguf *g, int64_t i, sd_error *err) {
    sd_gguf_str ks = sd_gguf_key(g, i);
    char key[256];
    if (ks.len >= sizeof key) return sd_fail(err, SMDIFF_E_FORMAT, "gguf: metadata key too long to copy");
    memcpy(key, ks.ptr, ks.len);
    key[ks.len] = 0;
    uint32_t type = sd_gguf_kv_type(g, i);
    int32_t rc = SMDIFF_OK;
    if (type == SD_GGUF_STRING) {
        sd_gguf_str s;
        rc = sd_gguf_get_str(g, key, &s, err);
        if (!rc) rc = sd_gguf_set_strn(w, key, s.ptr, s.len);
    } else if (type == SD_GGUF_ARRAY) {
        uint32_t et;
        uint64_t n;
        rc = sd_gguf_get_arr(g, key, &et, &n, err);
        if (rc) return rc;
        if (et == SD_GGUF_STRING) {
            const char **v = sd_malloc((n ? n : 1) * sizeof *v);
            uint64_t *lens = sd_malloc((n ? n : 1) * sizeof *lens);
            if (!v || !lens) rc = sd_fail(err, SMDIFF_E_NOMEM, "gguf: out of memory copying %s", key);
            for (uint64_t j = 0; !rc && j < n; j++) {
                sd_gguf_str s;
                rc = sd_gguf_arr_str(g, key, j, &s);
                v[j] = s.ptr;
                lens[j] = s.len;
            }
            if (!rc) rc = sd_gguf_set_arr_strn(w, key, v, lens, n);
            sd_free(v);
            sd_free(lens);
        } else {
            const void *data = sd_gguf_arr_data(g, key);
            rc = data ? sd_gguf_set_arr(w, key, et, data, n)
                      : sd_fail(err, SMDIFF_E_FORMAT, "gguf: cannot copy array %s", key);
        }
    } else {
        /* fixed-size scalar: read at full width, write back at its own width */
        union {
            uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
            float f32; uint64_t u64; int64_t i64; double f64;
        } v;
        memset(&v, 0, sizeof v);
        int64_t iv = 0;
        uint64_t uv = 0;
        double dv = 0;
        int bv = 0;
        switch (type) {
        case SD_GGUF_FLOAT32: rc = sd_gguf_get_f64(g, key, &dv, err); v.f32 = (float)dv; break;
        case SD_GGUF_FLOAT64: rc = sd_gguf_get_f64(g, key, &dv, err); v.f64 = dv; break;
        case SD_GGUF_BOOL: rc = sd_gguf_get_bool(g, key, &bv, err); v.u8 = (uint8_t)(bv != 0); break;
        case SD_GGUF_UINT64: rc = sd_gguf_get_u64(g, key, &uv, err); v.u64 = uv; break;
        case SD_GGUF_UINT8: case SD_GGUF_UINT16: case SD_GGUF_UINT32:
            rc = sd_gguf_get_u64(g, key, &uv, err);
            if (type == SD_GGUF_UINT8) v.u8 = (uint8_t)uv;
            else if (type == SD_GGUF_UINT16) v.u16 = (uint16_t)uv;
            else v.u32 = (uint32_t)uv;
            break;
        default:
            rc = sd_gguf_get_i64(g, key, &iv, err);
            if (type == SD_GGUF_INT8) v.i8 = (int8_t)iv;
            else if (type == SD_GGUF_INT16) v.i16 = (int16_t)iv;
            else if (type == SD_GGUF_INT32) v.i32 = (int32_t)iv;
            else v.i64 = iv;
            break;
        }
        if (!rc) rc = sd_gguf_set_scalar(w, key, type, &v);
    }
    if (rc && !err->code) sd_error_forward(err, sd_gguf_writer_error(w));
    return rc;
}
