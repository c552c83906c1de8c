/* safetensors.c -- see safetensors.h. The JSON header is parsed with
 * Jansson; every number from it is range-checked before use, and the data
 * area is only ever addressed through validated [begin, end) offsets. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "io/file.h"
#include "io/gguf.h"
#include "io/json.h"
#include "io/safetensors.h"

#define ST_MAX_HEADER (100u << 20) /* the format's own limit: 100 MB */

typedef struct {
    void *map;       /* mmap base or NULL (memory image) */
    size_t size;
    char *name;      /* file name for messages and sd_st_tensor.file */
} st_file;

struct sd_st {
    sd_st_tensor *t;
    int64_t n, cap;
    st_file *files;
    int64_t n_files;
};

static const struct {
    const char *name;
    uint32_t size;
} k_dtypes[SD_ST_N_DTYPES] = {
    [SD_ST_BOOL] = {"BOOL", 1},       [SD_ST_U8] = {"U8", 1},   [SD_ST_I8] = {"I8", 1},
    [SD_ST_F8_E5M2] = {"F8_E5M2", 1}, [SD_ST_F8_E4M3] = {"F8_E4M3", 1},
    [SD_ST_I16] = {"I16", 2},         [SD_ST_U16] = {"U16", 2}, [SD_ST_F16] = {"F16", 2},
    [SD_ST_BF16] = {"BF16", 2},       [SD_ST_I32] = {"I32", 4}, [SD_ST_U32] = {"U32", 4},
    [SD_ST_F32] = {"F32", 4},         [SD_ST_F64] = {"F64", 8}, [SD_ST_I64] = {"I64", 8},
    [SD_ST_U64] = {"U64", 8},
};

uint32_t sd_st_dtype_size(uint32_t dtype) { return dtype < SD_ST_N_DTYPES ? k_dtypes[dtype].size : 0; }
const char *sd_st_dtype_name(uint32_t dtype) { return dtype < SD_ST_N_DTYPES ? k_dtypes[dtype].name : "unknown"; }

void sd_st_close(sd_st *st) {
    if (!st) return;
    for (int64_t i = 0; i < st->n; i++) sd_free((void *)st->t[i].name);
    for (int64_t i = 0; i < st->n_files; i++) {
        if (st->files[i].map) munmap(st->files[i].map, st->files[i].size);
        sd_free(st->files[i].name);
    }
    sd_free(st->t);
    sd_free(st->files);
    sd_free(st);
}

int64_t sd_st_n_tensors(const sd_st *st) { return st ? st->n : 0; }

const sd_st_tensor *sd_st_tensor_at(const sd_st *st, int64_t i) {
    if (!st || i < 0 || i >= st->n) return NULL;
    return &st->t[i];
}

const sd_st_tensor *sd_st_find(const sd_st *st, const char *name) {
    if (!st || !name) return NULL;
    for (int64_t i = 0; i < st->n; i++)
        if (strcmp(st->t[i].name, name) == 0) return &st->t[i];
    return NULL;
}

/* Non-negative JSON integer, or -1. */
static int64_t json_u(const json_t *v) {
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    return x < 0 ? -1 : (int64_t)x;
}

