#!/usr/bin/env python3
"""Build tiny Hugging Face checkpoints (Dream and LLaDA shaped) and the
tensors smdiff's converter must produce from them, for tests/test_convert.c
and tests/test_safetensors.c.

Independent of smdiff: safetensors files are written by hand (8-byte header
length + JSON + raw little-endian bytes, no safetensors package), bf16
rounding and the LLaDA Q/K row permutation are done here in NumPy.

Outputs (tests/data/):
  hf_dream_tiny/   config.json, 2 bf16 shards + model.safetensors.index.json,
                   vocab.json, merges.txt, added_tokens.json, tokenizer_config.json
  hf_llada_tiny/   config.json, model.safetensors (f32), tokenizer.json (vocab,
                   merges as [a, b] pairs, added_tokens), tokenizer_config.json
  hf_dream_tiny_expected.safetensors, hf_llada_tiny_expected.safetensors:
                   every GGUF tensor by its GGUF name, f32, in HF (row-major
                   [out, in]) layout, after the LLaDA permutation.
  st_misc.safetensors: small file with F32/F16/BF16/I64/empty tensors and
                   __metadata__ for the reader tests.

Run: /usr/bin/python3 tests/ref/make_hf_fixture.py   (deterministic, seed 1234)
"""
import json
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data")


def bf16_bits(x):
    """f32 -> bf16 bits, round to nearest even (no NaNs here)."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype string, shape, raw bytes)."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    off = 0
    blobs = []
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)  # the format pads the header with spaces
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def llada_permute(w, n_head):
    """llama.cpp's LLaDA Q/K permutation: within each head, rows
    [0..hd/2) and [hd/2..hd) are interleaved: new row 2i+j = old row j*hd/2+i."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def tokenizer_files(d, vocab_size, specials, as_tokenizer_json=False):
    """A byte-level-BPE-looking vocabulary: 40 normal tokens, merges between
    them; added special tokens come from the callers; ids in between are
    left out of every file (the converter pads them as [PADi]). Written as
    vocab.json + merges.txt, or as one tokenizer.json (specials = added tokens)."""
    base = ["!", "a", "b", "c", "d", "e", "h", "l", "o", "t", "\u0120", "\u0120t", "he", "ll", "\u0120a",
            "the", "\u0120the", "lo", "hel", "hello"]
    base += ["x%d" % i for i in range(40 - len(base))]
    vocab = {t: i for i, t in enumerate(base)}
    merges = ["\u0120 t", "h e", "l l", "\u0120 a", "t he", "\u0120t he", "l o", "he l", "hel lo"]
    if as_tokenizer_json:
        tj = {"version": "1.0",
              "added_tokens": [{"id": i, "content": t, "special": True} for t, i in specials.items()],
              "model": {"type": "BPE", "vocab": vocab, "merges": [m.split(" ") for m in merges]}}
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False)
        return base, merges
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return base, merges


