#!/usr/bin/env python3
"""test_code_scripts.py -- the code experiment's scripts on tiny fixtures
(run by tests/test_code_eval.c; standard library only):

  * make_infill_tasks.py on tests/data/code/funcs.py: the tasks listed by
    hand (which lines are maskable: code lines after the docstring, never
    a comment, a blank line or the inside of a multi-line string), each
    task's prefix + middle + suffix is its dedented function, the same
    seed gives the same file, --max-tasks keeps a subset, and the token
    filter keeps only tasks whose parts fit (a stand-in smdiff counts
    bytes);
  * score_infill.py: exact match and parse rates of hand-made fills
    (trailing spaces ignored, a missing newline not), mean and sd over
    seeds computed here; plot_infill.py draws that CSV;
  * score_samples.py: parse rate of complete and cut samples, parsable
    lines, generative perplexity;
  * gate_through_training.py with a stand-in smdiff: kept checkpoints in
    step order, the final model at its last logged step, the CSV.
"""
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODE = os.path.join(ROOT, "examples", "code")
FUNCS = os.path.join(ROOT, "tests", "data", "code", "funcs.py")
PY = sys.executable


def run(script, *args):
    r = subprocess.run([PY, os.path.join(CODE, script)] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=False)
    if r.returncode != 0:
        raise AssertionError("%s %s failed: %s" % (script, args, r.stderr.decode()))
    return r.stdout.decode()


def jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Tmp(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="smdiff_code_")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def path(self, name):
        return os.path.join(self.dir, name)


class MakeTasks(Tmp):
    def test_tasks_of_the_fixture(self):
        out = self.path("t.jsonl")
        run("make_infill_tasks.py", FUNCS, "-o", out, "--lines", "1,2,3", "--seed", "1")
        tasks = jsonl(out)
        # maskable lines of funcs.py, by hand: add 7-8; fib 18-19, 21, 23;
        # Box.__init__ 28-29; Box.largest 32-35. No task from the function
        # with only a docstring nor from the one-line function (its body
        # shares the signature's line); no 3-line run except in Box.largest.
        maskable = {"add": {7, 8}, "fib": {18, 19, 21, 23}, "Box.__init__": {28, 29},
                    "Box.largest": {32, 33, 34, 35}}
        self.assertEqual({t["function"] for t in tasks}, set(maskable))
        self.assertEqual(sorted((t["function"], t["n_lines"]) for t in tasks),
                         sorted([("add", 1), ("add", 2), ("fib", 1), ("fib", 2), ("Box.__init__", 1),
                                 ("Box.__init__", 2), ("Box.largest", 1), ("Box.largest", 2),
                                 ("Box.largest", 3)]))
        with open(FUNCS) as f:
            lines = f.read().splitlines(keepends=True)
        starts = {"add": 5, "fib": 15, "Box.__init__": 27, "Box.largest": 31}
        ends = {"add": 8, "fib": 23, "Box.__init__": 29, "Box.largest": 35}
        for t in tasks:
            a, n = t["first_line"], t["n_lines"]
            for ln in range(a, a + n):
                self.assertIn(ln, maskable[t["function"]], t["id"])
            self.assertEqual(t["id"], "funcs.py:%s:%d-%d" % (t["function"], a, a + n - 1))
            whole = textwrap.dedent("".join(lines[starts[t["function"]] - 1:ends[t["function"]]]))
            self.assertEqual(t["prefix"] + t["middle"] + t["suffix"], whole)
            rel = a - starts[t["function"]]
            self.assertEqual(t["middle"], "".join(whole.splitlines(keepends=True)[rel:rel + n]))
        # deterministic for a seed; --max-tasks keeps a subset of the same tasks
        again = self.path("t2.jsonl")
        run("make_infill_tasks.py", FUNCS, "-o", again, "--lines", "1,2,3", "--seed", "1")
        with open(out) as f1, open(again) as f2:
            self.assertEqual(f1.read(), f2.read())
        few = self.path("few.jsonl")
        run("make_infill_tasks.py", FUNCS, "-o", few, "--lines", "1,2,3", "--seed", "1", "--max-tasks", "4")
        sub = jsonl(few)
        self.assertEqual(len(sub), 4)
        self.assertTrue(all(t in tasks for t in sub))

    def test_token_filter(self):
        # a stand-in for `smdiff tokenize TOK --ids` that prints one id per byte
        stub = self.path("smdiff")
        with open(stub, "w") as f:
            f.write("#!/bin/sh\n%s -c 'import sys; print(\" \".join([\"1\"] * len(sys.stdin.buffer.read())))'\n" % PY)
        os.chmod(stub, 0o755)
        out = self.path("t.jsonl")
        run("make_infill_tasks.py", FUNCS, "-o", out, "--smdiff", stub, "--tokenizer", "x.gguf", "--max-tokens",
            "120", "--max-middle-tokens", "30")
        tasks = jsonl(out)
        self.assertTrue(tasks)
        for t in tasks:
            total = sum(len(t[k].encode()) for k in ("prefix", "middle", "suffix"))
            self.assertLessEqual(total, 120)
            self.assertLessEqual(len(t["middle"].encode()), 30)
        everything = self.path("all.jsonl")
        run("make_infill_tasks.py", FUNCS, "-o", everything)
        self.assertLess(len(tasks), len(jsonl(everything)))


