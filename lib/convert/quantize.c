/* quantize.c -- file types, per-tensor recipes, the threaded row quantiser
 * and the GGUF rewrite of `smdiff quantize`. See quantize.h.
 *
 * The per-block quantisers are core/quant.c's (their search is described
 * in docs/FORMATS.md); this file decides which type each tensor gets and
 * moves the rows. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "convert/quantize.h"
#include "core/alloc.h"
#include "core/quant.h"

/* ------------------------------------------------------------ file types */

enum {
    R_NONE,  /* f32, f16, bf16: no rule */
    R_PLAIN, /* legacy types, q6_k: only the output rule */
    R_Q2_K,
    R_Q3_K_S,
    R_Q3_K_M,
    R_Q3_K_L,
    R_Q4_K_S,
    R_Q4_K_M,
    R_Q5_K_S,
    R_Q5_K_M,
    R_IQ4, /* iq4_nl, iq4_xs */
};

/* llama.cpp's names and LLAMA_FTYPE_* numbers. */
static const sd_qftype k_ftypes[] = {
    {"f32", SD_GGML_F32, 0, R_NONE},        {"f16", SD_GGML_F16, 1, R_NONE},
    {"bf16", SD_GGML_BF16, 32, R_NONE},     {"q4_0", SD_GGML_Q4_0, 2, R_PLAIN},
    {"q4_1", SD_GGML_Q4_1, 3, R_PLAIN},     {"q5_0", SD_GGML_Q5_0, 8, R_PLAIN},
    {"q5_1", SD_GGML_Q5_1, 9, R_PLAIN},     {"q8_0", SD_GGML_Q8_0, 7, R_PLAIN},
    {"q2_k", SD_GGML_Q2_K, 10, R_Q2_K},     {"q3_k_s", SD_GGML_Q3_K, 11, R_Q3_K_S},
    {"q3_k_m", SD_GGML_Q3_K, 12, R_Q3_K_M},
    {"q3_k_l", SD_GGML_Q3_K, 13, R_Q3_K_L}, {"q4_k_s", SD_GGML_Q4_K, 14, R_Q4_K_S},
    {"q4_k_m", SD_GGML_Q4_K, 15, R_Q4_K_M},
    {"q5_k_s", SD_GGML_Q5_K, 16, R_Q5_K_S}, {"q5_k_m", SD_GGML_Q5_K, 17, R_Q5_K_M},
    {"q6_k", SD_GGML_Q6_K, 18, R_PLAIN},
    {"iq4_nl", SD_GGML_IQ4_NL, 25, R_IQ4},  {"iq4_xs", SD_GGML_IQ4_XS, 30, R_IQ4},
};
#define N_FTYPES (sizeof k_ftypes / sizeof k_ftypes[0])

const sd_qftype *sd_qftype_find(const char *name) {
    if (!name) return NULL;
    /* llama.cpp's aliases of the _M mixtures */
    static const char *const alias[][2] = {{"q3_k", "q3_k_m"}, {"q4_k", "q4_k_m"}, {"q5_k", "q5_k_m"}};
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (!strcasecmp(name, alias[i][0])) name = alias[i][1];
    for (size_t i = 0; i < N_FTYPES; i++)
        if (!strcasecmp(name, k_ftypes[i].name)) return &k_ftypes[i];
    return NULL;
}

const char *sd_qftype_names(void) {
    return "f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k_s, q3_k_m (= q3_k), q3_k_l, q4_k_s, "
           "q4_k_m (= q4_k), q5_k_s, q5_k_m (= q5_k), q6_k, iq4_nl, iq4_xs";
}

/* ---------------------------------------------------------------- recipes */

/* llama.cpp's use_more_bits: the first and last eighth of the layers and
 * every third one between them. */
static int more_bits(int32_t i, int32_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !memcmp(s + n - m, tail, m);
}

