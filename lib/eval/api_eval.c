/* api_eval.c -- the experimental public evaluation API (smdiff_eval_*,
 * include/smdiff/smdiff.h): argument checks mapped onto lib/eval/; errors go
 * to the thread-local message (these functions have no object). */
#include "core/alloc.h"
#include "core/error.h"
#include "diffusion/softmask.h"
#include "eval/gate.h"
#include "eval/likelihood.h"
#include "eval/metrics.h"
#include "nn/model.h"
#include "smdiff/smdiff.h"

#define REQUIRE(cond, ...)                                             \
    do {                                                               \
        if (!(cond)) return sd_fail(NULL, SMDIFF_E_INVAL, __VA_ARGS__); \
    } while (0)

/* A count of at most 2^40: no evaluation is that large, and a negative
 * number converted to size_t is refused. */
#define EVAL_COUNT_OK(n) ((n) <= ((size_t)1 << 40))

static int32_t require_loaded(const smdiff_model *model, const char *fn) {
    if (!model) return sd_fail(NULL, SMDIFF_E_INVAL, "%s: model is NULL", fn);
    if (!model->loaded) return sd_fail(NULL, SMDIFF_E_STATE, "%s: model is not loaded", fn);
    return SMDIFF_OK;
}

/* No evaluation runs past the model's context: its positions beyond were
 * never trained (and RoPE tables, masks and buffers are sized for it). */
static int32_t within_context(const smdiff_model *model, size_t seq_len, const char *fn) {
    if (seq_len <= (size_t)model->w.hp.n_ctx) return SMDIFF_OK;
    return sd_fail(NULL, SMDIFF_E_INVAL, "%s: seq_len %zu is beyond the model's context of %d", fn, seq_len,
                   (int)model->w.hp.n_ctx);
}

/* The shared checks of the two bound functions */
static int32_t check_elbo_args(const smdiff_model *model, const int32_t *windows, const void *out, size_t n_windows,
                               size_t first_window, size_t seq_len, size_t draws, int32_t threads, const char *fn) {
    int32_t rc = require_loaded(model, fn);
    if (rc) return rc;
    REQUIRE(windows && out, "%s: NULL argument", fn);
    REQUIRE(n_windows >= 1 && EVAL_COUNT_OK(n_windows) && EVAL_COUNT_OK(first_window) && seq_len >= 1 &&
                seq_len <= (size_t)INT32_MAX && n_windows * seq_len <= ((size_t)1 << 40) && draws >= 1 &&
                draws <= 1 << 20 && threads >= 0 && threads <= 1024,
            "%s: need 1 <= n_windows, first_window < 2^40, 1 <= seq_len, 1 <= draws <= 2^20, "
            "0 <= threads <= 1024", fn);
    return within_context(model, seq_len, fn);
}

SMDIFF_API int32_t smdiff_eval_elbo(const smdiff_model *model, const int32_t *windows, size_t n_windows,
                                    size_t first_window, size_t seq_len, size_t draws, uint64_t seed,
                                    int32_t two_pass, int32_t threads, double *nll, size_t *n_masked) {
    SD_MODEL_HOLD(model);
    int32_t rc = check_elbo_args(model, windows, nll, n_windows, first_window, seq_len, draws, threads,
                                 "smdiff_eval_elbo");
    if (rc) return rc;
    REQUIRE(two_pass == 0 || two_pass == 1, "smdiff_eval_elbo: two_pass must be 0 or 1");
    sd_elbo_opts o = {(int64_t)seq_len, (int32_t)draws, seed, 1e-3, threads, 0, (int64_t)first_window};
    sd_elbo_sm own = {1, {0, 0, 0}, 0};
    const size_t C = 1 + (size_t)two_pass;
    double *per = sd_malloc(sizeof(double) * n_windows * C);
    if (!per) return sd_fail(NULL, SMDIFF_E_NOMEM, "smdiff_eval_elbo: out of memory");
    int64_t nm = 0;
    rc = sd_eval_elbo(model, windows, (int64_t)n_windows, &o, &own, two_pass, per, &nm, NULL);
    if (!rc) {
        double sum = 0.0;
        for (size_t i = 0; i < n_windows; i++) sum += per[i * C + C - 1];
        *nll = sum / (double)n_windows;
        if (n_masked) *n_masked = (size_t)nm;
    }
    sd_free(per);
    return rc;
}

