/* qgemm.c -- few-row integer kernels for block-quantised weights: path
 * selection, activation quantisation, threading, and the plain-C reference
 * of every kernel. The SIMD kernels are in qgemm_x86.h, compiled once per
 * instruction set (qgemm_avx2.c, qgemm_vnni.c, qgemm_vnniemu.c). See
 * qgemm.h for the arithmetic. */
#include "qgemm.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "core/quant.h"
#include "core/cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define QG_X86 1
#else
#define QG_X86 0
#endif

/* ------------------------------------------------------------ dispatch */

/* The VNNI kernels use 256-bit AVX-512 forms (AVX512VL, BW) of dpbusd. */
#define QG_SET_VNNI (SD_CPU_SET_AVX2 | SD_CPU_AVX512F | SD_CPU_AVX512BW | SD_CPU_AVX512VL | SD_CPU_AVX512_VNNI)

static int detect_isa(void) {
    if (!QG_X86 || !sd_cpu_has(SD_CPU_SET_AVX2)) return SD_QISA_SCALAR;
    return sd_cpu_has(QG_SET_VNNI) ? SD_QISA_VNNI : SD_QISA_AVX2;
}

static _Atomic int best_isa = -1;
static int forced_isa = -1;

int sd_qgemm_best_isa(void) {
    if (best_isa < 0) best_isa = detect_isa();
    return best_isa;
}

int sd_qgemm_isa_available(int isa) {
    int best = sd_qgemm_best_isa();
    switch (isa) {
    case SD_QISA_SCALAR: return 1;
    case SD_QISA_AVX2:
    case SD_QISA_VNNI_EMU: return best >= SD_QISA_AVX2;
    case SD_QISA_VNNI: return best >= SD_QISA_VNNI;
    default: return 0;
    }
}

int sd_qgemm_force_isa(int isa) {
    if (isa >= 0 && !sd_qgemm_isa_available(isa)) return -1;
    forced_isa = isa < 0 ? -1 : isa;
    return 0;
}
int sd_qgemm_isa(void) { return forced_isa >= 0 ? forced_isa : sd_qgemm_best_isa(); }

const char *sd_qgemm_isa_name(int isa) {
    switch (isa) {
    case SD_QISA_SCALAR: return "scalar";
    case SD_QISA_AVX2: return "avx2";
    case SD_QISA_VNNI: return "avx512-vnni";
    case SD_QISA_VNNI_EMU: return "avx512-vnni (emulated on avx2)";
    default: return "?";
    }
}

int sd_qgemm_supported(uint32_t type) { return sd_quant_is_block(type) && type != SD_GGML_Q8_K; }

static int64_t forced_few = -1;

void sd_qgemm_force_few_max(int64_t rows) { forced_few = rows < 0 ? -1 : rows > SD_QGEMM_FEW_ROWS ? SD_QGEMM_FEW_ROWS : rows; }

int64_t sd_qgemm_few_max(uint32_t type) {
    if (!sd_qgemm_supported(type)) return 0;
    if (forced_few >= 0) return forced_few;
    /* Measured (docs/PERFORMANCE.md, "Few rows: integer kernels against
     * panels"; make bench): on AVX2 the integer kernels take 0.65-0.70 of
     * the panel path's time at 32 rows for the K-quants and 0.80-0.84 for
     * Q4_0, Q5_0, Q8_0 and IQ4_*, but 0.97-1.07 for Q4_1 and Q5_1 (their
     * minimum adds an f32 multiply-add per block and row): break-even. */
    if ((type == SD_GGML_Q4_1 || type == SD_GGML_Q5_1) && sd_qgemm_isa() == SD_QISA_AVX2) return 24;
    return SD_QGEMM_FEW_ROWS;
}

int sd_qgemm_act256(uint32_t type) { return sd_ggml_block_size(type) == SD_QK_K; }

static void run(sd_pool *pool, sd_pool_fn fn, void *ctx, int64_t n) {
    if (n <= 0) return;
    if (pool)
        sd_pool_run(pool, fn, ctx, n);
    else
        fn(ctx, 0, n, 0);
}

/* ----------------------------------------------------- dequantisation */

void sd_qdequant_row(uint32_t type, const void *w, int64_t n, float *out) {
#if QG_X86
    if (sd_qgemm_isa() != SD_QISA_SCALAR) {
        sd_qdequant_row_avx2(type, w, n, out);
        return;
    }
#endif
    sd_quant_dequant(type, w, out, n);
}