/* The type when t's block does not divide a row of cols. */
static uint32_t fallback(uint32_t t, uint64_t cols) {
    if (cols % sd_ggml_block_size(t) == 0) return t;
    switch (t) {
    case SD_GGML_Q2_K:
    case SD_GGML_Q3_K: t = SD_GGML_Q4_0; break;
    case SD_GGML_Q4_K: t = SD_GGML_Q5_0; break;
    case SD_GGML_Q5_K: t = SD_GGML_Q5_1; break;
    case SD_GGML_Q6_K: t = SD_GGML_Q8_0; break;
    case SD_GGML_IQ4_XS: t = SD_GGML_IQ4_NL; break;
    default: t = SD_GGML_F16; break;
    }
    return cols % sd_ggml_block_size(t) ? SD_GGML_F16 : t;
}

/* The mixtures: attn_v, ffn_down and attn_output of some layers get more
 * bits; everything else keeps the base type. */
static uint32_t mixture(int recipe, uint32_t t, const char *name, int32_t layer, const sd_qmodel_info *m) {
    int32_t n = m->n_layer;
    if (strstr(name, "attn_v.weight")) {
        switch (recipe) {
        case R_Q2_K: return m->n_gqa >= 4 ? SD_GGML_Q4_K : SD_GGML_Q3_K;
        case R_Q3_K_M: return layer < 2 ? SD_GGML_Q5_K : SD_GGML_Q4_K;
        case R_Q3_K_L: return SD_GGML_Q5_K;
        case R_IQ4: return m->n_gqa >= 4 ? SD_GGML_Q5_K : t;
        case R_Q4_K_M:
        case R_Q5_K_M: return more_bits(layer, n) ? SD_GGML_Q6_K : t;
        case R_Q4_K_S: return layer < 4 ? SD_GGML_Q5_K : t;
        default: return t;
        }
    }
    if (strstr(name, "ffn_down")) {
        switch (recipe) {
        case R_Q2_K: return SD_GGML_Q3_K;
        case R_Q3_K_M: return layer < n / 16 ? SD_GGML_Q5_K : SD_GGML_Q4_K;
        case R_Q3_K_L: return SD_GGML_Q5_K;
        case R_Q4_K_M:
        case R_Q5_K_M: return more_bits(layer, n) ? SD_GGML_Q6_K : t;
        case R_Q4_K_S:
        case R_IQ4: return layer < n / 8 ? SD_GGML_Q5_K : t;
        default: return t;
        }
    }
    if (strstr(name, "attn_output.weight")) {
        switch (recipe) {
        case R_Q2_K: return SD_GGML_Q3_K;
        case R_Q3_K_M: return SD_GGML_Q4_K;
        case R_Q3_K_L: return SD_GGML_Q5_K;
        default: return t;
        }
    }
    return t;
}

uint32_t sd_qftype_tensor_type(const sd_qftype *f, int pure, const char *name, uint32_t n_dims, uint64_t cols,
                               uint32_t in_type, const sd_qmodel_info *info) {
    /* only matrices called *weight, never a norm */
    if (n_dims < 2 || !ends_with(name, "weight") || strstr(name, "_norm.weight")) return in_type;
    uint32_t t = f->base;
    if (f->recipe == R_NONE) return t;
    if (!pure) {
        int head = !strcmp(name, "output.weight") || (info->tied && !strcmp(name, "token_embd.weight"));
        if (head) {
            if (cols % sd_ggml_block_size(t)) t = SD_GGML_Q8_0;
            else if (t != SD_GGML_Q8_0) t = SD_GGML_Q6_K;
        } else {
            int layer = -1;
            if (sscanf(name, "blk.%d.", &layer) == 1 && layer >= 0) t = mixture(f->recipe, t, name, layer, info);
        }
    }
    return fallback(t, cols);
}

/* ------------------------------------------------------- row quantiser */

typedef struct {
    uint32_t type;
    uint64_t cols;
    size_t row_bytes;
    sd_qrow_fn get;
    const void *user;
    unsigned char *dst;
    float *scratch;  /* [threads][2][cols] */
    sd_qerr *part;   /* [threads] */
    int64_t *bad;    /* [threads]: first row with a non-finite value, or -1 */
    int64_t *big;    /* [threads]: first row whose scales overflow f16, or -1 */
    int measure;
} qrows_job;

