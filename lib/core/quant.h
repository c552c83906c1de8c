/* quant.h -- ggml's block-quantised weight formats: layouts, the exact
 * dequantisation that defines each format's values, and quantisers.
 *
 * A quantised row of n elements is n / QK consecutive blocks of QK elements
 * (QK = 32 for the legacy formats, 256 for the K-quant "super-blocks").
 * Multi-byte fields are little-endian; "f16" is an IEEE half.
 * The layouts (field order as stored, bytes in brackets):
 *
 *   Q4_0   [18]  f16 d, u8 qs[16]             x[j] = d * (q[j] - 8)
 *   Q4_1   [20]  f16 d, f16 m, u8 qs[16]      x[j] = d * q[j] + m
 *   Q5_0   [22]  f16 d, u8 qh[4], u8 qs[16]   x[j] = d * (q[j] - 16)
 *   Q5_1   [24]  f16 d, f16 m, u8 qh[4], u8 qs[16]   x[j] = d * q[j] + m
 *   Q8_0   [34]  f16 d, i8 qs[32]             x[j] = d * qs[j]
 *   IQ4_NL [18]  f16 d, u8 qs[16]             x[j] = d * K[q[j]]
 *     4-bit codes: element j < 16 is the low nibble of qs[j], element
 *     j + 16 the high nibble. Q5_*: the fifth bit of element j is bit j of
 *     the little-endian u32 qh. K = {-127,-104,-83,-65,-49,-35,-22,-10,1,13,
 *     25,38,53,69,89,113} (a non-uniform 16-level grid).
 *
 * K-quants, 256 elements in sub-blocks of 16 or 32 with their own scales:
 *   Q2_K [84]  u8 scales[16], u8 qs[64], f16 d, f16 dmin
 *       16 sub-blocks of 16; scales[s] = sc | m << 4 (4 bits each);
 *       x = d*sc * q - dmin*m, q 2-bit.
 *   Q3_K [110] u8 hmask[32], u8 qs[64], u8 scales[12], f16 d
 *       16 sub-blocks of 16; 6-bit scales stored with a bias of 32;
 *       x = d*(sc - 32) * (q - 4), q 3-bit = 2 low bits + 1 high bit, where
 *       a set high bit means "+4" (the stored bit is the complement of a
 *       "subtract 4" flag).
 *   Q4_K [144] f16 d, f16 dmin, u8 scales[12], u8 qs[128]
 *       8 sub-blocks of 32; 6-bit scale sc and 6-bit min m per sub-block;
 *       x = d*sc * q - dmin*m, q 4-bit.
 *   Q5_K [176] f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128]
 *       as Q4_K with q 5-bit (fifth bit in qh).
 *   Q6_K [210] u8 ql[128], u8 qh[64], i8 scales[16], f16 d
 *       16 sub-blocks of 16; x = d*sc * (q - 32), q 6-bit = 4 low bits in
 *       ql + 2 high bits in qh.
 *   Q8_K [292] f32 d, i8 qs[256], i16 bsums[16]   x = d * qs (bsums[g] =
 *       sum of qs[16g .. 16g+15]; ggml uses it for activations only)
 *   IQ4_XS [136] f16 d, u16 scales_h, u8 scales_l[4], u8 qs[128]
 *       8 sub-blocks of 32, 6-bit scale ls = 4 bits from scales_l + 2 from
 *       scales_h; x = d*(ls - 32) * K[q], q a 4-bit index into K.
 * Where each bit of the K-quants sits (which nibble, shift and mask bit
 * belongs to which element) is spelled out in quant.c beside the
 * dequantiser, and in docs/FORMATS.md.
 *
 * Arithmetic (what "exact" means): every dequantiser computes in f32 with
 * one rounding per operation, in the order of the formulas above, products
 * grouped left to right: d*sc is rounded first, then times q, then the min
 * term is subtracted. No fused multiply-add. tests/ref/quant_ref.py does
 * the same in NumPy and the fixtures it writes must match bit for bit.
 */
#ifndef SD_CORE_QUANT_H
#define SD_CORE_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "core/numfmt.h" /* SD_GGML_* type numbers, block sizes, f16 */

/* 1 if type is one of the block formats above (Q4_0 .. IQ4_XS, Q8_K);
 * their block sizes and bytes are numfmt.h's table. */
int sd_quant_is_block(uint32_t type);

/* src: n elements of type (n a multiple of the block; src may be
 * unaligned) -> dst[n] f32. The reference that defines the values; the
 * vectorised dequantisers in nn/qgemm.c must equal it bit for bit. */
void sd_quant_dequant(uint32_t type, const void *src, float *dst, int64_t n);

/* src[n] f32 -> n elements of type; n a multiple of the block. Finite
 * inputs (a non-finite input gives a block of zeros... see quant.c).
 * The algorithm per family is described in quant.c and docs/FORMATS.md;
 * every block's squared error is at most that of the simple rule (scale
 * from the block's largest magnitude, round to nearest) -- the search
 * starts from that rule and only accepts improvements. */
void sd_quant_quantize(uint32_t type, const float *src, void *dst, int64_t n);

/* Index of the first block of src (n elements of type) whose stored
 * scales are not finite (an f16/f32 inf or NaN), or -1 if all are: such a
 * block dequantises to NaN or inf and is refused by the loader. */
int64_t sd_quant_find_bad_block(uint32_t type, const void *src, int64_t n);

/* The IQ4_NL / IQ4_XS grid. */
extern const int8_t sd_iq4_grid[16];

/* 6-bit scale and min j (0..7) of a Q4_K/Q5_K scales[12] field: bytes 0-3
 * hold sc[0..3] in bits 0-5 and the top 2 bits of sc[4..7] in bits 6-7;
 * bytes 4-7 the same for the mins; bytes 8-11 hold the low 4 bits of
 * sc[4..7] (bits 0-3) and of m[4..7] (bits 4-7). Inline: every K-quant
 * kernel reads it per block. */
static inline void sd_quant_k4_scale_min(const uint8_t *s, int j, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}
/* 6-bit biased scale i (0..15) of a Q3_K scales[12] field (0..63; the
 * signed scale is the value minus 32): its low 4 bits are the low (i < 8)
 * or high (i >= 8) nibble of byte i % 8, its top 2 bits are bits
 * 2*(i/4), 2*(i/4)+1 of byte 8 + i % 4. */
static inline int sd_quant_q3k_scale(const uint8_t *s, int i) {
    int lo = i < 8 ? s[i] & 15 : s[i - 8] >> 4;
    int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    return lo | hi << 4;
}

#endif
