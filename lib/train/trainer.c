/* trainer.c -- training loop state with exact resume; see trainer.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng_streams.h"
#include "io/gguf.h"
#include "trainer.h"

int32_t sd_trainer_create(sd_tmodel *m, const sd_trainer_opts *opts, sd_pool *pool,
                          sd_trainer **out, sd_error *err) {
    if (!out || !m || !opts) {
        sd_tmodel_free(m);
        return sd_fail(err, SMDIFF_E_INVAL, "trainer: NULL argument");
    }
    *out = NULL;
    const sd_trainer_opts *o = opts;
    if (o->B < 1 || o->L < 2 || o->B > m->B_max || o->L > m->L_max) {
        int32_t rc = sd_fail(err, SMDIFF_E_INVAL, "trainer: batch %lld x %lld does not fit the model's %lld x %lld",
                             (long long)o->B, (long long)o->L, (long long)m->B_max, (long long)m->L_max);
        sd_tmodel_free(m);
        return rc;
    }
    if ((o->obj.kind != SD_OBJ_MDLM && o->obj.kind != SD_OBJ_AR) || !(o->obj.eps > 0 && o->obj.eps < 1) ||
        !(o->obj.sm_prob >= 0 && o->obj.sm_prob <= 1) || (o->obj.sm && (o->obj.sm_k < 1 || o->obj.sm_k > 64))) {
        sd_tmodel_free(m);
        return sd_fail(err, SMDIFF_E_INVAL, "trainer: bad objective options (kind %d, eps %g, sm_prob %g, k %d)",
                       o->obj.kind, o->obj.eps, o->obj.sm_prob, o->obj.sm_k);
    }
    sd_trainer *t = sd_calloc(1, sizeof *t);
    if (!t) {
        sd_tmodel_free(m);
        return sd_fail(err, SMDIFF_E_NOMEM, "trainer: out of memory");
    }
    t->o = *o;
    t->m = m;
    t->pool = pool;
    m->pool = pool;
    int32_t rc = sd_adamw_init(&t->opt, &o->adam, m->params, m->n_params, err);
    if (!rc) rc = sd_objective_ws_init(&t->ws, m, o->obj.sm_k > 0 ? o->obj.sm_k : 1, err);
    t->batch = sd_calloc((size_t)(o->B * o->L), sizeof(int32_t));
    if (!rc && !t->batch) rc = sd_fail(err, SMDIFF_E_NOMEM, "trainer: out of memory");
    if (rc) {
        sd_trainer_free(t);
        return rc;
    }
    t->opt.pool = pool;
    double R = o->obj.kind == SD_OBJ_AR ? (double)(o->B * (o->L - 1)) : (double)(o->B * o->L) * (1.0 + o->obj.eps) / 2;
    t->plain_flops = 3.0 * sd_tmodel_forward_flops(&m->hp, o->B, o->L, (int64_t)llround(R));
    sd_rng_init(&t->rng, o->seed, SD_STREAM_TRAIN);
    *out = t;
    return SMDIFF_OK;
}

void sd_trainer_free(sd_trainer *t) {
    if (!t) return;
    sd_adamw_free(&t->opt);
    sd_objective_ws_free(&t->ws);
    sd_tmodel_free(t->m);
    sd_free(t->batch);
    sd_free(t);
}

static int32_t check_tokens(sd_trainer *t, const int32_t *tokens, int64_t n, const char *what) {
    if (!tokens || n < t->o.L)
        return sd_fail(&t->err, SMDIFF_E_INVAL,
                       "trainer: %s has %lld tokens, fewer than one sequence of %lld (corpus too small)",
                       what, (long long)(tokens ? n : 0), (long long)t->o.L);
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= t->m->hp.n_vocab)
            return sd_fail(&t->err, SMDIFF_E_INVAL, "trainer: %s token %lld is %d, outside vocabulary %d",
                           what, (long long)i, tokens[i], t->m->hp.n_vocab);
    return SMDIFF_OK;
}

int32_t sd_trainer_set_data(sd_trainer *t, const int32_t *tokens, int64_t n) {
    int32_t rc = check_tokens(t, tokens, n, "training data");
    if (rc) return rc;
    t->data = tokens;
    t->n_data = n;
    return SMDIFF_OK;
}

/* B random windows of L tokens from tokens[n] into out */
static void draw_windows(sd_rng *rng, const int32_t *tokens, int64_t n, int64_t B, int64_t L,
                         int32_t *out) {
    for (int64_t b = 0; b < B; b++) {
        uint64_t start = sd_rng_below(rng, (uint64_t)(n - L + 1));
        memcpy(out + b * L, tokens + start, (size_t)L * sizeof(int32_t));
    }
}

