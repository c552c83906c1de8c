#!/usr/bin/env python3
"""score_infill.py -- score `smdiff eval infill` output against its tasks.

For every filled middle:
  * exact: the filled text equals the task's middle after stripping
    trailing whitespace from each line (line breaks included: a missing
    final newline is a different program);
  * parses: prefix + filled + suffix parses with Python's ast (every task's
    original function parses: make_infill_tasks.py checks it).
A fill that failed (an "error" field) counts as neither.

Per configuration (label) and step fraction, the rates are computed per
seed and reported as mean +- sample sd over the seeds, with the number of
tasks per seed. Writes a CSV (one row per label, fraction and seed, plus
the summary rows with seed "mean" and "sd") and a markdown table.

usage: score_infill.py --tasks TASKS.jsonl OUT.jsonl [OUT.jsonl ...]
           [--csv scores.csv] [--md scores.md]
"""
import argparse
import ast
import csv
import json
import math
import sys
import warnings


def norm(text):
    return "\n".join(line.rstrip() for line in text.split("\n"))


def parses(source):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like
            ast.parse(source)
        return True
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False


def mean_sd(xs):
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    sys.exit("%s line %d: %s" % (path, n, e))


def score(tasks, records):
    """{(label, frac): {seed: [n, exact, parses, errors]}}"""
    out = {}
    for r in records:
        t = tasks.get(r["id"])
        if t is None:
            sys.exit("output names task %r, which is not in the task file" % r["id"])
        cell = out.setdefault((r["label"], float(r["steps_frac"])), {}).setdefault(r["seed"], [0, 0, 0, 0])
        cell[0] += 1
        if "filled" not in r:
            cell[3] += 1
            continue
        filled = r["filled"]
        cell[1] += norm(filled) == norm(t["middle"])
        cell[2] += parses(t["prefix"] + filled + t["suffix"])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="exact match and parse rate of infilled code")
    ap.add_argument("--tasks", required=True)
    ap.add_argument("outputs", nargs="+")
    ap.add_argument("--csv")
    ap.add_argument("--md")
    a = ap.parse_args(argv)
    tasks = {t["id"]: t for t in read_jsonl(a.tasks)}
    records = [r for p in a.outputs for r in read_jsonl(p)]
    if not records:
        sys.exit("no records in %s" % ", ".join(a.outputs))
    res = score(tasks, records)
    labels = list(dict.fromkeys(k[0] for k in res))  # first-appearance order
    fracs = sorted({k[1] for k in res})
    rows, summary = [], {}
    for (label, frac), seeds in res.items():
        ex, pa = [], []
        for seed, (n, e, p, err) in sorted(seeds.items()):
            rows.append([label, frac, seed, n, err, e / n, p / n])
            ex.append(e / n)
            pa.append(p / n)
        summary[(label, frac)] = (mean_sd(ex), mean_sd(pa), len(ex), min(s[0] for s in seeds.values()))
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["label", "steps_frac", "seed", "n", "errors", "exact", "parses"])
            for r in rows:
                w.writerow(r[:5] + ["%.6f" % r[5], "%.6f" % r[6]])
            for (label, frac), ((em, es), (pm, ps), ns, n) in summary.items():
                w.writerow([label, frac, "mean", n, "", "%.6f" % em, "%.6f" % pm])
                w.writerow([label, frac, "sd", n, "", "%.6f" % es, "%.6f" % ps])
    md = []
    for title, idx in (("Exact match", 0), ("Filled function parses", 1)):
        md.append("%s (mean ± sd over seeds; n tasks per seed)" % title)
        md.append("")
        md.append("| configuration | " + " | ".join("steps = %g L" % f for f in fracs) + " |")
        md.append("|---|" + "---|" * len(fracs))
        for label in labels:
            cells = []
            for f in fracs:
                s = summary.get((label, f))
                if s is None:
                    cells.append("")
                    continue
                m, sd = s[idx]
                cells.append("%.1f%% ± %.1f (%d seeds, n %d)" % (100 * m, 100 * sd, s[2], s[3]))
            md.append("| %s | %s |" % (label, " | ".join(cells)))
        md.append("")
    text = "\n".join(md)
    if a.md:
        with open(a.md, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
