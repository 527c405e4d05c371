"""Queue administration: `postern super` (-d/-h/-H/-r/-s), `postern queue
-f/-s/-i`, and the showq service that lets ordinary users list the queue.

Messages are written straight into the queue of an instance with
tests/e2e/postern_rec.py; most tests do not start the instance (nothing may
deliver the mail under our feet)."""
import grp
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import time

import pytest

from conftest import IS_ROOT, POSTERN, wait_for
from postern_attr import Reader
from postern_rec import queue_file, queue_id, queue_path, write_queue_file

QUEUES = ["incoming", "active", "deferred", "hold", "maildrop", "corrupt",
          "bounce", "defer", "trace", "public", "private"]
T0 = 1700000000
DAY = 86400


def conf(inst, name):
    r = inst.run("conf", "-x", "-h", name)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture
def inst(new_instance):
    i = new_instance()
    i.queue_dir = conf(i, "queue_directory")
    i.owner = conf(i, "mail_owner")
    for q in QUEUES:
        os.makedirs(os.path.join(i.queue_dir, q), mode=0o700, exist_ok=True)
    return i


def give_to_owner(inst):
    """As root, what the test wrote belongs to mail_owner, as if the mail
    system had written it (super drops to mail_owner). Only root-owned
    entries below the queues change; the instance's own modes stay."""
    if not IS_ROOT:
        return
    pw = pwd.getpwnam(inst.owner)
    for q in QUEUES:
        for top, dirs, files in os.walk(os.path.join(inst.queue_dir, q)):
            for n in [top] + [os.path.join(top, x) for x in dirs + files]:
                st = os.lstat(n)
                if st.st_uid == 0:
                    os.lchown(n, pw.pw_uid, pw.pw_gid if st.st_gid == 0 else -1)


