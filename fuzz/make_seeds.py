#!/usr/bin/env python3
"""Write the committed seed corpus for the libFuzzer targets (small valid
GGUF files of each feature, and small safetensors files). Deterministic.
Run: /usr/bin/python3 fuzz/make_seeds.py"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, t, payload):
    return s(key) + struct.pack("<I", t) + payload


def gguf(version, kvs, tensors, align=32):
    """tensors: list of (name, dims, type, data bytes)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    off = 0
    infos = b""
    for name, dims, typ, data in tensors:
        infos += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", typ, off)
        off += (len(data) + align - 1) // align * align
    out += infos
    out += b"\0" * ((-len(out)) % align)
    for _, _, _, data in tensors:
        out += data + b"\0" * ((-len(data)) % align)
    return out


# Every block format smdiff computes with: (ggml type, block elements,
# block bytes, offsets of its f16 scales). Bytes are pseudo-random (a fixed
# LCG), the scales set to 0.5 so the values are finite; one tensor per
# type of two rows of two blocks.
QUANT = [(2, 32, 18, [0]), (3, 32, 20, [0, 2]), (6, 32, 22, [0]), (7, 32, 24, [0, 2]), (8, 32, 34, [0]),
         (10, 256, 84, [80, 82]), (11, 256, 110, [108]), (12, 256, 144, [0, 2]), (13, 256, 176, [0, 2]),
         (14, 256, 210, [208]), (20, 32, 18, [0]), (23, 256, 136, [0])]


def quant_tensors():
    x = 12345
    out = []
    for typ, elems, nbytes, scales in QUANT:
        data = bytearray()
        for _ in range(4):
            blk = bytearray()
            for _ in range(nbytes):
                x = (x * 1103515245 + 12345) & 0x7FFFFFFF
                blk.append(x >> 16 & 255)
            for off in scales:
                blk[off:off + 2] = struct.pack("<H", 0x3800)
            data += blk
        out.append(("q%d" % typ, [2 * elems, 2], typ, bytes(data)))
    return out


def main():
    d = os.path.join(HERE, "corpus", "fuzz_gguf")
    os.makedirs(d, exist_ok=True)
    every = [
        kv("general.architecture", 8, s("dream")),
        kv("u8", 0, b"\x07"), kv("i8", 1, b"\xf9"), kv("u16", 2, struct.pack("<H", 600)),
        kv("i16", 3, struct.pack("<h", -600)), kv("u32", 4, struct.pack("<I", 70000)),
        kv("i32", 5, struct.pack("<i", -70000)), kv("f32", 6, struct.pack("<f", 0.5)),
        kv("bool", 7, b"\x01"), kv("u64", 10, struct.pack("<Q", 1 << 40)),
        kv("i64", 11, struct.pack("<q", -(1 << 40))), kv("f64", 12, struct.pack("<d", 1e-6)),
        kv("arr_str", 9, struct.pack("<IQ", 8, 3) + s("a") + s("") + s("Ġt he")),
        kv("arr_i32", 9, struct.pack("<IQ", 5, 3) + struct.pack("<3i", 1, 3, 5)),
        kv("arr_f32", 9, struct.pack("<IQ", 6, 2) + struct.pack("<2f", 1.5, -2)),
        kv("arr_bool", 9, struct.pack("<IQ", 7, 2) + b"\x00\x01"),
    ]
    f16 = struct.pack("<8H", *([0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00, 0x7E00, 0x8000, 0x3555]))
    f32 = struct.pack("<8f", *range(8))
    bf16 = struct.pack("<8H", *([0x3F80] * 8))
    q8 = struct.pack("<H", 0x3800) + bytes(range(32))
    seeds = {
        "v3_every_type": gguf(3, every, [("w.f16", [8], 1, f16), ("w.f32", [4, 2], 0, f32),
                                         ("w.bf16", [8], 30, bf16), ("w.q8", [32], 8, q8)]),
        "v2_empty": gguf(2, [], []),
        "v3_kv_only": gguf(3, every[:3], []),
        "v3_align64": gguf(3, [kv("general.alignment", 4, struct.pack("<I", 64))],
                           [("a", [8], 0, f32), ("b", [8], 1, f16)], align=64),
        "v3_q6k": gguf(3, [], [("k", [256], 14, bytes(210))]),
        "v3_quant_types": gguf(3, [kv("general.architecture", 8, s("dream"))], quant_tensors()),
    }
    for name, data in seeds.items():
        with open(os.path.join(d, name + ".gguf"), "wb") as f:
            f.write(data)

    d = os.path.join(HERE, "corpus", "fuzz_safetensors")
    os.makedirs(d, exist_ok=True)
    data = os.path.join(HERE, "..", "tests", "data")
    shutil.copy(os.path.join(data, "st_misc.safetensors"), os.path.join(d, "st_misc.safetensors"))
    h = b'{"x":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}}'
    with open(os.path.join(d, "bf16_small.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"\x80\x3f" * 4)
    with open(os.path.join(d, "empty_object.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", 2) + b"{}")


if __name__ == "__main__":
    main()
