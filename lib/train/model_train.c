/* model_train.c -- parameters, activations, forward and backward of the
 * trainable dream/llada/mdlm model. See model_train.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "diffusion/softmask.h"
#include "model_train.h"
#include "nn/ops.h"
#include "ops.h"

#define ALIGN_FLOATS 16 /* 64 bytes: every tensor starts on a cache line */

static size_t round_up(size_t n) { return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

/* --------------------------------------------------------------- layout */

/* Visit every parameter tensor in a fixed order. With tensors == NULL only
 * counts; returns the number of tensors and writes the total floats. */
static int32_t param_layout(const sd_tmodel *m, sd_ttensor *tensors, size_t *total) {
    const sd_hparams *hp = &m->hp;
    int64_t d = hp->n_embd, hd = d / hp->n_head, qd = hp->n_head * hd, kd = hp->n_head_kv * hd;
    int64_t V = hp->n_vocab, F = hp->n_ff;
    size_t off = 0;
    int32_t n = 0;
#define ADD(NAME_FMT, IDX, R, C, GROUP)                                                  \
    do {                                                                                 \
        if (tensors) {                                                                   \
            sd_ttensor *t_ = &tensors[n];                                                \
            snprintf(t_->name, sizeof t_->name, NAME_FMT, IDX);                          \
            t_->rows = (R);                                                              \
            t_->cols = (C);                                                              \
            t_->offset = off;                                                            \
            t_->group = (GROUP);                                                         \
        }                                                                                \
        off += round_up((size_t)(R) * (size_t)(C));                                      \
        n++;                                                                             \
    } while (0)
    /* "%.0d" of 0 prints nothing: un-indexed names share the macro */
    ADD("token_embd.weight%.0d", 0, V, d, SD_TGROUP_DECAY);
    if (m->dit) {
        const int64_t C = hp->n_cond, T = hp->n_freq;
        ADD("time_embd.fc1.weight%.0d", 0, C, T, SD_TGROUP_DECAY);
        ADD("time_embd.fc1.bias%.0d", 0, 1, C, SD_TGROUP_NO_DECAY);
        ADD("time_embd.fc2.weight%.0d", 0, C, C, SD_TGROUP_DECAY);
        ADD("time_embd.fc2.bias%.0d", 0, 1, C, SD_TGROUP_NO_DECAY);
        for (int32_t l = 0; l < hp->n_layer; l++) {
            ADD("blk.%d.attn_norm.weight", l, 1, d, SD_TGROUP_NO_DECAY);
            ADD("blk.%d.attn_q.weight", l, qd, d, SD_TGROUP_DECAY);
            ADD("blk.%d.attn_k.weight", l, kd, d, SD_TGROUP_DECAY);
            ADD("blk.%d.attn_v.weight", l, kd, d, SD_TGROUP_DECAY);
            ADD("blk.%d.attn_output.weight", l, d, qd, SD_TGROUP_DECAY);
            ADD("blk.%d.ffn_norm.weight", l, 1, d, SD_TGROUP_NO_DECAY);
            ADD("blk.%d.ffn_up.weight", l, F, d, SD_TGROUP_DECAY);
            ADD("blk.%d.ffn_up.bias", l, 1, F, SD_TGROUP_NO_DECAY);
            ADD("blk.%d.ffn_down.weight", l, d, F, SD_TGROUP_DECAY);
            ADD("blk.%d.ffn_down.bias", l, 1, d, SD_TGROUP_NO_DECAY);
            ADD("blk.%d.adaln.weight", l, 6 * d, C, SD_TGROUP_DECAY);
            ADD("blk.%d.adaln.bias", l, 1, 6 * d, SD_TGROUP_NO_DECAY);
        }
        ADD("output_norm.weight%.0d", 0, 1, d, SD_TGROUP_NO_DECAY);
        ADD("output_adaln.weight%.0d", 0, 2 * d, C, SD_TGROUP_DECAY);
        ADD("output_adaln.bias%.0d", 0, 1, 2 * d, SD_TGROUP_NO_DECAY);
        ADD("output.weight%.0d", 0, V, d, SD_TGROUP_DECAY);
        ADD("output.bias%.0d", 0, 1, V, SD_TGROUP_NO_DECAY);
        ADD("smdiff.softmask.raw%.0d", 0, 1, 3, SD_TGROUP_SM);
        *total = off;
        return n;
    }
    for (int32_t l = 0; l < hp->n_layer; l++) {
        ADD("blk.%d.attn_norm.weight", l, 1, d, SD_TGROUP_NO_DECAY);
        ADD("blk.%d.attn_q.weight", l, qd, d, SD_TGROUP_DECAY);
        ADD("blk.%d.attn_k.weight", l, kd, d, SD_TGROUP_DECAY);
        ADD("blk.%d.attn_v.weight", l, kd, d, SD_TGROUP_DECAY);
        if (m->has_bias) {
            ADD("blk.%d.attn_q.bias", l, 1, qd, SD_TGROUP_NO_DECAY);
            ADD("blk.%d.attn_k.bias", l, 1, kd, SD_TGROUP_NO_DECAY);
            ADD("blk.%d.attn_v.bias", l, 1, kd, SD_TGROUP_NO_DECAY);
        }
        ADD("blk.%d.attn_output.weight", l, d, qd, SD_TGROUP_DECAY);
        ADD("blk.%d.ffn_norm.weight", l, 1, d, SD_TGROUP_NO_DECAY);
        ADD("blk.%d.ffn_gate.weight", l, F, d, SD_TGROUP_DECAY);
        ADD("blk.%d.ffn_up.weight", l, F, d, SD_TGROUP_DECAY);
        ADD("blk.%d.ffn_down.weight", l, d, F, SD_TGROUP_DECAY);
    }
    ADD("output_norm.weight%.0d", 0, 1, d, SD_TGROUP_NO_DECAY);
    ADD("output.weight%.0d", 0, V, d, SD_TGROUP_DECAY);
    ADD("smdiff.softmask.raw%.0d", 0, 1, 3, SD_TGROUP_SM);
#undef ADD
    *total = off;
    return n;
}

/* The same for mdlm's order. */
static void bind_params_dit(const sd_tmodel *m, float *base, sd_tparams *p) {
    const sd_ttensor *t = m->tensors;
    int32_t i = 0;
    p->token_embd = base + t[i++].offset;
    p->time_fc1 = base + t[i++].offset;
    p->time_fc1_b = base + t[i++].offset;
    p->time_fc2 = base + t[i++].offset;
    p->time_fc2_b = base + t[i++].offset;
    for (int32_t l = 0; l < m->hp.n_layer; l++) {
        sd_tlayer *L = &p->layers[l];
        memset(L, 0, sizeof *L);
        L->attn_norm = base + t[i++].offset;
        L->wq = base + t[i++].offset;
        L->wk = base + t[i++].offset;
        L->wv = base + t[i++].offset;
        L->wo = base + t[i++].offset;
        L->ffn_norm = base + t[i++].offset;
        L->w_up = base + t[i++].offset;
        L->b_up = base + t[i++].offset;
        L->w_down = base + t[i++].offset;
        L->b_down = base + t[i++].offset;
        L->adaln = base + t[i++].offset;
        L->adaln_b = base + t[i++].offset;
    }
    p->output_norm = base + t[i++].offset;
    p->output_adaln = base + t[i++].offset;
    p->output_adaln_b = base + t[i++].offset;
    p->output = base + t[i++].offset;
    p->output_b = base + t[i++].offset;
    p->sm_raw = base + t[i++].offset;
}

/* Point a sd_tparams at an arena, following the tensor order above. */
static void bind_params(const sd_tmodel *m, float *base, sd_tparams *p) {
    if (m->dit) {
        bind_params_dit(m, base, p);
        return;
    }
    const sd_ttensor *t = m->tensors;
    int32_t i = 0;
    p->token_embd = base + t[i++].offset;
    for (int32_t l = 0; l < m->hp.n_layer; l++) {
        sd_tlayer *L = &p->layers[l];
        L->attn_norm = base + t[i++].offset;
        L->wq = base + t[i++].offset;
        L->wk = base + t[i++].offset;
        L->wv = base + t[i++].offset;
        if (m->has_bias) {
            L->bq = base + t[i++].offset;
            L->bk = base + t[i++].offset;
            L->bv = base + t[i++].offset;
        } else {
            L->bq = L->bk = L->bv = NULL;
        }
        L->wo = base + t[i++].offset;
        L->ffn_norm = base + t[i++].offset;
        L->w_gate = base + t[i++].offset;
        L->w_up = base + t[i++].offset;
        L->w_down = base + t[i++].offset;
    }
    p->output_norm = base + t[i++].offset;
    p->output = base + t[i++].offset;
    p->sm_raw = base + t[i++].offset;
}

/* Carve the activation arena; with base == NULL only counts floats. */
static size_t act_layout(sd_tmodel *m, float *base) {
    const sd_hparams *hp = &m->hp;
    int64_t B = m->B_max, L = m->L_max, N = B * L, R = m->R_max;
    int64_t d = hp->n_embd, H = hp->n_head, hd = d / H, qd = H * hd, kd = hp->n_head_kv * hd;
    int64_t F = hp->n_ff, V = hp->n_vocab;
    size_t off = 0;
    sd_tacts *a = &m->a;
    const int64_t dit = m->dit, Fg = dit ? 0 : F; /* mdlm: no gate */
#define TAKE(PTR, COUNT)                                   \
    do {                                                   \
        if (base) (PTR) = ((COUNT) != 0) ? base + off : NULL; \
        off += round_up((size_t)(COUNT));                  \
    } while (0)
    for (int32_t l = 0; l < hp->n_layer; l++) {
        sd_tlayer_acts *la = &a->layers[l];
        TAKE(la->x, N * d);
        TAKE(la->ln1, N * d);
        TAKE(la->rstd1, N);
        TAKE(la->q, N * qd);
        TAKE(la->k, N * kd);
        TAKE(la->v, N * kd);
        TAKE(la->att, B * H * L * L);
        TAKE(la->atty, N * qd);
        TAKE(la->x2, N * d);
        TAKE(la->ln2, N * d);
        TAKE(la->rstd2, N);
        TAKE(la->g, N * Fg);
        TAKE(la->u, N * F);
        TAKE(la->hs, N * F);
        TAKE(la->mean1, dit * N);
        TAKE(la->mean2, dit * N);
        TAKE(la->ao, dit * N * d);
        TAKE(la->mo, dit * N * d);
    }
    TAKE(a->x_out, N * d);
    TAKE(a->lnf, N * d);
    TAKE(a->rstdf, N);
    TAKE(a->hrows, R * d);
    TAKE(a->logits, R * V);
    TAKE(a->losses, R);
    TAKE(a->lam, N);
    TAKE(a->dx, N * d);
    TAKE(a->dln, N * d);
    TAKE(a->dq, N * qd);
    TAKE(a->dk, N * kd);
    TAKE(a->dv, N * kd);
    TAKE(a->datty, N * qd);
    TAKE(a->dg, N * F);
    TAKE(a->du, N * F);
    TAKE(a->dhs, N * F);
    TAKE(a->dP, L * L);
    TAKE(a->dhrows, R * d);
    TAKE(a->dlam, N);
    TAKE(a->rope_cos, L * (hd / 2));
    TAKE(a->rope_sin, L * (hd / 2));
    const int64_t Bc = hp->time_cond ? B : 1;
    const int64_t C = dit * Bc * hp->n_cond, nmod = dit * Bc * (hp->n_layer * 6 * d + 2 * d);
    TAKE(a->meanf, dit * N);
    TAKE(a->t_feat, dit * Bc * hp->n_freq);
    TAKE(a->t_h1, C);
    TAKE(a->t_a1, C);
    TAKE(a->t_h2, C);
    TAKE(a->t_c, C);
    TAKE(a->mod, nmod);
    TAKE(a->dmod, nmod);
    TAKE(a->mod_rows, dit * Bc * 6 * d);
    TAKE(a->t_dc, C);
    TAKE(a->t_da, C);
#undef TAKE
    return off;
}

/* --------------------------------------------------------------- create/free */

int32_t sd_tmodel_create(const sd_hparams *hp, int64_t B_max, int64_t L_max, int64_t R_max,
                         sd_tmodel **out, sd_error *err) {
    if (!out) return sd_fail(err, SMDIFF_E_INVAL, "sd_tmodel_create: out is NULL");
    *out = NULL;
    if (!hp) return sd_fail(err, SMDIFF_E_INVAL, "sd_tmodel_create: hparams is NULL");
    if (hp->arch == SD_ARCH_MDLM && (hp->n_cond < 1 || hp->n_freq < 2 || hp->n_freq % 2 || hp->n_head_kv != hp->n_head))
        return sd_fail(err, SMDIFF_E_INVAL, "sd_tmodel_create: mdlm needs a conditioning width, an even "
                       "number of timestep features and as many kv heads as heads");
    if (hp->arch != SD_ARCH_DREAM && hp->arch != SD_ARCH_LLADA && hp->arch != SD_ARCH_MDLM)
        return sd_fail(err, SMDIFF_E_INVAL, "sd_tmodel_create: unknown architecture %d", (int)hp->arch);
    if (hp->n_vocab < 2 || hp->n_embd < 2 || hp->n_layer < 1 || hp->n_head < 1 ||
        hp->n_head_kv < 1 || hp->n_ff < 1)
        return sd_fail(err, SMDIFF_E_INVAL,
                       "sd_tmodel_create: bad shape (vocab %d, embd %d, layers %d, heads %d/%d, ff %d)",
                       hp->n_vocab, hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->n_ff);
    if (hp->n_embd % hp->n_head || (hp->n_embd / hp->n_head) % 2 || hp->n_head % hp->n_head_kv)
        return sd_fail(err, SMDIFF_E_INVAL,
                       "sd_tmodel_create: n_embd %d must split into %d heads of even size, "
                       "and n_head a multiple of n_head_kv %d",
                       hp->n_embd, hp->n_head, hp->n_head_kv);
    if (hp->mask_id < 0 || hp->mask_id >= hp->n_vocab)
        return sd_fail(err, SMDIFF_E_INVAL, "sd_tmodel_create: mask id %d outside vocabulary %d",
                       hp->mask_id, hp->n_vocab);
    if (!(hp->norm_eps > 0) || !(hp->rope_base > 0))
        return sd_fail(err, SMDIFF_E_INVAL, "sd_tmodel_create: norm_eps and rope_base must be > 0");
    if (B_max < 1 || L_max < 1 || B_max > (1 << 20) || L_max > (1 << 20))
        return sd_fail(err, SMDIFF_E_INVAL, "sd_tmodel_create: bad batch %lld x %lld",
                       (long long)B_max, (long long)L_max);
    if (R_max <= 0) R_max = B_max * L_max;
    {
        /* sizes in double first, so absurd shapes fail cleanly instead of
         * overflowing size_t in the layout arithmetic below */
        double d = hp->n_embd, F = hp->n_ff, V = hp->n_vocab, Ll = (double)hp->n_layer;
        double N = (double)B_max * (double)L_max, L = (double)L_max;
        double params = 2 * V * d + Ll * (4 * d * d + 3 * d * F + 4 * d) + d + 3;
        double acts = Ll * (N * (8 * d + 3 * F + 2) + (double)B_max * hp->n_head * L * L) +
                      N * (10 * d + 3 * F + 4) + L * L + (double)R_max * (2 * d + V + 1) + L * d;
        if (params > 4e10 || acts > 2.5e11)
            return sd_fail(err, SMDIFF_E_INVAL,
                           "sd_tmodel_create: %.3g parameters and %.3g activation floats for a batch "
                           "of %lld x %lld are beyond what this build handles",
                           params, acts, (long long)B_max, (long long)L_max);
    }

    sd_tmodel *m = sd_calloc(1, sizeof *m);
    if (!m) return sd_fail(err, SMDIFF_E_NOMEM, "sd_tmodel_create: out of memory");
    m->hp = *hp;
    m->has_bias = hp->arch == SD_ARCH_DREAM;
    m->dit = hp->arch == SD_ARCH_MDLM;
    m->rope_mode = (hp->arch == SD_ARCH_LLADA && hp->rope_permuted) ? SD_ROPE_ADJACENT : SD_ROPE_NEOX;
    m->B_max = B_max;
    m->L_max = L_max;
    m->R_max = R_max;
    size_t total;
    m->n_tensors = param_layout(m, NULL, &total);
    m->n_params = total;
    m->tensors = sd_calloc((size_t)m->n_tensors, sizeof *m->tensors);
    m->p.layers = sd_calloc((size_t)hp->n_layer, sizeof(sd_tlayer));
    m->g.layers = sd_calloc((size_t)hp->n_layer, sizeof(sd_tlayer));
    m->a.layers = sd_calloc((size_t)hp->n_layer, sizeof(sd_tlayer_acts));
    m->params = sd_calloc(total, sizeof(float));
    m->grads = sd_calloc(total, sizeof(float));
    m->act_floats = act_layout(m, NULL);
    m->act_mem = sd_calloc(m->act_floats, sizeof(float));
    if (!m->tensors || !m->p.layers || !m->g.layers || !m->a.layers || !m->params || !m->grads ||
        !m->act_mem) {
        sd_tmodel_free(m);
        return sd_fail(err, SMDIFF_E_NOMEM, "sd_tmodel_create: out of memory (%zu parameters)", total);
    }
    param_layout(m, m->tensors, &total);
    bind_params(m, m->params, &m->p);
    bind_params(m, m->grads, &m->g);
    act_layout(m, m->act_mem);
    sd_rope_table(m->a.rope_cos, m->a.rope_sin, NULL, L_max, hp->n_embd / hp->n_head, hp->rope_base);
    *out = m;
    return SMDIFF_OK;
}

void sd_tmodel_free(sd_tmodel *m) {
    if (!m) return;
    sd_free(m->tensors);
    sd_free(m->p.layers);
    sd_free(m->g.layers);
    sd_free(m->a.layers);
    sd_free(m->params);
    sd_free(m->grads);
    sd_free(m->act_mem);
    sd_free(m);
}

void sd_tmodel_init_random(sd_tmodel *m, sd_rng *rng, float std, double omega_s, double omega_a,
                           double omega_b) {
    for (int32_t i = 0; i < m->n_tensors; i++) {
        const sd_ttensor *t = &m->tensors[i];
        float *x = m->params + t->offset;
        int64_t n = t->rows * t->cols;
        if (t->group == SD_TGROUP_SM) {
            x[0] = (float)sd_logit(omega_s);
            x[1] = (float)sd_softplus_inv(omega_a);
            x[2] = (float)sd_softplus_inv(-omega_b);
        } else if (t->group == SD_TGROUP_NO_DECAY) {
            /* norms start at 1, biases at 0 */
            float v = strstr(t->name, "norm") ? 1.0f : 0.0f;
            for (int64_t j = 0; j < n; j++) x[j] = v;
        } else {
            for (int64_t j = 0; j < n; j++) x[j] = std * (float)sd_rng_normal(rng);
        }
    }
}

static sd_weight f32_view(const float *data, int64_t rows, int64_t cols) {
    sd_weight w = {data, 0 /* GGML F32 */, rows, cols};
    if (!data) w.rows = w.cols = 0;
    return w;
}

void sd_tmodel_as_weights(const sd_tmodel *m, sd_weights *w, sd_layer_weights *layers) {
    const sd_hparams *hp = &m->hp;
    int64_t d = hp->n_embd, hd = d / hp->n_head, qd = hp->n_head * hd, kd = hp->n_head_kv * hd;
    int64_t F = hp->n_ff, V = hp->n_vocab;
    memset(w, 0, sizeof *w);
    w->hp = *hp;
    w->token_embd = f32_view(m->p.token_embd, V, d);
    w->output_norm = f32_view(m->p.output_norm, 1, d);
    w->output = f32_view(m->p.output, V, d);
    w->layers = layers;
    for (int32_t l = 0; l < hp->n_layer; l++) {
        const sd_tlayer *p = &m->p.layers[l];
        sd_layer_weights *o = &layers[l];
        memset(o, 0, sizeof *o);
        o->attn_norm = f32_view(p->attn_norm, 1, d);
        o->wq = f32_view(p->wq, qd, d);
        o->wk = f32_view(p->wk, kd, d);
        o->wv = f32_view(p->wv, kd, d);
        o->bq = f32_view(p->bq, 1, qd);
        o->bk = f32_view(p->bk, 1, kd);
        o->bv = f32_view(p->bv, 1, kd);
        o->wo = f32_view(p->wo, d, qd);
        o->ffn_norm = f32_view(p->ffn_norm, 1, d);
        o->w_gate = f32_view(p->w_gate, F, d);
        o->w_up = f32_view(p->w_up, F, d);
        o->w_down = f32_view(p->w_down, d, F);
        o->adaln = f32_view(p->adaln, 6 * d, hp->n_cond);
        o->adaln_b = f32_view(p->adaln_b, 1, 6 * d);
        o->b_up = f32_view(p->b_up, 1, F);
        o->b_down = f32_view(p->b_down, 1, d);
    }
    if (m->dit) { /* the conditioning is computed by the forward pass (cond_const NULL) */
        const int64_t C = hp->n_cond, T = hp->n_freq;
        w->time_fc1 = f32_view(m->p.time_fc1, C, T);
        w->time_fc1_b = f32_view(m->p.time_fc1_b, 1, C);
        w->time_fc2 = f32_view(m->p.time_fc2, C, C);
        w->time_fc2_b = f32_view(m->p.time_fc2_b, 1, C);
        w->output_adaln = f32_view(m->p.output_adaln, 2 * d, C);
        w->output_adaln_b = f32_view(m->p.output_adaln_b, 1, 2 * d);
        w->output_b = f32_view(m->p.output_b, 1, V);
    }
}

const sd_ttensor *sd_tmodel_find(const sd_tmodel *m, const char *name) {
    for (int32_t i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

void sd_tmodel_zero_grad(sd_tmodel *m) { memset(m->grads, 0, m->n_params * sizeof(float)); }

/* --------------------------------------------------------------- forward */

double sd_tmodel_forward_flops(const sd_hparams *hp, int64_t B, int64_t L, int64_t R) {
    const double d = hp->n_embd, hd = (double)(hp->n_embd / hp->n_head), qd = hd * hp->n_head,
                 kd = hd * hp->n_head_kv, F = hp->n_ff, N = (double)B * (double)L;
    /* per layer; mdlm's MLP has no gate (its conditioning is per call, not per row) */
    const double p_mat = d * qd + 2.0 * d * kd + qd * d + (hp->arch == SD_ARCH_MDLM ? 2.0 : 3.0) * d * F;
    return hp->n_layer * (2.0 * N * p_mat + 4.0 * (double)B * (double)L * (double)L * qd) +
           2.0 * (double)R * d * hp->n_vocab;
}

static int32_t check_batch(sd_tmodel *m, const sd_tbatch *b) {
    const sd_hparams *hp = &m->hp;
    if (!b || !b->ids) return sd_fail(&m->err, SMDIFF_E_INVAL, "train batch: ids are NULL");
    if (b->B < 1 || b->L < 1 || b->B > m->B_max || b->L > m->L_max)
        return sd_fail(&m->err, SMDIFF_E_INVAL, "train batch: %lld x %lld does not fit %lld x %lld",
                       (long long)b->B, (long long)b->L, (long long)m->B_max, (long long)m->L_max);
    int64_t N = b->B * b->L;
    if (b->n_loss < 0 || b->n_loss > m->R_max || (b->n_loss && !b->loss_rows))
        return sd_fail(&m->err, SMDIFF_E_INVAL, "train batch: %lld loss rows (at most %lld)",
                       (long long)b->n_loss, (long long)m->R_max);
    if (b->n_loss && b->loss_targets && !b->loss_weights)
        return sd_fail(&m->err, SMDIFF_E_INVAL, "train batch: targets without weights");
    if (b->n_soft < 0 || b->n_soft > N ||
        (b->n_soft && (!b->soft_rows || !b->soft_ids || !b->soft_pi || !b->soft_entropy || b->k < 1)))
        return sd_fail(&m->err, SMDIFF_E_INVAL, "train batch: bad soft rows (%lld, k %d)",
                       (long long)b->n_soft, b->k);
    for (int64_t n = 0; n < N; n++)
        if (b->ids[n] < 0 || b->ids[n] >= hp->n_vocab)
            return sd_fail(&m->err, SMDIFF_E_INVAL, "train batch: token id %d at %lld outside vocabulary %d",
                           b->ids[n], (long long)n, hp->n_vocab);
    for (int64_t s = 0; hp->arch == SD_ARCH_MDLM && hp->time_cond && b->t && s < b->B; s++)
        if (!(b->t[s] >= 0.0f && b->t[s] <= 1.0f))
            return sd_fail(&m->err, SMDIFF_E_INVAL, "train batch: t[%lld] = %g outside [0, 1]", (long long)s,
                           (double)b->t[s]);
    for (int64_t r = 0; r < b->n_loss; r++) {
        if (b->loss_rows[r] < 0 || b->loss_rows[r] >= N)
            return sd_fail(&m->err, SMDIFF_E_INVAL, "train batch: loss row %d outside [0,%lld)",
                           b->loss_rows[r], (long long)N);
        if (b->loss_targets && (b->loss_targets[r] < 0 || b->loss_targets[r] >= hp->n_vocab))
            return sd_fail(&m->err, SMDIFF_E_INVAL, "train batch: target %d outside vocabulary",
                           b->loss_targets[r]);
    }
    /* a row mixed twice would be overwritten in the forward but credited
     * twice in the backward: soft rows must be distinct */
    /* the backward's lambda scratch (N floats >= N bytes) is free here */
    uint8_t *seen = (uint8_t *)m->a.dlam;
    if (b->n_soft) memset(seen, 0, (size_t)N);
    int32_t rc = SMDIFF_OK;
    for (int64_t s = 0; !rc && s < b->n_soft; s++) {
        int32_t r = b->soft_rows[s];
        if (r < 0 || r >= N || seen[r])
            rc = sd_fail(&m->err, SMDIFF_E_INVAL, "train batch: soft row %d outside [0,%lld) or repeated",
                         r, (long long)N);
        else
            seen[r] = 1;
        for (int32_t i = 0; !rc && i < b->k; i++)
            if (b->soft_ids[s * b->k + i] < 0 || b->soft_ids[s * b->k + i] >= hp->n_vocab)
                rc = sd_fail(&m->err, SMDIFF_E_INVAL, "train batch: soft id outside vocabulary");
    }
    return rc;
}

/* Attention of every sequence of the batch: out = atty [B, L, H, hd].
 * A batch that will be differentiated keeps its probabilities [B, H, L, L]
 * in la->att for sd_tr_attention_bwd. One that will not (no_grad: SM's
 * first pass) takes the inference kernel, nn/ops.c's tiled sd_attention,
 * with la->att as its scratch: the same function, several times faster
 * (vectorised exp, no L x L matrix), rounded differently in the last bits.
 * (Where la->att is smaller than that kernel's scratch, tiny shapes, the
 * training kernel runs either way.) */
static void attention_fwd(sd_tmodel *m, sd_tlayer_acts *la, const sd_tbatch *b, int64_t H, int64_t Hkv,
                          int64_t hd) {
    const int64_t B = b->B, L = b->L, qd = H * hd, kd = Hkv * hd;
    const int threads = m->pool ? sd_pool_threads(m->pool) : 1;
    const size_t need = sd_attention_scratch_floats(hd, threads) + 16, have = (size_t)(B * H * L * L);
    if (!b->no_grad || need > have) {
        sd_tr_attention_fwd(la->atty, la->att, la->q, la->k, la->v, B, L, H, Hkv, hd, b->causal);
        return;
    }
    float *scratch = (float *)(((uintptr_t)la->att + 63) & ~(uintptr_t)63); /* 64-byte aligned */
    for (int64_t s = 0; s < B; s++)
        sd_attention(la->atty + s * L * qd, la->q + s * L * qd, L, NULL, la->k + s * L * kd, la->v + s * L * kd, L,
                     H, Hkv, hd, b->causal, scratch, m->pool);
}

/* dream/llada: the blocks, the final norm and the loss rows' logits. */
static void forward_blocks_llama(sd_tmodel *m, const sd_tbatch *b) {
    const sd_hparams *hp = &m->hp;
    int64_t B = b->B, L = b->L, N = B * L, R = b->n_loss;
    int64_t d = hp->n_embd, H = hp->n_head, Hkv = hp->n_head_kv, hd = d / H;
    int64_t qd = H * hd, kd = Hkv * hd, F = hp->n_ff, V = hp->n_vocab;
    sd_tacts *a = &m->a;
    for (int32_t l = 0; l < hp->n_layer; l++) {
        sd_tlayer_acts *la = &a->layers[l];
        const sd_tlayer *w = &m->p.layers[l];
        float *x_next = l + 1 < hp->n_layer ? a->layers[l + 1].x : a->x_out;
        sd_tr_rmsnorm_fwd(la->ln1, la->rstd1, la->x, w->attn_norm, N, d, hp->norm_eps);
        sd_tr_matmul_fwd(la->q, la->ln1, w->wq, w->bq, N, d, qd);
        sd_tr_matmul_fwd(la->k, la->ln1, w->wk, w->bk, N, d, kd);
        sd_tr_matmul_fwd(la->v, la->ln1, w->wv, w->bv, N, d, kd);
        sd_tr_rope_fwd(la->q, a->rope_cos, a->rope_sin, B, L, H, hd, m->rope_mode);
        sd_tr_rope_fwd(la->k, a->rope_cos, a->rope_sin, B, L, Hkv, hd, m->rope_mode);
        attention_fwd(m, la, b, H, Hkv, hd);
        sd_tr_matmul_fwd(la->x2, la->atty, w->wo, NULL, N, qd, d);
        sd_tr_acc(la->x2, la->x, N * d);
        sd_tr_rmsnorm_fwd(la->ln2, la->rstd2, la->x2, w->ffn_norm, N, d, hp->norm_eps);
        sd_tr_matmul_fwd(la->g, la->ln2, w->w_gate, NULL, N, d, F);
        sd_tr_matmul_fwd(la->u, la->ln2, w->w_up, NULL, N, d, F);
        sd_tr_swiglu_fwd(la->hs, la->g, la->u, N * F);
        sd_tr_matmul_fwd(x_next, la->hs, w->w_down, NULL, N, F, d);
        sd_tr_acc(x_next, la->x2, N * d);
    }
    sd_tr_rmsnorm_fwd(a->lnf, a->rstdf, a->x_out, m->p.output_norm, N, d, hp->norm_eps);
    if (R) {
        sd_tr_gather_rows(a->hrows, a->lnf, b->loss_rows, R, d);
        sd_tr_matmul_fwd(a->logits, a->hrows, m->p.output, NULL, R, d, V);
    }
}

/* mdlm (MDLM's DiT, nn/dit.c): the conditioning of each sequence that has
 * its own (Bc = B with time conditioning, at MDLM's log-linear sigma of the
 * batch's t; else Bc = 1 at sigma 0, shared by all rows), every adaLN
 * output once, then the blocks, the modulated final norm and the loss
 * rows' logits with the mask logit pushed down ("subs"). */
static int64_t cond_seqs(const sd_tmodel *m, const sd_tbatch *b) { return m->hp.time_cond ? b->B : 1; }

/* Chunk j of layer l's adaLN outputs (l = n_layer: the head's) in base. */
static float *mod_chunk(const sd_tmodel *m, float *base, int64_t Bc, int32_t l, int j) {
    return base + ((int64_t)l * 6 + j) * Bc * m->hp.n_embd;
}

/* a->mod_rows [Bc, nch*d] -> the chunk-major layout (back = 0), or back. */
static void mod_arrange(const sd_tmodel *m, float *base, int64_t Bc, int32_t l, int nch, int back) {
    const int64_t d = m->hp.n_embd;
    for (int64_t b = 0; b < Bc; b++)
        for (int j = 0; j < nch; j++) {
            float *row = m->a.mod_rows + (b * nch + j) * d, *c = mod_chunk(m, base, Bc, l, j) + b * d;
            memcpy(back ? row : c, back ? c : row, (size_t)d * sizeof(float));
        }
}

static void forward_conditioning(sd_tmodel *m, const sd_tbatch *b) {
    const sd_hparams *hp = &m->hp;
    const int64_t d = hp->n_embd, C = hp->n_cond, T = hp->n_freq, Bc = cond_seqs(m, b);
    sd_tacts *a = &m->a;
    const sd_tparams *p = &m->p;
    /* c = silu(fc2 silu(fc1 [cos(sigma f), sin(sigma f)] + b1) + b2), f_i = 1e4^(-i/(T/2)) */
    for (int64_t s = 0; s < Bc; s++) {
        double sigma = hp->time_cond && b->t ? -log1p(-(1.0 - 1e-3) * (double)b->t[s]) : 0.0;
        for (int64_t i = 0; i < T / 2; i++) {
            double arg = sigma * exp(-log(10000.0) * (double)i / (double)(T / 2));
            a->t_feat[s * T + i] = (float)cos(arg);
            a->t_feat[s * T + T / 2 + i] = (float)sin(arg);
        }
    }
    sd_tr_matmul_fwd(a->t_h1, a->t_feat, p->time_fc1, p->time_fc1_b, Bc, T, C);
    sd_tr_silu_fwd(a->t_a1, a->t_h1, Bc * C);
    sd_tr_matmul_fwd(a->t_h2, a->t_a1, p->time_fc2, p->time_fc2_b, Bc, C, C);
    sd_tr_silu_fwd(a->t_c, a->t_h2, Bc * C);
    for (int32_t l = 0; l <= hp->n_layer; l++) {
        const int last = l == hp->n_layer, nch = last ? 2 : 6;
        sd_tr_matmul_fwd(a->mod_rows, a->t_c, last ? p->output_adaln : p->layers[l].adaln,
                         last ? p->output_adaln_b : p->layers[l].adaln_b, Bc, C, nch * d);
        mod_arrange(m, a->mod, Bc, l, nch, 0);
    }
}

static void forward_blocks_dit(sd_tmodel *m, const sd_tbatch *b) {
    const sd_hparams *hp = &m->hp;
    int64_t B = b->B, L = b->L, N = B * L, R = b->n_loss, Bc = cond_seqs(m, b), Lc = N / Bc;
    int64_t d = hp->n_embd, H = hp->n_head, hd = d / H, F = hp->n_ff, V = hp->n_vocab;
    sd_tacts *a = &m->a;
    const sd_tparams *p = &m->p;
    forward_conditioning(m, b);
#define MOD(l, j) mod_chunk(m, a->mod, Bc, l, j)
    for (int32_t l = 0; l < hp->n_layer; l++) {
        sd_tlayer_acts *la = &a->layers[l];
        const sd_tlayer *w = &p->layers[l];
        float *x_next = l + 1 < hp->n_layer ? a->layers[l + 1].x : a->x_out;
        sd_tr_layernorm_mod_fwd(la->ln1, la->mean1, la->rstd1, la->x, w->attn_norm, MOD(l, 0), MOD(l, 1), Bc, Lc, d,
                                hp->norm_eps);
        sd_tr_matmul_fwd(la->q, la->ln1, w->wq, NULL, N, d, d);
        sd_tr_matmul_fwd(la->k, la->ln1, w->wk, NULL, N, d, d);
        sd_tr_matmul_fwd(la->v, la->ln1, w->wv, NULL, N, d, d);
        sd_tr_rope_fwd(la->q, a->rope_cos, a->rope_sin, B, L, H, hd, SD_ROPE_NEOX);
        sd_tr_rope_fwd(la->k, a->rope_cos, a->rope_sin, B, L, H, hd, SD_ROPE_NEOX);
        attention_fwd(m, la, b, H, H, hd);
        sd_tr_matmul_fwd(la->ao, la->atty, w->wo, NULL, N, d, d);
        sd_tr_gated_add_fwd(la->x2, la->x, MOD(l, 2), la->ao, Bc, Lc, d);
        sd_tr_layernorm_mod_fwd(la->ln2, la->mean2, la->rstd2, la->x2, w->ffn_norm, MOD(l, 3), MOD(l, 4), Bc, Lc,
                                d, hp->norm_eps);
        sd_tr_matmul_fwd(la->u, la->ln2, w->w_up, w->b_up, N, d, F);
        sd_tr_gelu_fwd(la->hs, la->u, N * F);
        sd_tr_matmul_fwd(la->mo, la->hs, w->w_down, w->b_down, N, F, d);
        sd_tr_gated_add_fwd(x_next, la->x2, MOD(l, 5), la->mo, Bc, Lc, d);
    }
    sd_tr_layernorm_mod_fwd(a->lnf, a->meanf, a->rstdf, a->x_out, p->output_norm, MOD(hp->n_layer, 0),
                            MOD(hp->n_layer, 1), Bc, Lc, d, hp->norm_eps);
#undef MOD
    if (R) {
        sd_tr_gather_rows(a->hrows, a->lnf, b->loss_rows, R, d);
        sd_tr_matmul_fwd(a->logits, a->hrows, p->output, p->output_b, R, d, V);
        for (int64_t r = 0; r < R; r++) a->logits[r * V + hp->mask_id] += SD_DIT_MASK_LOGIT;
    }
}

int32_t sd_tmodel_forward(sd_tmodel *m, const sd_tbatch *b, double *loss) {
    m->have_forward = 0;
    int32_t rc = check_batch(m, b);
    if (rc) return rc;
    const sd_hparams *hp = &m->hp;
    int64_t B = b->B, L = b->L, N = B * L, R = b->n_loss;
    int64_t d = hp->n_embd, V = hp->n_vocab;
    sd_tacts *a = &m->a;

    /* input embeddings: hard tokens, then the soft rows' mixtures */
    float *x = a->layers[0].x;
    sd_tr_embed_fwd(x, m->p.token_embd, b->ids, N, d);
    if (b->n_soft) {
        sd_tr_sm_lambda_fwd(a->lam, b->soft_entropy, b->n_soft, m->p.sm_raw);
        sd_tr_softmix_fwd(x, m->p.token_embd, hp->mask_id, b->soft_rows, b->soft_ids, b->soft_pi,
                          a->lam, b->n_soft, b->k, d);
    }

    if (m->dit)
        forward_blocks_dit(m, b);
    else
        forward_blocks_llama(m, b);
    double total = 0.0;
    if (R && b->loss_targets) {
        sd_tr_xent_fused(a->losses, a->logits, b->loss_targets, b->loss_weights, R, V, m->pool);
        for (int64_t r = 0; r < R; r++) total += (double)b->loss_weights[r] * a->losses[r];
        if (!isfinite(total))
            return sd_fail(&m->err, SMDIFF_E_NUMERIC, "train forward: loss is not finite (%g)", total);
    }
    if (loss) *loss = total;
    m->have_forward = !b->no_grad;
    m->flops += sd_tmodel_forward_flops(hp, B, L, R);
    m->fw_B = B;
    m->fw_L = L;
    m->fw_R = R;
    return SMDIFF_OK;
}

/* --------------------------------------------------------------- backward */

/* dream/llada: from the logits' gradient to a->dx, the gradient of the
 * input embeddings. */
static void backward_blocks_llama(sd_tmodel *m, const sd_tbatch *b) {
    const sd_hparams *hp = &m->hp;
    int64_t B = b->B, L = b->L, N = B * L, R = b->n_loss;
    int64_t d = hp->n_embd, H = hp->n_head, Hkv = hp->n_head_kv, hd = d / H;
    int64_t qd = H * hd, kd = Hkv * hd, F = hp->n_ff, V = hp->n_vocab;
    sd_tacts *a = &m->a;
    size_t fs = sizeof(float);

    /* head: loss -> logits -> gathered rows -> lnf -> x_out */
    memset(a->dln, 0, (size_t)(N * d) * fs);
    if (R) {
        /* the forward left the logits' gradient in a->logits */
        memset(a->dhrows, 0, (size_t)(R * d) * fs);
        sd_tr_matmul_bwd(a->dhrows, m->g.output, NULL, a->logits, a->hrows, m->p.output, R, d, V);
        sd_tr_scatter_add_rows(a->dln, a->dhrows, b->loss_rows, R, d);
    }
    memset(a->dx, 0, (size_t)(N * d) * fs);
    sd_tr_rmsnorm_bwd(a->dx, m->g.output_norm, a->dln, a->x_out, m->p.output_norm, a->rstdf, N, d);

    /* a->dx is, in turn, the gradient of each layer's output (= next input) */
    for (int32_t l = hp->n_layer - 1; l >= 0; l--) {
        sd_tlayer_acts *la = &a->layers[l];
        const sd_tlayer *w = &m->p.layers[l];
        sd_tlayer *gw = &m->g.layers[l];
        /* x_next = x2 + down(swiglu(gate(ln2), up(ln2))) */
        memset(a->dhs, 0, (size_t)(N * F) * fs);
        sd_tr_matmul_bwd(a->dhs, gw->w_down, NULL, a->dx, la->hs, w->w_down, N, F, d);
        memset(a->dg, 0, (size_t)(N * F) * fs);
        memset(a->du, 0, (size_t)(N * F) * fs);
        sd_tr_swiglu_bwd(a->dg, a->du, a->dhs, la->g, la->u, N * F);
        memset(a->dln, 0, (size_t)(N * d) * fs);
        sd_tr_matmul_bwd(a->dln, gw->w_gate, NULL, a->dg, la->ln2, w->w_gate, N, d, F);
        sd_tr_matmul_bwd(a->dln, gw->w_up, NULL, a->du, la->ln2, w->w_up, N, d, F);
        sd_tr_rmsnorm_bwd(a->dx, gw->ffn_norm, a->dln, la->x2, w->ffn_norm, la->rstd2, N, d);
        /* now a->dx = dL/dx2;  x2 = x + wo(attention(rope(q), rope(k), v)) */
        memset(a->datty, 0, (size_t)(N * qd) * fs);
        sd_tr_matmul_bwd(a->datty, gw->wo, NULL, a->dx, la->atty, w->wo, N, qd, d);
        memset(a->dq, 0, (size_t)(N * qd) * fs);
        memset(a->dk, 0, (size_t)(N * kd) * fs);
        memset(a->dv, 0, (size_t)(N * kd) * fs);
        sd_tr_attention_bwd(a->dq, a->dk, a->dv, a->dP, a->datty, la->att, la->q, la->k, la->v, B,
                            L, H, Hkv, hd);
        sd_tr_rope_bwd(a->dq, a->rope_cos, a->rope_sin, B, L, H, hd, m->rope_mode);
        sd_tr_rope_bwd(a->dk, a->rope_cos, a->rope_sin, B, L, Hkv, hd, m->rope_mode);
        memset(a->dln, 0, (size_t)(N * d) * fs);
        sd_tr_matmul_bwd(a->dln, gw->wq, gw->bq, a->dq, la->ln1, w->wq, N, d, qd);
        sd_tr_matmul_bwd(a->dln, gw->wk, gw->bk, a->dk, la->ln1, w->wk, N, d, kd);
        sd_tr_matmul_bwd(a->dln, gw->wv, gw->bv, a->dv, la->ln1, w->wv, N, d, kd);
        sd_tr_rmsnorm_bwd(a->dx, gw->attn_norm, a->dln, la->x, w->attn_norm, la->rstd1, N, d);
    }
}

/* mdlm: the backward of forward_blocks_dit, down to a->dx (the input
 * embeddings' gradient), through the adaLN outputs into the timestep MLP. */
static void backward_conditioning(sd_tmodel *m, const sd_tbatch *b) {
    const sd_hparams *hp = &m->hp;
    const int64_t d = hp->n_embd, C = hp->n_cond, T = hp->n_freq, Bc = cond_seqs(m, b);
    sd_tacts *a = &m->a;
    const sd_tparams *p = &m->p, *g = &m->g;
    const size_t fs = sizeof(float);
    /* the adaLN outputs -> c -> the timestep MLP (its input has no gradient) */
    memset(a->t_dc, 0, (size_t)(Bc * C) * fs);
    for (int32_t l = 0; l <= hp->n_layer; l++) {
        const int last = l == hp->n_layer, nch = last ? 2 : 6;
        mod_arrange(m, a->dmod, Bc, l, nch, 1);
        sd_tr_matmul_bwd(a->t_dc, last ? g->output_adaln : g->layers[l].adaln,
                         last ? g->output_adaln_b : g->layers[l].adaln_b, a->mod_rows, a->t_c,
                         last ? p->output_adaln : p->layers[l].adaln, Bc, C, nch * d);
    }
    memset(a->t_da, 0, (size_t)(Bc * C) * fs);
    sd_tr_silu_bwd(a->t_da, a->t_dc, a->t_h2, Bc * C); /* dL/d(fc2 out) */
    memset(a->t_dc, 0, (size_t)(Bc * C) * fs);
    sd_tr_matmul_bwd(a->t_dc, g->time_fc2, g->time_fc2_b, a->t_da, a->t_a1, p->time_fc2, Bc, C, C);
    memset(a->t_da, 0, (size_t)(Bc * C) * fs);
    sd_tr_silu_bwd(a->t_da, a->t_dc, a->t_h1, Bc * C); /* dL/d(fc1 out) */
    sd_tr_matmul_bwd(NULL, g->time_fc1, g->time_fc1_b, a->t_da, a->t_feat, p->time_fc1, Bc, T, C);
}

static void backward_blocks_dit(sd_tmodel *m, const sd_tbatch *b) {
    const sd_hparams *hp = &m->hp;
    int64_t B = b->B, L = b->L, N = B * L, R = b->n_loss, Bc = cond_seqs(m, b), Lc = N / Bc;
    int64_t d = hp->n_embd, H = hp->n_head, hd = d / H, F = hp->n_ff, V = hp->n_vocab;
    int64_t nmod = Bc * ((int64_t)hp->n_layer * 6 * d + 2 * d);
    sd_tacts *a = &m->a;
    const sd_tparams *p = &m->p;
    const sd_tparams *g = &m->g;
    size_t fs = sizeof(float);
    memset(a->dmod, 0, (size_t)nmod * fs);
#define MOD(l, j) mod_chunk(m, a->mod, Bc, l, j)
#define DMOD(l, j) mod_chunk(m, a->dmod, Bc, l, j)

    /* head: the mask logit's shift is a constant, its gradient passes through */
    memset(a->dln, 0, (size_t)(N * d) * fs);
    if (R) {
        memset(a->dhrows, 0, (size_t)(R * d) * fs);
        sd_tr_matmul_bwd(a->dhrows, g->output, g->output_b, a->logits, a->hrows, p->output, R, d, V);
        sd_tr_scatter_add_rows(a->dln, a->dhrows, b->loss_rows, R, d);
    }
    memset(a->dx, 0, (size_t)(N * d) * fs);
    sd_tr_layernorm_mod_bwd(a->dx, g->output_norm, DMOD(hp->n_layer, 0), DMOD(hp->n_layer, 1), a->dln, a->x_out,
                            p->output_norm, MOD(hp->n_layer, 1), a->meanf, a->rstdf, Bc, Lc, d);

    for (int32_t l = hp->n_layer - 1; l >= 0; l--) {
        sd_tlayer_acts *la = &a->layers[l];
        const sd_tlayer *w = &p->layers[l];
        const sd_tlayer *gw = &g->layers[l];
        /* x_next = x2 + gate_f * mo:  a->dx is also dL/dx2's direct part */
        memset(a->dln, 0, (size_t)(N * d) * fs);
        sd_tr_gated_add_bwd(NULL, DMOD(l, 5), a->dln, a->dx, MOD(l, 5), la->mo, Bc, Lc, d);
        memset(a->dhs, 0, (size_t)(N * F) * fs);
        sd_tr_matmul_bwd(a->dhs, gw->w_down, gw->b_down, a->dln, la->hs, w->w_down, N, F, d);
        memset(a->du, 0, (size_t)(N * F) * fs);
        sd_tr_gelu_bwd(a->du, a->dhs, la->u, N * F);
        memset(a->dln, 0, (size_t)(N * d) * fs);
        sd_tr_matmul_bwd(a->dln, gw->w_up, gw->b_up, a->du, la->ln2, w->w_up, N, d, F);
        sd_tr_layernorm_mod_bwd(a->dx, gw->ffn_norm, DMOD(l, 3), DMOD(l, 4), a->dln, la->x2, w->ffn_norm, MOD(l, 4),
                                la->mean2, la->rstd2, Bc, Lc, d);
        /* now a->dx = dL/dx2;  x2 = x + gate_a * wo(attention) */
        memset(a->dln, 0, (size_t)(N * d) * fs);
        sd_tr_gated_add_bwd(NULL, DMOD(l, 2), a->dln, a->dx, MOD(l, 2), la->ao, Bc, Lc, d);
        memset(a->datty, 0, (size_t)(N * d) * fs);
        sd_tr_matmul_bwd(a->datty, gw->wo, NULL, a->dln, la->atty, w->wo, N, d, d);
        memset(a->dq, 0, (size_t)(N * d) * fs);
        memset(a->dk, 0, (size_t)(N * d) * fs);
        memset(a->dv, 0, (size_t)(N * d) * fs);
        sd_tr_attention_bwd(a->dq, a->dk, a->dv, a->dP, a->datty, la->att, la->q, la->k, la->v, B, L, H, H, hd);
        sd_tr_rope_bwd(a->dq, a->rope_cos, a->rope_sin, B, L, H, hd, SD_ROPE_NEOX);
        sd_tr_rope_bwd(a->dk, a->rope_cos, a->rope_sin, B, L, H, hd, SD_ROPE_NEOX);
        memset(a->dln, 0, (size_t)(N * d) * fs);
        sd_tr_matmul_bwd(a->dln, gw->wq, NULL, a->dq, la->ln1, w->wq, N, d, d);
        sd_tr_matmul_bwd(a->dln, gw->wk, NULL, a->dk, la->ln1, w->wk, N, d, d);
        sd_tr_matmul_bwd(a->dln, gw->wv, NULL, a->dv, la->ln1, w->wv, N, d, d);
        sd_tr_layernorm_mod_bwd(a->dx, gw->attn_norm, DMOD(l, 0), DMOD(l, 1), a->dln, la->x, w->attn_norm, MOD(l, 1),
                                la->mean1, la->rstd1, Bc, Lc, d);
    }
#undef MOD
#undef DMOD
    backward_conditioning(m, b);
}

int32_t sd_tmodel_backward(sd_tmodel *m, const sd_tbatch *b) {
    if (!m->have_forward || !b || b->B != m->fw_B || b->L != m->fw_L || b->n_loss != m->fw_R)
        return sd_fail(&m->err, SMDIFF_E_STATE, "train backward: no forward of this batch");
    if (b->n_loss && !b->loss_targets)
        return sd_fail(&m->err, SMDIFF_E_INVAL, "train backward: the batch has no targets");
    const sd_hparams *hp = &m->hp;
    int64_t B = b->B, L = b->L, N = B * L, R = b->n_loss;
    int64_t d = hp->n_embd;
    sd_tacts *a = &m->a;
    size_t fs = sizeof(float);

    if (m->dit)
        backward_blocks_dit(m, b);
    else
        backward_blocks_llama(m, b);

    /* input embeddings: soft rows into E (mask and candidates) and lambda,
     * then hard rows; a soft row's gradient is cleared before the hard
     * pass so it is not also credited to the mask token's plain lookup. */
    if (b->n_soft) {
        memset(a->dlam, 0, (size_t)b->n_soft * fs);
        sd_tr_softmix_bwd(m->g.token_embd, a->dlam, a->dx, m->p.token_embd, hp->mask_id,
                          b->soft_rows, b->soft_ids, b->soft_pi, a->lam, b->n_soft, b->k, d);
        sd_tr_sm_lambda_bwd(m->g.sm_raw, a->dlam, b->soft_entropy, b->n_soft, m->p.sm_raw);
        for (int64_t s = 0; s < b->n_soft; s++)
            memset(a->dx + (int64_t)b->soft_rows[s] * d, 0, (size_t)d * fs);
    }
    sd_tr_embed_bwd(m->g.token_embd, a->dx, b->ids, N, d);
    m->flops += 2.0 * sd_tmodel_forward_flops(hp, B, L, R);
    return SMDIFF_OK;
}