def put(inst, queue, n, rcpts=("bob@example.com",), sender="joe@example.com"):
    """Queue a message as cleanup would: its ID names its real inode."""
    data = queue_file(sender, list(rcpts), ["Subject: %d" % n, "", "body"], arrival=T0 + n)
    tmp = os.path.join(inst.queue_dir, queue, ".test-tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    qid = queue_id((T0 + n) * 10**6, os.stat(tmp).st_ino)
    path = queue_path(inst.queue_dir, queue, qid)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    os.rename(tmp, path)
    return qid


def where(inst, qid):
    """Every queue that holds qid (normally one)."""
    found = []
    for q in ["incoming", "active", "deferred", "hold", "maildrop", "corrupt"]:
        if os.path.exists(queue_path(inst.queue_dir, q, qid)):
            found.append(q)
    return found


def super_(inst, *args, input=None):
    give_to_owner(inst)
    return inst.run("super", *args, input=input)


def test_delete_one_all_and_restricted(inst):
    d1 = put(inst, "deferred", 1)
    d2 = put(inst, "deferred", 2)
    h = put(inst, "hold", 3)
    i = put(inst, "incoming", 4)
    write_queue_file(inst.queue_dir, "defer", d1, b"recipient=bob@example.com\nreason=x\n\n")
    write_queue_file(inst.queue_dir, "bounce", d1, b"recipient=bob@example.com\nreason=y\n\n",
                     hashed=("deferred", "defer"))

    r = super_(inst, "-d", d1)
    assert r.returncode == 0, r.stderr
    assert "postern super: Deleted: 1 message\n" in r.stderr
    assert where(inst, d1) == []
    assert not os.path.exists(queue_path(inst.queue_dir, "defer", d1))
    assert not os.path.exists(queue_path(inst.queue_dir, "bounce", d1))
    assert where(inst, d2) == ["deferred"]
    inst.wait_log(r"postern/postsuper\[\d+\]: %s: removed$" % d1)

    # A queue name restricts ALL.
    r = super_(inst, "-d", "ALL", "hold")
    assert r.returncode == 0, r.stderr
    assert "Deleted: 1 message" in r.stderr
    assert where(inst, h) == [] and where(inst, d2) == ["deferred"] and where(inst, i) == ["incoming"]

    r = super_(inst, "-d", "ALL")
    assert r.returncode == 0, r.stderr
    assert "Deleted: 2 messages" in r.stderr
    assert where(inst, d2) == [] and where(inst, i) == []

    # An ID that is not there: nothing deleted, not an error.
    r = super_(inst, "-d", d2)
    assert r.returncode == 0 and "Deleted: 0 messages" in r.stderr


def test_delete_from_stdin_and_bad_ids(inst):
    ids = [put(inst, "deferred", n) for n in range(3)]
    r = super_(inst, "-d", "-", input="%s\n\n  %s  \n../../etc/passwd\n" % (ids[0], ids[1]))
    assert r.returncode == 1, r.stderr              # the bad ID is an error
    assert "invalid queue ID" in r.stderr
    assert "Deleted: 2 messages" in r.stderr
    assert where(inst, ids[2]) == ["deferred"]
    r = super_(inst, "-d", "-", "-h", "-")
    assert r.returncode == 2
    r = super_(inst, "-d", "ALL", "nosuchqueue")
    assert r.returncode == 2 and "unknown queue" in r.stderr
    r = super_(inst)
    assert r.returncode == 2


def test_hold_release_requeue(inst):
    d = put(inst, "deferred", 1)
    a = put(inst, "active", 2)
    i = put(inst, "incoming", 3)
    # Far in the future: the next attempt time qmgr would honour.
    os.utime(queue_path(inst.queue_dir, "deferred", d), (T0, time.time() + 10 * DAY))

    r = super_(inst, "-h", d, "-h", a)
    assert r.returncode == 0, r.stderr
    assert "Placed on hold: 2 messages" in r.stderr
    assert where(inst, d) == ["hold"] and where(inst, a) == ["hold"]
    inst.wait_log(r"postsuper\[\d+\]: %s: placed on hold$" % d)

    r = super_(inst, "-H", d)
    assert r.returncode == 0, r.stderr
    assert "Released from hold: 1 message\n" in r.stderr
    assert where(inst, d) == ["deferred"]
    mtime = os.stat(queue_path(inst.queue_dir, "deferred", d)).st_mtime
    assert abs(mtime - time.time()) < 60             # due now
    inst.wait_log(r"postsuper\[\d+\]: %s: released from hold$" % d)

    r = super_(inst, "-r", d, "-r", a)               # a is in hold: requeued too
    assert r.returncode == 0, r.stderr
    assert "Requeued: 2 messages" in r.stderr
    assert where(inst, d) == ["incoming"] and where(inst, a) == ["incoming"]
    inst.wait_log(r"postsuper\[\d+\]: %s: requeued$" % d)

    r = super_(inst, "-h", "ALL", "incoming")
    assert r.returncode == 0 and "Placed on hold: 3 messages" in r.stderr
    r = super_(inst, "-H", "ALL")
    assert r.returncode == 0 and "Released from hold: 3 messages" in r.stderr
    assert where(inst, i) == ["deferred"]
    r = super_(inst, "-r", "ALL", "deferred")
    assert r.returncode == 0 and "Requeued: 3 messages" in r.stderr
    assert sorted(where(inst, x)[0] for x in (d, a, i)) == ["incoming"] * 3


def test_repair(inst):
    good = put(inst, "deferred", 1)
    # A corrupt file (truncated: no E record).
    bad = put(inst, "deferred", 2)
    p = queue_path(inst.queue_dir, "deferred", bad)
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) - 2)
    # A file whose name does not match its inode (restored from a backup).
    moved = queue_id((T0 + 3) * 10**6, 999999)
    write_queue_file(inst.queue_dir, "hold", moved,
                     queue_file("a@example.com", ["b@example.com"], ["x"], arrival=T0 + 3))
    write_queue_file(inst.queue_dir, "defer", moved, b"recipient=b@example.com\nreason=r\n\n")
    # A file that is not named like a queue ID at all.
    junk_path = os.path.join(inst.queue_dir, "incoming", "restored-file")
    with open(junk_path, "wb") as f:
        f.write(queue_file("c@example.com", ["d@example.com"], ["y"], arrival=T0 + 4))
    # A file in the wrong hash subdirectory.
    wrong = put(inst, "deferred", 5)
    src = queue_path(inst.queue_dir, "deferred", wrong)
    other = "0" if wrong[9] != "0" else "1"
    os.makedirs(os.path.join(inst.queue_dir, "deferred", other), exist_ok=True)
    os.rename(src, os.path.join(inst.queue_dir, "deferred", other, wrong))
    # cleanup temporary files: an old one goes, a fresh one stays.
    old_tmp = os.path.join(inst.queue_dir, "incoming", ".tmp.old")
    new_tmp = os.path.join(inst.queue_dir, "incoming", ".tmp.new")
    for t in (old_tmp, new_tmp):
        with open(t, "wb") as f:
            f.write(b"partial")
    os.utime(old_tmp, (time.time() - 2 * DAY, time.time() - 2 * DAY))
    # Logs: one of a live message, one orphan.
    write_queue_file(inst.queue_dir, "defer", good, b"recipient=bob@example.com\nreason=r\n\n")
    orphan = queue_id((T0 + 9) * 10**6, 4711)
    write_queue_file(inst.queue_dir, "bounce", orphan, b"recipient=z@example.com\n\n",
                     hashed=("deferred", "defer"))

    r = super_(inst, "-s")
    assert r.returncode == 0, r.stdout + r.stderr
    assert where(inst, bad) == ["corrupt"], r.stderr
    assert "damaged queue file moved to corrupt/" + bad in r.stderr
    assert "Moved to corrupt: 1 file" in r.stderr
    assert where(inst, good) == ["deferred"]
    assert os.path.exists(queue_path(inst.queue_dir, "defer", good))
    # Renamed files: the old names are gone, their new IDs name their inode.
    assert where(inst, moved) == []
    assert not os.path.exists(junk_path)
    assert "Renamed: 2 messages" in r.stderr
    inc = os.listdir(os.path.join(inst.queue_dir, "incoming"))
    hold = os.listdir(os.path.join(inst.queue_dir, "hold"))
    assert len([n for n in inc if not n.startswith(".")]) == 1 and len(hold) == 1
    for q, name in (("incoming", [n for n in inc if not n.startswith(".")][0]), ("hold", hold[0])):
        ino = os.stat(os.path.join(inst.queue_dir, q, name)).st_ino
        assert name.endswith(queue_id(0, ino)[10:]), (name, ino)
    assert hold[0][:10] == moved[:10]                # arrival time kept
    # Its defer log followed it.
    assert os.path.exists(queue_path(inst.queue_dir, "defer", hold[0]))
    assert where(inst, wrong) == ["deferred"]        # back in its hash directory
    assert not os.path.exists(old_tmp) and os.path.exists(new_tmp)
    assert not os.path.exists(queue_path(inst.queue_dir, "bounce", orphan))
    assert "Removed orphaned: 1 log" in r.stderr
    # A second run finds nothing to do.
    r = super_(inst, "-s")
    assert r.returncode == 0
    assert "Renamed" not in r.stderr and "corrupt" not in r.stderr
    # The corrupt file is listed nowhere but kept.
    r = inst.run("queue", "-j")
    assert bad not in r.stdout


