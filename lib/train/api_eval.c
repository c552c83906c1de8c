/* api_eval.c -- the experimental public evaluation API (smdiff_eval_*,
 * include/smdiff/smdiff.h): argument checks mapped onto lib/train/eval.h
 * and lib/train/metrics.h; errors go to the thread-local message. */
#include "core/alloc.h"
#include "core/error.h"
#include "smdiff/smdiff.h"
#include "train/eval.h"
#include "train/metrics.h"

#define REQUIRE(cond, ...)                                             \
    do {                                                               \
        if (!(cond)) return sd_fail(NULL, SMDIFF_E_INVAL, __VA_ARGS__); \
    } while (0)

SMDIFF_API int32_t smdiff_eval_elbo(const char *path, const int32_t *windows, int64_t n_windows,
                                    int64_t first_window, int32_t seq_len, int32_t draws, uint64_t seed, int32_t two_pass,
                                    int32_t threads, double *nll, int64_t *n_masked) {
    REQUIRE(path && windows && nll, "smdiff_eval_elbo: NULL argument");
    REQUIRE(n_windows >= 1 && first_window >= 0 && seq_len >= 1 && draws >= 1 && draws <= 1 << 20 && threads >= 0 &&
                threads <= 1024 && (two_pass == 0 || two_pass == 1),
            "smdiff_eval_elbo: need n_windows >= 1, first_window >= 0, seq_len >= 1, 1 <= draws <= 2^20, "
            "0 <= threads <= 1024, two_pass 0 or 1");
    sd_elbo_opts o = {seq_len, draws, seed, 1e-3, two_pass, 0, threads, 0, first_window};
    return sd_eval_elbo(path, windows, n_windows, &o, nll, n_masked, sd_tls_error());
}

SMDIFF_API int32_t smdiff_eval_ar(const char *path, const int32_t *seqs, int64_t n, int32_t seq_len,
                                  int32_t threads, double *nll, float *features, int32_t *n_embd) {
    REQUIRE(path && seqs, "smdiff_eval_ar: NULL argument");
    REQUIRE(n >= 1 && seq_len >= 2 && threads >= 0 && threads <= 1024,
            "smdiff_eval_ar: need n >= 1, seq_len >= 2, 0 <= threads <= 1024");
    int64_t d = 0;
    int32_t rc = sd_eval_ar(path, seqs, n, seq_len, threads, nll, features, &d, sd_tls_error());
    if (!rc && n_embd) *n_embd = (int32_t)d;
    return rc;
}

SMDIFF_API int32_t smdiff_eval_mauve(const float *p, int64_t n_p, const float *q, int64_t n_q,
                                     int64_t dim, uint64_t seed, double *score) {
    REQUIRE(p && q && score, "smdiff_eval_mauve: NULL argument");
    REQUIRE(n_p >= 1 && n_q >= 1 && n_p + n_q >= 2 && dim >= 1, "smdiff_eval_mauve: empty feature set");
    sd_mauve_params prm;
    sd_mauve_params_default(&prm);
    prm.seed = seed;
    return sd_mauve(p, n_p, q, n_q, dim, &prm, score, NULL, sd_tls_error());
}

SMDIFF_API int32_t smdiff_eval_unigram_entropy(const int32_t *ids, int64_t n, int64_t vocab,
                                               double *entropy) {
    REQUIRE(ids && entropy, "smdiff_eval_unigram_entropy: NULL argument");
    REQUIRE(n >= 1 && vocab >= 1, "smdiff_eval_unigram_entropy: need n >= 1 and vocab >= 1");
    return sd_unigram_entropy(ids, n, vocab, entropy, sd_tls_error());
}
