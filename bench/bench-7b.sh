#!/bin/sh
# bench-7b.sh -- docs/PERFORMANCE.md's 7B figures (issue 15, item 8): write a
# Dream-7B-shaped model with random weights as Q4_K_M (bench/tools/
# make_model.c: tile by tile, never in F32), load it by mmap, time one
# denoising step at 256 positions and compare the peak resident memory with
# the file size + 20% + the activations; print the memory plan at 512 and
# 2048 positions. The file (about 4.7 GB) is deleted afterwards.
#   BUILD (default build/cc), BENCH_7B_DIR (default /tmp), BENCH_THREADS
#   (default: all online CPUs), BENCH_7B_TYPE (default q4_k_m)
set -eu
BUILD=${BUILD:-build/cc}
DIR=${BENCH_7B_DIR:-/tmp}
TYPE=${BENCH_7B_TYPE:-q4_k_m}
THREADS=${BENCH_THREADS:-0}
FILE="$DIR/smdiff-bench-dream7b-$TYPE-$$.gguf"
trap 'rm -f "$FILE"' EXIT INT TERM
free_kb=$(df -Pk "$DIR" | awk 'NR == 2 {print $4}')
if [ "$free_kb" -lt 6000000 ]; then
    echo "bench-7b: $DIR has $((free_kb / 1024)) MB free; the file needs about 4.7 GB (set BENCH_7B_DIR)" >&2
    exit 1
fi
start=$(date +%s)
"$BUILD/tools/make_model" "$FILE" --shape dream-7b --type "$TYPE" --threads "$THREADS" \
    --tokenizer tests/data/tokenizers/dream-qwen2.5
echo "made in $(( $(date +%s) - start )) s"
"$BUILD/tools/model_step" "$FILE" --threads "$THREADS" --positions 256 --plan 256,512,2048
