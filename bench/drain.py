#!/usr/bin/python3
"""drain.py - wait until an MTA's queue is empty and its Maildirs hold exactly
the messages that were sent.

Usage:
    drain.py TIMEOUT QUEUE_DIR MAILDIR=COUNT [MAILDIR=COUNT ...]

TIMEOUT    seconds to wait at most
QUEUE_DIR  the MTA's queue directory; "empty" means no file at all under its
           incoming/, active/, deferred/, hold/ and maildrop/
MAILDIR    a Maildir; COUNT is how many files its new/ must hold in the end

Polls every 20 ms. The queue test stops at the first file it sees, so polling
a busy queue costs little; the Maildirs are counted only once the queue is
empty. Exit 0 when the queue is empty, every new/ holds exactly its COUNT and
every tmp/ is empty. Exit 1 with a message on stderr when the time is up, or
when the queue is empty but the counts are wrong (mail lost, duplicated,
bounced or discarded): the queue being empty, they can no longer change, so
this fails after a 1 s second look instead of waiting for the timeout.
"""
import os
import sys
import time

QUEUES = ("incoming", "active", "deferred", "hold", "maildrop")


def any_file(top):
    """True if there is a non-directory anywhere under top."""
    todo = [top]
    while todo:
        path = todo.pop()
        try:
            with os.scandir(path) as it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue        # not mail: cleanup's incoming/.sweep stamp
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            todo.append(entry.path)
                        else:
                            return True
                    except OSError:
                        return True     # vanished or unreadable: not settled yet
        except FileNotFoundError:
            continue
    return False


def queue_files(qdir):
    """How many files the queue holds (for the failure message only)."""
    n = 0
    for q in QUEUES:
        for _, _, files in os.walk(os.path.join(qdir, q)):
            n += len(files)
    return n


def count(path):
    try:
        with os.scandir(path) as it:
            return sum(1 for _ in it)
    except FileNotFoundError:
        return 0


def counts(maildirs):
    return [(m, want, count(os.path.join(m, "new")), count(os.path.join(m, "tmp")))
            for m, want in maildirs]


def describe(got):
    return "; ".join(f"{m}: {n} in new/ (expected {want}), {t} in tmp/" for m, want, n, t in got)


def main(argv):
    if len(argv) < 4:
        print("usage: drain.py TIMEOUT QUEUE_DIR MAILDIR=COUNT ...", file=sys.stderr)
        return 2
    try:
        timeout = float(argv[1])
        maildirs = []
        for arg in argv[3:]:
            path, want = arg.rsplit("=", 1)
            maildirs.append((path, int(want)))
    except ValueError:
        print(f"drain: bad arguments: {' '.join(argv[1:])}", file=sys.stderr)
        return 2
    qdir = argv[2]
    deadline = time.monotonic() + timeout
    second_look = False
    while True:
        if not any(any_file(os.path.join(qdir, q)) for q in QUEUES):
            got = counts(maildirs)
            if all(n == want and t == 0 for _, want, n, t in got):
                return 0
            if second_look:
                print(f"drain: the queue is empty but the Maildirs are wrong: {describe(got)}",
                      file=sys.stderr)
                return 1
            second_look = True
            time.sleep(1)
            continue
        second_look = False
        if time.monotonic() > deadline:
            print(f"drain: the queue did not drain in {timeout:g} s: {queue_files(qdir)} files left "
                  f"in it; {describe(counts(maildirs))}", file=sys.stderr)
            return 1
        time.sleep(0.02)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
