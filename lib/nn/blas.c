#include <cblas.h>
#include <dlfcn.h>
#include <stdatomic.h>

#include "blas.h"

/* OpenBLAS extras; declared here so we do not depend on which cblas.h
 * variant (openblas or reference) the include path picks. */
extern void openblas_set_num_threads(int num_threads);
extern int openblas_get_num_threads(void);
extern char *openblas_get_corename(void);

void sd_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
              int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N, (blasint)K, alpha, A,
                (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

/* cblas_sbgemm(order, transA, transB, M, N, K, alpha, A(bf16), lda, B(bf16), ldb, beta, C, ldc) */
typedef void (*sbgemm_fn)(int, int, int, blasint, blasint, blasint, float, const uint16_t *,
                          blasint, const uint16_t *, blasint, float, float *, blasint);

static sbgemm_fn resolve_sbgemm(void) {
    static _Atomic(int) state = 0;  /* 0 unknown, 1 absent, 2 present */
    static sbgemm_fn fn = NULL;
    int s = atomic_load(&state);
    if (s == 0) {
        void *sym = dlsym(RTLD_DEFAULT, "cblas_sbgemm");
        /* A data-to-function pointer conversion through memcpy-free union. */
        union {
            void *p;
            sbgemm_fn f;
        } u;
        u.p = sym;
        fn = u.f;
        atomic_store(&state, sym ? 2 : 1);
        s = sym ? 2 : 1;
    }
    return s == 2 ? fn : NULL;
}

int sd_sbgemm_available(void) { return resolve_sbgemm() != NULL; }

int sd_sbgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, float beta,
              float *C, int64_t ldc) {
    sbgemm_fn fn = resolve_sbgemm();
    if (!fn) return -1;
    if (M <= 0 || N <= 0) return 0;
    fn(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
       (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C,
       (blasint)ldc);
    return 0;
}

void sd_blas_set_threads(int n) {
    if (n < 1) n = 1;
    if (openblas_get_num_threads() != n) openblas_set_num_threads(n);
}

int sd_blas_get_threads(void) { return openblas_get_num_threads(); }

const char *sd_blas_corename(void) {
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}
