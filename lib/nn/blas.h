/* blas.h -- the BLAS seam. blas.c is the only file in smdiff that includes
 * cblas.h; everything else multiplies matrices through these wrappers, so
 * the backend can change in one place.
 *
 * All matrices are row-major. Shapes:
 *   C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C[M,N]
 * with op(X) = X or X^T by trans_a / trans_b (0 or 1), and leading
 * dimensions lda, ldb, ldc in elements of the stored (untransposed) rows.
 */
#ifndef SD_NN_BLAS_H
#define SD_NN_BLAS_H

#include <stdint.h>

#include "core/error.h"

void sd_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
              int64_t ldc);

/* bf16 inputs (uint16_t bit patterns), f32 output, through OpenBLAS's
 * cblas_sbgemm when the loaded OpenBLAS exports it (looked up at run time).
 * Returns 0, or -1 if unavailable (nothing written). */
int sd_sbgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, float beta,
              float *C, int64_t ldc);
int sd_sbgemm_available(void);

/* Set the BLAS backend's thread count (process-wide in OpenBLAS). n >= 1. */
void sd_blas_set_threads(int n);
int sd_blas_get_threads(void);

/* OpenBLAS's work buffer per calling or worker thread (its BUFFER_SIZE in
 * Debian's build: 128 MiB), plus a page. */
#define SD_BLAS_BUFFER_BYTES (((uint64_t)128 << 20) + 4096)

/* The address-space guard (blas.c): under a memory limit, OpenBLAS loops
 * for ever when its work buffer does not fit, so smdiff checks first.
 * sd_blas_reserve_threads sets the thread count as sd_blas_set_threads
 * does after checking that new workers' buffers and stacks fit;
 * sd_blas_enter / sd_blas_leave bracket every region that multiplies
 * matrices (a forward pass, a loss and its gradient). Both fail with
 * SMDIFF_E_NOMEM and a message naming the limit; without a limit they
 * never fail. Thread-safe. */
int32_t sd_blas_reserve_threads(int n, sd_error *err);
int32_t sd_blas_enter(sd_error *err);
void sd_blas_leave(void);

/* OpenBLAS's kernel name, e.g. "SkylakeX" or "Haswell". */
const char *sd_blas_corename(void);

#endif
