#!/usr/bin/python3
"""Steps per block that threshold decoding takes on a model: how confident
it is, which is what decides threshold decoding's speed (docs/PERFORMANCE.md,
"Decoding: caches and batches").

For the first N .py files under HELDOUT, the prompt is the file's first 20
tokens and 224 tokens are generated in blocks of 32 at the given threshold
and temperature 0; a step counts for the block of the first position it
commits. Prints each file's steps per block and their mean and median.

    python3 examples/code/threshold_steps.py MODEL.gguf HELDOUT [--files 12] [--threshold 0.9]
"""
import argparse
import glob

import numpy as np

import smdiff


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("heldout")
    ap.add_argument("--files", type=int, default=12)
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--block", type=int, default=32)
    ap.add_argument("--gen", type=int, default=224)
    a = ap.parse_args()
    m = smdiff.Model(a.model, threads=1)
    files = sorted(glob.glob(a.heldout + "/**/*.py", recursive=True))[:a.files]
    if not files:
        ap.error("no .py files under " + a.heldout)
    per_block = []
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as fh:
            ids = m.prompt_ids(fh.read()[:2000])[:20]
        ev = []
        m.generate_tokens(ids, gen_len=a.gen, block_len=a.block, steps=a.gen, strategy="threshold",
                          threshold=a.threshold, temperature=0.0, on_step=ev.append, stop_at_eos=False)
        blocks = [0] * (a.gen // a.block)
        prev = None
        for e in ev:
            c = np.asarray(e.canvas)
            before = prev if prev is not None else np.full_like(c, m.mask_id)
            new = np.nonzero((c != m.mask_id) & (before == m.mask_id))[0]
            new = new[new >= e.n_prompt]
            if len(new):
                blocks[(int(new[0]) - e.n_prompt) // a.block] += 1
            prev = c
        per_block += blocks
        print(f, blocks, flush=True)
    print("steps per block of %d: mean %.2f, median %.1f, over %d blocks"
          % (a.block, np.mean(per_block), np.median(per_block), len(per_block)))


if __name__ == "__main__":
    main()
