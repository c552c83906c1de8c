#!/usr/bin/python3
"""Tiny models stored in every quantised weight type, and the logits the
independent reference computes for them (tests/test_quant.c checks smdiff
against these).

The weights of the models made here ARE quantised blocks: random code bits
with their scale fields set so that each tensor's values have a chosen size
(quant_ref.py's dequantisers define the values, so nothing here quantises
and no C code is involved). Models:

  tiny_dream_<t>.gguf   t = q4_0 q4_1 q5_0 q5_1 iq4_nl: tiny_models.py's
                        d = 32 dream shape (rows of 32-element blocks)
  tiny_llada_q4_0.gguf  the d = 32 llada shape (Q/K rows stored permuted,
                        as llama.cpp's converter does)
  tiny_dreamq_<t>.gguf  t = q2_k q3_k q4_k q5_k q6_k iq4_xs: d = 256 (the
                        K-quants' super-blocks), one layer, vocabulary 64
  tiny_dreamq_mix.gguf  two layers whose matrices are each of another type
                        (every block format, F16 and BF16), as the
                        _S/_M recipes mix types per tensor

For each of those, for the existing tiny_<arch>_q8_0.gguf (tiny_models.py)
and for the files made by llama.cpp's quantiser (tests/data/SOURCES.md),
the reference reads the file, dequantises every tensor with quant_ref.py
and runs tiny_models.forward on the token canvas <ids>:

  <stem>.logits.f32       float64 forward on the dequantised weights (what
                          smdiff computes when it dequantises panels for the
                          f32 GEMM: many rows)
  <stem>.qact.logits.f32  the same, but before each product with a
                          block-quantised matrix the activations are rounded
                          as the few-row integer kernels round them (per
                          block of 32 -- 256 for the K-quants and IQ4_XS --
                          d = amax/127 and q = round-half-even(x * 127/amax)
                          in float32; nn/qgemm.h), the product then exact

The canvases: tiny_<arch>_ids.i32 (tiny_models.py) for the d = 32 models,
tiny_dreamq_ids.i32 and tiny_dreamk_ids.i32 (written here) for the others.

  source PATH   only write the F32 `tiny_dreamk` model (d = 256, seed 5678)
                that llama.cpp's quantiser was run on (not committed)

Run: /usr/bin/python3 tests/ref/quant_models.py   (deterministic)
"""
import os
import shutil
import struct
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quant_ref  # noqa: E402
import tiny_models  # noqa: E402

OUT = tiny_models.OUT
F32 = np.float32

DREAMK = dict(vocab=160, d=256, layers=1, heads=4, kv_heads=2, ffn=256, ctx=64,
              rope_base=1.0e6, eps=1e-6, mask_id=158, bos=0, eos=1, pad=2, bias=True,
              shift=True, seed=5678)
DREAMQ = dict(vocab=64, d=256, layers=1, heads=4, kv_heads=1, ffn=256, ctx=64,
              rope_base=1.0e6, eps=1e-6, mask_id=62, bos=0, eos=1, pad=2, bias=True,
              shift=True, seed=2468)

# ggml type numbers
T_F32, T_F16, T_BF16 = 0, 1, 30
T = dict(q4_0=2, q4_1=3, q5_0=6, q5_1=7, q8_0=8, q2_k=10, q3_k=11, q4_k=12, q5_k=13, q6_k=14,
         iq4_nl=20, iq4_xs=23)
QTYPES = {t[0]: t for t in quant_ref.TYPES}  # ggml type -> (type, elems, bytes, scale offs, dq)

# Which f16 fields scale the values (d) and which subtract or add an offset
# (min), with the offset's size relative to d that centres the values:
# Q4_1/Q5_1 add m (-7.5 d, -15.5 d); the K-quants subtract dmin * m with
# E[m] = 7.5 (Q2_K) or 31.5 (Q4_K, Q5_K) against E[sc q].
FIELDS = {2: ([0], None), 3: ([0], (2, -7.5)), 6: ([0], None), 7: ([0], (2, -15.5)),
          8: ([0], None), 10: ([80], (82, 1.5)), 11: ([108], None), 12: ([0], (2, 7.5)),
          13: ([0], (2, 15.5)), 14: ([208], None), 20: ([0], None), 23: ([0], None)}


# ------------------------------------------------------------- weights

def put_f16(b, off, v):
    b[:, off:off + 2] = np.asarray(v, dtype=np.float16).view(np.uint8).reshape(-1, 2)


