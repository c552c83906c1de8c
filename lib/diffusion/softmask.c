#include <math.h>
#include <string.h>

#include "io/gguf.h"
#include "nn/model.h"
#include "softmask.h"

static const sd_option_def defs[] = {
    {SMDIFF_SM_MODE, "mode", SMDIFF_TYPE_INT, 0, 2, SMDIFF_SM_ENTROPY, 0, 0},
    {SMDIFF_SM_TOPK, "topk", SMDIFF_TYPE_INT, 1, 64, 3, 0, 0},
    {SMDIFF_SM_SCALE, "scale", SMDIFF_TYPE_DOUBLE, 0, 1, 1e-6, 1, 1},
    {SMDIFF_SM_STEEPNESS, "steepness", SMDIFF_TYPE_DOUBLE, 0, 1e4, 6.66, 1, 0},
    {SMDIFF_SM_CENTRE, "centre", SMDIFF_TYPE_DOUBLE, -1e4, 0, -0.75, 0, 1},
    {SMDIFF_SM_CONSTANT_LAMBDA, "constant_lambda", SMDIFF_TYPE_DOUBLE, 0, 1, 0.5, 0, 0},
    {SMDIFF_SM_WINDOW_START, "window_start", SMDIFF_TYPE_DOUBLE, 0, 1, 0, 0, 0},
    {SMDIFF_SM_WINDOW_END, "window_end", SMDIFF_TYPE_DOUBLE, 0, 1, 1, 0, 0},
    {SMDIFF_SM_FADE, "fade", SMDIFF_TYPE_INT, 0, 1, 0, 0, 0},
};

const sd_option_table sd_softmask_options = {defs,
                                             (int32_t)(sizeof defs / sizeof defs[0])};

_Static_assert(sizeof defs / sizeof defs[0] == SMDIFF_SM_OPT_LAST_ - SMDIFF_SM_OPT_FIRST_ + 1, "one entry per option");

double sd_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

double sd_softplus(double x) { return x > 30 ? x : log1p(exp(x)); }

double sd_softplus_inv(double y) { return y > 30 ? y : log(expm1(y)); }

double sd_logit(double y) { return log(y) - log1p(-y); }

double sd_entropy(const float *probs, int64_t n) {
    double h = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double p = probs[i];
        if (p > 0) h -= p * log(p);
    }
    return h;
}

double sd_softmask_window(const struct smdiff_softmask *sm, double f) {
    double start = sm->opt[SD_OPT_SLOT(SMDIFF_SM_WINDOW_START)].d, end = sm->opt[SD_OPT_SLOT(SMDIFF_SM_WINDOW_END)].d;
    if (f < start || f >= end) return 0.0;
    if (!sm->opt[SD_OPT_SLOT(SMDIFF_SM_FADE)].i) return 1.0;
    return 1.0 - (f - start) / (end - start);
}

double sd_softmask_gate(const struct smdiff_softmask *sm, int32_t step, int32_t n_steps) {
    if (step <= 0 || n_steps <= 0) return 0.0;
    return sd_softmask_window(sm, (double)step / (double)n_steps);
}

double sd_softmask_lambda_from_entropy(const struct smdiff_softmask *sm, double entropy) {
    switch (sm->opt[SD_OPT_SLOT(SMDIFF_SM_MODE)].i) {
    case SMDIFF_SM_ENTROPY:
        return sm->opt[SD_OPT_SLOT(SMDIFF_SM_SCALE)].d *
               sd_sigmoid(sm->opt[SD_OPT_SLOT(SMDIFF_SM_STEEPNESS)].d * (-entropy - sm->opt[SD_OPT_SLOT(SMDIFF_SM_CENTRE)].d));
    case SMDIFF_SM_CONSTANT:
        return sm->opt[SD_OPT_SLOT(SMDIFF_SM_CONSTANT_LAMBDA)].d;
    default:
        return 0.0;
    }
}

void sd_softmask_mix(const float *embd, int64_t d, const float *e_mask, const int32_t *ids,
                     const float *probs, int32_t k, float lambda, float *out) {
    float z = 0.0f;
    for (int32_t i = 0; i < k; i++) z += probs[i];
    for (int64_t j = 0; j < d; j++) out[j] = (1.0f - lambda) * e_mask[j];
    if (z <= 0.0f) return;
    for (int32_t i = 0; i < k; i++) {
        float w = lambda * probs[i] / z;
        const float *row = embd + (int64_t)ids[i] * d;
        for (int64_t j = 0; j < d; j++) out[j] += w * row[j];
    }
}

