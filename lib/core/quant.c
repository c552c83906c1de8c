/* quant.c -- ggml block formats: dequantisation (the reference that defines
 * each format's values) and quantisation. See quant.h for the layouts and
 * docs/FORMATS.md for the quantisers' algorithms.
 *
 * Written from the public format descriptions (the GGUF documentation and
 * ggml's block layouts); the bit positions are documented beside each
 * dequantiser, and each quantiser packs exactly what its dequantiser reads.
 */
#include "quant.h"

#include <math.h>
#include <string.h>


#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* one rounding per operation, as documented */
#endif

/* ---------------------------------------------------------- type table */

/* Block geometry of the formats here (numfmt.h's table), or NULL. */
typedef struct {
    uint32_t elems, bytes;
} qtraits;

static int qtraits_of(uint32_t type, qtraits *t) {
    if (!sd_quant_is_block(type)) return 0;
    const sd_ggml_type_info *i = sd_ggml_type_info_of(type);
    t->elems = i->block;
    t->bytes = i->bytes;
    return 1;
}

int sd_quant_is_block(uint32_t type) {
    switch (type) {
    case SD_GGML_Q4_0: case SD_GGML_Q4_1: case SD_GGML_Q5_0: case SD_GGML_Q5_1: case SD_GGML_Q8_0:
    case SD_GGML_Q2_K: case SD_GGML_Q3_K: case SD_GGML_Q4_K: case SD_GGML_Q5_K: case SD_GGML_Q6_K:
    case SD_GGML_Q8_K: case SD_GGML_IQ4_NL: case SD_GGML_IQ4_XS: return 1;
    default: return 0;
    }
}

const int8_t sd_iq4_grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* ------------------------------------------------------------- fields */

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline float rdh(const uint8_t *p) { return sd_f16_to_f32(rd16(p)); }
static inline void wrh(uint8_t *p, float v) {
    uint16_t h = sd_f32_to_f16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}
/* The f16 value v would be stored as. */
static inline float f16r(float v) { return sd_f16_to_f32(sd_f32_to_f16(v)); }

static void k4_pack_scales(uint8_t *s, const uint8_t *sc, const uint8_t *m) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
}

static void q3k_pack_scales(uint8_t *s, const int *biased) {
    memset(s, 0, 12);
    for (int i = 0; i < 16; i++) {
        int v = biased[i];
        s[i % 8] |= (uint8_t)((v & 15) << (i < 8 ? 0 : 4));
        s[8 + i % 4] |= (uint8_t)((v >> 4) << (2 * (i / 4)));
    }
}

/* ------------------------------------------------------ dequantisers */
/* Each takes one block b and writes its elements to y. */

static void dq_q4_0(const uint8_t *b, float *y) {
    float d = rdh(b);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((b[2 + j] & 15) - 8) * d;
        y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
    }
}

static void dq_q4_1(const uint8_t *b, float *y) {
    float d = rdh(b), m = rdh(b + 2);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(b[4 + j] & 15) * d + m;
        y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
    }
}

