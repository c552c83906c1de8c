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

With --paired A,B (two labels; repeatable) it also compares the two
configurations fill by fill, paired over task, seed and step fraction:
how many fills parse under A only and under B only (the discordant pairs),
and, since the fills of one task are not independent (its seeds and step
counts), per task whether A or B parses more often, with a two-sided sign
test over those tasks (exact binomial, p = 1/2): the sd over seeds says
nothing of the spread over tasks.

usage: score_infill.py --tasks TASKS.jsonl OUT.jsonl [OUT.jsonl ...]
           [--csv scores.csv] [--md scores.md] [--paired A,B ...]
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


def judge(tasks, records):
    """Each fill judged once: [(label, id, seed, frac, failed, exact, parses)]"""
    out = []
    for r in records:
        t = tasks.get(r["id"])
        if t is None:
            sys.exit("output names task %r, which is not in the task file" % r["id"])
        key = (r["label"], r["id"], r["seed"], float(r["steps_frac"]))
        if "filled" not in r:
            out.append(key + (True, False, False))
            continue
        filled = r["filled"]
        out.append(key + (False, norm(filled) == norm(t["middle"]), parses(t["prefix"] + filled + t["suffix"])))
    return out


def score(judged):
    """{(label, frac): {seed: [n, exact, parses, errors]}}"""
    out = {}
    for label, _, seed, frac, failed, exact, ok in judged:
        cell = out.setdefault((label, frac), {}).setdefault(seed, [0, 0, 0, 0])
        cell[0] += 1
        cell[1] += exact
        cell[2] += ok
        cell[3] += failed
    return out


def outcomes(judged, label):
    """{(id, seed, frac): parses} of one configuration's fills"""
    return {(i, seed, frac): ok for lab, i, seed, frac, _, _, ok in judged if lab == label}


def sign_test(a_only, b_only):
    """two-sided exact binomial p of a_only successes in a_only + b_only at 1/2"""
    n, k = a_only + b_only, min(a_only, b_only)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n
    return min(1.0, 2 * tail)


def paired(judged, a, b):
    oa, ob = outcomes(judged, a), outcomes(judged, b)
    if not oa or not ob:
        sys.exit("--paired: no fills labelled %r or %r" % (a, b))
    keys = sorted(set(oa) & set(ob))
    a_only = sum(oa[k] and not ob[k] for k in keys)
    b_only = sum(ob[k] and not oa[k] for k in keys)
    per_task = {}
    for k in keys:
        per_task[k[0]] = per_task.get(k[0], 0) + int(oa[k]) - int(ob[k])
    a_tasks = sum(d > 0 for d in per_task.values())
    b_tasks = sum(d < 0 for d in per_task.values())
    return ("parses, %s vs %s: %d paired fills, %d parse under %s only, %d under %s only; "
            "by task (fills of one task are not independent): %d of %d tasks parse more often under %s, "
            "%d under %s (sign test over tasks p = %.3g)"
            % (a, b, len(keys), a_only, a, b_only, b, a_tasks, len(per_task), a, b_tasks, b,
               sign_test(a_tasks, b_tasks)))


def main(argv=None):
    ap = argparse.ArgumentParser(description="exact match and parse rate of infilled code")
    ap.add_argument("--tasks", required=True)
    ap.add_argument("outputs", nargs="+")
    ap.add_argument("--csv")
    ap.add_argument("--md")
    ap.add_argument("--paired", action="append", default=[], metavar="A,B")
    a = ap.parse_args(argv)
    tasks = {t["id"]: t for t in read_jsonl(a.tasks)}
    records = [r for p in a.outputs for r in read_jsonl(p)]
    if not records:
        sys.exit("no records in %s" % ", ".join(a.outputs))
    judged = judge(tasks, records)
    res = score(judged)
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
    for pair in a.paired:
        la, sep, lb = pair.partition(",")
        if not sep or not la or not lb:
            sys.exit("--paired wants two labels, A,B: %r" % pair)
        md.append(paired(judged, la, lb))
        md.append("")
    text = "\n".join(md)
    if a.md:
        with open(a.md, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
