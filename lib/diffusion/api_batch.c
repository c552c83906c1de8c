/* api_batch.c -- the experimental batch API (include/smdiff/smdiff.h,
 * "Batched generation"): sequences, each on its own sampler, advanced
 * together by the denoising loop's batch entry (generate.c,
 * sd_gen_batch_step) with one forward pass per step.
 *
 * A batch holds up to `capacity` sequences in slots; a slot's handle is its
 * index. A sampler belongs to the batch from smdiff_batch_add to
 * smdiff_batch_remove: its run lives in its workspace, the options the
 * run's defaults settled are put back when the sequence finishes. */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/options.h"
#include "generate.h"
#include "nn/model.h"
#include "sampler.h"
#include "smdiff/smdiff.h"

static const sd_option_def defs[] = {
    {SMDIFF_BATCH_CAPACITY, "capacity", SMDIFF_TYPE_INT, 1, 4096, 8, 0, 0},
};
static const sd_option_table batch_options = {defs, (int32_t)(sizeof defs / sizeof defs[0])};
_Static_assert(sizeof defs / sizeof defs[0] == SMDIFF_BATCH_OPT_LAST_ - SMDIFF_BATCH_OPT_FIRST_ + 1,
               "one entry per option");

enum { RUNNING = 1, FINISHED = 0 }; /* a slot's status; < 0: the error that stopped it */

typedef struct batch_seq {
    smdiff_sampler *s;      /* NULL: a free slot */
    sd_sampler_saved saved; /* the sampler's options before its defaults were settled */
    int32_t status;
} batch_seq;

struct smdiff_batch {
    smdiff_model *model;
    sd_gen_model_ctx mc;    /* the shared forward pass's scratch */
    sd_gen_model gm;
    sd_optval opt[SMDIFF_BATCH_OPT_LAST_ - SMDIFF_BATCH_OPT_FIRST_ + 1];
    batch_seq *seq;         /* [cap] */
    size_t cap;
    /* scratch of a step, [cap] each */
    smdiff_sampler **run;
    sd_gen_fwd *fwd;
    int32_t *status;
    size_t *slot;
    float *logits;          /* the step's logits, all sequences */
    size_t logits_cap;
    sd_error err;
};

#define ERR_OF SD_ERR_OF /* core/options.h */