@pytest.mark.skipif(not IS_ROOT, reason="needs root to run as another user")
def test_super_refuses_other_users(inst):
    put(inst, "deferred", 1)
    give_to_owner(inst)
    nobody = pwd.getpwnam("nobody")
    r = subprocess.run([POSTERN, "-c", inst.dir, "super", "-d", "ALL"], capture_output=True,
                       text=True, timeout=30, env=inst.env(), user=nobody.pw_uid,
                       group=nobody.pw_gid, extra_groups=[])
    assert r.returncode == 1
    assert "permission denied" in r.stderr
    assert len(os.listdir(os.path.join(inst.queue_dir, "deferred"))) == 1


class FakeQmgr:
    """public/qmgr as a fifo we read, to see the wake-ups."""

    def __init__(self, inst):
        self.path = os.path.join(inst.queue_dir, "public", "qmgr")
        os.mkfifo(self.path, 0o622)
        self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)

    def read(self):
        try:
            return os.read(self.fd, 100)
        except BlockingIOError:
            return b""

    def close(self):
        os.close(self.fd)


def test_queue_flush_site_and_id(inst):
    future = time.time() + 10 * DAY
    a = put(inst, "deferred", 1, rcpts=("x@Example.COM", "y@other.org"))
    b = put(inst, "deferred", 2, rcpts=("z@other.org",))
    c = put(inst, "deferred", 3, rcpts=("w@third.net",))
    h = put(inst, "hold", 4)
    for qid in (a, b, c):
        os.utime(queue_path(inst.queue_dir, "deferred", qid), (T0, future))

    def mtime(qid):
        return os.stat(queue_path(inst.queue_dir, "deferred", qid)).st_mtime

    give_to_owner(inst)
    q = FakeQmgr(inst)
    try:
        r = inst.run("queue", "-f")
        assert r.returncode == 0, r.stderr
        assert q.read() == b"F"

        r = inst.run("queue", "-s", "example.com")
        assert r.returncode == 0, r.stderr
        assert abs(mtime(a) - time.time()) < 60
        assert mtime(b) > time.time() + DAY and mtime(c) > time.time() + DAY
        assert q.read() == b"A"

        r = inst.run("queue", "-s", "nowhere.example")
        assert r.returncode == 0 and q.read() == b""     # nothing matched, no wake-up

        r = inst.run("queue", "-i", c)
        assert r.returncode == 0, r.stderr
        assert abs(mtime(c) - time.time()) < 60 and mtime(b) > time.time() + DAY
        assert q.read() == b"A"

        r = inst.run("queue", "-i", h)
        assert r.returncode == 1 and "on hold" in r.stderr
        r = inst.run("queue", "-i", queue_id(T0 * 10**6, 5))
        assert r.returncode == 1 and "no such message" in r.stderr
        r = inst.run("queue", "-i", "../x")
        assert r.returncode == 2
        r = inst.run("queue", "-s", "bad site")
        assert r.returncode == 2
    finally:
        q.close()