/* Validate one image and append its tensors; fname names it in messages. */
static int32_t parse_image(sd_st *st, const uint8_t *base, size_t size, const char *fname, sd_error *err) {
    if (size < 8)
        return sd_fail(err, SMDIFF_E_FORMAT, "safetensors '%s': file of %zu bytes has no 8-byte header length", fname,
                       size);
    uint64_t hlen;
    memcpy(&hlen, base, 8);
    if (hlen > ST_MAX_HEADER)
        return sd_fail(err, SMDIFF_E_FORMAT, "safetensors '%s': header length %" PRIu64 " exceeds the 100 MB limit", fname,
                       hlen);
    if (hlen < 2 || hlen > size - 8)
        return sd_fail(err, SMDIFF_E_FORMAT,
                       "safetensors '%s': header length %" PRIu64 " does not fit in the file (%zu bytes)", fname, hlen,
                       size);
    const uint8_t *data = base + 8 + hlen;
    uint64_t data_size = size - 8 - hlen;
    char what[300];
    snprintf(what, sizeof what, "safetensors '%s' header", fname);
    json_t *root;
    int32_t rc = sd_json_parse((const char *)base + 8, (size_t)hlen, what, JSON_REJECT_DUPLICATES, &root, err);
    if (rc) return rc;
    if (!json_is_object(root)) {
        rc = sd_fail(err, SMDIFF_E_FORMAT, "safetensors '%s': header is not a JSON object", fname);
        goto done;
    }
    size_t n_entries = json_object_size(root);
    if (st->n + (int64_t)n_entries > st->cap) {
        int64_t cap = st->n + (int64_t)n_entries + 16;
        sd_st_tensor *nt = sd_realloc(st->t, (size_t)cap * sizeof *nt);
        if (!nt) {
            rc = sd_fail(err, SMDIFF_E_NOMEM, "safetensors '%s': no memory", fname);
            goto done;
        }
        st->t = nt;
        st->cap = cap;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) {
                rc = sd_fail(err, SMDIFF_E_FORMAT, "safetensors '%s': __metadata__ is not an object", fname);
                goto done;
            }
            continue;
        }
        if (!json_is_object(val)) {
            rc = sd_fail(err, SMDIFF_E_FORMAT, "safetensors '%s': tensor '%.200s' is not an object", fname, key);
            goto done;
        }
        sd_st_tensor t;
        memset(&t, 0, sizeof t);
        const json_t *jd = json_object_get(val, "dtype");
        const json_t *js = json_object_get(val, "shape");
        const json_t *jo = json_object_get(val, "data_offsets");
        if (!json_is_string(jd)) {
            rc = sd_fail(err, SMDIFF_E_FORMAT, "safetensors '%s': tensor '%.200s': dtype missing or not a string", fname, key);
            goto done;
        }
        t.dtype = SD_ST_N_DTYPES;
        for (uint32_t d = 0; d < SD_ST_N_DTYPES; d++)
            if (strcmp(json_string_value(jd), k_dtypes[d].name) == 0) t.dtype = d;
        if (t.dtype == SD_ST_N_DTYPES) {
            rc = sd_fail(err, SMDIFF_E_FORMAT, "safetensors '%s': tensor '%.200s': unknown dtype '%.40s'", fname, key,
                         json_string_value(jd));
            goto done;
        }
        if (!json_is_array(js) || json_array_size(js) > SD_ST_MAX_DIMS) {
            rc = sd_fail(err, SMDIFF_E_FORMAT, "safetensors '%s': tensor '%.200s': shape missing or over %d dims", fname, key,
                         SD_ST_MAX_DIMS);
            goto done;
        }
        t.n_dims = (uint32_t)json_array_size(js);
        uint64_t nel = 1;
        for (uint32_t d = 0; d < t.n_dims; d++) {
            int64_t v = json_u(json_array_get(js, d));
            if (v < 0) {
                rc = sd_fail(err, SMDIFF_E_FORMAT, "safetensors '%s': tensor '%.200s': shape[%u] is not a non-negative integer",
                             fname, key, d);
                goto done;
            }
            t.shape[d] = (uint64_t)v;
            if (v && nel > UINT64_MAX / (uint64_t)v) {
                rc = sd_fail(err, SMDIFF_E_FORMAT, "safetensors '%s': tensor '%.200s': shape product overflows", fname, key);
                goto done;
            }
            nel *= (uint64_t)v;
        }
        t.n_elements = nel;
        int64_t b = -1, e = -1;
        if (json_is_array(jo) && json_array_size(jo) == 2) {
            b = json_u(json_array_get(jo, 0));
            e = json_u(json_array_get(jo, 1));
        }
        if (b < 0 || e < 0 || b > e) {
            rc = sd_fail(err, SMDIFF_E_FORMAT, "safetensors '%s': tensor '%.200s': data_offsets missing or not [begin <= end]",
                         fname, key);
            goto done;
        }
        if ((uint64_t)e > data_size) {
            rc = sd_fail(err, SMDIFF_E_FORMAT,
                         "safetensors '%s': tensor '%.200s': data_offsets [%" PRId64 ", %" PRId64
                         "] past the end of the data area (%" PRIu64 " bytes)",
                         fname, key, b, e, data_size);
            goto done;
        }
        uint32_t es = k_dtypes[t.dtype].size;
        if (nel > UINT64_MAX / es || nel * es != (uint64_t)(e - b)) {
            rc = sd_fail(err, SMDIFF_E_FORMAT,
                         "safetensors '%s': tensor '%.200s': %" PRIu64 " bytes in data_offsets, shape x %s needs %" PRIu64 "%s",
                         fname, key, (uint64_t)(e - b), k_dtypes[t.dtype].name, nel * es,
                         nel > UINT64_MAX / es ? " (overflow)" : "");
            goto done;
        }
        t.n_bytes = (uint64_t)(e - b);
        t.data = data + b;
        t.file = fname;
        for (int64_t i = 0; i < st->n; i++)
            if (strcmp(st->t[i].name, key) == 0) {
                rc = sd_fail(err, SMDIFF_E_FORMAT, "safetensors '%s': tensor '%.200s' appears in two shards", fname, key);
                goto done;
            }
        t.name = sd_strdup(key);
        if (!t.name) {
            rc = sd_fail(err, SMDIFF_E_NOMEM, "safetensors: no memory");
            goto done;
        }
        st->t[st->n++] = t;
    }
