/* test_blas.c -- the BLAS seam against a naive triple loop on odd shapes,
 * every transpose combination, alpha/beta, strided leading dimensions, and
 * the thread-count setting. */
#include <math.h>
#include <stdlib.h>

#include "core/rng.h"
#include "nn/blas.h"
#include "testutil.h"

/* C[M,N] = alpha*op(A)@op(B) + beta*C, row-major, in double. */
static void naive(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[k * lda + i] : A[i * lda + k];
                double b = tb ? B[j * ldb + k] : B[k * ldb + j];
                acc += a * b;
            }
            C[i * ldc + j] = (float)(alpha * acc + beta * C[i * ldc + j]);
        }
}

static void fill(sd_rng *r, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(2.0 * sd_rng_uniform(r) - 1.0);
}

static void run_case(sd_rng *r, int ta, int tb, int M, int N, int K, float alpha, float beta, int pad) {
    int rowsA = ta ? K : M, colsA = ta ? M : K;
    int rowsB = tb ? N : K, colsB = tb ? K : N;
    int lda = colsA + pad, ldb = colsB + pad, ldc = N + pad;
    float *A = malloc(sizeof(float) * (size_t)rowsA * lda);
    float *B = malloc(sizeof(float) * (size_t)rowsB * ldb);
    float *C = malloc(sizeof(float) * (size_t)M * ldc);
    float *R = malloc(sizeof(float) * (size_t)M * ldc);
    fill(r, A, (size_t)rowsA * lda);
    fill(r, B, (size_t)rowsB * ldb);
    fill(r, C, (size_t)M * ldc);
    for (int i = 0; i < M * ldc; i++) R[i] = C[i];
    sd_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            /* float accumulation over K terms of size <= 1: error ~ K * eps. */
            double tol = 1e-6 * (K + 1) * 4 + 1e-6;
            assert_true(fabs(C[i * ldc + j] - R[i * ldc + j]) <= tol);
        }
    /* Padding columns are never written. */
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++) assert_true(C[i * ldc + j] == R[i * ldc + j]);
    free(A), free(B), free(C), free(R);
}

static void test_sgemm_odd_shapes(void **state) {
    (void)state;
    sd_rng r;
    sd_rng_init(&r, 11, 0);
    static const int shapes[][3] = {{1, 1, 1}, {1, 7, 3}, {5, 1, 9}, {3, 5, 1},  {17, 13, 11},
                                    {33, 65, 31}, {64, 3, 129}, {127, 129, 7}, {2, 300, 5}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                run_case(&r, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 1.0f, 0.0f, 0);
                run_case(&r, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], -0.5f, 1.0f, 3);
                run_case(&r, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 2.0f, 0.25f, 1);
            }
    /* Empty outputs are a no-op. */
    sd_sgemm(0, 0, 0, 5, 5, 1.0f, NULL, 5, NULL, 5, 0.0f, NULL, 5);
}

static void test_threads_setting(void **state) {
    (void)state;
    sd_blas_set_threads(1);
    assert_int_equal(sd_blas_get_threads(), 1);
    sd_rng r;
    sd_rng_init(&r, 12, 0);
    run_case(&r, 0, 1, 200, 150, 100, 1.0f, 0.0f, 0);
    sd_blas_set_threads(2);
    assert_int_equal(sd_blas_get_threads(), 2);
    run_case(&r, 0, 1, 200, 150, 100, 1.0f, 0.0f, 0);
    sd_blas_set_threads(0);  /* clamped to one */
    assert_int_equal(sd_blas_get_threads(), 1);
    assert_non_null(sd_blas_corename());
}

static uint16_t to_bf16(float f) {
    union {
        float f;
        uint32_t u;
    } v = {f};
    return (uint16_t)(v.u >> 16);
}

static void test_sbgemm_when_available(void **state) {
    (void)state;
    uint16_t a[6], b[6];
    float c[4] = {0};
    if (!sd_sbgemm_available()) {
        /* Debian's OpenBLAS 0.3.21 does not export cblas_sbgemm: the seam must
         * say so instead of computing anything. */
        assert_int_equal(sd_sbgemm(0, 1, 2, 2, 3, 1.0f, a, 3, b, 3, 0.0f, c, 2), -1);
        for (int i = 0; i < 4; i++) assert_true(c[i] == 0.0f);
        SKIP_BECAUSE("the loaded OpenBLAS (%s) has no cblas_sbgemm; checked that the seam reports it",
                     sd_blas_corename());
    }
    /* Values exactly representable in bf16. */
    float av[6] = {1, 2, 3, -1, 0.5f, 4}, bv[6] = {2, 0, 1, -3, 1, 0.25f};
    for (int i = 0; i < 6; i++) a[i] = to_bf16(av[i]), b[i] = to_bf16(bv[i]);
    assert_int_equal(sd_sbgemm(0, 1, 2, 2, 3, 1.0f, a, 3, b, 3, 0.0f, c, 2), 0);
    float ref[4];
    naive(0, 1, 2, 2, 3, 1.0f, av, 3, bv, 3, 0.0f, ref, 2);
    for (int i = 0; i < 4; i++) assert_true(fabsf(c[i] - ref[i]) < 1e-5f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_odd_shapes),
        cmocka_unit_test(test_threads_setting),
        cmocka_unit_test(test_sbgemm_when_available),
    };
    return cmocka_run_group_tests_name("blas", tests, NULL, NULL);
}
