#!/usr/bin/env python3
"""Reference byte-level BPE trainer for tests/test_bpe_train.c.

Written from the algorithm as docs/TOKENIZER.md ("Training a vocabulary")
states it, not from smdiff's C code, and deliberately naive: every
iteration recounts all pairs from scratch.

  1. Each document (file) is split into pre-tokens with the pre-tokenizer's
     regex (Python's `regex` module, Debian python3-regex); pre-tokens are
     counted.
  2. Tokens 0..255 are the bytes. Each distinct pre-token is a list of
     byte ids.
  3. Until the vocabulary holds vocab_size - n_specials tokens:
       count every adjacent pair in every word (overlapping pairs count:
       "aaa" holds (a, a) twice), weighted by the word's frequency;
       take the pair with the highest count, ties to the smaller left id,
       then the smaller right id;
       its token is bytes(left) + bytes(right) -- an existing token if
       those bytes already are one, else a new id;
       rewrite every word left to right, replacing each (left, right).

Writes the merges as lines "LEFT RIGHT" in GPT-2's byte-level alphabet
(bytes_to_unicode), which is how smdiff's GGUF file stores them, after a
header line "# vocab_size N pre NAME files F".

Usage:
  bpe_train_ref.py --vocab-size N --pre qwen2 --specials 2 -o OUT FILE...
The committed fixtures are made by:
  python3 tests/ref/bpe_train_ref.py --vocab-size 1024 --pre qwen2 --specials 2 \
      -o tests/data/bpe_train/merges_qwen2_1024.txt tests/data/bpe_train/corpus/*
  python3 tests/ref/bpe_train_ref.py --vocab-size 700 --pre gpt2 --specials 0 \
      -o tests/data/bpe_train/merges_gpt2_700.txt tests/data/bpe_train/corpus/*
"""
import argparse
import collections

import regex

# The pre-tokenizers' split patterns as published with the models
# (GPT-2's encoder.py; Qwen2's tokenizer.json).
PATTERNS = {
    "gpt2": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    "qwen2": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}


def bytes_to_unicode():
    """GPT-2's table: printable bytes map to themselves, the rest to 256+."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def pretokens(text, pattern):
    """Matches of the pattern, plus any text between matches as its own piece."""
    pos = 0
    for m in regex.finditer(pattern, text):
        if m.start() > pos:
            yield text[pos:m.start()]
        if m.end() > m.start():
            yield m.group(0)
        pos = m.end()
    if pos < len(text):
        yield text[pos:]


def train(files, vocab_size, pre, n_specials):
    counts = collections.Counter()
    for path in files:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        for piece in pretokens(text, PATTERNS[pre]):
            counts[piece.encode("utf-8")] += 1
    words = [[list(w), c] for w, c in counts.items()]
    tokens = [bytes([b]) for b in range(256)]
    index = {t: i for i, t in enumerate(tokens)}
    merges = []
    target = vocab_size - n_specials
    while len(tokens) < target:
        pairs = collections.Counter()
        for syms, c in words:
            for a, b in zip(syms, syms[1:]):
                pairs[(a, b)] += c
        if not pairs:
            raise SystemExit("corpus too small for vocab_size %d" % vocab_size)
        (left, right), _ = min(pairs.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1]))
        new = tokens[left] + tokens[right]
        if new in index:
            tid = index[new]
        else:
            tid = len(tokens)
            tokens.append(new)
            index[new] = tid
        merges.append((left, right))
        for w in words:
            syms, out, i = w[0], [], 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == left and syms[i + 1] == right:
                    out.append(tid)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            w[0] = out
    return tokens, merges


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab-size", type=int, required=True)
    ap.add_argument("--pre", default="qwen2", choices=sorted(PATTERNS))
    ap.add_argument("--specials", type=int, default=2)
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    tokens, merges = train(a.files, a.vocab_size, a.pre, a.specials)
    u = bytes_to_unicode()
    spell = lambda t: "".join(u[b] for b in tokens[t])
    reused = len(merges) - (len(tokens) - 256)
    with open(a.out, "w", encoding="utf-8", newline="\n") as f:
        f.write("# vocab_size %d pre %s files %d merges %d reused %d\n"
                % (a.vocab_size, a.pre, len(a.files), len(merges), reused))
        for l, r in merges:
            f.write("%s %s\n" % (spell(l), spell(r)))
    print("%s: %d merges (%d reused an existing token)" % (a.out, len(merges), reused))


if __name__ == "__main__":
    main()
