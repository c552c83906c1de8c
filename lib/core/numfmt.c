/* numfmt.c -- the tensor number formats: type table and conversions to
 * and from f32. See numfmt.h. */
#include <math.h>
#include <string.h>

#include "numfmt.h"
#include "quant.h"

/* ------------------------------------------------------------ type table */

/* Bytes per block from the ggml block structs (ggml-common.h); the layout
 * of each block is in the comment after it (d, m: f16 scale and minimum;
 * qs, qh: low and high bits of the quants; QK_K = 256). */
static const sd_ggml_type_info k_types[SD_GGML_TYPE_COUNT] = {
    [SD_GGML_F32] = {"F32", 1, 4, 1},
    [SD_GGML_F16] = {"F16", 1, 2, 1},
    [SD_GGML_Q4_0] = {"Q4_0", SD_QK4_0, 18, 1},      /* d, qs[16] */
    [SD_GGML_Q4_1] = {"Q4_1", SD_QK4_1, 20, 1},      /* d, m, qs[16] */
    [SD_GGML_Q5_0] = {"Q5_0", SD_QK5_0, 22, 1},      /* d, qh[4], qs[16] */
    [SD_GGML_Q5_1] = {"Q5_1", SD_QK5_1, 24, 1},      /* d, m, qh[4], qs[16] */
    [SD_GGML_Q8_0] = {"Q8_0", SD_QK8_0, 34, 1},      /* d, qs[32] */
    [SD_GGML_Q8_1] = {"Q8_1", SD_QK8_1, 36, 0},      /* d, s, qs[32] */
    [SD_GGML_Q2_K] = {"Q2_K", SD_QK_K, 84, 1},       /* scales[16], qs[64], d, dmin */
    [SD_GGML_Q3_K] = {"Q3_K", SD_QK_K, 110, 1},      /* hmask[32], qs[64], scales[12], d */
    [SD_GGML_Q4_K] = {"Q4_K", SD_QK_K, 144, 1},      /* d, dmin, scales[12], qs[128] */
    [SD_GGML_Q5_K] = {"Q5_K", SD_QK_K, 176, 1},      /* d, dmin, scales[12], qh[32], qs[128] */
    [SD_GGML_Q6_K] = {"Q6_K", SD_QK_K, 210, 1},      /* ql[128], qh[64], scales[16], d */
    [SD_GGML_Q8_K] = {"Q8_K", SD_QK_K, 292, 0},      /* f32 d, qs[256], int16 bsums[16] */
    [SD_GGML_IQ2_XXS] = {"IQ2_XXS", SD_QK_K, 66, 0}, /* d, u16 qs[32] */
    [SD_GGML_IQ2_XS] = {"IQ2_XS", SD_QK_K, 74, 0},   /* d, u16 qs[32], scales[8] */
    [SD_GGML_IQ3_XXS] = {"IQ3_XXS", SD_QK_K, 98, 0}, /* d, qs[96] */
    [SD_GGML_IQ1_S] = {"IQ1_S", SD_QK_K, 50, 0},     /* d, qs[32], u16 qh[8] */
    [SD_GGML_IQ4_NL] = {"IQ4_NL", SD_QK4_NL, 18, 1}, /* d, qs[16] */
    [SD_GGML_IQ3_S] = {"IQ3_S", SD_QK_K, 110, 0},    /* d, qs[64], qh[8], signs[32], scales[4] */
    [SD_GGML_IQ2_S] = {"IQ2_S", SD_QK_K, 82, 0},     /* d, qs[64], qh[8], scales[8] */
    [SD_GGML_IQ4_XS] = {"IQ4_XS", SD_QK_K, 136, 1},  /* d, u16 scales_h, scales_l[4], qs[128] */
    [SD_GGML_I8] = {"I8", 1, 1, 0},
    [SD_GGML_I16] = {"I16", 1, 2, 0},
    [SD_GGML_I32] = {"I32", 1, 4, 0},
    [SD_GGML_I64] = {"I64", 1, 8, 0},
    [SD_GGML_F64] = {"F64", 1, 8, 0},
    [SD_GGML_IQ1_M] = {"IQ1_M", SD_QK_K, 56, 0},     /* qs[32], qh[16], scales[8] */
    [SD_GGML_BF16] = {"BF16", 1, 2, 1},
    [SD_GGML_TQ1_0] = {"TQ1_0", SD_QK_K, 54, 0},     /* qs[48], qh[4], d */
    [SD_GGML_TQ2_0] = {"TQ2_0", SD_QK_K, 66, 0},     /* qs[64], d */
    [SD_GGML_MXFP4] = {"MXFP4", SD_QK_MXFP4, 17, 0}, /* e8m0 scale, qs[16] */
    [SD_GGML_NVFP4] = {"NVFP4", SD_QK_NVFP4, 36, 0}, /* 4 x e4m3 scale, qs[32] */
};

const sd_ggml_type_info *sd_ggml_type_info_of(uint32_t type) {
    if (type >= SD_GGML_TYPE_COUNT || k_types[type].block == 0) return NULL;
    return &k_types[type];
}

const char *sd_ggml_type_name(uint32_t type) {
    const sd_ggml_type_info *t = sd_ggml_type_info_of(type);
    return t ? t->name : "unknown";
}

uint32_t sd_ggml_block_size(uint32_t type) {
    const sd_ggml_type_info *t = sd_ggml_type_info_of(type);
    return t ? t->block : 0;
}

uint32_t sd_ggml_block_bytes(uint32_t type) {
    const sd_ggml_type_info *t = sd_ggml_type_info_of(type);
    return t ? t->bytes : 0;
}

int sd_ggml_is_supported(uint32_t type) {
    const sd_ggml_type_info *t = sd_ggml_type_info_of(type);
    return t && t->supported;
}

