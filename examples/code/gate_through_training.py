#!/usr/bin/env python3
"""gate_through_training.py -- soft-masking's gate statistics through a run.

For a training run RUN.gguf trained with `smdiff train --keep-every N`
(which keeps RUN.stepN.gguf every N steps), runs `smdiff eval gate` on
every kept model and on RUN.gguf itself (its step: the last row of
RUN.gguf.csv), at the masking rates --t (default 0.5), and collects per
model and rate: masked positions, median predictive entropy (nats), top-1
recall, top-k recall, and the lambda distribution under the model's own
soft-mask (mean, share above 0.01 and 0.1). Writes a CSV and, with --svg,
a plot of median entropy and top-1 recall against the step.

usage: gate_through_training.py --smdiff BIN --tokens T.i32 RUN.gguf [RUN.gguf ...]
           [--seq 256] [--windows 32] [--t 0.5] [--seed 1] [--threads 1]
           --csv gate.csv [--svg gate.svg]
"""
import argparse
import csv
import glob
import os
import re
import subprocess
import sys

FIELDS = ["t", "masked", "median_entropy", "top1", "topk", "mean_lambda", "lambda_above_001", "lambda_above_01"]


def kept_models(run):
    """[(step, path)] of RUN.stepN.gguf files and RUN.gguf (its last logged step)."""
    base = run[:-5] if run.endswith(".gguf") else run
    out = []
    for p in glob.glob(glob.escape(base) + ".step*.gguf"):
        m = re.search(r"\.step(\d+)\.gguf$", p)
        if m:
            out.append((int(m.group(1)), p))
    if os.path.exists(run):
        step = None
        log = run + ".csv"
        if os.path.exists(log):
            with open(log) as f:
                rows = [r for r in csv.reader(f) if r and r[0].isdigit()]
            step = int(rows[-1][0]) if rows else None
        if step is not None and all(s != step for s, _ in out):
            out.append((step, run))
    return sorted(out)


def run_gate(a, path):
    cmd = [a.smdiff, "eval", "gate", "-m", path, "--tokens", a.tokens, "--seq", str(a.seq), "--windows",
           str(a.windows), "--t", a.t, "--seed", str(a.seed), "--threads", str(a.threads)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if r.returncode != 0:
        sys.exit("gate_through_training: %s failed (%d): %s" % (" ".join(cmd), r.returncode,
                                                                 r.stderr.decode(errors="replace")))
    rows = []
    for line in r.stdout.decode().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        vals = line.split()
        if len(vals) == len(FIELDS):
            rows.append(dict(zip(FIELDS, (float(v) for v in vals))))
    if not rows:
        sys.exit("gate_through_training: no statistics in the output of %s" % " ".join(cmd))
    return rows


def svg(path, series):
    """series: {run: [(step, median_entropy, top1)]} at one rate."""
    W, H, L, R, T, B = 640, 340, 60, 190, 40, 45
    pw, ph = W - L - R, H - T - B
    steps = [s for pts in series.values() for s, _, _ in pts]
    x0, x1 = min(steps), max(steps)
    hmax = max(h for pts in series.values() for _, h, _ in pts) or 1.0
    X = lambda s: L + (s - x0) / ((x1 - x0) or 1) * pw
    YH = lambda h: T + (1 - h / hmax) * ph
    YP = lambda p: T + (1 - p) * ph
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (W, H),
           '<rect width="%d" height="%d" fill="white"/>' % (W, H),
           '<text x="%d" y="22" text-anchor="middle" font-size="14">median entropy (solid, left, nats) and top-1 recall (dashed, right)</text>' % (L + pw / 2),
           '<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>' % (L, T, pw, ph),
           '<text x="%d" y="%d" text-anchor="middle">step</text>' % (L + pw / 2, H - 8)]
    for i in range(5):
        f = i / 4
        out.append('<text x="%d" y="%.1f" text-anchor="end">%.2f</text>' % (L - 6, YH(hmax * f) + 4, hmax * f))
        out.append('<text x="%d" y="%.1f">%.0f%%</text>' % (L + pw + 4, YP(f) + 4, 100 * f))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%.0f</text>' % (X(x0 + (x1 - x0) * f), T + ph + 16,
                                                                                x0 + (x1 - x0) * f))
    colours = ["#c02020", "#2060c0", "#20a040", "#a060c0", "#c08020"]
    ly = T + 10
    for c, (name, pts) in zip(colours, series.items()):
        h = " ".join("%s%.1f,%.1f" % ("M" if i == 0 else "L", X(s), YH(e)) for i, (s, e, _) in enumerate(pts))
        p = " ".join("%s%.1f,%.1f" % ("M" if i == 0 else "L", X(s), YP(t1)) for i, (s, _, t1) in enumerate(pts))
        out.append('<path d="%s" fill="none" stroke="%s" stroke-width="2"/>' % (h, c))
        out.append('<path d="%s" fill="none" stroke="%s" stroke-width="2" stroke-dasharray="5,4"/>' % (p, c))
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>' % (L + pw + 45, ly, L + pw + 65, ly, c))
        out.append('<text x="%d" y="%d" font-size="11">%s</text>' % (L + pw + 70, ly + 4, os.path.basename(name)))
        ly += 18
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description="gate statistics of a run's kept checkpoints")
    ap.add_argument("runs", nargs="+", help="RUN.gguf of runs trained with --keep-every")
    ap.add_argument("--smdiff", default="smdiff")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--windows", type=int, default=32)
    ap.add_argument("--t", default="0.5")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--svg")
    a = ap.parse_args(argv)
    rows, series = [], {}
    for run in a.runs:
        models = kept_models(run)
        if not models:
            sys.exit("gate_through_training: no RUN.stepN.gguf or RUN.gguf for %s" % run)
        for step, path in models:
            for g in run_gate(a, path):
                rows.append([run, step, path] + [g[k] for k in FIELDS])
                if g["t"] == rows[0][3]:
                    series.setdefault(run, []).append((step, g["median_entropy"], g["top1"]))
            print("%s step %d: %s" % (run, step, ", ".join("t %.2f: H %.3f, top-1 %.3f, mean lambda %.4f" % (
                r[3], r[5], r[6], r[8]) for r in rows if r[2] == path)))
    with open(a.csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "step", "model"] + FIELDS)
        w.writerows(rows)
    if a.svg:
        svg(a.svg, series)
    return 0


if __name__ == "__main__":
    sys.exit(main())
