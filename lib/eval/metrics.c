/* metrics.c -- MAUVE and unigram entropy (see metrics.h). Numerics in
 * double where sums are long (covariance, distances' totals, KL); the
 * data stays float as the features arrive. */
#include "eval/metrics.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "core/rng_streams.h"
#include "smdiff/smdiff.h"

void sd_mauve_params_default(sd_mauve_params *prm) {
    prm->num_clusters = 0;
    prm->seed = 25;
    prm->scaling = 5.0;
    prm->explained_var = 0.9;
    prm->num_redo = 5;
    prm->max_iter = 500;
    prm->curve_size = 25;
}

/* ------------------------------------------------------------ eigen */
/* a [d,d] symmetric (destroyed), w [d] desc, v [d,d] rows = eigenvectors.
 * Cyclic Jacobi: each rotation zeroes a[p][q]; sweeps until the
 * off-diagonal mass is negligible relative to the diagonal. */
int32_t sd_symeig_jacobi(double *a, int64_t d, double *w, double *v, sd_error *err) {
    if (!a || !w || !v || d < 1) return sd_fail(err, SMDIFF_E_INVAL, "symeig: bad arguments");
    double *vv = sd_malloc((size_t)(d * d) * sizeof(double)); /* columns = eigenvectors */
    int64_t *ord = sd_malloc((size_t)d * sizeof(int64_t));
    if (!vv || !ord) {
        sd_free(vv);
        sd_free(ord);
        return sd_fail(err, SMDIFF_E_NOMEM, "symeig: out of memory");
    }
    for (int64_t i = 0; i < d * d; i++) vv[i] = 0.0;
    for (int64_t i = 0; i < d; i++) vv[i * d + i] = 1.0;
    int converged = 0;
    for (int sweep = 0; sweep < 100 && !converged; sweep++) {
        double off = 0.0, diag = 0.0;
        for (int64_t i = 0; i < d; i++) {
            diag += a[i * d + i] * a[i * d + i];
            for (int64_t j = i + 1; j < d; j++) off += a[i * d + j] * a[i * d + j];
        }
        if (off <= 1e-30 * (diag > 0 ? diag : 1.0) || off == 0.0) {
            converged = 1;
            break;
        }
        for (int64_t p = 0; p < d; p++) {
            for (int64_t q = p + 1; q < d; q++) {
                double apq = a[p * d + q];
                if (apq == 0.0) continue;
                double app = a[p * d + p], aqq = a[q * d + q];
                double theta = (aqq - app) / (2.0 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                /* A <- J^T A J with J the rotation in the (p,q) plane */
                for (int64_t k = 0; k < d; k++) {
                    double akp = a[k * d + p], akq = a[k * d + q];
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for (int64_t k = 0; k < d; k++) {
                    double apk = a[p * d + k], aqk = a[q * d + k];
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                a[p * d + q] = a[q * d + p] = 0.0;
                for (int64_t k = 0; k < d; k++) {
                    double vkp = vv[k * d + p], vkq = vv[k * d + q];
                    vv[k * d + p] = c * vkp - s * vkq;
                    vv[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    if (!converged) {
        sd_free(vv);
        sd_free(ord);
        return sd_fail(err, SMDIFF_E_NUMERIC, "symeig: Jacobi did not converge in 100 sweeps");
    }
    /* sort descending (insertion sort: d is small, and it is stable) */
    for (int64_t i = 0; i < d; i++) ord[i] = i;
    for (int64_t i = 1; i < d; i++) {
        int64_t o = ord[i], j = i;
        while (j > 0 && a[ord[j - 1] * d + ord[j - 1]] < a[o * d + o]) {
            ord[j] = ord[j - 1];
            j--;
        }
        ord[j] = o;
    }
    for (int64_t i = 0; i < d; i++) {
        w[i] = a[ord[i] * d + ord[i]];
        for (int64_t k = 0; k < d; k++) v[i * d + k] = vv[k * d + ord[i]];
    }
    sd_free(vv);
    sd_free(ord);
    return 0;
}

/* -------------------------------------------------------------- PCA */
/* x [n,d] -> out [n,k]; covariance C [d,d] = Xc^T Xc / (n-1) in double. */
int32_t sd_pca(const float *x, int64_t n, int64_t d, double explained_var, float *out,
               int64_t *k_out, double *ev, sd_error *err) {
    if (!x || !out || !k_out || n < 2 || d < 1)
        return sd_fail(err, SMDIFF_E_INVAL, "pca: need x, out, k_out, n >= 2, d >= 1");
    if (!(explained_var > 0.0 && explained_var <= 1.0))
        return sd_fail(err, SMDIFF_E_RANGE, "pca: explained_var %g not in (0,1]", explained_var);
    double *mean = sd_calloc((size_t)d, sizeof(double));
    double *c = sd_calloc((size_t)(d * d), sizeof(double));
    double *w = sd_malloc((size_t)d * sizeof(double));
    double *v = sd_malloc((size_t)(d * d) * sizeof(double));
    double *row = sd_malloc((size_t)d * sizeof(double));
    int32_t rc = 0;
    if (!mean || !c || !w || !v || !row) {
        rc = sd_fail(err, SMDIFF_E_NOMEM, "pca: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) mean[j] += x[i * d + j];
    for (int64_t j = 0; j < d; j++) mean[j] /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < d; j++) row[j] = x[i * d + j] - mean[j];
        for (int64_t a = 0; a < d; a++) {
            double ra = row[a];
            for (int64_t b = a; b < d; b++) c[a * d + b] += ra * row[b];
        }
    }
    for (int64_t a = 0; a < d; a++)
        for (int64_t b = a; b < d; b++) {
            c[a * d + b] /= (double)(n - 1);
            c[b * d + a] = c[a * d + b];
        }
    rc = sd_symeig_jacobi(c, d, w, v, err);
    if (rc) goto done;
    double tot = 0.0;
    for (int64_t j = 0; j < d; j++) tot += w[j] > 0 ? w[j] : 0.0;
    /* the reference: idx = argmax(cumsum(ratio) >= ev), keep idx + 1 */
    int64_t k = d;
    if (tot > 0) {
        double cum = 0.0;
        for (int64_t j = 0; j < d; j++) {
            cum += (w[j] > 0 ? w[j] : 0.0) / tot;
            if (cum >= explained_var) {
                k = j + 1;
                break;
            }
        }
    } else {
        k = 1; /* all rows equal: one (zero) coordinate */
    }
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < d; j++) row[j] = x[i * d + j] - mean[j];
        for (int64_t m = 0; m < k; m++) {
            double s = 0.0;
            for (int64_t j = 0; j < d; j++) s += row[j] * v[m * d + j];
            out[i * k + m] = (float)s;
        }
    }
    *k_out = k;
    if (ev) memcpy(ev, w, (size_t)d * sizeof(double));
done:
    sd_free(mean);
    sd_free(c);
    sd_free(w);
    sd_free(v);
    sd_free(row);
    return rc;
}

/* ----------------------------------------------------------- k-means */
static double sqdist(const float *a, const float *b, int64_t d) {
    double s = 0.0;
    for (int64_t j = 0; j < d; j++) {
        double t = (double)a[j] - (double)b[j];
        s += t * t;
    }
    return s;
}

/* x [n,d], cen [k,d] out, dmin [n] scratch: k-means++ (Arthur &
 * Vassilvitskii 2007) -- first centre uniform, then each next one drawn
 * with probability proportional to the squared distance to the nearest. */
static void kmeanspp(const float *x, int64_t n, int64_t d, int64_t k, sd_rng *r, float *cen,
                     double *dmin) {
    int64_t first = (int64_t)sd_rng_below(r, (uint64_t)n);
    memcpy(cen, x + first * d, (size_t)d * sizeof(float));
    for (int64_t i = 0; i < n; i++) dmin[i] = sqdist(x + i * d, cen, d);
    for (int64_t c = 1; c < k; c++) {
        double tot = 0.0;
        for (int64_t i = 0; i < n; i++) tot += dmin[i];
        int64_t pick = (int64_t)sd_rng_below(r, (uint64_t)n);
        if (tot > 0) {
            double u = sd_rng_uniform(r) * tot, acc = 0.0;
            pick = n - 1;
            for (int64_t i = 0; i < n; i++) {
                acc += dmin[i];
                if (acc > u && dmin[i] > 0) {
                    pick = i;
                    break;
                }
            }
        }
        memcpy(cen + c * d, x + pick * d, (size_t)d * sizeof(float));
        for (int64_t i = 0; i < n; i++) {
            double t = sqdist(x + i * d, cen + c * d, d);
            if (t < dmin[i]) dmin[i] = t;
        }
    }
}

int32_t sd_kmeans(const float *x, int64_t n, int64_t d, int64_t k, int32_t num_redo,
                  int32_t max_iter, uint64_t seed, int32_t *labels, double *inertia,
                  sd_error *err) {
    if (!x || !labels || n < 1 || d < 1 || k < 1 || k > n || k > INT32_MAX)
        return sd_fail(err, SMDIFF_E_INVAL, "kmeans: need x, labels, 1 <= k (%lld) <= n (%lld)",
                       (long long)k, (long long)n);
    if (num_redo < 1 || max_iter < 1)
        return sd_fail(err, SMDIFF_E_RANGE, "kmeans: num_redo and max_iter must be >= 1");
    float *cen = sd_malloc((size_t)(k * d) * sizeof(float));
    double *sum = sd_malloc((size_t)(k * d) * sizeof(double));
    int64_t *cnt = sd_malloc((size_t)k * sizeof(int64_t));
    double *dmin = sd_malloc((size_t)n * sizeof(double));
    int32_t *lab = sd_malloc((size_t)n * sizeof(int32_t));
    if (!cen || !sum || !cnt || !dmin || !lab) {
        sd_free(cen), sd_free(sum), sd_free(cnt), sd_free(dmin), sd_free(lab);
        return sd_fail(err, SMDIFF_E_NOMEM, "kmeans: out of memory");
    }
    double best = INFINITY;
    for (int32_t redo = 0; redo < num_redo; redo++) {
        sd_rng r;
        sd_rng_init(&r, seed, SD_STREAM_KMEANS(redo));
        kmeanspp(x, n, d, k, &r, cen, dmin);
        for (int64_t i = 0; i < n; i++) lab[i] = -1;
        double obj = 0.0;
        for (int32_t it = 0; it < max_iter; it++) {
            /* assignment step; ties go to the lowest index */
            int64_t changed = 0;
            obj = 0.0;
            for (int64_t i = 0; i < n; i++) {
                int32_t bc = 0;
                double bd = INFINITY;
                for (int64_t c = 0; c < k; c++) {
                    double t = sqdist(x + i * d, cen + c * d, d);
                    if (t < bd) bd = t, bc = (int32_t)c;
                }
                if (lab[i] != bc) changed++;
                lab[i] = bc;
                obj += bd;
            }
            if (!changed) break;
            /* update step; an empty cluster keeps its centre */
            memset(sum, 0, (size_t)(k * d) * sizeof(double));
            memset(cnt, 0, (size_t)k * sizeof(int64_t));
            for (int64_t i = 0; i < n; i++) {
                cnt[lab[i]]++;
                for (int64_t j = 0; j < d; j++) sum[lab[i] * d + j] += x[i * d + j];
            }
            for (int64_t c = 0; c < k; c++)
                if (cnt[c])
                    for (int64_t j = 0; j < d; j++)
                        cen[c * d + j] = (float)(sum[c * d + j] / (double)cnt[c]);
        }
        if (obj < best) {
            best = obj;
            memcpy(labels, lab, (size_t)n * sizeof(int32_t));
        }
    }
    if (inertia) *inertia = best;
    sd_free(cen), sd_free(sum), sd_free(cnt), sd_free(dmin), sd_free(lab);
    return 0;
}

/* ------------------------------------------------------------- MAUVE */
/* KL(a || b) over k bins, 0 log 0 = 0, +inf where a > 0 = b (the
 * reference's kl_multinomial). */
static double kl(const double *a, const double *b, int64_t k) {
    double s = 0.0;
    for (int64_t i = 0; i < k; i++) {
        if (a[i] == 0.0) continue;
        if (b[i] == 0.0) return INFINITY;
        s += a[i] * log(a[i] / b[i]);
    }
    return s;
}

/* trapezoid area of y over x for n points already sorted by x */
static double trapz(const double *x, const double *y, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i + 1 < n; i++) s += (x[i + 1] - x[i]) * (y[i + 1] + y[i]) * 0.5;
    return s;
}

/* sort idx[0..n) by key ascending (stable insertion sort; n ~ 27) */
static void argsort(const double *key, int64_t *idx, int64_t n) {
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    for (int64_t i = 1; i < n; i++) {
        int64_t o = idx[i], j = i;
        while (j > 0 && key[idx[j - 1]] > key[o]) idx[j] = idx[j - 1], j--;
        idx[j] = o;
    }
}

int32_t sd_mauve_from_labels(const int32_t *p_labels, int64_t n_p, const int32_t *q_labels,
                             int64_t n_q, int64_t k, double scaling, int32_t curve_size,
                             double *score, double *curve, sd_error *err) {
    if (!p_labels || !q_labels || !score || n_p < 1 || n_q < 1 || k < 1)
        return sd_fail(err, SMDIFF_E_INVAL, "mauve: need labels, score, n_p, n_q, k >= 1");
    if (curve_size < 2 || !(scaling > 0.0))
        return sd_fail(err, SMDIFF_E_RANGE, "mauve: curve_size >= 2 and scaling > 0 required");
    int64_t m = (int64_t)curve_size + 2;
    double *ph = sd_calloc((size_t)k, sizeof(double));
    double *qh = sd_calloc((size_t)k, sizeof(double));
    double *rh = sd_malloc((size_t)k * sizeof(double));
    double *xs = sd_malloc((size_t)m * 4 * sizeof(double));
    int64_t *ix = sd_malloc((size_t)m * sizeof(int64_t));
    int32_t rc = 0;
    if (!ph || !qh || !rh || !xs || !ix) {
        rc = sd_fail(err, SMDIFF_E_NOMEM, "mauve: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n_p; i++) {
        if (p_labels[i] < 0 || p_labels[i] >= k) {
            rc = sd_fail(err, SMDIFF_E_RANGE, "mauve: p label %d outside [0,%lld)", p_labels[i],
                         (long long)k);
            goto done;
        }
        ph[p_labels[i]] += 1.0 / (double)n_p;
    }
    for (int64_t i = 0; i < n_q; i++) {
        if (q_labels[i] < 0 || q_labels[i] >= k) {
            rc = sd_fail(err, SMDIFF_E_RANGE, "mauve: q label %d outside [0,%lld)", q_labels[i],
                         (long long)k);
            goto done;
        }
        qh[q_labels[i]] += 1.0 / (double)n_q;
    }
    double *x = xs, *y = xs + m, *sx = xs + 2 * m, *sy = xs + 3 * m;
    /* end points exp(-c*[0, inf]) = (1, 0) and exp(-c*[inf, 0]) = (0, 1) */
    x[0] = 1.0, y[0] = 0.0;
    x[m - 1] = 0.0, y[m - 1] = 1.0;
    for (int32_t t = 0; t < curve_size; t++) {
        /* np.linspace(1e-6, 1 - 1e-6, curve_size) */
        double lo = 1e-6, hi = 1.0 - 1e-6;
        double w = t == curve_size - 1 ? hi : lo + (hi - lo) * (double)t / (double)(curve_size - 1);
        for (int64_t i = 0; i < k; i++) rh[i] = w * ph[i] + (1.0 - w) * qh[i];
        x[t + 1] = exp(-scaling * kl(qh, rh, k));
        y[t + 1] = exp(-scaling * kl(ph, rh, k));
    }
    argsort(x, ix, m);
    for (int64_t i = 0; i < m; i++) sx[i] = x[ix[i]], sy[i] = y[ix[i]];
    double a1 = trapz(sx, sy, m);
    argsort(y, ix, m);
    for (int64_t i = 0; i < m; i++) sx[i] = y[ix[i]], sy[i] = x[ix[i]];
    double a2 = trapz(sx, sy, m);
    *score = 0.5 * (a1 + a2);
    if (curve)
        for (int64_t i = 0; i < m; i++) curve[2 * i] = x[i], curve[2 * i + 1] = y[i];
done:
    sd_free(ph), sd_free(qh), sd_free(rh), sd_free(xs), sd_free(ix);
    return rc;
}

int32_t sd_mauve(const float *p_feats, int64_t n_p, const float *q_feats, int64_t n_q,
                 int64_t d, const sd_mauve_params *prm, double *score, double *curve,
                 sd_error *err) {
    sd_mauve_params def;
    if (!prm) sd_mauve_params_default(&def), prm = &def;
    if (!p_feats || !q_feats || !score || n_p < 1 || n_q < 1 || d < 1)
        return sd_fail(err, SMDIFF_E_INVAL, "mauve: need features, score, n_p, n_q, d >= 1");
    int64_t n = n_p + n_q;
    int64_t k = prm->num_clusters;
    if (k == 0) {
        int64_t mn = n_p < n_q ? n_p : n_q;
        k = (int64_t)llround((double)mn / 10.0); /* Python round: ties to even */
        if ((double)mn / 10.0 - floor((double)mn / 10.0) == 0.5 && (k & 1)) k--;
        if (k < 2) k = 2;
    }
    if (k < 1 || k > n)
        return sd_fail(err, SMDIFF_E_RANGE, "mauve: %lld clusters for %lld points", (long long)k,
                       (long long)n);
    if (!(prm->explained_var > 0.0 && prm->explained_var < 1.0))
        return sd_fail(err, SMDIFF_E_RANGE, "mauve: explained_var %g not in (0,1)",
                       prm->explained_var);
    float *data = sd_malloc((size_t)(n * d) * sizeof(float));
    float *proj = sd_malloc((size_t)(n * d) * sizeof(float));
    int32_t *lab = sd_malloc((size_t)n * sizeof(int32_t));
    int32_t rc = 0;
    if (!data || !proj || !lab) {
        rc = sd_fail(err, SMDIFF_E_NOMEM, "mauve: out of memory");
        goto done;
    }
    /* stacked [q; p] as the reference, each row scaled to unit L2 norm
     * (sklearn normalize: a zero row stays zero) */
    for (int64_t i = 0; i < n; i++) {
        const float *src = i < n_q ? q_feats + i * d : p_feats + (i - n_q) * d;
        double s = 0.0;
        for (int64_t j = 0; j < d; j++) s += (double)src[j] * src[j];
        double inv = s > 0 ? 1.0 / sqrt(s) : 1.0;
        for (int64_t j = 0; j < d; j++) data[i * d + j] = (float)(src[j] * inv);
    }
    int64_t kd = 0;
    if (n >= 2) {
        rc = sd_pca(data, n, d, prm->explained_var, proj, &kd, NULL, err);
        if (rc) goto done;
    } else {
        memcpy(proj, data, (size_t)(n * d) * sizeof(float)), kd = d;
    }
    rc = sd_kmeans(proj, n, kd, k, prm->num_redo, prm->max_iter, prm->seed, lab, NULL, err);
    if (rc) goto done;
    rc = sd_mauve_from_labels(lab + n_q, n_p, lab, n_q, k, prm->scaling, prm->curve_size, score,
                              curve, err);
done:
    sd_free(data), sd_free(proj), sd_free(lab);
    return rc;
}

/* ----------------------------------------------------------- entropy */
int32_t sd_unigram_entropy(const int32_t *tokens, int64_t n, int64_t vocab, double *h_nats,
                           sd_error *err) {
    if (!tokens || !h_nats || n < 1 || vocab < 1)
        return sd_fail(err, SMDIFF_E_INVAL, "entropy: need tokens, h, n >= 1, vocab >= 1");
    int64_t *cnt = sd_calloc((size_t)vocab, sizeof(int64_t));
    if (!cnt) return sd_fail(err, SMDIFF_E_NOMEM, "entropy: out of memory");
    for (int64_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= vocab) {
            sd_free(cnt);
            return sd_fail(err, SMDIFF_E_RANGE, "entropy: token %d outside [0,%lld)", tokens[i],
                           (long long)vocab);
        }
        cnt[tokens[i]]++;
    }
    double h = 0.0;
    for (int64_t v = 0; v < vocab; v++)
        if (cnt[v]) {
            double f = (double)cnt[v] / (double)n;
            h -= f * log(f);
        }
    *h_nats = h;
    sd_free(cnt);
    return 0;
}