done:
    json_decref(root);
    return rc;
}

static int32_t add_file(sd_st *st, void *map, size_t size, const char *name, st_file **out, sd_error *err) {
    st_file *nf = sd_realloc(st->files, (size_t)(st->n_files + 1) * sizeof *nf);
    if (!nf) return sd_fail(err, SMDIFF_E_NOMEM, "safetensors: no memory");
    st->files = nf;
    st_file *f = &st->files[st->n_files];
    f->map = map;
    f->size = size;
    f->name = sd_strdup(name);
    if (!f->name) return sd_fail(err, SMDIFF_E_NOMEM, "safetensors: no memory");
    st->n_files++;
    *out = f;
    return SMDIFF_OK;
}

int32_t sd_st_open_memory(const void *buf, size_t size, sd_st **out, sd_error *err) {
    if (!out || (!buf && size)) return sd_fail(err, SMDIFF_E_INVAL, "safetensors: NULL argument");
    *out = NULL;
    sd_st *st = sd_calloc(1, sizeof *st);
    if (!st) return sd_fail(err, SMDIFF_E_NOMEM, "safetensors: no memory");
    st_file *f;
    int32_t rc = add_file(st, NULL, size, "<memory>", &f, err);
    if (!rc) rc = parse_image(st, buf, size, f->name, err);
    if (rc) {
        sd_st_close(st);
        return rc;
    }
    *out = st;
    return SMDIFF_OK;
}

/* Map path and parse it into st; name is what tensors record as their file. */
static int32_t open_into(sd_st *st, const char *path, const char *name, sd_error *err) {
    int fd;
    uint64_t fsize;
    int32_t orc = sd_file_open_input(path, "safetensors", &fd, &fsize, err);
    if (orc) return orc;
    if (fsize > SIZE_MAX) {
        close(fd);
        return sd_fail(err, SMDIFF_E_NOMEM, "safetensors: '%s' does not fit the address space", path);
    }
    size_t size = (size_t)fsize;
    void *map = NULL;
    if (size) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return sd_fail(err, e == ENOMEM ? SMDIFF_E_NOMEM : SMDIFF_E_IO, "safetensors: cannot map '%s': %s", path,
                           strerror(e));
        }
    }
    close(fd);
    st_file *f;
    int32_t rc = add_file(st, map, size, name, &f, err);
    if (rc) {
        if (map) munmap(map, size);
        return rc;
    }
    static const uint8_t empty[1] = {0};
    return parse_image(st, map ? map : empty, size, f->name, err);
}

int32_t sd_st_open(const char *path, sd_st **out, sd_error *err) {
    if (!path || !out) return sd_fail(err, SMDIFF_E_INVAL, "safetensors: NULL argument");
    *out = NULL;
    sd_st *st = sd_calloc(1, sizeof *st);
    if (!st) return sd_fail(err, SMDIFF_E_NOMEM, "safetensors: no memory");
    int32_t rc = open_into(st, path, path, err);
    if (rc) {
        sd_st_close(st);
        return rc;
    }
    *out = st;
    return SMDIFF_OK;
}

