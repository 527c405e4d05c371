#!/bin/bash
# receive.sh - receive-only benchmark: Postern vs Postfix on this machine.
#
# Usage: bench/receive.sh [BUILD_DIR]        (BUILD_DIR default: build)
#
# Each MTA in turn (never both at once) gets a fresh private instance in a
# temp dir on a free 127.0.0.1 port, with delivery held (no qmgr in
# master.cf, so accepted mail stays in incoming/), and is driven by Postfix's
# smtp-source: BENCH_MESSAGES messages of BENCH_SIZE bytes over
# BENCH_SESSIONS parallel sessions, one message per connection. Both MTAs
# fsync a message before they answer 250 to its DATA.
#
# Passes per MTA and round:
#   1. warm-up   BENCH_WARMUP messages, not measured (daemons get started)
#   2. timed     wall clock of smtp-source, and CPU of the instance's whole
#                process tree from /proc (proctree.py) before and after
#   3. strace    round 1 only: a smaller pass (BENCH_STRACE_MESSAGES) under
#                strace -f attached to every process of the instance, summed
#                by stracesum.py: system calls and fsyncs per message, per
#                call and per program. Separate, so strace does not slow the
#                timed pass. BENCH_STRACE_MESSAGES=0 skips it.
# Afterwards the number of files in incoming/ must equal the number of
# messages sent; anything else fails the benchmark loudly. BENCH_ROUNDS
# rounds alternate the order of the MTAs; the report gives the median.
#
# Environment:
#   BENCH_MESSAGES=10000  BENCH_SESSIONS=20  BENCH_SIZE=4096  BENCH_WARMUP=100
#   BENCH_STRACE_MESSAGES=1000  BENCH_ROUNDS=3  BENCH_MTAS="postern postfix"
#   BENCH_TMPDIR=/tmp (where the instances and their queues live)
#   BENCH_RESULTS=bench/results  BENCH_KEEP=1 keeps the temp dir
#   BENCH_TIMEOUT=240 (seconds allowed to one smtp-source run)
#
# Postfix needs root (its master starts as root); not root -> Postfix is
# skipped with a message and Postern runs alone. Prints a table on stdout,
# writes it with machine information to $BENCH_RESULTS/receive-DATE.md and
# ends with one line "receive: ..." for "make bench". Exit 0 only if every
# MTA that ran received and queued every message in every round.
#
# The instances, passes, CPU accounting, strace pass and report are the
# functions of bench/lib.sh, shared with deliver.sh; this file holds what is
# particular to receiving: delivery held, and the incoming/ count.
set -euo pipefail

BENCH=receive
. "$(dirname "$0")/lib.sh"             # settings, instances, passes, report (see lib.sh)

HOLD_DELIVERY=1                        # no qmgr: accepted mail stays in incoming/
FSYNC_MIN=1                            # the queue file, before the 250
RCPTS=(bench-rcpt@example.com)         # remote, relayed: the client is in mynetworks

postfix_main_extra() {                 # $1 = dir
    cat <<EOF
# Delivery held: qmgr is not running, and it is qmgr that hands cleanup the
# flow-control tokens; without them every cleanup would pause in_flow_delay
# (1s) per message. No pause, as with a qmgr that keeps up.
in_flow_delay = 0s
# No local delivery happens; do not depend on /etc/aliases.db.
alias_maps =
alias_database =
EOF
}

bench_settle() { :; }                  # smtp-source's 250s are the end of the work

bench_check() {                        # $1 = mta, $2 = dir
    local mta=$1 d=$2 in_q
    # Every message sent must be a file in incoming/ now.
    in_q=$(count_files "${QDIR[$mta]}/incoming")
    if [ "$in_q" -ne "$EXPECT" ]; then
        show_failure "$mta" "$d/timed.out"
        die "$mta: incoming/ holds $in_q files, expected $EXPECT: messages were lost or not queued"
    fi
    log "$mta: incoming/ holds $in_q files as expected"
}

report_intro() {
    echo "# Receive-only benchmark, $(date '+%Y-%m-%d %H:%M:%S %Z')"
    echo
    echo "$N messages of $SIZE bytes over $S parallel sessions (smtp-source, one message per"
    echo "connection), delivery held (no qmgr), fsync before every 250; median of $ROUNDS rounds, each"
    echo "on fresh instances. CPU: every process of the instance (user + system)."
    echo "System calls: a separate, untimed pass of $NS messages under strace -f (round 1)."
}

bench_main
