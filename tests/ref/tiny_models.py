#!/usr/bin/python3
"""Independent reference for the transformer core (lib/nn/).

Builds tiny `dream` (Qwen2 block) and `llada` (Llama/OLMo block) models with
random weights, written from the Hugging Face modeling definitions
(modeling_dream.py / modeling_llada.py: RMSNorm, rotate_half RoPE, GQA by
repeating kv heads, SwiGLU, untied head), NOT from the C code. Writes:

  tests/data/tiny_<arch>_<type>.gguf   GGUF v3 in f32, f16, bf16, q8_0, with
      llama.cpp's metadata keys and tensor names; llada Q/K rows permuted
      exactly as llama.cpp's convert_hf_to_gguf.py (LLaDAModel.permute) does.
  tests/data/hf_tiny_<arch>/          config.json + model.safetensors (F32,
      Hugging Face tensor names, unpermuted) + minimal tokenizer files
      (vocab.json, merges.txt, added_tokens.json, tokenizer_config.json),
      for the converter.
  tests/data/tiny_<arch>_ids.i32      token ids of the fixed canvas (int32)
  tests/data/tiny_<arch>_embd.f32     a fixed input embedding canvas [L, d]
  tests/data/tiny_<arch>_<type>.logits.f32   logits [L, V] of the ids with
      the weights as the <type> file stores them (dequantised), float64 math
  tests/data/tiny_<arch>_f32_causal.logits.f32  same, causal mask
  tests/data/tiny_<arch>_f32_embd.logits.f32    logits of the embedding canvas

Run: /usr/bin/python3 tests/ref/tiny_models.py   (deterministic: fixed seed)
"""
import json
import os
import struct
import sys

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")

CFG = {
    "dream": dict(vocab=160, d=32, layers=2, heads=4, kv_heads=2, ffn=96, ctx=64,
                  rope_base=1.0e6, eps=1e-6, mask_id=158, bos=0, eos=1, pad=2, bias=True,
                  shift=True, seed=1234),
    "llada": dict(vocab=128, d=32, layers=2, heads=4, kv_heads=2, ffn=96, ctx=64,
                  rope_base=5.0e5, eps=1e-5, mask_id=126, bos=0, eos=1, pad=3, bias=False,
                  shift=False, seed=4321),
}
L = 9  # odd on purpose

GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30
TYPES = {"f32": GGML_F32, "f16": GGML_F16, "bf16": GGML_BF16, "q8_0": GGML_Q8_0}


# ------------------------------------------------------------------ weights

def make_weights(c):
    g = torch.Generator().manual_seed(c["seed"])
    d, hd = c["d"], c["d"] // c["heads"]
    qd, kd = c["heads"] * hd, c["kv_heads"] * hd

    def rnd(*shape, std=0.15):
        return (torch.randn(*shape, generator=g) * std).float()

    w = {"embed": rnd(c["vocab"], d, std=1.0), "norm": 1.0 + rnd(d, std=0.1),
         "head": rnd(c["vocab"], d, std=0.2), "layers": []}
    for _ in range(c["layers"]):
        lw = {"attn_norm": 1.0 + rnd(d, std=0.1), "q": rnd(qd, d), "k": rnd(kd, d),
              "v": rnd(kd, d), "o": rnd(d, qd), "ffn_norm": 1.0 + rnd(d, std=0.1),
              "gate": rnd(c["ffn"], d), "up": rnd(c["ffn"], d), "down": rnd(d, c["ffn"])}
        if c["bias"]:
            lw.update(bq=rnd(qd, std=0.1), bk=rnd(kd, std=0.1), bv=rnd(kd, std=0.1))
        w["layers"].append(lw)
    return w


# ---------------------------------------------------------- quantisation

def f16_bytes(a):
    return np.asarray(a, dtype=np.float32).astype(np.float16).tobytes()


def bf16_round(a):
    """float32 -> bfloat16 bit patterns, round to nearest even (torch does it)."""
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(torch.bfloat16)
    return t.view(torch.int16).numpy().astype(np.uint16)