static inline uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void dq_q5_0(const uint8_t *b, float *y) {
    float d = rdh(b);
    uint32_t qh = rd32(b + 2);
    for (int j = 0; j < 16; j++) {
        int lo = (b[6 + j] & 15) | (int)((qh >> j) & 1) << 4;
        int hi = (b[6 + j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = (float)(lo - 16) * d;
        y[j + 16] = (float)(hi - 16) * d;
    }
}

static void dq_q5_1(const uint8_t *b, float *y) {
    float d = rdh(b), m = rdh(b + 2);
    uint32_t qh = rd32(b + 4);
    for (int j = 0; j < 16; j++) {
        int lo = (b[8 + j] & 15) | (int)((qh >> j) & 1) << 4;
        int hi = (b[8 + j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = (float)lo * d + m;
        y[j + 16] = (float)hi * d + m;
    }
}

static void dq_q8_0(const uint8_t *b, float *y) {
    float d = rdh(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

static void dq_iq4_nl(const uint8_t *b, float *y) {
    float d = rdh(b);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)sd_iq4_grid[b[2 + j] & 15];
        y[j + 16] = d * (float)sd_iq4_grid[b[2 + j] >> 4];
    }
}

/* Q2_K and Q3_K share their 2-bit field: element 128h + 32k + 16t + l
 * (h half, k shift, t, l < 16) is bits 2k, 2k+1 of qs[32h + 16t + l]; it
 * belongs to sub-block 8h + 2k + t. Q3_K's high bit of the same element is
 * bit 4h + k of hmask[16t + l]. */
static void dq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *sc = b, *qs = b + 16;
    float d = rdh(b + 80), dmin = rdh(b + 82);
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int t = 0; t < 2; t++) {
                int s = 8 * h + 2 * k + t;
                float dl = d * (float)(sc[s] & 15), ml = dmin * (float)(sc[s] >> 4);
                for (int l = 0; l < 16; l++) {
                    int q = (qs[32 * h + 16 * t + l] >> (2 * k)) & 3;
                    y[128 * h + 32 * k + 16 * t + l] = dl * (float)q - ml;
                }
            }
}

static void dq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
    float d = rdh(b + 108);
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int t = 0; t < 2; t++) {
                int s = 8 * h + 2 * k + t;
                float dl = d * (float)(sd_quant_q3k_scale(sc, s) - 32);
                for (int l = 0; l < 16; l++) {
                    int q = (qs[32 * h + 16 * t + l] >> (2 * k)) & 3;
                    int high = (hm[16 * t + l] >> (4 * h + k)) & 1;
                    y[128 * h + 32 * k + 16 * t + l] = dl * (float)(q - (high ? 0 : 4));
                }
            }
}

/* Q4_K / Q5_K: element 64g + l (l < 32) is the low nibble of qs[32g + l],
 * element 64g + 32 + l its high nibble; sub-blocks 2g and 2g+1. Q5_K's
 * fifth bits are bits 2g and 2g+1 of qh[l]. */
static void dq_q4_k(const uint8_t *b, float *y) {
    float d = rdh(b), dmin = rdh(b + 2);
    const uint8_t *sc = b + 4, *qs = b + 16;
    for (int g = 0; g < 4; g++) {
        uint8_t s1, m1, s2, m2;
        sd_quant_k4_scale_min(sc, 2 * g, &s1, &m1);
        sd_quant_k4_scale_min(sc, 2 * g + 1, &s2, &m2);
        float d1 = d * (float)s1, n1 = dmin * (float)m1, d2 = d * (float)s2, n2 = dmin * (float)m2;
        for (int l = 0; l < 32; l++) {
            y[64 * g + l] = d1 * (float)(qs[32 * g + l] & 15) - n1;
            y[64 * g + 32 + l] = d2 * (float)(qs[32 * g + l] >> 4) - n2;
        }
    }
}

static void dq_q5_k(const uint8_t *b, float *y) {
    float d = rdh(b), dmin = rdh(b + 2);
    const uint8_t *sc = b + 4, *qh = b + 16, *qs = b + 48;
    for (int g = 0; g < 4; g++) {
        uint8_t s1, m1, s2, m2;
        sd_quant_k4_scale_min(sc, 2 * g, &s1, &m1);
        sd_quant_k4_scale_min(sc, 2 * g + 1, &s2, &m2);
        float d1 = d * (float)s1, n1 = dmin * (float)m1, d2 = d * (float)s2, n2 = dmin * (float)m2;
        for (int l = 0; l < 32; l++) {
            int lo = (qs[32 * g + l] & 15) | ((qh[l] >> (2 * g)) & 1) << 4;
            int hi = (qs[32 * g + l] >> 4) | ((qh[l] >> (2 * g + 1)) & 1) << 4;
            y[64 * g + l] = d1 * (float)lo - n1;
            y[64 * g + 32 + l] = d2 * (float)hi - n2;
        }
    }
}

/* Q6_K: in half h, element 128h + 32c + l (c < 4, l < 32) takes its low 4
 * bits from ql[64h + 32(c%2) + l] (low nibble for c < 2, high for c >= 2)
 * and its top 2 bits from bits 2c, 2c+1 of qh[32h + l]; sub-block
 * 8h + 2c + l/16. */
static void dq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = rdh(b + 208);
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int lo = ql[64 * h + 32 * (c % 2) + l] >> (c < 2 ? 0 : 4) & 15;
                int q = (lo | ((qh[32 * h + l] >> (2 * c)) & 3) << 4) - 32;
                int s = 8 * h + 2 * c + l / 16;
                y[128 * h + 32 * c + l] = d * (float)sc[s] * (float)q;
            }
}