def showq_instance(new_instance):
    """A started instance with showq and without anything that delivers."""
    i = new_instance()
    i.remove_service("qmgr")
    i.remove_service("pickup")
    i.append_master_cf("showq unix n - n - - showq")
    i.queue_dir = conf(i, "queue_directory")
    i.owner = conf(i, "mail_owner")
    i.start()
    return i


def read_showq(inst):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(os.path.join(inst.queue_dir, "public", "showq"))
    rd = Reader(s)
    assert rd.read() == {"protocol": "showq"}
    lists = []
    for _ in range(10000):
        m = rd.read()
        lists.append(m)
        if "done" in m:
            break
    s.close()
    return lists


def fill_queue(inst):
    future = time.time() + 10 * DAY
    ids = {}
    ids["d"] = put(inst, "deferred", 1, rcpts=("a@example.com", "b@example.com"))
    os.utime(queue_path(inst.queue_dir, "deferred", ids["d"]), (T0, future))
    write_queue_file(inst.queue_dir, "defer", ids["d"],
                     b"recipient=a@example.com\nreason=connection refused\n\n")
    many = ["r%03d@example.com" % n for n in range(450)]
    ids["h"] = put(inst, "hold", 2, rcpts=many, sender="")
    give_to_owner(inst)
    return ids


