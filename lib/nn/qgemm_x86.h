/* qgemm_x86.h -- the SIMD few-row kernels (and, in the AVX2 build, the
 * dequantisers and the activation quantiser), written once and compiled
 * per instruction set. The including file selects the target and defines
 *   QG_SUFFIX  avx2 | vnni | vnniemu   (suffix of the exported functions)
 *   QG_DPBUSD  0: u8 x s8 products by AVX2 maddubs + madd;
 *              1: by AVX-512 VNNI dpbusd (256-bit, AVX512VL);
 *              2: dpbusd emulated exactly with AVX2 (to test the VNNI
 *                 variant's code on machines without VNNI).
 * Arithmetic as in qgemm.c's scalar reference; see qgemm.h.
 *
 * Layout of a decoded weight block: 32 elements per 256-bit vector, vector
 * v holding elements 32v .. 32v+31 in order, so its low 128 bits are the
 * 16-element group 2v and its high 128 bits the group 2v+1. Unsigned
 * formats keep their codes (value = code - offset); signed formats (Q4_0,
 * Q5_0, Q8_0, IQ4_NL, IQ4_XS) keep |value| and the value, whose sign is
 * moved onto the activation (u8 x s8 products need an unsigned operand).
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "core/quant.h"
#include "qgemm.h"

#define QG_CAT2(a, b) a##_##b
#define QG_CAT(a, b) QG_CAT2(a, b)
#define QG(name) QG_CAT(name, QG_SUFFIX)
#define QG_INLINE static inline __attribute__((always_inline))

/* ------------------------------------------------------------ helpers */

QG_INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

QG_INLINE float h2f(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }

QG_INLINE __m256i pair128(__m128i lo, __m128i hi) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

/* 16 bytes -> 32 codes: low nibbles (elements 0..15), then high nibbles. */
QG_INLINE __m256i nibbles(const uint8_t *qs) {
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(pair128(v, _mm_srli_epi16(v, 4)), _mm256_set1_epi8(15));
}

/* Bit j of the little-endian u32 at p -> 0x10 in byte j (Q5_0/Q5_1's fifth bits). */
QG_INLINE __m256i fifth_bits(const uint8_t *p) {
    uint32_t x;
    memcpy(&x, p, 4);
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
                                          3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* Per byte: (v >> n) & mask, for a run-time n. */
QG_INLINE __m256i shr_mask(__m256i v, int n, int mask) {
    return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(n)), _mm256_set1_epi8((char)mask));
}

QG_INLINE __m256i iq4_values(__m256i codes) {
    const __m256i lut = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sd_iq4_grid));
    return _mm256_shuffle_epi8(lut, codes);
}

/* Sum over each group of 4 bytes of u (unsigned) times s (signed) -> 8 x i32. */
QG_INLINE __m256i dot4(__m256i u, __m256i s) {
#if QG_DPBUSD == 1
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#elif QG_DPBUSD == 2
    __m256i ue = _mm256_and_si256(u, _mm256_set1_epi16(0xFF)), uo = _mm256_srli_epi16(u, 8);
    __m256i se = _mm256_srai_epi16(_mm256_slli_epi16(s, 8), 8), so = _mm256_srai_epi16(s, 8);
    return _mm256_add_epi32(_mm256_madd_epi16(ue, se), _mm256_madd_epi16(uo, so));
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/* Per-group scales: lo for the low 128 bits (group 2v), hi for the high. */
QG_INLINE __m256i mkscale(int lo, int hi) {
#if QG_DPBUSD
    return pair128(_mm_set1_epi32(lo), _mm_set1_epi32(hi));
#else
    return pair128(_mm_set1_epi16((short)lo), _mm_set1_epi16((short)hi));
#endif
}

/* dot4 with each lane multiplied by its group's scale. */
QG_INLINE __m256i dot4_scaled(__m256i u, __m256i s, __m256i sv) {
#if QG_DPBUSD
    return _mm256_mullo_epi32(dot4(u, s), sv);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), sv);
#endif
}

/* ------------------------------------------------------------ decoders */

typedef struct {
    __m256i c, s; /* codes or |values|; values (signed formats) */
    float dw, cw; /* y = (dw * a.d) * sum c q + cw * a.ds */
    int off;      /* value = code - off (unused: the 32-element formats with an
                     offset are decoded to signed values) */
} lblk;

