# lib.sh - shell functions shared by the benchmarks (receive.sh, deliver.sh).
# Sourced, never run on its own (run.sh skips it).
#
# A benchmark script does, in this order:
#     set -euo pipefail
#     BENCH=NAME                      # "receive", "deliver": log prefix, results file
#     . "$(dirname "$0")/lib.sh"      # reads $1 (build dir) and the BENCH_* settings
#     ... sets the variables and defines the hooks below ...
#     bench_main
#
# What the script may set after sourcing (defaults in brackets):
#   HOLD_DELIVERY   1: qmgr is commented out of both master.cf files, mail
#                   stays in incoming/ [1]
#   FSYNC_MIN       fewer fsync calls per message in the strace pass fail the
#                   run: not the durability being compared [1]
#   RCPTS           array of recipient addresses; with more than one, each
#                   load is split evenly over one smtp-source per recipient
#                   (sessions and messages alike) [bench-rcpt@example.com]
# and the hooks it must define:
#   postfix_main_extra DIR   prints the Postfix main.cf lines of this benchmark
#   bench_settle MTA DIR     runs after every smtp-source pass, and is timed
#                            with it: waits until the pass's work is done;
#                            returns non-zero (after saying why) if it is not
#   bench_check MTA DIR      after the passes: fails (die) unless every
#                            message sent ($EXPECT in all, ${SENT_TO[i]} to
#                            RCPTS[i]) ended where it should
#   report_intro             prints the title and the paragraph that says what
#                            was measured, at the top of the results
#
# Passes per MTA and round (run_mta): warm-up (not measured), timed pass
# (wall clock from the first connection until bench_settle returns; CPU of
# the instance's whole process tree from /proc), and in round 1 a separate
# strace pass. Each MTA runs in a subshell on a fresh instance that is
# stopped on any exit.

if [ "${BASH_SOURCE[0]}" = "$0" ] || [ -z "${BENCH:-}" ]; then
    echo "bench/lib.sh: sourced by the benchmarks after they set BENCH, not run" >&2
    exit 2
fi

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
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
RCPTS=(bench-rcpt@example.com)
HOLD_DELIVERY=1
FSYNC_MIN=1

for v in N S SIZE WARM NS TIMEOUT ROUNDS; do
    case "${!v}" in ''|*[!0-9]*) echo "$BENCH: $v must be a number" >&2; exit 2 ;; esac
done
if [ "$N" -eq 0 ] || [ "$S" -eq 0 ] || [ "$ROUNDS" -eq 0 ]; then
    echo "$BENCH: BENCH_MESSAGES, BENCH_SESSIONS and BENCH_ROUNDS must be > 0" >&2; exit 2
fi