def random_blocks(rng, gtype, rows, cols, rms):
    """rows x cols of a block type: random code bits, scales drawn so the
    values' root mean square is about rms. Returns (bytes, float32 values)."""
    _, elems, nbytes, _, dq = QTYPES[gtype]
    nb = rows * cols // elems
    b = rng.integers(0, 256, (nb, nbytes), dtype=np.uint8)
    u = rng.uniform(0.5, 1.5, nb)
    d_offs, mn = FIELDS[gtype]

    def fill(c):
        for off in d_offs:
            put_f16(b, off, c * u)
        if mn:
            put_f16(b, mn[0], c * u * mn[1] * rng_min)
        return dq(b)

    rng_min = rng.uniform(0.8, 1.2, nb)
    c = rms / float(np.sqrt(np.mean(fill(1.0).astype(np.float64) ** 2)))
    y = fill(c)
    assert np.all(np.isfinite(y))
    return b.tobytes(), y.reshape(rows, cols)


def random_matrix(rng, gtype, rows, cols, rms):
    if gtype in QTYPES:
        return random_blocks(rng, gtype, rows, cols, rms)
    a = (rng.standard_normal((rows, cols)) * rms).astype(F32)
    if gtype == T_F32:
        return a.tobytes(), a
    if gtype == T_F16:
        h = a.astype(np.float16)
        return h.tobytes(), h.astype(F32)
    b = tiny_models.bf16_round(a)
    return b.tobytes(), (b.astype(np.uint32) << 16).view(F32).reshape(a.shape)


def permute_rows(a, n_head):
    return tiny_models.llama_cpp_permute(a, n_head)


def make_model(path, arch, c, types, seed):
    """types(name) -> ggml type of each matrix; norms and biases F32."""
    rng = np.random.default_rng(seed)
    d, hd = c["d"], c["d"] // c["heads"]
    qd, kd = c["heads"] * hd, c["kv_heads"] * hd
    tensors = []

    def mat(name, rows, cols, rms):
        # (a llada Q/K matrix is random rows either way; the reference undoes
        # the permutation the llada format implies when it reads the file)
        data, _ = random_matrix(rng, types(name), rows, cols, rms)
        tensors.append((name, [cols, rows], types(name), data))

    def vec(name, n, mean, std):
        a = (mean + rng.standard_normal(n) * std).astype(F32)
        tensors.append((name, [n], T_F32, a.tobytes()))

    # Matrices of rms 0.15 * sqrt(32 / d): the products keep tiny_models.py's
    # d = 32 sizes at any width, so attention stays soft (scores of a few
    # units) and the logits depend smoothly on the weights and activations.
    s = 0.15 * (32.0 / d) ** 0.5
    mat("token_embd.weight", c["vocab"], d, 1.0)
    for i in range(c["layers"]):
        p = f"blk.{i}."
        vec(p + "attn_norm.weight", d, 1.0, 0.1)
        mat(p + "attn_q.weight", qd, d, s)
        mat(p + "attn_k.weight", kd, d, s)
        mat(p + "attn_v.weight", kd, d, s)
        if c["bias"]:
            vec(p + "attn_q.bias", qd, 0.0, 0.1)
            vec(p + "attn_k.bias", kd, 0.0, 0.1)
            vec(p + "attn_v.bias", kd, 0.0, 0.1)
        mat(p + "attn_output.weight", d, qd, s)
        vec(p + "ffn_norm.weight", d, 1.0, 0.1)
        mat(p + "ffn_gate.weight", c["ffn"], d, s)
        mat(p + "ffn_up.weight", c["ffn"], d, s)
        mat(p + "ffn_down.weight", d, c["ffn"], s)
    vec("output_norm.weight", d, 1.0, 0.1)
    mat("output.weight", c["vocab"], d, 0.2 * (32.0 / d) ** 0.5)
    tiny_models.write_gguf(path, tiny_models.kvs_of(arch, c, os.path.basename(path)), tensors)


MIX = {"token_embd": T["q4_k"], "output": T["q6_k"],
       "blk.0.attn_q": T["q5_k"], "blk.0.attn_k": T["q3_k"], "blk.0.attn_v": T["q6_k"],
       "blk.0.attn_output": T["q4_0"], "blk.0.ffn_gate": T["q2_k"], "blk.0.ffn_up": T["iq4_xs"],
       "blk.0.ffn_down": T["q5_1"],
       "blk.1.attn_q": T["q4_1"], "blk.1.attn_k": T_F16, "blk.1.attn_v": T_BF16,
       "blk.1.attn_output": T["iq4_nl"], "blk.1.ffn_gate": T["q8_0"], "blk.1.ffn_up": T["q5_0"],
       "blk.1.ffn_down": T["q4_k"]}


# ------------------------------------------------------- reading GGUF

