#!/usr/bin/env python3
"""Soft-masking on and off: the same prompt and seeds decoded with binary
masking, with the schedule the model learned, and with a constant lambda
(the training-free variant), side by side.

For each run it prints the text, the unigram entropy of its tokens (low
values show repetition), the mean lambda soft-masking gave the masked
positions and the share of them with lambda > 0.01. With few steps per
token SM has the most to feed back.

    python3 examples/python/softmask_compare.py --seeds 3
"""
from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

import smdiff
from generate import default_model


def unigram_entropy(tokens) -> float:
    counts = np.array(list(Counter(tokens).values()), np.float64)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum()) if len(p) else 0.0


def run(model: smdiff.Model, prompt: str, softmask, seed: int, a) -> tuple:
    lams = []

    def on_step(ev: smdiff.StepEvent) -> None:
        lams.extend(ev.lambda_[ev.masked].tolist())

    ids = model.generate_tokens(prompt, gen_len=a.gen_len, steps=a.steps, temperature=a.temperature,
                                top_p=a.top_p, seed=seed, softmask=softmask, on_step=on_step)
    lam = np.array(lams or [0.0])
    return (model.tokenizer_decode(ids), unigram_entropy(ids.tolist()), float(lam.mean()),
            float((lam > 0.01).mean()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--model", default=default_model())
    ap.add_argument("-p", "--prompt", default="It was a dark and stormy night, and")
    ap.add_argument("--gen-len", type=int, default=32)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--constant", type=float, default=0.3, help="lambda of the constant run")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--top-p", type=float, default=0.9)
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    with smdiff.Model(a.model) as model:
        settings = {"off": "off", "learned": model.softmask,
                    "constant": smdiff.SoftMask.from_model(model, mode="constant",
                                                           constant_lambda=a.constant)}
        print("model: %s\nlearned schedule: %r" % (a.model, settings["learned"]))
        totals = {name: [] for name in settings}
        for seed in range(1, a.seeds + 1):
            for name, sm in settings.items():
                text, h, lam, share = run(model, a.prompt, sm, seed, a)
                totals[name].append(h)
                print("\n[seed %d, soft-masking %s] unigram entropy %.3f nats, mean lambda %.4f, "
                      "lambda > 0.01 at %.1f%% of masked positions" % (seed, name, h, lam, 100 * share))
                print(a.prompt + text)
        print("\nmean unigram entropy: " + ", ".join("%s %.3f" % (n, np.mean(v)) for n, v in totals.items()))


if __name__ == "__main__":
    main()
