#!/usr/bin/python3
"""Independent PyTorch reference for one smdiff training step.

Implements the tiny dream/llada model with torch autograd (float64), the
MDLM objective (1/t weights, dream's shifted logits), soft-masking two-pass
training (pass 1 under no_grad -> top-k, renormalised pi, entropy; pass 2
with the SM mixture, gradient into omega through lambda), the AR objective,
and torch.optim.AdamW + clip_grad_norm_ for two steps on the same batch.
Nothing here calls smdiff: gradients come from autograd, the optimizer from
torch. Writes tests/data/train_step_<case>.bin, read by tests/test_train_step.c.

Initial weights: tensor i (in the order below) takes uniforms from NumPy's
Philox with key 777 + (i << 64), the stream smdiff's sd_rng reproduces, so
the C test builds the same weights without storing them.

Fixture layout (little endian): magic b"SDTS", int32 n_steps, float64
loss[n_steps], int32 n_tensors, then per tensor: 48-byte NUL-padded name,
int32 count, float32 values[count] (the weights after n_steps).

usage: /usr/bin/python3 tests/ref/train_ref.py [outdir]
"""
import math
import os
import struct
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)

V, D, NL, H, HKV, F = 50, 16, 2, 4, 2, 32
HD = D // H
B, L = 2, 8
MASK = V - 1
EPS_NORM = 1e-5
ROPE_BASE = 10000.0
K = 3
OPT = dict(lr=1e-2, sm_lr=5e-2, wd=0.1, betas=(0.9, 0.999), eps=1e-6, clip=0.5)
N_STEPS = 2


def tensor_list(arch):
    """(name, shape, kind) in smdiff's parameter order (lib/train/model_train.c)."""
    out = [("token_embd.weight", (V, D), "w")]
    for l in range(NL):
        out += [(f"blk.{l}.attn_norm.weight", (D,), "norm"),
                (f"blk.{l}.attn_q.weight", (H * HD, D), "w"),
                (f"blk.{l}.attn_k.weight", (HKV * HD, D), "w"),
                (f"blk.{l}.attn_v.weight", (HKV * HD, D), "w")]
        if arch == "dream":
            out += [(f"blk.{l}.attn_q.bias", (H * HD,), "bias"),
                    (f"blk.{l}.attn_k.bias", (HKV * HD,), "bias"),
                    (f"blk.{l}.attn_v.bias", (HKV * HD,), "bias")]
        out += [(f"blk.{l}.attn_output.weight", (D, H * HD), "w"),
                (f"blk.{l}.ffn_norm.weight", (D,), "norm"),
                (f"blk.{l}.ffn_gate.weight", (F, D), "w"),
                (f"blk.{l}.ffn_up.weight", (F, D), "w"),
                (f"blk.{l}.ffn_down.weight", (D, F), "w")]
    out += [("output_norm.weight", (D,), "norm"), ("output.weight", (V, D), "w"),
            ("smdiff.softmask.raw", (3,), "sm")]
    return out


def init_params(arch):
    params = {}
    for i, (name, shape, kind) in enumerate(tensor_list(arch)):
        n = int(np.prod(shape))
        u = np.random.Generator(np.random.Philox(key=777 + (i << 64))).random(n)
        if kind == "w":
            x = 0.5 * (2 * u - 1)
        elif kind == "norm":
            x = 1 + 0.2 * (2 * u - 1)
        elif kind == "bias":
            x = 0.2 * (2 * u - 1)
        else:  # omega_s = 0.5, omega_a = 1, omega_b = -3 as raw values
            x = np.array([0.0, math.log(math.e - 1), math.log(math.exp(3) - 1)])
        x = x.astype(np.float32).astype(np.float64)  # the C side holds float32
        params[name] = torch.tensor(x.reshape(shape), requires_grad=True)
    return params


def batch():
    x0 = torch.tensor([(n * 7 + 3) % (V - 1) for n in range(B * L)]).reshape(B, L)
    masked = torch.tensor([(n * 5) % 3 == 0 or n % 7 == 2 for n in range(B * L)]).reshape(B, L)
    t = torch.tensor([0.4, 0.7])
    return x0, masked, t


def rmsnorm(x, w):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + EPS_NORM) * w


def rope(x, mode):
    """x [B, L, nh, HD]; neox pairs (i, i+HD/2), adjacent pairs (2i, 2i+1)."""
    inv = ROPE_BASE ** (-torch.arange(0, HD, 2, dtype=torch.float64) / HD)
    ang = torch.arange(L, dtype=torch.float64)[:, None] * inv[None, :]  # [L, HD/2]
    c, s = torch.cos(ang)[None, :, None, :], torch.sin(ang)[None, :, None, :]
    if mode == "neox":
        a, b = x[..., : HD // 2], x[..., HD // 2:]
        return torch.cat([a * c - b * s, b * c + a * s], -1)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * c - b * s, b * c + a * s], -1).flatten(-2)


