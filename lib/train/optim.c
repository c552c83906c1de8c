/* optim.c -- AdamW, clipping, schedule, EMA; see optim.h. */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "optim.h"

void sd_adamw_defaults(sd_adamw_opts *o) {
    memset(o, 0, sizeof *o);
    o->lr = 3e-4;
    o->sm_lr = 1e-2;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->weight_decay = 0.01;
    o->grad_clip = 1.0;
    o->schedule = SD_LR_CONSTANT;
}

int32_t sd_adamw_init(sd_adamw *opt, const sd_adamw_opts *o, const float *params, size_t n,
                      sd_error *err) {
    memset(opt, 0, sizeof *opt);
    if (!o || !params || n == 0) return sd_fail(err, SMDIFF_E_INVAL, "adamw: no parameters");
    if (!(o->lr >= 0) || !(o->sm_lr >= 0) || !(o->beta1 >= 0 && o->beta1 < 1) ||
        !(o->beta2 >= 0 && o->beta2 < 1) || !(o->eps > 0) || !(o->weight_decay >= 0) ||
        !(o->grad_clip >= 0) || o->warmup_steps < 0 ||
        (o->schedule != SD_LR_CONSTANT && o->schedule != SD_LR_COSINE) ||
        !(o->min_lr_frac >= 0 && o->min_lr_frac <= 1) || !(o->ema_decay >= 0 && o->ema_decay < 1))
        return sd_fail(err, SMDIFF_E_INVAL,
                       "adamw: bad options (lr %g, sm_lr %g, betas %g/%g, eps %g, wd %g, clip %g, "
                       "warmup %lld, schedule %d, min_lr_frac %g, ema %g)",
                       o->lr, o->sm_lr, o->beta1, o->beta2, o->eps, o->weight_decay, o->grad_clip,
                       (long long)o->warmup_steps, o->schedule, o->min_lr_frac, o->ema_decay);
    opt->o = *o;
    opt->n = n;
    opt->m = sd_calloc(n, sizeof(float));
    opt->v = sd_calloc(n, sizeof(float));
    if (o->ema_decay > 0) {
        opt->ema = sd_malloc(n * sizeof(float));
        if (opt->ema) memcpy(opt->ema, params, n * sizeof(float));
    }
    if (!opt->m || !opt->v || (o->ema_decay > 0 && !opt->ema)) {
        sd_adamw_free(opt);
        return sd_fail(err, SMDIFF_E_NOMEM, "adamw: out of memory for %zu parameters", n);
    }
    return SMDIFF_OK;
}

void sd_adamw_free(sd_adamw *opt) {
    if (!opt) return;
    sd_free(opt->m);
    sd_free(opt->v);
    sd_free(opt->ema);
    opt->m = opt->v = opt->ema = NULL;
}

double sd_lr_at(const sd_adamw_opts *o, int64_t s, double peak) {
    if (s < o->warmup_steps) return peak * (double)(s + 1) / (double)o->warmup_steps;
    if (o->schedule == SD_LR_CONSTANT) return peak;
    int64_t span = o->total_steps - o->warmup_steps;
    double prog = span > 0 ? (double)(s - o->warmup_steps) / (double)span : 1.0;
    if (prog > 1) prog = 1;
    double floor_lr = peak * o->min_lr_frac;
    return floor_lr + 0.5 * (peak - floor_lr) * (1.0 + cos(M_PI * prog));
}

double sd_global_norm(const float *g, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

typedef struct adam_ctx {
    float *p, *g, *m, *v;
    float decay, step_size, b1, b2, omb1, omb2, inv_sq_bc2, eps;
} adam_ctx;

/* elements [i0, i1) of one tensor; float math so the loop stays cheap */
static void adam_range(void *vctx, int64_t i0, int64_t i1, int thread) {
    (void)thread;
    const adam_ctx *c = vctx;
    for (int64_t i = i0; i < i1; i++) {
        float g = c->g[i];
        float m = c->b1 * c->m[i] + c->omb1 * g;
        float v = c->b2 * c->v[i] + c->omb2 * g * g;
        c->m[i] = m;
        c->v[i] = v;
        c->p[i] = c->p[i] * c->decay - c->step_size * m / (sqrtf(v) * c->inv_sq_bc2 + c->eps);
    }
}

int32_t sd_adamw_step(sd_adamw *opt, float *params, float *grads, const sd_ttensor *tensors,
                      int32_t n_tensors, double *grad_norm, sd_error *err) {
    const sd_adamw_opts *o = &opt->o;
    double norm = sd_global_norm(grads, opt->n);
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm))
        return sd_fail(err, SMDIFF_E_NUMERIC, "adamw: gradient norm is not finite at step %lld",
                       (long long)opt->step + 1);
    /* PyTorch's clip_grad_norm_: scale by max/(norm + 1e-6) when below 1 */
    if (o->grad_clip > 0) {
        double c = o->grad_clip / (norm + 1e-6);
        if (c < 1.0)
            for (size_t i = 0; i < opt->n; i++) grads[i] = (float)(grads[i] * c);
    }
    int64_t t = opt->step + 1;
    double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    double sq_bc2 = sqrt(bc2);
    double lr_main = sd_lr_at(o, opt->step, o->lr), lr_sm = sd_lr_at(o, opt->step, o->sm_lr);
    /* 1 - beta in double, then rounded: float(1 - 0.999f) is off by 1e-5 */
    float b1 = (float)o->beta1, b2 = (float)o->beta2;
    float omb1 = (float)(1.0 - o->beta1), omb2 = (float)(1.0 - o->beta2);
    for (int32_t ti = 0; ti < n_tensors; ti++) {
        const sd_ttensor *tt = &tensors[ti];
        size_t n = (size_t)(tt->rows * tt->cols), off = tt->offset;
        double lr = tt->group == SD_TGROUP_SM ? lr_sm : lr_main;
        float decay = tt->group == SD_TGROUP_DECAY ? (float)(1.0 - lr * o->weight_decay) : 1.0f;
        float step_size = (float)(lr / bc1);
        adam_ctx c = {params + off, grads + off, opt->m + off, opt->v + off, decay,
                      step_size, b1, b2, omb1, omb2, (float)(1.0 / sq_bc2), (float)o->eps};
        /* split only big tensors: a pool round trip costs more than a norm vector */
        sd_pool_run(n >= 65536 ? opt->pool : NULL, adam_range, &c, (int64_t)n);
    }
    if (opt->ema) {
        float d = (float)o->ema_decay;
        for (size_t i = 0; i < opt->n; i++) opt->ema[i] = d * opt->ema[i] + (1.0f - d) * params[i];
    }
    opt->step = t;
    return SMDIFF_OK;
}
