#!/bin/sh
# check-symbols.sh SHARED_LIB SONAME HEADER... -- the exports of the shared
# library against the public headers:
#  - nothing but smdiff_* functions (and the version nodes) is exported;
#  - every function a header declares is exported, and nothing else is;
#  - a function of a stable section is in node SMDIFF_0 or SMDIFF_0.<minor>,
#    one of smdiff.h's EXPERIMENTAL SECTION in SMDIFF_EXPERIMENTAL_*;
#  - the SONAME is the one given.
set -eu
lib=$1 soname=$2
shift 2
tmp=${TMPDIR:-/tmp}/smdiff-check-symbols.$$
trap 'rm -f "$tmp".*' EXIT

# exported: "name node" per function; anything else that is defined must be
# a version node's own symbol
nm -D --defined-only "$lib" | awk '{print $3}' > "$tmp.all"
grep -v '@' "$tmp.all" | grep -v '^SMDIFF_[A-Z0-9_.]*$' > "$tmp.bad" || true
grep '@' "$tmp.all" | grep -v '^smdiff_[a-z0-9_]*@@SMDIFF_[A-Z0-9_.]*$' >> "$tmp.bad" || true
if [ -s "$tmp.bad" ]; then echo "check-symbols: unexpected exports:"; cat "$tmp.bad"; exit 1; fi
grep '@@' "$tmp.all" | sed 's/@@/ /' | sort > "$tmp.exported"

# declared: "name section" per function, the section from the banners
for h in "$@"; do
    awk '/^ \* EXPERIMENTAL SECTION$/ {ex = 1}
         /^SMDIFF_API / { line = $0
             while (line !~ /\(/ && (getline more) > 0) line = line " " more
             sub(/\(.*/, "", line); n = split(line, w, /[ *]+/)
             print w[n], (ex ? "experimental" : "stable") }' "$h"
done | sort > "$tmp.declared"

status=0
cut -d' ' -f1 "$tmp.exported" > "$tmp.e"
cut -d' ' -f1 "$tmp.declared" > "$tmp.d"
missing=$(comm -13 "$tmp.e" "$tmp.d")
extra=$(comm -23 "$tmp.e" "$tmp.d")
[ -z "$missing" ] || { echo "check-symbols: declared but not exported (lib/smdiff.map?):"; echo "$missing"; status=1; }
[ -z "$extra" ] || { echo "check-symbols: exported but declared in no public header:"; echo "$extra"; status=1; }
join "$tmp.exported" "$tmp.declared" | while read -r name node section; do
    case "$section:$node" in
    stable:SMDIFF_0 | stable:SMDIFF_0.[0-9]* | experimental:SMDIFF_EXPERIMENTAL_*) ;;
    *) echo "check-symbols: $name ($section) is in version node $node"; exit 1 ;;
    esac
done || status=1
readelf -d "$lib" | grep -q "SONAME.*\[$soname\]" || { echo "check-symbols: SONAME is not $soname"; status=1; }
[ $status -eq 0 ] || exit 1
n=$(wc -l < "$tmp.exported")
echo "check-symbols: the $n public functions exported, each in its section's version node; SONAME $soname"