static void dq_q8_k(const uint8_t *b, float *y) {
    float d;
    uint32_t u = rd32(b);
    memcpy(&d, &u, 4);
    for (int j = 0; j < 256; j++) y[j] = d * (float)(int8_t)b[4 + j];
}

/* IQ4_XS: sub-block i (32 elements) has the 6-bit scale whose low 4 bits
 * are nibble i%2 of scales_l[i/2] and top 2 bits are bits 2i, 2i+1 of the
 * u16 scales_h; element 32i + j (j < 16) is the low nibble of
 * qs[16i + j], element 32i + 16 + j the high nibble. */
static void dq_iq4_xs(const uint8_t *b, float *y) {
    float d = rdh(b);
    uint16_t sh = rd16(b + 2);
    const uint8_t *sl = b + 4, *qs = b + 8;
    for (int i = 0; i < 8; i++) {
        int ls = ((sl[i / 2] >> (4 * (i % 2))) & 15) | ((sh >> (2 * i)) & 3) << 4;
        float dl = d * (float)(ls - 32);
        for (int j = 0; j < 16; j++) {
            y[32 * i + j] = dl * (float)sd_iq4_grid[qs[16 * i + j] & 15];
            y[32 * i + 16 + j] = dl * (float)sd_iq4_grid[qs[16 * i + j] >> 4];
        }
    }
}

typedef void (*dq_fn)(const uint8_t *b, float *y);

static dq_fn dq_of(uint32_t type) {
    switch (type) {
    case SD_GGML_Q4_0: return dq_q4_0;
    case SD_GGML_Q4_1: return dq_q4_1;
    case SD_GGML_Q5_0: return dq_q5_0;
    case SD_GGML_Q5_1: return dq_q5_1;
    case SD_GGML_Q8_0: return dq_q8_0;
    case SD_GGML_Q2_K: return dq_q2_k;
    case SD_GGML_Q3_K: return dq_q3_k;
    case SD_GGML_Q4_K: return dq_q4_k;
    case SD_GGML_Q5_K: return dq_q5_k;
    case SD_GGML_Q6_K: return dq_q6_k;
    case SD_GGML_Q8_K: return dq_q8_k;
    case SD_GGML_IQ4_NL: return dq_iq4_nl;
    case SD_GGML_IQ4_XS: return dq_iq4_xs;
    default: return NULL;
    }
}

void sd_quant_dequant(uint32_t type, const void *src, float *dst, int64_t n) {
    /* src: n elements of type; dst: (n,) f32 */
    qtraits t;
    dq_fn f = dq_of(type);
    if (!qtraits_of(type, &t) || !f) return;
    const uint8_t *s = src;
    for (int64_t b = 0; b < n / t.elems; b++) f(s + (size_t)b * t.bytes, dst + b * t.elems);
}

/* ------------------------------------------------------- validation */

static int f16_bad(const uint8_t *p) { return (rd16(p) & 0x7C00) == 0x7C00; }

int64_t sd_quant_find_bad_block(uint32_t type, const void *src, int64_t n) {
    qtraits t;
    if (!qtraits_of(type, &t)) return -1;
    /* Offsets of the f16 scale fields in a block; -1 ends the list. */
    int off[3] = {-1, -1, -1};
    switch (type) {
    case SD_GGML_Q4_0: case SD_GGML_Q5_0: case SD_GGML_Q8_0: case SD_GGML_IQ4_NL: case SD_GGML_IQ4_XS: off[0] = 0; break;
    case SD_GGML_Q4_1: case SD_GGML_Q5_1: case SD_GGML_Q4_K: case SD_GGML_Q5_K: off[0] = 0; off[1] = 2; break;
    case SD_GGML_Q2_K: off[0] = 80; off[1] = 82; break;
    case SD_GGML_Q3_K: off[0] = 108; break;
    case SD_GGML_Q6_K: off[0] = 208; break;
    default: break;
    }
    const uint8_t *s = src;
    for (int64_t b = 0; b < n / t.elems; b++) {
        const uint8_t *blk = s + (size_t)b * t.bytes;
        if (type == SD_GGML_Q8_K) {
            if ((rd32(blk) & 0x7F800000u) == 0x7F800000u) return b;
            continue;
        }
        for (int i = 0; i < 3 && off[i] >= 0; i++)
            if (f16_bad(blk + off[i])) return b;
    }
    return -1;
}

