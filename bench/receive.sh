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
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$top/$build" ;; esac

N=${BENCH_MESSAGES:-10000}
S=${BENCH_SESSIONS:-20}
SIZE=${BENCH_SIZE:-4096}
WARM=${BENCH_WARMUP:-100}
NS=${BENCH_STRACE_MESSAGES:-1000}
ROUNDS=${BENCH_ROUNDS:-3}
MTAS=${BENCH_MTAS:-"postern postfix"}
TMPBASE=${BENCH_TMPDIR:-/tmp}
RESULTS=${BENCH_RESULTS:-$top/bench/results}
TIMEOUT=${BENCH_TIMEOUT:-240}
SENDER=bench-sender@example.org
RCPT=bench-rcpt@example.com

for v in N S SIZE WARM NS TIMEOUT ROUNDS; do
    case "${!v}" in ''|*[!0-9]*) echo "receive: $v must be a number" >&2; exit 2 ;; esac
done
if [ "$N" -eq 0 ] || [ "$S" -eq 0 ] || [ "$ROUNDS" -eq 0 ]; then
    echo "receive: BENCH_MESSAGES, BENCH_SESSIONS and BENCH_ROUNDS must be > 0" >&2; exit 2
fi

proctree() { /usr/bin/python3 "$top/bench/proctree.py" "$@"; }
log() { echo "receive: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }
now_ns() { date +%s%N; }
have() { command -v "$1" >/dev/null 2>&1; }
count_files() { find "$1" -type f 2>/dev/null | wc -l; }

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {                          # wait (at most 10s) until 127.0.0.1:$1 accepts
    for _ in $(seq 1 100); do
        if /usr/bin/python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1).close()' \
            "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------- workspace
work=$(mktemp -d "$TMPBASE/postern-bench.XXXXXX")
chmod 0755 "$work"                     # the unprivileged daemons must reach their queues
declare -A MASTER=() STOPCMD=() LOGF=() QDIR=() RATE=() CPUMS=() SYSC=() FSYNC=() STATUS=() ROUNDS_OF=()

stop_instance() {                      # $1 = mta; stops it, then kills what is left, by PID
    local mta=$1 pid=${MASTER[$1]:-} pids p alive
    [ -n "$pid" ] || return 0
    pids=$(proctree pids "$pid" 2>/dev/null || true)
    eval "${STOPCMD[$mta]}" >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do
        alive=""
        for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
        [ -z "$alive" ] && break
        sleep 0.1
    done
    for p in $pids; do
        if kill -0 "$p" 2>/dev/null; then
            log "$mta: process $p still running after stop; killing it"
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
    MASTER[$mta]=""
}

on_exit() {
    local rc=$?
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        log "keeping $work"
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- Postfix
setup_postfix() {                      # $1 = dir, $2 = port
    local d=$1 port=$2 pid=""
    mkdir -p "$d/etc" "$d/queue" "$d/data"
    chown "$(postconf -d -h mail_owner)" "$d/data"     # master.lock and caches live there
    # Private instance: only what makes it private and loopback-only is set,
    # and what holding delivery needs; everything else is Postfix's default
    # (cleanup fsyncs the queue file before smtpd answers 250).
    cat > "$d/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
myhostname = postfix-bench.localdomain
maillog_file = $d/maillog
maillog_file_prefixes = $d
# Delivery held: qmgr is not running, and it is qmgr that hands cleanup the
# flow-control tokens; without them every cleanup would pause in_flow_delay
# (1s) per message. No pause, as with a qmgr that keeps up.
in_flow_delay = 0s
# No local delivery happens; do not depend on /etc/aliases.db.
alias_maps =
alias_database =
EOF
    # The packaged master.cf with: smtpd on our port only, no chroot (Debian
    # turns it on and then needs files copied into the jail; upstream's
    # default is off), and qmgr commented out so mail stays in incoming/.
    awk -v listen="127.0.0.1:$port" '
        /^smtp[ \t]+inet[ \t]/ { $1 = listen }
        /^qmgr[ \t]/           { print "#" $0 " (held by bench/receive.sh)"; next }
        /^[a-z0-9.:-]+[ \t]+(inet|unix|fifo|pass|unix-dgram)[ \t]/ && NF >= 8 { $5 = "n" }
        { print }
    ' /etc/postfix/master.cf > "$d/etc/master.cf"
    grep -q "^#qmgr" "$d/etc/master.cf" || die "postfix: could not hold qmgr in master.cf"
    postfix -c "$d/etc" check >"$d/check.log" 2>&1 ||
        { cat "$d/check.log" "$d/maillog" >&2; die "postfix check failed"; }
    postfix -c "$d/etc" start >"$d/start.log" 2>&1 ||
        { cat "$d/start.log" "$d/maillog" >&2; die "postfix start failed"; }
    for _ in $(seq 1 100); do
        pid=$(tr -dc 0-9 < "$d/queue/pid/master.pid" 2>/dev/null || true)
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && break
        pid=""; sleep 0.1
    done
    [ -n "$pid" ] || die "postfix: master did not start (see $d/maillog)"
    MASTER[postfix]=$pid
    STOPCMD[postfix]="postfix -c '$d/etc' stop"
    LOGF[postfix]="$d/maillog"
    QDIR[postfix]="$d/queue"
    wait_port "$port" || die "postfix: nothing listens on 127.0.0.1:$port"
}

# ---------------------------------------------------------------- Postern
setup_postern() {                      # $1 = dir, $2 = port
    local d=$1 port=$2 postern="$build/bin/postern" out pid qd
    [ -x "$postern" ] || die "postern: $postern not found (build first: make BUILD=$build)"
    "$postern" init "$d" --listen "127.0.0.1:$port" >/dev/null || die "postern init failed"
    # Receive path services, until "postern init" writes them itself.
    grep -qE '^cleanup[[:space:]]' "$d/master.cf" ||
        echo "cleanup        unix  -       -       n       -       0       cleanup" >> "$d/master.cf"
    grep -qE '^rewrite[[:space:]]' "$d/master.cf" ||
        echo "rewrite        unix  -       -       n       -       -       trivial-rewrite" >> "$d/master.cf"
    # Delivery held: no qmgr, so accepted mail stays in incoming/.
    sed -i -E 's/^(qmgr[[:space:]].*)$/#\1 (held by bench\/receive.sh)/' "$d/master.cf"
    qd=$("$postern" -c "$d" conf queue_directory | sed -n 's/^queue_directory = //p')
    [ -n "$qd" ] || die "postern: cannot read queue_directory"
    out=$("$postern" -c "$d" start 2>&1) || { echo "$out" >&2; die "postern start failed"; }
    out=$("$postern" -c "$d" status 2>&1) || true
    pid=$(echo "$out" | sed -n 's/^running (pid \([0-9]*\)).*/\1/p')
    [ -n "$pid" ] || die "postern: master not running after start: $out"
    MASTER[postern]=$pid
    STOPCMD[postern]="'$postern' -c '$d' stop"
    LOGF[postern]="$d/log/maillog"
    QDIR[postern]="$qd"
    wait_port "$port" || die "postern: nothing listens on 127.0.0.1:$port"
}

# ---------------------------------------------------------------- passes
smtp_load() {                          # $1 = port, $2 = messages, $3 = output file
    timeout "$TIMEOUT" smtp-source -c -l "$SIZE" -m "$2" -s "$S" -f "$SENDER" -t "$RCPT" \
        "127.0.0.1:$1" >"$3" 2>&1
}

show_failure() {                       # $1 = mta, $2 = smtp-source output
    log "$1: smtp-source output (last lines):"
    tail -c 2000 "$2" | tr '\r' '\n' | tail -n 5 >&2 || true
    log "$1: maillog (last lines):"
    tail -n 15 "${LOGF[$1]}" >&2 2>/dev/null || true
}

strace_pass() {                        # $1 = mta, $2 = dir, $3 = port; sets SYSC, FSYNC
    local mta=$1 d=$2 port=$3 spids sargs=() spid p
    spids=$(proctree pids "${MASTER[$mta]}")
    : > "$d/strace.names"
    for p in $spids; do
        sargs+=(-p "$p")
        echo "$p $(cat "/proc/$p/comm" 2>/dev/null || echo '?')" >> "$d/strace.names"
    done
    strace -f -qq -o "$d/strace.raw" "${sargs[@]}" 2>"$d/strace.err" &
    spid=$!
    sleep 1                            # let strace attach to every process
    if ! smtp_load "$port" "$NS" "$d/strace.out"; then
        kill -INT "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true
        show_failure "$mta" "$d/strace.out"; die "$mta: smtp-source failed in the strace pass"
    fi
    sleep 0.5                          # the last sessions' disconnect work
    kill -INT "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    if [ ! -s "$d/strace.raw" ]; then
        log "$mta: strace traced nothing, no system call counts: $(head -c 300 "$d/strace.err")"
        return 0
    fi
    if ! /usr/bin/python3 "$top/bench/stracesum.py" "$d/strace.raw" "$d/strace.names" "$NS" \
            > "$work/$mta.strace-sum" 2>"$d/stracesum.err"; then
        cat "$d/stracesum.err" "$d/strace.err" >&2
        die "$mta: could not summarise the strace pass"
    fi
    SYSC[$mta]=$(sed -n 's/^total_per_message //p' "$work/$mta.strace-sum")
    FSYNC[$mta]=$(sed -n 's/^fsync_per_message //p' "$work/$mta.strace-sum")
    sed -i '1,3d' "$work/$mta.strace-sum"
    log "$mta: ${SYSC[$mta]} system calls and ${FSYNC[$mta]} fsync per message (strace pass, $NS messages)"
    # Same durability or no comparison: every message must be synced.
    if awk -v f="${FSYNC[$mta]}" 'BEGIN { exit !(f < 1) }'; then
        die "$mta: only ${FSYNC[$mta]} fsync per message: not the durability this benchmark compares"
    fi
}

run_mta() {                            # $1 = mta, $2 = round (strace pass in round 1 only)
    local mta=$1 round=$2 d="$work/$1" port t0 t1 c0 c1 hz in_q expect
    rm -rf "$d"
    port=$(free_port)
    log "$mta: round $round: fresh instance in $d, SMTP on 127.0.0.1:$port"
    "setup_$mta" "$d" "$port"
    hz=$(getconf CLK_TCK)

    # 1. warm-up
    expect=0
    if [ "$WARM" -gt 0 ]; then
        smtp_load "$port" "$WARM" "$d/warmup.out" ||
            { show_failure "$mta" "$d/warmup.out"; die "$mta: warm-up failed"; }
        expect=$WARM
    fi

    # 2. timed pass
    sync
    log "$mta: timed pass, $N messages of $SIZE bytes over $S sessions"
    echo "$mta round $round: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$work/load"
    c0=$(proctree ticks "${MASTER[$mta]}")
    t0=$(now_ns)
    if ! smtp_load "$port" "$N" "$d/timed.out"; then
        show_failure "$mta" "$d/timed.out"; die "$mta: smtp-source failed in the timed pass"
    fi
    t1=$(now_ns)
    c1=$(proctree ticks "${MASTER[$mta]}")
    expect=$((expect + N))
    RATE[$mta]=$(awk -v n="$N" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
    CPUMS[$mta]=$(awk -v n="$N" -v t=$((c1 - c0)) -v hz="$hz" 'BEGIN { printf "%.2f", t * 1000 / hz / n }')
    log "$mta: ${RATE[$mta]} messages/s, ${CPUMS[$mta]} ms CPU per message"

    # 3. strace pass
    SYSC[$mta]="-"; FSYNC[$mta]="-"
    if [ "$round" -eq 1 ] && [ "$NS" -gt 0 ]; then
        if have strace; then
            strace_pass "$mta" "$d" "$port"
            expect=$((expect + NS))
        else
            log "$mta: strace not installed, no system call counts (sh bench/install-deps.sh)"
        fi
    fi

    # Every message sent must be a file in incoming/ now.
    in_q=$(count_files "${QDIR[$mta]}/incoming")
    if [ "$in_q" -ne "$expect" ]; then
        show_failure "$mta" "$d/timed.out"
        die "$mta: incoming/ holds $in_q files, expected $expect: messages were lost or not queued"
    fi
    log "$mta: incoming/ holds $in_q files as expected"
    echo "${RATE[$mta]} ${CPUMS[$mta]} ${SYSC[$mta]} ${FSYNC[$mta]} $((t1 - t0))" > "$work/$mta.r$round"
    stop_instance "$mta"
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$d"
}

# ---------------------------------------------------------------- main
have smtp-source || die "smtp-source missing: run (as root) sh bench/install-deps.sh"
rc=0
run=""
for mta in $MTAS; do
    case "$mta" in
        postfix)
            if [ "$(id -u)" -ne 0 ]; then
                log "postfix: SKIPPED: its master must start as root (run the bench as root to compare)"
                STATUS[postfix]=skipped; continue
            fi
            if ! have postfix || [ ! -f /etc/postfix/master.cf ]; then
                log "postfix: SKIPPED: not installed (run as root: sh bench/install-deps.sh)"
                STATUS[postfix]=skipped; continue
            fi
            ;;
        postern) ;;
        *) die "unknown MTA '$mta' in BENCH_MTAS" ;;
    esac
    run="$run $mta"
    STATUS[$mta]=ok