def q8_0(a):
    """Q8_0 as the GGUF spec defines it: blocks of 32, f16 scale d = amax/127,
    q = round(x/d). Returns (bytes, dequantised f32 values: f16(d) * q)."""
    a = np.asarray(a, dtype=np.float32)
    rows, cols = a.shape
    assert cols % 32 == 0
    blk = a.reshape(rows, cols // 32, 32)
    amax = np.abs(blk).max(axis=2)
    d = amax / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0.0)
    q = np.clip(np.round(blk * inv[:, :, None]), -127, 127).astype(np.int8)
    d16 = d.astype(np.float16)
    out = bytearray()
    for r in range(rows):
        for b in range(cols // 32):
            out += d16[r, b].tobytes() + q[r, b].tobytes()
    deq = (d16.astype(np.float32)[:, :, None] * q.astype(np.float32)).reshape(rows, cols)
    return bytes(out), deq


def encode(a, typ):
    """2-D weights in type typ -> (bytes, the f32 values the file really holds)."""
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    if typ == GGML_F32:
        return a.tobytes(), a
    if typ == GGML_F16:
        h = a.astype(np.float16)
        return h.tobytes(), h.astype(np.float32)
    if typ == GGML_BF16:
        b = bf16_round(a)
        return b.tobytes(), (b.astype(np.uint32) << 16).view(np.float32).reshape(a.shape)
    if typ == GGML_Q8_0:
        return q8_0(a)
    raise ValueError(typ)


# ------------------------------------------------------------------ model

def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(c, w, h, causal=False):
    """h: [L, d] input embeddings (float64) -> logits [L, V] (float64)."""
    n = h.shape[0]
    H, Hkv, hd = c["heads"], c["kv_heads"], c["d"] // c["heads"]
    inv_freq = 1.0 / (c["rope_base"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = torch.arange(n, dtype=torch.float64)[:, None] * inv_freq[None, :]
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
    for lw in w["layers"]:
        r = rms_norm(h, lw["attn_norm"], c["eps"])
        q, k, v = r @ lw["q"].T, r @ lw["k"].T, r @ lw["v"].T
        if "bq" in lw:
            q, k, v = q + lw["bq"], k + lw["bk"], v + lw["bv"]
        q, k, v = q.view(n, H, hd), k.view(n, Hkv, hd), v.view(n, Hkv, hd)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // Hkv, dim=1)
        v = v.repeat_interleave(H // Hkv, dim=1)
        s = torch.einsum("ihc,jhc->hij", q, k) / (hd ** 0.5)
        if causal:
            s = s.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 1), float("-inf"))
        p = torch.softmax(s, dim=-1)
        a = torch.einsum("hij,jhc->ihc", p, v).reshape(n, H * hd)
        h = h + a @ lw["o"].T
        r = rms_norm(h, lw["ffn_norm"], c["eps"])
        h = h + (torch.nn.functional.silu(r @ lw["gate"].T) * (r @ lw["up"].T)) @ lw["down"].T
    return rms_norm(h, w["norm"], c["eps"]) @ w["head"].T


# ------------------------------------------------------------------ GGUF

def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_kv(key, typ, val):
    out = gguf_str(key) + struct.pack("<I", typ)
    if typ == 4:
        out += struct.pack("<I", val)
    elif typ == 6:
        out += struct.pack("<f", val)
    elif typ == 7:
        out += struct.pack("<B", 1 if val else 0)
    elif typ == 8:
        out += gguf_str(val)
    else:
        raise ValueError(typ)
    return out


def write_gguf(path, kvs, tensors, align=32):
    """tensors: list of (name, ne list (ne[0] = row length), ggml type, bytes)."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, typ, val in kvs:
        head += gguf_kv(key, typ, val)
    off, infos, blobs = 0, b"", []
    for name, ne, typ, data in tensors:
        infos += gguf_str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", x) for x in ne)
        infos += struct.pack("<IQ", typ, off)
        pad = (-len(data)) % align
        blobs.append(data + b"\0" * pad)
        off += len(data) + pad
    body = head + infos
    body += b"\0" * ((-len(body)) % align)
    with open(path, "wb") as f:
        f.write(body + b"".join(blobs))


def llama_cpp_permute(w, n_head):
    """convert_hf_to_gguf.py's LLaDAModel.permute: within each head, move the
    half-split pairs (i, i + hd/2) next to each other (2i, 2i + 1)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def kvs_of(arch, c, name):
    """The metadata of a model file of shape c: (key, GGUF value type, value)."""
    return [("general.architecture", 8, arch), ("general.name", 8, name),
            (f"{arch}.block_count", 4, c["layers"]), (f"{arch}.context_length", 4, c["ctx"]),
            (f"{arch}.embedding_length", 4, c["d"]), (f"{arch}.feed_forward_length", 4, c["ffn"]),
            (f"{arch}.attention.head_count", 4, c["heads"]),
            (f"{arch}.attention.head_count_kv", 4, c["kv_heads"]),
            (f"{arch}.rope.freq_base", 6, c["rope_base"]),
            (f"{arch}.attention.layer_norm_rms_epsilon", 6, c["eps"]),
            ("diffusion.shift_logits", 7, c["shift"]),
            ("tokenizer.ggml.mask_token_id", 4, c["mask_id"]),
            ("tokenizer.ggml.bos_token_id", 4, c["bos"]), ("tokenizer.ggml.eos_token_id", 4, c["eos"]),
            ("tokenizer.ggml.padding_token_id", 4, c["pad"])]


def export_gguf(arch, c, w, tname):
    typ = TYPES[tname]
    kvs = kvs_of(arch, c, f"tiny-{arch}")
    tensors, held = [], {"layers": []}

    def mat(name, a):
        data, deq = encode(a.numpy(), typ)
        tensors.append((name, [a.shape[1], a.shape[0]], typ, data))
        return torch.from_numpy(np.array(deq, dtype=np.float64))

    def vec(name, a):
        tensors.append((name, [a.shape[0]], GGML_F32, a.numpy().astype(np.float32).tobytes()))
        return a.double()

    held["embed"] = mat("token_embd.weight", w["embed"])
    for i, lw in enumerate(w["layers"]):
        h = {"attn_norm": vec(f"blk.{i}.attn_norm.weight", lw["attn_norm"])}
        q, k = lw["q"], lw["k"]
        if arch == "llada":
            q = llama_cpp_permute(q, c["heads"])
            k = llama_cpp_permute(k, c["kv_heads"])
        hq, hk = mat(f"blk.{i}.attn_q.weight", q), mat(f"blk.{i}.attn_k.weight", k)
        if arch == "llada":
            # The reference runs on the unpermuted (Hugging Face) rows; undo
            # the permutation on the dequantised values (a row permutation
            # commutes with per-row quantisation).
            inv = torch.argsort(torch.from_numpy(llama_cpp_permute(
                np.arange(q.shape[0]), c["heads"]).copy()))
            hq = hq[inv]
            inv = torch.argsort(torch.from_numpy(llama_cpp_permute(
                np.arange(k.shape[0]), c["kv_heads"]).copy()))
            hk = hk[inv]
        h["q"], h["k"] = hq, hk
        h["v"] = mat(f"blk.{i}.attn_v.weight", lw["v"])
        if "bq" in lw:
            h["bq"] = vec(f"blk.{i}.attn_q.bias", lw["bq"])
            h["bk"] = vec(f"blk.{i}.attn_k.bias", lw["bk"])
            h["bv"] = vec(f"blk.{i}.attn_v.bias", lw["bv"])
        h["o"] = mat(f"blk.{i}.attn_output.weight", lw["o"])
        h["ffn_norm"] = vec(f"blk.{i}.ffn_norm.weight", lw["ffn_norm"])
        h["gate"] = mat(f"blk.{i}.ffn_gate.weight", lw["gate"])
        h["up"] = mat(f"blk.{i}.ffn_up.weight", lw["up"])
        h["down"] = mat(f"blk.{i}.ffn_down.weight", lw["down"])
        held["layers"].append(h)
    held["norm"] = vec("output_norm.weight", w["norm"])
    held["head"] = mat("output.weight", w["head"])
    write_gguf(os.path.join(OUT, f"tiny_{arch}_{tname}.gguf"), kvs, tensors)
    return held


# ------------------------------------------------------------ safetensors

def write_safetensors(path, named):
    header, off, blobs = {}, 0, []
    for name, a in named:
        b = np.ascontiguousarray(a.numpy().astype(np.float32)).tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((-len(hb)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))


def export_hf(arch, c, w):
    d = os.path.join(OUT, f"hf_tiny_{arch}")
    os.makedirs(d, exist_ok=True)
    named = []
    if arch == "dream":
        cfg = {"architectures": ["DreamModel"], "model_type": "Dream", "hidden_act": "silu",
               "hidden_size": c["d"], "intermediate_size": c["ffn"],
               "num_attention_heads": c["heads"], "num_key_value_heads": c["kv_heads"],
               "num_hidden_layers": c["layers"], "max_position_embeddings": c["ctx"],
               "rms_norm_eps": c["eps"], "rope_theta": c["rope_base"], "vocab_size": c["vocab"],
               "mask_token_id": c["mask_id"], "bos_token_id": c["bos"], "eos_token_id": c["eos"],
               "pad_token_id": c["pad"], "tie_word_embeddings": False, "torch_dtype": "float32"}
        named.append(("model.embed_tokens.weight", w["embed"]))
        for i, lw in enumerate(w["layers"]):
            p = f"model.layers.{i}."
            named += [(p + "input_layernorm.weight", lw["attn_norm"]),
                      (p + "self_attn.q_proj.weight", lw["q"]), (p + "self_attn.q_proj.bias", lw["bq"]),
                      (p + "self_attn.k_proj.weight", lw["k"]), (p + "self_attn.k_proj.bias", lw["bk"]),
                      (p + "self_attn.v_proj.weight", lw["v"]), (p + "self_attn.v_proj.bias", lw["bv"]),
                      (p + "self_attn.o_proj.weight", lw["o"]),
                      (p + "post_attention_layernorm.weight", lw["ffn_norm"]),
                      (p + "mlp.gate_proj.weight", lw["gate"]), (p + "mlp.up_proj.weight", lw["up"]),
                      (p + "mlp.down_proj.weight", lw["down"])]
        named += [("model.norm.weight", w["norm"]), ("lm_head.weight", w["head"])]
    else:
        cfg = {"architectures": ["LLaDAModelLM"], "model_type": "llada", "activation_type": "silu",
               "block_type": "llama", "layer_norm_type": "rms", "d_model": c["d"],
               "mlp_hidden_size": c["ffn"], "n_heads": c["heads"], "n_kv_heads": c["kv_heads"],
               "n_layers": c["layers"], "max_sequence_length": c["ctx"], "rms_norm_eps": c["eps"],
               "rope_theta": c["rope_base"], "vocab_size": c["vocab"], "embedding_size": c["vocab"],
               "mask_token_id": c["mask_id"], "bos_token_id": c["bos"], "eos_token_id": c["eos"],
               "pad_token_id": c["pad"], "include_bias": False, "weight_tying": False}
        named.append(("model.transformer.wte.weight", w["embed"]))
        for i, lw in enumerate(w["layers"]):
            p = f"model.transformer.blocks.{i}."
            named += [(p + "attn_norm.weight", lw["attn_norm"]), (p + "q_proj.weight", lw["q"]),
                      (p + "k_proj.weight", lw["k"]), (p + "v_proj.weight", lw["v"]),
                      (p + "attn_out.weight", lw["o"]), (p + "ff_norm.weight", lw["ffn_norm"]),
                      (p + "ff_proj.weight", lw["gate"]), (p + "up_proj.weight", lw["up"]),
                      (p + "ff_out.weight", lw["down"])]
        named += [("model.transformer.ln_f.weight", w["norm"]),
                  ("model.transformer.ff_out.weight", w["head"])]
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    # Minimal byte-level BPE tokenizer files so the converter can write the
    # tokenizer.ggml.* keys: plain tokens "x<id>", four special ones, no merges.
    special = {c["bos"]: "<|beginoftext|>", c["eos"]: "<|endoftext|>", c["pad"]: "<|pad|>",
               c["mask_id"]: "<|mask|>"}
    vocab = {f"x{i}": i for i in range(c["vocab"]) if i not in special}
    with open(os.path.join(d, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(d, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")
    with open(os.path.join(d, "added_tokens.json"), "w") as f:
        json.dump({v: k for k, v in special.items()}, f)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": False, "bos_token": special[c["bos"]], "eos_token": special[c["eos"]],
                   "pad_token": special[c["pad"]], "mask_token": special[c["mask_id"]],
                   "added_tokens_decoder": {str(k): {"content": v, "special": True}
                                            for k, v in special.items()}}, f, indent=1)
    write_safetensors(os.path.join(d, "model.safetensors"), named)


def save(name, a, dtype):
    np.ascontiguousarray(np.asarray(a), dtype=dtype).tofile(os.path.join(OUT, name))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_grad_enabled(False)
    for arch, c in CFG.items():
        w = make_weights(c)
        g = torch.Generator().manual_seed(c["seed"] + 1)
        ids = torch.randint(0, c["vocab"], (L,), generator=g)
        ids[3] = ids[5] = c["mask_id"]
        embd = (torch.randn(L, c["d"], generator=g)).float()
        save(f"tiny_{arch}_ids.i32", ids.numpy(), np.int32)
        save(f"tiny_{arch}_embd.f32", embd.numpy(), np.float32)
        for tname in TYPES:
            held = export_gguf(arch, c, w, tname)
            logits = forward(c, held, held["embed"][ids])
            save(f"tiny_{arch}_{tname}.logits.f32", logits.numpy(), np.float32)
            if tname == "f32":
                save(f"tiny_{arch}_f32_causal.logits.f32",
                     forward(c, held, held["embed"][ids], causal=True).numpy(), np.float32)
                save(f"tiny_{arch}_f32_embd.logits.f32", forward(c, held, embd.double()).numpy(),
                     np.float32)
        export_hf(arch, c, w)
    print("fixtures written to", os.path.normpath(OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
