/* smdiff.c -- the public API: validates arguments, records errors, and maps
 * each call onto the layers below (core, io, text, nn, diffusion, train).
 * No computation lives here. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/pool.h"
#include "diffusion/decoder.h"
#include "diffusion/generate.h"
#include "diffusion/sampler.h"
#include "diffusion/softmask.h"
#include "nn/blas.h"
#include "io/gguf.h"
#include "nn/model.h"
#include "text/tokenizer.h"
#include "smdiff/smdiff.h"

#define REQUIRE(cond, err, ...)                                   \
    do {                                                          \
        if (!(cond)) return sd_fail((err), SMDIFF_E_INVAL, __VA_ARGS__); \
    } while (0)

/* Counts are size_t; one above INT32_MAX is refused as an invalid argument
 * (no canvas, prompt or list is that long, and a negative number converted
 * to size_t lands there). */
#define COUNT_OK(n) ((n) <= (size_t)INT32_MAX)

#define ERR_OF SD_ERR_OF /* core/options.h */

/* ---------------------------------------------------------------- version */

SMDIFF_API uint32_t smdiff_version_number(void) { return SMDIFF_VERSION_NUMBER; }

SMDIFF_API const char *smdiff_version_string(void) { return SMDIFF_VERSION_STRING; }

/* ------------------------------------------------------------------ model */