int32_t sd_trainer_step(sd_trainer *t, double *loss, double *grad_norm) {
    if (!t->data) return sd_fail(&t->err, SMDIFF_E_STATE, "trainer: no training data");
    int64_t B = t->o.B, L = t->o.L;
    draw_windows(&t->rng, t->data, t->n_data, B, L, t->batch);
    double l = 0.0, f0 = t->m->flops;
    int used_sm = 0;
    int32_t rc = sd_objective_loss_grad(t->m, &t->ws, &t->o.obj, &t->rng, t->batch, B, L, &l, &used_sm);
    if (rc) return sd_error_forward(&t->err, &t->m->err);
    if (!isfinite(l))
        return sd_fail(&t->err, SMDIFF_E_NUMERIC, "trainer: loss is not finite at step %lld",
                       (long long)t->step + 1);
    rc = sd_adamw_step(&t->opt, t->m->params, t->m->grads, t->m->tensors, t->m->n_tensors, grad_norm, &t->err);
    if (rc) return rc;
    t->flops += t->m->flops - f0;
    t->last_sm = used_sm;
    memcpy(t->last_grad_sm, t->m->g.sm_raw, sizeof t->last_grad_sm);
    t->step++;
    if (loss) *loss = l;
    return SMDIFF_OK;
}

int32_t sd_trainer_eval(sd_trainer *t, const int32_t *tokens, int64_t n, int32_t n_batches,
                        double *loss) {
    int32_t rc = check_tokens(t, tokens, n, "evaluation data");
    if (rc) return rc;
    if (n_batches < 1) return sd_fail(&t->err, SMDIFF_E_INVAL, "trainer: n_batches must be >= 1");
    int64_t B = t->o.B, L = t->o.L;
    sd_rng r;
    sd_rng_init(&r, t->o.seed, SD_STREAM_TRAIN_EVAL);
    double sum = 0.0;
    for (int32_t i = 0; i < n_batches; i++) {
        draw_windows(&r, tokens, n, B, L, t->batch);
        double l = 0.0;
        if (t->o.obj.kind == SD_OBJ_AR) {
            rc = sd_ar_loss(t->m, &t->ws, t->batch, B, L, &l);
        } else {
            sd_mdlm_sample(&r, &t->o.obj, B, L, t->ws.t, t->ws.masked);
            rc = sd_mdlm_loss(t->m, &t->ws, &t->o.obj, t->batch, B, L, t->ws.masked, t->ws.t, 0, &l, NULL);
        }
        if (rc) return sd_error_forward(&t->err, &t->m->err);
        sum += l;
    }
    *loss = sum / n_batches;
    return SMDIFF_OK;
}

/* ------------------------------------------------------------ state */

static const char *const PREFIX[3] = {"params.", "adam_m.", "adam_v."};

