/* likelihood.c -- validation bound on fixed noise and AR reference scores; see likelihood.h. */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/pool.h"
#include "core/rng.h"
#include "core/rng_streams.h"
#include "diffusion/softmask.h"
#include "eval/likelihood.h"
#include "io/gguf.h"
#include "nn/blas.h"
#include "nn/model.h"
#include "train/checkpoint.h"
#include "train/objective.h"

/* A loaded model with its thread pool and objective buffers. */
typedef struct eval_ctx {
    sd_tmodel *m;
    sd_pool *pool;
    sd_objective_ws ws;
} eval_ctx;

static void ctx_free(eval_ctx *c) {
    sd_objective_ws_free(&c->ws);
    sd_tmodel_free(c->m);
    sd_pool_free(c->pool);
}

static int32_t ctx_open(eval_ctx *c, const struct smdiff_model *model, int64_t B, int64_t L, int32_t k,
                        int threads, sd_error *err) {
    memset(c, 0, sizeof *c);
    if (threads <= 0) threads = sd_cpu_count();
    int32_t rc = sd_blas_reserve_threads(threads, err);
    if (!rc) rc = sd_tmodel_from_model(model, B, L, 0, &c->m, err);
    if (!rc) rc = sd_pool_create(threads, &c->pool, err);
    if (!rc) {
        c->m->pool = c->pool;
        rc = sd_objective_ws_init(&c->ws, c->m, k, err);
    }
    if (rc) ctx_free(c);
    return rc;
}

static int32_t check_ids(const int32_t *ids, int64_t n, int32_t V, sd_error *err) {
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return sd_fail(err, SMDIFF_E_RANGE, "eval: token %lld is %d, outside vocabulary %d",
                           (long long)i, ids[i], V);
    return SMDIFF_OK;
}

/* k of the two-pass bound: the option, else the model's, else 3 */
static int32_t model_k(const struct smdiff_model *model, int32_t want) {
    if (want > 0) return want;
    sd_error e = {0};
    int64_t k = 0;
    if (sd_gguf_find_key(model->gguf, "smdiff.softmask.k") < 0 ||
        sd_gguf_get_i64(model->gguf, "smdiff.softmask.k", &k, &e) || k < 1 || k > 64)
        k = 3;
    return (int32_t)k;
}

/* k of a two-pass setting; SMDIFF_E_INVAL for omega or k out of range */
static int32_t setting_k(const struct smdiff_model *model, const sd_elbo_sm *s, int32_t j, int32_t *k,
                         sd_error *err) {
    const double *w = s->omega;
    if (!s->own && (!(w[0] > 0 && w[0] < 1 && w[1] > 0 && w[2] < 0) || s->k < 1 || s->k > 64))
        return sd_fail(err, SMDIFF_E_INVAL,
                       "eval: soft-mask setting %d (omega %g, %g, %g, k %d) needs 0 < omega_s < 1, "
                       "omega_a > 0, omega_b < 0, 1 <= k <= 64", (int)j, w[0], w[1], w[2], (int)s->k);
    *k = s->own ? model_k(model, 0) : s->k;
    return SMDIFF_OK;
}

/* The raw parameters of a setting: the loaded model's own, or omega's */
static void setting_raw(const sd_elbo_sm *s, const float own[3], float raw[3]) {
    if (s->own) {
        memcpy(raw, own, 3 * sizeof(float));
        return;
    }
    raw[0] = (float)sd_logit(s->omega[0]);
    raw[1] = (float)sd_softplus_inv(s->omega[1]);
    raw[2] = (float)sd_softplus_inv(-s->omega[2]);
}