/* ------------------------------------------------- activation blocks */

/* Quantise x[n] (n = 32 or 256) to q[n]: d = amax/127, q = rne(x * 127/amax).
 * A non-finite input makes d NaN (and q 0), so the product is NaN, as the
 * f32 product would be. Returns d; *sum = sum of q. */
static float qact_block(const float *x, int n, int8_t *q, int *sum) {
    float amax = 0;
    int finite = 1;
    for (int j = 0; j < n; j++) {
        if (!isfinite(x[j])) finite = 0;
        amax = fmaxf(amax, fabsf(x[j]));
    }
    *sum = 0;
    if (!finite) {
        memset(q, 0, (size_t)n);
        return NAN;
    }
    float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int j = 0; j < n; j++) {
        float v = nearbyintf(x[j] * id);
        v = fminf(fmaxf(v, -127.0f), 127.0f);
        q[j] = (int8_t)v;
        *sum += q[j];
    }
    return amax / 127.0f;
}

/* A row's activation blocks through block (qact_block or the AVX2
 * sd_qact_block_avx2, which give the same bits): 256-blocks also get the
 * sums of their 16-element groups, 32-blocks d * sum. */
static void qact_row(uint32_t type, const float *x, int64_t cols, void *act,
                     float (*block)(const float *x, int n, int8_t *q, int *sum)) {
    if (sd_qgemm_act256(type)) {
        sd_qa256 *a = act;
        for (int64_t b = 0; b < cols / 256; b++) {
            int s;
            a[b].d = block(x + 256 * b, 256, a[b].q, &s);
            for (int g = 0; g < 16; g++) {
                int gs = 0;
                for (int k = 0; k < 16; k++) gs += a[b].q[16 * g + k];
                a[b].bsum[g] = (int16_t)gs;
            }
        }
    } else {
        sd_qa32 *a = act;
        for (int64_t b = 0; b < cols / 32; b++) {
            int s;
            a[b].d = block(x + 32 * b, 32, a[b].q, &s);
            a[b].ds = a[b].d * (float)s;
        }
    }
}

void sd_qact_row(uint32_t type, const float *x, int64_t cols, void *act) {
#if QG_X86
    if (sd_qgemm_isa() != SD_QISA_SCALAR) {
        qact_row(type, x, cols, act, sd_qact_block_avx2);
        return;
    }
#endif
    qact_row(type, x, cols, act, qact_block);
}

/* ------------------------------------------------ scalar reference dots */
/* The kernels' arithmetic in plain C, one weight block at a time:
 *  32-blocks: codes c[32] (the integer of each element, unsigned with an
 *    offset or signed), dw, cw:  y = (dw * a.d) * sum c q + cw * a.ds,
 *    cw folding a constant offset or min (Q4_0: -8 dw, Q4_1: m, ...);
 *  256-blocks: codes c[256], per 16-element group g an integer scale
 *    sc[g], offset coefficient o[g] and min mn[g]:
 *    isum = sum_g sc[g] sum_{j in g} c q + o[g] bsum[g],
 *    y = (d * a.d) isum - (dmin * a.d) sum_g mn[g] bsum[g]. */

