/* test_quant.c -- the block formats (core/quant.c) and the quantised
 * kernels (nn/qgemm.c):
 *  - dequantisation of every type equals the independent NumPy reference
 *    (tests/ref/quant_ref.py -> tests/data/quant_ref.bin) bit for bit, on
 *    the reference path and on the vectorised one;
 *  - the quantisers: exactly representable blocks come back exactly, and
 *    every block's error is at most that of the simple rule (scale from
 *    the largest magnitude), which the search starts from;
 *  - the few-row integer kernels on every path this CPU has against the
 *    f64 product with the dequantised weights, within the bound the
 *    8-bit activation rounding justifies (qgemm.h);
 *  - blocks with non-finite scales are found. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "core/quant.h"
#include "io/gguf.h"
#include "nn/qgemm.h"
#include "testutil.h"

static const uint32_t k_types[] = {SD_QT_Q4_0, SD_QT_Q4_1, SD_QT_Q5_0, SD_QT_Q5_1, SD_QT_Q8_0,
                                   SD_QT_Q2_K, SD_QT_Q3_K, SD_QT_Q4_K, SD_QT_Q5_K, SD_QT_Q6_K,
                                   SD_QT_IQ4_NL, SD_QT_IQ4_XS};
#define N_TYPES (sizeof k_types / sizeof k_types[0])

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* [0, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static float grand(void) { /* standard normal */
    double u = urand() + 1e-300, v = urand();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static uint32_t rd32le(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ------------------------------------------------------- dequantisation */

static void test_dequant_matches_numpy(void **state) {
    (void)state;
    size_t size;
    unsigned char *buf = test_read_file(test_data_path("quant_ref.bin"), &size);
    assert_non_null(buf);
    assert_true(size >= 12 && memcmp(buf, "SDQF", 4) == 0 && rd32le(buf + 4) == 1);
    uint32_t n = rd32le(buf + 8);
    assert_int_equal(n, 13);
    size_t pos = 12;
    int isas[] = {SD_QISA_SCALAR, SD_QISA_AVX2};
    for (uint32_t e = 0; e < n; e++) {
        assert_true(pos + 16 <= size);
        uint32_t type = rd32le(buf + pos), nb = rd32le(buf + pos + 4), bytes = rd32le(buf + pos + 8),
                 elems = rd32le(buf + pos + 12);
        pos += 16;
        assert_int_equal(sd_quant_block_bytes(type), bytes);
        assert_int_equal(sd_quant_block_elems(type), elems);
        const unsigned char *blocks = buf + pos;
        pos += (size_t)nb * bytes;
        size_t nv = (size_t)nb * elems;
        assert_true(pos + nv * 4 <= size);
        float *ref = malloc(nv * 4), *got = malloc(nv * 4);
        memcpy(ref, buf + pos, nv * 4);
        pos += nv * 4;
        memset(got, 0xff, nv * 4);
        sd_quant_dequant(type, blocks, got, (int64_t)nv);
        if (memcmp(got, ref, nv * 4) != 0)
            fail_msg("%s: sd_quant_dequant differs from the NumPy reference", sd_quant_name(type));
        if (type != SD_QT_Q8_K) { /* as a matrix of nb rows of one block, on each path */
            for (int i = 0; i < 2; i++) {
                if (sd_qgemm_force_isa(isas[i]) != 0) continue;
                memset(got, 0xff, nv * 4);
                sd_qdequant_rows(type, blocks, elems, 1, nb - 1, got, NULL);
                if (memcmp(got, ref + elems, (nv - elems) * 4) != 0)
                    fail_msg("%s: sd_qdequant_rows (%s) differs from the NumPy reference", sd_quant_name(type),
                             sd_qgemm_isa_name(isas[i]));
            }
            sd_qgemm_force_isa(-1);
        }
        free(ref);
        free(got);
    }
    assert_int_equal(pos, size);
    free(buf);
}

static void test_type_table(void **state) {
    (void)state;
    assert_int_equal(sd_quant_row_bytes(SD_QT_Q4_K, 512), 288);
    assert_int_equal(sd_quant_row_bytes(SD_QT_Q4_K, 100), 0);
    assert_int_equal(sd_quant_row_bytes(SD_QT_Q4_0, 64), 36);
    assert_int_equal(sd_quant_row_bytes(SD_QT_F32, 64), 0);
    assert_string_equal(sd_quant_name(SD_QT_IQ4_XS), "IQ4_XS");
    /* the sizes agree with the GGUF reader's table */
    for (size_t t = 0; t < N_TYPES; t++) {
        assert_int_equal(sd_ggml_type_size(k_types[t], 256), sd_quant_row_bytes(k_types[t], 256));
        assert_string_equal(sd_ggml_type_name(k_types[t]), sd_quant_name(k_types[t]));
    }
}

/* ------------------------------------------------------------ quantisers */

static double sq_err(const float *a, const float *b, int n) {
    double e = 0;
    for (int i = 0; i < n; i++) e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return e;
}

static void put_f16(unsigned char *p, float v) {
    uint16_t h = sd_f32_to_f16(v);
    p[0] = (unsigned char)h;
    p[1] = (unsigned char)(h >> 8);
}

/* Legacy blocks: element 0 gets the lowest code and element 1 the highest,
 * so the block spans its format's range (the search anchors its scale at
 * the range ends; a block using only part of the range can be
 * representable with a scale no search candidate reaches). */
static void span_codes(uint32_t type, unsigned char *b) {
    switch (type) {
    case SD_QT_Q4_0: case SD_QT_IQ4_NL: b[2] &= 0xf0; b[3] |= 0x0f; break;
    case SD_QT_Q4_1: b[4] &= 0xf0; b[5] |= 0x0f; break;
    case SD_QT_Q5_0: b[6] &= 0xf0; b[7] |= 0x0f; b[2] = (unsigned char)((b[2] & ~1) | 2); break;
    case SD_QT_Q5_1: b[8] &= 0xf0; b[9] |= 0x0f; b[4] = (unsigned char)((b[4] & ~1) | 2); break;
    case SD_QT_Q8_0: /* codes in -127..127 spanning both ends: the rule is amax / 127 */
        for (int j = 2; j < 34; j++)
            if (b[j] == 0x80) b[j] = 0x81;
        b[2] = 0x81;
        b[3] = 0x7f;
        break;
    default: break;
    }
}

/* Blocks whose values are exactly representable come back exactly. */
static void test_quantize_exact(void **state) {
    (void)state;
    for (size_t t = 0; t < N_TYPES; t++) {
        uint32_t type = k_types[t];
        uint32_t qk = sd_quant_block_elems(type), bb = sd_quant_block_bytes(type);
        unsigned char blk[292], back[292];
        float x[256], y[256];
        for (int trial = 0; trial < 20; trial++) {
            for (uint32_t i = 0; i < bb; i++) blk[i] = (unsigned char)(urand() * 256);
            /* scales: a small positive super-scale; K-quant sub-scales random */
            float d = (float)(0.01 + 0.1 * urand());
            switch (type) {
            case SD_QT_Q4_1: case SD_QT_Q5_1: put_f16(blk, d); put_f16(blk + 2, -d * 3); break;
            case SD_QT_Q2_K: put_f16(blk + 80, d); put_f16(blk + 82, d / 2); break;
            case SD_QT_Q3_K: put_f16(blk + 108, d); break;
            case SD_QT_Q6_K: put_f16(blk + 208, d); break;
            case SD_QT_Q4_K: case SD_QT_Q5_K: put_f16(blk, d); put_f16(blk + 2, d / 2); break;
            default: put_f16(blk, d); break;
            }
            span_codes(type, blk);
            sd_quant_dequant(type, blk, x, qk);
            sd_quant_quantize(type, x, back, qk);
            sd_quant_dequant(type, back, y, qk);
            double e = sq_err(x, y, (int)qk), s = sq_err(x, (float[256]){0}, (int)qk);
            /* K-quant blocks of random sub-scales are not always reachable
             * by the super-scale search; the legacy ones always are. */
            if (qk == 32 && e != 0)
                fail_msg("%s trial %d: representable block not recovered (sq err %g)", sd_quant_name(type), trial, e);
            if (qk == 256 && !(e <= 1e-3 * s))
                fail_msg("%s trial %d: relative sq err %g", sd_quant_name(type), trial, e / s);
        }
    }
}

/* The simple rule per legacy format: scale from the largest magnitude,
 * round to nearest (written here independently of quant.c). */
static double simple_err(uint32_t type, const float *x) {
    float y[32];
    float xm = 0, mn = x[0], mx = x[0];
    for (int j = 0; j < 32; j++) {
        if (fabsf(x[j]) > fabsf(xm)) xm = x[j];
        mn = fminf(mn, x[j]);
        mx = fmaxf(mx, x[j]);
    }
    int lo = type == SD_QT_Q5_0 ? -16 : -8, hi = type == SD_QT_Q5_0 ? 15 : 7;
    int qmax = type == SD_QT_Q5_1 ? 31 : 15;
    for (int j = 0; j < 32; j++) {
        if (type == SD_QT_Q4_1 || type == SD_QT_Q5_1) {
            float d = sd_f16_to_f32(sd_f32_to_f16((mx - mn) / (float)qmax));
            float m = sd_f16_to_f32(sd_f32_to_f16(mn));
            float q = d > 0 ? roundf((x[j] - m) / d) : 0;
            q = fminf(fmaxf(q, 0), (float)qmax);
            y[j] = q * d + m;
        } else if (type == SD_QT_IQ4_NL) {
            float d = sd_f16_to_f32(sd_f32_to_f16(xm / -127.0f));
            int best = 0;
            for (int i = 1; i < 16; i++)
                if (d != 0 && fabsf(x[j] / d - sd_iq4_grid[i]) < fabsf(x[j] / d - sd_iq4_grid[best])) best = i;
            y[j] = d * (float)sd_iq4_grid[best];
        } else {
            float d = sd_f16_to_f32(sd_f32_to_f16(xm / (float)lo));
            float q = d != 0 ? roundf(x[j] / d) : 0;
            q = fminf(fmaxf(q, (float)lo), (float)hi);
            y[j] = q * d;
        }
    }
    return sq_err(x, y, 32);
}

static void test_quantize_search(void **state) {
    (void)state;
    enum { N = 256 * 64 };
    float *x = malloc(N * 4), *y = malloc(N * 4);
    unsigned char *q = malloc(sd_quant_row_bytes(SD_QT_Q8_0, N) + 1024);
    for (int i = 0; i < N; i++) x[i] = grand() * (urand() < 0.01 ? 8.0f : 1.0f);
    for (size_t t = 0; t < N_TYPES; t++) {
        uint32_t type = k_types[t];
        sd_quant_quantize(type, x, q, N);
        sd_quant_dequant(type, q, y, N);
        double total = sq_err(x, y, N), simple_total = 0;
        if (sd_quant_block_elems(type) == 32 && type != SD_QT_Q8_0) {
            int better = 0;
            for (int b = 0; b < N / 32; b++) {
                double e = sq_err(x + 32 * b, y + 32 * b, 32), s = simple_err(type, x + 32 * b);
                if (!(e <= s * (1 + 1e-6)))
                    fail_msg("%s block %d: sq err %g above the simple rule's %g", sd_quant_name(type), b, e, s);
                better += e < s;
                simple_total += s;
            }
            print_message("%-6s rms err %.4f (simple rule %.4f, better in %d/%d blocks)\n", sd_quant_name(type),
                          sqrt(total / N), sqrt(simple_total / N), better, N / 32);
        } else {
            print_message("%-6s rms err %.4f\n", sd_quant_name(type), sqrt(total / N));
        }
    }
    /* A non-finite input is quantised as 0, never undefined behaviour. */
    x[5] = NAN;
    x[300] = INFINITY;
    for (size_t t = 0; t < N_TYPES; t++) {
        sd_quant_quantize(k_types[t], x, q, 512);
        sd_quant_dequant(k_types[t], q, y, 512);
        for (int i = 0; i < 512; i++) assert_true(isfinite(y[i]));
    }
    free(x);
    free(y);
    free(q);
}

static void test_bad_blocks(void **state) {
    (void)state;
    for (size_t t = 0; t < N_TYPES; t++) {
        uint32_t type = k_types[t], qk = sd_quant_block_elems(type);
        enum { NB = 4 };
        float x[NB * 256];
        for (int i = 0; i < NB * 256; i++) x[i] = grand();
        unsigned char q[NB * 292];
        sd_quant_quantize(type, x, q, NB * qk);
        assert_int_equal(sd_quant_find_bad_block(type, q, NB * qk), -1);
        /* every f16 field whose all-ones exponent makes a block non-finite */
        unsigned char c[NB * 292];
        int found = 0;
        for (uint32_t off = 0; off + 1 < sd_quant_block_bytes(type); off++) {
            memcpy(c, q, sizeof c);
            unsigned char *b = c + 2 * sd_quant_block_bytes(type);
            b[off] = 0x00;
            b[off + 1] = 0x7c; /* f16 +inf at off */
            float y[256];
            sd_quant_dequant(type, b, y, qk);
            int nonfinite = 0;
            for (uint32_t i = 0; i < qk; i++) nonfinite |= !isfinite(y[i]);
            int64_t bad = sd_quant_find_bad_block(type, c, NB * qk);
            if (nonfinite) found++;
            assert_int_equal(bad, nonfinite ? 2 : -1);
        }
        assert_true(found >= 1);
    }
}

/* ------------------------------------------------------ few-row kernels */

/* For x[M, cols] and W[rows, cols] of type: every path's product against
 *  (a) the f64 product with the dequantised weights and exact x, within
 *      sum_b (d_b / 2) sum_{k in b} |w_k| (the activation rounding; d_b =
 *      amax_b / 127 of the row's block b) plus 1e-5 relative slack;
 *  (b) the f64 product with the dequantised activations the kernel used,
 *      within 2e-6 of sum |w| |x| (f32 accumulation only). */
static void check_product(uint32_t type, const unsigned char *w, const float *wf, int64_t M, int64_t rows,
                          int64_t cols, int beta) {
    float *x = malloc(sizeof(float) * (size_t)(M * cols));
    for (int64_t i = 0; i < M * cols; i++) x[i] = grand() * (i % 97 == 0 ? 6.0f : 1.0f);
    int64_t ldc = rows + 3, qk = sd_qgemm_act256(type) ? 256 : 32;
    size_t sb = sd_qgemm_scratch_bytes(type, M, cols);
    void *scratch = malloc(sb), *act0 = malloc(sb);
    float *out = malloc(sizeof(float) * (size_t)(M * ldc)), *init = malloc(sizeof(float) * (size_t)(M * ldc));
    float *xd = malloc(sizeof(float) * (size_t)cols);
    for (int64_t i = 0; i < M * ldc; i++) init[i] = beta ? grand() : NAN;
    int isas[] = {SD_QISA_SCALAR, SD_QISA_AVX2, SD_QISA_VNNI_EMU, SD_QISA_VNNI};
    for (int p = 0; p < 4; p++) {
        if (sd_qgemm_force_isa(isas[p]) != 0) continue;
        memcpy(out, init, sizeof(float) * (size_t)(M * ldc));
        sd_qgemm_few(out, ldc, beta ? 1.0f : 0.0f, x, M, type, w, rows, cols, scratch, NULL);
        if (p == 0)
            memcpy(act0, scratch, sb);
        else if (memcmp(act0, scratch, sb) != 0)
            fail_msg("%s: activations quantised differently on %s", sd_quant_name(type), sd_qgemm_isa_name(isas[p]));
        for (int64_t m = 0; m < M; m++) {
            /* the activations the kernel used, dequantised */
            const unsigned char *arow = (const unsigned char *)scratch + (size_t)m * (sb / (size_t)M);
            for (int64_t b = 0; b < cols / qk; b++) {
                float d = qk == 256 ? ((const sd_qa256 *)arow)[b].d : ((const sd_qa32 *)arow)[b].d;
                const int8_t *qq = qk == 256 ? ((const sd_qa256 *)arow)[b].q : ((const sd_qa32 *)arow)[b].q;
                for (int64_t k = 0; k < qk; k++) xd[b * qk + k] = d * (float)qq[k];
            }
            for (int64_t r = 0; r < rows; r++) {
                const float *wr = wf + r * cols, *xr = x + m * cols;
                double exact = 0, used = 0, mag = 0, bound = 0;
                for (int64_t b = 0; b < cols / qk; b++) {
                    double amax = 0, sw = 0;
                    for (int64_t k = b * qk; k < (b + 1) * qk; k++) {
                        exact += (double)xr[k] * wr[k];
                        used += (double)xd[k] * wr[k];
                        mag += fabs((double)xr[k] * wr[k]);
                        amax = fmax(amax, fabs(xr[k]));
                        sw += fabs(wr[k]);
                    }
                    bound += amax / 127.0 / 2.0 * sw;
                }
                double base = beta ? init[m * ldc + r] : 0.0;
                double got = out[m * ldc + r] - base;
                double tol_b = 2e-6 * mag + 1e-6 * fabs(base) + 1e-30;
                if (!(fabs(got - used) <= tol_b))
                    fail_msg("%s %s M=%lld m=%lld r=%lld: %.9g vs %.9g with the quantised activations (tol %g)",
                             sd_quant_name(type), sd_qgemm_isa_name(isas[p]), (long long)M, (long long)m,
                             (long long)r, got, used, tol_b);
                if (!(fabs(got - exact) <= bound * 1.0001 + 1e-5 * mag + 1e-6 * fabs(base)))
                    fail_msg("%s %s: %.9g vs exact %.9g beyond the activation-rounding bound %g", sd_quant_name(type),
                             sd_qgemm_isa_name(isas[p]), got, exact, bound);
            }
        }
        /* columns past rows are untouched */
        for (int64_t m = 0; m < M; m++)
            for (int64_t r = rows; r < ldc; r++) {
                float a = out[m * ldc + r], b = init[m * ldc + r];
                assert_memory_equal(&a, &b, sizeof a);
            }
    }
    sd_qgemm_force_isa(-1);
    free(x);
    free(scratch);
    free(act0);
    free(out);
    free(init);
    free(xd);
}

/* Weights quantised from Gaussian values (what files hold). */
static void check_kernels(uint32_t type, int64_t M, int64_t rows, int64_t cols, int beta) {
    unsigned char *w = malloc(sd_quant_row_bytes(type, cols) * (size_t)rows);
    float *wf = malloc(sizeof(float) * (size_t)(rows * cols));
    for (int64_t i = 0; i < rows * cols; i++) wf[i] = grand() * 0.05f;
    sd_quant_quantize(type, wf, w, rows * cols);
    sd_quant_dequant(type, w, wf, rows * cols);
    check_product(type, w, wf, M, rows, cols, beta);
    free(w);
    free(wf);
}

static void test_few_row_kernels(void **state) {
    (void)state;
    print_message("paths: best %s\n", sd_qgemm_isa_name(sd_qgemm_best_isa()));
    for (size_t t = 0; t < N_TYPES; t++) {
        check_kernels(k_types[t], 1, 5, 512, 0);
        check_kernels(k_types[t], 3, 17, 768, 1);
        check_kernels(k_types[t], SD_QGEMM_FEW_ROWS, 9, 256, 0);
    }
}

/* Raw random blocks (every code pattern, extreme sub-scales), not only
 * what the quantiser produces. */
static void test_few_row_raw_blocks(void **state) {
    (void)state;
    enum { ROWS = 6, COLS = 512, M = 4 };
    for (size_t t = 0; t < N_TYPES; t++) {
        uint32_t type = k_types[t];
        size_t rb = sd_quant_row_bytes(type, COLS), bb = sd_quant_block_bytes(type);
        unsigned char *w = malloc(rb * ROWS);
        for (size_t i = 0; i < rb * ROWS; i++) w[i] = (unsigned char)(urand() * 256);
        /* finite scale fields: clear the top exponent bits of any all-ones f16 */
        for (size_t b = 0; b < rb * ROWS / bb; b++) {
            unsigned char *blk = w + b * bb;
            for (int rep = 0; rep < 200; rep++) {
                if (sd_quant_find_bad_block(type, blk, sd_quant_block_elems(type)) < 0) break;
                for (size_t i = 0; i + 1 < bb; i += 2)
                    if ((blk[i + 1] & 0x7c) == 0x7c) blk[i + 1] &= 0x83; /* clear the exponent's top bits */
            }
            assert_int_equal(sd_quant_find_bad_block(type, blk, sd_quant_block_elems(type)), -1);
        }
        float *wf = malloc(sizeof(float) * ROWS * COLS);
        sd_quant_dequant(type, w, wf, ROWS * COLS);
        check_product(type, w, wf, M, ROWS, COLS, 0);
        free(w);
        free(wf);
    }
}

static void test_few_row_nan(void **state) {
    (void)state;
    enum { COLS = 256, ROWS = 3 };
    float wf[ROWS * COLS], x[2 * COLS], out[2 * ROWS];
    for (int i = 0; i < ROWS * COLS; i++) wf[i] = grand();
    for (int i = 0; i < 2 * COLS; i++) x[i] = grand();
    x[COLS + 40] = NAN; /* row 1 only */
    unsigned char w[ROWS * 292], scratch[4096];
    int isas[] = {SD_QISA_SCALAR, SD_QISA_AVX2, SD_QISA_VNNI_EMU, SD_QISA_VNNI};
    for (size_t t = 0; t < N_TYPES; t++) {
        sd_quant_quantize(k_types[t], wf, w, ROWS * COLS);
        assert_true(sd_qgemm_scratch_bytes(k_types[t], 2, COLS) <= sizeof scratch);
        for (int p = 0; p < 4; p++) {
            if (sd_qgemm_force_isa(isas[p]) != 0) continue;
            sd_qgemm_few(out, ROWS, 0.0f, x, 2, k_types[t], w, ROWS, COLS, scratch, NULL);
            for (int r = 0; r < ROWS; r++) {
                assert_true(isfinite(out[r]));
                assert_true(isnan(out[ROWS + r]));
            }
        }
    }
    sd_qgemm_force_isa(-1);
}

/* ------------------------------------------------ llama.cpp's own files */
/* Files made by llama.cpp's quantiser (ggml, no importance matrix; see
 * tests/data/SOURCES.md) with, per tensor, the FNV-1a 64 hash of ggml's
 * own dequantisation (its to_float). smdiff's dequantisation must hash
 * the same: bit-identical values. */

static uint64_t fnv1a(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void check_ggml_file(const char *stem) {
    char path[256];
    snprintf(path, sizeof path, "%s.gguf", stem);
    sd_gguf *g = NULL;
    sd_error err;
    assert_int_equal(sd_gguf_open(test_data_path(path), 1, &g, &err), SMDIFF_OK);
    snprintf(path, sizeof path, "%s.ggml_deq.txt", stem);
    char *txt = test_read_file(test_data_path(path), NULL);
    assert_non_null(txt);
    int n = 0, quantised = 0;
    int isas[] = {SD_QISA_SCALAR, SD_QISA_AVX2};
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        char name[128], tname[16];
        long long ne;
        unsigned long long hash;
        assert_int_equal(sscanf(line, "%127s %15s %lld %llx", name, tname, &ne, &hash), 4);
        const sd_gguf_tensor *t = sd_gguf_find_tensor(g, name);
        assert_non_null(t);
        assert_true(strcasecmp(sd_ggml_type_name(t->type), tname) == 0);
        int64_t nel = (int64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        assert_int_equal(nel, ne);
        float *f = malloc(sizeof(float) * (size_t)nel);
        if (t->type == SD_QT_F32) {
            memcpy(f, t->data, sizeof(float) * (size_t)nel);
        } else {
            quantised++;
            sd_quant_dequant(t->type, t->data, f, nel);
        }
        if (fnv1a(f, sizeof(float) * (size_t)nel) != hash)
            fail_msg("%s: %s (%s) dequantises differently from ggml", stem, name, tname);
        if (t->type != SD_QT_F32)
            for (int i = 0; i < 2; i++) {
                if (sd_qgemm_force_isa(isas[i]) != 0) continue;
                sd_qdequant_rows(t->type, t->data, (int64_t)t->ne[0], 0, nel / (int64_t)t->ne[0], f, NULL);
                if (fnv1a(f, sizeof(float) * (size_t)nel) != hash)
                    fail_msg("%s: %s dequantises differently from ggml on %s", stem, name, sd_qgemm_isa_name(isas[i]));
            }
        sd_qgemm_force_isa(-1);
        free(f);
        n++;
    }
    assert_int_equal(n, sd_gguf_n_tensors(g));
    assert_true(quantised > 0);
    free(txt);
    sd_gguf_close(g);
}

static void test_llama_cpp_files(void **state) {
    (void)state;
    check_ggml_file("tiny_dream_ggml_q4_0");
    check_ggml_file("tiny_dream_ggml_q8_0");
    check_ggml_file("tiny_dreamk_q4_k_m");
    check_ggml_file("tiny_dreamk_q6_k");
}

/* smdiff's Q8_0 quantiser keeps llama.cpp's rule: the same bytes. */
static void test_q8_0_bytes_as_llama_cpp(void **state) {
    (void)state;
    sd_gguf *src = NULL, *ref = NULL;
    sd_error err;
    assert_int_equal(sd_gguf_open(test_data_path("tiny_dream_f32.gguf"), 1, &src, &err), SMDIFF_OK);
    assert_int_equal(sd_gguf_open(test_data_path("tiny_dream_ggml_q8_0.gguf"), 1, &ref, &err), SMDIFF_OK);
    int n = 0;
    for (int64_t i = 0; i < sd_gguf_n_tensors(ref); i++) {
        const sd_gguf_tensor *r = sd_gguf_tensor_at(ref, i);
        if (r->type != SD_QT_Q8_0) continue;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)r->name.len, r->name.ptr);
        const sd_gguf_tensor *s = sd_gguf_find_tensor(src, name);
        assert_non_null(s);
        assert_int_equal(s->type, SD_QT_F32);
        int64_t nel = (int64_t)(s->ne[0] * s->ne[1]);
        unsigned char *q = malloc(r->n_bytes);
        float *x = malloc(sizeof(float) * (size_t)nel);
        memcpy(x, s->data, sizeof(float) * (size_t)nel);
        sd_quant_quantize(SD_QT_Q8_0, x, q, nel);
        if (memcmp(q, r->data, r->n_bytes) != 0) fail_msg("%s: Q8_0 bytes differ from llama.cpp's", name);
        free(q);
        free(x);
        n++;
    }
    assert_true(n >= 8);
    sd_gguf_close(src);
    sd_gguf_close(ref);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dequant_matches_numpy), cmocka_unit_test(test_type_table),
        cmocka_unit_test(test_quantize_exact),        cmocka_unit_test(test_quantize_search),
        cmocka_unit_test(test_bad_blocks),            cmocka_unit_test(test_few_row_kernels),
        cmocka_unit_test(test_few_row_raw_blocks),    cmocka_unit_test(test_few_row_nan),
        cmocka_unit_test(test_llama_cpp_files),       cmocka_unit_test(test_q8_0_bytes_as_llama_cpp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