int32_t sd_eval_elbo(const struct smdiff_model *model, const int32_t *windows, int64_t n_win,
                     const sd_elbo_opts *o, const sd_elbo_sm *sm, int32_t n_sm, double *window_nll,
                     int64_t *n_masked, sd_error *err) {
    if (!model || !windows || !o || !window_nll || (n_sm && !sm))
        return sd_fail(err, SMDIFF_E_INVAL, "eval: NULL argument");
    if (n_win < 1 || o->L < 1 || o->draws < 1 || !(o->eps > 0 && o->eps < 1) || o->batch < 0 || o->first < 0 ||
        n_sm < 0 || n_sm > 1024)
        return sd_fail(err, SMDIFF_E_INVAL,
                       "eval: need >= 1 window, L >= 1, draws >= 1, 0 < eps < 1, 0 <= settings <= 1024 "
                       "(got %lld, %lld, %d, %g, %d)",
                       (long long)n_win, (long long)o->L, (int)o->draws, o->eps, (int)n_sm);
    const int64_t L = o->L, D = o->draws, B = o->batch ? o->batch : 8, C = 1 + n_sm;
    sd_sm_setting *set = sd_malloc(sizeof *set * (size_t)(n_sm ? n_sm : 1));
    if (!set) return sd_fail(err, SMDIFF_E_NOMEM, "eval: out of memory");
    int32_t k_max = 1, rc = SMDIFF_OK;
    for (int32_t j = 0; !rc && j < n_sm; j++) {
        rc = setting_k(model, &sm[j], j, &set[j].k, err);
        if (!rc && set[j].k > k_max) k_max = set[j].k;
    }
    eval_ctx c;
    if (!rc) rc = ctx_open(&c, model, B, L, k_max, o->threads, err);
    if (rc) {
        sd_free(set);
        return rc;
    }
    sd_tmodel *m = c.m;
    for (int32_t j = 0; j < n_sm; j++) setting_raw(&sm[j], m->p.sm_raw, set[j].raw);
    rc = check_ids(windows, n_win * L, m->hp.n_vocab, err);
    int32_t *x = sd_malloc((size_t)(B * L) * sizeof(int32_t));
    uint8_t *mask = sd_malloc((size_t)(B * L));
    float *t = sd_malloc((size_t)B * sizeof(float));
    double *seq = sd_malloc((size_t)(B * C) * sizeof(double));
    if (!rc && (!x || !mask || !t || !seq)) rc = sd_fail(err, SMDIFF_E_NOMEM, "eval: out of memory");
    if (!rc) memset(window_nll, 0, sizeof(double) * (size_t)(n_win * C));
    int64_t masked_total = 0, total = n_win * D, done = 0;
    sd_rng r;
    /* (window, draw) pairs in order; window i's stream is restarted for
     * each of its draws and skipped forward, so the noise of a pair does not
     * depend on how pairs are batched */
    while (!rc && done < total) {
        int64_t nb = total - done < B ? total - done : B;
        for (int64_t b = 0; b < nb; b++) {
            int64_t i = (done + b) / D, j = (done + b) % D;
            sd_rng_init(&r, o->seed, SD_STREAM_EVAL_WINDOW(o->first + i));
            double u = sd_rng_uniform(&r);
            double tj = o->eps + (1.0 - o->eps) * (u + (double)j) / (double)D;
            for (int64_t s = 0; s < j * L; s++) (void)sd_rng_uniform(&r); /* masks of draws < j */
            t[b] = (float)tj;
            memcpy(x + b * L, windows + i * L, (size_t)L * sizeof(int32_t));
            for (int64_t p = 0; p < L; p++) mask[b * L + p] = sd_rng_uniform(&r) < tj;
        }
        int64_t nm = 0;
        rc = sd_mdlm_eval_settings(m, &c.ws, x, nb, L, mask, t, set, n_sm, seq, &nm);
        if (rc) {
            sd_error_forward(err, &m->err);
            break;
        }
        for (int64_t b = 0; b < nb; b++)
            for (int64_t col = 0; col < C; col++) window_nll[(done + b) / D * C + col] += seq[b * C + col] / (double)D;
        masked_total += nm;
        done += nb;
    }
    if (!rc && n_masked) *n_masked = masked_total;
    sd_free(x);
    sd_free(mask);
    sd_free(t);
    sd_free(seq);
    sd_free(set);
    ctx_free(&c);
    return rc;
}

int32_t sd_eval_ar(const struct smdiff_model *model, const int32_t *seqs, int64_t n, int64_t L, int threads,
                   double *nll, float *features, int64_t *d_out, sd_error *err) {
    if (!model || !seqs || n < 1 || L < 2)
        return sd_fail(err, SMDIFF_E_INVAL, "eval: need a model, >= 1 sequence and L >= 2");
    const int64_t B = 8;
    eval_ctx c;
    int32_t rc = ctx_open(&c, model, B, L, 1, threads, err);
    if (rc) return rc;
    sd_tmodel *m = c.m;
    const int64_t d = m->hp.n_embd;
    if (d_out) *d_out = d;
    rc = check_ids(seqs, n * L, m->hp.n_vocab, err);
    for (int64_t s0 = 0; !rc && s0 < n; s0 += B) {
        int64_t nb = n - s0 < B ? n - s0 : B;
        double l = 0.0;
        rc = sd_ar_loss(m, &c.ws, seqs + s0 * L, nb, L, &l);
        if (rc) {
            sd_error_forward(err, &m->err);
            break;
        }
        /* loss rows are (b, p) for p < L-1 in order; losses are raw CE */
        for (int64_t b = 0; b < nb; b++) {
            if (nll) {
                double acc = 0.0;
                for (int64_t p = 0; p < L - 1; p++) acc += m->a.losses[b * (L - 1) + p];
                nll[s0 + b] = acc / (double)(L - 1);
            }
            if (features)
                memcpy(features + (s0 + b) * d, m->a.lnf + (b * L + L - 1) * d, (size_t)d * sizeof(float));
        }
    }
    ctx_free(&c);
    return rc;
}
