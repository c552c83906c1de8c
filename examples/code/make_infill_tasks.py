#!/usr/bin/env python3
"""make_infill_tasks.py -- code infilling tasks from held-out Python files.

Each task is one function (module-level or a class's method, decorators
included, dedented so it parses on its own) with one or more whole,
consecutive lines of its body masked: the text before them is the prefix,
the lines themselves the middle, the rest of the function the suffix.
`smdiff eval infill` fills the middle; examples/code/score_infill.py scores
exact match and whether the filled function parses.

Rules (deterministic for a given seed and set of files):
  * files: every *.py under the given paths, walked in sorted order; files
    that are not UTF-8 or do not parse are skipped;
  * functions: FunctionDef / AsyncFunctionDef not nested in another
    function; the dedented source must parse on its own and be at most
    --max-chars characters;
  * maskable lines: in the body after the docstring, lines where a Python
    token starts (not blank, not a comment-only line, not the inside of a
    multi-line string); a one-line function (`def f(x): return x`) has
    none, so every task keeps its signature in the prefix (a model with
    shifted logits cannot predict the first position of a canvas);
  * for each N in --lines, a function gives one task if it has N
    consecutive maskable lines (middle at most --max-middle-chars): the
    first line of the run is drawn uniformly with a generator seeded by
    (--seed, file, function, first line, N);
  * with --smdiff and --tokenizer, prefix, middle and suffix are tokenized
    as `smdiff eval infill` tokenizes them (separately) and a task is kept
    only if all three fit --max-tokens and the middle --max-middle-tokens,
    so no context is cut at evaluation;
  * --max-tasks N keeps N tasks drawn with the seed (in file order).

Output: JSON lines {id, file, function, n_lines, first_line, prefix,
middle, suffix}; id = FILE:FUNCTION:FIRST-LAST (lines of the file).

usage: make_infill_tasks.py PATH [PATH ...] -o TASKS.jsonl [--seed 1] [--lines 1,2,3]
           [--max-chars 2000] [--max-middle-chars 240] [--max-tasks N]
           [--smdiff BIN --tokenizer TOKENIZER.gguf [--max-tokens 256] [--max-middle-tokens 64]]
"""
import argparse
import ast
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import textwrap
import tokenize


def py_files(paths):
    for p in paths:
        if os.path.isfile(p):
            yield p, os.path.dirname(p) or "."
            continue
        for root, dirs, files in os.walk(p):
            dirs.sort()
            for f in sorted(files):
                if f.endswith(".py"):
                    yield os.path.join(root, f), p


def top_functions(tree):
    """Functions not nested in another function, with their qualified names."""
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((prefix + child.name, child))
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            elif not isinstance(child, ast.Lambda):
                visit(child, prefix)

    visit(tree, "")
    return out


def token_lines(text):
    """Line numbers (1-based) where a Python token other than a comment or
    a newline starts."""
    lines = set()
    skip = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER)
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type not in skip:
            lines.add(tok.start[0])
    return lines


def function_tasks(path, rel, name, node, lines, args):
    start = min([d.lineno for d in node.decorator_list] + [node.lineno])
    end = node.end_lineno
    src = textwrap.dedent("".join(lines[start - 1:end]))
    if len(src) > args.max_chars or not src.endswith("\n"):
        return []
    try:
        ast.parse(src)
        toks = token_lines(src)
    except (SyntaxError, tokenize.TokenError, IndentationError):
        return []
    body = node.body
    first = body[0]
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        body = body[1:]
    if not body:
        return []
    if body[0].lineno == node.lineno:
        return []  # a one-line function: its body shares the signature's line
    src_lines = src.splitlines(keepends=True)
    lo = body[0].lineno - start + 1  # 1-based within the function
    ok = [i for i in range(lo, len(src_lines) + 1) if i in toks]
    ok_set = set(ok)
    tasks = []
    for n in args.lines:
        starts = [i for i in ok if all(i + j in ok_set for j in range(n))]
        starts = [i for i in starts if len("".join(src_lines[i - 1:i - 1 + n])) <= args.max_middle_chars]
        if not starts:
            continue
        key = "%d:%s:%s:%d:%d" % (args.seed, rel, name, start, n)
        rng = random.Random(int(hashlib.sha256(key.encode()).hexdigest()[:16], 16))
        i = rng.choice(starts)
        a, b = start + i - 1, start + i - 2 + n  # lines of the file
        tasks.append({
            "id": "%s:%s:%d-%d" % (rel, name, a, b), "file": rel, "function": name, "n_lines": n,
            "first_line": a, "prefix": "".join(src_lines[:i - 1]),
            "middle": "".join(src_lines[i - 1:i - 1 + n]), "suffix": "".join(src_lines[i - 1 + n:]),
        })
    return tasks


