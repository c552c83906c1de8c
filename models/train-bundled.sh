#!/bin/sh
# Rebuild the bundled default model, models/smdiff-gutenberg-18m.gguf, with
# smdiff alone: GPT-2's tokenizer plus a <|mask|> token, the 68 cleaned
# Project Gutenberg novels of ../shared/data, plain (binary-masking) MDLM
# training of an 18M-parameter llada-architecture model on 2 threads.
# Takes about 70 minutes on a 2-core Zen 5 machine. Writes into OUT (default
# build/bundled/) and leaves the committed model alone.
set -eu
cd "$(dirname "$0")/.."
DATA=${SMDIFF_SHARED_DATA:-../shared/data}
OUT=${OUT:-build/bundled}
mkdir -p "$OUT/tok"
# Tokenizer: GPT-2's encoder.json + vocab.bpe (MIT) and the added mask token.
cp "$DATA/tokenizers/gpt2/encoder.json" "$DATA/tokenizers/gpt2/vocab.bpe" "$OUT/tok/"
cp models/gpt2-mask/added_tokens.json models/gpt2-mask/special_tokens_map.json "$OUT/tok/"
build/smdiff tokenize "$OUT/tok" --save "$OUT/gpt2-mask.gguf"
build/smdiff train --corpus "$DATA/corpora/gutenberg-clean" --tokens "$OUT/gutenberg.i32" \
    --tokenizer "$OUT/gpt2-mask.gguf" --out "$OUT/smdiff-gutenberg-18m.gguf" \
    --arch llada --vocab 50258 --embd 160 --layers 6 --heads 5 --ff 512 \
    --mask-id 50257 --eos-id 50256 --steps 2000 --batch 16 --seq 128 \
    --lr 8e-4 --warmup 100 --cosine --no-sm --seed 1 --save-every 200 --eval-every 100 \
    --threads 2 --f16