/* ------------------------------------------------------- quantisers */
/*
 * All quantisers minimise the squared error of a block (or sub-block)
 * over its scale (and offset), by one search:
 *   1. candidates: the simple rule (the element of largest magnitude maps
 *      to the end of the code range), then the same with that end moved
 *      by -0.8 .. +0.8 codes in steps of 0.1, for both ends of the range
 *      (a negative scale may map the largest value to the longer side);
 *   2. each candidate's codes q = nearest(x / s) are fixed and the scale
 *      (and offset) refitted by least squares (the optimal scale for those
 *      codes), then the codes recomputed;
 *   3. the candidate with the least squared error wins; the error is
 *      always computed with the scale as it will be stored (f16), and
 *      the simple rule's result is a candidate, so the search is never
 *      worse than it.
 * K-quants then quantise the sub-block scales against a super-block scale
 * (largest sub-scale -> largest integer) and try each sub-block's integer
 * scale (and min) and its two neighbours, keeping the best for that
 * sub-block given the stored super-scales.
 */

#define NSTEP 8 /* candidate ends: end + k/10, k = -NSTEP..NSTEP */

/* Nearest integer of v (ties away from zero, as roundf), clamped to [lo, hi]. */
static inline int qround(float v, int lo, int hi) {
    if (!(v > (float)lo)) return lo; /* also NaN */
    if (v >= (float)hi) return hi;
    return (int)roundf(v);
}

/* The same without the libm call, for the searches (the one value where
 * it can differ from roundf, just below 0.5, rounds up; every search
 * uses it both to choose and to encode, so its errors are consistent). */
