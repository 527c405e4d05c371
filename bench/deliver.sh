#!/bin/bash
# deliver.sh - local delivery benchmark, end to end: Postern vs Postfix on
# this machine.
#
# Usage: bench/deliver.sh [BUILD_DIR]        (BUILD_DIR default: build)
#
# Each MTA in turn (never both at once) gets a fresh private instance in a
# temp dir on a free 127.0.0.1 port, with its queue manager running and
# NAME@localhost a virtual mailbox domain delivered by its virtual agent to
# the Maildir DIR/mail/NAME/. Load: Postfix's smtp-source, BENCH_MESSAGES
# messages of BENCH_SIZE bytes over BENCH_SESSIONS sessions, one message per
# connection; the load is split evenly over BENCH_RCPTS smtp-source runs side
# by side, one per recipient user1@localhost .. userK@localhost, so that the
# messages go to K Maildirs. Both MTAs fsync the queue file before the 250
# and the Maildir file before they call a delivery done.
#
# The rate is end to end: messages divided by the time from the first
# connection until the queue is empty and every message is a file in a
# Maildir's new/ (bench/drain.py watches both). The count must be exact, per
# Maildir; a queue that does not drain within BENCH_DRAIN_TIMEOUT seconds, or
# any other count, fails the benchmark loudly. Passes, rounds, CPU accounting
# and the strace pass are those of receive.sh (bench/lib.sh); the strace pass
# here also runs until its messages are delivered.
#
# Environment: as receive.sh (BENCH_MESSAGES=10000 BENCH_SESSIONS=20
# BENCH_SIZE=4096 BENCH_WARMUP=100 BENCH_STRACE_MESSAGES=1000 BENCH_ROUNDS=3
# BENCH_MTAS BENCH_TMPDIR BENCH_RESULTS BENCH_KEEP BENCH_TIMEOUT), plus
#   BENCH_RCPTS=4            recipients (Maildirs); BENCH_SESSIONS must be >= it
#   BENCH_DRAIN_TIMEOUT=300  seconds allowed for the queue to drain after a pass
#
# Prints a table on stdout, writes it with machine information to
# $BENCH_RESULTS/deliver-DATE.md and ends with one line "deliver: ..." for
# "make bench". Exit 0 only if every MTA that ran delivered every message
# exactly once in every round.
set -euo pipefail

BENCH=deliver
. "$(dirname "$0")/lib.sh"             # settings, instances, passes, report (see lib.sh)

K=${BENCH_RCPTS:-4}
DRAIN_TIMEOUT=${BENCH_DRAIN_TIMEOUT:-300}
for v in K DRAIN_TIMEOUT; do
    case "${!v}" in ''|*[!0-9]*) echo "deliver: $v must be a number" >&2; exit 2 ;; esac
done
if [ "$K" -eq 0 ] || [ "$K" -gt "$S" ]; then
    echo "deliver: BENCH_RCPTS must be between 1 and BENCH_SESSIONS ($S)" >&2; exit 2
fi

HOLD_DELIVERY=0                        # qmgr runs: this benchmark is about delivery
FSYNC_MIN=2                            # the queue file before the 250, the Maildir file
RCPTS=()
for i in $(seq 1 "$K"); do RCPTS+=("user$i@localhost"); done

# Postfix: the same shape as "postern init" writes for Postern. localhost is
# a virtual mailbox domain (so not in mydestination), each recipient maps to
# a Maildir (trailing "/") under DIR/mail, owned by Postfix's mail_owner as
# Postern's are owned by its own. texthash: needs no postmap. Everything else,
# flow control, concurrency and fsync included, is Postfix's default.
postfix_main_extra() {                 # $1 = dir
    local d=$1 owner uid gid i
    owner=$(postconf -d -h mail_owner)
    uid=$(id -u "$owner"); gid=$(id -g "$owner")
    mkdir -p "$d/mail"
    chown "$uid:$gid" "$d/mail"
    : > "$d/etc/mailboxes"
    for i in $(seq 1 "$K"); do echo "user$i@localhost user$i/" >> "$d/etc/mailboxes"; done
    cat <<EOF
# Delivery: user*@localhost into Maildirs under $d/mail by virtual(8).
mydestination =
virtual_mailbox_domains = localhost
virtual_mailbox_base = $d/mail
virtual_mailbox_maps = texthash:$d/etc/mailboxes
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$gid
# No local(8) delivery happens; do not depend on /etc/aliases.db.
alias_maps =
alias_database =
EOF
}

drain_args() {                         # $1 = dir: the Maildirs and what each must hold
    local d=$1 i
    for ((i = 0; i < K; i++)); do echo "$d/mail/user$((i + 1))=${SENT_TO[i]:-0}"; done
}

# Until the queue is empty and every message is in its Maildir (timed).
bench_settle() {                       # $1 = mta, $2 = dir
    local mta=$1 d=$2
    # shellcheck disable=SC2046
    if ! /usr/bin/python3 "$top/bench/drain.py" "$DRAIN_TIMEOUT" "${QDIR[$mta]}" $(drain_args "$d"); then
        log "$mta: not every message was delivered exactly once ($EXPECT sent)"
        return 1
    fi
}

bench_check() {                        # $1 = mta, $2 = dir
    local mta=$1 d=$2
    # shellcheck disable=SC2046
    /usr/bin/python3 "$top/bench/drain.py" 0 "${QDIR[$mta]}" $(drain_args "$d") ||
        { show_failure "$mta" "$d/timed.out"; die "$mta: the Maildirs do not hold the $EXPECT messages sent"; }
    log "$mta: queue empty, the $K Maildirs hold the $EXPECT messages sent, each exactly once"
}

report_intro() {
    echo "# Local delivery benchmark (end to end), $(date '+%Y-%m-%d %H:%M:%S %Z')"
    echo
    echo "$N messages of $SIZE bytes over $S parallel sessions (smtp-source, one message per"
    echo "connection; $K runs side by side, one per recipient user1..user$K@localhost, each with"
    echo "1/$K of the sessions and messages), delivered by each MTA's qmgr and virtual agent into"
    echo "the Maildirs DIR/mail/userN/. Rate: messages / time from the first connection until the"
    echo "queue is empty and every message is a file in new/ (count checked, per Maildir)."
    echo "fsync of the queue file before every 250 and of every Maildir file; median of $ROUNDS"
    echo "rounds, each on fresh instances. CPU: every process of the instance (user + system)."
    echo "System calls: a separate, untimed pass of $NS messages under strace -f (round 1),"
    echo "traced until they are delivered."
}

bench_main