class ScoreInfill(Tmp):
    def test_rates(self):
        tasks = [
            {"id": "a", "prefix": "def f(x):\n", "middle": "    y = x + 1\n", "suffix": "    return y\n"},
            {"id": "b", "prefix": "def g():\n", "middle": "    return 2\n", "suffix": ""},
        ]
        with open(self.path("tasks.jsonl"), "w") as f:
            for t in tasks:
                f.write(json.dumps(t) + "\n")
        rec = lambda i, seed, fill, frac=0.5, label="cfg": {"id": i, "seed": seed, "steps_frac": frac,
                                                            "label": label, "filled": fill}
        out = [
            rec("a", 1, "    y = x + 1   \n"),   # exact (trailing spaces), parses
            rec("b", 1, "    return 3\n"),       # not exact, parses
            rec("a", 2, "    y = x + 1"),        # no newline: not exact; "    y = x + 1    return y" does not parse
            rec("b", 2, "    return 2\n"),       # exact, parses
            {"id": "a", "seed": 3, "steps_frac": 0.5, "label": "cfg", "error": "failed"},  # neither
            rec("b", 3, "    return (\n"),       # neither
        ]
        with open(self.path("out.jsonl"), "w") as f:
            for r in out:
                f.write(json.dumps(r) + "\n")
        text = run("score_infill.py", "--tasks", self.path("tasks.jsonl"), self.path("out.jsonl"),
                   "--csv", self.path("s.csv"), "--md", self.path("s.md"))
        with open(self.path("s.csv")) as f:
            rows = {(r["seed"]): r for r in csv.DictReader(f)}
        exact = [0.5, 0.5, 0.0]
        parse = [1.0, 0.5, 0.0]
        for s, e, p in zip(("1", "2", "3"), exact, parse):
            self.assertAlmostEqual(float(rows[s]["exact"]), e)
            self.assertAlmostEqual(float(rows[s]["parses"]), p)
        m = sum(exact) / 3
        sd = math.sqrt(sum((x - m) ** 2 for x in exact) / 2)
        self.assertAlmostEqual(float(rows["mean"]["exact"]), m, places=6)
        self.assertAlmostEqual(float(rows["sd"]["exact"]), sd, places=6)
        self.assertEqual(rows["3"]["errors"], "1")
        self.assertIn("| cfg | %.1f%% ± %.1f (3 seeds, n 2) |" % (100 * m, 100 * sd), text)
        # the plot of that CSV: both panels, the configuration in the legend
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            self.skipTest("plot_infill.py needs python3-matplotlib (scripts/debian-packages.txt)")
        run("plot_infill.py", self.path("s.csv"), "-o", self.path("s.svg"))
        with open(self.path("s.svg")) as f:
            svg = f.read()
        self.assertTrue(svg.lstrip().startswith("<?xml") or "<svg" in svg[:400])
        for word in ("exact match", "filled function parses", "cfg"):
            self.assertIn(word, svg)

    def test_paired(self):
        tasks = [{"id": t, "prefix": "def f():\n", "middle": "    return 1\n", "suffix": ""} for t in "abc"]
        with open(self.path("tasks.jsonl"), "w") as f:
            for t in tasks:
                f.write(json.dumps(t) + "\n")
        good, bad = "    return 2\n", "    return (\n"
        # A parses where B does not on task a (both seeds) and b (seed 1); B
        # alone on task c seed 2; both on c seed 1; neither on b seed 2
        fills = {("a", 1): (good, bad), ("a", 2): (good, bad), ("b", 1): (good, bad), ("b", 2): (bad, bad),
                 ("c", 1): (good, good), ("c", 2): (bad, good)}
        with open(self.path("out.jsonl"), "w") as f:
            for (t, seed), (fa, fb) in fills.items():
                for label, fill in (("A", fa), ("B", fb)):
                    f.write(json.dumps({"id": t, "seed": seed, "steps_frac": 1, "label": label,
                                        "filled": fill}) + "\n")
        text = run("score_infill.py", "--tasks", self.path("tasks.jsonl"), self.path("out.jsonl"),
                   "--paired", "A,B")
        # fills: 3 A only, 1 B only; tasks: a and b favour A, c favours B;
        # sign test of 2 against 1: 2 (C(3,0) + C(3,1)) / 2^3 = 1
        self.assertIn("6 paired fills, 3 parse under A only, 1 under B only", text)
        self.assertIn("2 of 3 tasks parse more often under A, 1 under B (sign test over tasks p = 1)", text)
        # and of 8 against 0: 2 / 2^8
        sys.path.insert(0, CODE)
        import score_infill
        self.assertAlmostEqual(score_infill.sign_test(8, 0), 2 / 256)
        self.assertAlmostEqual(score_infill.sign_test(0, 0), 1.0)
        r = subprocess.run([PY, os.path.join(CODE, "score_infill.py"), "--tasks", self.path("tasks.jsonl"),
                            self.path("out.jsonl"), "--paired", "A"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        self.assertNotEqual(r.returncode, 0)

    def test_unknown_task(self):
        with open(self.path("tasks.jsonl"), "w") as f:
            f.write(json.dumps({"id": "a", "prefix": "", "middle": "x\n", "suffix": ""}) + "\n")
        with open(self.path("out.jsonl"), "w") as f:
            f.write(json.dumps({"id": "zz", "seed": 1, "steps_frac": 1, "label": "c", "filled": "x\n"}) + "\n")
        r = subprocess.run([PY, os.path.join(CODE, "score_infill.py"), "--tasks", self.path("tasks.jsonl"),
                            self.path("out.jsonl")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"zz", r.stderr)


class ScoreSamples(Tmp):
    def test_rates(self):
        s = lambda seed, text, eos, nll: {"label": "m", "seed": seed, "budget": 8, "index": 0, "text": text,
                                          "eos": eos, "gen_nll": nll}
        dump = [
            s(1, "x = 1\ny = 2\n", True, 1.0),           # parses, 2/2 lines
            s(1, "x = 1\nif x:\n    y = (", False, 2.0),  # cut to "x = 1\nif x:\n": does not parse; 1/2 lines
            s(2, "def f():\n    return 1\nz = ", False, 3.0),  # cut: parses, 2/2
            s(2, "x = )\n", True, 1.0),                   # does not parse, 0/1
        ]
        with open(self.path("d.jsonl"), "w") as f:
            for r in dump:
                f.write(json.dumps(r) + "\n")
        run("score_samples.py", self.path("d.jsonl"), "--csv", self.path("s.csv"))
        with open(self.path("s.csv")) as f:
            rows = {r["seed"]: r for r in csv.DictReader(f)}
        self.assertAlmostEqual(float(rows["1"]["parses"]), 0.5)
        self.assertAlmostEqual(float(rows["1"]["parsable_lines"]), (1.0 + 0.5) / 2)
        self.assertAlmostEqual(float(rows["1"]["gen_ppl"]), math.exp(1.5), places=5)
        self.assertAlmostEqual(float(rows["2"]["parses"]), 0.5)
        self.assertAlmostEqual(float(rows["2"]["parsable_lines"]), 0.5)
        self.assertAlmostEqual(float(rows["2"]["gen_ppl"]), math.exp(2.0), places=5)


class GateThroughTraining(Tmp):
    def test_kept_models(self):
        stub = self.path("smdiff")
        # a stand-in for `smdiff eval gate`: H falls and top-1 rises with the step in the file name
        with open(stub, "w") as f:
            f.write(textwrap.dedent("""\
                #!%s
                import re, sys
                m = sys.argv[sys.argv.index("-m") + 1]
                k = re.search(r"step(\\d+)", m)
                step = int(k.group(1)) if k else 30
                print("# header")
                print("%%5.2f  %%6d  %%8.3f  %%11.3f  %%14.3f  %%11.4f  %%11.3f  %%10.3f" %% (
                    0.5, 100, 3.0 - step / 10, step / 100, 0.5, 0.01, 0.1, 0.0))
                """ % PY))
        os.chmod(stub, 0o755)
        run_path = self.path("run.gguf")
        for name in ("run.step10.gguf", "run.step20.gguf", "run.gguf"):
            open(self.path(name), "w").close()
        with open(run_path + ".csv", "w") as f:
            f.write("step,loss\n1,2.0\n30,1.0\n")
        run("gate_through_training.py", "--smdiff", stub, "--tokens", "x.i32", run_path, "--csv",
            self.path("g.csv"), "--svg", self.path("g.svg"))
        with open(self.path("g.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([int(r["step"]) for r in rows], [10, 20, 30])
        self.assertEqual([float(r["median_entropy"]) for r in rows], [2.0, 1.0, 0.0])
        self.assertEqual([float(r["top1"]) for r in rows], [0.1, 0.2, 0.3])
        with open(self.path("g.svg")) as f:
            self.assertIn("</svg>", f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