static inline int qcode(float v, int lo, int hi) {
    if (!(v > (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    return (int)(v + (v >= 0.0f ? 0.5f : -0.5f));
}

/* Index of the grid value (sd_iq4_grid) nearest to v: binary search over
 * the 15 midpoints between neighbours (ties to the lower value). */
static int grid_nearest(float v) {
    static const float mid[15] = {-115.5f, -93.5f, -74.0f, -57.0f, -42.0f, -28.5f, -16.0f, -4.5f,
                                  7.0f,    19.0f,  31.5f,  45.5f,  61.0f,  79.0f,  101.0f};
    int lo = 0, hi = 15; /* answer in [lo, hi] */
    while (lo < hi) {
        int m = (lo + hi) / 2;
        if (v > mid[m])
            lo = m + 1;
        else
            hi = m;
    }
    return lo;
}

/* Code value: integers lo..hi, or the IQ4 grid (grid = 1, codes 0..15). */
typedef struct {
    int lo, hi, grid;
} qrange;

static inline int code_of(qrange r, float v) { return r.grid ? grid_nearest(v) : qcode(v, r.lo, r.hi); }
static inline float value_of(qrange r, int c) { return r.grid ? (float)sd_iq4_grid[c] : (float)c; }

/* Squared error of x[n] ~ s * value(code(x / s)); q receives the codes. */
static double sym_err(const float *x, int n, qrange r, float s, int *q) {
    double e = 0;
    float inv = s != 0.0f ? 1.0f / s : 0.0f;
    for (int j = 0; j < n; j++) {
        int c = code_of(r, x[j] * inv);
        if (q) q[j] = c;
        double diff = (double)x[j] - (double)(s * value_of(r, c));
        e += diff * diff;
    }
    return e;
}

/* Least-squares scale for fixed codes: sum x v / sum v^2. */
static float sym_refit(const float *x, int n, qrange r, const int *q) {
    double num = 0, den = 0;
    for (int j = 0; j < n; j++) {
        double v = value_of(r, q[j]);
        num += x[j] * v;
        den += v * v;
    }
    return den > 0 ? (float)(num / den) : 0.0f;
}

/* Best scale s for x[n] ~ s * value(q) (stored as f16 when round16). */
static float fit_sym(const float *x, int n, qrange r, int round16) {
    float xm = 0;
    for (int j = 0; j < n; j++)
        if (fabsf(x[j]) > fabsf(xm)) xm = x[j];
    if (xm == 0.0f) return 0.0f;
    float lo_end = r.grid ? (float)sd_iq4_grid[0] : (float)r.lo;
    float hi_end = r.grid ? (float)sd_iq4_grid[15] : (float)r.hi;
    int q[256];
    float best = xm / lo_end;
    if (round16) best = f16r(best);
    double best_e = sym_err(x, n, r, best, NULL);
    for (int side = 0; side < 2; side++)
        for (int k = -NSTEP; k <= NSTEP; k++) {
            float end = (side ? hi_end : lo_end) + 0.1f * (float)k;
            if (end == 0.0f) continue;
            float s = xm / end;
            sym_err(x, n, r, s, q);
            s = sym_refit(x, n, r, q);
            if (round16) s = f16r(s);
            double e = sym_err(x, n, r, s, NULL);
            if (e < best_e) best_e = e, best = s;
        }
    return best;
}

/* Affine fit x ~ s * q + b, q in [0, qmax]: squared error with codes. */
static double aff_err(const float *x, int n, int qmax, float s, float b, int *q) {
    double e = 0;
    float inv = s > 0.0f ? 1.0f / s : 0.0f;
    for (int j = 0; j < n; j++) {
        int c = qcode((x[j] - b) * inv, 0, qmax);
        if (q) q[j] = c;
        double diff = (double)x[j] - (double)((float)c * s + b);
        e += diff * diff;
    }
    return e;
}

/* Least squares (s, b) for fixed codes; b <= 0 when neg_b. */
static void aff_refit(const float *x, int n, const int *q, int neg_b, float *s, float *b) {
    double sq = 0, sqq = 0, sx = 0, sxq = 0;
    for (int j = 0; j < n; j++) {
        sq += q[j];
        sqq += (double)q[j] * q[j];
        sx += x[j];
        sxq += (double)x[j] * q[j];
    }
    double det = n * sqq - sq * sq;
    if (det <= 0) return; /* all codes equal: keep the candidate */
    double ns = (n * sxq - sq * sx) / det, nb = (sqq * sx - sq * sxq) / det;
    if (neg_b && nb > 0) {
        nb = 0;
        ns = sqq > 0 ? sxq / sqq : 0;
    }
    if (ns <= 0) return;
    *s = (float)ns;
    *b = (float)nb;
}

/* Best (s >= 0, b) for x[n] ~ s q + b, q in [0, qmax]. neg_b: b <= 0 (the
 * K-quants store -b as a non-negative "min"). round16: s and b are
 * stored as f16. */
static void fit_aff(const float *x, int n, int qmax, int neg_b, int round16, float *s_out, float *b_out) {
    float mn = x[0], mx = x[0];
    for (int j = 1; j < n; j++) {
        mn = fminf(mn, x[j]);
        mx = fmaxf(mx, x[j]);
    }
    if (neg_b && mn > 0) mn = 0;
    float best_s = (mx - mn) / (float)qmax, best_b = mn;
    if (round16) best_s = f16r(best_s), best_b = f16r(best_b);
    double best_e = aff_err(x, n, qmax, best_s, best_b, NULL);
    if (mx > mn) {
        int q[256];
        for (int k = -NSTEP; k <= NSTEP; k++) {
            float s = (mx - mn) / ((float)qmax + 0.1f * (float)k), b = mn;
            aff_err(x, n, qmax, s, b, q);
            aff_refit(x, n, q, neg_b, &s, &b);
            if (round16) s = f16r(s), b = f16r(b);
            double e = aff_err(x, n, qmax, s, b, NULL);
            if (e < best_e) best_e = e, best_s = s, best_b = b;
        }
    }
    *s_out = best_s;
    *b_out = best_b;
}

/* Copy of x[n] with non-finite values replaced by 0 (float -> int of NaN is undefined). */
static void sanitize(const float *x, float *out, int n) {
    for (int j = 0; j < n; j++) out[j] = isfinite(x[j]) ? x[j] : 0.0f;
}

/* ---- legacy 32-element blocks */

static void qz_sym32(uint32_t type, const float *x, uint8_t *b) {
    qrange r = {type == SD_GGML_Q5_0 ? -16 : -8, type == SD_GGML_Q5_0 ? 15 : 7, type == SD_GGML_IQ4_NL};
    float d = fit_sym(x, 32, r, 1);
    int q[32];
    sym_err(x, 32, r, d, q);
    wrh(b, d);
    if (type == SD_GGML_Q5_0) {
        uint32_t qh = 0;
        for (int j = 0; j < 32; j++) qh |= (uint32_t)(((q[j] + 16) >> 4) & 1) << j;
        for (int i = 0; i < 4; i++) b[2 + i] = (uint8_t)(qh >> (8 * i));
        for (int j = 0; j < 16; j++) b[6 + j] = (uint8_t)(((q[j] + 16) & 15) | ((q[j + 16] + 16) & 15) << 4);
    } else {
        int off = r.grid ? 0 : 8;
        for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)((q[j] + off) | (q[j + 16] + off) << 4);
    }
}

static void qz_aff32(uint32_t type, const float *x, uint8_t *b) {
    int five = type == SD_GGML_Q5_1;
    float d, m;
    fit_aff(x, 32, five ? 31 : 15, 0, 1, &d, &m);
    int q[32];
    aff_err(x, 32, five ? 31 : 15, d, m, q);
    wrh(b, d);
    wrh(b + 2, m);
    uint8_t *qs = b + 4;
    if (five) {
        uint32_t qh = 0;
        for (int j = 0; j < 32; j++) qh |= (uint32_t)(q[j] >> 4) << j;
        for (int i = 0; i < 4; i++) b[4 + i] = (uint8_t)(qh >> (8 * i));
        qs = b + 8;
    }
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
}

/* Q8_0 keeps llama.cpp's reference rule (d = amax / 127 in f32, stored as
 * f16; q = round(x * (1/d)), ties away from zero), so smdiff's Q8_0 files
 * are byte-identical to llama.cpp's: with 255 levels the scale search
 * gains little (docs/FORMATS.md gives the measured difference). */
static void qz_q8_0(const float *x, uint8_t *b) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    wrh(b, d);
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)qround(x[j] * id, -128, 127);
}