done
[ -n "$run" ] || die "no MTA to run"

# Rounds alternate the order of the MTAs, so a drift of the machine's load
# does not always favour the same one; every round uses fresh instances.
order=$run
for round in $(seq 1 "$ROUNDS"); do
    for mta in $order; do
        [ "${STATUS[$mta]}" = ok ] || continue
        # Each run is a subshell whose exit (normal, failure or signal) stops
        # its instance; a failure of one MTA is reported, the other goes on.
        # (Not an "if" condition: bash would turn off set -e inside it.)
        set +e
        ( set -e; trap 'stop_instance "$mta"' EXIT; trap 'exit 130' INT TERM; run_mta "$mta" "$round" )
        st=$?
        set -e
        [ "$st" -ne 130 ] || exit 130
        if [ "$st" -ne 0 ] || [ ! -s "$work/$mta.r$round" ]; then
            STATUS[$mta]=FAILED; rc=1
        fi
    done
    order=$(for m in $order; do echo "$m"; done | tac | tr '\n' ' ')
done

# Median over the rounds for rate and CPU; system calls come from round 1.
median() {                             # numbers on stdin; $1 = printf format
    sort -n | awk -v fmt="$1\n" '{ v[NR] = $1 }
        END { if (NR == 0) { print "-"; exit }
              printf fmt, (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
for mta in $run; do
    [ "${STATUS[$mta]}" = ok ] || continue
    RATE[$mta]=$(cat "$work/$mta".r* | awk '{ print $1 }' | median %.0f)
    CPUMS[$mta]=$(cat "$work/$mta".r* | awk '{ print $2 }' | median %.2f)
    read -r _ _ SYSC[$mta] FSYNC[$mta] _ < "$work/$mta.r1"
    ROUNDS_OF[$mta]=$(for f in "$work/$mta".r*; do awk '{ printf "%s (%s ms)  ", $1, $2 }' "$f"; done)
done

# ---------------------------------------------------------------- report
fs_of() {
    if have findmnt; then
        findmnt -no SOURCE,FSTYPE,OPTIONS --target "$1" | head -n 1
    else
        df -T "$1" | awk 'NR == 2 { print $1, $2 }'
    fi
}
cell() {                               # $1 = array name, $2 = mta
    local -n arr=$1
    if [ "${STATUS[$2]:-}" = ok ]; then echo "${arr[$2]:--}"; else echo "${STATUS[$2]:-not run}"; fi
}
ratio() {                              # $1 = array; $2 = 1 when lower is better
    local -n arr=$1
    if [ "${STATUS[postern]:-}" != ok ] || [ "${STATUS[postfix]:-}" != ok ]; then echo "-"; return; fi
    case "${arr[postern]}${arr[postfix]}" in *-*) echo "-"; return ;; esac
    awk -v a="${arr[postern]}" -v b="${arr[postfix]}" -v inv="$2" \
        'BEGIN { if (inv) { if (a > 0) printf "%.2fx", b / a; else print "-" }
                 else     { if (b > 0) printf "%.2fx", a / b; else print "-" } }'
}
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
postfix_version=$(postconf -d -h mail_version 2>/dev/null || echo "-")
postern_version=$("$build/bin/postern" version 2>/dev/null | head -n 1 || true)
commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo "-")
stamp=$(date +%Y-%m-%d-%H%M%S)