def forward(P, arch, emb, causal):
    """emb [B, L, D] -> final normed hidden [B, L, D]."""
    mode = "neox" if arch == "dream" else "adjacent"  # llada file: llama.cpp-permuted Q/K
    x = emb
    for l in range(NL):
        p = lambda n: P[f"blk.{l}.{n}"]
        h = rmsnorm(x, p("attn_norm.weight"))
        bias = arch == "dream"
        q = h @ p("attn_q.weight").T + (p("attn_q.bias") if bias else 0)
        k = h @ p("attn_k.weight").T + (p("attn_k.bias") if bias else 0)
        v = h @ p("attn_v.weight").T + (p("attn_v.bias") if bias else 0)
        q = rope(q.view(B, L, H, HD), mode).transpose(1, 2)           # [B,H,L,HD]
        k = rope(k.view(B, L, HKV, HD), mode).transpose(1, 2)
        v = v.view(B, L, HKV, HD).transpose(1, 2)
        k = k.repeat_interleave(H // HKV, dim=1)
        v = v.repeat_interleave(H // HKV, dim=1)
        s = q @ k.transpose(-1, -2) / math.sqrt(HD)
        if causal:
            s = s.masked_fill(torch.triu(torch.ones(L, L, dtype=torch.bool), 1), float("-inf"))
        a = torch.softmax(s, -1) @ v                                     # [B,H,L,HD]
        x = x + a.transpose(1, 2).reshape(B, L, D) @ p("attn_output.weight").T
        h = rmsnorm(x, p("ffn_norm.weight"))
        g = h @ p("ffn_gate.weight").T
        u = h @ p("ffn_up.weight").T
        x = x + (torch.nn.functional.silu(g) * u) @ p("ffn_down.weight").T
    return rmsnorm(x, P["output_norm.weight"])


def logits_for_positions(P, arch, hid):
    """[B, L, V]: the logits that predict each position (dream: row p-1, p=0 itself)."""
    lg = hid @ P["output.weight"].T
    if arch == "dream":
        lg = torch.cat([lg[:, :1], lg[:, :-1]], 1)
    return lg


def mdlm_loss(P, arch, x0, masked, t, use_sm):
    E = P["token_embd.weight"]
    inp = torch.where(masked, torch.full_like(x0, MASK), x0)
    emb = E[inp]
    if use_sm:
        with torch.no_grad():  # pass 1: constants for pass 2
            lg1 = logits_for_positions(P, arch, forward(P, arch, E[inp], False))
            logp = torch.log_softmax(lg1, -1)
            ent = -(logp.exp() * logp).sum(-1)                           # [B, L]
            top_p, top_i = torch.topk(logp.exp(), K, -1)
            pi = top_p / top_p.sum(-1, keepdim=True)
        r = P["smdiff.softmask.raw"]
        ws, wa, wb = torch.sigmoid(r[0]), torch.nn.functional.softplus(r[1]), -torch.nn.functional.softplus(r[2])
        lam = ws * torch.sigmoid(wa * (-ent - wb))                        # [B, L]
        mix = (pi[..., None] * E[top_i]).sum(-2)                          # [B, L, D]
        soft = (1 - lam[..., None]) * E[MASK] + lam[..., None] * mix
        emb = torch.where(masked[..., None], soft, emb)
    lg = logits_for_positions(P, arch, forward(P, arch, emb, False))
    ce = torch.nn.functional.cross_entropy(lg.reshape(-1, V), x0.reshape(-1), reduction="none").view(B, L)
    return (ce * masked / t[:, None]).sum() / (B * L)


def ar_loss(P, arch, x0):
    E = P["token_embd.weight"]
    lg = forward(P, arch, E[x0], True) @ P["output.weight"].T
    return torch.nn.functional.cross_entropy(lg[:, :-1].reshape(-1, V), x0[:, 1:].reshape(-1))


def run_case(arch, objective, use_sm):
    P = init_params(arch)
    names = [n for n, _, _ in tensor_list(arch)]
    kinds = {n: k for n, _, k in tensor_list(arch)}
    groups = [
        dict(params=[P[n] for n in names if kinds[n] == "w"], lr=OPT["lr"], weight_decay=OPT["wd"]),
        dict(params=[P[n] for n in names if kinds[n] in ("norm", "bias")], lr=OPT["lr"], weight_decay=0.0),
        dict(params=[P["smdiff.softmask.raw"]], lr=OPT["sm_lr"], weight_decay=0.0),
    ]
    opt = torch.optim.AdamW(groups, betas=OPT["betas"], eps=OPT["eps"])
    x0, masked, t = batch()
    losses = []
    for _ in range(N_STEPS):
        opt.zero_grad()
        loss = ar_loss(P, arch, x0) if objective == "ar" else mdlm_loss(P, arch, x0, masked, t, use_sm)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([P[n] for n in names], OPT["clip"])
        opt.step()
        losses.append(loss.item())
    return losses, [(n, P[n].detach().numpy().astype(np.float32).ravel()) for n in names]


CASES = [("dream_mdlm", "dream", "mdlm", False), ("dream_mdlm_sm", "dream", "mdlm", True),
         ("llada_mdlm_sm", "llada", "mdlm", True), ("llada_ar", "llada", "ar", False)]


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "data")
    for tag, arch, obj, sm in CASES:
        losses, tensors = run_case(arch, obj, sm)
        with open(os.path.join(outdir, f"train_step_{tag}.bin"), "wb") as f:
            f.write(b"SDTS" + struct.pack("<i", len(losses)) + struct.pack(f"<{len(losses)}d", *losses))
            f.write(struct.pack("<i", len(tensors)))
            for name, vals in tensors:
                f.write(name.encode().ljust(48, b"\0") + struct.pack("<i", vals.size) + vals.astype("<f4").tobytes())
        print(tag, "losses", " ".join(f"{x:.8f}" for x in losses))


if __name__ == "__main__":
    main()