static inline float rdh(const uint8_t *p) { return sd_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

static void nib32(const uint8_t *qs, int *c) {
    for (int j = 0; j < 16; j++) {
        c[j] = qs[j] & 15;
        c[j + 16] = qs[j] >> 4;
    }
}

static void hi32(const uint8_t *qh, int *c) {
    uint32_t h = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    for (int j = 0; j < 32; j++) c[j] |= (int)((h >> j) & 1) << 4;
}

static void decode32(uint32_t type, const uint8_t *b, int *c, float *dw, float *cw) {
    *dw = rdh(b);
    switch (type) {
    case SD_GGML_Q4_0: nib32(b + 2, c); *cw = -8.0f * *dw; break;
    case SD_GGML_Q4_1: nib32(b + 4, c); *cw = rdh(b + 2); break;
    case SD_GGML_Q5_0: nib32(b + 6, c); hi32(b + 2, c); *cw = -16.0f * *dw; break;
    case SD_GGML_Q5_1: nib32(b + 8, c); hi32(b + 4, c); *cw = rdh(b + 2); break;
    case SD_GGML_Q8_0:
        for (int j = 0; j < 32; j++) c[j] = (int8_t)b[2 + j];
        *cw = 0;
        break;
    case SD_GGML_IQ4_NL:
        nib32(b + 2, c);
        for (int j = 0; j < 32; j++) c[j] = sd_iq4_grid[c[j]];
        *cw = 0;
        break;
    default: memset(c, 0, 32 * sizeof(int)); *cw = 0; break;
    }
}

typedef struct {
    int c[256], sc[16], o[16], mn[16];
    float d, dmin;
} kdec;

static void decode256(uint32_t type, const uint8_t *b, kdec *k) {
    memset(k, 0, sizeof *k);
    switch (type) {
    case SD_GGML_Q2_K:
        for (int e = 0; e < 256; e++) {
            int h = e / 128, sh = (e % 128) / 32, t = (e % 32) / 16, l = e % 16;
            k->c[e] = (b[16 + 32 * h + 16 * t + l] >> (2 * sh)) & 3;
        }
        for (int g = 0; g < 16; g++) k->sc[g] = b[g] & 15, k->mn[g] = b[g] >> 4;
        k->d = rdh(b + 80), k->dmin = rdh(b + 82);
        break;
    case SD_GGML_Q3_K:
        for (int e = 0; e < 256; e++) {
            int h = e / 128, sh = (e % 128) / 32, t = (e % 32) / 16, l = e % 16;
            int lo = (b[32 + 32 * h + 16 * t + l] >> (2 * sh)) & 3;
            int hb = (b[16 * t + l] >> (4 * h + sh)) & 1;
            k->c[e] = lo | hb << 2; /* value = c - 4 */
        }
        for (int g = 0; g < 16; g++) {
            k->sc[g] = sd_quant_q3k_scale(b + 96, g) - 32;
            k->o[g] = -4 * k->sc[g];
        }
        k->d = rdh(b + 108);
        break;
    case SD_GGML_Q4_K:
    case SD_GGML_Q5_K: {
        int five = type == SD_GGML_Q5_K;
        const uint8_t *qs = b + (five ? 48 : 16), *qh = b + 16;
        for (int e = 0; e < 256; e++) {
            int g = e / 64, u = (e % 64) / 32, l = e % 32;
            k->c[e] = (qs[32 * g + l] >> (4 * u)) & 15;
            if (five) k->c[e] |= ((qh[l] >> (2 * g + u)) & 1) << 4;
        }
        for (int s = 0; s < 8; s++) {
            uint8_t sc, m;
            sd_quant_k4_scale_min(b + 4, s, &sc, &m);
            k->sc[2 * s] = k->sc[2 * s + 1] = sc;
            k->mn[2 * s] = k->mn[2 * s + 1] = m;
        }
        k->d = rdh(b), k->dmin = rdh(b + 2);
        break;
    }
    case SD_GGML_Q6_K:
        for (int e = 0; e < 256; e++) {
            int h = e / 128, c = (e % 128) / 32, l = e % 32;
            int lo = (b[64 * h + 32 * (c % 2) + l] >> (4 * (c / 2))) & 15;
            k->c[e] = lo | ((b[128 + 32 * h + l] >> (2 * c)) & 3) << 4; /* value = c - 32 */
        }
        for (int g = 0; g < 16; g++) {
            k->sc[g] = (int8_t)b[192 + g];
            k->o[g] = -32 * k->sc[g];
        }
        k->d = rdh(b + 208);
        break;
    case SD_GGML_IQ4_XS: {
        uint16_t sh = (uint16_t)(b[2] | b[3] << 8);
        for (int i = 0; i < 8; i++) {
            int ls = ((b[4 + i / 2] >> (4 * (i % 2))) & 15) | ((sh >> (2 * i)) & 3) << 4;
            k->sc[2 * i] = k->sc[2 * i + 1] = ls - 32;
            for (int j = 0; j < 16; j++) {
                k->c[32 * i + j] = sd_iq4_grid[b[8 + 16 * i + j] & 15];
                k->c[32 * i + 16 + j] = sd_iq4_grid[b[8 + 16 * i + j] >> 4];
            }
        }
        k->d = rdh(b);
        break;
    }
    default: break;
    }
}

void sd_qgemm_rows_scalar(const sd_qgemm_job *j, int64_t r0, int64_t r1) {
    uint32_t bb = sd_ggml_block_bytes(j->type);
    int k256 = sd_qgemm_act256(j->type);
    kdec kd;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = j->w + (size_t)r * j->w_row;
        for (int64_t m = 0; m < j->M; m++) {
            const uint8_t *ar = j->act + (size_t)m * j->act_row;
            float acc = 0;
            for (int64_t b = 0; b < j->nblk; b++) {
                const uint8_t *wb = wr + (size_t)b * bb;
                if (k256) {
                    const sd_qa256 *a = (const sd_qa256 *)ar + b;
                    decode256(j->type, wb, &kd);
                    int32_t isum = 0, msum = 0;
                    for (int g = 0; g < 16; g++) {
                        int32_t gs = 0;
                        for (int e = 16 * g; e < 16 * g + 16; e++) gs += kd.c[e] * a->q[e];
                        isum += kd.sc[g] * gs + kd.o[g] * a->bsum[g];
                        msum += kd.mn[g] * a->bsum[g];
                    }
                    acc += (kd.d * a->d) * (float)isum - (kd.dmin * a->d) * (float)msum;
                } else {
                    const sd_qa32 *a = (const sd_qa32 *)ar + b;
                    int c[32];
                    float dw, cw;
                    decode32(j->type, wb, c, &dw, &cw);
                    int32_t isum = 0;
                    for (int e = 0; e < 32; e++) isum += c[e] * a->q[e];
                    acc += (dw * a->d) * (float)isum + cw * a->ds;
                }
            }
            float *o = j->out + m * j->ldc + r;
            *o = j->beta ? *o + acc : acc;
        }
    }
}

