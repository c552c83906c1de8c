#!/usr/bin/env python3
"""Regenerates the corpus-derived fixtures in tests/data/ from the large
corpora (see tests/data/SOURCES.md for what they are and where they come from):

  tests/data/gutenberg-words.txt   every word of the 68 cleaned Project
                                   Gutenberg novels the bundled models were
                                   trained on, one per line, sorted; a word is
                                   a run of ASCII letters, lowercased and cut
                                   to 47 characters, exactly as
                                   tests/test_bundled.c splits generated text
  tests/data/corpus/               4 KB excerpts of those novels, of Shakespeare
                                   and of the Python standard library, for the
                                   tokenizer's round-trip test

Usage:  python3 tests/ref/corpus_fixtures.py DATA
where DATA is the folder holding corpora/gutenberg-clean,
corpora/tinyshakespeare and corpora/python-stdlib. Run from the repository
root; the output is deterministic (rerunning it changes no byte).
"""
import os
import re
import sys

WORD_MAX = 48      # tests/test_bundled.c: words are cut to WORD_MAX - 1 bytes
EXCERPT = 4096     # bytes per excerpt

# (output name, corpus file, where the excerpt starts, options)
# "start" is either a fraction of the file (the excerpt then starts at the
# next line) or a byte string whose first occurrence starts it.
EXCERPTS = [
    ("moby-dick-etymology.txt", "gutenberg-clean/2701-0.txt",
     b"  ETYMOLOGY.\n\n\n  (Supplied", {}),        # Hebrew, Greek, em dashes
    ("three-musketeers.txt", "gutenberg-clean/1257-0.txt", 0.5,
     {"end_inside_char": True}),                   # the cut splits a character
    ("alice.txt", "gutenberg-clean/11-0.txt", 0.3, {}),
    ("alice-crlf-bom.txt", "gutenberg-clean/11-0.txt", 0.3,
     {"crlf_bom": True}),                          # as the raw PG files are
    ("sherlock-holmes.txt", "gutenberg-clean/1661.txt", 0.4, {}),   # ASCII
    ("wuthering-heights.txt", "gutenberg-clean/768.txt", 0.5, {}),  # straight quotes
    ("grimm.txt", "gutenberg-clean/2591-0.txt", 0.5, {}),
    ("shakespeare.txt", "tinyshakespeare/input.txt", 0.5, {}),
    ("python-colorsys.py.txt", "python-stdlib/cpython-3.11-stdlib.txt",
     b"# ==== FILE: Lib/colorsys.py ====", {}),
    ("python-fractions.py.txt", "python-stdlib/cpython-3.11-stdlib.txt",
     b"    # Let g = gcd(da, db). Then", {}),       # code with U+00B1
]


def words(text):
    return {w[:WORD_MAX - 1].lower() for w in re.findall(rb"[A-Za-z]+", text)}


def excerpt(data, start, opts):
    if isinstance(start, bytes):
        pos = data.index(start)
    else:
        pos = data.index(b"\n", int(len(data) * start)) + 1
    end = pos + EXCERPT
    if opts.get("end_inside_char"):
        # move the end to just past the first byte of a multi-byte character
        while data[end] < 0xC0:
            end += 1
        end += 1
    out = data[pos:end]
    if opts.get("crlf_bom"):
        out = b"\xef\xbb\xbf" + out.replace(b"\n", b"\r\n")
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    corpora = os.path.join(sys.argv[1], "corpora")
    novels = os.path.join(corpora, "gutenberg-clean")
    vocab = set()
    for name in sorted(os.listdir(novels)):
        if name.endswith(".txt"):
            with open(os.path.join(novels, name), "rb") as f:
                vocab |= words(f.read())
    with open("tests/data/gutenberg-words.txt", "wb") as f:
        f.write(b"".join(w + b"\n" for w in sorted(vocab)))
    os.makedirs("tests/data/corpus", exist_ok=True)
    for name, src, start, opts in EXCERPTS:
        with open(os.path.join(corpora, src), "rb") as f:
            data = f.read()
        with open(os.path.join("tests/data/corpus", name), "wb") as f:
            f.write(excerpt(data, start, opts))
    with open(os.path.join(corpora, "python-stdlib/LICENSE.txt"), "rb") as f:
        lic = f.read()
    with open("tests/data/corpus/LICENSE.python.txt", "wb") as f:
        f.write(lic)
    print("%d words, %d excerpts" % (len(vocab), len(EXCERPTS)))


if __name__ == "__main__":
    main()