QG_INLINE void dec32(const uint32_t T, const uint8_t *b, lblk *L) {
    L->dw = h2f(b);
    L->cw = 0;
    L->off = 0;
    switch (T) {
    case SD_GGML_Q4_0: /* signed values: the offset costs nothing per activation row */
        L->s = _mm256_sub_epi8(nibbles(b + 2), _mm256_set1_epi8(8));
        L->c = _mm256_abs_epi8(L->s);
        break;
    case SD_GGML_Q4_1: L->c = nibbles(b + 4); L->cw = h2f(b + 2); break;
    case SD_GGML_Q5_0:
        L->s = _mm256_sub_epi8(_mm256_or_si256(nibbles(b + 6), fifth_bits(b + 2)), _mm256_set1_epi8(16));
        L->c = _mm256_abs_epi8(L->s);
        break;
    case SD_GGML_Q5_1:
        L->c = _mm256_or_si256(nibbles(b + 8), fifth_bits(b + 4));
        L->cw = h2f(b + 2);
        break;
    case SD_GGML_Q8_0:
        L->s = _mm256_loadu_si256((const __m256i *)(b + 2));
        L->c = _mm256_abs_epi8(L->s);
        break;
    case SD_GGML_IQ4_NL:
        L->s = iq4_values(nibbles(b + 2));
        L->c = _mm256_abs_epi8(L->s);
        break;
    default: break;
    }
}

typedef struct {
    __m256i c[8], s[8];
    int16_t sc[16], mn[16]; /* per 16-element group */
    float d, dmin;
    int off;
} kblk;

QG_INLINE void dec_q2k(const uint8_t *b, kblk *k) {
    for (int h = 0; h < 2; h++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * h));
        for (int sh = 0; sh < 4; sh++) k->c[4 * h + sh] = shr_mask(q, 2 * sh, 3);
    }
    for (int g = 0; g < 16; g++) k->sc[g] = b[g] & 15, k->mn[g] = b[g] >> 4;
    k->d = h2f(b + 80), k->dmin = h2f(b + 82), k->off = 0;
}

QG_INLINE void dec_q3k(const uint8_t *b, kblk *k) {
    __m256i hm = _mm256_loadu_si256((const __m256i *)b);
    for (int h = 0; h < 2; h++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(b + 32 + 32 * h));
        for (int sh = 0; sh < 4; sh++) {
            __m256i hb = _mm256_slli_epi16(shr_mask(hm, 4 * h + sh, 1), 2);
            k->c[4 * h + sh] = _mm256_or_si256(shr_mask(q, 2 * sh, 3), hb);
        }
    }
    for (int g = 0; g < 16; g++) k->sc[g] = (int16_t)(sd_quant_q3k_scale(b + 96, g) - 32), k->mn[g] = 0;
    k->d = h2f(b + 108), k->dmin = 0, k->off = 4;
}

QG_INLINE void dec_q45k(const int five, const uint8_t *b, kblk *k) {
    const uint8_t *qs = b + (five ? 48 : 16);
    __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(b + 16)) : _mm256_setzero_si256();
    for (int g = 0; g < 4; g++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * g));
        __m256i lo = _mm256_and_si256(q, _mm256_set1_epi8(15)), hi = shr_mask(q, 4, 15);
        if (five) {
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(shr_mask(qh, 2 * g, 1), 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(shr_mask(qh, 2 * g + 1, 1), 4));
        }
        k->c[2 * g] = lo;
        k->c[2 * g + 1] = hi;
    }
    for (int s = 0; s < 8; s++) {
        uint8_t sc, m;
        sd_quant_k4_scale_min(b + 4, s, &sc, &m);
        k->sc[2 * s] = k->sc[2 * s + 1] = sc;
        k->mn[2 * s] = k->mn[2 * s + 1] = m;
    }
    k->d = h2f(b), k->dmin = h2f(b + 2), k->off = 0;
}

QG_INLINE void dec_q6k(const uint8_t *b, kblk *k) {
    for (int h = 0; h < 2; h++) {
        __m256i l0 = _mm256_loadu_si256((const __m256i *)(b + 64 * h));
        __m256i l1 = _mm256_loadu_si256((const __m256i *)(b + 64 * h + 32));
        __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
        for (int c = 0; c < 4; c++) {
            __m256i lo = shr_mask(c % 2 ? l1 : l0, 4 * (c / 2), 15);
            __m256i hi = _mm256_slli_epi16(shr_mask(qh, 2 * c, 3), 4);
            k->c[4 * h + c] = _mm256_or_si256(lo, hi);
        }
    }
    for (int g = 0; g < 16; g++) k->sc[g] = (int8_t)b[192 + g], k->mn[g] = 0;
    k->d = h2f(b + 208), k->dmin = 0, k->off = 32;
}

