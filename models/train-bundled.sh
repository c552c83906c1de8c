#!/bin/sh
# Rebuild the bundled models with smdiff alone: GPT-2's tokenizer
# (tests/data/tokenizers/gpt2) plus a <|mask|> token, the 68 cleaned Project
# Gutenberg novels (SMDIFF_SHARED_DATA names the folder whose
# corpora/gutenberg-clean holds them, see docs/MODEL.md), an 18M-parameter
# llada-block model on 2 threads. Writes into OUT (default build/bundled/;
# SMDIFF names the tool, default build/smdiff) and leaves the committed
# models alone.
#
#   models/train-bundled.sh          the default, smdiff-gutenberg-18m-sm.gguf
#                                    (about 1 h 30 min on the 2-core machine):
#     1. autoregressive pretraining (--ar, causal attention, next-token loss);
#     2. adaptation into a masked diffusion model: the AR weights read with
#        shifted logits (row i predicts token i+1, as Dream does), trained
#        with the plain MDLM objective;
#     3. soft-masking continued pretraining (two-pass, omega learned).
#   models/train-bundled.sh base     smdiff-gutenberg-18m.gguf, the binary
#                                    MDLM trained from scratch that
#                                    `make reproduce` starts from (about 1 h).
# Each training stage leaves OUT/<stage>.done and is skipped when it is there.
set -eu
cd "$(dirname "$0")/.."
DATA=${SMDIFF_SHARED_DATA:-}
OUT=${OUT:-build/bundled}
SMDIFF=${SMDIFF:-build/smdiff}
WHICH=${1:-default}
case "$WHICH" in default | base) ;; *) echo "usage: $0 [default|base]" >&2; exit 2 ;; esac
mkdir -p "$OUT/tok"
# Tokenizer: GPT-2's encoder.json + vocab.bpe (MIT) and the added mask token.
cp tests/data/tokenizers/gpt2/encoder.json tests/data/tokenizers/gpt2/vocab.bpe "$OUT/tok/"
cp models/gpt2-mask/added_tokens.json models/gpt2-mask/special_tokens_map.json "$OUT/tok/"
"$SMDIFF" tokenize "$OUT/tok" --save "$OUT/gpt2-mask.gguf"
TOK="$OUT/gutenberg.i32"
CORPUS="--corpus $DATA/corpora/gutenberg-clean"
[ -f "$TOK" ] && CORPUS=""
if [ -n "$CORPUS" ] && [ -z "$DATA" ]; then
    echo "train-bundled.sh: set SMDIFF_SHARED_DATA to the folder whose corpora/gutenberg-clean" \
        "holds the novels (docs/MODEL.md)" >&2
    exit 2
fi
SHAPE="--arch llada --vocab 50258 --embd 160 --layers 6 --heads 5 --ff 512 --mask-id 50257 --eos-id 50256"
RUN="--batch 16 --seq 128 --save-every 200 --eval-every 100 --threads 2 --f16 --progress"

stage() { # name, then smdiff train's arguments
    name=$1
    shift
    [ -f "$OUT/$name.done" ] && return 0
    echo "== $(date -u +%H:%M:%S) $name"
    "$SMDIFF" train "$@"
    touch "$OUT/$name.done"
}

if [ "$WHICH" = base ]; then
    # shellcheck disable=SC2086
    stage base $CORPUS --tokens "$TOK" --tokenizer "$OUT/gpt2-mask.gguf" \
        --out "$OUT/smdiff-gutenberg-18m.gguf" $SHAPE $RUN \
        --steps 2000 --lr 8e-4 --warmup 100 --cosine --no-sm --seed 1
    exit 0
fi
# shellcheck disable=SC2086
stage ar $CORPUS --tokens "$TOK" --tokenizer "$OUT/gpt2-mask.gguf" --out "$OUT/ar.gguf" \
    $SHAPE $RUN --ar --steps 1200 --lr 8e-4 --warmup 100 --cosine --seed 7
# shellcheck disable=SC2086
stage adapt --init "$OUT/ar.gguf" --shift-logits on --tokens "$TOK" --out "$OUT/adapted.gguf" \
    $RUN --no-sm --steps 3600 --lr 4e-4 --warmup 100 --cosine --seed 41
# shellcheck disable=SC2086
stage sm --init "$OUT/adapted.gguf" --tokens "$TOK" --out "$OUT/smdiff-gutenberg-18m-sm.gguf" \
    $RUN --sm-prob 0.8 --sm-init 0.5,6.66,-0.75 --steps 500 --lr 5e-5 --warmup 50 --cosine --seed 11
