#!/usr/bin/python3
"""Tiny models for the quantised-weight tests.

The K-quants need rows that are a multiple of 256, so besides tiny_models.py's
d = 32 models this builds `tiny_dreamk`: the same dream (Qwen2) block with
d = 256, one layer, random weights (tiny_models.make_weights, seed 5678).

  source PATH   write its F32 GGUF to PATH (not committed: the quantised
                files made from it by llama.cpp's ggml quantiser are; see
                tests/data/SOURCES.md)

Run: /usr/bin/python3 tests/ref/quant_models.py source /tmp/tiny_dreamk_f32.gguf
"""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_models  # noqa: E402

DREAMK = dict(vocab=160, d=256, layers=1, heads=4, kv_heads=2, ffn=256, ctx=64,
              rope_base=1.0e6, eps=1e-6, mask_id=158, bos=0, eos=1, pad=2, bias=True,
              shift=True, seed=5678)


def source(path):
    w = tiny_models.make_weights(DREAMK)
    tmp = tempfile.mkdtemp()
    try:
        tiny_models.OUT = tmp
        tiny_models.export_gguf("dream", DREAMK, w, "f32")
        shutil.move(os.path.join(tmp, "tiny_dream_f32.gguf"), path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "source":
        source(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
