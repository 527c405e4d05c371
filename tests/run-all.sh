#!/bin/sh
# run-all.sh - run every test of Postern and print one summary line:
#     N passed, N failed
# unit tests (one count per test case), fuzz-corpus replays (one count per
# harness) and end-to-end tests (one count per pytest test). Exit status 1 if
# anything failed. BUILD names the build directory (absolute).
set -u
BUILD=${BUILD:-$(pwd)/build}
top=$(cd "$(dirname "$0")/.." && pwd)
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

count() {   # count "$1" passed, "$2" failed
    passed=$((passed + $1))
    failed=$((failed + $2))
}

echo "== unit tests ($BUILD/tests)"
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    if "$t" >"$log" 2>&1; then :; else cat "$log"; fi
    line=$(grep -E '^test_[a-z0-9_]+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "$(basename "$t"): crashed or printed no summary"; cat "$log"
        count 0 1
        continue
    fi
    echo "$line"
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/')
    f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/')
    count "$p" "$f"
done

echo "== fuzz corpora replay ($BUILD/fuzz)"
for h in "$BUILD"/fuzz/fuzz_*; do
    [ -x "$h" ] || continue
    name=$(basename "$h"); name=${name#fuzz_}
    files=$(find "$top/tests/fuzz/seeds/$name" "$top/tests/fuzz/corpus/$name" -type f 2>/dev/null)
    if [ -z "$files" ]; then
        echo "fuzz_$name: no corpus"; count 0 1; continue
    fi
    # shellcheck disable=SC2086
    if "$h" -runs=1 $files >"$log" 2>&1; then
        echo "fuzz_$name: $(echo "$files" | wc -l) inputs ok"; count 1 0
    else
        echo "fuzz_$name: FAILED"; tail -n 30 "$log"; count 0 1
    fi
done

echo "== end-to-end tests"
if ls "$top"/tests/e2e/test_*.py >/dev/null 2>&1; then
    PY=/usr/bin/python3
    POSTERN_BUILD="$BUILD" "$PY" -m pytest -q -p no:cacheprovider "$top/tests/e2e" >"$log" 2>&1
    rc=$?
    cat "$log"
    summary=$(grep -E '(passed|failed|error)' "$log" | tail -n 1)
    p=$(echo "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)
    f=$(echo "$summary" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || echo 0)
    e=$(echo "$summary" | grep -oE '[0-9]+ error' | grep -oE '[0-9]+' || echo 0)
    count "${p:-0}" "$(( ${f:-0} + ${e:-0} ))"
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ] && [ "${f:-0}" -eq 0 ]; then
        echo "pytest exited with status $rc"; count 0 1
    fi
else
    echo "(none yet)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
