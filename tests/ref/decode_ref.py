#!/usr/bin/python3
"""Reference denoising loop for tests/test_generate.c (lib/diffusion/generate.c).

Decodes the tiny random `dream` and `llada` models of tiny_models.py (the
weights of tests/data/tiny_<arch>_f32.gguf, float64 math) at temperature 0
with deterministic strategies, with soft-masking off and on, and records the
canvas positions committed at every step and the final tokens. Written from
the method's definition (docs/METHOD.md s.1, Dream's diffusion_generate, LLaDA's
generate, Fast-dLLM's threshold rule), not from the C code:
  - input embedding of a still-masked position:
      (1 - lam) E[MASK] + lam * sum_i pi_i E[v_i] over the previous step's
      top-k of p = softmax(logits); lam = 0 at a block's first step;
      lam = scale * sigmoid(steepness * (-H(p) - centre)) (entropy mode) or
      a constant (constant mode), times the window gate (full window here:
      1 for steps 1.. of a block)
  - dream: the row i-1 predicts position i
  - maskgit_plus / entropy: Dream's commit count int(n * (1 - s/t)) with
    torch.linspace(1, eps, steps + 1) in float32; low_confidence: LLaDA's
    even split; threshold: the best, plus all with confidence >= threshold
  - ranking ties go to the lower position; the last step of a block commits
    everything left
  - EOS: stop once an EOS is committed and everything before it decided,
    filling the rest with EOS.
Also prints the smallest logit gap and ranking gap met, so a case whose
decisions sit within float32 noise of a tie would show.

Writes tests/data/decode_ref.txt; rerun it whenever tiny_models.py changes the
tiny weights. Run: /usr/bin/python3 tests/ref/decode_ref.py
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_models as tm  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "decode_ref.txt")


def held_weights(c):
    w = tm.make_weights(c)
    h = {"embed": w["embed"].double(), "norm": w["norm"].double(), "head": w["head"].double(),
         "layers": [{k: v.double() for k, v in lw.items()} for lw in w["layers"]]}
    return h


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def decode(arch, prompt, gen, block, steps, strat, sm, thr=0.9, eps=1e-3):
    c = tm.CFG[arch]
    w = held_weights(c)
    E = w["embed"]
    mask, eos = c["mask_id"], c["eos"]
    P = len(prompt)
    canvas = list(prompt) + [mask] * gen
    L = len(canvas)
    block = block or gen
    nb = gen // block
    family = "llada" if strat == "low_confidence" else ("thr" if strat == "threshold" else "dream")
    spb = block if family == "thr" else steps // nb
    lam = np.zeros(L)
    smi = [None] * L
    trace, gaps = [], [1e9, 1e9]
    g, stopped = 0, False
    for b in range(nb):
        lo, hi = P + b * block, P + (b + 1) * block
        ts = torch.linspace(1, eps, spb + 1)
        lam[lo:hi] = 0
        if family == "llada":
            base, rem = divmod(block, spb)
            sched = [base + (1 if i < rem else 0) for i in range(spb)]
        for i in range(spb):
            if stopped:
                break
            pos = [p for p in range(lo, hi) if canvas[p] == mask]
            if not pos:
                break
            h = torch.zeros(L, c["d"], dtype=torch.float64)
            for p in range(L):
                if canvas[p] != mask or p < P:
                    h[p] = E[canvas[p]]
                elif lam[p] > 0:
                    ids, pr = smi[p]
                    pi = pr / pr.sum()
                    h[p] = (1 - lam[p]) * E[mask] + lam[p] * sum(pi[j] * E[ids[j]] for j in range(len(ids)))
                else:
                    h[p] = E[mask]
            logits = tm.forward(c, w, h).numpy()
            rows = [p - 1 if c["shift"] else p for p in pos]
            tok, conf, ent, tops = [], [], [], []
            for r in rows:
                x = logits[r]
                pr = np.exp(x - x.max())
                pr /= pr.sum()
                o = np.argsort(-x, kind="stable")
                gaps[0] = min(gaps[0], x[o[0]] - x[o[1]])
                tok.append(int(o[0]))
                conf.append(pr[o[0]])
                ent.append(float(-(pr * np.log(pr)).sum()))
                tops.append((o[:sm["k"]], pr[o[:sm["k"]]]))
            m = len(pos)
            if strat == "entropy":
                score = [-e for e in ent]
            else:
                score = conf
            order = sorted(range(m), key=lambda j: (-score[j], pos[j]))
            if family == "dream":
                t, s = ts[i], ts[i + 1]
                nt = int(torch.tensor(float(m)) * (1 - s / t)) if i < spb - 1 else m
                chosen = order[:nt]
            elif family == "llada":
                nt = sched[i]
                chosen = order[:nt]
            else:
                nt = m
                chosen = [j for j in range(m) if j == order[0] or conf[j] >= thr]
                for j in range(m):
                    if j != order[0]:
                        gaps[1] = min(gaps[1], abs(conf[j] - thr))
            if family != "thr" and 0 < nt < m:
                gaps[1] = min(gaps[1], abs(score[order[nt - 1]] - score[order[nt]]))
            if i == spb - 1:
                chosen = list(range(m))
            com = sorted(pos[j] for j in chosen)
            for j in chosen:
                canvas[pos[j]] = tok[j]
            gate = 1.0 if (i + 1) / spb < 1.0 else 0.0
            for j in range(m):
                p = pos[j]
                lam[p] = 0
                if canvas[p] != mask or sm["mode"] == "off" or gate == 0:
                    continue
                if sm["mode"] == "constant":
                    lam[p] = gate * sm["const"]
                else:
                    lam[p] = gate * sm["scale"] * sigmoid(sm["steep"] * (-ent[j] - sm["centre"]))
                smi[p] = tops[j]
            trace.append((g, com))
            g += 1
            q = P
            while q < L and canvas[q] != mask and canvas[q] != eos:
                q += 1
            if q < L and canvas[q] == eos:
                for r in range(q, L):
                    canvas[r] = eos
                stopped = True
    n_out = gen
    for k in range(gen):
        if canvas[P + k] == eos:
            n_out = k
            break
    return canvas[P:], n_out, trace, gaps


OFF = dict(mode="off", k=3, scale=0.0, steep=0.0, centre=0.0, const=0.0)
ENT = dict(mode="entropy", k=3, scale=0.9, steep=1.0, centre=-5.0, const=0.0)
CON = dict(mode="constant", k=2, scale=0.0, steep=0.0, centre=0.0, const=0.6)

CASES = [
    ("dream_maskgit_off", "dream", [5, 17, 33, 2], 16, 0, 8, "maskgit_plus", OFF, 0.9),
    ("dream_maskgit_sm", "dream", [5, 17, 33, 2], 16, 0, 8, "maskgit_plus", ENT, 0.9),
    ("dream_entropy_blocks_const", "dream", [9, 40, 77], 16, 8, 8, "entropy", CON, 0.9),
    ("llada_lowconf_off", "llada", [4, 50, 21, 99, 7], 16, 8, 8, "low_confidence", OFF, 0.9),
    ("llada_lowconf_sm", "llada", [4, 50, 21, 99, 7], 16, 8, 8, "low_confidence", ENT, 0.9),
    ("llada_threshold_sm", "llada", [8, 60, 3], 12, 0, 12, "threshold", CON, 0.4),
]


def main():
    torch.set_grad_enabled(False)
    with open(OUT, "w") as f:
        for name, arch, prompt, gen, block, steps, strat, sm, thr in CASES:
            toks, n_out, trace, gaps = decode(arch, prompt, gen, block, steps, strat, sm, thr)
            print(f"{name}: n_out {n_out} tokens {toks} min logit gap {gaps[0]:.2e} "
                  f"min ranking gap {gaps[1]:.2e}", file=sys.stderr)
            modes = {"off": 0, "entropy": 1, "constant": 2}
            f.write(f"case {name} {arch} {strat} {gen} {block} {steps} {thr!r} {modes[sm['mode']]} "
                    f"{sm['k']} {sm['scale']!r} {sm['steep']!r} {sm['centre']!r} {sm['const']!r}\n")
            f.write(f"prompt {len(prompt)} " + " ".join(map(str, prompt)) + "\n")
            f.write(f"tokens {n_out} " + " ".join(map(str, toks)) + "\n")
            for g, com in trace:
                f.write(f"step {g} {len(com)} " + " ".join(map(str, com)) + "\n")
            f.write("end\n")
    print("wrote", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
