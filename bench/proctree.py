#!/usr/bin/python3
"""proctree.py - CPU time and PIDs of a process tree, read from /proc.

Usage:
    proctree.py ticks PID   print the CPU clock ticks (user + system) spent by
                            PID and every live descendant, plus the ticks of
                            children they have already reaped (cutime, cstime)
    proctree.py pids PID    print PID and every live descendant, one per line

The "ticks" figure taken before and after a run gives the CPU the whole
instance spent in between: a daemon that exited and was reaped by master
during the run moves from "live descendant" to master's cutime/cstime, so it
is neither lost nor counted twice. Exit 1 with a message when PID is gone.
"""
import os
import sys


def snapshot():
    """Map pid -> (ppid, ticks) for every process we can read."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
        except OSError:
            continue            # exited while we looked
        # Field 2 (comm) may hold spaces and parentheses: split after the last ')'.
        fields = text.rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state); field N is fields[N - 3].
        ppid = int(fields[1])
        ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        table[int(entry)] = (ppid, ticks)
    return table


def tree(table, root):
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def main(argv):
    if len(argv) != 3 or argv[1] not in ("ticks", "pids") or not argv[2].isdigit():
        print("usage: proctree.py ticks|pids PID", file=sys.stderr)
        return 2
    root = int(argv[2])
    table = snapshot()
    if root not in table:
        print(f"proctree: process {root} is not running", file=sys.stderr)
        return 1
    pids = tree(table, root)
    if argv[1] == "ticks":
        print(sum(table[p][1] for p in pids))
    else:
        print("\n".join(str(p) for p in pids))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