/* ------------------------------------------------ a model's stored values */

/* One stored SM parameter: absent keys keep the default; a present key of
 * the wrong type or out of bounds is a format error. */
static int32_t meta_double(const struct smdiff_model *m, struct smdiff_softmask *sm, const char *key,
                           int32_t opt, sd_error *err) {
    if (sd_gguf_find_key(m->gguf, key) < 0) return SMDIFF_OK;
    double v;
    sd_error e = {0};
    if (sd_gguf_get_f64(m->gguf, key, &v, &e) || sd_option_set_double(&sd_softmask_options, sm->opt, opt, v, &e))
        return sd_fail(err, SMDIFF_E_FORMAT, "model metadata %s: %s", key, e.msg);
    return SMDIFF_OK;
}

int32_t sd_softmask_from_model(const struct smdiff_model *m, struct smdiff_softmask *sm, sd_error *err) {
    sd_options_defaults(&sd_softmask_options, sm->opt);
    sd_error e = {0};
    const char *kk = "smdiff.softmask.k";
    if (sd_gguf_find_key(m->gguf, kk) >= 0) {
        int64_t k;
        if (sd_gguf_get_i64(m->gguf, kk, &k, &e) || sd_option_set_int(&sd_softmask_options, sm->opt, SMDIFF_SM_TOPK, k, &e))
            return sd_fail(err, SMDIFF_E_FORMAT, "model metadata %s: %s", kk, e.msg);
    }
    const char *km = "smdiff.softmask.mode";
    if (sd_gguf_find_key(m->gguf, km) >= 0) {
        sd_gguf_str str;
        int64_t mode = -1;
        if (sd_gguf_get_str(m->gguf, km, &str, &e) == SMDIFF_OK) {
            static const char *names[] = {"off", "entropy", "constant"};
            for (int i = 0; i < 3; i++)
                if (str.len == strlen(names[i]) && !memcmp(str.ptr, names[i], str.len)) mode = i;
        } else if (sd_gguf_get_i64(m->gguf, km, &mode, &e) != SMDIFF_OK) {
            mode = -1;
        }
        if (mode < 0 || sd_option_set_int(&sd_softmask_options, sm->opt, SMDIFF_SM_MODE, mode, &e))
            return sd_fail(err, SMDIFF_E_FORMAT, "model metadata %s: expected \"off\", \"entropy\" or \"constant\"", km);
    }
    static const struct {
        const char *key;
        int32_t opt;
    } dkeys[] = {
        {"smdiff.softmask.scale", SMDIFF_SM_SCALE},
        {"smdiff.softmask.steepness", SMDIFF_SM_STEEPNESS},
        {"smdiff.softmask.centre", SMDIFF_SM_CENTRE},
        {"smdiff.softmask.constant_lambda", SMDIFF_SM_CONSTANT_LAMBDA},
    };
    for (size_t i = 0; i < sizeof dkeys / sizeof dkeys[0]; i++) {
        int32_t rc = meta_double(m, sm, dkeys[i].key, dkeys[i].opt, err);
        if (rc) return rc;
    }
    /* The transparency head's fourth scalar (the soft-masking paper's
     * checkpoints): smdiff computes p at temperature 1 only, so any other
     * value is refused rather than silently ignored. */
    const char *kt = "smdiff.softmask.temperature";
    if (sd_gguf_find_key(m->gguf, kt) >= 0) {
        double tau;
        if (sd_gguf_get_f64(m->gguf, kt, &tau, &e) || !(tau > 0))
            return sd_fail(err, SMDIFF_E_FORMAT, "model metadata %s: expected a positive number", kt);
        if (fabs(tau - 1.0) > 1e-6)
            return sd_fail(err, SMDIFF_E_UNSUPPORTED,
                           "model metadata %s = %g: soft-masking at a temperature other than 1 is not "
                           "implemented; set a schedule explicitly (smdiff_sampler_set_softmask) to run "
                           "at temperature 1", kt, tau);
    }
    return SMDIFF_OK;
}