SMDIFF_API int32_t smdiff_eval_elbo_windows(const smdiff_model *model, const int32_t *windows, size_t n_windows,
                                            size_t first_window, size_t seq_len, size_t draws, uint64_t seed,
                                            const smdiff_softmask *const *schedules, size_t n_schedules,
                                            int32_t threads, double *window_nll, size_t *n_masked) {
    SD_MODEL_HOLD(model);
    int32_t rc = check_elbo_args(model, windows, window_nll, n_windows, first_window, seq_len, draws, threads,
                                 "smdiff_eval_elbo_windows");
    if (rc) return rc;
    REQUIRE(n_schedules <= 1024 && (schedules || !n_schedules),
            "smdiff_eval_elbo_windows: schedules is NULL or n_schedules > 1024");
    sd_elbo_sm *sm = sd_calloc(n_schedules ? n_schedules : 1, sizeof *sm);
    if (!sm) return sd_fail(NULL, SMDIFF_E_NOMEM, "smdiff_eval_elbo_windows: out of memory");
    /* omega and k as smdiff_trainer_set_softmask takes them; the other
     * options are decoding settings */
    for (size_t j = 0; j < n_schedules; j++) {
        const smdiff_softmask *s = schedules[j];
        sm[j].own = !s;
        if (!s) continue;
        sm[j].omega[0] = s->opt[SD_OPT_SLOT(SMDIFF_SM_SCALE)].d;
        sm[j].omega[1] = s->opt[SD_OPT_SLOT(SMDIFF_SM_STEEPNESS)].d;
        sm[j].omega[2] = s->opt[SD_OPT_SLOT(SMDIFF_SM_CENTRE)].d;
        sm[j].k = (int32_t)s->opt[SD_OPT_SLOT(SMDIFF_SM_TOPK)].i;
    }
    sd_elbo_opts o = {(int64_t)seq_len, (int32_t)draws, seed, 1e-3, threads, 0, (int64_t)first_window};
    int64_t nm = 0;
    rc = sd_eval_elbo(model, windows, (int64_t)n_windows, &o, sm, (int32_t)n_schedules, window_nll, &nm, NULL);
    if (!rc && n_masked) *n_masked = (size_t)nm;
    sd_free(sm);
    return rc;
}

SMDIFF_API int32_t smdiff_eval_ar(const smdiff_model *model, const int32_t *seqs, size_t n, size_t seq_len,
                                  int32_t threads, double *nll, float *features, size_t *n_embd) {
    SD_MODEL_HOLD(model);
    int32_t rc = require_loaded(model, "smdiff_eval_ar");
    if (rc) return rc;
    REQUIRE(seqs, "smdiff_eval_ar: NULL argument");
    REQUIRE(n >= 1 && EVAL_COUNT_OK(n) && seq_len >= 2 && seq_len <= (size_t)INT32_MAX && threads >= 0 && threads <= 1024,
            "smdiff_eval_ar: need n >= 1, seq_len >= 2, 0 <= threads <= 1024");
    if ((rc = within_context(model, seq_len, "smdiff_eval_ar"))) return rc;
    int64_t d = 0;
    rc = sd_eval_ar(model, seqs, (int64_t)n, (int64_t)seq_len, threads, nll, features, &d, NULL);
    if (!rc && n_embd) *n_embd = (size_t)d;
    return rc;
}

SMDIFF_API int32_t smdiff_eval_mauve(const float *p, size_t n_p, const float *q, size_t n_q, size_t dim,
                                     uint64_t seed, double *score) {
    REQUIRE(p && q && score, "smdiff_eval_mauve: NULL argument");
    REQUIRE(n_p >= 1 && n_q >= 1 && n_p + n_q >= 2 && dim >= 1, "smdiff_eval_mauve: empty feature set");
    REQUIRE(EVAL_COUNT_OK(n_p) && EVAL_COUNT_OK(n_q) && EVAL_COUNT_OK(dim), "smdiff_eval_mauve: a count is not a size");
    sd_mauve_params prm;
    sd_mauve_params_default(&prm);
    prm.seed = seed;
    return sd_mauve(p, (int64_t)n_p, q, (int64_t)n_q, (int64_t)dim, &prm, score, NULL, NULL);
}

SMDIFF_API int32_t smdiff_eval_unigram_entropy(const int32_t *ids, size_t n, size_t vocab, double *entropy) {
    REQUIRE(ids && entropy, "smdiff_eval_unigram_entropy: NULL argument");
    REQUIRE(n >= 1 && vocab >= 1 && EVAL_COUNT_OK(n) && EVAL_COUNT_OK(vocab),
            "smdiff_eval_unigram_entropy: need n >= 1 and vocab >= 1");
    return sd_unigram_entropy(ids, (int64_t)n, (int64_t)vocab, entropy, NULL);
}

SMDIFF_API int32_t smdiff_eval_gate(const smdiff_model *model, const smdiff_softmask *sm, const int32_t *windows,
                                    size_t n_windows, size_t seq_len, const double *rates, size_t n_rates,
                                    uint64_t seed, smdiff_gate_stats *out) {
    SD_MODEL_HOLD(model);
    int32_t rc = require_loaded(model, "smdiff_eval_gate");
    if (rc) return rc;
    REQUIRE(windows && rates && out, "smdiff_eval_gate: NULL argument");
    REQUIRE(n_windows >= 1 && seq_len >= 1 && n_rates >= 1 && seq_len <= (size_t)model->w.hp.n_ctx &&
                EVAL_COUNT_OK(n_windows) && n_windows * seq_len <= ((size_t)1 << 40) && n_rates <= 1024,
            "smdiff_eval_gate: need n_windows >= 1, 1 <= seq_len <= the context %d, 1 <= n_rates <= 1024",
            (int)model->w.hp.n_ctx);
    for (size_t i = 0; i < n_rates; i++)
        REQUIRE(rates[i] > 0 && rates[i] <= 1, "smdiff_eval_gate: rates[%zu] = %g outside (0, 1]", i, rates[i]);
    smdiff_softmask *own = NULL;
    if (!sm && (rc = smdiff_softmask_create_from_model(model, &own))) return rc;
    rc = sd_eval_gate(model, sm ? sm : own, windows, n_windows, seq_len, rates, n_rates, seed, out, NULL);
    smdiff_softmask_free(own);
    return rc;
}