/* The slots and the step's scratch for cap sequences (the held ones kept). */
static int32_t resize(smdiff_batch *b, size_t cap) {
    batch_seq *seq = sd_calloc(cap, sizeof *seq);
    smdiff_sampler **run = sd_calloc(cap, sizeof *run);
    sd_gen_fwd *fwd = sd_calloc(cap, sizeof *fwd);
    int32_t *status = sd_calloc(cap, sizeof *status);
    size_t *slot = sd_calloc(cap, sizeof *slot);
    if (!seq || !run || !fwd || !status || !slot) {
        sd_free(seq), sd_free(run), sd_free(fwd), sd_free(status), sd_free(slot);
        return sd_fail(&b->err, SMDIFF_E_NOMEM, "out of memory for a batch of %zu sequences", cap);
    }
    for (size_t i = 0; i < b->cap && i < cap; i++) seq[i] = b->seq[i];
    sd_free(b->seq), sd_free(b->run), sd_free(b->fwd), sd_free(b->status), sd_free(b->slot);
    b->seq = seq, b->run = run, b->fwd = fwd, b->status = status, b->slot = slot;
    b->cap = cap;
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_batch_create(smdiff_model *model, smdiff_batch **out) {
    if (!model || !out) return sd_fail(NULL, SMDIFF_E_INVAL, "smdiff_batch_create: NULL argument");
    if (!model->loaded) return sd_fail(NULL, SMDIFF_E_STATE, "smdiff_batch_create: model is not loaded");
    smdiff_batch *b = sd_calloc(1, sizeof *b);
    if (!b) return sd_fail(NULL, SMDIFF_E_NOMEM, "out of memory creating a batch");
    sd_options_defaults(&batch_options, b->opt);
    if (resize(b, (size_t)b->opt[SD_OPT_SLOT(SMDIFF_BATCH_CAPACITY)].i)) {
        sd_free(b);
        return SMDIFF_E_NOMEM;
    }
    smdiff_model_retain(model);
    b->model = model;
    sd_gen_model_of(model, &b->mc, &b->gm);
    *out = b;
    return SMDIFF_OK;
}

/* The sequence's settled options go back to its sampler once it stops. */
static void settle_back(batch_seq *q) {
    if (q->status == RUNNING) return;
    sd_sampler_restore(q->s, &q->saved);
}

static void release(batch_seq *q) {
    if (q->status == RUNNING) sd_sampler_restore(q->s, &q->saved);
    sd_gen_batch_close(q->s);
    memset(q, 0, sizeof *q);
}

SMDIFF_API void smdiff_batch_free(smdiff_batch *b) {
    if (!b) return;
    for (size_t i = 0; i < b->cap; i++)
        if (b->seq[i].s) release(&b->seq[i]);
    sd_gen_model_ctx_free(&b->mc);
    sd_free(b->seq), sd_free(b->run), sd_free(b->fwd), sd_free(b->status), sd_free(b->slot);
    sd_free(b->logits);
    smdiff_model_free(b->model);
    sd_free(b);
}

SMDIFF_API int32_t smdiff_batch_set_int(smdiff_batch *b, int32_t key, int64_t value) {
    if (!b) return sd_fail(NULL, SMDIFF_E_INVAL, "smdiff_batch_set_int: batch is NULL");
    sd_optval opt[sizeof b->opt / sizeof b->opt[0]];
    memcpy(opt, b->opt, sizeof opt);
    int32_t rc = sd_option_set_int(&batch_options, opt, key, value, &b->err);
    if (rc) return rc;
    size_t cap = (size_t)opt[SD_OPT_SLOT(SMDIFF_BATCH_CAPACITY)].i;
    for (size_t i = cap; i < b->cap; i++)
        if (b->seq[i].s)
            return sd_fail(&b->err, SMDIFF_E_STATE, "capacity %zu: sequence %zu is still held (remove it first)", cap,
                           i);
    if (cap != b->cap && (rc = resize(b, cap))) return rc;
    memcpy(b->opt, opt, sizeof opt);
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_batch_get_int(const smdiff_batch *b, int32_t key, int64_t *out) {
    if (!b || !out) return sd_fail(ERR_OF(b), SMDIFF_E_INVAL, "smdiff_batch_get_int: NULL argument");
    return sd_option_get_int(&batch_options, b->opt, key, out, ERR_OF(b));
}

SMDIFF_API int32_t smdiff_batch_option_info(int32_t key, const char **name, int32_t *type, double *min,
                                            double *max, double *def) {
    return sd_option_info(&batch_options, key, name, type, min, max, def, NULL);
}

SMDIFF_API int32_t smdiff_batch_option_key(const char *name, int32_t *key) {
    return sd_option_key(&batch_options, name, key, NULL);
}

SMDIFF_API int32_t smdiff_batch_add(smdiff_batch *b, smdiff_sampler *s, const int32_t *ids, size_t n_ids,
                                    int32_t is_canvas, size_t *id) {
    if (!b) return sd_fail(NULL, SMDIFF_E_INVAL, "smdiff_batch_add: batch is NULL");
    if (!s || (!ids && n_ids) || n_ids > (size_t)INT32_MAX || !id || (is_canvas != 0 && is_canvas != 1))
        return sd_fail(&b->err, SMDIFF_E_INVAL, "smdiff_batch_add: invalid argument");
    size_t free_slot = b->cap;
    for (size_t i = b->cap; i-- > 0;) {
        if (b->seq[i].s == s) return sd_fail(&b->err, SMDIFF_E_STATE, "the sampler already runs sequence %zu", i);
        if (!b->seq[i].s) free_slot = i;
    }
    if (free_slot == b->cap)
        return sd_fail(&b->err, SMDIFF_E_STATE, "the batch is full (capacity %zu): remove a sequence first", b->cap);
    batch_seq *q = &b->seq[free_slot];
    int64_t n_masks = 0;
    for (size_t i = 0; is_canvas && i < n_ids; i++) n_masks += ids[i] == b->model->w.hp.mask_id;
    int32_t rc = is_canvas ? sd_sampler_resolve_canvas(s, b->model, n_masks, &q->saved)
                           : sd_sampler_resolve(s, b->model, (int64_t)n_ids, &q->saved);
    int has_step = 0;
    if (!rc) {
        rc = sd_gen_batch_open(s, &b->gm, ids, is_canvas, n_ids, SIZE_MAX, &has_step);
        if (rc) sd_sampler_restore(s, &q->saved);
    }
    if (rc) return sd_error_forward(&b->err, &s->err);
    q->s = s;
    q->status = has_step ? RUNNING : FINISHED;
    settle_back(q);
    *id = free_slot;
    return SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_batch_step(smdiff_batch *b, size_t *n_running) {
    if (!b) return sd_fail(NULL, SMDIFF_E_INVAL, "smdiff_batch_step: batch is NULL");
    size_t k = 0;
    for (size_t i = 0; i < b->cap; i++)
        if (b->seq[i].s && b->seq[i].status == RUNNING) b->slot[k] = i, b->run[k++] = b->seq[i].s;
    int32_t rc = k ? sd_gen_batch_step(b->run, k, &b->gm, b->fwd, &b->logits, &b->logits_cap, b->status, &b->err)
                   : SMDIFF_OK;
    size_t running = 0;
    for (size_t j = 0; j < k; j++) {
        batch_seq *q = &b->seq[b->slot[j]];
        if (rc && b->status[j] > 0) continue; /* not advanced */
        q->status = b->status[j];
        settle_back(q);
        running += q->status == RUNNING;
    }
    if (n_running) *n_running = rc ? k : running;
    return rc; /* recorded on the batch by the shared pass */
}

SMDIFF_API int32_t smdiff_batch_run(smdiff_batch *b) {
    size_t n = 1;
    int32_t rc = SMDIFF_OK;
    while (!rc && n) rc = smdiff_batch_step(b, &n);
    return rc;
}

static batch_seq *find(smdiff_batch *b, size_t id, const char *fn) {
    if (id < b->cap && b->seq[id].s) return &b->seq[id];
    sd_fail(&b->err, SMDIFF_E_NOT_FOUND, "%s: no sequence %zu in the batch", fn, id);
    return NULL;
}

SMDIFF_API int32_t smdiff_batch_result(smdiff_batch *b, size_t id, int32_t *out, size_t capacity,
                                       size_t *n_out) {
    if (!b) return sd_fail(NULL, SMDIFF_E_INVAL, "smdiff_batch_result: batch is NULL");
    if (!out || !n_out) return sd_fail(&b->err, SMDIFF_E_INVAL, "smdiff_batch_result: NULL argument");
    batch_seq *q = find(b, id, "smdiff_batch_result");
    if (!q) return SMDIFF_E_NOT_FOUND;
    if (q->status == RUNNING) return sd_fail(&b->err, SMDIFF_E_STATE, "sequence %zu is still running", id);
    if (q->status < 0) return sd_error_forward(&b->err, &q->s->err);
    int32_t rc = sd_gen_result(q->s, out, capacity, n_out);
    return rc ? sd_error_forward(&b->err, &q->s->err) : SMDIFF_OK;
}

SMDIFF_API int32_t smdiff_batch_remove(smdiff_batch *b, size_t id) {
    if (!b) return sd_fail(NULL, SMDIFF_E_INVAL, "smdiff_batch_remove: batch is NULL");
    batch_seq *q = find(b, id, "smdiff_batch_remove");
    if (!q) return SMDIFF_E_NOT_FOUND;
    release(q);
    return SMDIFF_OK;
}

SMDIFF_API const char *smdiff_batch_last_error(const smdiff_batch *b) { return b ? b->err.msg : "batch is NULL"; }
