#!/usr/bin/env python3
"""Tables and SVG plots of the experiment run by examples/reproduce.sh.

usage: reproduce_report.py OUT_DIR DEST_DIR

Reads OUT_DIR/elbo.csv, OUT_DIR/samples-*.csv, OUT_DIR/*.gguf.csv (training
logs) and OUT_DIR/cpt-sm.info; writes DEST_DIR/tables.md, the plots
gen_ppl.svg, entropy.svg, mauve.svg, cpt_val_loss.svg, and copies of the
CSV files and sample listings, so the figures in docs/RESULTS.md can be
checked against their data. Standard library only.
"""
import csv
import glob
import math
import os
import shutil
import sys

LEN = 32  # generated tokens per sample (examples/reproduce.sh --len)
ORDER = ["base", "binary-cpt", "sm-cpt", "sm-cpt-off", "const-0.2", "const-0.5"]
NAMES = {
    "base": "base (binary MDLM), SM off",
    "binary-cpt": "(a) binary CPT, SM off",
    "sm-cpt": "(b) SM CPT, SM on (learned omega)",
    "sm-cpt-off": "(b) SM CPT, SM off",
    "const-0.2": "(c) base, constant lambda 0.2",
    "const-0.5": "(c) base, constant lambda 0.5",
    "human": "held-out human text",
}
COLOURS = {
    "base": "#777777", "binary-cpt": "#1f77b4", "sm-cpt": "#d62728", "sm-cpt-off": "#ff9896",
    "const-0.2": "#2ca02c", "const-0.5": "#98df8a", "human": "#000000",
}


def mean_sd(xs):
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


def read_samples(out):
    rows = {}
    for path in sorted(glob.glob(os.path.join(out, "samples-*.csv"))):
        with open(path) as f:
            for r in csv.reader(f):
                label, budget, seed, n = r[0], int(r[1]), int(r[2]), int(r[3])
                key = (label, budget)
                # keyed by seed: the "human" rows, the same windows in every
                # file, are kept once per seed
                rows.setdefault(key, {})[seed] = (float(r[4]), float(r[5]), float(r[6]), n)
    return rows