QG_INLINE void dec_iq4xs(const uint8_t *b, kblk *k) {
    uint16_t sh = (uint16_t)(b[2] | b[3] << 8);
    for (int i = 0; i < 8; i++) {
        int ls = ((b[4 + i / 2] >> (4 * (i % 2))) & 15) | ((sh >> (2 * i)) & 3) << 4;
        k->sc[2 * i] = k->sc[2 * i + 1] = (int16_t)(ls - 32);
        k->mn[2 * i] = k->mn[2 * i + 1] = 0;
        k->s[i] = iq4_values(nibbles(b + 8 + 16 * i));
        k->c[i] = _mm256_abs_epi8(k->s[i]);
    }
    k->d = h2f(b), k->dmin = 0, k->off = 0;
}

QG_INLINE void dec256(const uint32_t T, const uint8_t *b, kblk *k) {
    switch (T) {
    case SD_GGML_Q2_K: dec_q2k(b, k); break;
    case SD_GGML_Q3_K: dec_q3k(b, k); break;
    case SD_GGML_Q4_K: dec_q45k(0, b, k); break;
    case SD_GGML_Q5_K: dec_q45k(1, b, k); break;
    case SD_GGML_Q6_K: dec_q6k(b, k); break;
    case SD_GGML_IQ4_XS: dec_iq4xs(b, k); break;
    default: break;
    }
}

/* ---------------------------------------------------------- row kernels */

QG_INLINE void store_row(const sd_qgemm_job *j, int64_t r, const __m256 *acc, const float *accs) {
    for (int64_t m = 0; m < j->M; m++) {
        float v = hsum8(acc[m]) + accs[m];
        float *o = j->out + m * j->ldc + r;
        *o = j->beta ? *o + v : v;
    }
}

/* Weight row r's bytes, its M accumulators zeroed. */
QG_INLINE const uint8_t *row_start(const sd_qgemm_job *j, int64_t r, __m256 *acc, float *accs) {
    for (int64_t m = 0; m < j->M; m++) acc[m] = _mm256_setzero_ps(), accs[m] = 0;
    return j->w + (size_t)r * j->w_row;
}

QG_INLINE void rows32(const sd_qgemm_job *j, int64_t r0, int64_t r1, const uint32_t T) {
    const int sgn = T != SD_GGML_Q4_1 && T != SD_GGML_Q5_1;
    const size_t bb = sd_ggml_block_bytes(T);
    __m256 acc[SD_QGEMM_FEW_ROWS];
    float accs[SD_QGEMM_FEW_ROWS];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = row_start(j, r, acc, accs);
        for (int64_t b = 0; b < j->nblk; b++) {
            lblk L;
            dec32(T, wr + (size_t)b * bb, &L);
            for (int64_t m = 0; m < j->M; m++) {
                const sd_qa32 *a = (const sd_qa32 *)(j->act + (size_t)m * j->act_row) + b;
                __m256i aq = _mm256_loadu_si256((const __m256i *)a->q);
                if (sgn) aq = _mm256_sign_epi8(aq, L.s);
                __m256 p = _mm256_cvtepi32_ps(dot4(L.c, aq));
                acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(L.dw * a->d), p, acc[m]);
                if (!sgn) accs[m] += L.cw * a->ds;
            }
        }
        store_row(j, r, acc, accs);
    }
}

