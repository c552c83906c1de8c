/* gate.c -- soft-masking's feedback on held-out text; see gate.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/vecmath.h"
#include "diffusion/softmask.h"
#include "eval/gate.h"
#include "nn/model.h"

/* splitmix64, the generator the documented gate figures were drawn with */
static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Scratch of one call: a masked window, its masked rows, their logits, and
 * per masked position its entropy and lambda. */
typedef struct gate_ws {
    int32_t *ids, *rows;
    float *logits;
    double *h, *lambda;
} gate_ws;

static void ws_free(gate_ws *w) {
    sd_free(w->ids), sd_free(w->rows), sd_free(w->logits), sd_free(w->h), sd_free(w->lambda);
}

/* One masked position's row z[V] of logits (overwritten with
 * probabilities): its entropy, and how many tokens beat the truth. */
static double softmax_entropy(float *z, int64_t V, int32_t truth, int64_t *above) {
    float mx = z[0];
    for (int64_t v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
    double sum = 0, h = 0;
    for (int64_t v = 0; v < V; v++) sum += (z[v] = sd_expf(z[v] - mx));
    for (int64_t v = 0; v < V; v++) {
        z[v] = (float)(z[v] / sum);
        if (z[v] > 0) h -= z[v] * log(z[v]);
    }
    *above = 0;
    for (int64_t v = 0; v < V; v++) *above += z[v] > z[truth];
    return h;
}

/* The statistics of one rate; i is its index (the mask stream). */
static int32_t gate_rate(const smdiff_model *model, const smdiff_softmask *sm, const int32_t *windows,
                         size_t n_windows, size_t L, double t, uint64_t stream, gate_ws *w,
                         smdiff_gate_stats *out, sd_error *err) {
    const int64_t V = model->w.hp.n_vocab, k = sm->opt[SD_OPT_SLOT(SMDIFF_SM_TOPK)].i;
    const size_t shift = model->w.hp.shift_logits != 0; /* row p - shift predicts position p */
    const double gate = sd_softmask_gate(sm, 1, 2);
    uint64_t st = stream;
    size_t R = 0, top1 = 0, topk = 0;
    double lsum = 0;
    for (size_t win = 0; win < n_windows; win++) {
        const int32_t *x = windows + win * L;
        size_t nr = 0;
        for (size_t p = 0; p < L; p++) {
            /* every position draws, so the masks of the others do not depend
             * on shift; with shifted logits position 0 has no predicting row
             * and is never masked (as in decoding) */
            int masked = (double)(splitmix(&st) >> 11) * 0x1.0p-53 < t && p >= shift;
            w->ids[p] = masked ? model->w.hp.mask_id : x[p];
            if (masked) w->rows[nr++] = (int32_t)(p - shift);
        }
        if (!nr) continue;
        int32_t rc = smdiff_model_logits(model, w->ids, L, w->rows, nr, w->logits, L * (size_t)V);
        if (rc) return sd_error_forward(err, sd_tls_error());
        for (size_t r = 0; r < nr; r++) {
            int64_t above = 0;
            double h = softmax_entropy(w->logits + r * (size_t)V, V, x[w->rows[r] + shift], &above);
            double l = gate > 0 ? gate * sd_softmask_lambda_from_entropy(sm, h) : 0.0;
            top1 += above == 0, topk += above < k;
            w->h[R] = h, w->lambda[R] = l, lsum += l;
            R++;
        }
    }
    size_t l01 = 0, l1 = 0;
    for (size_t i = 0; i < R; i++) l01 += w->lambda[i] > 0.01, l1 += w->lambda[i] > 0.1;
    qsort(w->h, R, sizeof *w->h, cmp_double);
    double n = R ? (double)R : 1.0;
    out->n_masked = R;
    out->median_entropy = R ? w->h[R / 2] : 0.0;
    out->top1 = (double)top1 / n, out->topk = (double)topk / n;
    out->mean_lambda = lsum / n;
    out->lambda_above_001 = (double)l01 / n, out->lambda_above_01 = (double)l1 / n;
    return SMDIFF_OK;
}

int32_t sd_eval_gate(const smdiff_model *model, const smdiff_softmask *sm, const int32_t *windows,
                     size_t n_windows, size_t seq_len, const double *rates, size_t n_rates, uint64_t seed,
                     smdiff_gate_stats *out, sd_error *err) {
    const size_t L = seq_len, V = (size_t)model->w.hp.n_vocab;
    for (size_t i = 0; i < n_windows * L; i++)
        if (windows[i] < 0 || (size_t)windows[i] >= V)
            return sd_fail(err, SMDIFF_E_RANGE, "eval gate: token %zu is %d, outside vocabulary %zu", i,
                           (int)windows[i], V);
    gate_ws w = {sd_malloc(sizeof(int32_t) * L), sd_malloc(sizeof(int32_t) * L), sd_malloc(sizeof(float) * L * V),
                 sd_malloc(sizeof(double) * L * n_windows), sd_malloc(sizeof(double) * L * n_windows)};
    int32_t rc = SMDIFF_OK;
    if (!w.ids || !w.rows || !w.logits || !w.h || !w.lambda) rc = sd_fail(err, SMDIFF_E_NOMEM, "eval gate: out of memory");
    for (size_t i = 0; !rc && i < n_rates; i++)
        rc = gate_rate(model, sm, windows, n_windows, L, rates[i], seed * 0x9E3779B97F4A7C15ull + i, &w, &out[i], err);
    ws_free(&w);
    return rc;
}