report=$(
    echo "# Receive-only benchmark, $(date '+%Y-%m-%d %H:%M:%S %Z')"
    echo
    echo "$N messages of $SIZE bytes over $S parallel sessions (smtp-source, one message per"
    echo "connection), delivery held (no qmgr), fsync before every 250; median of $ROUNDS rounds, each"
    echo "on fresh instances. CPU: every process of the instance (user + system)."
    echo "System calls: a separate, untimed pass of $NS messages under strace -f (round 1)."
    echo
    echo "| machine | |"
    echo "| --- | --- |"
    echo "| cpu | $(nproc) x $cpu_model |"
    echo "| memory | $mem |"
    echo "| kernel | $(uname -sr) |"
    echo "| temp dir | $TMPBASE: $(fs_of "$TMPBASE") |"
    echo "| postern | ${postern_version:-postern} (commit $commit, $build) |"
    echo "| postfix | $postfix_version |"
    echo
    echo "| MTA | messages/s | CPU ms/message | syscalls/message | fsync/message | status |"
    echo "| --- | ---: | ---: | ---: | ---: | --- |"
    for m in postern postfix; do
        echo "| $m | $(cell RATE $m) | $(cell CPUMS $m) | $(cell SYSC $m) | $(cell FSYNC $m) | ${STATUS[$m]:-not run} |"
    done
    echo "| postern vs postfix | $(ratio RATE 0) | $(ratio CPUMS 1) | $(ratio SYSC 1) | | (> 1x: Postern better) |"
    echo
    echo "Every round, messages/s (CPU ms per message):"
    echo
    for m in $run; do
        if [ -n "${ROUNDS_OF[$m]:-}" ]; then echo "- $m: ${ROUNDS_OF[$m]}"; fi
    done
    echo
    echo "Load average (1, 5, 15 min) just before each timed pass (other work on the machine):"
    echo
    sed 's/^/- /' "$work/load" 2>/dev/null || true
    for m in postern postfix; do
        if [ -s "$work/$m.strace-sum" ]; then
            echo
            echo "## $m: where the system calls go"
            echo
            echo '```'
            cat "$work/$m.strace-sum"
            echo '```'
        fi
    done
)

echo "$report"
mkdir -p "$RESULTS"
echo "$report" > "$RESULTS/receive-$stamp.md"
echo
echo "receive: postern $(cell RATE postern) msg/s, postfix $(cell RATE postfix) msg/s," \
     "ratio $(ratio RATE 0) ($RESULTS/receive-$stamp.md)"
exit $rc
