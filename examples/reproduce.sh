#!/bin/sh
# Reproduce docs/RESULTS.md end to end with smdiff alone: soft-masked
# continued pretraining against binary masking, at small scale.
#
#   1. tokens   the 68 Gutenberg novels with the bundled model's GPT-2
#               tokenizer (as models/train-bundled.sh does)
#   2. ref      an autoregressive reference model of the bundled model's shape
#               (causal attention, next-token loss), for generative perplexity
#               and MAUVE features
#   3. cpt      from the bundled binary MDLM, the same number of steps on the
#               same data order (same seed: same windows, t and masks):
#               (a) binary masking, (b) soft-masking p = 0.8, k = 3, learnable
#               omega; run side by side, one thread each
#   4. elbo     validation bound of base, (a), (b) on identical seeded noise;
#               (b) also with its two-pass bound
#   4b. gate    what SM feeds back: entropy, top-k accuracy, lambda
#   5. samples  generative perplexity, unigram entropy and MAUVE at step
#               budgets L/8..L, 3 seeds: base, (a) SM off, (b) SM on and off,
#               (c) training-free constant lambda on the base model
#   6. report   tables and SVG plots into docs/results/
#
# Every stage is skipped when its output exists, so an interrupted run
# continues where it stopped (rm -r $OUT to start over). About 1 h 40 min on
# a 2-core machine (the 2-core AMD EPYC of docs/RESULTS.md): ref 45 min,
# cpt 26 min, elbo 8 min, samples 22 min.
#
# Environment: SMDIFF_SHARED_DATA (the data folder: its corpora/gutenberg-clean
# holds the 68 cleaned novels, see docs/RESULTS.md "Data"; needed until the
# corpus is tokenized), OUT (default build/reproduce), SMDIFF (default
# build/smdiff), STEPS (continued-pretraining steps, default 500), N (samples
# per seed and budget, default 100), REPORT (where the tables and plots go,
# default docs/results).
set -eu
cd "$(dirname "$0")/.."
DATA=${SMDIFF_SHARED_DATA:-}
OUT=${OUT:-build/reproduce}
SMDIFF=${SMDIFF:-build/smdiff}
STEPS=${STEPS:-500}
N=${N:-100}
REPORT=${REPORT:-docs/results}
BASE=models/smdiff-gutenberg-18m.gguf
TOK=$OUT/gutenberg.i32
mkdir -p "$OUT"
stamp() { echo "== $(date -u +%H:%M:%S) $*"; }

# 1 + 2: the AR run tokenizes the corpus on its way (tokenizer taken from the
# bundled model's file).
# (checkpoints appear before a run ends, so each training stage leaves a
# .done marker when it finishes and is redone from the start without one)
if [ ! -f "$OUT/ref-ar.done" ]; then
    stamp "reference AR model"
    CORPUS="--corpus $DATA/corpora/gutenberg-clean"
    [ -f "$TOK" ] && CORPUS=""
    if [ -n "$CORPUS" ] && [ -z "$DATA" ]; then
        echo "reproduce.sh: set SMDIFF_SHARED_DATA to the folder whose corpora/gutenberg-clean" \
            "holds the novels (docs/RESULTS.md, Data)" >&2
        exit 2
    fi
    # shellcheck disable=SC2086
    "$SMDIFF" train $CORPUS --tokens "$TOK" --tokenizer "$BASE" --out "$OUT/ref-ar.gguf" \
        --arch llada --vocab 50258 --embd 160 --layers 6 --heads 5 --ff 512 \
        --mask-id 50257 --eos-id 50256 --ar --steps 1200 --batch 16 --seq 128 \
        --lr 8e-4 --warmup 100 --cosine --seed 7 --save-every 200 --eval-every 100 \
        --threads 2 --f16
    touch "$OUT/ref-ar.done"
fi