int32_t sd_trainer_state_writer(sd_trainer *t, sd_gguf_writer **out) {
    sd_gguf_writer *w = NULL;
    int32_t rc = sd_gguf_writer_create(&w, &t->err);
    if (rc) return rc;
    uint64_t rng_words[11];
    memcpy(rng_words, t->rng.key, 2 * 8);
    memcpy(rng_words + 2, t->rng.ctr, 4 * 8);
    memcpy(rng_words + 6, t->rng.buf, 4 * 8);
    rng_words[10] = (uint64_t)t->rng.pos;
    rc = sd_gguf_set_str(w, "general.architecture", "smdiff-train-state");
    if (!rc) rc = sd_gguf_set_u64(w, "smdiff.train.step", (uint64_t)t->step);
    if (!rc) rc = sd_gguf_set_u64(w, "smdiff.train.adam_step", (uint64_t)t->opt.step);
    if (!rc) rc = sd_gguf_set_u64(w, "smdiff.train.batch", (uint64_t)t->o.B);
    if (!rc) rc = sd_gguf_set_u64(w, "smdiff.train.seq_len", (uint64_t)t->o.L);
    if (!rc) rc = sd_gguf_set_i32(w, "smdiff.train.objective", t->o.obj.kind);
    if (!rc) rc = sd_gguf_set_u64(w, "smdiff.train.seed", t->o.seed);
    if (!rc) rc = sd_gguf_set_scalar(w, "smdiff.train.flops", SD_GGUF_FLOAT64, &t->flops);
    if (!rc) rc = sd_gguf_set_arr(w, "smdiff.train.rng", SD_GGUF_UINT64, rng_words, 11);
    const float *src[3] = {t->m->params, t->opt.m, t->opt.v};
    char name[96];
    for (int32_t i = 0; !rc && i < t->m->n_tensors; i++) {
        const sd_ttensor *tt = &t->m->tensors[i];
        uint64_t ne[2] = {(uint64_t)tt->cols, (uint64_t)tt->rows};
        for (int k = 0; !rc && k < 3; k++) {
            snprintf(name, sizeof name, "%s%s", PREFIX[k], tt->name);
            rc = sd_gguf_add_tensor(w, name, 2, ne, SD_GGML_F32, src[k] + tt->offset, 1);
        }
        if (!rc && t->opt.ema) {
            snprintf(name, sizeof name, "ema.%s", tt->name);
            rc = sd_gguf_add_tensor(w, name, 2, ne, SD_GGML_F32, t->opt.ema + tt->offset, 1);
        }
    }
    if (rc) {
        sd_error_forward(&t->err, sd_gguf_writer_error(w));
        sd_gguf_writer_free(w);
        return rc;
    }
    *out = w;
    return SMDIFF_OK;
}

int32_t sd_trainer_save_state(sd_trainer *t, const char *path) {
    if (!path) return sd_fail(&t->err, SMDIFF_E_INVAL, "trainer: NULL path");
    sd_gguf_writer *w = NULL;
    int32_t rc = sd_trainer_state_writer(t, &w);
    if (!rc) rc = sd_gguf_write(w, path, &t->err);
    sd_gguf_writer_free(w);
    return rc;
}

int32_t sd_trainer_load_state(sd_trainer *t, const char *path) {
    sd_gguf *g = NULL;
    int32_t rc = sd_gguf_open(path, 1, &g, &t->err);
    if (rc) return rc;
    if (!sd_gguf_has_checksum(g))
        rc = sd_fail(&t->err, SMDIFF_E_FORMAT, "trainer: %s has no checksum (%s): not a training state file, or one "
                     "written before smdiff 0.2", path, SD_GGUF_CHECKSUM_KEY);
    if (!rc) rc = sd_trainer_load_state_from(t, g, path);
    sd_gguf_close(g);
    return rc;
}

