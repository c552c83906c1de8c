/* test_metrics.c -- sample-quality metrics (lib/eval/metrics.c): PCA
 * against numpy.linalg.eigh and the divergence-curve/area part of MAUVE
 * against the independent NumPy reference (tests/ref/mauve_ref.py ->
 * tests/data/mauve_ref.txt, fixed cluster labels); end-to-end MAUVE of
 * identical sets (= 1) and of disjoint, well-separated sets (the analytic
 * disjoint value); k-means on planted clusters; unigram entropy. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "smdiff/smdiff.h"
#include "eval/metrics.h"

/* MAUVE of any two label sets with disjoint supports, c = 5, 25 weights:
 * the curve points are ((1-w)^5, w^5) whatever the histograms, so the score
 * is a constant. tests/data/mauve_ref.txt, case 2 (NumPy). The continuous
 * curve's area is 5 B(5,6) = 1/252 = 0.003968; the 25-point trapezoid
 * gives slightly more. */
#define DISJOINT_MAUVE 0.0040720962619612546

static FILE *open_ref(void) {
    FILE *f = fopen("tests/data/mauve_ref.txt", "r");
    assert_non_null(f);
    return f;
}

static void test_pca_vs_numpy(void **state) {
    (void)state;
    FILE *f = open_ref();
    int n, d, k;
    assert_int_equal(fscanf(f, "pca %d %d %d", &n, &d, &k), 3);
    float *x = sd_malloc((size_t)n * d * sizeof(float));
    float *out = sd_malloc((size_t)n * d * sizeof(float));
    double *ev = sd_malloc((size_t)d * sizeof(double));
    double *p = sd_malloc((size_t)n * k * sizeof(double));
    double w[64];
    for (int i = 0; i < n * d; i++) assert_int_equal(fscanf(f, "%f", &x[i]), 1);
    for (int i = 0; i < d; i++) assert_int_equal(fscanf(f, "%lf", &w[i]), 1);
    for (int i = 0; i < n * k; i++) assert_int_equal(fscanf(f, "%lf", &p[i]), 1);
    fclose(f);
    int64_t kk = 0;
    assert_int_equal(sd_pca(x, n, d, 0.9, out, &kk, ev, NULL), 0);
    assert_int_equal(kk, k);
    for (int i = 0; i < d; i++) assert_true(fabs(ev[i] - w[i]) <= 1e-6 * w[0]);
    /* each column agrees up to a sign (eigenvectors are defined up to one) */
    for (int m = 0; m < k; m++) {
        double dot = 0.0;
        for (int i = 0; i < n; i++) dot += out[i * k + m] * p[i * k + m];
        double s = dot >= 0 ? 1.0 : -1.0;
        for (int i = 0; i < n; i++) assert_true(fabs(s * out[i * k + m] - p[i * k + m]) < 1e-4);
    }
    sd_free(x), sd_free(out), sd_free(ev), sd_free(p);
}

static void test_symeig_small(void **state) {
    (void)state;
    /* [[2,1,0],[1,2,0],[0,0,5]]: eigenvalues 5, 3, 1 */
    double a[9] = {2, 1, 0, 1, 2, 0, 0, 0, 5}, w[3], v[9];
    assert_int_equal(sd_symeig_jacobi(a, 3, w, v, NULL), 0);
    assert_true(fabs(w[0] - 5) < 1e-12 && fabs(w[1] - 3) < 1e-12 && fabs(w[2] - 1) < 1e-12);
    assert_true(fabs(fabs(v[3]) - sqrt(0.5)) < 1e-12 && fabs(v[3] - v[4]) < 1e-12);
}

static void test_mauve_labels_vs_numpy(void **state) {
    (void)state;
    FILE *f = open_ref();
    char tag[16];
    int cases = 0;
    while (fscanf(f, "%15s", tag) == 1) {
        if (strcmp(tag, "mauve") != 0) continue;
        int np_, nq, k;
        double want, got, curve[27 * 2];
        assert_int_equal(fscanf(f, "%d %d %d %lf", &np_, &nq, &k, &want), 4);
        int32_t pl[128], ql[128];
        for (int i = 0; i < np_; i++) assert_int_equal(fscanf(f, "%d", &pl[i]), 1);
        for (int i = 0; i < nq; i++) assert_int_equal(fscanf(f, "%d", &ql[i]), 1);
        assert_int_equal(sd_mauve_from_labels(pl, np_, ql, nq, k, 5.0, 25, &got, curve, NULL), 0);
        for (int i = 0; i < 54; i++) {
            double c;
            assert_int_equal(fscanf(f, "%lf", &c), 1);
            assert_true(fabs(c - curve[i]) < 1e-12);
        }
        printf("mauve case %d: %.17g (numpy %.17g)\n", cases, got, want);
        assert_true(fabs(got - want) < 1e-12);
        cases++;
    }
    fclose(f);
    assert_int_equal(cases, 3);
}

/* n points around each of `nc` centres: centre c has coordinate 10 on axis
 * (c0 + c) and 0 elsewhere, noise N(0, 0.1^2) per coordinate. */