/* --------------------------------------------------------- the product */

size_t sd_qgemm_scratch_bytes(uint32_t type, int64_t M, int64_t cols) {
    if (M <= 0 || cols <= 0 || !sd_qgemm_supported(type)) return 0;
    size_t per = sd_qgemm_act256(type) ? (size_t)(cols / 256) * sizeof(sd_qa256)
                                        : (size_t)(cols / 32) * sizeof(sd_qa32);
    return (size_t)M * per;
}

typedef struct {
    const sd_qgemm_job *job;
    int isa;
} rows_ctx;

static void rows_range(void *vctx, int64_t b, int64_t e, int t) {
    (void)t;
    const rows_ctx *c = vctx;
    switch (c->isa) {
#if QG_X86
    case SD_QISA_AVX2: sd_qgemm_rows_avx2(c->job, b, e); break;
    case SD_QISA_VNNI: sd_qgemm_rows_vnni(c->job, b, e); break;
    case SD_QISA_VNNI_EMU: sd_qgemm_rows_vnniemu(c->job, b, e); break;
#endif
    default: sd_qgemm_rows_scalar(c->job, b, e); break;
    }
}

typedef struct {
    uint32_t type;
    const float *x;
    int64_t cols;
    uint8_t *act;
    size_t act_row;
} act_job;

static void act_range(void *vctx, int64_t b, int64_t e, int t) {
    (void)t;
    const act_job *a = vctx;
    for (int64_t m = b; m < e; m++) sd_qact_row(a->type, a->x + m * a->cols, a->cols, a->act + (size_t)m * a->act_row);
}

void sd_qgemm_few(float *out, int64_t ldc, float beta, const float *x, int64_t M, uint32_t type, const void *w,
                  int64_t rows, int64_t cols, void *scratch, sd_pool *pool) {
    /* x[M, cols] @ W[rows, cols]^T -> out[M, ldc] columns [0, rows) */
    if (M <= 0 || rows <= 0 || !sd_qgemm_supported(type)) return;
    size_t act_row = sd_qgemm_scratch_bytes(type, 1, cols);
    act_job aj = {type, x, cols, scratch, act_row};
    run(M * cols >= 16384 ? pool : NULL, act_range, &aj, M);
    sd_qgemm_job job = {type, w, sd_ggml_row_size(type, cols), scratch, act_row, M,
                        cols / (int64_t)sd_ggml_block_size(type), out, ldc, beta != 0.0f};
    rows_ctx rc = {&job, sd_qgemm_isa()};
    run(rows * cols >= 16384 ? pool : NULL, rows_range, &rc, rows);
}
