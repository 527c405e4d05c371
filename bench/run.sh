#!/bin/sh
# run.sh - run every benchmark in bench/ (each BENCH.sh but this one,
# install-deps.sh and lib.sh, the functions they share) against the build
# in $1, after installing the packages only the benchmarks need. Called by
# "make bench". Exit 1 if any failed.
#
# Each benchmark prints its table and ends with one "NAME: ..." result line;
# run.sh repeats those lines at the end, one per scenario.
set -u
BUILD=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
case "$BUILD" in /*) ;; *) BUILD="$top/$BUILD" ;; esac

# Missing bench packages: as root they are installed; otherwise the scripts
# run what they can and say what they skip.
sh "$top/bench/install-deps.sh" || echo "bench: some benchmark packages are missing (see above)" >&2

summary=$(mktemp)
# One workspace for all the benchmarks, removed only after the last one:
# removing one benchmark's queue files would slow the next one's file
# creation for minutes (see run_mta in lib.sh).
BENCH_TMPDIR=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/postern-benches.XXXXXX")
chmod 0755 "$BENCH_TMPDIR"
export BENCH_TMPDIR
trap 'rm -f "$summary"; [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$BENCH_TMPDIR"' EXIT INT TERM
rc=0
for b in "$top"/bench/*.sh; do
    name=$(basename "$b" .sh)
    case "$name" in run|install-deps|lib) continue ;; esac
    echo "== bench: $name"
    out=$(mktemp); stf=$(mktemp)
    # POSIX sh has no PIPESTATUS: the benchmark's status goes through a file.
    { BENCH_KEEP=1 bash "$b" "$BUILD"; echo $? > "$stf"; } | tee "$out"
    st=$(cat "$stf")
    if [ "$st" != 0 ]; then
        rc=1
        echo "$name: FAILED" >> "$summary"
    fi
    grep "^$name: " "$out" >> "$summary" || true
    rm -f "$out" "$stf"
done
echo
echo "== bench results"
cat "$summary"
exit $rc
