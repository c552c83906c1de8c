#!/usr/bin/env python3
"""Reference per-row statistics for tests/test_stats.c (lib/diffusion/stats.c).

Writes tests/data/stats_ref.txt. Independent of the C code: NumPy in float64,
following Dream's generation_utils.py sample_tokens (top_p_logits, then
top_k_logits, softmax) and the soft-masking quantities of docs/METHOD.md s.1
(softmax at temperature 1, its top-k and its entropy).

Format, one case per block:
  case V T top_k top_p
  logits x_0 ... x_{V-1}
  smtop k id_0 p_0 ... (temperature-1 top-k, descending)
  entropy H
  q q_0 ... q_{V-1}      (the sampling distribution after the filters)
  argmax id conf top1 top2 negent
Run: /usr/bin/python3 tests/ref/stats_ref.py
"""
import os
import numpy as np


def softmax(y):
    y = y - y.max()
    e = np.exp(y)
    return e / e.sum()


def dream_q(x, T, top_k, top_p):
    y = x / T if T > 0 else x.copy()
    y = y.astype(np.float64)
    keep = np.ones_like(y, dtype=bool)
    if top_p < 1:
        order = np.argsort(-y, kind="stable")
        cum = np.cumsum(softmax(y[order]))
        remove = cum > top_p
        remove[1:] = remove[:-1].copy()
        remove[0] = False
        keep[order[remove]] = False
    if top_k > 0:
        yk = np.where(keep, y, -np.inf)
        kth = np.sort(yk)[::-1][min(top_k, len(y)) - 1]
        keep &= ~(yk < kth)
    y = np.where(keep, y, -np.inf)
    return softmax(y)


def main():
    rng = np.random.default_rng(20261128)
    cases = []
    # (V, T, top_k, top_p, scale)
    specs = [(50, 0.0, 0, 1.0, 3.0), (50, 0.0, 5, 1.0, 3.0), (50, 0.0, 0, 0.7, 2.0),
             (200, 0.7, 0, 0.9, 2.0), (200, 1.3, 10, 1.0, 2.0), (200, 1.0, 0, 1.0, 0.5),
             (8, 0.8, 0, 1.0, 1.0), (8, 1.0, 3, 1.0, 1.0), (8, 1.0, 0, 0.8, 1.0),
             (8, 2.0, 4, 0.9, 1.0), (1000, 0.0, 0, 0.95, 1.0),
             # flat rows: the 64 best miss top_p, so stats.c takes its
             # histogram path; quantised rows put ties at the top-p cut
             (200, 0.7, 0, 0.9, 0.3), (200, 1.0, 0, 0.9, 0.5, 0.25),
             (200, 1.5, 0, 0.6, 0.5, 0.25), (200, 1.3, 0, 0.8, 0.5)]
    for V, T, k, p, sc, *quant in specs:
        x = (rng.standard_normal(V) * sc).astype(np.float32)
        if quant:
            x = (np.round(x / quant[0]) * quant[0]).astype(np.float32)
        xd = x.astype(np.float64)
        pr = softmax(xd)
        order = np.argsort(-xd, kind="stable")
        H = -(pr * np.log(pr)).sum()
        q = dream_q(xd, T, k, p)
        am = int(np.argmax(q))
        qs = np.sort(q)[::-1]
        nz = q[q > 0]
        negent = float((nz * np.log(nz)).sum())
        cases.append((V, T, k, p, x, order[:8], pr[order[:8]], H, q, am, qs[0], qs[1], negent))
    out = os.path.join(os.path.dirname(__file__), "..", "data", "stats_ref.txt")
    with open(out, "w") as f:
        for V, T, k, p, x, ids, ps, H, q, am, t1, t2, ne in cases:
            f.write(f"case {V} {T!r} {k} {p!r}\n")
            f.write("logits " + " ".join(f"{v:.9g}" for v in x) + "\n")
            f.write(f"smtop {len(ids)} " + " ".join(f"{i} {v:.12g}" for i, v in zip(ids, ps)) + "\n")
            f.write(f"entropy {H:.12g}\n")
            f.write("q " + " ".join(f"{v:.12g}" for v in q) + "\n")
            f.write(f"argmax {am} {q[am]:.12g} {t1:.12g} {t2:.12g} {ne:.12g}\n")
    print("wrote", out, len(cases), "cases")


if __name__ == "__main__":
    main()