/* Check g against the trainer and, with copy, load it (after checking). */
static int32_t state_from(sd_trainer *t, const sd_gguf *g, const char *path, int copy) {
    uint64_t step = 0, astep = 0, B = 0, L = 0, seed = 0;
    int64_t kind = -1;
    uint32_t et = 0;
    uint64_t n_rng = 0;
    if (sd_gguf_get_u64(g, "smdiff.train.step", &step, &t->err) ||
        sd_gguf_get_u64(g, "smdiff.train.adam_step", &astep, &t->err) ||
        sd_gguf_get_u64(g, "smdiff.train.batch", &B, &t->err) ||
        sd_gguf_get_u64(g, "smdiff.train.seq_len", &L, &t->err) ||
        sd_gguf_get_u64(g, "smdiff.train.seed", &seed, &t->err) ||
        sd_gguf_get_i64(g, "smdiff.train.objective", &kind, &t->err) ||
        sd_gguf_get_arr(g, "smdiff.train.rng", &et, &n_rng, &t->err) || et != SD_GGUF_UINT64 || n_rng != 11) {
        return sd_fail(&t->err, SMDIFF_E_FORMAT, "trainer: %s is not a training state file", path);
    }
    if (B != (uint64_t)t->o.B || L != (uint64_t)t->o.L || kind != t->o.obj.kind) {
        return sd_fail(&t->err, SMDIFF_E_FORMAT,
                       "trainer: shape mismatch on resume: %s has batch %llu x %llu, objective %lld; "
                       "this run has %lld x %lld, objective %d",
                       path, (unsigned long long)B, (unsigned long long)L, (long long)kind,
                       (long long)t->o.B, (long long)t->o.L, t->o.obj.kind);
    }
    /* check every tensor before changing anything */
    char name[96];
    float *dst[4] = {t->m->params, t->opt.m, t->opt.v, t->opt.ema};
    for (int pass = 0; pass < 1 + copy; pass++)
        for (int32_t i = 0; i < t->m->n_tensors; i++) {
            const sd_ttensor *tt = &t->m->tensors[i];
            for (int k = 0; k < 4; k++) {
                if (k == 3 && !t->opt.ema) continue;
                snprintf(name, sizeof name, "%s%s", k == 3 ? "ema." : PREFIX[k], tt->name);
                const sd_gguf_tensor *gt = sd_gguf_find_tensor(g, name);
                if (!gt || gt->type != SD_GGML_F32 || gt->ne[0] != (uint64_t)tt->cols ||
                    (gt->n_dims > 1 ? gt->ne[1] : 1) != (uint64_t)tt->rows) {
                    return sd_fail(&t->err, SMDIFF_E_FORMAT,
                                   "trainer: shape mismatch on resume: %s in %s is missing or not "
                                   "F32 [%lld, %lld]", name, path, (long long)tt->rows, (long long)tt->cols);
                }
                if (pass == 1) memcpy(dst[k] + tt->offset, gt->data, (size_t)(tt->rows * tt->cols) * sizeof(float));
            }
        }
    if (!copy) return SMDIFF_OK;
    const void *rd = sd_gguf_arr_data(g, "smdiff.train.rng");
    uint64_t words[11];
    memcpy(words, rd, sizeof words);
    memcpy(t->rng.key, words, 2 * 8);
    memcpy(t->rng.ctr, words + 2, 4 * 8);
    memcpy(t->rng.buf, words + 6, 4 * 8);
    t->rng.pos = (int)(words[10] & 7);
    t->step = (int64_t)step;
    t->opt.step = (int64_t)astep;
    sd_error ignored = {0};
    if (sd_gguf_find_key(g, "smdiff.train.flops") < 0 || sd_gguf_get_f64(g, "smdiff.train.flops", &t->flops, &ignored) ||
        !(t->flops >= 0))
        t->flops = (double)step * t->plain_flops; /* a state from before compute was kept */
    if (seed != t->o.seed) t->o.seed = seed; /* evaluation windows follow the run's seed */
    return SMDIFF_OK;
}

int32_t sd_trainer_check_state(sd_trainer *t, const sd_gguf *g, const char *name) { return state_from(t, g, name, 0); }

int32_t sd_trainer_load_state_from(sd_trainer *t, const sd_gguf *g, const char *name) {
    return state_from(t, g, name, 1);
}
