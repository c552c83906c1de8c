#include <math.h>

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

double sd_softmask_gate(const struct smdiff_softmask *sm, int32_t step, int32_t n_steps) {
    if (step <= 0 || n_steps <= 0) return 0.0;
    double f = (double)step / (double)n_steps;
    double start = sm->opt[SD_OPT_SLOT(SMDIFF_SM_WINDOW_START)].d, end = sm->opt[SD_OPT_SLOT(SMDIFF_SM_WINDOW_END)].d;
    if (f < start || f >= end) return 0.0;
    if (!sm->opt[SD_OPT_SLOT(SMDIFF_SM_FADE)].i) return 1.0;
    return 1.0 - (f - start) / (end - start);
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