QG_INLINE void rows256(const sd_qgemm_job *j, int64_t r0, int64_t r1, const uint32_t T) {
    const int sgn = T == SD_GGML_IQ4_XS;
    const int has_o = T == SD_GGML_Q3_K || T == SD_GGML_Q6_K;
    const int has_m = T == SD_GGML_Q2_K || T == SD_GGML_Q4_K || T == SD_GGML_Q5_K;
    const size_t bb = sd_ggml_block_bytes(T);
    __m256 acc[SD_QGEMM_FEW_ROWS];
    float accs[SD_QGEMM_FEW_ROWS];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = row_start(j, r, acc, accs);
        for (int64_t b = 0; b < j->nblk; b++) {
            kblk k;
            dec256(T, wr + (size_t)b * bb, &k);
            __m256i sv[8];
            for (int v = 0; v < 8; v++) sv[v] = mkscale(k.sc[2 * v], k.sc[2 * v + 1]);
            int16_t o[16];
            for (int g = 0; g < 16; g++) o[g] = (int16_t)(-k.off * k.sc[g]);
            const __m256i o16 = _mm256_loadu_si256((const __m256i *)o);
            const __m256i mn16 = _mm256_loadu_si256((const __m256i *)k.mn);
            for (int64_t m = 0; m < j->M; m++) {
                const sd_qa256 *a = (const sd_qa256 *)(j->act + (size_t)m * j->act_row) + b;
                __m256i isum = _mm256_setzero_si256();
                for (int v = 0; v < 8; v++) {
                    __m256i aq = _mm256_loadu_si256((const __m256i *)(a->q + 32 * v));
                    if (sgn) aq = _mm256_sign_epi8(aq, k.s[v]);
                    isum = _mm256_add_epi32(isum, dot4_scaled(k.c[v], aq, sv[v]));
                }
                __m256i bs = _mm256_loadu_si256((const __m256i *)a->bsum);
                if (has_o) isum = _mm256_add_epi32(isum, _mm256_madd_epi16(o16, bs));
                acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(k.d * a->d), _mm256_cvtepi32_ps(isum), acc[m]);
                if (has_m)
                    acc[m] = _mm256_fnmadd_ps(_mm256_set1_ps(k.dmin * a->d),
                                              _mm256_cvtepi32_ps(_mm256_madd_epi16(mn16, bs)), acc[m]);
            }
        }
        store_row(j, r, acc, accs);
    }
}

void QG(sd_qgemm_rows)(const sd_qgemm_job *j, int64_t r0, int64_t r1) {
    switch (j->type) {
    case SD_GGML_Q4_0: rows32(j, r0, r1, SD_GGML_Q4_0); break;
    case SD_GGML_Q4_1: rows32(j, r0, r1, SD_GGML_Q4_1); break;
    case SD_GGML_Q5_0: rows32(j, r0, r1, SD_GGML_Q5_0); break;
    case SD_GGML_Q5_1: rows32(j, r0, r1, SD_GGML_Q5_1); break;
    case SD_GGML_Q8_0: rows32(j, r0, r1, SD_GGML_Q8_0); break;
    case SD_GGML_IQ4_NL: rows32(j, r0, r1, SD_GGML_IQ4_NL); break;
    case SD_GGML_Q2_K: rows256(j, r0, r1, SD_GGML_Q2_K); break;
    case SD_GGML_Q3_K: rows256(j, r0, r1, SD_GGML_Q3_K); break;
    case SD_GGML_Q4_K: rows256(j, r0, r1, SD_GGML_Q4_K); break;
    case SD_GGML_Q5_K: rows256(j, r0, r1, SD_GGML_Q5_K); break;
    case SD_GGML_Q6_K: rows256(j, r0, r1, SD_GGML_Q6_K); break;
    case SD_GGML_IQ4_XS: rows256(j, r0, r1, SD_GGML_IQ4_XS); break;
    default: sd_qgemm_rows_scalar(j, r0, r1); break;
    }
}

#if QG_DPBUSD == 0
/* -------------------------------------- dequantisers (AVX2 build only) */
/* Bit-identical to sd_quant_dequant: the same f32 operations per element
 * (int -> float exact, one multiply, one add or subtract). */

/* 32 values (i8 lanes of v, signed or unsigned, minus off) -> f32 * mul (+ add). */
QG_INLINE __m256 emit8(__m128i part, int sgn, __m256i off, __m256 mul, __m256 sub, int add_m) {
    __m256i i32 = sgn ? _mm256_cvtepi8_epi32(part) : _mm256_cvtepu8_epi32(part);
    __m256 f = _mm256_mul_ps(mul, _mm256_cvtepi32_ps(_mm256_sub_epi32(i32, off)));
    if (add_m > 0) f = _mm256_add_ps(f, sub);
    if (add_m < 0) f = _mm256_sub_ps(f, sub);
    return f;
}

/* Written out for the four 8-lane quarters (a loop here was not unrolled
 * and cost a third of the dequantisation's instructions). */
QG_INLINE void emit32(__m256i v, int sgn, int off, const float *mul, const float *sub, int add_m, float *y) {
    const __m256i o = _mm256_set1_epi32(off);
    const __m256 m0 = _mm256_set1_ps(mul[0]), m1 = _mm256_set1_ps(mul[1]);
    const __m256 s0 = add_m ? _mm256_set1_ps(sub[0]) : m0, s1 = add_m ? _mm256_set1_ps(sub[1]) : m1;
    const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
    _mm256_storeu_ps(y, emit8(lo, sgn, o, m0, s0, add_m));
    _mm256_storeu_ps(y + 8, emit8(_mm_srli_si128(lo, 8), sgn, o, m0, s0, add_m));
    _mm256_storeu_ps(y + 16, emit8(hi, sgn, o, m1, s1, add_m));
    _mm256_storeu_ps(y + 24, emit8(_mm_srli_si128(hi, 8), sgn, o, m1, s1, add_m));
}