# 3: (a) and (b) share every option but the objective.
CPT="--init $BASE --tokens $TOK --steps $STEPS --batch 16 --seq 128 --lr 2e-4 --warmup 50 --cosine
     --seed 11 --save-every 100 --eval-every 50 --threads 1 --f16 --progress"
if [ ! -f "$OUT/cpt.done" ]; then
    stamp "continued pretraining: (a) binary and (b) soft-masking, side by side"
    # shellcheck disable=SC2086
    "$SMDIFF" train $CPT --out "$OUT/cpt-binary.gguf" --no-sm > "$OUT/cpt-binary.log" 2>&1 &
    A=$!
    # shellcheck disable=SC2086
    "$SMDIFF" train $CPT --out "$OUT/cpt-sm.gguf" --sm-prob 0.8 --sm-init 0.5,6.66,-0.75 \
        > "$OUT/cpt-sm.log" 2>&1 &
    B=$!
    wait $A
    wait $B
    touch "$OUT/cpt.done"
fi

# 4: validation bound, identical noise for every model.
if [ ! -f "$OUT/elbo.csv" ]; then
    stamp "validation bound"
    ELBO="--tokens $TOK --seq 128 --windows 256 --draws 4 --seed 1 --threads 2 --csv $OUT/elbo.tmp"
    rm -f "$OUT/elbo.tmp"
    # shellcheck disable=SC2086
    "$SMDIFF" eval elbo -m "$BASE" -m "$OUT/cpt-binary.gguf" -m "$OUT/cpt-sm.gguf" $ELBO
    # shellcheck disable=SC2086
    "$SMDIFF" eval elbo -m "$OUT/cpt-sm.gguf" --two-pass $ELBO
    mv "$OUT/elbo.tmp" "$OUT/elbo.csv"
fi

# 4b: what soft-masking feeds back (entropy, top-k accuracy, lambda).
for m in base:$BASE sm-cpt:$OUT/cpt-sm.gguf; do
    [ -f "$OUT/gate-${m%%:*}.txt" ] && continue
    "$SMDIFF" eval gate -m "${m#*:}" --tokens "$TOK" --threads 2 > "$OUT/gate-${m%%:*}.tmp"
    mv "$OUT/gate-${m%%:*}.tmp" "$OUT/gate-${m%%:*}.txt"
done

# 5: samples, two configurations at a time (one thread each).
S="--ref $OUT/ref-ar.gguf --tokens $TOK --len 32 --seeds 1,2,3 --n $N --strategy origin --temp 1
   --threads 1 --show 3 --progress"
run_samples() { # name, then smdiff eval samples arguments
    name=$1
    shift
    [ -f "$OUT/samples-$name.csv" ] && return 0
    # shellcheck disable=SC2086
    "$SMDIFF" eval samples "$@" $S --label "$name" --csv "$OUT/samples-$name.tmp" \
        > "$OUT/samples-$name.txt" 2> "$OUT/samples-$name.progress"
    mv "$OUT/samples-$name.tmp" "$OUT/samples-$name.csv"
}
stamp "samples"
rm -f "$OUT"/samples-*.tmp
(run_samples base -m "$BASE" --softmask off
 run_samples sm-cpt -m "$OUT/cpt-sm.gguf" --softmask entropy
 run_samples const-0.2 -m "$BASE" --softmask constant --sm-lambda 0.2) &
P=$!
run_samples binary-cpt -m "$OUT/cpt-binary.gguf" --softmask off
run_samples sm-cpt-off -m "$OUT/cpt-sm.gguf" --softmask off
run_samples const-0.5 -m "$BASE" --softmask constant --sm-lambda 0.5
wait $P

# 6: tables and plots.
stamp "report"
"$SMDIFF" info "$OUT/cpt-sm.gguf" > "$OUT/cpt-sm.info"
python3 examples/reproduce_report.py "$OUT" "$REPORT"
stamp "done: $REPORT/tables.md and $REPORT/*.svg"
