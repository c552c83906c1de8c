/* metrics.h -- sample-quality metrics for evaluation (issue 7): MAUVE
 * (Pillutla et al., NeurIPS 2021, following the reference `mauve-text`
 * package's compute_mauve) and the unigram entropy of token samples.
 * Internal API; pure C, deterministic given the seed. See docs/TRAINING.md,
 * "Sample-quality metrics", for what follows the reference and what differs. */
#ifndef SD_EVAL_METRICS_H
#define SD_EVAL_METRICS_H

#include <stdint.h>

#include "core/error.h"

/* MAUVE parameters; sd_mauve_params_default fills the reference defaults. */
typedef struct sd_mauve_params {
    int64_t num_clusters;   /* k-means clusters; 0 = auto = max(2, round(min(n_p, n_q) / 10)) */
    uint64_t seed;          /* k-means seeding (Philox stream) */
    double scaling;         /* c in exp(-c KL); reference 5 */
    double explained_var;   /* PCA keeps the fewest components whose cumulative
                               explained-variance ratio is >= this; in (0,1); 0.9 */
    int32_t num_redo;       /* k-means restarts, the lowest objective is kept; 5 */
    int32_t max_iter;       /* Lloyd iterations per restart (stops early when
                               assignments no longer change); 500 */
    int32_t curve_size;     /* number of mixture weights in linspace(1e-6, 1-1e-6, .); 25 */
} sd_mauve_params;

/* Reference defaults: auto clusters, seed 25, c = 5, 0.9, 5, 500, 25. */
void sd_mauve_params_default(sd_mauve_params *prm);

/* Symmetric eigen-decomposition by cyclic Jacobi rotations (double).
 *   a    [d, d] symmetric, row-major; destroyed
 *   w    [d]    eigenvalues, sorted descending
 *   v    [d, d] row i = unit eigenvector of w[i]
 * Meant for d up to a few hundred. Returns 0 or SMDIFF_E_NUMERIC if the
 * sweeps did not converge, SMDIFF_E_NOMEM. */
int32_t sd_symeig_jacobi(double *a, int64_t d, double *w, double *v, sd_error *err);

/* PCA as sklearn.decomposition.PCA(whiten=False) + the reference's cut:
 *   x     [n, d] data (float)
 *   out   [n, *k_out] projections of the centred rows onto the leading
 *         principal directions, where *k_out is the smallest k with
 *         sum(ev[0..k)) / sum(ev) >= explained_var (ev = eigenvalues of the
 *         covariance); the caller provides n*d floats.
 *   ev    optional [d] eigenvalues (descending, covariance with 1/(n-1))
 * Directions have an arbitrary sign (irrelevant for distances). */
int32_t sd_pca(const float *x, int64_t n, int64_t d, double explained_var, float *out,
               int64_t *k_out, double *ev, sd_error *err);

/* k-means (Lloyd) with k-means++ seeding and num_redo restarts from a
 * Philox stream seeded by `seed`; the restart with the lowest sum of squared
 * distances wins.
 *   x       [n, d]   data
 *   labels  [n]      out: cluster index in [0, k) of each row
 *   inertia optional out: the winning sum of squared distances
 * Requires 1 <= k <= n. */
int32_t sd_kmeans(const float *x, int64_t n, int64_t d, int64_t k, int32_t num_redo,
                  int32_t max_iter, uint64_t seed, int32_t *labels, double *inertia,
                  sd_error *err);

/* MAUVE from given cluster labels (the divergence-curve and area part).
 *   p_labels [n_p], q_labels [n_q] in [0, k)
 *   curve    optional out [curve_size + 2, 2]: the points
 *            (exp(-c KL(Q||R_w)), exp(-c KL(P||R_w))), R_w = w P + (1-w) Q,
 *            after the end point (1, 0) and before (0, 1), w ascending.
 *   score    out: 0.5 * (trapezoid area of y over x, points sorted by x
 *            + trapezoid area of x over y, points sorted by y), as the
 *            reference does with sklearn.metrics.auc. */
int32_t sd_mauve_from_labels(const int32_t *p_labels, int64_t n_p, const int32_t *q_labels,
                             int64_t n_q, int64_t k, double scaling, int32_t curve_size,
                             double *score, double *curve, sd_error *err);

/* MAUVE between two feature sets (the reference compute_mauve on features):
 * rows stacked [q; p], L2-normalised, PCA to explained_var, k-means into
 * num_clusters, histograms, divergence curve, area.
 *   p_feats [n_p, d], q_feats [n_q, d]; n_p, n_q >= 1, n_p + n_q >= 2
 *   curve   optional out [prm->curve_size + 2, 2] (see sd_mauve_from_labels)
 *   prm     NULL = defaults */
int32_t sd_mauve(const float *p_feats, int64_t n_p, const float *q_feats, int64_t n_q,
                 int64_t d, const sd_mauve_params *prm, double *score, double *curve,
                 sd_error *err);

/* Unigram entropy, in nats, of the empirical distribution of all tokens
 * over all samples: H = -sum_v f_v log f_v, f_v = count_v / n.
 *   tokens [n] ids in [0, vocab) */
int32_t sd_unigram_entropy(const int32_t *tokens, int64_t n, int64_t vocab, double *h_nats,
                           sd_error *err);

#endif
