#!/usr/bin/env python3
"""score_samples.py -- parse rate and generative perplexity of code samples
written by `smdiff eval samples --dump` (use --prompt-id EOS so that every
sample starts a file).

Per sample (its text up to its first EOS):
  * parses: the sample parses with Python's ast -- the whole text when the
    model ended it with EOS (a complete file), else the text up to its last
    line break (the unfinished last line dropped);
  * parsable_lines: the largest k such that the first k lines parse, as a
    fraction of the sample's complete lines (partial credit for a sample
    that goes wrong late).
Per configuration (label) and budget: the parse rate and mean
parsable_lines per seed, and the generative perplexity exp(mean gen_nll)
per seed, each reported as mean +- sample sd over the seeds.

usage: score_samples.py DUMP.jsonl [DUMP.jsonl ...] [--csv out.csv] [--md out.md]
"""
import argparse
import csv
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from score_infill import mean_sd, parses, read_jsonl  # noqa: E402


def complete_text(text, eos):
    if eos:
        return text
    cut = text.rfind("\n")
    return text[:cut + 1] if cut >= 0 else ""


def parsable_lines(text):
    lines = text.splitlines(keepends=True)
    for k in range(len(lines), 0, -1):
        if parses("".join(lines[:k])):
            return k / len(lines)
    return 0.0


def main(argv=None):
    ap = argparse.ArgumentParser(description="parse rate and generative perplexity of code samples")
    ap.add_argument("dumps", nargs="+")
    ap.add_argument("--csv")
    ap.add_argument("--md")
    a = ap.parse_args(argv)
    cells = {}  # (label, budget) -> seed -> [n, parses, parsable_lines, nll]
    for path in a.dumps:
        for r in read_jsonl(path):
            text = complete_text(r["text"], r["eos"])
            c = cells.setdefault((r["label"], int(r["budget"])), {}).setdefault(r["seed"], [0, 0, 0.0, 0.0])
            c[0] += 1
            c[1] += bool(text.strip()) and parses(text)
            c[2] += parsable_lines(text)
            c[3] += r["gen_nll"]
    if not cells:
        sys.exit("no samples in %s" % ", ".join(a.dumps))
    rows, summary = [], {}
    for key, seeds in cells.items():
        pr, pl, ppl = [], [], []
        for seed, (n, p, lines, nll) in sorted(seeds.items()):
            rows.append([key[0], key[1], seed, n, p / n, lines / n, math.exp(nll / n)])
            pr.append(p / n)
            pl.append(lines / n)
            ppl.append(math.exp(nll / n))
        summary[key] = (mean_sd(pr), mean_sd(pl), mean_sd(ppl), len(pr), min(s[0] for s in seeds.values()))
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["label", "budget", "seed", "n", "parses", "parsable_lines", "gen_ppl"])
            for r in rows:
                w.writerow(r[:4] + ["%.6f" % x for x in r[4:]])
    labels = list(dict.fromkeys(k[0] for k in cells))
    budgets = sorted({k[1] for k in cells})
    md = []
    for title, idx, fmt in (("Samples that parse", 0, "%.1f%% ± %.1f"), ("Parsable lines", 1, "%.1f%% ± %.1f"),
                            ("Generative perplexity", 2, "%.2f ± %.2f")):
        md += ["%s (mean ± sd over seeds)" % title, "",
               "| configuration | " + " | ".join("%d steps" % b for b in budgets) + " |",
               "|---|" + "---|" * len(budgets)]
        for label in labels:
            out = []
            for b in budgets:
                s = summary.get((label, b))
                if s is None:
                    out.append("")
                    continue
                m, sd = s[idx]
                scale = 100 if idx < 2 else 1
                out.append((fmt % (scale * m, scale * sd)) + " (%d seeds, n %d)" % (s[3], s[4]))
            md.append("| %s | %s |" % (label, " | ".join(out)))
        md.append("")
    text = "\n".join(md)
    if a.md:
        with open(a.md, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
