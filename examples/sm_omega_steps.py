#!/usr/bin/env python3
"""sm_omega_steps.py -- how far AdamW moves the raw soft-masking scale per step.

Reads training logs of `smdiff train` (MODEL.gguf.csv: omega_s after each
step and grad_r_s, the gradient of the raw r_s = logit(omega_s) that AdamW
saw) and reports, per run:

  * |dr_s| per step in units of the SM learning rate (one learning rate per
    step is what AdamW gives a parameter whose gradient is far above eps);
  * the median |grad_r_s| against AdamW's eps;
  * a replay of AdamW on the logged gradients (same lr, betas, eps), which
    must reproduce the logged omega_s path: the figures come from the
    optimizer, not from anything else;

and writes an SVG of log10(|dr_s| / lr) per step (docs/TRAINING.md,
"Soft-masking parameters under AdamW").

usage: sm_omega_steps.py --lr 1e-2 [--eps 1e-8] --svg OUT.svg \\
           LABEL=RUN.gguf.csv:OMEGA_S0 [LABEL=RUN.gguf.csv:OMEGA_S0 ...]
OMEGA_S0 is the omega_s the run started from (the log starts after step 1).
Assumes a constant SM learning rate (no warm-up, no cosine) and
beta1 0.9, beta2 0.999 (smdiff's defaults).
"""
import argparse
import csv
import math
import sys


def logit(w):
    return math.log(w / (1.0 - w))


def read_run(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "omega_s" not in rows[0] or "grad_r_s" not in rows[0]:
        sys.exit("%s: not a training log with omega_s and grad_r_s columns" % path)
    return [(int(r["step"]), float(r["omega_s"]), float(r["grad_r_s"])) for r in rows]


def replay(grads, r0, lr, eps, b1=0.9, b2=0.999):
    """AdamW (no weight decay: the SM group has none) on the logged gradients."""
    m = v = 0.0
    r, out = r0, []
    for t, g in enumerate(grads, 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        r -= lr / (1 - b1 ** t) * m / (math.sqrt(v) / math.sqrt(1 - b2 ** t) + eps)
        out.append(r)
    return out


def summary(label, rows, w0, lr, eps):
    r = [logit(w0)] + [logit(w) for _, w, _ in rows]
    steps = [abs(b - a) / lr for a, b in zip(r, r[1:])]
    grads = [g for _, _, g in rows]
    rep = replay(grads, r[0], lr, eps)
    # omega_s is logged with 9 significant digits: compare in omega, relative
    err = max(abs(1 / (1 + math.exp(-x)) - w) / w for x, (_, w, _) in zip(rep, rows))
    ag = sorted(abs(g) for g in grads)
    # dL/domega_s = grad_r_s / (omega_s (1 - omega_s)), omega_s before the step
    ws = [w0] + [w for _, w, _ in rows[:-1]]
    dl = sum(g / (w * (1 - w)) for g, w in zip(grads, ws)) / len(grads)
    return {
        "label": label, "start": w0, "end": rows[-1][1], "n": len(rows),
        "first": steps[0], "mean": sum(steps) / len(steps), "drift": (r[-1] - r[0]) / len(steps) / lr, "dl": dl, "median_g": ag[len(ag) // 2],
        "replay_err": err, "per_step": steps,
    }


def svg(path, runs, lr):
    W, H, L, R, T, B = 640, 320, 70, 200, 40, 45
    pw, ph = W - L - R, H - T - B
    n = max(len(s["per_step"]) for s in runs)
    lo, hi = -4.0, 0.5
    X = lambda i: L + (i - 1) / max(n - 1, 1) * pw
    Y = lambda v: T + (hi - max(lo, min(hi, v))) / (hi - lo) * ph
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (W, H),
           '<rect width="%d" height="%d" fill="white"/>' % (W, H),
           '<text x="%d" y="22" text-anchor="middle" font-size="14">raw omega_s: |change per step| / learning rate (%g)</text>' % (L + pw / 2, lr),
           '<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>' % (L, T, pw, ph),
           '<text x="%d" y="%d" text-anchor="middle">step</text>' % (L + pw / 2, H - 8)]
    for e in range(int(lo), 1):
        out.append('<text x="%d" y="%.1f" text-anchor="end">1e%d</text>' % (L - 6, Y(e) + 4, e))
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>' % (L, Y(e), L + pw, Y(e)))
    for i in range(1, n + 1, max(1, (n - 1) // 5 or 1)):
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (X(i), T + ph + 16, i))
    out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#000" stroke-dasharray="5,4"/>' % (L, Y(0), L + pw, Y(0)))
    colours = ["#c02020", "#2060c0", "#20a040", "#a060c0"]
    ly = T + 10
    for c, s in zip(colours, runs):
        pts = " ".join("%s%.1f,%.1f" % ("M" if i == 0 else "L", X(i + 1), Y(math.log10(max(v, 1e-9))))
                       for i, v in enumerate(s["per_step"]))
        out.append('<path d="%s" fill="none" stroke="%s" stroke-width="1.5"/>' % (pts, c))
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>' % (L + pw + 10, ly, L + pw + 30, ly, c))
        out.append('<text x="%d" y="%d" font-size="11">%s</text>' % (L + pw + 35, ly + 4, s["label"]))
        ly += 18
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#000" stroke-dasharray="5,4"/>' % (L + pw + 10, ly, L + pw + 30, ly))
    out.append('<text x="%d" y="%d" font-size="11">one learning rate</text>' % (L + pw + 35, ly + 4))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lr", type=float, required=True, help="the run's SM learning rate (--sm-lr)")
    ap.add_argument("--eps", type=float, default=1e-8, help="AdamW's eps (smdiff: 1e-8)")
    ap.add_argument("--svg", help="write the per-step plot here")
    ap.add_argument("runs", nargs="+", help="LABEL=RUN.gguf.csv:OMEGA_S0")
    a = ap.parse_args(argv)
    res = []
    for spec in a.runs:
        try:
            label, rest = spec.split("=", 1)
            path, w0 = rest.rsplit(":", 1)
            w0 = float(w0)
        except ValueError:
            sys.exit("bad run %r: want LABEL=RUN.gguf.csv:OMEGA_S0" % spec)
        res.append(summary(label, read_run(path), w0, a.lr, a.eps))
    print("| run | omega_s start -> after N steps | step 1: abs(dr_s) / lr | mean abs(dr_s) / lr | "
          "mean dr_s / lr | median abs(grad r_s) | mean dL/domega_s | AdamW replay, max rel. error |")
    print("|---|---|---|---|---|---|---|---|")
    for s in res:
        print("| %s | %.6g -> %.6g (N = %d) | %.4f | %.4f | %+.4f | %.3g (eps %.0e) | %+.3g | %.1e |" % (
            s["label"], s["start"], s["end"], s["n"], s["first"], s["mean"], s["drift"], s["median_g"], a.eps,
            s["dl"], s["replay_err"]))
    if a.svg:
        svg(a.svg, res, a.lr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
