#!/usr/bin/env python3
"""Write tests/data/gguf_ref.gguf with an independent GGUF writer (struct +
NumPy, no gguf package) for tests/test_gguf.c:
  * the C reader must read back every value written here;
  * the C writer, given the same keys and the f32 source, must produce a
    byte-identical file -- which checks smdiff's f16 (NumPy's float16, round
    to nearest even), bf16 (bit arithmetic here) and Q8_0 (ggml's reference
    quantiser re-implemented in NumPy) encoders, the alignment and padding.

Layout rules (GGUF v3, as llama.cpp's gguf-py writes): header, key/values,
tensor infos, zero padding to 32, each tensor's data followed by zero
padding to 32. Deterministic (seed 7).

The last two keys are smdiff's checksum (docs/FORMATS.md, "Checksums"):
"smdiff.checksum_algorithm" = "xxh3_64", then a uint64 "smdiff.checksum"
holding the XXH3-64 hash of the whole file with its own 8 value bytes as zeros, computed here with the Python xxhash module (Debian
python3-xxhash), independently of the C library's use of libxxhash.
Run: /usr/bin/python3 tests/ref/make_gguf_fixture.py
"""
import os
import struct

import numpy as np
import xxhash

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "gguf_ref.gguf")
ALIGN = 32


def s(x):
    b = x.encode("utf-8") if isinstance(x, str) else x
    return struct.pack("<Q", len(b)) + b


def bf16_bits(x):
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def q8_0(x):
    """ggml's quantize_row_q8_0_ref in f32 arithmetic: d = amax/127 (f32),
    stored as f16; q = roundf(x * (1/d)), half away from zero."""
    x = np.asarray(x, dtype=np.float32).reshape(-1, 32)
    out = bytearray()
    for blk in x:
        amax = np.float32(np.max(np.abs(blk)))
        d = np.float32(amax / np.float32(127.0))
        idv = np.float32(np.float32(1.0) / d) if d != 0 else np.float32(0.0)
        v = (blk * idv).astype(np.float32).astype(np.float64)  # product rounded in f32, like C
        q = np.sign(v) * np.floor(np.abs(v) + 0.5)
        out += np.float16(d).tobytes() + q.astype(np.int8).tobytes()
    return bytes(out)


def main():
    rng = np.random.default_rng(7)
    src = (rng.standard_normal((3, 64)) * 2.0).astype(np.float32)
    # Values that exercise f16 edge cases: subnormal, overflow to inf, -0, ties.
    src[0, :8] = [1e-6, -3e-7, 70000.0, -0.0, 65520.0, 1.0 + 2.0 ** -11, 6.1e-5, 2.0 ** -25]
    src[1, 32:64] = 0.0  # an all-zero Q8_0 block (d = 0)

    kvs = [
        ("general.architecture", 8, s("dream")),
        ("ref.u8", 0, struct.pack("<B", 200)),
        ("ref.i8", 1, struct.pack("<b", -100)),
        ("ref.u16", 2, struct.pack("<H", 60000)),
        ("ref.i16", 3, struct.pack("<h", -30000)),
        ("ref.u32", 4, struct.pack("<I", 4000000000)),
        ("ref.i32", 5, struct.pack("<i", -2000000000)),
        ("ref.f32", 6, struct.pack("<f", 0.1)),
        ("ref.bool", 7, struct.pack("<B", 1)),
        ("ref.str", 8, s("h\u00e9llo")),
        ("ref.u64", 10, struct.pack("<Q", 2 ** 64 - 1)),
        ("ref.i64", 11, struct.pack("<q", -(2 ** 40))),
        ("ref.f64", 12, struct.pack("<d", 3.141592653589793)),
        ("ref.arr_str", 9, struct.pack("<IQ", 8, 3) + s("x") + s("") + s("hello world")),
        ("ref.arr_i32", 9, struct.pack("<IQ", 5, 3) + struct.pack("<3i", -1, 2, -3)),
        ("ref.arr_f32", 9, struct.pack("<IQ", 6, 2) + struct.pack("<2f", 0.5, -1.25)),
    ]
    with np.errstate(over="ignore"):  # 70000 -> f16 inf on purpose
        f16 = src.astype("<f2").tobytes()
    tensors = [
        ("t.f32", 0, src.astype("<f4").tobytes()),
        ("t.f16", 1, f16),
        ("t.bf16", 30, bf16_bits(src).astype("<u2").tobytes()),
        ("t.q8_0", 8, q8_0(src)),
    ]
    kvs.append(("smdiff.checksum_algorithm", 8, s("xxh3_64")))
    kvs.append(("smdiff.checksum", 10, struct.pack("<Q", 0)))
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += s(k) + struct.pack("<I", t) + v
    checksum_at = len(out) - 8  # the last key's value
    off = 0
    for name, typ, data in tensors:
        out += s(name) + struct.pack("<I", 2) + struct.pack("<QQ", 64, 3) + struct.pack("<IQ", typ, off)
        off += (len(data) + ALIGN - 1) // ALIGN * ALIGN
    out += b"\0" * ((-len(out)) % ALIGN)
    for _, _, data in tensors:
        out += data + b"\0" * ((-len(data)) % ALIGN)
    digest = xxhash.xxh3_64_intdigest(out)  # the value bytes are still zero
    out = out[:checksum_at] + struct.pack("<Q", digest) + out[checksum_at + 8:]
    with open(OUT, "wb") as f:
        f.write(out)
    print("wrote", os.path.normpath(OUT), len(out), "bytes")


if __name__ == "__main__":
    main()