def test_showq_protocol(new_instance):
    inst = showq_instance(new_instance)
    ids = fill_queue(inst)
    lists = read_showq(inst)
    assert lists[-1] == {"done": "2"}
    first = lists[0]
    assert first["queue_name"] == "deferred" and first["queue_id"] == ids["d"]
    assert first["rcpt_count"] == "2" and first["sender"] == "joe@example.com"
    assert first["rcpt_0_reason"] == "connection refused" and "rcpt_1_reason" not in first
    assert first["arrival_time"] == str(T0 + 1)
    # 450 recipients come in chunks of 200.
    chunks = lists[1:-1]
    assert [c["rcpt_count"] for c in chunks] == ["200", "200", "50"]
    assert [c.get("more") for c in chunks] == ["1", "1", None]
    got = [c["rcpt_%d_address" % n] for c in chunks for n in range(int(c["rcpt_count"]))]
    assert got == ["r%03d@example.com" % n for n in range(450)]
    assert all(c["queue_id"] == ids["h"] and c["sender"] == "" for c in chunks)


@pytest.mark.skipif(not IS_ROOT, reason="needs root to run as an unprivileged user")
def test_unprivileged_listing_goes_through_showq(new_instance):
    inst = showq_instance(new_instance)
    ids = fill_queue(inst)
    direct_j = inst.run("queue", "-j")
    direct_p = inst.run("queue", "-p")
    assert direct_j.returncode == 0 and ids["h"] in direct_j.stdout
    nobody = pwd.getpwnam("nobody")
    # The queue itself is closed to nobody.
    qs = os.stat(os.path.join(inst.queue_dir, "hold"))
    assert qs.st_uid != nobody.pw_uid and not qs.st_mode & stat.S_IRWXO

    def as_nobody(binary, *args):
        return subprocess.run([binary, "-c", inst.dir, *args], capture_output=True, text=True,
                              timeout=30, env=inst.env(), user=nobody.pw_uid,
                              group=nobody.pw_gid, extra_groups=[])

    # Without the setgid group, public/ is closed too: a clear error.
    r = as_nobody(POSTERN, "queue", "-j")
    assert r.returncode == 1 and "showq service is not reachable" in r.stderr, r.stderr
    # Installed setgid to setgid_group, as Postfix's postqueue is.
    sg = os.path.join(os.path.dirname(inst.dir), "postern-setgid")
    shutil.copy(POSTERN, sg)
    os.chown(sg, 0, grp.getgrnam(conf(inst, "setgid_group")).gr_gid)
    os.chmod(sg, 0o2755)
    r = as_nobody(sg, "queue", "-j")
    assert r.returncode == 0, r.stderr
    assert r.stdout == direct_j.stdout
    objs = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(objs[1]["recipients"]) == 450
    r = as_nobody(sg, "queue", "-p")
    assert r.returncode == 0 and r.stdout == direct_p.stdout
    assert "(connection refused)" in r.stdout
    # Other commands drop the group at once: super is still refused.
    r = as_nobody(sg, "super", "-d", "ALL")
    assert r.returncode == 1
    assert ids["h"] in inst.run("queue", "-j").stdout


def test_mailq_command(new_instance):
    inst = showq_instance(new_instance)
    ids = fill_queue(inst)
    mailq = os.path.join(os.path.dirname(POSTERN), "mailq")
    r = subprocess.run([mailq, "-C", inst.dir], capture_output=True, text=True, timeout=30,
                       env=inst.env())
    assert r.returncode == 0, r.stderr
    assert r.stdout == inst.run("queue", "-p").stdout
    assert ids["d"] in r.stdout and (ids["h"] + "!") in r.stdout
    assert r.stdout.rstrip().endswith("in 2 Requests.")
