#!/bin/sh
# Run each test program, show its cmocka output, and finish with one
# summary line "N passed, N failed, N skipped" counting test cases.
# A test case that skips prints its reason through cmocka's skip message.
passed=0; failed=0; skipped=0; failed_bins=""
for t in "$@"; do
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    s=$(printf '%s\n' "$out" | sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' | tail -1)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
    if [ $rc -ne 0 ]; then
        failed_bins="$failed_bins $t"
        # A crash or exit before cmocka's summary still counts as a failure.
        [ -z "$f" ] && failed=$((failed + 1))
    fi
done
[ -n "$failed_bins" ] && echo "failing programs:$failed_bins"
echo "$passed passed, $failed failed, $skipped skipped"
[ -z "$failed_bins" ]
