/* objective.c -- MDLM, SM two-pass and AR losses; see objective.h. */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "nn/blas.h"
#include "objective.h"
#include "ops.h"

void sd_objective_defaults(sd_objective_opts *o) {
    memset(o, 0, sizeof *o);
    o->kind = SD_OBJ_MDLM;
    o->eps = 1e-3;
    o->sm_prob = 0.8;
    o->sm_k = 3;
}

int32_t sd_objective_ws_init(sd_objective_ws *ws, const sd_tmodel *m, int32_t k_max, sd_error *err) {
    memset(ws, 0, sizeof *ws);
    if (!m || k_max < 1 || k_max > 64)
        return sd_fail(err, SMDIFF_E_INVAL, "objective: bad model or k %d (1..64)", k_max);
    int64_t cap = m->B_max * m->L_max;
    size_t c = (size_t)cap, ck = c * (size_t)k_max;
    ws->cap = cap;
    ws->k_max = k_max;
    ws->t = sd_calloc((size_t)m->B_max, sizeof(float));
    ws->masked = sd_calloc(c, 1);
    ws->ids = sd_calloc(c, sizeof(int32_t));
    ws->loss_rows = sd_calloc(c, sizeof(int32_t));
    ws->loss_targets = sd_calloc(c, sizeof(int32_t));
    ws->loss_weights = sd_calloc(c, sizeof(float));
    ws->loss_pos = sd_calloc(c, sizeof(int32_t));
    ws->soft_rows = sd_calloc(c, sizeof(int32_t));
    ws->soft_ids = sd_calloc(ck, sizeof(int32_t));
    ws->soft_pi = sd_calloc(ck, sizeof(float));
    ws->soft_entropy = sd_calloc(c, sizeof(float));
    if (!ws->t || !ws->masked || !ws->ids || !ws->loss_rows || !ws->loss_targets ||
        !ws->loss_weights || !ws->loss_pos || !ws->soft_rows || !ws->soft_ids || !ws->soft_pi ||
        !ws->soft_entropy) {
        sd_objective_ws_free(ws);
        return sd_fail(err, SMDIFF_E_NOMEM, "objective: out of memory");
    }
    return SMDIFF_OK;
}

void sd_objective_ws_free(sd_objective_ws *ws) {
    if (!ws) return;
    sd_free(ws->t);
    sd_free(ws->masked);
    sd_free(ws->ids);
    sd_free(ws->loss_rows);
    sd_free(ws->loss_targets);
    sd_free(ws->loss_weights);
    sd_free(ws->loss_pos);
    sd_free(ws->soft_rows);
    sd_free(ws->soft_ids);
    sd_free(ws->soft_pi);
    sd_free(ws->soft_entropy);
    memset(ws, 0, sizeof *ws);
}

/* t [B], masked [B*L] */
void sd_mdlm_sample(sd_rng *rng, const sd_objective_opts *o, int64_t B, int64_t L, float *t,
                    uint8_t *masked) {
    double u0 = sd_rng_uniform(rng);
    for (int64_t b = 0; b < B; b++) {
        /* antithetic: one uniform, B evenly spaced points, lower variance */
        double u = o->antithetic ? (u0 + (double)b) / (double)B : (b == 0 ? u0 : sd_rng_uniform(rng));
        t[b] = (float)(o->eps + (1.0 - o->eps) * u);
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t p = 0; p < L; p++) masked[b * L + p] = sd_rng_uniform(rng) < t[b];
}

static int32_t check_args(sd_tmodel *m, sd_objective_ws *ws, const int32_t *x0, int64_t B,
                          int64_t L) {
    if (!m || !ws || !x0) return sd_fail(m ? &m->err : NULL, SMDIFF_E_INVAL, "objective: NULL argument");
    if (B < 1 || L < 1 || B * L > ws->cap || B > m->B_max || L > m->L_max)
        return sd_fail(&m->err, SMDIFF_E_INVAL, "objective: batch %lld x %lld does not fit",
                       (long long)B, (long long)L);
    for (int64_t i = 0; i < B * L; i++)
        if (x0[i] < 0 || x0[i] >= m->hp.n_vocab)
            return sd_fail(&m->err, SMDIFF_E_INVAL, "objective: token %d outside vocabulary %d",
                           x0[i], m->hp.n_vocab);
    return SMDIFF_OK;
}

