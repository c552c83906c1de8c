#!/bin/sh
# abi-suppressions.sh HEADER -- the suppression file `make check-abi` and
# `make abi-baseline` give libabigail: abi/experimental.suppr (changes to
# functions of version node SMDIFF_EXPERIMENTAL_* are not ABI breaks) plus a
# rule dropping every function and type of the header's EXPERIMENTAL
# SECTION from the ABI corpus, so the baseline holds the stable part only.
# (abidw drops by name, not by symbol version, hence the lists.)
set -eu
cat abi/experimental.suppr
names=$(awk '/^ \* EXPERIMENTAL SECTION$/ {ex = 1}
             ex && /^SMDIFF_API / { line = $0
                 while (line !~ /\(/ && (getline more) > 0) line = line " " more
                 sub(/\(.*/, "", line); n = split(line, w, /[ *]+/); print w[n] }' "$1" | paste -sd '|' -)
types=$(awk '/^ \* EXPERIMENTAL SECTION$/ {ex = 1}
             ex && /^typedef / { if (match($0, /smdiff_[a-z0-9_]+/)) print substr($0, RSTART, RLENGTH) }' "$1" |
        sort -u | paste -sd '|' -)
printf '\n[suppress_function]\n  symbol_name_regexp = ^(%s)$\n  drop = true\n' "$names"
printf '\n[suppress_type]\n  name_regexp = ^(%s)$\n  drop = true\n' "$types"