def read_gguf(path):
    """Minimal GGUF v3 reader: metadata scalars and strings, tensor infos,
    tensor bytes. Returns (kv dict, {name: (ne, type, bytes)})."""
    buf = open(path, "rb").read()
    assert buf[:4] == b"GGUF"
    ver, n_t, n_kv = struct.unpack_from("<IQQ", buf, 4)
    assert ver == 3
    pos = 24
    sizes = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def string():
        nonlocal pos
        (n,) = struct.unpack_from("<Q", buf, pos)
        s = buf[pos + 8:pos + 8 + n].decode()
        pos += 8 + n
        return s

    def value(t):
        nonlocal pos
        if t == 8:
            return string()
        if t == 9:
            et, n = struct.unpack_from("<IQ", buf, pos)
            pos += 12
            return [value(et) for _ in range(n)]
        (v,) = struct.unpack_from("<" + sizes[t], buf, pos)
        pos += struct.calcsize(sizes[t])
        return v

    kv = {}
    for _ in range(n_kv):
        k = string()
        (t,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        kv[k] = value(t)
    infos = []
    for _ in range(n_t):
        name = string()
        (nd,) = struct.unpack_from("<I", buf, pos)
        ne = list(struct.unpack_from("<%dQ" % nd, buf, pos + 4))
        typ, off = struct.unpack_from("<IQ", buf, pos + 4 + 8 * nd)
        pos += 4 + 8 * nd + 12
        infos.append((name, ne, typ, off))
    align = kv.get("general.alignment", 32)
    data = pos + (-pos) % align
    tensors = {}
    for name, ne, typ, off in infos:
        n = int(np.prod(ne))
        if typ in QTYPES:
            nbytes = n // QTYPES[typ][1] * QTYPES[typ][2]
        else:
            nbytes = n * {T_F32: 4, T_F16: 2, T_BF16: 2}[typ]
        tensors[name] = (ne, typ, buf[data + off:data + off + nbytes])
    return kv, tensors


def dequantise(ne, typ, raw):
    """Tensor bytes -> float32 values [rows, cols] (ne[0] = cols)."""
    cols = ne[0]
    rows = int(np.prod(ne)) // cols
    if typ == T_F32:
        a = np.frombuffer(raw, "<f4")
    elif typ == T_F16:
        a = np.frombuffer(raw, "<f2").astype(F32)
    elif typ == T_BF16:
        a = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(F32)
    else:
        _, elems, nbytes, _, dq = QTYPES[typ]
        a = dq(np.frombuffer(raw, np.uint8).reshape(-1, nbytes))
    return np.asarray(a, dtype=F32).reshape(rows, cols)


class QMat:
    """A weight matrix for the reference forward: its float64 values and,
    for the emulated few-row products, its activation block size (0: the
    product is exact, as for F32/F16/BF16 weights)."""

    def __init__(self, values, act_block):
        self.w = torch.from_numpy(values.astype(np.float64))
        self.act_block = act_block
        self.T = self  # r @ m.T in tiny_models.forward

    def __rmatmul__(self, x):
        if QACT and self.act_block:
            x = quantise_activations(x, self.act_block)
        return x @ self.w.T

    def __getitem__(self, idx):  # embedding rows
        return self.w[idx]


QACT = False


def quantise_activations(x, blk):
    """Rows of x rounded as nn/qgemm.c rounds them (float32), as float64."""
    a = x.numpy().astype(F32)
    n, k = a.shape
    b = a.reshape(n, k // blk, blk)
    amax = np.abs(b).max(axis=2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(amax > 0, F32(127) / amax, F32(0)).astype(F32)
    q = np.clip(np.rint(b * inv), -127, 127)
    d = (amax / F32(127)).astype(F32)
    return torch.from_numpy((q.astype(np.float64) * d.astype(np.float64)).reshape(n, k))


def load_reference(path):
    """(config, weights for tiny_models.forward) of a GGUF file."""
    kv, ts = read_gguf(path)
    arch = kv["general.architecture"]
    c = dict(d=kv[f"{arch}.embedding_length"], heads=kv[f"{arch}.attention.head_count"],
             kv_heads=kv[f"{arch}.attention.head_count_kv"], eps=kv[f"{arch}.attention.layer_norm_rms_epsilon"],
             rope_base=kv[f"{arch}.rope.freq_base"], layers=kv[f"{arch}.block_count"])

    def mat(name, perm_heads=0):
        ne, typ, raw = ts[name + ".weight"]
        v = dequantise(ne, typ, raw)
        if perm_heads:  # llada: back to the Hugging Face row order
            inv = np.argsort(tiny_models.llama_cpp_permute(np.arange(v.shape[0]), perm_heads))
            v = v[inv]
        blk = QTYPES[typ][1] if typ in QTYPES else 0
        return QMat(v, blk)

    def vec(name):
        ne, typ, raw = ts[name]
        return torch.from_numpy(dequantise(ne, typ, raw).reshape(-1).astype(np.float64))

    w = {"embed": mat("token_embd"), "norm": vec("output_norm.weight"), "head": mat("output"), "layers": []}
    llada = arch == "llada"
    for i in range(c["layers"]):
        p = f"blk.{i}."
        lw = {"attn_norm": vec(p + "attn_norm.weight"),
              "q": mat(p + "attn_q", c["heads"] if llada else 0),
              "k": mat(p + "attn_k", c["kv_heads"] if llada else 0),
              "v": mat(p + "attn_v"), "o": mat(p + "attn_output"), "ffn_norm": vec(p + "ffn_norm.weight"),
              "gate": mat(p + "ffn_gate"), "up": mat(p + "ffn_up"), "down": mat(p + "ffn_down")}
        if p + "attn_q.bias" in ts:
            lw.update(bq=vec(p + "attn_q.bias"), bk=vec(p + "attn_k.bias"), bv=vec(p + "attn_v.bias"))
        w["layers"].append(lw)
    return c, w


def logits_of(stem, ids_file):
    global QACT
    c, w = load_reference(os.path.join(OUT, stem + ".gguf"))
    ids = torch.from_numpy(np.fromfile(os.path.join(OUT, ids_file), dtype=np.int32).astype(np.int64))
    h = w["embed"][ids]
    for qact, suffix in ((False, ".logits.f32"), (True, ".qact.logits.f32")):
        QACT = qact
        out = tiny_models.forward(c, w, h).numpy()
        assert np.all(np.isfinite(out))
        tiny_models.save(stem + suffix, out, np.float32)
    QACT = False


# ------------------------------------------------------------------ main

def source(path):
    w = tiny_models.make_weights(DREAMK)
    tmp = tempfile.mkdtemp()
    try:
        tiny_models.OUT = tmp
        tiny_models.export_gguf("dream", DREAMK, w, "f32")
        shutil.move(os.path.join(tmp, "tiny_dream_f32.gguf"), path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ids_file(name, c, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, c["vocab"], (tiny_models.L,), generator=g)
    ids[3] = ids[5] = c["mask_id"]
    tiny_models.save(name, ids.numpy(), np.int32)


def main():
    torch.set_grad_enabled(False)
    if len(sys.argv) == 3 and sys.argv[1] == "source":
        source(sys.argv[2])
        return
    if len(sys.argv) != 1:
        sys.exit(__doc__)
    ids_file("tiny_dreamq_ids.i32", DREAMQ, 97)
    ids_file("tiny_dreamk_ids.i32", DREAMK, 98)
    made = []
    for i, t in enumerate(["q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"]):
        stem = f"tiny_dream_{t}"
        make_model(os.path.join(OUT, stem + ".gguf"), "dream", tiny_models.CFG["dream"], lambda n, t=t: T[t], 100 + i)
        made.append((stem, "tiny_dream_ids.i32"))
    make_model(os.path.join(OUT, "tiny_llada_q4_0.gguf"), "llada", tiny_models.CFG["llada"], lambda n: T["q4_0"], 110)
    made.append(("tiny_llada_q4_0", "tiny_llada_ids.i32"))
    for i, t in enumerate(["q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_xs"]):
        stem = f"tiny_dreamq_{t}"
        make_model(os.path.join(OUT, stem + ".gguf"), "dream", DREAMQ, lambda n, t=t: T[t], 120 + i)
        made.append((stem, "tiny_dreamq_ids.i32"))
    mix = dict(DREAMQ, layers=2)
    make_model(os.path.join(OUT, "tiny_dreamq_mix.gguf"), "dream", mix, lambda n: MIX[n.rsplit(".", 1)[0]], 130)
    made.append(("tiny_dreamq_mix", "tiny_dreamq_ids.i32"))
    # files made elsewhere: tiny_models.py's Q8_0, llama.cpp's quantiser
    made += [("tiny_dream_q8_0", "tiny_dream_ids.i32"), ("tiny_llada_q8_0", "tiny_llada_ids.i32"),
             ("tiny_dream_ggml_q4_0", "tiny_dream_ids.i32"), ("tiny_dream_ggml_q8_0", "tiny_dream_ids.i32"),
             ("tiny_dreamk_q4_k_m", "tiny_dreamk_ids.i32"), ("tiny_dreamk_q6_k", "tiny_dreamk_ids.i32")]
    for stem, ids in made:
        logits_of(stem, ids)
    print("quantised models and logits written to", os.path.normpath(OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