class TokenCounter:
    """Token counts through `smdiff tokenize TOKENIZER --ids` (one call per text)."""

    def __init__(self, smdiff, tokenizer):
        self.cmd = [smdiff, "tokenize", tokenizer, "--ids"]

    def __call__(self, text):
        if not text:
            return 0
        r = subprocess.run(self.cmd, input=text.encode("utf-8"), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, check=False)
        if r.returncode != 0:
            sys.exit("make_infill_tasks: %s failed: %s" % (" ".join(self.cmd), r.stderr.decode(errors="replace")))
        return len(r.stdout.split())


def main(argv=None):
    ap = argparse.ArgumentParser(description="code infilling tasks from Python files")
    ap.add_argument("paths", nargs="+", help="Python files or folders")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lines", default="1,2,3", help="numbers of masked lines, one task per function each")
    ap.add_argument("--max-chars", type=int, default=2000)
    ap.add_argument("--max-middle-chars", type=int, default=240)
    ap.add_argument("--max-tasks", type=int, default=0)
    ap.add_argument("--smdiff", help="the smdiff CLI, to count tokens")
    ap.add_argument("--tokenizer", help="a GGUF with the model's tokenizer")
    ap.add_argument("--max-tokens", type=int, default=256, help="prefix + middle + suffix (the context)")
    ap.add_argument("--max-middle-tokens", type=int, default=64)
    a = ap.parse_args(argv)
    try:
        a.lines = sorted({int(x) for x in a.lines.split(",")})
    except ValueError:
        ap.error("--lines wants comma-separated integers")
    if not a.lines or a.lines[0] < 1:
        ap.error("--lines wants positive integers")
    if bool(a.smdiff) != bool(a.tokenizer):
        ap.error("--smdiff and --tokenizer go together")
    count = TokenCounter(a.smdiff, a.tokenizer) if a.smdiff else None
    tasks, n_files, n_funcs = [], 0, 0
    for path, root in py_files(a.paths):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            tree = ast.parse(text)
        except (UnicodeDecodeError, SyntaxError, ValueError):
            continue
        n_files += 1
        rel = os.path.relpath(path, root)
        lines = text.splitlines(keepends=True)
        for name, node in top_functions(tree):
            n_funcs += 1
            for t in function_tasks(path, rel, name, node, lines, a):
                if count:
                    n_p, n_m, n_s = count(t["prefix"]), count(t["middle"]), count(t["suffix"])
                    if n_p + n_m + n_s > a.max_tokens or n_m > a.max_middle_tokens:
                        continue
                tasks.append(t)
    if a.max_tasks and len(tasks) > a.max_tasks:
        keep = set(random.Random(a.seed).sample(range(len(tasks)), a.max_tasks))
        tasks = [t for i, t in enumerate(tasks) if i in keep]
    with open(a.out, "w", encoding="utf-8") as f:
        for t in tasks:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    by_n = {n: sum(t["n_lines"] == n for t in tasks) for n in a.lines}
    print("make_infill_tasks: %d files, %d functions -> %d tasks (%s) -> %s" % (
        n_files, n_funcs, len(tasks), ", ".join("%d with %d line%s" % (c, n, "s" * (n > 1)) for n, c in by_n.items()),
        a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
