#!/usr/bin/env python3
"""Independent NumPy dequantiser for ggml's block formats, and the fixture
tests/data/quant_ref.bin that tests/test_quant.c checks smdiff against
(bit for bit).

Written from the public format descriptions (the GGUF documentation and
ggml's block layouts), not from smdiff's C code: each format is described
here as "which byte and which bits hold element e" and decoded for all
blocks at once with NumPy gathers.

Arithmetic: float32 throughout, one rounding per operation, in the order
of the format's formula (for the K-quants: d*sc first, then times q, then
minus dmin*m). NumPy float32 ops never fuse a multiply and an add.

Fixture (little-endian):
  "SDQF" u32 version=1 u32 n_entries
  per entry: u32 ggml_type, u32 n_blocks, u32 block_bytes, u32 block_elems,
             block bytes [n_blocks * block_bytes], f32 values [n_blocks * block_elems]
The blocks are random bytes (every bit pattern of the codes and packed
scales occurs), with the f16/f32 scale fields set to random finite values
(normal and subnormal f16, zero, both signs). Deterministic (seed 15).
Run: /usr/bin/python3 tests/ref/quant_ref.py
"""
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "quant_ref.bin")
F32 = np.float32

GRID = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], dtype=np.int32)


def f16(b, off):
    """f16 field at byte offset off of each block (rows of b) -> float32."""
    return b[:, off:off + 2].copy().view("<f2").astype(F32)[:, 0]


def u16(b, off):
    return b[:, off:off + 2].copy().view("<u2").astype(np.int64)[:, 0]


def u32(b, off):
    return b[:, off:off + 4].copy().view("<u4").astype(np.int64)[:, 0]


def bits(b, byte_idx, shift, width):
    """Per block: (b[:, byte_idx[e]] >> shift[e]) & (2^width - 1) for every element e."""
    return (b[:, byte_idx].astype(np.int64) >> shift) & ((1 << width) - 1)