SMDIFF_API int32_t smdiff_model_create(smdiff_model **out) {
    REQUIRE(out, NULL, "smdiff_model_create: out is NULL");
    static atomic_uint_least64_t serials;
    smdiff_model *m = sd_calloc(1, sizeof *m);
    if (!m) return sd_fail(NULL, SMDIFF_E_NOMEM, "out of memory creating a model");
    atomic_init(&m->refcount, 1);
    m->serial = atomic_fetch_add(&serials, 1) + 1;
    sd_options_defaults(&sd_model_options, m->opt);
    *out = m;
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_model_retain(smdiff_model *m) {
    REQUIRE(m, NULL, "smdiff_model_retain: model is NULL");
    atomic_fetch_add(&m->refcount, 1);
    return SMDIFF_OK;
}

SMDIFF_API void smdiff_model_free(smdiff_model *m) {
    if (!m) return;
    if (atomic_fetch_sub(&m->refcount, 1) == 1) sd_model_destroy(m);
}

SMDIFF_API int32_t smdiff_model_set_int(smdiff_model *m, int32_t key, int64_t value) {
    REQUIRE(m, NULL, "smdiff_model_set_int: model is NULL");
    if (m->loaded)
        return sd_fail(NULL, SMDIFF_E_STATE, "model options are frozen once the model is loaded");
    return sd_option_set_int(&sd_model_options, m->opt, key, value, NULL);
}

SMDIFF_API int32_t smdiff_model_get_int(const smdiff_model *m, int32_t key, int64_t *out) {
    SD_MODEL_HOLD(m);
    REQUIRE(m && out, NULL, "smdiff_model_get_int: NULL argument");
    return sd_option_get_int(&sd_model_options, m->opt, key, out, NULL);
}

SMDIFF_API int32_t smdiff_model_option_info(int32_t key, const char **name, int32_t *type,
                                            double *min, double *max, double *def) {
    return sd_option_info(&sd_model_options, key, name, type, min, max, def, NULL);
}

SMDIFF_API int32_t smdiff_model_option_key(const char *name, int32_t *key) {
    return sd_option_key(&sd_model_options, name, key, NULL);
}

SMDIFF_API int32_t smdiff_model_load_file(smdiff_model *m, const char *path) {
    REQUIRE(m && path, NULL, "smdiff_model_load_file: NULL argument");
    if (m->loaded) return sd_fail(NULL, SMDIFF_E_STATE, "smdiff_model_load_file: the model is already loaded");
    int32_t rc = sd_model_load(m, path);
    if (rc) sd_error_forward(NULL, &m->err);
    return rc;
}

SMDIFF_API int32_t smdiff_model_is_loaded(const smdiff_model *m, int32_t *out) {
    SD_MODEL_HOLD(m);
    REQUIRE(m && out, NULL, "smdiff_model_is_loaded: NULL argument");
    *out = m->loaded;
    return SMDIFF_OK;
}

static int32_t require_loaded(const smdiff_model *m, const char *fn) {
    if (!m) return sd_fail(NULL, SMDIFF_E_INVAL, "%s: model is NULL", fn);
    if (!m->loaded) return sd_fail(NULL, SMDIFF_E_STATE, "%s: model is not loaded", fn);
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_model_property(const smdiff_model *m, int32_t prop, int64_t *out) {
    SD_MODEL_HOLD(m);
    int32_t rc = sd_option_check_family(SMDIFF_PROP_OPT_FIRST_, SMDIFF_PROP_OPT_LAST_, prop, NULL);
    if (!rc) rc = require_loaded(m, "smdiff_model_property");
    if (rc) return rc;
    REQUIRE(out, NULL, "smdiff_model_property: out is NULL");
    const sd_hparams *hp = &m->w.hp;
    int64_t total;
    switch (prop) {
    case SMDIFF_PROP_VOCAB_SIZE: *out = hp->n_vocab; break;
    case SMDIFF_PROP_MASK_ID: *out = hp->mask_id; break;
    case SMDIFF_PROP_CONTEXT: *out = hp->n_ctx; break;
    case SMDIFF_PROP_EMBED_DIM: *out = hp->n_embd; break;
    case SMDIFF_PROP_LAYERS: *out = hp->n_layer; break;
    case SMDIFF_PROP_HEADS: *out = hp->n_head; break;
    case SMDIFF_PROP_KV_HEADS: *out = hp->n_head_kv; break;
    case SMDIFF_PROP_FFN_DIM: *out = hp->n_ff; break;
    case SMDIFF_PROP_SHIFT_LOGITS: *out = hp->shift_logits; break;
    case SMDIFF_PROP_BOS_ID: *out = hp->bos_id; break;
    case SMDIFF_PROP_EOS_ID: *out = hp->eos_id; break;
    case SMDIFF_PROP_PAD_ID: *out = hp->pad_id; break;
    case SMDIFF_PROP_N_PARAMS:
        sd_weights_n_params(&m->w, &total, NULL);
        /* a tied head is one tensor, counted once */
        if (m->w.output.data == m->w.token_embd.data) total -= m->w.output.rows * m->w.output.cols;
        *out = total;
        break;
    default: return sd_fail(NULL, SMDIFF_E_INTERNAL, "smdiff_model_property: property %d not handled", (int)prop);
    }
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_model_arch(const smdiff_model *m, const char **out) {
    SD_MODEL_HOLD(m);
    int32_t rc = require_loaded(m, "smdiff_model_arch");
    if (rc) return rc;
    REQUIRE(out, NULL, "smdiff_model_arch: out is NULL");
    *out = sd_model_arch_name(m);
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_model_meta(const smdiff_model *m, const char *key, char *buf,
                                     size_t capacity, size_t *needed) {
    SD_MODEL_HOLD(m);
    int32_t rc = require_loaded(m, "smdiff_model_meta");
    if (rc) return rc;
    REQUIRE(key && needed && (buf || capacity == 0), NULL, "smdiff_model_meta: NULL argument");
    int64_t kv = sd_gguf_find_key(m->gguf, key);
    if (kv < 0) return sd_fail(NULL, SMDIFF_E_NOT_FOUND, "smdiff_model_meta: no metadata key \"%s\"", key);
    /* Measure first so a short buffer is left untouched. */
    rc = sd_gguf_value_text(m->gguf, kv, NULL, 0, needed);
    if (rc && rc != SMDIFF_E_BUFFER) return sd_fail(NULL, rc, "smdiff_model_meta: cannot format \"%s\"", key);
    if (capacity < *needed)
        return sd_fail(NULL, SMDIFF_E_BUFFER, "smdiff_model_meta: \"%s\" needs %zu bytes, buffer has %zu",
                       key, *needed, capacity);
    return sd_gguf_value_text(m->gguf, kv, buf, capacity, needed);
}

SMDIFF_API int32_t smdiff_model_tensor_types(const smdiff_model *m, const char **names, size_t *counts,
                                             size_t capacity, size_t *n_out) {
    int32_t rc = require_loaded(m, "smdiff_model_tensor_types");
    if (rc) return rc;
    REQUIRE(n_out && ((names && counts) || capacity == 0), NULL, "smdiff_model_tensor_types: NULL argument");
    /* GGUF type numbers are below 40 today; a larger one (which the parser
     * refuses anyway) would be counted in the last slot, named "unknown". */
    enum { N_SLOTS = 64 };
    size_t per_type[N_SLOTS] = {0}, n_types = 0;
    for (int64_t i = 0; i < sd_gguf_n_tensors(m->gguf); i++) {
        uint32_t t = sd_gguf_tensor_at(m->gguf, i)->type;
        n_types += per_type[t < N_SLOTS ? t : N_SLOTS - 1]++ == 0;
    }
    *n_out = n_types;
    if (capacity < n_types)
        return sd_fail(NULL, SMDIFF_E_BUFFER, "smdiff_model_tensor_types: %zu types, room for %zu", n_types,
                       capacity);
    for (uint32_t t = 0, k = 0; t < N_SLOTS; t++)
        if (per_type[t]) names[k] = sd_ggml_type_name(t), counts[k++] = per_type[t];
    return SMDIFF_OK;
}

/* Canvas length within the context, rows inside the canvas, room for the
 * logits: SMDIFF_E_RANGE otherwise. */
static int32_t check_logits_args(const smdiff_model *m, size_t n_pos, const int32_t *rows,
                                 size_t n_rows, size_t capacity, const char *fn) {
    const sd_hparams *hp = &m->w.hp;
    if (n_pos > (size_t)hp->n_ctx)
        return sd_fail(NULL, SMDIFF_E_RANGE, "%s: canvas of %zu positions exceeds the context %d", fn, n_pos,
                       (int)hp->n_ctx);
    for (size_t r = 0; r < n_rows; r++)
        if (rows[r] < 0 || (size_t)rows[r] >= n_pos)
            return sd_fail(NULL, SMDIFF_E_RANGE, "%s: rows[%zu] = %d outside the canvas [0, %zu)", fn, r,
                           (int)rows[r], n_pos);
    if (capacity / (size_t)hp->n_vocab < n_rows)
        return sd_fail(NULL, SMDIFF_E_RANGE, "%s: logits holds %zu floats, %zu rows need %zu", fn, capacity,
                       n_rows, n_rows * (size_t)hp->n_vocab);
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_model_logits(const smdiff_model *m, const int32_t *ids,
                                       size_t n_ids, const int32_t *rows, size_t n_rows,
                                       float *logits, size_t capacity) {
    SD_MODEL_HOLD(m);
    int32_t rc = require_loaded(m, "smdiff_model_logits");
    if (rc) return rc;
    REQUIRE(ids && rows && logits && n_ids > 0 && COUNT_OK(n_ids) && COUNT_OK(n_rows) && capacity > 0, NULL,
            "smdiff_model_logits: invalid argument");
    const sd_hparams *hp = &m->w.hp;
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= hp->n_vocab)
            return sd_fail(NULL, SMDIFF_E_RANGE, "smdiff_model_logits: ids[%zu] = %d outside the vocabulary [0, %d)",
                           i, (int)ids[i], (int)hp->n_vocab);
    if ((rc = check_logits_args(m, n_ids, rows, n_rows, capacity, "smdiff_model_logits"))) return rc;
    float *embd = sd_malloc(sizeof(float) * n_ids * (size_t)hp->n_embd);
    if (!embd) return sd_fail(NULL, SMDIFF_E_NOMEM, "smdiff_model_logits: out of memory for %zu embeddings", n_ids);
    for (size_t i = 0; i < n_ids; i++) sd_embed_token(&m->w, ids[i], embd + i * (size_t)hp->n_embd);
    rc = sd_model_forward(m, embd, (int64_t)n_ids, rows, (int64_t)n_rows, logits);
    sd_free(embd);
    return rc;
}

SMDIFF_API int32_t smdiff_model_logits_embd(const smdiff_model *m, const float *embd,
                                            size_t n_pos, const int32_t *rows, size_t n_rows,
                                            float *logits, size_t capacity) {
    SD_MODEL_HOLD(m);
    int32_t rc = require_loaded(m, "smdiff_model_logits_embd");
    if (rc) return rc;
    REQUIRE(embd && rows && logits && n_pos > 0 && COUNT_OK(n_pos) && COUNT_OK(n_rows) && capacity > 0, NULL,
            "smdiff_model_logits_embd: invalid argument");
    if ((rc = check_logits_args(m, n_pos, rows, n_rows, capacity, "smdiff_model_logits_embd"))) return rc;
    return sd_model_forward(m, embd, (int64_t)n_pos, rows, (int64_t)n_rows, logits);
}

static int32_t require_tokenizer(const smdiff_model *m, const char *fn) {
    if (!m) return sd_fail(NULL, SMDIFF_E_INVAL, "%s: model is NULL", fn);
    if (!m->tok)
        return sd_fail(NULL, SMDIFF_E_STATE, "%s: the model has no tokenizer (load a model "
                       "or smdiff_model_load_tokenizer first)", fn);
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_model_tokenize(const smdiff_model *m, const char *text,
                                         size_t n_bytes, int32_t flags, int32_t *ids,
                                         size_t capacity, size_t *n_out) {
    SD_MODEL_HOLD(m);
    int32_t rc = require_tokenizer(m, "smdiff_model_tokenize");
    if (rc) return rc;
    REQUIRE((text || n_bytes == 0) && n_out && (ids || capacity == 0), NULL,
            "smdiff_model_tokenize: invalid argument");
    REQUIRE((flags & ~(SMDIFF_TOKENIZE_PARSE_SPECIAL | SMDIFF_TOKENIZE_ADD_BOS)) == 0, NULL,
            "smdiff_model_tokenize: unknown flags 0x%x", (unsigned)flags);
    return sd_tokenizer_encode(m->tok, text, n_bytes, flags, ids, capacity, n_out, NULL);
}

SMDIFF_API int32_t smdiff_model_detokenize(const smdiff_model *m, const int32_t *ids,
                                           size_t n_ids, int32_t flags, char *text,
                                           size_t capacity, size_t *n_out) {
    SD_MODEL_HOLD(m);
    int32_t rc = require_tokenizer(m, "smdiff_model_detokenize");
    if (rc) return rc;
    REQUIRE((ids || n_ids == 0) && n_out && (text || capacity == 0), NULL,
            "smdiff_model_detokenize: invalid argument");
    REQUIRE((flags & ~SMDIFF_DETOKENIZE_SPECIAL) == 0, NULL,
            "smdiff_model_detokenize: unknown flags 0x%x", (unsigned)flags);
    return sd_tokenizer_decode(m->tok, ids, n_ids, flags, text, capacity, n_out, NULL);
}

SMDIFF_API int32_t smdiff_model_save_tokenizer(const smdiff_model *m, const char *path) {
    SD_MODEL_HOLD(m);
    int32_t rc = require_tokenizer(m, "smdiff_model_save_tokenizer");
    if (rc) return rc;
    REQUIRE(path, NULL, "smdiff_model_save_tokenizer: path is NULL");
    sd_gguf_writer *w = NULL;
    if ((rc = sd_gguf_writer_create(&w, NULL))) return rc;
    rc = sd_gguf_set_str(w, "general.architecture", "tokenizer");
    if (rc) rc = sd_fail(NULL, rc, "smdiff_model_save_tokenizer: out of memory");
    if (!rc) rc = sd_tokenizer_to_gguf(m->tok, w, NULL);
    if (!rc) rc = sd_gguf_write(w, path, NULL);
    sd_gguf_writer_free(w);
    return rc;
}

SMDIFF_API int32_t smdiff_model_load_tokenizer(smdiff_model *m, const char *path) {
    REQUIRE(m && path, NULL, "smdiff_model_load_tokenizer: NULL argument");
    if (m->loaded || m->tok)
        return sd_fail(NULL, SMDIFF_E_STATE, "smdiff_model_load_tokenizer: the model already "
                       "has a tokenizer");
    sd_tokenizer *t = NULL;
    int32_t rc = sd_tokenizer_load(path, &t, &m->err);
    if (rc) return sd_error_forward(NULL, &m->err);
    m->tok = t;
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_model_token_piece(const smdiff_model *m, int32_t id, char *text,
                                            size_t capacity, size_t *n_out) {
    SD_MODEL_HOLD(m);
    int32_t rc = require_tokenizer(m, "smdiff_model_token_piece");
    if (rc) return rc;
    REQUIRE(n_out && (text || capacity == 0), NULL, "smdiff_model_token_piece: NULL argument");
    return sd_tokenizer_piece(m->tok, id, text, capacity, n_out, NULL);
}

SMDIFF_API int32_t smdiff_chat_template(const smdiff_model *m, size_t n_messages,
                                        const char *const *roles, const char *const *contents,
                                        int32_t add_generation_prompt, char *buf,
                                        size_t capacity, size_t *needed) {
    SD_MODEL_HOLD(m);
    int32_t rc = require_tokenizer(m, "smdiff_chat_template");
    if (rc) return rc;
    REQUIRE(needed && (buf || capacity == 0) && COUNT_OK(n_messages) &&
            (n_messages == 0 || (roles && contents)), NULL, "smdiff_chat_template: invalid argument");
    REQUIRE(add_generation_prompt == 0 || add_generation_prompt == 1, NULL,
            "smdiff_chat_template: add_generation_prompt must be 0 or 1");
    return sd_tokenizer_chat(m->tok, (int32_t)n_messages, roles, contents, add_generation_prompt, buf,
                             capacity, needed, NULL);
}

SMDIFF_API int32_t smdiff_utf8_complete(const char *text, size_t n_bytes, size_t *n_complete) {
    REQUIRE((text || n_bytes == 0) && n_complete, NULL, "smdiff_utf8_complete: NULL argument");
    *n_complete = n_bytes ? sd_utf8_complete_prefix(text, n_bytes) : 0;
    return SMDIFF_OK;
}

/* ------------------------------------------------------ soft-mask schedule */

SMDIFF_API int32_t smdiff_softmask_create(smdiff_softmask **out) {
    REQUIRE(out, NULL, "smdiff_softmask_create: out is NULL");
    smdiff_softmask *sm = sd_calloc(1, sizeof *sm);
    if (!sm) return sd_fail(NULL, SMDIFF_E_NOMEM, "out of memory creating a soft-mask schedule");
    sd_options_defaults(&sd_softmask_options, sm->opt);
    *out = sm;
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_softmask_create_from_model(const smdiff_model *m,
                                                     smdiff_softmask **out) {
    SD_MODEL_HOLD(m);
    int32_t rc = require_loaded(m, "smdiff_softmask_create_from_model");
    if (rc) return rc;
    REQUIRE(out, NULL, "smdiff_softmask_create_from_model: out is NULL");
    smdiff_softmask *sm;
    if ((rc = smdiff_softmask_create(&sm))) return rc;
    if ((rc = sd_softmask_from_model(m, sm, NULL))) {
        smdiff_softmask_free(sm);
        return rc;
    }
    *out = sm;
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_softmask_clone(const smdiff_softmask *src, smdiff_softmask **out) {
    REQUIRE(src && out, ERR_OF(src), "smdiff_softmask_clone: NULL argument");
    smdiff_softmask *sm = sd_malloc(sizeof *sm);
    if (!sm) return sd_fail(ERR_OF(src), SMDIFF_E_NOMEM, "out of memory cloning a soft-mask schedule");
    memcpy(sm, src, sizeof *sm);
    sd_error_clear(&sm->err);
    *out = sm;
    return SMDIFF_OK;
}

SMDIFF_API void smdiff_softmask_free(smdiff_softmask *sm) { sd_free(sm); }

/* The window must stay ordered; check on a copy so a failure changes nothing. */
static int32_t softmask_commit(smdiff_softmask *sm, const sd_optval *opt) {
    if (opt[SD_OPT_SLOT(SMDIFF_SM_WINDOW_START)].d > opt[SD_OPT_SLOT(SMDIFF_SM_WINDOW_END)].d)
        return sd_fail(&sm->err, SMDIFF_E_RANGE, "softmask window_start %g > window_end %g",
                       opt[SD_OPT_SLOT(SMDIFF_SM_WINDOW_START)].d, opt[SD_OPT_SLOT(SMDIFF_SM_WINDOW_END)].d);
    memcpy(sm->opt, opt, sizeof sm->opt);
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_softmask_set_int(smdiff_softmask *sm, int32_t key, int64_t value) {
    REQUIRE(sm, ERR_OF(sm), "smdiff_softmask_set_int: schedule is NULL");
    sd_optval opt[SMDIFF_SM_OPT_LAST_ - SMDIFF_SM_OPT_FIRST_ + 1];
    memcpy(opt, sm->opt, sizeof opt);
    int32_t rc = sd_option_set_int(&sd_softmask_options, opt, key, value, &sm->err);
    return rc ? rc : softmask_commit(sm, opt);
}

SMDIFF_API int32_t smdiff_softmask_set_double(smdiff_softmask *sm, int32_t key, double value) {
    REQUIRE(sm, ERR_OF(sm), "smdiff_softmask_set_double: schedule is NULL");
    sd_optval opt[SMDIFF_SM_OPT_LAST_ - SMDIFF_SM_OPT_FIRST_ + 1];
    memcpy(opt, sm->opt, sizeof opt);
    int32_t rc = sd_option_set_double(&sd_softmask_options, opt, key, value, &sm->err);
    return rc ? rc : softmask_commit(sm, opt);
}

SD_OPTION_READERS(softmask, smdiff_softmask, sd_softmask_options)

SMDIFF_API const char *smdiff_softmask_last_error(const smdiff_softmask *sm) {
    return sm ? sm->err.msg : "schedule is NULL";
}

SMDIFF_API int32_t smdiff_softmask_lambda(const smdiff_softmask *sm, const float *probs, size_t n,
                                          size_t step, size_t n_steps, double *out) {
    REQUIRE(sm && probs && out, ERR_OF(sm), "smdiff_softmask_lambda: NULL argument");
    REQUIRE(n >= 1 && n <= (size_t)INT64_MAX, ERR_OF(sm), "smdiff_softmask_lambda: n = %zu is not a length", n);
    REQUIRE(n_steps >= 1 && COUNT_OK(n_steps) && step < n_steps, ERR_OF(sm),
            "smdiff_softmask_lambda: step %zu outside [0, %zu)", step, n_steps);
    for (size_t i = 0; i < n; i++)
        if (!(probs[i] >= 0.0f && probs[i] <= FLT_MAX))
            return sd_fail(ERR_OF(sm), SMDIFF_E_NUMERIC,
                           "smdiff_softmask_lambda: probs[%zu] = %g is not a probability", i, (double)probs[i]);
    double gate = sd_softmask_gate(sm, (int32_t)step, (int32_t)n_steps);
    double lambda = gate > 0 ? gate * sd_softmask_lambda_from_entropy(sm, sd_entropy(probs, (int64_t)n)) : 0.0;
    if (!isfinite(lambda))
        return sd_fail(ERR_OF(sm), SMDIFF_E_NUMERIC, "smdiff_softmask_lambda: probabilities give a non-finite entropy");
    *out = lambda;
    return SMDIFF_OK;
}

/* ---------------------------------------------------------------- sampler */

SMDIFF_API int32_t smdiff_sampler_create(smdiff_sampler **out) {
    REQUIRE(out, NULL, "smdiff_sampler_create: out is NULL");
    smdiff_sampler *s = sd_calloc(1, sizeof *s);
    if (!s) return sd_fail(NULL, SMDIFF_E_NOMEM, "out of memory creating a sampler");
    sd_options_defaults(&sd_sampler_options, s->opt);
    sd_options_defaults(&sd_softmask_options, s->softmask.opt);
    strcpy(s->strategy, "maskgit_plus");
    *out = s;
    return SMDIFF_OK;
}

SMDIFF_API void smdiff_sampler_free(smdiff_sampler *s) {
    if (!s) return;
    sd_free(s->text_cache);
    sd_gen_workspace_free(s->ws);
    sd_free(s);
}

SMDIFF_API int32_t smdiff_sampler_set_int(smdiff_sampler *s, int32_t key, int64_t value) {
    REQUIRE(s, ERR_OF(s), "smdiff_sampler_set_int: sampler is NULL");
    int32_t rc = sd_option_set_int(&sd_sampler_options, s->opt, key, value, &s->err);
    if (!rc) s->opt_set |= 1ull << SD_OPT_SLOT(key);
    return rc;
}

SMDIFF_API int32_t smdiff_sampler_set_double(smdiff_sampler *s, int32_t key, double value) {
    REQUIRE(s, ERR_OF(s), "smdiff_sampler_set_double: sampler is NULL");
    int32_t rc = sd_option_set_double(&sd_sampler_options, s->opt, key, value, &s->err);
    if (!rc) s->opt_set |= 1ull << SD_OPT_SLOT(key);
    return rc;
}

SD_OPTION_READERS(sampler, smdiff_sampler, sd_sampler_options)

SMDIFF_API int32_t smdiff_sampler_set_strategy(smdiff_sampler *s, const char *name) {
    REQUIRE(s && name, ERR_OF(s), "smdiff_sampler_set_strategy: NULL argument");
    smdiff_decoder vt;
    void *ud;
    int32_t rc = sd_decoder_lookup(name, &vt, &ud);
    if (rc) return sd_error_forward(&s->err, sd_tls_error());
    strcpy(s->strategy, vt.name);
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_sampler_get_strategy(const smdiff_sampler *s, const char **out) {
    REQUIRE(s && out, ERR_OF(s), "smdiff_sampler_get_strategy: NULL argument");
    *out = s->strategy;
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_sampler_set_softmask(smdiff_sampler *s, const smdiff_softmask *sm) {
    REQUIRE(s && sm, ERR_OF(s), "smdiff_sampler_set_softmask: NULL argument");
    memcpy(s->softmask.opt, sm->opt, sizeof s->softmask.opt);
    s->softmask_set = 1;
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_sampler_set_step_callback(smdiff_sampler *s, smdiff_step_fn fn,
                                                    void *user_data) {
    REQUIRE(s, ERR_OF(s), "smdiff_sampler_set_step_callback: sampler is NULL");
    s->step_fn = fn;
    s->step_ud = user_data;
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_sampler_set_abort_callback(smdiff_sampler *s, smdiff_abort_fn fn,
                                                     void *user_data) {
    REQUIRE(s, ERR_OF(s), "smdiff_sampler_set_abort_callback: sampler is NULL");
    s->abort_fn = fn;
    s->abort_ud = user_data;
    return SMDIFF_OK;
}

SMDIFF_API const char *smdiff_sampler_last_error(const smdiff_sampler *s) {
    return s ? s->err.msg : "sampler is NULL";
}

SMDIFF_API int32_t smdiff_generate_tokens(smdiff_sampler *s, const smdiff_model *m,
                                          const int32_t *prompt, size_t n_prompt, int32_t *out,
                                          size_t capacity, size_t *n_out) {
    SD_MODEL_HOLD(m);
    REQUIRE(s, ERR_OF(s), "smdiff_generate_tokens: sampler is NULL");
    REQUIRE(m && (prompt || n_prompt == 0) && COUNT_OK(n_prompt) && out && n_out, &s->err,
            "smdiff_generate_tokens: invalid argument");
    if (!m->loaded) return sd_fail(&s->err, SMDIFF_E_STATE, "smdiff_generate_tokens: model is not loaded");
    sd_sampler_saved saved;
    int32_t rc = sd_sampler_resolve(s, m, (int64_t)n_prompt, &saved);
    if (rc) return rc;
    size_t n = 0;
    rc = sd_generate_model(s, m, prompt, n_prompt, out, capacity, &n);
    sd_sampler_restore(s, &saved);
    if (rc == SMDIFF_OK) *n_out = n;
    return rc;
}

SMDIFF_API int32_t smdiff_generate_text(smdiff_sampler *s, const smdiff_model *m,
                                        const char *prompt, int32_t chat, char *text,
                                        size_t capacity, size_t *n_out) {
    SD_MODEL_HOLD(m);
    REQUIRE(s, ERR_OF(s), "smdiff_generate_text: sampler is NULL");
    REQUIRE(m && prompt && n_out && (text || capacity == 0), &s->err,
            "smdiff_generate_text: invalid argument");
    if (!m->loaded) return sd_fail(&s->err, SMDIFF_E_STATE, "smdiff_generate_text: model is not loaded");
    /* a second call with the same arguments after SMDIFF_E_BUFFER returns
     * the cached text instead of generating again */
    uint64_t key = sd_sampler_request_key(s, m, &prompt, 1, chat);
    if (!sd_sampler_has_text(s, key)) {
        char *rendered = NULL;
        if (chat) {
            /* One user message in the model's chat template, assistant header appended. */
            const char *role = "user";
            size_t need = 0;
            int32_t rc = smdiff_chat_template(m, 1, &role, &prompt, 1, NULL, 0, &need);
            if (rc && rc != SMDIFF_E_BUFFER) return sd_error_forward(&s->err, sd_tls_error());
            if (!(rendered = sd_malloc(need)))
                return sd_fail(&s->err, SMDIFF_E_NOMEM, "smdiff_generate_text: out of memory");
            if ((rc = smdiff_chat_template(m, 1, &role, &prompt, 1, rendered, need, &need))) {
                sd_free(rendered);
                return sd_error_forward(&s->err, sd_tls_error());
            }
            prompt = rendered;
        }
        size_t n_ids = 0, n_text = 0;
        int32_t rc = smdiff_model_tokenize(m, prompt, strlen(prompt), SMDIFF_TOKENIZE_PARSE_SPECIAL, NULL, 0, &n_ids);
        if (rc && rc != SMDIFF_E_BUFFER) {
            sd_free(rendered);
            return sd_error_forward(&s->err, sd_tls_error());
        }
        int32_t G = (int32_t)s->opt[SD_OPT_SLOT(SMDIFF_SAMPLER_GEN_LENGTH)].i;
        int32_t *ids = sd_malloc(sizeof(int32_t) * (n_ids + 1)), *gen = sd_malloc(sizeof(int32_t) * (size_t)G);
        size_t n_gen = 0;
        if (!ids || !gen) {
            sd_free(ids);
            sd_free(gen);
            sd_free(rendered);
            return sd_fail(&s->err, SMDIFF_E_NOMEM, "smdiff_generate_text: out of memory");
        }
        rc = smdiff_model_tokenize(m, prompt, strlen(prompt), SMDIFF_TOKENIZE_PARSE_SPECIAL, ids, n_ids, &n_ids);
        if (rc) rc = sd_error_forward(&s->err, sd_tls_error());
        if (!rc) rc = smdiff_generate_tokens(s, m, ids, n_ids, gen, (size_t)G, &n_gen);
        char *buf = NULL;
        if (!rc) {
            rc = smdiff_model_detokenize(m, gen, n_gen, 0, NULL, 0, &n_text);
            if (rc == SMDIFF_E_BUFFER || rc == SMDIFF_OK) {
                buf = sd_malloc(n_text + 1);
                rc = buf ? smdiff_model_detokenize(m, gen, n_gen, 0, buf, n_text, &n_text) : SMDIFF_E_NOMEM;
                if (rc == SMDIFF_E_NOMEM) sd_fail(&s->err, rc, "smdiff_generate_text: out of memory");
                else if (rc) sd_error_forward(&s->err, sd_tls_error());
            } else {
                sd_error_forward(&s->err, sd_tls_error());
            }
        }
        sd_free(ids);
        sd_free(gen);
        sd_free(rendered);
        if (rc) {
            sd_free(buf);
            return rc;
        }
        sd_sampler_keep_text(s, key, buf, n_text);
    }
    return sd_sampler_deliver_text(s, "smdiff_generate_text", text, capacity, n_out);
}

/* ----------------------------------------------------------- experimental */

SMDIFF_API int32_t smdiff_resolve_threads(int32_t requested, int32_t *out) {
    REQUIRE(out, NULL, "smdiff_resolve_threads: out is NULL");
    if (requested < 0 || requested > 1024)
        return sd_fail(NULL, SMDIFF_E_RANGE, "thread count %d outside 0..1024", (int)requested);
    *out = requested == 0 ? sd_cpu_count() : requested;
    return SMDIFF_OK;
}

SMDIFF_API const char *smdiff_blas_info(void) { return sd_blas_corename(); }