uint64_t sd_ggml_type_size(uint32_t type, uint64_t n_elements) {
    const sd_ggml_type_info *t = sd_ggml_type_info_of(type);
    if (!t || n_elements % t->block) return 0;
    uint64_t blocks = n_elements / t->block;
    if (blocks > UINT64_MAX / t->bytes) return 0;
    return blocks * t->bytes;
}

size_t sd_ggml_row_size(uint32_t type, int64_t cols) {
    if (cols < 0) return 0;
    uint64_t n = sd_ggml_type_size(type, (uint64_t)cols);
    return n > SIZE_MAX ? 0 : (size_t)n;
}

/* ------------------------------------------------- scalar conversions */

/* Reference conversion: decode the fields one case at a time. */
static float f16_to_f32_naive(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);  /* inf, or nan keeping its payload */
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (man << 13);  /* rebias 15 -> 127 */
    } else if (man == 0) {
        bits = sign;
    } else {
        /* Subnormal: value = man * 2^-24; normalise into an f32 normal. */
        int e = -14;
        while (!(man & 0x400u)) { man <<= 1; e--; }
        man &= 0x3ffu;
        bits = sign | ((uint32_t)(e + 127) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Branch-free conversion (used on every weight of an F16 file).
 * Normal and inf/nan: place exponent+mantissa at f32's mantissa boundary
 * with the exponent raised by 224, then multiply by 2^-112: the net rebias
 * is +112 (15 -> 127), and f16 exponent 31 lands on f32 exponent 255 before
 * the multiply, so inf stays inf and nan stays nan.
 * Subnormal (exponent 0, value man * 2^-24): put the 10 mantissa bits under
 * the exponent of 0.5, which gives 0.5 + man * 2^-24 exactly, and subtract
 * 0.5 (exact by Sterbenz). Checked against f16_to_f32_naive and against the
 * IEEE definition for all 65536 inputs in tests/test_gguf.c. */
float sd_f16_to_f32(uint16_t h) {
    uint32_t w = (uint32_t)h << 16;
    uint32_t sign = w & 0x80000000u;
    uint32_t two_w = w + w;  /* drops the sign */
    uint32_t nb = (two_w >> 4) + (0xE0u << 23), db = (two_w >> 17) | (126u << 23);
    float nf, df;
    memcpy(&nf, &nb, 4);
    memcpy(&df, &db, 4);
    nf *= 0x1p-112f;
    df -= 0.5f;
    uint32_t nbits, dbits;
    memcpy(&nbits, &nf, 4);
    memcpy(&dbits, &df, 4);
    uint32_t bits = sign | (two_w < (1u << 27) ? dbits : nbits);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float sd_f16_to_f32_ref(uint16_t h) { return f16_to_f32_naive(h); }

uint16_t sd_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) {  /* inf or nan; keep nan quiet and non-zero */
        if (absx == 0x7f800000u) return sign | 0x7c00u;
        return (uint16_t)(sign | 0x7e00u | ((absx >> 13) & 0x3ffu));
    }
    if (absx >= 0x477ff000u) return sign | 0x7c00u;  /* rounds to >= 65520: inf */
    if (absx < 0x38800000u) {
        /* Result is subnormal (or zero) in f16: value / 2^-24 rounded RNE. */
        if (absx < 0x33000000u) return sign;  /* < 2^-25: rounds to zero */
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e;  /* bring to units of 2^-24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);  /* q may carry into the smallest normal: correct */
    }
    /* Normal: rebias and round the 13 dropped bits to nearest even. */
    uint32_t r = absx - 0x38000000u;  /* exponent 127 -> 15 */
    uint32_t q = r >> 13;
    uint32_t rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

float sd_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t sd_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);  /* quiet nan */
    x += 0x7fffu + ((x >> 16) & 1u);  /* round to nearest even; overflow -> inf is right */
    return (uint16_t)(x >> 16);
}

/* ---------------------------------------------------- row conversions */

void sd_ggml_to_f32(uint32_t type, const void *src, float *dst, int64_t n) {
    /* src: n elements of type (n a multiple of the block size); dst: (n,) f32 */
    const uint8_t *s = (const uint8_t *)src;
    switch (type) {
    case SD_GGML_F32:
        memcpy(dst, s, (size_t)n * 4);
        return;
    case SD_GGML_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = sd_f16_to_f32(h);
        }
        return;
    case SD_GGML_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = sd_bf16_to_f32(h);
        }
        return;
    default:
        if (sd_ggml_is_supported(type)) { /* the block formats: quant.c defines their values */
            sd_quant_dequant(type, s, dst, n);
            return;
        }
        /* Not computable: make any accidental use loud rather than plausible. */
        for (int64_t i = 0; i < n; i++) dst[i] = NAN;
        return;
    }
}

void sd_ggml_from_f32(uint32_t type, const float *src, void *dst, int64_t n) {
    /* src: (n,) f32; dst: n elements of type (n a multiple of the block size) */
    uint8_t *d8 = (uint8_t *)dst;
    switch (type) {
    case SD_GGML_F32:
        memcpy(d8, src, (size_t)n * 4);
        return;
    case SD_GGML_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = sd_f32_to_f16(src[i]);
            memcpy(d8 + 2 * i, &h, 2);
        }
        return;
    case SD_GGML_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = sd_f32_to_bf16(src[i]);
            memcpy(d8 + 2 * i, &h, 2);
        }
        return;
    default:
        if (sd_ggml_is_supported(type)) { /* block formats: quant.c's quantisers */
            sd_quant_quantize(type, src, d8, n);
            return;
        }
        memset(d8, 0, (size_t)sd_ggml_type_size(type, (uint64_t)n));
        return;
    }
}
