/* qgemm.h -- products with block-quantised weights (core/quant.h formats).
 *
 * Two regimes, chosen by the number of activation rows M:
 *
 *  - many rows (a full canvas): the weights are dequantised panel by panel
 *    into f32 (sd_qdequant_row, vectorised, bit-identical to
 *    sd_quant_dequant) and multiplied by the f32 GEMM, so the cost per
 *    weight is amortised over all M rows (ops.c, sd_matmul_w);
 *  - few rows (M <= SD_QGEMM_FEW_ROWS, e.g. cached decoding's active
 *    block): memory-bound, so the weights are never expanded. The
 *    activations are quantised to 8 bits per block (see below) and each
 *    weight block is decoded once into 8-bit codes that are multiplied
 *    with every activation row by integer dot products (AVX2
 *    maddubs/madd, or AVX-512 VNNI dpbusd), one f32 multiply-add per
 *    block. A plain-C version of the same arithmetic is the reference.
 *
 * Activation formats (internal, never stored in files):
 *   A32  for the 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL):
 *        per 32 elements f32 d = amax/127, f32 ds = d * sum(q), i8 q[32];
 *   A256 for the K-quants and IQ4_XS: per 256 elements f32 d, i16
 *        bsum[16] (sums of q over each 16), i8 q[256].
 *   q = round-to-nearest-even(x * (127/amax)), |q| <= 127. The only error
 *   the integer path adds to the exact product with the dequantised
 *   weights is this rounding of x: at most d/2 per element, so
 *   |y - y_exact| <= sum over blocks of (d_block / 2) * sum |w| in the block
 *   (plus f32 accumulation rounding); tests/test_quant.c checks that bound.
 */
#ifndef SD_NN_QGEMM_H
#define SD_NN_QGEMM_H

#include <stddef.h>
#include <stdint.h>

#include "core/pool.h"

/* The most rows sd_qgemm_few takes. */
#define SD_QGEMM_FEW_ROWS 32
/* sd_matmul_w also takes up to this many rows to the few-row kernels, in
 * two near-equal chunks, for a type whose limit is SD_QGEMM_FEW_ROWS: a
 * dual-cache step of a 32-position block with shifted logits has 33 rows,
 * and on AVX2 a 33- to 48-row product costs less as two integer passes over
 * the weights (about 0.51 + 0.07 s for 33 rows of the 0.5B Q4_K_M shape)
 * than as dequantised panels (0.64-0.67 s at 32 rows already;
 * docs/PERFORMANCE.md, "Few rows"). */
#define SD_QGEMM_SPLIT_ROWS 48

/* Up to how many activation rows sd_matmul_w (nn/ops.h) uses the few-row
 * kernels for weights of type: 0 for types without them, else at most
 * SD_QGEMM_FEW_ROWS -- where the integer kernels stop being faster than
 * dequantising a panel for the f32 GEMM depends on the type and the
 * instruction set (measured by bench_quant, docs/PERFORMANCE.md). */
int64_t sd_qgemm_few_max(uint32_t type);
/* Tests: force that limit for every type (0: never the few-row kernels,
 * SD_QGEMM_FEW_ROWS: always up to it); -1 returns to the measured table.
 * Not thread-safe. */
void sd_qgemm_force_few_max(int64_t rows);

/* Instruction-set paths of the few-row kernels and the dequantisers. */
enum {
    SD_QISA_SCALAR = 0, /* plain C: the reference */
    SD_QISA_AVX2 = 1,   /* AVX2 + FMA + F16C */
    SD_QISA_VNNI = 2,   /* AVX-512 VL/BW + VNNI (dpbusd) on 256-bit vectors */
    SD_QISA_VNNI_EMU = 3, /* the VNNI kernels with dpbusd emulated in AVX2 (tests only) */
};

/* The fastest path this CPU supports (checked once). */
int sd_qgemm_best_isa(void);
/* 1 if this CPU can run path isa. */
int sd_qgemm_isa_available(int isa);
/* Force a path (tests); -1 returns to the best one. Returns 0, or -1
 * (nothing changed) if this CPU cannot run it. Not thread-safe. */
int sd_qgemm_force_isa(int isa);
/* The path in use now. */
int sd_qgemm_isa(void);
const char *sd_qgemm_isa_name(int isa);

/* 1 if type has few-row kernels (every block format but Q8_K). */
int sd_qgemm_supported(uint32_t type);

/* One row w of n elements of a block type -> out[n] f32, vectorised on the
 * path in use, equal bit for bit to sd_quant_dequant (ops.c's
 * sd_dequant_rows calls it for panels). */
void sd_qdequant_row(uint32_t type, const void *w, int64_t n, float *out);

/* Bytes of scratch sd_qgemm_few needs for M rows of cols elements. */
size_t sd_qgemm_scratch_bytes(uint32_t type, int64_t M, int64_t cols);

/* Few-row product, for W[rows, cols] of a block type, cols a multiple of
 * its block, 1 <= M <= SD_QGEMM_FEW_ROWS:
 *   out[m*ldc + r] = sum_k x[m*cols + k] W[r, k] (+ out[m*ldc + r] if beta != 0)
 * for m < M, r < rows. scratch: sd_qgemm_scratch_bytes bytes (any
 * alignment). Threads over weight rows. */
void sd_qgemm_few(float *out, int64_t ldc, float beta, const float *x, int64_t M, uint32_t type, const void *w,
                  int64_t rows, int64_t cols, void *scratch, sd_pool *pool);

/* ---- internals shared with the SIMD files and the tests */

typedef struct {
    float d, ds;
    int8_t q[32];
} sd_qa32;

typedef struct {
    float d;
    int16_t bsum[16];
    int8_t q[256];
} sd_qa256;

/* 1 if type's activations are A256 (else A32). */
int sd_qgemm_act256(uint32_t type);
/* Quantise one row x[cols] to A32 / A256 blocks (the same bits on every
 * path). */
void sd_qact_row(uint32_t type, const float *x, int64_t cols, void *act);

/* The work of one call, split over weight rows. */
typedef struct {
    uint32_t type;
    const uint8_t *w;  /* W[rows, cols] */
    size_t w_row;      /* bytes per weight row */
    const uint8_t *act; /* M rows of activation blocks */
    size_t act_row;    /* bytes per activation row */
    int64_t M, nblk;   /* activation rows, blocks per row */
    float *out;
    int64_t ldc;
    int beta;          /* 1: add to out */
} sd_qgemm_job;

/* Rows [r0, r1) of a job on one path (the SIMD files export theirs). */
void sd_qgemm_rows_scalar(const sd_qgemm_job *j, int64_t r0, int64_t r1);
void sd_qgemm_rows_avx2(const sd_qgemm_job *j, int64_t r0, int64_t r1);
void sd_qgemm_rows_vnni(const sd_qgemm_job *j, int64_t r0, int64_t r1);
void sd_qgemm_rows_vnniemu(const sd_qgemm_job *j, int64_t r0, int64_t r1);
/* One weight row of n elements -> f32 on the AVX2 path. */
void sd_qdequant_row_avx2(uint32_t type, const uint8_t *w, int64_t n, float *out);
/* One activation block x[n] (n = 32 or 256) -> q[n] on the AVX2 path: its
 * scale d (returned) and *sum of q, the same bits as qgemm.c's scalar one. */
float sd_qact_block_avx2(const float *x, int n, int8_t *q, int *sum);

#endif