static int32_t open_sharded(sd_st *st, const char *dir, const char *index_path, sd_error *err) {
    json_t *root;
    int32_t rc = sd_json_load(index_path, JSON_REJECT_DUPLICATES, &root, err);
    if (rc) return rc;
    json_t *map = json_object_get(root, "weight_map");
    const char *key;
    json_t *val;
    if (!json_is_object(map)) {
        rc = sd_fail(err, SMDIFF_E_FORMAT, "safetensors: '%s' has no weight_map object", index_path);
        goto done;
    }
    /* Open each distinct shard once, in order of first mention. */
    json_object_foreach(map, key, val) {
        const char *shard = json_string_value(val);
        if (!shard || !shard[0] || strchr(shard, '/') || strcmp(shard, "..") == 0 || strcmp(shard, ".") == 0) {
            rc = sd_fail(err, SMDIFF_E_FORMAT, "safetensors: '%s': weight_map['%.200s'] is not a plain file name",
                         index_path, key);
            goto done;
        }
        int seen = 0;
        for (int64_t i = 0; i < st->n_files && !seen; i++) seen = strcmp(st->files[i].name, shard) == 0;
        if (seen) continue;
        char *p = sd_path_join(dir, shard);
        if (!p) {
            rc = sd_fail(err, SMDIFF_E_NOMEM, "safetensors: no memory");
            goto done;
        }
        rc = open_into(st, p, shard, err);
        sd_free(p);
        if (rc) goto done;
    }
    /* Every mapped name must be in the shard the index says. */
    json_object_foreach(map, key, val) {
        const sd_st_tensor *t = sd_st_find(st, key);
        if (!t || strcmp(t->file, json_string_value(val)) != 0) {
            rc = sd_fail(err, SMDIFF_E_FORMAT, "safetensors: '%s': tensor '%.200s' is not in shard '%.200s'", index_path,
                         key, json_string_value(val));
            goto done;
        }
    }
done:
    json_decref(root);
    return rc;
}

int32_t sd_st_open_dir(const char *dir, sd_st **out, sd_error *err) {
    if (!dir || !out) return sd_fail(err, SMDIFF_E_INVAL, "safetensors: NULL argument");
    *out = NULL;
    sd_st *st = sd_calloc(1, sizeof *st);
    if (!st) return sd_fail(err, SMDIFF_E_NOMEM, "safetensors: no memory");
    char *index = sd_path_join(dir, "model.safetensors.index.json");
    char *single = sd_path_join(dir, "model.safetensors");
    int32_t rc;
    if (!index || !single) {
        rc = sd_fail(err, SMDIFF_E_NOMEM, "safetensors: no memory");
    } else if (access(index, F_OK) == 0) {
        rc = open_sharded(st, dir, index, err);
    } else if (access(single, F_OK) == 0) {
        rc = open_into(st, single, "model.safetensors", err);
    } else {
        rc = sd_fail(err, SMDIFF_E_IO, "safetensors: '%s' has neither model.safetensors.index.json nor model.safetensors",
                     dir);
    }
    sd_free(index);
    sd_free(single);
    if (rc) {
        sd_st_close(st);
        return rc;
    }
    *out = st;
    return SMDIFF_OK;
}

int32_t sd_st_to_f32(const sd_st_tensor *t, float *dst, sd_error *err) {
    /* t: (n_elements,) of F32/F16/BF16, possibly unaligned; dst: (n_elements,) */
    if (!t || (!dst && t->n_elements)) return sd_fail(err, SMDIFF_E_INVAL, "safetensors: NULL argument");
    uint32_t type;
    switch (t->dtype) {
    case SD_ST_F32: type = SD_GGML_F32; break;
    case SD_ST_F16: type = SD_GGML_F16; break;
    case SD_ST_BF16: type = SD_GGML_BF16; break;
    default:
        return sd_fail(err, SMDIFF_E_UNSUPPORTED, "safetensors: tensor '%s': dtype %s cannot be converted to f32", t->name,
                       sd_st_dtype_name(t->dtype));
    }
    sd_ggml_to_f32(type, t->data, dst, (int64_t)t->n_elements);
    return SMDIFF_OK;
}