static void qrows_range(void *vctx, int64_t b, int64_t e, int t) {
    /* rows [b, e): get -> x[cols] -> dst row (type) -> y[cols] (measured) */
    const qrows_job *j = vctx;
    float *x = j->scratch + (size_t)t * 2 * j->cols, *y = x + j->cols;
    sd_qerr acc = {0, 0};
    for (int64_t r = b; r < e; r++) {
        j->get(j->user, (uint64_t)r, x);
        for (uint64_t c = 0; c < j->cols; c++)
            if (!isfinite(x[c])) {
                if (j->bad[t] < 0) j->bad[t] = r;
                break;
            }
        unsigned char *d = j->dst + (size_t)r * j->row_bytes;
        sd_ggml_from_f32(j->type, x, d, (int64_t)j->cols);
        /* values beyond what an f16 scale can reach (|x| > ~65504 times the
         * largest code) would store an infinite scale the loader refuses */
        if (sd_quant_is_block(j->type) && sd_quant_find_bad_block(j->type, d, (int64_t)j->cols) >= 0 && j->big[t] < 0)
            j->big[t] = r;
        if (!j->measure) continue;
        sd_ggml_to_f32(j->type, d, y, (int64_t)j->cols);
        for (uint64_t c = 0; c < j->cols; c++) {
            double v = x[c], dv = (double)y[c] - v;
            acc.sq_err += dv * dv;
            acc.sq_val += v * v;
        }
    }
    j->part[t].sq_err += acc.sq_err;
    j->part[t].sq_val += acc.sq_val;
}

int32_t sd_quantize_rows(uint32_t type, uint64_t rows, uint64_t cols, sd_qrow_fn get, const void *user, void *dst,
                         sd_pool *pool, sd_qerr *err_sum, sd_error *err) {
    size_t rb = sd_ggml_row_size(type, (int64_t)cols);
    if (!sd_ggml_is_supported(type) || !rb || rows > INT64_MAX)
        return sd_fail(err, SMDIFF_E_INVAL, "quantize: type %s cannot hold rows of %llu", sd_ggml_type_name(type),
                       (unsigned long long)cols);
    int nt = pool ? sd_pool_threads(pool) : 1;
    qrows_job j = {type, cols, rb, get, user, dst, NULL, NULL, NULL, NULL, err_sum != NULL};
    j.scratch = sd_malloc((size_t)nt * 2 * (size_t)cols * sizeof(float));
    j.part = sd_calloc((size_t)nt, sizeof *j.part);
    j.bad = sd_malloc((size_t)nt * sizeof *j.bad);
    j.big = sd_malloc((size_t)nt * sizeof *j.big);
    int32_t rc = SMDIFF_OK;
    if (!j.scratch || !j.part || !j.bad || !j.big) {
        rc = sd_fail(err, SMDIFF_E_NOMEM, "quantize: out of memory for rows of %llu", (unsigned long long)cols);
        goto done;
    }
    for (int t = 0; t < nt; t++) j.bad[t] = j.big[t] = -1;
    if (pool)
        sd_pool_run(pool, qrows_range, &j, (int64_t)rows);
    else
        qrows_range(&j, 0, (int64_t)rows, 0);
    for (int t = 0; t < nt; t++) {
        if (j.bad[t] >= 0) {
            rc = sd_fail(err, SMDIFF_E_FORMAT, "quantize: row %lld has a value that is not finite",
                         (long long)j.bad[t]);
            goto done;
        }
        if (j.big[t] >= 0) {
            rc = sd_fail(err, SMDIFF_E_FORMAT, "quantize: row %lld has values too large for the f16 scales of %s",
                         (long long)j.big[t], sd_ggml_type_name(type));
            goto done;
        }
        if (err_sum) {
            err_sum->sq_err += j.part[t].sq_err;
            err_sum->sq_val += j.part[t].sq_val;
        }
    }
done:
    sd_free(j.scratch);
    sd_free(j.part);
    sd_free(j.bad);
    sd_free(j.big);
    return rc;
}

/* ---------------------------------------------------------- GGUF rewrite */

typedef struct {
    const sd_gguf_tensor *src;
    uint32_t type;
    uint64_t rows, cols;
    size_t src_row;
    sd_pool *pool;
    sd_qerr acc;
} qtensor;