typedef struct sm_stats_ctx {
    sd_objective_ws *ws;
    const float *logits;
    int64_t V;
    int32_t k;
} sm_stats_ctx;

/* pass-1 statistics of loss rows [r0, r1): top-k ids, pi, entropy */
static void sm_stats_rows(void *vctx, int64_t r0, int64_t r1, int thread) {
    (void)thread;
    const sm_stats_ctx *c = vctx;
    for (int64_t r = r0; r < r1; r++)
        c->ws->soft_entropy[r] = (float)sd_tr_topk_entropy(
            c->logits + r * c->V, c->V, c->k, c->ws->soft_ids + r * c->k, c->ws->soft_pi + r * c->k);
}

/* ws->batch over ws->ids [B, L] with the R loss rows ws->loss_* hold;
 * SMDIFF_E_INVAL ("R <what> exceed ...") if the model has fewer logit rows. */
static int32_t loss_batch(sd_tmodel *m, sd_objective_ws *ws, int64_t B, int64_t L, int64_t R, int causal,
                          const char *what) {
    if (R > m->R_max)
        return sd_fail(&m->err, SMDIFF_E_INVAL, "objective: %lld %s exceed the model's %lld", (long long)R,
                       what, (long long)m->R_max);
    sd_tbatch *bt = &ws->batch;
    memset(bt, 0, sizeof *bt);
    bt->B = B;
    bt->L = L;
    bt->ids = ws->ids;
    bt->causal = causal;
    bt->n_loss = R;
    bt->loss_rows = ws->loss_rows;
    bt->loss_targets = ws->loss_targets;
    bt->loss_weights = ws->loss_weights;
    return SMDIFF_OK;
}

/* The shared end of every objective: forward (and backward) of a built batch. */
static int32_t run_batch(sd_tmodel *m, const sd_tbatch *bt, int backward, double *loss) {
    if (backward) sd_tmodel_zero_grad(m);
    double l = 0.0;
    sd_tbatch b = *bt;
    b.no_grad = !backward;
    int32_t rc = sd_tmodel_forward(m, &b, &l);
    if (rc) return rc;
    if (loss) *loss = l;
    return backward ? sd_tmodel_backward(m, bt) : SMDIFF_OK;
}

/* The masked batch of x0 under (masked, t) in ws->batch: input ids (the
 * mask id where masked) and one loss row per masked position, weighted
 * 1 / (B L t_b); *R_out gets their number. */
static int32_t mdlm_batch(sd_tmodel *m, sd_objective_ws *ws, const int32_t *x0, int64_t B, int64_t L,
                          const uint8_t *masked, const float *t, int64_t *R_out) {
    int32_t rc = check_args(m, ws, x0, B, L);
    if (rc) return rc;
    if (!masked || !t) return sd_fail(&m->err, SMDIFF_E_INVAL, "objective: NULL mask or t");
    const int shift = m->hp.shift_logits;
    int64_t N = B * L, R = 0;
    double norm = 1.0 / (double)N;
    for (int64_t b = 0; b < B; b++) {
        if (!(t[b] > 0)) return sd_fail(&m->err, SMDIFF_E_INVAL, "objective: t must be > 0");
        for (int64_t p = 0; p < L; p++) {
            int64_t n = b * L + p;
            ws->ids[n] = masked[n] ? m->hp.mask_id : x0[n];
            if (!masked[n]) continue;
            ws->loss_rows[R] = (int32_t)(shift ? b * L + (p > 0 ? p - 1 : 0) : n);
            ws->loss_pos[R] = (int32_t)n;
            ws->loss_targets[R] = x0[n];
            ws->loss_weights[R] = (float)(norm / t[b]);
            R++;
        }
    }
    *R_out = R;
    rc = loss_batch(m, ws, B, L, R, 0, "masked rows");
    ws->batch.t = t; /* a time-conditioned mdlm model's noise levels */
    return rc;
}