/* ---- K-quants: sub-block fits, then the super-block scale */

/* Integer sub-scales for signed sub-block scales s[ns] against a stored
 * super-scale: tries both orientations (the largest |s| -> imin or imax),
 * and per sub-block the integers next to the rounded one, keeping the
 * least error over the sub-block's elements x[ns][len]. Returns the
 * super-scale (as stored); sc[] receives the integers. */
static float ksym_scales(const float *x, int ns, int len, const float *s, qrange r, int imin, int imax,
                         int *sc) {
    float sm = 0;
    for (int i = 0; i < ns; i++)
        if (fabsf(s[i]) > fabsf(sm)) sm = s[i];
    if (sm == 0.0f) {
        for (int i = 0; i < ns; i++) sc[i] = 0;
        return 0.0f;
    }
    /* kept if every error overflows (values near FLT_MAX): the simple
     * rule's super-scale, an f16 inf the loader and smdiff quantize refuse */
    float best_d = f16r(sm / (float)imin);
    double best_total = INFINITY;
    int cur[32];
    for (int i = 0; i < ns; i++) sc[i] = 0;
    for (int side = 0; side < 2; side++) {
        float d = f16r(sm / (float)(side ? imax : imin));
        if (d == 0.0f) continue;
        double total = 0;
        for (int i = 0; i < ns; i++) {
            int c0 = qcode(s[i] / d, imin, imax), bc = c0;
            double be = INFINITY;
            for (int c = c0 - 1; c <= c0 + 1; c++) {
                if (c < imin || c > imax) continue;
                double e = sym_err(x + i * len, len, r, d * (float)c, NULL);
                if (e < be) be = e, bc = c;
            }
            cur[i] = bc;
            total += be;
        }
        if (total < best_total) {
            best_total = total;
            best_d = d;
            memcpy(sc, cur, sizeof(int) * (size_t)ns);
        }
    }
    return best_d;
}

/* Error of a K-quant sub-block x[len] with dl = d * sc and ml = dmin * m:
 * y = dl * q - ml, q in [0, qmax]. */
static double kaff_err(const float *x, int len, int qmax, float dl, float ml, int *q) {
    double e = 0;
    float inv = dl > 0.0f ? 1.0f / dl : 0.0f;
    for (int j = 0; j < len; j++) {
        int c = qcode((x[j] + ml) * inv, 0, qmax);
        if (q) q[j] = c;
        double diff = (double)x[j] - (double)(dl * (float)c - ml);
        e += diff * diff;
    }
    return e;
}

/* Affine K-quant (Q2_K, Q4_K, Q5_K): sub-block fits with b <= 0, then
 * the super-scales d, dmin (f16) and integer scales/mins in [0, imax]. */
