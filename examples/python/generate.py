#!/usr/bin/env python3
"""Generate text with smdiff from Python.

    python3 examples/python/generate.py -p "It was a dark and stormy night, and"
    python3 examples/python/generate.py --softmask off --strategy low_confidence --block-len 16
    python3 examples/python/generate.py -p "It was a cold night, and" \
        --suffix " and she never came back." --gen-len 12      # infilling

The model defaults to $SMDIFF_MODEL, else the bundled
models/smdiff-gutenberg-18m-sm.gguf of this repository. The package must be
installed (docs/PYTHON.md) and find libsmdiff (SMDIFF_LIB or the loader path).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import smdiff

BUNDLED = Path(__file__).resolve().parents[2] / "models" / "smdiff-gutenberg-18m-sm.gguf"


def default_model() -> str:
    return os.environ.get("SMDIFF_MODEL") or str(BUNDLED)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--model", default=default_model())
    ap.add_argument("-p", "--prompt", default="It was a dark and stormy night, and")
    ap.add_argument("--gen-len", type=int, default=64)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--block-len", type=int, default=None)
    ap.add_argument("--strategy", default=None, help="e.g. maskgit_plus, low_confidence, entropy")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--top-p", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--softmask", default=None, choices=["off", "entropy", "constant"],
                    help="default: the schedule the model stores")
    ap.add_argument("--suffix", default=None, help="text after the generation (infilling)")
    ap.add_argument("--chat", action="store_true", help="wrap the prompt in the chat template")
    ap.add_argument("--show-steps", action="store_true", help="print the canvas after every step")
    a = ap.parse_args()

    with smdiff.Model(a.model) as model, model.tokenizer as tok:
        def show(ev: smdiff.StepEvent) -> None:
            text = "".join("_" if t == ev.mask_id else tok.piece(int(t)).decode("utf-8", "replace")
                           for t in ev.generated)
            print("step %3d/%d  %s" % (ev.step + 1, ev.n_steps, text.replace("\n", " ")))

        text = model.generate(a.prompt, gen_len=a.gen_len, steps=a.steps, block_len=a.block_len,
                              strategy=a.strategy, temperature=a.temperature, top_p=a.top_p,
                              seed=a.seed, softmask=a.softmask, chat=a.chat, suffix=a.suffix,
                              on_step=show if a.show_steps else None)
    print(a.prompt + text + (a.suffix or ""))


if __name__ == "__main__":
    main()
