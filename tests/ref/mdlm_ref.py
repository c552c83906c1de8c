#!/usr/bin/python3
"""Independent reference for the `mdlm` architecture (MDLM's DiT backbone).

Written from the architecture's description (docs/MODELS.md; MDLM paper,
Sahoo et al. 2024, and its public model definition read for the facts),
NOT from smdiff's C code, in float64 PyTorch:

  c = silu(fc2(silu(fc1([cos(sigma f), sin(sigma f)]))))    f_i = 10000^(-i/(T/2))
  per block: (shift, scale, gate) x 2 = adaLN(c)
    x += gate_a * Wo attn(rope(Wq h), rope(Wk h), Wv h),  h = LN(x) w (1 + scale_a) + shift_a
    x += gate_f * (W2 gelu_tanh(W1 h + b1) + b2),          h = LN(x) w (1 + scale_f) + shift_f
  logits = (LN(x) w (1 + scale) + shift) Wout^T + bout;  logits[mask] += -1e6 ("subs")
  LN: weight-only LayerNorm, eps 1e-5; RoPE half-split over the full head, base 1e4;
  attention bidirectional.

Writes, into tests/data/:
  hf_tiny_mdlm/            config.json (MDLM's Hugging Face keys) +
                           model.safetensors (backbone.* names, fused
                           attn_qkv, rotary inv_freq buffer) + minimal
                           tokenizer files -- the converter's input
  tiny_mdlm_f32.gguf       the same weights as smdiff's GGUF (time
                           conditioning off), written here in Python
  tiny_mdlm_tc_f32.gguf    the same with mdlm.time_conditioning = true
  tiny_mdlm_ids.i32        a canvas of ids (with masks)
  tiny_mdlm_embd.f32       the canvas as soft-masked input embeddings:
                           masked rows (1-lam) E[mask] + lam sum pi_i E[v_i]
  tiny_mdlm.logits.f32     logits [L, V] of the ids, sigma = 0
  tiny_mdlm_embd.logits.f32  logits of the soft-masked canvas, sigma = 0
  tiny_mdlm_tc.logits.f32  logits of the ids with time conditioning at
                           sigma = SIGMA_TC (and sigma 0 as _tc0)

Run: /usr/bin/python3 tests/ref/mdlm_ref.py   (deterministic: fixed seed)
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_models as tm  # noqa: E402  (GGUF/safetensors writers only)

OUT = tm.OUT
C = dict(vocab=64, d=32, layers=2, heads=4, cond=16, freq=256, ctx=64, mask_id=63, eos=62, seed=2024)
L = 9
SIGMA_TC = 0.7


def make_weights(c):
    g = torch.Generator().manual_seed(c["seed"])
    d, C_, F, V = c["d"], c["cond"], 4 * c["d"], c["vocab"]

    def rnd(*shape, std=0.15):
        return (torch.randn(*shape, generator=g) * std).float()

    w = {"embed": rnd(V, d, std=1.0),
         "fc1": rnd(C_, c["freq"], std=0.1), "fc1_b": rnd(C_, std=0.1),
         "fc2": rnd(C_, C_, std=0.3), "fc2_b": rnd(C_, std=0.1),
         "norm_f": 1.0 + rnd(d, std=0.1), "ada_f": rnd(2 * d, C_, std=0.2), "ada_f_b": rnd(2 * d, std=0.1),
         "head": rnd(V, d, std=0.2), "head_b": rnd(V, std=0.1), "layers": []}
    for _ in range(c["layers"]):
        w["layers"].append({
            "norm1": 1.0 + rnd(d, std=0.1), "qkv": rnd(3 * d, d), "o": rnd(d, d),
            "norm2": 1.0 + rnd(d, std=0.1), "w1": rnd(F, d), "b1": rnd(F, std=0.1),
            "w2": rnd(d, F), "b2": rnd(d, std=0.1),
            "ada": rnd(6 * d, C_, std=0.2), "ada_b": rnd(6 * d, std=0.1)})
    return w


def layer_norm(x, w):
    m = x.mean(-1, keepdim=True)
    v = ((x - m) ** 2).mean(-1, keepdim=True)
    return (x - m) / torch.sqrt(v + 1e-5) * w


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def conditioning(c, w, sigma):
    half = c["freq"] // 2
    f = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    a = sigma * f
    t = torch.cat([torch.cos(a), torch.sin(a)])
    h = torch.nn.functional.silu(t @ w["fc1"].double().T + w["fc1_b"].double())
    return torch.nn.functional.silu(h @ w["fc2"].double().T + w["fc2_b"].double())


def rope(x, n, hd):
    # x [n, H, hd]; pairs (i, i + hd/2), angle p * 10000^(-2i/hd)
    inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = torch.arange(n, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def forward(c, w, x, sigma):
    """x: [n, d] float64 input embeddings -> logits [n, V] float64."""
    W = {k: (v.double() if torch.is_tensor(v) else v) for k, v in w.items()}
    n, d, H = x.shape[0], c["d"], c["heads"]
    hd = d // H
    cv = conditioning(c, w, sigma)
    for lw in w["layers"]:
        lw = {k: v.double() for k, v in lw.items()}
        mod = cv @ lw["ada"].T + lw["ada_b"]
        sa, ca, ga, sf, cf, gf = mod.chunk(6)
        h = layer_norm(x, lw["norm1"]) * (1 + ca) + sa
        qkv = (h @ lw["qkv"].T).view(n, 3, H, hd)
        q, k, v = rope(qkv[:, 0], n, hd), rope(qkv[:, 1], n, hd), qkv[:, 2]
        p = torch.softmax(torch.einsum("ihc,jhc->hij", q, k) / math.sqrt(hd), dim=-1)
        a = torch.einsum("hij,jhc->ihc", p, v).reshape(n, d)
        x = x + ga * (a @ lw["o"].T)
        h = layer_norm(x, lw["norm2"]) * (1 + cf) + sf
        x = x + gf * (gelu_tanh(h @ lw["w1"].T + lw["b1"]) @ lw["w2"].T + lw["b2"])
    s, sc = (cv @ W["ada_f"].T + W["ada_f_b"]).chunk(2)
    logits = (layer_norm(x, W["norm_f"]) * (1 + sc) + s) @ W["head"].T + W["head_b"]
    logits[:, c["mask_id"]] += -1.0e6
    return logits


# ------------------------------------------------------------ files

def hf_named(c, w):
    """MDLM's Hugging Face state dict names (the `backbone.` prefix of its
    MDLM wrapper around the DiT)."""
    hd = c["d"] // c["heads"]
    inv = (1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))).float()
    n = [("backbone.vocab_embed.embedding", w["embed"]),
         ("backbone.sigma_map.mlp.0.weight", w["fc1"]), ("backbone.sigma_map.mlp.0.bias", w["fc1_b"]),
         ("backbone.sigma_map.mlp.2.weight", w["fc2"]), ("backbone.sigma_map.mlp.2.bias", w["fc2_b"]),
         ("backbone.rotary_emb.inv_freq", inv)]
    for i, lw in enumerate(w["layers"]):
        p = f"backbone.blocks.{i}."
        n += [(p + "norm1.weight", lw["norm1"]), (p + "attn_qkv.weight", lw["qkv"]),
              (p + "attn_out.weight", lw["o"]), (p + "norm2.weight", lw["norm2"]),
              (p + "mlp.0.weight", lw["w1"]), (p + "mlp.0.bias", lw["b1"]),
              (p + "mlp.2.weight", lw["w2"]), (p + "mlp.2.bias", lw["b2"]),
              (p + "adaLN_modulation.weight", lw["ada"]), (p + "adaLN_modulation.bias", lw["ada_b"])]
    n += [("backbone.output_layer.norm_final.weight", w["norm_f"]),
          ("backbone.output_layer.linear.weight", w["head"]), ("backbone.output_layer.linear.bias", w["head_b"]),
          ("backbone.output_layer.adaLN_modulation.weight", w["ada_f"]),
          ("backbone.output_layer.adaLN_modulation.bias", w["ada_f_b"])]
    return n


def export_hf(c, w):
    d = os.path.join(OUT, "hf_tiny_mdlm")
    os.makedirs(d, exist_ok=True)
    cfg = {"architectures": ["MDLM"], "model_type": "mdlm", "vocab_size": c["vocab"],
           "model_length": c["ctx"], "hidden_dim": c["d"], "cond_dim": c["cond"],
           "n_blocks": c["layers"], "n_heads": c["heads"], "dropout": 0.1,
           "time_conditioning": False, "torch_dtype": "float32"}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    tm.write_safetensors(os.path.join(d, "model.safetensors"), hf_named(c, w))
    special = {c["eos"]: "<|endoftext|>", c["mask_id"]: "<|mask|>"}
    vocab = {f"x{i}": i for i in range(c["vocab"]) if i not in special}
    vocab["<|endoftext|>"] = c["eos"]
    with open(os.path.join(d, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(d, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")
    with open(os.path.join(d, "added_tokens.json"), "w") as f:
        json.dump({"<|mask|>": c["mask_id"]}, f)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": False, "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                   "added_tokens_decoder": {str(k): {"content": v, "special": True}
                                            for k, v in special.items()}}, f, indent=1)


def export_gguf(c, w, path, time_cond):
    a = "mdlm"
    kvs = [("general.architecture", 8, a), ("general.name", 8, "tiny-mdlm"),
           (f"{a}.block_count", 4, c["layers"]), (f"{a}.context_length", 4, c["ctx"]),
           (f"{a}.embedding_length", 4, c["d"]), (f"{a}.feed_forward_length", 4, 4 * c["d"]),
           (f"{a}.attention.head_count", 4, c["heads"]), (f"{a}.rope.freq_base", 6, 10000.0),
           (f"{a}.attention.layer_norm_epsilon", 6, 1e-5), (f"{a}.conditioning_length", 4, c["cond"]),
           (f"{a}.timestep_embedding_length", 4, c["freq"]), ("mdlm.time_conditioning", 7, time_cond),
           ("diffusion.shift_logits", 7, False), ("tokenizer.ggml.mask_token_id", 4, c["mask_id"]),
           ("tokenizer.ggml.eos_token_id", 4, c["eos"])]
    t = []

    def mat(name, x):
        t.append((name, [x.shape[1], x.shape[0]], tm.GGML_F32, x.numpy().astype(np.float32).tobytes()))

    def vec(name, x):
        t.append((name, [x.shape[0]], tm.GGML_F32, x.numpy().astype(np.float32).tobytes()))

    d = c["d"]
    mat("token_embd.weight", w["embed"])
    mat("time_embd.fc1.weight", w["fc1"])
    vec("time_embd.fc1.bias", w["fc1_b"])
    mat("time_embd.fc2.weight", w["fc2"])
    vec("time_embd.fc2.bias", w["fc2_b"])
    for i, lw in enumerate(w["layers"]):
        p = f"blk.{i}."
        vec(p + "attn_norm.weight", lw["norm1"])
        mat(p + "attn_q.weight", lw["qkv"][:d])
        mat(p + "attn_k.weight", lw["qkv"][d:2 * d])
        mat(p + "attn_v.weight", lw["qkv"][2 * d:])
        mat(p + "attn_output.weight", lw["o"])
        vec(p + "ffn_norm.weight", lw["norm2"])
        mat(p + "ffn_up.weight", lw["w1"])
        vec(p + "ffn_up.bias", lw["b1"])
        mat(p + "ffn_down.weight", lw["w2"])
        vec(p + "ffn_down.bias", lw["b2"])
        mat(p + "adaln.weight", lw["ada"])
        vec(p + "adaln.bias", lw["ada_b"])
    vec("output_norm.weight", w["norm_f"])
    mat("output_adaln.weight", w["ada_f"])
    vec("output_adaln.bias", w["ada_f_b"])
    mat("output.weight", w["head"])
    vec("output.bias", w["head_b"])
    tm.write_gguf(path, kvs, t)


def main():
    torch.set_grad_enabled(False)
    c = C
    w = make_weights(c)
    g = torch.Generator().manual_seed(c["seed"] + 1)
    ids = torch.randint(0, c["vocab"] - 2, (L,), generator=g)
    masked = [1, 3, 4, 7]
    ids[masked] = c["mask_id"]
    E = w["embed"].double()
    x = E[ids]
    # soft-masked canvas: masked rows mix E[mask] with their top-3 "predictions"
    embd = x.clone()
    for r in masked:
        top = torch.randint(0, c["vocab"] - 2, (3,), generator=g)
        pi = torch.softmax(torch.randn(3, generator=g, dtype=torch.float64), 0)
        lam = 0.2 + 0.6 * torch.rand(1, generator=g, dtype=torch.float64)
        embd[r] = (1 - lam) * E[c["mask_id"]] + lam * (pi[:, None] * E[top]).sum(0)
    embd32 = embd.float()
    tm.save("tiny_mdlm_ids.i32", ids.numpy(), np.int32)
    tm.save("tiny_mdlm_embd.f32", embd32.numpy(), np.float32)
    tm.save("tiny_mdlm.logits.f32", forward(c, w, x, 0.0).numpy(), np.float32)
    tm.save("tiny_mdlm_embd.logits.f32", forward(c, w, embd32.double(), 0.0).numpy(), np.float32)
    tm.save("tiny_mdlm_tc.logits.f32", forward(c, w, x, SIGMA_TC).numpy(), np.float32)
    tm.save("tiny_mdlm_tc0.logits.f32", forward(c, w, x, 0.0).numpy(), np.float32)
    export_gguf(c, w, os.path.join(OUT, "tiny_mdlm_f32.gguf"), False)
    export_gguf(c, w, os.path.join(OUT, "tiny_mdlm_tc_f32.gguf"), True)
    export_hf(c, w)
    print("mdlm fixtures written to", os.path.normpath(OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