static void kaff_quantize(const float *x, int ns, int len, int qmax, int imax, float *d_out, float *dmin_out,
                          int *sc, int *mn, int *q) {
    float s[16], m[16], smax = 0, mmax = 0;
    for (int i = 0; i < ns; i++) {
        float b;
        fit_aff(x + i * len, len, qmax, 1, 0, &s[i], &b);
        m[i] = -b;
        smax = fmaxf(smax, s[i]);
        mmax = fmaxf(mmax, m[i]);
    }
    float d = f16r(smax / (float)imax), dmin = f16r(mmax / (float)imax);
    for (int i = 0; i < ns; i++) {
        const float *xi = x + i * len;
        int c0 = d > 0.0f ? qcode(s[i] / d, 0, imax) : 0;
        int m0 = dmin > 0.0f ? qcode(m[i] / dmin, 0, imax) : 0;
        double be = INFINITY;
        sc[i] = c0, mn[i] = m0; /* kept if every error overflows (values near FLT_MAX) */
        for (int c = c0 - 1; c <= c0 + 1; c++)
            for (int mm = m0 - 1; mm <= m0 + 1; mm++) {
                if (c < 0 || c > imax || mm < 0 || mm > imax) continue;
                double e = kaff_err(xi, len, qmax, d * (float)c, dmin * (float)mm, NULL);
                if (e < be) be = e, sc[i] = c, mn[i] = mm;
            }
        kaff_err(xi, len, qmax, d * (float)sc[i], dmin * (float)mn[i], q + i * len);
    }
    *d_out = d;
    *dmin_out = dmin;
}

/* Symmetric K-quant (Q3_K, Q6_K, IQ4_XS): sub-block fits, the super-scale
 * and integer scales sc[ns]; q[ns*len] receives the codes (integers in
 * [r.lo, r.hi], or grid indices). Returns the stored super-scale. */
static float ksym_quantize(const float *x, int ns, int len, qrange r, int imin, int imax, int *sc, int *q) {
    float s[16];
    for (int i = 0; i < ns; i++) s[i] = fit_sym(x + i * len, len, r, 0);
    float d = ksym_scales(x, ns, len, s, r, imin, imax, sc);
    for (int i = 0; i < ns; i++) sym_err(x + i * len, len, r, d * (float)sc[i], q + i * len);
    return d;
}

static void qz_q2_k(const float *x, uint8_t *b) {
    int sc[16], mn[16], q[256];
    float d, dmin;
    kaff_quantize(x, 16, 16, 3, 15, &d, &dmin, sc, mn, q);
    memset(b, 0, 84);
    for (int s = 0; s < 16; s++) b[s] = (uint8_t)(sc[s] | mn[s] << 4);
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int t = 0; t < 2; t++)
                for (int l = 0; l < 16; l++)
                    b[16 + 32 * h + 16 * t + l] |= (uint8_t)(q[128 * h + 32 * k + 16 * t + l] << (2 * k));
    wrh(b + 80, d);
    wrh(b + 82, dmin);
}

static void qz_q3_k(const float *x, uint8_t *b) {
    int sc[16], q[256], biased[16];
    qrange r = {-4, 3, 0};
    float d = ksym_quantize(x, 16, 16, r, -32, 31, sc, q);
    memset(b, 0, 110);
    for (int s = 0; s < 16; s++) biased[s] = sc[s] + 32;
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int t = 0; t < 2; t++)
                for (int l = 0; l < 16; l++) {
                    int c = q[128 * h + 32 * k + 16 * t + l] + 4; /* 0..7 */
                    b[32 + 32 * h + 16 * t + l] |= (uint8_t)((c & 3) << (2 * k));
                    if (c & 4) b[16 * t + l] |= (uint8_t)(1 << (4 * h + k));
                }
    q3k_pack_scales(b + 96, biased);
    wrh(b + 108, d);
}

