#!/usr/bin/python3
"""stracesum.py - system calls per message, overall and per program.

Usage:
    stracesum.py TRACE NAMES MESSAGES [TOP]

TRACE     output of "strace -f -o TRACE -p ..." (one line per event, each
          starting with the PID)
NAMES     "PID NAME" lines for the processes that were running when strace
          attached; processes started later are named by the program they
          execve(); a forked child that never execs keeps its parent's name
MESSAGES  how many messages were sent during the trace
TOP       how many system calls to list (default 20)

Prints, as plain text:
    calls/message and errors/message for the TOP most frequent calls and a
    "total" line; then one line per program (smtpd, cleanup, master, ...):
    its calls per message and its five most frequent calls.
Also prints a first line "total_per_message N" and a second line
"fsync_per_message N" (fsync + fdatasync) that the caller parses.
The trace is peer-free local data, but a line it cannot parse is skipped,
never fatal.
"""
import collections
import os
import re
import sys

CALL = re.compile(r"^(\d+)\s+(?:\d+:\d+:\d+(?:\.\d+)?\s+)?([a-z_0-9]+)\(")
RESUMED = re.compile(r"^(\d+)\s+(?:\d+:\d+:\d+(?:\.\d+)?\s+)?<\.\.\. ([a-z_0-9]+) resumed>")
ERROR = re.compile(r"\)\s+=\s+-1\s+(E[A-Z0-9]+)")
EXECVE = re.compile(r'^(\d+)\s+(?:\S+\s+)?execve\("([^"]*)"')
EXEC_OK = re.compile(r"\)\s+=\s+0\s*$")
FORK_RET = re.compile(r"^(\d+)\s+(?:\S+\s+)?(?:<\.\.\. )?(clone3?|fork|vfork)(?: resumed>)?.*=\s+(\d+)\s*$")


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    trace, names_file, messages = argv[1], argv[2], int(argv[3])
    top = int(argv[4]) if len(argv) == 5 else 20
    if messages <= 0:
        print("stracesum: MESSAGES must be > 0", file=sys.stderr)
        return 2

    name = {}
    with open(names_file) as f:
        for line in f:
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[0].isdigit():
                name[int(parts[0])] = parts[1].strip()

    # Pass 1: who forked whom, and which program each process became.
    # A child's calls before its execve() count for the program it becomes.
    parent, became, pending = {}, {}, {}
    with open(trace, errors="replace") as f:
        for line in f:
            m = FORK_RET.match(line)
            if m:
                parent[int(m.group(3))] = int(m.group(1))
                continue
            m = EXECVE.match(line)
            if m:
                pid, prog = int(m.group(1)), os.path.basename(m.group(2))
                if "<unfinished ...>" in line:
                    pending[pid] = prog
                elif EXEC_OK.search(line):
                    became[pid] = prog
                continue
            m = RESUMED.match(line)
            if m and m.group(2) == "execve" and EXEC_OK.search(line):
                pid = int(m.group(1))
                if pid in pending:
                    became[pid] = pending.pop(pid)

    def prog_of(pid, depth=0):
        if pid in became:
            return became[pid]
        if pid in name:
            return name[pid]
        if pid in parent and depth < 16:
            return prog_of(parent[pid], depth + 1)
        return "?"

    # Pass 2: count calls (at their start) and errors (at their result).
    calls = collections.Counter()
    errors = collections.Counter()
    per_prog = collections.defaultdict(collections.Counter)
    with open(trace, errors="replace") as f:
        for line in f:
            m = CALL.match(line)
            if m:
                pid, sc = int(m.group(1)), m.group(2)
                calls[sc] += 1
                per_prog[prog_of(pid)][sc] += 1
                if "<unfinished ...>" not in line and ERROR.search(line):
                    errors[sc] += 1
                continue
            m = RESUMED.match(line)
            if m and ERROR.search(line):
                errors[m.group(2)] += 1

    total = sum(calls.values())
    fsyncs = calls["fsync"] + calls["fdatasync"]
    print(f"total_per_message {total / messages:.1f}")
    print(f"fsync_per_message {fsyncs / messages:.2f}")
    print()
    print(f"system calls per message ({messages} messages), most frequent first:")
    print(f"  {'calls/msg':>9} {'errors/msg':>10}  syscall")
    for sc, n in calls.most_common(top):
        print(f"  {n / messages:9.2f} {errors[sc] / messages:10.2f}  {sc}")
    print(f"  {total / messages:9.2f} {sum(errors.values()) / messages:10.2f}  total")
    print()
    print("per program: calls per message, and its five most frequent calls")
    progs = sorted(per_prog.items(), key=lambda kv: -sum(kv[1].values()))
    for prog, counter in progs:
        n = sum(counter.values())
        most = ", ".join(f"{sc} {c / messages:.1f}" for sc, c in counter.most_common(5))
        print(f"  {prog:<16} {n / messages:7.1f}   {most}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