static void tensor_row(const void *user, uint64_t r, float *out) {
    const qtensor *q = user;
    sd_ggml_to_f32(q->src->type, (const unsigned char *)q->src->data + r * q->src_row, out, (int64_t)q->cols);
}

static int32_t fill_tensor(void *user, const char *name, void *dst, uint64_t n_bytes, sd_error *err) {
    qtensor *q = user;
    if (n_bytes != q->rows * sd_ggml_row_size(q->type, (int64_t)q->cols))
        return sd_fail(err, SMDIFF_E_INTERNAL, "quantize: size of tensor %s", name);
    int32_t rc = sd_quantize_rows(q->type, q->rows, q->cols, tensor_row, q, dst, q->pool, &q->acc, err);
    if (rc) { /* name the tensor (the thread-local record has the message too) */
        char msg[SD_ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", sd_tls_error()->msg);
        return sd_fail(err, rc, "tensor %s: %s", name, msg);
    }
    return SMDIFF_OK;
}

/* n_layer and n_gqa from the architecture's keys; n_layer from the blk.N
 * names when the keys are absent. */
static void model_info(const sd_gguf *g, sd_qmodel_info *m) {
    m->n_layer = 0;
    m->n_gqa = 1;
    m->tied = sd_gguf_find_tensor(g, "output.weight") == NULL;
    sd_gguf_str a;
    sd_error e = {0};
    if (sd_gguf_get_str(g, "general.architecture", &a, &e) == SMDIFF_OK && a.len < 64) {
        char key[128];
        int64_t v, h, kv;
        snprintf(key, sizeof key, "%.*s.block_count", (int)a.len, a.ptr);
        if (sd_gguf_get_i64(g, key, &v, &e) == SMDIFF_OK && v > 0 && v < INT32_MAX) m->n_layer = (int32_t)v;
        snprintf(key, sizeof key, "%.*s.attention.head_count", (int)a.len, a.ptr);
        if (sd_gguf_get_i64(g, key, &h, &e) == SMDIFF_OK) {
            snprintf(key, sizeof key, "%.*s.attention.head_count_kv", (int)a.len, a.ptr);
            if (sd_gguf_get_i64(g, key, &kv, &e) != SMDIFF_OK) kv = h;
            if (h > 0 && kv > 0 && h / kv < INT32_MAX) m->n_gqa = (int32_t)(h / kv);
        }
    }
    if (m->n_layer == 0)
        for (int64_t i = 0; i < sd_gguf_n_tensors(g); i++) {
            const sd_gguf_tensor *t = sd_gguf_tensor_at(g, i);
            char name[80];
            int layer;
            snprintf(name, sizeof name, "%.*s", (int)(t->name.len < 79 ? t->name.len : 79), t->name.ptr);
            if (sscanf(name, "blk.%d.", &layer) == 1 && layer >= 0 && layer < INT32_MAX && layer + 1 > m->n_layer)
                m->n_layer = layer + 1;
        }
}

static void add_stat(smdiff_quant_report *r, uint32_t type, uint64_t nel, uint64_t bytes, const sd_qerr *e) {
    size_t i = 0;
    const char *name = sd_ggml_type_name(type);
    while (i < r->n_types && strcmp(r->types[i].type, name)) i++;
    if (i == r->n_types) {
        if (i == sizeof r->types / sizeof r->types[0]) return;
        r->n_types++;
        memset(&r->types[i], 0, sizeof r->types[i]);
        snprintf(r->types[i].type, sizeof r->types[i].type, "%s", name);
    }
    smdiff_quant_stat *s = &r->types[i];
    /* rms_error/rms_value hold sums of squares until finish_report */
    s->n_tensors++;
    s->n_elements += nel;
    s->n_bytes += bytes;
    s->rms_error += e->sq_err;
    s->rms_value += e->sq_val;
}

static void finish_report(smdiff_quant_report *r) {
    for (size_t i = 0; i < r->n_types; i++) {
        smdiff_quant_stat *s = &r->types[i];
        double n = s->n_elements ? (double)s->n_elements : 1.0;
        s->rms_error = sqrt(s->rms_error / n);
        s->rms_value = sqrt(s->rms_value / n);
    }
}

int32_t sd_quantize_gguf(const char *in_path, const char *out_path, const sd_qftype *f, const sd_quantize_opts *opts,
                         smdiff_quant_report *report, sd_error *err) {
    if (!in_path || !out_path || !f || !opts) return sd_fail(err, SMDIFF_E_INVAL, "quantize: NULL argument");
    sd_gguf *g = NULL;
    sd_gguf_writer *w = NULL;
    sd_pool *pool = NULL;
    qtensor *qt = NULL;
    int32_t rc = sd_gguf_open(in_path, 1, &g, err);
    if (rc) return rc;
    sd_qmodel_info info;
    model_info(g, &info);
    int64_t n = sd_gguf_n_tensors(g);
    qt = sd_calloc((size_t)(n ? n : 1), sizeof *qt);
    if (!qt) {
        rc = sd_fail(err, SMDIFF_E_NOMEM, "quantize: out of memory");
        goto done;
    }
    if ((rc = sd_gguf_writer_create(&w, err))) goto done;
    for (int64_t i = 0; i < sd_gguf_n_kv(g) && !rc; i++) rc = sd_gguf_copy_kv(w, g, i, err);
    if (!rc && (sd_gguf_set_u32(w, "general.file_type", f->file_type) ||
                sd_gguf_set_u32(w, "general.quantization_version", 2)))
        rc = sd_error_forward(err, sd_gguf_writer_error(w));
    if (rc) goto done;
    int threads = opts->threads > 0 ? opts->threads : sd_cpu_count();
    if ((rc = sd_pool_create(threads, &pool, err))) goto done;

    for (int64_t i = 0; i < n; i++) {
        const sd_gguf_tensor *t = sd_gguf_tensor_at(g, i);
        char name[256];
        if (t->name.len >= sizeof name) {
            rc = sd_fail(err, SMDIFF_E_FORMAT, "quantize: a tensor name of %llu bytes", (unsigned long long)t->name.len);
            goto done;
        }
        memcpy(name, t->name.ptr, t->name.len);
        name[t->name.len] = '\0';
        uint64_t nel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        uint32_t type = sd_qftype_tensor_type(f, opts->pure, name, t->n_dims, t->ne[0], t->type, &info);
        if (type == t->type && !sd_ggml_is_supported(type)) { /* a tensor smdiff cannot read: copied */
            rc = sd_gguf_add_tensor(w, name, t->n_dims, t->ne, type, t->data, 1);
        } else if (type != t->type && t->type != SD_GGML_F32 && t->type != SD_GGML_F16 && t->type != SD_GGML_BF16) {
            rc = sd_fail(err, SMDIFF_E_UNSUPPORTED,
                         "quantize: tensor %s is %s; smdiff quantize converts F32, F16 and BF16 tensors", name,
                         sd_ggml_type_name(t->type));
            goto done;
        } else {
            qt[i] = (qtensor){t, type, nel / t->ne[0], t->ne[0], sd_ggml_row_size(t->type, (int64_t)t->ne[0]), pool,
                              {0, 0}};
            rc = sd_gguf_add_tensor_fill(w, name, t->n_dims, t->ne, type, fill_tensor, &qt[i]);
        }
        if (rc) {
            sd_error_forward(err, sd_gguf_writer_error(w));
            goto done;
        }
    }
    if (opts->progress) sd_gguf_writer_set_progress(w, opts->progress, opts->progress_user);
    if ((rc = sd_gguf_write(w, out_path, err))) goto done;
    if (report) {
        memset(report, 0, sizeof *report);
        for (int64_t i = 0; i < n; i++) {
            const sd_gguf_tensor *t = sd_gguf_tensor_at(g, i);
            uint64_t nel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
            uint32_t type = qt[i].src ? qt[i].type : t->type;
            report->in_bytes += t->n_bytes;
            uint64_t ob = sd_ggml_type_size(type, nel);
            report->out_bytes += ob;
            add_stat(report, type, nel, ob, &qt[i].acc);
        }
        finish_report(report);
    }
done:
    sd_pool_free(pool);
    sd_free(qt);
    sd_gguf_writer_free(w);
    sd_gguf_close(g);
    return rc;
}