QG_INLINE void dq32(const uint32_t T, const uint8_t *w, int64_t n, float *y) {
    const int sgn = T != SD_GGML_Q4_1 && T != SD_GGML_Q5_1;
    const int aff = T == SD_GGML_Q4_1 || T == SD_GGML_Q5_1;
    const size_t bb = sd_ggml_block_bytes(T);
    for (int64_t b = 0; b < n / 32; b++) {
        lblk L;
        dec32(T, w + (size_t)b * bb, &L);
        float mul[2] = {L.dw, L.dw}, m[2] = {L.cw, L.cw};
        emit32(sgn ? L.s : L.c, sgn, L.off, mul, m, aff ? 1 : 0, y + 32 * b);
    }
}

QG_INLINE void dq256(const uint32_t T, const uint8_t *w, int64_t n, float *y) {
    const int sgn = T == SD_GGML_IQ4_XS;
    const int has_m = T == SD_GGML_Q2_K || T == SD_GGML_Q4_K || T == SD_GGML_Q5_K;
    const size_t bb = sd_ggml_block_bytes(T);
    for (int64_t b = 0; b < n / 256; b++) {
        kblk k;
        dec256(T, w + (size_t)b * bb, &k);
        float mul[16], sub[16];
        for (int g = 0; g < 16; g++) mul[g] = k.d * (float)k.sc[g], sub[g] = k.dmin * (float)k.mn[g];
        for (int v = 0; v < 8; v++)
            emit32(sgn ? k.s[v] : k.c[v], sgn, k.off, mul + 2 * v, sub + 2 * v, has_m ? -1 : 0, y + 256 * b + 32 * v);
    }
}

void sd_qdequant_row_avx2(uint32_t type, const uint8_t *w, int64_t n, float *out) {
    switch (type) {
    case SD_GGML_Q4_0: dq32(SD_GGML_Q4_0, w, n, out); break;
    case SD_GGML_Q4_1: dq32(SD_GGML_Q4_1, w, n, out); break;
    case SD_GGML_Q5_0: dq32(SD_GGML_Q5_0, w, n, out); break;
    case SD_GGML_Q5_1: dq32(SD_GGML_Q5_1, w, n, out); break;
    case SD_GGML_Q8_0: dq32(SD_GGML_Q8_0, w, n, out); break;
    case SD_GGML_IQ4_NL: dq32(SD_GGML_IQ4_NL, w, n, out); break;
    case SD_GGML_Q2_K: dq256(SD_GGML_Q2_K, w, n, out); break;
    case SD_GGML_Q3_K: dq256(SD_GGML_Q3_K, w, n, out); break;
    case SD_GGML_Q4_K: dq256(SD_GGML_Q4_K, w, n, out); break;
    case SD_GGML_Q5_K: dq256(SD_GGML_Q5_K, w, n, out); break;
    case SD_GGML_Q6_K: dq256(SD_GGML_Q6_K, w, n, out); break;
    case SD_GGML_IQ4_XS: dq256(SD_GGML_IQ4_XS, w, n, out); break;
    default: sd_quant_dequant(type, w, out, n); break;
    }
}

/* ----------------------------------- activation quantiser (AVX2 build) */

/* x[n] (n = 32 or 256) -> q[n]; same bits as qgemm.c's qact_block. */
QG_INLINE float qact_avx2(const float *x, int n, int8_t *q, int *sum) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 amax = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    for (int j = 0; j < n; j += 8) {
        __m256 v = _mm256_loadu_ps(x + j);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    float am = _mm_cvtss_f32(m4);
    *sum = 0;
    if (_mm256_movemask_ps(bad) || isinf(am)) {
        memset(q, 0, (size_t)n);
        return NAN;
    }
    const __m256 id = _mm256_set1_ps(am > 0.0f ? 127.0f / am : 0.0f);
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int j = 0; j < n; j += 32) {
        __m256i i[4];
        for (int k = 0; k < 4; k++) {
            __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), id),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            i[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi));
        }
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
        _mm256_storeu_si256((__m256i *)(q + j), _mm256_permutevar8x32_epi32(p, perm));
    }
    for (int j = 0; j < n; j++) *sum += q[j];
    return am / 127.0f;
}

float sd_qact_block_avx2(const float *x, int n, int8_t *q, int *sum) { return qact_avx2(x, n, q, sum); }
#endif
