#!/usr/bin/env python3
"""plot_infill.py -- the infilling scores of score_infill.py as an SVG.

Reads the CSV score_infill.py writes (rows label, steps_frac, seed, n,
errors, exact, parses, with the summary rows seed = "mean" and "sd") and
draws, for every configuration (label), the mean over seeds of the exact-match
rate and of the parse rate against the number of steps as a fraction of the
span's length, with +- one sd as error bars.

usage: plot_infill.py infill.csv -o infill.svg [--title TEXT]
"""
import argparse
import csv
import sys


def read(path):
    """{label: {frac: {"mean": (exact, parses), "sd": (exact, parses)}}}"""
    out = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["seed"] not in ("mean", "sd"):
                continue
            cell = out.setdefault(r["label"], {}).setdefault(float(r["steps_frac"]), {})
            cell[r["seed"]] = (float(r["exact"]), float(r["parses"]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="plot infilling exact match and parse rate")
    ap.add_argument("csv")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--title", default="code infilling")
    a = ap.parse_args(argv)
    data = read(a.csv)
    if not data:
        sys.exit("%s: no summary rows (seed mean/sd)" % a.csv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, idx, name in ((axes[0], 0, "exact match"), (axes[1], 1, "filled function parses")):
        for label, cells in data.items():
            fr = sorted(cells)
            m = [100 * cells[f]["mean"][idx] for f in fr]
            sd = [100 * cells[f].get("sd", (0.0, 0.0))[idx] for f in fr]
            ax.errorbar(fr, m, yerr=sd, marker="o", capsize=3, label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({f for c in data.values() for f in c}))
        ax.set_xticklabels(["%g L" % f for f in ax.get_xticks()])
        ax.set_xlabel("denoising steps (L = tokens in the span)")
        ax.set_ylabel("%s, %% (mean +- sd over seeds)" % name)
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.suptitle(a.title)
    fig.tight_layout()
    fig.savefig(a.out, format="svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