def make_dream():
    rng = np.random.default_rng(1234)
    d = os.path.join(OUT, "hf_dream_tiny")
    os.makedirs(d, exist_ok=True)
    V, H, L, NH, NKV, FF = 64, 32, 2, 4, 2, 48
    hd = H // NH
    cfg = {
        "architectures": ["DreamModel"], "model_type": "Dream", "hidden_size": H, "intermediate_size": FF,
        "num_hidden_layers": L, "num_attention_heads": NH, "num_key_value_heads": NKV,
        "max_position_embeddings": 256, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
        "vocab_size": V, "bos_token_id": 60, "eos_token_id": 60, "pad_token_id": 60, "mask_token_id": 62,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "hidden_act": "silu", "rope_scaling": None,
    }
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    tokenizer_files(d, V, None)
    added = {"<|endoftext|>": 60, "<|file_sep|>": 61, "<|mask|>": 62, "<|beginoftext|>": 63}
    with open(os.path.join(d, "added_tokens.json"), "w") as f:
        json.dump(added, f)
    tc = {
        "add_bos_token": False, "bos_token": "<|beginoftext|>", "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>", "mask_token": "<|mask|>", "unk_token": None,
        "added_tokens_decoder": {str(i): {"content": t, "special": t != "<|file_sep|>"} for t, i in added.items()},
        "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}",
    }
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, indent=1)

    hf = {}  # HF name -> f32 array (already bf16-representable)
    def w(name, *shape, scale=0.2):
        hf[name] = bf16_to_f32(bf16_bits(rng.standard_normal(shape).astype(np.float32) * scale))
    w("model.embed_tokens.weight", V, H)
    for i in range(L):
        p = "model.layers.%d." % i
        w(p + "input_layernorm.weight", H, scale=1.0)
        w(p + "self_attn.q_proj.weight", NH * hd, H)
        w(p + "self_attn.q_proj.bias", NH * hd)
        w(p + "self_attn.k_proj.weight", NKV * hd, H)
        w(p + "self_attn.k_proj.bias", NKV * hd)
        w(p + "self_attn.v_proj.weight", NKV * hd, H)
        w(p + "self_attn.v_proj.bias", NKV * hd)
        w(p + "self_attn.o_proj.weight", H, NH * hd)
        w(p + "post_attention_layernorm.weight", H, scale=1.0)
        w(p + "mlp.gate_proj.weight", FF, H)
        w(p + "mlp.up_proj.weight", FF, H)
        w(p + "mlp.down_proj.weight", H, FF)
    w("model.norm.weight", H, scale=1.0)
    w("lm_head.weight", V, H)
    # Two shards, split after layer 0, as Hugging Face does by size.
    names = list(hf)
    cut = names.index("model.layers.1.input_layernorm.weight")
    shards = [names[:cut], names[cut:]]
    wm = {}
    for k, part in enumerate(shards):
        fn = "model-%05d-of-%05d.safetensors" % (k + 1, len(shards))
        write_safetensors(os.path.join(d, fn),
                          [(n, "BF16", hf[n].shape, bf16_bits(hf[n]).tobytes()) for n in part],
                          {"format": "pt"})
        for n in part:
            wm[n] = fn
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(a.size * 2 for a in hf.values())}, "weight_map": wm}, f, indent=2)

    m = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
         "lm_head.weight": "output.weight"}
    sub = {"input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
           "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.weight": "attn_k.weight",
           "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.weight": "attn_v.weight",
           "self_attn.v_proj.bias": "attn_v.bias", "self_attn.o_proj.weight": "attn_output.weight",
           "post_attention_layernorm.weight": "ffn_norm.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
           "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}
    exp = []
    for n, a in hf.items():
        if n in m:
            g = m[n]
        else:
            i = int(n.split(".")[2])
            g = "blk.%d.%s" % (i, sub[n.split(".", 3)[3]])
        exp.append((g, "F32", a.shape, a.astype("<f4").tobytes()))
    write_safetensors(os.path.join(OUT, "hf_dream_tiny_expected.safetensors"), exp)


def make_llada():
    rng = np.random.default_rng(4321)
    d = os.path.join(OUT, "hf_llada_tiny")
    os.makedirs(d, exist_ok=True)
    V, H, L, NH, NKV, FF = 64, 32, 2, 4, 2, 48
    hd = H // NH
    cfg = {
        "architectures": ["LLaDAModelLM"], "model_type": "llada", "d_model": H, "n_heads": NH,
        "n_kv_heads": NKV, "n_layers": L, "mlp_hidden_size": FF, "max_sequence_length": 128,
        "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "vocab_size": V, "embedding_size": V,
        "mask_token_id": 62, "eos_token_id": 61, "pad_token_id": 61, "bos_token_id": 60,
        "weight_tying": False, "include_bias": False, "block_type": "llama",
    }
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    added = {"<|startoftext|>": 60, "<|endoftext|>": 61, "<|mdm_mask|>": 62}
    tokenizer_files(d, V, added, as_tokenizer_json=True)
    tc = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, indent=1)
    hf = {}
    def w(name, *shape, scale=0.2):
        hf[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    w("model.transformer.wte.weight", V, H)
    for i in range(L):
        p = "model.transformer.blocks.%d." % i
        w(p + "attn_norm.weight", H, scale=1.0)
        w(p + "q_proj.weight", NH * hd, H)
        w(p + "k_proj.weight", NKV * hd, H)
        w(p + "v_proj.weight", NKV * hd, H)
        w(p + "attn_out.weight", H, NH * hd)
        w(p + "ff_norm.weight", H, scale=1.0)
        w(p + "ff_proj.weight", FF, H)
        w(p + "up_proj.weight", FF, H)
        w(p + "ff_out.weight", H, FF)
    w("model.transformer.ln_f.weight", H, scale=1.0)
    w("model.transformer.ff_out.weight", V, H)
    write_safetensors(os.path.join(d, "model.safetensors"),
                      [(n, "F32", a.shape, a.astype("<f4").tobytes()) for n, a in hf.items()], {"format": "pt"})
    m = {"model.transformer.wte.weight": "token_embd.weight", "model.transformer.ln_f.weight": "output_norm.weight",
         "model.transformer.ff_out.weight": "output.weight"}
    sub = {"attn_norm.weight": "attn_norm.weight", "q_proj.weight": "attn_q.weight", "k_proj.weight": "attn_k.weight",
           "v_proj.weight": "attn_v.weight", "attn_out.weight": "attn_output.weight", "ff_norm.weight": "ffn_norm.weight",
           "ff_proj.weight": "ffn_gate.weight", "up_proj.weight": "ffn_up.weight", "ff_out.weight": "ffn_down.weight"}
    exp = []
    for n, a in hf.items():
        if n in m:
            g = m[n]
        else:
            i = int(n.split(".")[3])
            s = n.split(".", 4)[4]
            g = "blk.%d.%s" % (i, sub[s])
            if s == "q_proj.weight":
                a = llada_permute(a, NH)
            elif s == "k_proj.weight":
                a = llada_permute(a, NKV)
        exp.append((g, "F32", a.shape, np.ascontiguousarray(a).astype("<f4").tobytes()))
    write_safetensors(os.path.join(OUT, "hf_llada_tiny_expected.safetensors"), exp)


def make_misc():
    a = (np.arange(6, dtype=np.float32) * 0.5 - 1.0).reshape(2, 3)         # -1 .. 1.5
    b = np.array([1.0, -2.0, 65504.0, 2.0 ** -24], dtype=np.float16)       # incl. max and subnormal
    c = bf16_bits(np.array([[1.0, -0.5], [3.0, 0.25]], dtype=np.float32))
    dd = np.array([1, -2, 1 << 40], dtype="<i8")
    write_safetensors(os.path.join(OUT, "st_misc.safetensors"), [
        ("a", "F32", [2, 3], a.astype("<f4").tobytes()),
        ("b", "F16", [4], b.astype("<f2").tobytes()),
        ("c", "BF16", [2, 2], c.astype("<u2").tobytes()),
        ("d", "I64", [3], dd.tobytes()),
        ("e", "F32", [0, 5], b""),
    ], {"format": "pt", "note": "smdiff test"})


if __name__ == "__main__":
    make_dream()
    make_llada()
    make_misc()
    print("fixtures written to", os.path.normpath(OUT))