static void planted(float *x, int64_t n, int64_t d, int nc, int c0, sd_rng *r, int32_t *truth) {
    for (int64_t i = 0; i < n; i++) {
        int c = (int)(i % nc);
        for (int64_t j = 0; j < d; j++) x[i * d + j] = (float)(0.1 * sd_rng_normal(r));
        x[i * d + c0 + c] += 10.0f;
        if (truth) truth[i] = c;
    }
}

static void test_kmeans_planted(void **state) {
    (void)state;
    enum { N = 200, D = 8, K = 5 };
    float *x = sd_malloc(N * D * sizeof(float));
    int32_t truth[N], lab[N];
    sd_rng r;
    sd_rng_init(&r, 11, 0);
    planted(x, N, D, K, 2, &r, truth);
    double inertia = 0;
    assert_int_equal(sd_kmeans(x, N, D, K, 5, 500, 3, lab, &inertia, NULL), 0);
    /* a one-to-one map from planted clusters to labels */
    int map[K];
    for (int c = 0; c < K; c++) map[c] = -1;
    for (int i = 0; i < N; i++) {
        if (map[truth[i]] < 0) map[truth[i]] = lab[i];
        assert_int_equal(map[truth[i]], lab[i]);
    }
    for (int a = 0; a < K; a++)
        for (int b = a + 1; b < K; b++) assert_int_not_equal(map[a], map[b]);
    /* inertia ~ N * D * 0.01 */
    assert_true(inertia > 0.5 * N * D * 0.01 && inertia < 2.0 * N * D * 0.01);
    int32_t bad[1];
    assert_int_equal(sd_kmeans(x, N, D, N + 1, 1, 1, 0, bad, NULL, NULL), SMDIFF_E_INVAL);
    sd_free(x);
}

static void test_mauve_identical_and_disjoint(void **state) {
    (void)state;
    enum { N = 150, D = 24 };
    float *p = sd_malloc(N * D * sizeof(float));
    float *q = sd_malloc(N * D * sizeof(float));
    sd_rng r;
    sd_rng_init(&r, 5, 0);
    /* identical sets: every point sits in the same cluster as its copy */
    planted(p, N, D, 8, 0, &r, NULL);
    double s = -1, s2 = -1, curve[27 * 2];
    assert_int_equal(sd_mauve(p, N, p, N, D, NULL, &s, curve, NULL), 0);
    printf("MAUVE identical: %.17g\n", s);
    assert_true(s > 0.99);
    /* deterministic given the seed */
    assert_int_equal(sd_mauve(p, N, p, N, D, NULL, &s2, NULL, NULL), 0);
    assert_true(s == s2);
    /* disjoint: P around 5 axes, Q around 5 other axes; k = auto = 15 */
    planted(p, N, D, 5, 0, &r, NULL);
    planted(q, N, D, 5, 10, &r, NULL);
    assert_int_equal(sd_mauve(p, N, q, N, D, NULL, &s, curve, NULL), 0);
    printf("MAUVE disjoint: %.17g (analytic 25-point value %.17g)\n", s, DISJOINT_MAUVE);
    assert_true(s < 0.05);
    assert_true(fabs(s - DISJOINT_MAUVE) < 1e-12);
    /* an intermediate case lies strictly between: half of Q moved onto P's axes */
    planted(q, N / 2, D, 5, 0, &r, NULL);
    assert_int_equal(sd_mauve(p, N, q, N, D, NULL, &s, NULL, NULL), 0);
    printf("MAUVE half-overlap: %.6f\n", s);
    assert_true(s > 0.05 && s < 0.99);
    /* bad arguments */
    sd_mauve_params prm;
    sd_mauve_params_default(&prm);
    prm.explained_var = 1.5;
    assert_int_equal(sd_mauve(p, N, q, N, D, &prm, &s, NULL, NULL), SMDIFF_E_RANGE);
    assert_int_equal(sd_mauve(NULL, N, q, N, D, NULL, &s, NULL, NULL), SMDIFF_E_INVAL);
    sd_free(p), sd_free(q);
}

static void test_unigram_entropy(void **state) {
    (void)state;
    enum { V = 37 };
    int32_t t[V * 3];
    for (int i = 0; i < V * 3; i++) t[i] = (int32_t)((i * 7) % V);
    double h = -1;
    assert_int_equal(sd_unigram_entropy(t, V * 3, V, &h, NULL), 0);
    assert_true(fabs(h - log((double)V)) < 1e-12);
    for (int i = 0; i < 50; i++) t[i] = 4;
    assert_int_equal(sd_unigram_entropy(t, 50, V, &h, NULL), 0);
    assert_true(h == 0.0);
    /* two tokens with frequencies 1/4, 3/4 */
    int32_t u[4] = {1, 2, 2, 2};
    assert_int_equal(sd_unigram_entropy(u, 4, 3, &h, NULL), 0);
    assert_true(fabs(h - (0.25 * log(4.0) + 0.75 * log(4.0 / 3.0))) < 1e-12);
    u[0] = 3;
    assert_int_equal(sd_unigram_entropy(u, 4, 3, &h, NULL), SMDIFF_E_RANGE);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pca_vs_numpy),
        cmocka_unit_test(test_symeig_small),
        cmocka_unit_test(test_mauve_labels_vs_numpy),
        cmocka_unit_test(test_kmeans_planted),
        cmocka_unit_test(test_mauve_identical_and_disjoint),
        cmocka_unit_test(test_unigram_entropy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