/* SM pass 1 on the batch in ws->batch (R > 0 loss rows): forward without
 * targets, then for every masked position its top-k ids, pi and entropy
 * into ws (stride k), and the batch's soft rows pointing at them. The
 * logits of pass 1 stay in m->a.logits. Nothing flows back. */
static int32_t sm_pass1(sd_tmodel *m, sd_objective_ws *ws, int64_t R, int32_t k) {
    sd_tbatch *bt = &ws->batch, p1 = *bt;
    p1.loss_targets = NULL;
    p1.loss_weights = NULL;
    p1.no_grad = 1;
    int32_t rc = sd_tmodel_forward(m, &p1, NULL);
    if (rc) return rc;
    for (int64_t r = 0; r < R; r++) ws->soft_rows[r] = ws->loss_pos[r];
    sm_stats_ctx c = {ws, m->a.logits, m->hp.n_vocab, k};
    sd_pool_run(m->pool, sm_stats_rows, &c, R);
    bt->n_soft = R;
    bt->k = k;
    bt->soft_rows = ws->soft_rows;
    bt->soft_ids = ws->soft_ids;
    bt->soft_pi = ws->soft_pi;
    bt->soft_entropy = ws->soft_entropy;
    return SMDIFF_OK;
}

static int32_t check_k(sd_tmodel *m, const sd_objective_ws *ws, int32_t k) {
    if (k < 1 || k > ws->k_max || k > m->hp.n_vocab)
        return sd_fail(&m->err, SMDIFF_E_INVAL, "objective: SM top-k %d outside 1..%d", k, ws->k_max);
    return SMDIFF_OK;
}

static int32_t mdlm(sd_tmodel *m, sd_objective_ws *ws, const sd_objective_opts *o,
                    const int32_t *x0, int64_t B, int64_t L, const uint8_t *masked, const float *t,
                    int use_sm, int backward, double *loss, int64_t *n_masked) {
    int64_t R = 0;
    int32_t rc = mdlm_batch(m, ws, x0, B, L, masked, t, &R);
    if (!rc && use_sm) rc = check_k(m, ws, o->sm_k);
    if (rc) return rc;
    if (n_masked) *n_masked = R;
    if (use_sm && R > 0 && (rc = sm_pass1(m, ws, R, o->sm_k))) return rc;
    return run_batch(m, &ws->batch, backward, loss);
}

/* seq_loss[b * stride] += (1 / (L t_b)) sum over b's loss rows of losses[r] */
static void add_seq_losses(const sd_objective_ws *ws, const float *losses, int64_t R, int64_t L, const float *t,
                           double *seq_loss, int64_t stride) {
    for (int64_t r = 0; r < R; r++) {
        int64_t b = ws->loss_pos[r] / L;
        seq_loss[b * stride] += (double)losses[r] / ((double)L * (double)t[b]);
    }
}