proctree() { /usr/bin/python3 "$top/bench/proctree.py" "$@"; }
log() { echo "$BENCH: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }
now_ns() { date +%s%N; }
have() { command -v "$1" >/dev/null 2>&1; }
count_files() { find "$1" -type f ! -name ".*" 2>/dev/null | wc -l; }   # queue files; not cleanup's dot files

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

share() {                              # $1 = total, $2 = index: RCPTS[index]'s part of total
    local k=${#RCPTS[@]}
    echo $(( $1 / k + ($2 < $1 % k ? 1 : 0) ))
}

# ---------------------------------------------------------------- workspace
work=$(mktemp -d "$TMPBASE/postern-bench.XXXXXX")
chmod 0755 "$work"                     # the unprivileged daemons must reach their queues
declare -A MASTER=() STOPCMD=() LOGF=() QDIR=() RATE=() CPUMS=() SYSC=() FSYNC=() STATUS=() ROUNDS_OF=()
EXPECT=0
SENT_TO=()

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
    local d=$1 port=$2 pid="" hold=$HOLD_DELIVERY
    mkdir -p "$d/etc" "$d/queue" "$d/data"
    chown "$(postconf -d -h mail_owner)" "$d/data"     # master.lock and caches live there
    # Private instance: only what makes it private and loopback-only is set,
    # plus the benchmark's own lines; everything else is Postfix's default
    # (cleanup fsyncs the queue file before smtpd answers 250).
    {
        cat <<EOF
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
myhostname = postfix-bench.localdomain
maillog_file = $d/maillog
maillog_file_prefixes = $d
EOF
        postfix_main_extra "$d"
    } > "$d/etc/main.cf"
    # The packaged master.cf with: smtpd on our port only, no chroot (Debian
    # turns it on and then needs files copied into the jail; upstream's
    # default is off), and with HOLD_DELIVERY qmgr commented out so mail
    # stays in incoming/.
    awk -v listen="127.0.0.1:$port" -v hold="$hold" -v by="bench/$BENCH.sh" '
        /^smtp[ \t]+inet[ \t]/         { $1 = listen }
        hold == 1 && /^qmgr[ \t]/      { print "#" $0 " (held by " by ")"; next }
        /^[a-z0-9.:-]+[ \t]+(inet|unix|fifo|pass|unix-dgram)[ \t]/ && NF >= 8 { $5 = "n" }
        { print }
    ' /etc/postfix/master.cf > "$d/etc/master.cf"
    if [ "$hold" = 1 ]; then
        grep -q "^#qmgr" "$d/etc/master.cf" || die "postfix: could not hold qmgr in master.cf"
    else
        grep -qE "^qmgr[[:space:]]" "$d/etc/master.cf" || die "postfix: no qmgr in /etc/postfix/master.cf"
    fi
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
    # Receive path services, for a "postern init" that does not write them.
    grep -qE '^cleanup[[:space:]]' "$d/master.cf" ||
        echo "cleanup        unix  -       -       n       -       0       cleanup" >> "$d/master.cf"
    grep -qE '^rewrite[[:space:]]' "$d/master.cf" ||
        echo "rewrite        unix  -       -       n       -       -       trivial-rewrite" >> "$d/master.cf"
    if [ "$HOLD_DELIVERY" = 1 ]; then
        # Delivery held: no qmgr, so accepted mail stays in incoming/.
        sed -i -E "s|^(qmgr[[:space:]].*)\$|#\\1 (held by bench/$BENCH.sh)|" "$d/master.cf"
    else
        grep -qE '^qmgr[[:space:]]' "$d/master.cf" || die "postern: no qmgr in the master.cf of postern init"
    fi
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
# One smtp-source per recipient, the messages and the sessions shared out
# evenly (share); with one recipient, a single smtp-source with all of them.
# Counts what was sent in EXPECT and SENT_TO.
smtp_load() {                          # $1 = port, $2 = messages, $3 = output file
    local port=$1 m=$2 out=$3 k=${#RCPTS[@]} i n s rc=0 pids=()
    if [ "$k" -eq 1 ]; then
        EXPECT=$((EXPECT + m)); SENT_TO[0]=$(( ${SENT_TO[0]:-0} + m ))
        timeout "$TIMEOUT" smtp-source -c -l "$SIZE" -m "$m" -s "$S" -f "$SENDER" -t "${RCPTS[0]}" \
            "127.0.0.1:$port" >"$out" 2>&1
        return
    fi
    for ((i = 0; i < k; i++)); do
        n=$(share "$m" "$i"); s=$(share "$S" "$i")
        [ "$n" -gt 0 ] || continue
        EXPECT=$((EXPECT + n)); SENT_TO[i]=$(( ${SENT_TO[i]:-0} + n ))
        timeout "$TIMEOUT" smtp-source -c -l "$SIZE" -m "$n" -s "$s" -f "$SENDER" -t "${RCPTS[i]}" \
            "127.0.0.1:$port" >"$out.$i" 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || rc=1; done
    cat "$out".* > "$out" 2>/dev/null || true
    rm -f "$out".*
    return $rc
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
    if ! bench_settle "$mta" "$d"; then
        kill -INT "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true
        show_failure "$mta" "$d/strace.out"; die "$mta: the strace pass did not complete"
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
    if awk -v f="${FSYNC[$mta]}" -v min="$FSYNC_MIN" 'BEGIN { exit !(f < min) }'; then
        die "$mta: only ${FSYNC[$mta]} fsync per message: not the durability this benchmark compares"
    fi
}

# Instances are never removed between passes, only with the workspace at
# the end (run.sh: after the last benchmark). On ext4 without a journal, as
# on the development machine, the kernel skips every inode freed in the last
# minutes when it allocates a new one (recently_deleted() in
# fs/ext4/ialloc.c); after removing the 10,000 queue files of one pass,
# creating a file took about 0.6 ms of system time instead of 0.05 for
# minutes, so the pass after a removal, whichever MTA's, ran at half speed.
run_mta() {                            # $1 = mta, $2 = round (strace pass in round 1 only)
    local mta=$1 round=$2 d="$work/$1-round$2" port t0 t1 c0 c1 hz
    port=$(free_port)
    log "$mta: round $round: fresh instance in $d, SMTP on 127.0.0.1:$port"
    "setup_$mta" "$d" "$port"
    hz=$(getconf CLK_TCK)
    EXPECT=0; SENT_TO=()

    # 1. warm-up
    if [ "$WARM" -gt 0 ]; then
        smtp_load "$port" "$WARM" "$d/warmup.out" ||
            { show_failure "$mta" "$d/warmup.out"; die "$mta: warm-up failed"; }
        bench_settle "$mta" "$d" ||
            { show_failure "$mta" "$d/warmup.out"; die "$mta: the warm-up did not complete"; }
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
    bench_settle "$mta" "$d" ||
        { show_failure "$mta" "$d/timed.out"; die "$mta: the timed pass did not complete"; }
    t1=$(now_ns)
    c1=$(proctree ticks "${MASTER[$mta]}")
    RATE[$mta]=$(awk -v n="$N" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
    CPUMS[$mta]=$(awk -v n="$N" -v t=$((c1 - c0)) -v hz="$hz" 'BEGIN { printf "%.2f", t * 1000 / hz / n }')
    log "$mta: ${RATE[$mta]} messages/s, ${CPUMS[$mta]} ms CPU per message"

    # 3. strace pass
    SYSC[$mta]="-"; FSYNC[$mta]="-"
    if [ "$round" -eq 1 ] && [ "$NS" -gt 0 ]; then
        if have strace; then
            strace_pass "$mta" "$d" "$port"
        else
            log "$mta: strace not installed, no system call counts (sh bench/install-deps.sh)"
        fi
    fi

    bench_check "$mta" "$d"
    echo "${RATE[$mta]} ${CPUMS[$mta]} ${SYSC[$mta]} ${FSYNC[$mta]} $((t1 - t0))" > "$work/$mta.r$round"
    stop_instance "$mta"
}

# ---------------------------------------------------------------- report
median() {                             # numbers on stdin; $1 = printf format
    sort -n | awk -v fmt="$1\n" '{ v[NR] = $1 }
        END { if (NR == 0) { print "-"; exit }
              printf fmt, (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
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

write_report() {                       # $1 = MTAs that ran; prints, writes the file, summary line
    local run=$1 m cpu_model mem postfix_version postern_version commit stamp report
    cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
    mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    postfix_version=$(postconf -d -h mail_version 2>/dev/null || echo "-")
    postern_version=$("$build/bin/postern" version 2>/dev/null | head -n 1 || true)
    commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo "-")
    stamp=$(date +%Y-%m-%d-%H%M%S)

    report=$(
        report_intro
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
    echo "$report" > "$RESULTS/$BENCH-$stamp.md"
    echo
    echo "$BENCH: postern $(cell RATE postern) msg/s, postfix $(cell RATE postfix) msg/s," \
         "ratio $(ratio RATE 0) ($RESULTS/$BENCH-$stamp.md)"
}

# ---------------------------------------------------------------- main
bench_main() {                         # runs every round of every MTA, reports; exits
    local rc=0 run="" order mta round st m
    have smtp-source || die "smtp-source missing: run (as root) sh bench/install-deps.sh"
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
    for mta in $run; do
        [ "${STATUS[$mta]}" = ok ] || continue
        RATE[$mta]=$(cat "$work/$mta".r* | awk '{ print $1 }' | median %.0f)
        CPUMS[$mta]=$(cat "$work/$mta".r* | awk '{ print $2 }' | median %.2f)
        read -r _ _ SYSC[$mta] FSYNC[$mta] _ < "$work/$mta.r1"
        ROUNDS_OF[$mta]=$(for f in "$work/$mta".r*; do awk '{ printf "%s (%s ms)  ", $1, $2 }' "$f"; done)
    done

    write_report "$run"
    exit $rc
}
