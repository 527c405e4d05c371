#!/bin/sh
# run-unit.sh - run only the C unit tests of $BUILD.
set -u
BUILD=${BUILD:-build}
rc=0
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    "$t" | tail -n 1 || rc=1
done
exit $rc