def svg_plot(path, title, ylabel, series, budgets, logy=False, ref=None):
    """series: list of (label, [(budget, mean, sd)]); ref: (label, value) drawn as a dashed line."""
    W, H, L, R, T, B = 640, 400, 70, 230, 40, 50
    pw, ph = W - L - R, H - T - B
    ys = [m + s for _, pts in series for _, m, s in pts] + [m - s for _, pts in series for _, m, s in pts]
    if ref:
        ys.append(ref[1])
    ys = [y for y in ys if y > 0] if logy else ys
    lo, hi = min(ys), max(ys)
    if logy:
        lo, hi = math.log10(lo), math.log10(hi)
    pad = (hi - lo) * 0.08 or 0.5
    lo, hi = lo - pad, hi + pad
    xs = [math.log2(b) for b in budgets]
    x0, x1 = min(xs) - 0.3, max(xs) + 0.3

    def X(b):
        return L + (math.log2(b) - x0) / (x1 - x0) * pw

    def Y(v):
        v = math.log10(max(v, 1e-12)) if logy else v
        return T + (hi - v) / (hi - lo) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L + pw / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
           f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>']
    for b in budgets:
        out.append(f'<line x1="{X(b):.1f}" y1="{T + ph}" x2="{X(b):.1f}" y2="{T + ph + 5}" stroke="#333"/>')
        out.append(f'<text x="{X(b):.1f}" y="{T + ph + 18}" text-anchor="middle">{b}</text>')
    out.append(f'<text x="{L + pw / 2}" y="{H - 10}" text-anchor="middle">denoising steps ({LEN} tokens)</text>')
    for i in range(6):
        v = lo + (hi - lo) * i / 5
        lab = 10 ** v if logy else v
        y = T + (hi - v) / (hi - lo) * ph
        out.append(f'<line x1="{L - 5}" y1="{y:.1f}" x2="{L}" y2="{y:.1f}" stroke="#333"/>')
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{L + pw}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{L - 8}" y="{y + 4:.1f}" text-anchor="end">{lab:.3g}</text>')
    out.append(f'<text x="16" y="{T + ph / 2}" text-anchor="middle" transform="rotate(-90 16 {T + ph / 2})">{ylabel}</text>')
    if ref:
        y = Y(ref[1])
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{L + pw}" y2="{y:.1f}" stroke="#000" stroke-dasharray="5,4"/>')
    legend_y = T + 10
    for label, pts in series:
        c = COLOURS.get(label, "#444")
        pts = sorted(pts)
        d = " ".join(f"{'M' if i == 0 else 'L'}{X(b):.1f},{Y(m):.1f}" for i, (b, m, _) in enumerate(pts))
        out.append(f'<path d="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
        for b, m, s in pts:
            out.append(f'<line x1="{X(b):.1f}" y1="{Y(m - s if not logy or m - s > 0 else m):.1f}" '
                       f'x2="{X(b):.1f}" y2="{Y(m + s):.1f}" stroke="{c}"/>')
            out.append(f'<circle cx="{X(b):.1f}" cy="{Y(m):.1f}" r="3" fill="{c}"/>')
        out.append(f'<line x1="{L + pw + 10}" y1="{legend_y}" x2="{L + pw + 30}" y2="{legend_y}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{L + pw + 35}" y="{legend_y + 4}" font-size="10">{NAMES.get(label, label)}</text>')
        legend_y += 18
    if ref:
        out.append(f'<line x1="{L + pw + 10}" y1="{legend_y}" x2="{L + pw + 30}" y2="{legend_y}" stroke="#000" stroke-dasharray="5,4"/>')
        out.append(f'<text x="{L + pw + 35}" y="{legend_y + 4}" font-size="10">{ref[0]}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def svg_curves(path, title, curves):
    """curves: list of (label, colour, [(step, value)])."""
    W, H, L, R, T, B = 640, 360, 70, 180, 40, 50
    pw, ph = W - L - R, H - T - B
    xs = [s for _, _, pts in curves for s, _ in pts]
    ys = [v for _, _, pts in curves for _, v in pts]
    if not xs:
        return
    x0, x1 = min(xs), max(xs)
    lo, hi = min(ys), max(ys)
    pad = (hi - lo) * 0.08 or 0.1
    lo, hi = lo - pad, hi + pad
    X = lambda s: L + (s - x0) / ((x1 - x0) or 1) * pw
    Y = lambda v: T + (hi - v) / (hi - lo) * ph
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L + pw / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
           f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>',
           f'<text x="{L + pw / 2}" y="{H - 10}" text-anchor="middle">step</text>']
    for i in range(6):
        v = lo + (hi - lo) * i / 5
        s = x0 + (x1 - x0) * i / 5
        out.append(f'<text x="{L - 8}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:.3f}</text>')
        out.append(f'<line x1="{L}" y1="{Y(v):.1f}" x2="{L + pw}" y2="{Y(v):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{X(s):.1f}" y="{T + ph + 18}" text-anchor="middle">{s:.0f}</text>')
    ly = T + 10
    for label, c, pts in curves:
        d = " ".join(f"{'M' if i == 0 else 'L'}{X(s):.1f},{Y(v):.1f}" for i, (s, v) in enumerate(pts))
        out.append(f'<path d="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
        out.append(f'<line x1="{L + pw + 10}" y1="{ly}" x2="{L + pw + 30}" y2="{ly}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{L + pw + 35}" y="{ly + 4}" font-size="11">{label}</text>')
        ly += 18
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def val_curve(path):
    pts = []
    if not os.path.exists(path):
        return pts
    with open(path) as f:
        for r in csv.DictReader(f):
            if r.get("val_loss"):
                pts.append((int(r["step"]), float(r["val_loss"])))
    return pts


def portable(text, out):
    """text with the run folder's absolute path written as $OUT, so that the
    committed results name no one's machine."""
    return text.replace(os.path.abspath(out).rstrip("/") + "/", "$OUT/")


def copy_portable(src, dst, out):
    with open(src) as f:
        text = f.read()
    if os.path.isdir(dst):
        dst = os.path.join(dst, os.path.basename(src))
    with open(dst, "w") as f:
        f.write(portable(text, out))


def main():
    out, dest = sys.argv[1], sys.argv[2]
    os.makedirs(dest, exist_ok=True)
    md = ["<!-- generated by examples/reproduce_report.py; do not edit -->", ""]

    # validation bound
    md += ["### Validation bound (MDLM ELBO, identical seeded noise)", "",
           "| model | bound | nats/token | perplexity <= | windows x tokens | draws | masked positions |",
           "|---|---|---|---|---|---|---|"]
    elbo_path = os.path.join(out, "elbo.csv")
    if os.path.exists(elbo_path):
        with open(elbo_path) as f:
            for r in csv.reader(f):
                md.append(f"| {os.path.basename(r[0])} | {r[1]} | {float(r[7]):.4f} | {float(r[8]):.2f} | "
                          f"{r[3]} x {r[2]} | {r[4]} | {r[9]} |")
        copy_portable(elbo_path, os.path.join(dest, "elbo.csv"), out)
    md.append("")

    # learned omega
    info = os.path.join(out, "cpt-sm.info")
    if os.path.exists(info):
        with open(info) as f:
            for line in f:
                if line.startswith("soft-mask:"):
                    md += ["Learned soft-mask parameters of (b): `" + line.strip() + "`", ""]

    # samples
    rows = read_samples(out)
    budgets = sorted({b for (l, b) in rows if l != "human"})
    labels = [l for l in ORDER if any((l, b) in rows for b in budgets)]
    labels += sorted({l for (l, b) in rows if l not in ORDER and l != "human"})
    human = rows.get(("human", 0), {})
    seeds_n = {v[3] for d in rows.values() for v in d.values()}
    n = max(seeds_n) if seeds_n else 0
    for metric, idx, fmt, title in [("gen_ppl", 0, "{:.1f} ± {:.1f}", "Generative perplexity (AR reference, lower is better)"),
                                    ("entropy", 1, "{:.3f} ± {:.3f}", "Unigram entropy of a sample, nats (human text for scale)"),
                                    ("mauve", 2, "{:.3f} ± {:.3f}", "MAUVE against held-out text (higher is better)")]:
        md += [f"### {title}", "",
               f"Mean ± sd over {len(human) or 3} seeds, {n} samples of {LEN} tokens per seed and budget.", "",
               "| configuration | " + " | ".join(f"{b} steps" for b in budgets) + " |",
               "|---|" + "---|" * len(budgets)]
        series = []
        for l in labels:
            cells, pts = [], []
            for b in budgets:
                d = rows.get((l, b))
                if not d:
                    cells.append("")
                    continue
                m, s = mean_sd([v[idx] for v in d.values()])
                cells.append(fmt.format(m, s))
                pts.append((b, m, s))
            md.append(f"| {NAMES.get(l, l)} | " + " | ".join(cells) + " |")
            series.append((l, pts))
        ref = None
        if human and idx < 2:
            m, s = mean_sd([v[idx] for v in human.values()])
            md.append(f"| {NAMES['human']} | " + " | ".join([fmt.format(m, s)] * len(budgets)) + " |")
            ref = (NAMES["human"], m)
        md.append("")
        if budgets:
            svg_plot(os.path.join(dest, f"{metric}.svg"), title, metric.replace("_", " "), series, budgets,
                     logy=(idx == 0), ref=ref)
            md += [f"![{metric}]({metric}.svg)", ""]
    with open(os.path.join(dest, "samples.csv"), "w") as f:
        f.write("label,budget,seed,n,gen_ppl,entropy,mauve\n")
        for (l, b), d in sorted(rows.items()):
            for seed, v in sorted(d.items()):
                f.write(f"{l},{b},{seed},{v[3]},{v[0]},{v[1]},{v[2]}\n")
    for p in glob.glob(os.path.join(out, "samples-*.txt")) + glob.glob(os.path.join(out, "gate-*.txt")):
        copy_portable(p, dest, out)
    for name in ["gate-base", "gate-sm-cpt"]:
        p = os.path.join(out, name + ".txt")
        if os.path.exists(p):
            with open(p) as f:
                md += [f"### What soft-masking feeds back ({name[5:]})", "", "```"] + \
                    portable(f.read(), out).rstrip().split("\n") + ["```", ""]

    # training curves
    curves = []
    for name, c, label in [("cpt-binary", COLOURS["binary-cpt"], "(a) binary"), ("cpt-sm", COLOURS["sm-cpt"], "(b) soft-masking")]:
        p = os.path.join(out, name + ".gguf.csv")
        if os.path.exists(p):
            shutil.copy(p, os.path.join(dest, name + ".csv"))
            curves.append((label, c, val_curve(p)))
    if curves:
        svg_curves(os.path.join(dest, "cpt_val_loss.svg"),
                   "Continued pretraining: validation loss (single pass, trainer's own windows)", curves)
        md += ["### Continued pretraining", "", "![validation loss](cpt_val_loss.svg)", ""]
    p = os.path.join(out, "ref-ar.gguf.csv")
    if os.path.exists(p):
        shutil.copy(p, os.path.join(dest, "ref-ar.csv"))
        v = val_curve(p)
        if v:
            md += [f"Reference AR model: validation next-token loss {v[-1][1]:.3f} nats "
                   f"(perplexity {math.exp(v[-1][1]):.1f}) after {v[-1][0]} steps.", ""]
    with open(os.path.join(dest, "tables.md"), "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
