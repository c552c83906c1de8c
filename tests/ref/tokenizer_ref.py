#!/usr/bin/env python3
"""Reference token ids for tests/test_tokenizer_parity.c (Hugging Face parity
of lib/text/: Unicode normalisation and special tokens).

Writes tests/data/tokenizer_parity.json. Independent of the C code and of
any tokenizer library: Python's unicodedata for the normal forms, the
`regex` module for the pre-tokenizer patterns (as the models' tokenizer.json
and GPT-2's encoder.py spell them), and byte-level BPE written here from the
algorithm of GPT-2's encoder.py (repeatedly merge every occurrence of the
lowest-ranked adjacent pair). What it models is what Hugging Face does:

  1. added tokens (special ones included) are cut out of the text first,
     leftmost and longest, and become their own ids;
  2. the normaliser the tokenizer declares is applied to each piece between
     them (Qwen2/Dream: NFC; GPT-2: none);
  3. the pre-tokenizer regex splits each piece; each split is mapped to
     GPT-2's byte-level alphabet and merged by rank.

Tokenizers (files under tests/data/tokenizers, sources in tests/data/SOURCES.md):
  dream      dream-qwen2.5/ vocab.json + merges.txt + added tokens; NFC
  gpt2       gpt2/ encoder.json + vocab.bpe; <|endoftext|> is special
  gpt2_mask  the same plus models/gpt2-mask/ (<|mask|> = 50257; the special
             tokens map names <|endoftext|> bos and eos)

Each case also records the text's four normal forms, for the C test's
byte-level tokenizer.json that declares each normaliser in turn.

Run: /usr/bin/python3 tests/ref/tokenizer_ref.py   (needs python3-regex)
"""
import json
import os
import unicodedata

import regex

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOK = os.path.join(ROOT, "tests", "data", "tokenizers")
OUT = os.path.join(ROOT, "tests", "data", "tokenizer_parity.json")

# The split patterns and GPT-2's byte alphabet, shared with the trainer's
# reference (as the models' tokenizer.json and GPT-2's encoder.py spell them).
from bpe_train_ref import PATTERNS, bytes_to_unicode  # noqa: E402

RE_GPT2 = PATTERNS["gpt2"]
RE_QWEN2 = PATTERNS["qwen2"]


class Bpe:
    def __init__(self, vocab, merges, added, regex_src, form):
        self.vocab = vocab                      # byte-level text -> id
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.added = added                      # text -> id, matched in the text
        self.split = regex.compile(regex_src)
        self.form = form                        # "NFC" or None
        self.alpha = bytes_to_unicode()

    def merge_word(self, symbols):
        while len(symbols) > 1:
            pairs = {(symbols[i], symbols[i + 1]) for i in range(len(symbols) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            symbols = out
        return symbols

    def encode_piece(self, text):
        if self.form:
            text = unicodedata.normalize(self.form, text)
        ids = []
        for word in self.split.findall(text):
            symbols = [self.alpha[b] for b in word.encode("utf-8")]
            ids += [self.vocab[s] for s in self.merge_word(symbols)]
        return ids

    def encode(self, text):
        ids, start, i = [], 0, 0
        while i < len(text):
            hit = max((a for a in self.added if text.startswith(a, i)), key=len, default=None)
            if hit is None:
                i += 1
                continue
            ids += self.encode_piece(text[start:i]) + [self.added[hit]]
            i += len(hit)
            start = i
        return ids + self.encode_piece(text[start:])


def read_merges(path):
    pairs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            line = line.rstrip("\r\n")
            if (n == 0 and line.startswith("#version")) or not line:
                continue
            a, b = line.split(" ")
            pairs.append((a, b))
    return pairs


def load_json(*parts):
    with open(os.path.join(*parts), encoding="utf-8") as f:
        return json.load(f)


def tokenizers():
    gpt2_vocab = load_json(TOK, "gpt2", "encoder.json")
    gpt2_merges = read_merges(os.path.join(TOK, "gpt2", "vocab.bpe"))
    eot = {"<|endoftext|>": gpt2_vocab["<|endoftext|>"]}
    mask = dict(eot)
    mask.update(load_json(ROOT, "models", "gpt2-mask", "added_tokens.json"))

    dream_vocab = load_json(TOK, "dream-qwen2.5", "vocab.json")
    dream_merges = read_merges(os.path.join(TOK, "dream-qwen2.5", "merges.txt"))
    config = load_json(TOK, "dream-qwen2.5", "tokenizer_config.json")
    added = {v["content"]: int(k) for k, v in config["added_tokens_decoder"].items()}
    added.update(load_json(TOK, "dream-qwen2.5", "added_tokens.json"))
    return {
        "dream": Bpe(dream_vocab, dream_merges, added, RE_QWEN2, "NFC"),
        "gpt2": Bpe(gpt2_vocab, gpt2_merges, eot, RE_GPT2, None),
        "gpt2_mask": Bpe(gpt2_vocab, gpt2_merges, mask, RE_GPT2, None),
    }


TEXTS = [
    # combining sequences that NFC composes
    "e\u0301",
    "Cafe\u0301 de\u0301ja\u0300 vu, na\u0308ive re\u0301sume\u0301.",
    "A\u030angstro\u0308m and \u00c5ngstr\u00f6m",
    "Tie\u0302\u0301ng Vie\u0323\u0302t co\u0301 da\u0302\u0301u",
    "\u1112\u1161\u11ab\u1100\u1173\u11af \ud55c\uae00",          # Hangul jamo -> syllables
    "q\u0307\u0323 a\u0323\u0307 e\u0301\u0301",                    # reordering, one mark left over
    # singletons NFC replaces
    "\u212b \u2126 \u212a",                                          # Angstrom, Ohm, Kelvin signs
    # compatibility characters NFC keeps (NFKC would not)
    "\ufb01ne x\u00b2 \u2460 \uff21\uff22 \u00bd",
    # already normal text, and emoji
    "Hello world! It's 2024, isn't it?\n\n\tIndented.",
    "\U0001f44d\U0001f3fd \u4f60\u597d \u00e9t\u00e9",
    # <|endoftext|> inside text: the special token, whatever surrounds it
    "Hello<|endoftext|>world",
    "first doc.<|endoftext|>Second doc begins here.<|endoftext|>",
    "e\u0301<|endoftext|>\u0301 and <|endoftext|>e\u0301",          # the mark after it stays alone
    "<|endoftext|><|endoftext|> <|endoftext",                        # a broken one is text
    # other added tokens
    "<|im_start|>user\nCafe\u0301?<|im_end|>\n<|im_start|>assistant\n",
    "fill <|mask|><|mask|> here, <tool_call>x</tool_call>",
]


def main():
    toks = tokenizers()
    cases = []
    for text in TEXTS:
        case = {"text": text}
        for form in ("NFC", "NFD", "NFKC", "NFKD"):
            case[form.lower()] = unicodedata.normalize(form, text)
        case["ids"] = {name: t.encode(text) for name, t in toks.items()}
        cases.append(case)
    doc = {
        "generator": "tests/ref/tokenizer_ref.py",
        "unicode_version": unicodedata.unidata_version,
        "cases": cases,
    }
    with open(OUT, "w", encoding="ascii") as f:
        json.dump(doc, f, ensure_ascii=True, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} cases, Unicode {unicodedata.unidata_version}")


if __name__ == "__main__":
    main()
