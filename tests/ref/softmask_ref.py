#!/usr/bin/env python3
"""Reference values of the soft-masking weight lambda (docs/METHOD.md section 1),
computed with NumPy in float64 independently of the C code.

    lambda = omega_s * sigmoid(omega_a * (-H(p) - omega_b))     mode entropy
    lambda = c                                                  mode constant
gated to 0 at step 0 and outside [window_start, window_end) of the step
fraction step/n_steps, optionally faded linearly across the window.

Output: first "rows R", then R lines "n p_0 ... p_{n-1}" (float32 values),
then lines "row mode scale steepness centre const wstart wend fade step n_steps lambda".
Run: /usr/bin/python3 tests/ref/softmask_ref.py > tests/data/softmask_lambda.txt
"""
import numpy as np

rng = np.random.default_rng(1234)


def entropy(p):
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def lam(mode, scale, steep, centre, const, ws, we, fade, step, n_steps, p):
    if step <= 0:
        return 0.0
    f = step / n_steps
    if f < ws or f >= we:
        return 0.0
    gate = 1.0 - (f - ws) / (we - ws) if fade else 1.0
    if mode == 1:
        x = steep * (-entropy(p) - centre)
        return gate * scale / (1.0 + np.exp(-x))
    if mode == 2:
        return gate * const
    return 0.0


def row(n, peaked):
    logits = rng.normal(size=n) * (6.0 if peaked else 0.5)
    e = np.exp(logits - logits.max())
    return (e / e.sum()).astype(np.float32)


rows = [row(n, peaked) for n in (1, 2, 5, 50, 1000) for peaked in (False, True)]
print(f"rows {len(rows)}")
for p in rows:
    print(len(p), " ".join(repr(float(x)) for x in p))
for r, p in enumerate(rows):
    for (mode, scale, steep, centre) in ((1, 1e-6, 6.66, -0.75), (1, 0.9, 6.66, -0.75),
                                         (1, 0.5, 0.1, -3.0), (1, 0.99, 50.0, -0.01),
                                         (2, 0.5, 6.66, -0.75), (0, 0.5, 6.66, -0.75)):
        for (ws, we, fade) in ((0.0, 1.0, 0), (0.0, 0.8, 0), (0.2, 0.9, 1)):
            for step, n_steps in ((0, 8), (1, 8), (5, 8), (7, 8)):
                const = 0.3
                l = lam(mode, scale, steep, centre, const, ws, we, fade, step, n_steps,
                        p.astype(np.float64))
                print(f"{r} {mode} {scale!r} {steep!r} {centre!r} {const!r} {ws!r} {we!r} "
                      f"{fade} {step} {n_steps} {l!r}")