static int32_t eval_settings(sd_tmodel *m, sd_objective_ws *ws, const int32_t *x0, int64_t B, int64_t L,
                             const uint8_t *masked, const float *t, const sd_sm_setting *set, int32_t n_set,
                             double *seq_loss, int64_t *n_masked) {
    int64_t R = 0;
    int32_t rc = mdlm_batch(m, ws, x0, B, L, masked, t, &R), k_max = 1;
    for (int32_t j = 0; !rc && j < n_set; j++) {
        rc = check_k(m, ws, set[j].k);
        k_max = set[j].k > k_max ? set[j].k : k_max;
    }
    if (rc) return rc;
    const int64_t stride = 1 + n_set, V = m->hp.n_vocab;
    memset(seq_loss, 0, sizeof(double) * (size_t)(B * stride));
    if (n_masked) *n_masked = R;
    if (R == 0) return SMDIFF_OK;
    /* pass 1 gives the statistics at the largest k; its own loss is the
     * single-pass bound (the fused cross-entropy consumes the logits, so
     * it comes after the statistics) */
    if ((rc = sm_pass1(m, ws, R, k_max))) return rc;
    sd_tr_xent_fused(m->a.losses, m->a.logits, ws->loss_targets, ws->loss_weights, R, V, m->pool);
    add_seq_losses(ws, m->a.losses, R, L, t, seq_loss, stride);
    int32_t *ids = NULL;
    float *pi = NULL;
    const float saved[3] = {m->p.sm_raw[0], m->p.sm_raw[1], m->p.sm_raw[2]};
    sd_tbatch *bt = &ws->batch;
    for (int32_t j = 0; !rc && j < n_set; j++) {
        const int32_t k = set[j].k;
        bt->k = k, bt->soft_ids = ws->soft_ids, bt->soft_pi = ws->soft_pi;
        if (k < k_max) { /* the first k of the sorted k_max, renormalised */
            if (!ids) ids = sd_malloc(sizeof(int32_t) * (size_t)(R * k_max)), pi = sd_malloc(sizeof(float) * (size_t)(R * k_max));
            if (!ids || !pi) {
                rc = sd_fail(&m->err, SMDIFF_E_NOMEM, "objective: out of memory");
                break;
            }
            for (int64_t r = 0; r < R; r++) {
                double z = 0.0;
                for (int32_t i = 0; i < k; i++) z += ws->soft_pi[r * k_max + i];
                for (int32_t i = 0; i < k; i++) {
                    ids[r * k + i] = ws->soft_ids[r * k_max + i];
                    pi[r * k + i] = (float)(ws->soft_pi[r * k_max + i] / z);
                }
            }
            bt->soft_ids = ids, bt->soft_pi = pi;
        }
        memcpy(m->p.sm_raw, set[j].raw, sizeof saved);
        rc = run_batch(m, bt, 0, NULL);
        if (!rc) add_seq_losses(ws, m->a.losses, R, L, t, seq_loss + 1 + j, stride);
    }
    memcpy(m->p.sm_raw, saved, sizeof saved);
    sd_free(ids);
    sd_free(pi);
    return rc;
}

/* eval_settings between the BLAS guard's brackets (nn/blas.h) */
int32_t sd_mdlm_eval_settings(sd_tmodel *m, sd_objective_ws *ws, const int32_t *x0, int64_t B, int64_t L,
                              const uint8_t *masked, const float *t, const sd_sm_setting *set, int32_t n_set,
                              double *seq_loss, int64_t *n_masked) {
    int32_t rc = sd_blas_enter(m ? &m->err : NULL);
    if (rc) return rc;
    rc = eval_settings(m, ws, x0, B, L, masked, t, set, n_set, seq_loss, n_masked);
    sd_blas_leave();
    return rc;
}

/* mdlm between the BLAS guard's brackets (nn/blas.h) */
static int32_t mdlm_guarded(sd_tmodel *m, sd_objective_ws *ws, const sd_objective_opts *o, const int32_t *x0,
                            int64_t B, int64_t L, const uint8_t *masked, const float *t, int use_sm, int backward,
                            double *loss, int64_t *n_masked) {
    int32_t rc = sd_blas_enter(m ? &m->err : NULL);
    if (rc) return rc;
    rc = mdlm(m, ws, o, x0, B, L, masked, t, use_sm, backward, loss, n_masked);
    sd_blas_leave();
    return rc;
}

