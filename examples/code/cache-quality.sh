#!/bin/sh
# The block caches' and the parallel rules' quality on code infilling,
# against exact uncached decoding (origin, temperature 0): docs/DECODING.md,
# "Cache quality". Run in an empty folder:
#   MODEL=$OUT/base.step750.gguf OUT=$OUT sh examples/code/cache-quality.sh
# ($OUT: the run of examples/code/reproduce-code.sh, with heldout/ and
# code-tok.gguf). Writes one JSONL per configuration, times.txt (wall
# seconds) and infill.csv / infill.md (examples/code/score_infill.py).
# Finished configurations are skipped when run again.
set -e
here=$(cd "$(dirname "$0")" && pwd)
S=${SMDIFF:-smdiff}
M=${MODEL:?MODEL: the code base model, e.g. \$OUT/base.step750.gguf}
N=${N:-60}
[ -f tasks.jsonl ] || python3 "$here/make_infill_tasks.py" "${OUT:?OUT: the code run}/heldout" -o tasks.jsonl \
    --seed 1 --smdiff "$S" --tokenizer "$OUT/code-tok.gguf" --max-tokens 256 --max-middle-tokens 64 --max-tasks 300
common="-m $M --tasks tasks.jsonl --seeds 1,2,3 --limit $N --temp 0 --threads 1 --no-progress"
run() { name=$1; shift; [ -f $name.jsonl ] && return; t0=$(date +%s.%N)
  $S eval infill $common -o $name.tmp --label $name "$@" && mv $name.tmp $name.jsonl
  echo "$name $(awk "BEGIN { print $(date +%s.%N) - $t0 }")" >> times.txt; }
run origin-off --strategy origin --steps-frac 0.25,1
run origin-prefix --strategy origin --steps-frac 0.25,1 --cache prefix
run origin-dual --strategy origin --steps-frac 0.25,1 --cache dual
run threshold-off --strategy threshold --threshold 0.9 --steps-frac 1
run threshold-dual --strategy threshold --threshold 0.9 --steps-frac 1 --cache dual
run factor-off --strategy factor --factor 1 --steps-frac 1
run factor-dual --strategy factor --factor 1 --steps-frac 1 --cache dual
python3 "$here/score_infill.py" --tasks tasks.jsonl origin-off.jsonl origin-prefix.jsonl origin-dual.jsonl \
    threshold-off.jsonl threshold-dual.jsonl factor-off.jsonl factor-dual.jsonl --csv infill.csv --md infill.md