def nibbles32(qs):
    """Legacy 32-blocks: element j < 16 = low nibble of qs[j], j >= 16 = high nibble of qs[j-16]."""
    j = np.arange(32)
    return (qs[:, j % 16].astype(np.int64) >> (4 * (j // 16))) & 15


def high_bits32(qh):
    """Bit j of the little-endian u32 qh, for j = 0..31."""
    return (qh[:, None] >> np.arange(32)) & 1


# ---------------------------------------------------------- legacy formats

def dq_q4_0(b):
    d = f16(b, 0)
    q = nibbles32(b[:, 2:18]) - 8
    return q.astype(F32) * d[:, None]


def dq_q4_1(b):
    d, m = f16(b, 0), f16(b, 2)
    q = nibbles32(b[:, 4:20])
    return q.astype(F32) * d[:, None] + m[:, None]


def dq_q5_0(b):
    d = f16(b, 0)
    q = (nibbles32(b[:, 6:22]) | (high_bits32(u32(b, 2)) << 4)) - 16
    return q.astype(F32) * d[:, None]


def dq_q5_1(b):
    d, m = f16(b, 0), f16(b, 2)
    q = nibbles32(b[:, 8:24]) | (high_bits32(u32(b, 4)) << 4)
    return q.astype(F32) * d[:, None] + m[:, None]


def dq_q8_0(b):
    d = f16(b, 0)
    return b[:, 2:34].view(np.int8).astype(F32) * d[:, None]


def dq_iq4_nl(b):
    d = f16(b, 0)
    return d[:, None] * GRID[nibbles32(b[:, 2:18])].astype(F32)


# ---------------------------------------------------------------- K-quants
# Element e of a 256-block, with h = e // 128 (half), k = (e % 128) // 32,
# t = (e % 32) // 16, l = e % 16 for the 16-element sub-block layouts.
E = np.arange(256)
H, K, T, L16 = E // 128, (E % 128) // 32, (E % 32) // 16, E % 16


def q2_fields():
    """Q2_K/Q3_K 2-bit field: bits 2k of qs[32h + 16t + l]; sub-block 8h + 2k + t."""
    return 32 * H + 16 * T + L16, 2 * K, 8 * H + 2 * K + T


def dq_q2_k(b):
    d, dmin = f16(b, 80), f16(b, 82)
    byte, shift, sub = q2_fields()
    q = bits(b, 16 + byte, shift, 2)
    sc = b[:, sub].astype(np.int64)
    dl = d[:, None] * (sc & 15).astype(F32)
    ml = dmin[:, None] * (sc >> 4).astype(F32)
    return dl * q.astype(F32) - ml


def q3k_scales(s):
    """Q3_K's 16 6-bit scales from scales[12] (values 0..63, bias 32):
    scale i: low 4 bits = low nibble of s[i] (i < 8) or high nibble of s[i-8];
    top 2 bits = bits 2*(i//4) of s[8 + i % 4]."""
    i = np.arange(16)
    lo = (s[:, i % 8].astype(np.int64) >> (4 * (i // 8))) & 15
    hi = (s[:, 8 + i % 4].astype(np.int64) >> (2 * (i // 4))) & 3
    return lo | (hi << 4)


def dq_q3_k(b):
    d = f16(b, 108)
    byte, shift, sub = q2_fields()
    q = bits(b, 32 + byte, shift, 2)
    # high bit: bit 4h + k of hmask[16t + l]; clear means "minus 4"
    hbit = bits(b, 16 * T + L16, 4 * H + K, 1)
    val = q - 4 * (1 - hbit)
    sc = q3k_scales(b[:, 96:108])[:, sub] - 32
    dl = d[:, None] * sc.astype(F32)
    return dl * val.astype(F32)


def k4_scale_min(s):
    """Q4_K/Q5_K 6-bit scales and mins (8 each) from scales[12]:
    j < 4: sc = s[j] & 63, m = s[j+4] & 63;
    j >= 4: sc = (s[j+4] & 15) | (s[j-4] >> 6) << 4, m = (s[j+4] >> 4) | (s[j] >> 6) << 4."""
    s = s.astype(np.int64)
    sc = np.empty((s.shape[0], 8), np.int64)
    m = np.empty((s.shape[0], 8), np.int64)
    for j in range(8):
        if j < 4:
            sc[:, j] = s[:, j] & 63
            m[:, j] = s[:, j + 4] & 63
        else:
            sc[:, j] = (s[:, j + 4] & 15) | ((s[:, j - 4] >> 6) << 4)
            m[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
    return sc, m


# Q4_K/Q5_K: element e = 64g + 32u + l -> nibble u of qs[32g + l]; sub-block 2g + u;
# Q5_K's fifth bit: bit 2g + u of qh[l].
G4, U4, L32 = E // 64, (E % 64) // 32, E % 32


def dq_q45_k(b, five):
    d, dmin = f16(b, 0), f16(b, 2)
    sc, m = k4_scale_min(b[:, 4:16])
    qs0 = 48 if five else 16
    q = bits(b, qs0 + 32 * G4 + L32, 4 * U4, 4)
    if five:
        q = q | (bits(b, 16 + L32, 2 * G4 + U4, 1) << 4)
    sub = 2 * G4 + U4
    dl = d[:, None] * sc[:, sub].astype(F32)
    ml = dmin[:, None] * m[:, sub].astype(F32)
    return dl * q.astype(F32) - ml


def dq_q6_k(b):
    # element e = 128h + 32c + l: low 4 bits = nibble (c // 2) of ql[64h + 32(c % 2) + l],
    # top 2 bits = bits 2c of qh[32h + l]; sub-block 8h + 2c + l // 16.
    c, l = (E % 128) // 32, E % 32
    lo = bits(b, 64 * H + 32 * (c % 2) + l, 4 * (c // 2), 4)
    hi = bits(b, 128 + 32 * H + l, 2 * c, 2)
    q = (lo | (hi << 4)) - 32
    sc = b[:, 192:208].view(np.int8).astype(np.int64)[:, 8 * H + 2 * c + l // 16]
    d = f16(b, 208)
    return (d[:, None] * sc.astype(F32)) * q.astype(F32)


def dq_q8_k(b):
    d = b[:, 0:4].copy().view("<f4").astype(F32)[:, 0]
    return d[:, None] * b[:, 4:260].view(np.int8).astype(F32)


def dq_iq4_xs(b):
    # sub-block i = e // 32: ls = nibble (i % 2) of scales_l[i // 2] | bits 2i of scales_h << 4;
    # element 32i + 16u + j = nibble u of qs[16i + j].
    d = f16(b, 0)
    i, u, j = E // 32, (E % 32) // 16, E % 16
    lo = bits(b, 4 + i // 2, 4 * (i % 2), 4)
    hi = (u16(b, 2)[:, None] >> (2 * i)) & 3
    ls = lo | (hi << 4)
    dl = d[:, None] * (ls - 32).astype(F32)
    q = bits(b, 8 + 16 * i + j, 4 * u, 4)
    return dl * GRID[q].astype(F32)


# (ggml type, block elems, block bytes, offsets of f16 scale fields, dequantiser)
TYPES = [
    (2, 32, 18, [0], dq_q4_0),
    (3, 32, 20, [0, 2], dq_q4_1),
    (6, 32, 22, [0], dq_q5_0),
    (7, 32, 24, [0, 2], dq_q5_1),
    (8, 32, 34, [0], dq_q8_0),
    (10, 256, 84, [80, 82], dq_q2_k),
    (11, 256, 110, [108], dq_q3_k),
    (12, 256, 144, [0, 2], lambda b: dq_q45_k(b, False)),
    (13, 256, 176, [0, 2], lambda b: dq_q45_k(b, True)),
    (14, 256, 210, [208], dq_q6_k),
    (15, 256, 292, [], dq_q8_k),
    (20, 32, 18, [0], dq_iq4_nl),
    (23, 256, 136, [0], dq_iq4_xs),
]


def random_scales(rng, n):
    """Finite f16 scales: mostly normal of both signs, some subnormal and zero."""
    v = (rng.uniform(1e-3, 2.0, n) * rng.choice([-1.0, 1.0], n)).astype(np.float16)
    sub = rng.random(n) < 0.1
    v[sub] = (rng.integers(1, 1024, sub.sum()).astype(np.uint16)).view(np.float16)
    v[rng.random(n) < 0.05] = 0
    return v


def main():
    rng = np.random.default_rng(15)
    out = bytearray(b"SDQF" + struct.pack("<II", 1, len(TYPES)))
    for gtype, elems, nbytes, scale_offs, fn in TYPES:
        nb = 24 if elems == 32 else 12
        b = rng.integers(0, 256, (nb, nbytes), dtype=np.uint8)
        for off in scale_offs:
            b[:, off:off + 2] = random_scales(rng, nb).view(np.uint8).reshape(nb, 2)
        if gtype == 15:  # Q8_K: f32 d
            b[:, 0:4] = rng.uniform(-0.1, 0.1, nb).astype("<f4").view(np.uint8).reshape(nb, 4)
        y = fn(b)
        assert y.dtype == F32 and y.shape == (nb, elems), (gtype, y.dtype, y.shape)
        assert np.all(np.isfinite(y))
        out += struct.pack("<IIII", gtype, nb, nbytes, elems) + b.tobytes() + y.astype("<f4").tobytes()
    with open(OUT, "wb") as f:
        f.write(out)
    print(f"wrote {OUT} ({len(out)} bytes, {len(TYPES)} types)")


if __name__ == "__main__":
    main()