static void qz_q45_k(int five, const float *x, uint8_t *b) {
    int sc[8], mn[8], q[256];
    uint8_t sc8[8], mn8[8];
    float d, dmin;
    kaff_quantize(x, 8, 32, five ? 31 : 15, 63, &d, &dmin, sc, mn, q);
    memset(b, 0, five ? 176 : 144);
    wrh(b, d);
    wrh(b + 2, dmin);
    for (int i = 0; i < 8; i++) sc8[i] = (uint8_t)sc[i], mn8[i] = (uint8_t)mn[i];
    k4_pack_scales(b + 4, sc8, mn8);
    uint8_t *qh = b + 16, *qs = b + (five ? 48 : 16);
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < 32; l++) {
            int lo = q[64 * g + l], hi = q[64 * g + 32 + l];
            qs[32 * g + l] = (uint8_t)((lo & 15) | (hi & 15) << 4);
            if (five) qh[l] |= (uint8_t)((lo >> 4) << (2 * g) | (hi >> 4) << (2 * g + 1));
        }
}

static void qz_q6_k(const float *x, uint8_t *b) {
    int sc[16], q[256];
    qrange r = {-32, 31, 0};
    float d = ksym_quantize(x, 16, 16, r, -128, 127, sc, q);
    memset(b, 0, 210);
    uint8_t *ql = b, *qh = b + 128;
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int v = q[128 * h + 32 * c + l] + 32; /* 0..63 */
                ql[64 * h + 32 * (c % 2) + l] |= (uint8_t)((v & 15) << (c < 2 ? 0 : 4));
                qh[32 * h + l] |= (uint8_t)((v >> 4) << (2 * c));
            }
    for (int s = 0; s < 16; s++) b[192 + s] = (uint8_t)(int8_t)sc[s];
    wrh(b + 208, d);
}

static void qz_q8_k(const float *x, uint8_t *b) {
    float amax = 0;
    for (int j = 0; j < 256; j++) amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127.0f;
    uint32_t u;
    memcpy(&u, &d, 4);
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(u >> (8 * i));
    for (int g = 0; g < 16; g++) {
        int sum = 0;
        for (int j = 16 * g; j < 16 * g + 16; j++) {
            int c = d != 0.0f ? qround(x[j] / d, -127, 127) : 0;
            b[4 + j] = (uint8_t)(int8_t)c;
            sum += c;
        }
        b[260 + 2 * g] = (uint8_t)(sum & 255);
        b[261 + 2 * g] = (uint8_t)((unsigned)sum >> 8);
    }
}

static void qz_iq4_xs(const float *x, uint8_t *b) {
    int sc[8], q[256];
    qrange r = {0, 15, 1};
    float d = ksym_quantize(x, 8, 32, r, -32, 31, sc, q);
    memset(b, 0, 136);
    wrh(b, d);
    uint16_t sh = 0;
    for (int i = 0; i < 8; i++) {
        int ls = sc[i] + 32;
        b[4 + i / 2] |= (uint8_t)((ls & 15) << (4 * (i % 2)));
        sh |= (uint16_t)((ls >> 4) << (2 * i));
        for (int j = 0; j < 16; j++) b[8 + 16 * i + j] = (uint8_t)(q[32 * i + j] | q[32 * i + 16 + j] << 4);
    }
    b[2] = (uint8_t)sh;
    b[3] = (uint8_t)(sh >> 8);
}

void sd_quant_quantize(uint32_t type, const float *src, void *dst, int64_t n) {
    /* src: (n,) f32; dst: n elements of type */
    qtraits t;
    if (!qtraits_of(type, &t)) return;
    uint8_t *out = dst;
    float x[256];
    for (int64_t bi = 0; bi < n / t.elems; bi++) {
        uint8_t *b = out + (size_t)bi * t.bytes;
        sanitize(src + bi * t.elems, x, (int)t.elems);
        switch (type) {
        case SD_GGML_Q4_0:
        case SD_GGML_Q5_0:
        case SD_GGML_IQ4_NL: qz_sym32(type, x, b); break;
        case SD_GGML_Q4_1:
        case SD_GGML_Q5_1: qz_aff32(type, x, b); break;
        case SD_GGML_Q8_0: qz_q8_0(x, b); break;
        case SD_GGML_Q2_K: qz_q2_k(x, b); break;
        case SD_GGML_Q3_K: qz_q3_k(x, b); break;
        case SD_GGML_Q4_K: qz_q45_k(0, x, b); break;
        case SD_GGML_Q5_K: qz_q45_k(1, x, b); break;
        case SD_GGML_Q6_K: qz_q6_k(x, b); break;
        case SD_GGML_Q8_K: qz_q8_k(x, b); break;
        case SD_GGML_IQ4_XS: qz_iq4_xs(x, b); break;
        default: break;
        }
    }
}