int32_t sd_mdlm_loss_grad(sd_tmodel *m, sd_objective_ws *ws, const sd_objective_opts *o,
                          const int32_t *x0, int64_t B, int64_t L, const uint8_t *masked,
                          const float *t, int use_sm, double *loss, int64_t *n_masked) {
    return mdlm_guarded(m, ws, o, x0, B, L, masked, t, use_sm, 1, loss, n_masked);
}

int32_t sd_mdlm_loss(sd_tmodel *m, sd_objective_ws *ws, const sd_objective_opts *o,
                     const int32_t *x0, int64_t B, int64_t L, const uint8_t *masked,
                     const float *t, int use_sm, double *loss, int64_t *n_masked) {
    return mdlm_guarded(m, ws, o, x0, B, L, masked, t, use_sm, 0, loss, n_masked);
}

static int32_t ar(sd_tmodel *m, sd_objective_ws *ws, const int32_t *x0, int64_t B, int64_t L,
                  int backward, double *loss) {
    int32_t rc = check_args(m, ws, x0, B, L);
    if (rc) return rc;
    if (L < 2) return sd_fail(&m->err, SMDIFF_E_INVAL, "objective: AR needs L >= 2");
    int64_t R = 0;
    float w = (float)(1.0 / (double)(B * (L - 1)));
    for (int64_t b = 0; b < B; b++)
        for (int64_t p = 0; p < L; p++) {
            int64_t n = b * L + p;
            ws->ids[n] = x0[n];
            if (p + 1 == L) continue;
            ws->loss_rows[R] = (int32_t)n;
            ws->loss_targets[R] = x0[n + 1];
            ws->loss_weights[R] = w;
            R++;
        }
    rc = loss_batch(m, ws, B, L, R, 1, "rows");
    return rc ? rc : run_batch(m, &ws->batch, backward, loss);
}

static int32_t ar_guarded(sd_tmodel *m, sd_objective_ws *ws, const int32_t *x0, int64_t B, int64_t L, int backward,
                          double *loss) {
    int32_t rc = sd_blas_enter(m ? &m->err : NULL);
    if (rc) return rc;
    rc = ar(m, ws, x0, B, L, backward, loss);
    sd_blas_leave();
    return rc;
}

int32_t sd_ar_loss_grad(sd_tmodel *m, sd_objective_ws *ws, const int32_t *x0, int64_t B, int64_t L,
                        double *loss) {
    return ar_guarded(m, ws, x0, B, L, 1, loss);
}

int32_t sd_ar_loss(sd_tmodel *m, sd_objective_ws *ws, const int32_t *x0, int64_t B, int64_t L,
                   double *loss) {
    return ar_guarded(m, ws, x0, B, L, 0, loss);
}

int32_t sd_objective_loss_grad(sd_tmodel *m, sd_objective_ws *ws, const sd_objective_opts *o,
                               sd_rng *rng, const int32_t *x0, int64_t B, int64_t L, double *loss,
                               int *used_sm) {
    if (used_sm) *used_sm = 0;
    if (!o || !rng) return sd_fail(m ? &m->err : NULL, SMDIFF_E_INVAL, "objective: NULL options or rng");
    if (o->kind == SD_OBJ_AR) return sd_ar_loss_grad(m, ws, x0, B, L, loss);
    if (o->kind != SD_OBJ_MDLM)
        return sd_fail(m ? &m->err : NULL, SMDIFF_E_INVAL, "objective: unknown kind %d", o->kind);
    if (!ws || B < 1 || L < 1 || B * L > ws->cap)
        return sd_fail(m ? &m->err : NULL, SMDIFF_E_INVAL, "objective: batch does not fit");
    sd_mdlm_sample(rng, o, B, L, ws->t, ws->masked);
    /* the SM coin is drawn every batch, so the stream does not depend on o->sm */
    int use = sd_rng_uniform(rng) < o->sm_prob && o->sm;
    if (used_sm) *used_sm = use;
    return sd_mdlm_loss_grad(m, ws, o, x0, B, L, ws->masked, ws->t, use, loss, NULL);
}
