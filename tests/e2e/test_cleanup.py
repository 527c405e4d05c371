"""cleanup: one message per connection into incoming/, end to end.

The tests speak the cleanup protocol (src/lib/cleanup_proto.h) directly on
queue_directory/private/cleanup, then parse the queue file cleanup wrote.
Address rewriting goes to a scripted stand-in for trivial-rewrite that
listens on private/rewrite (master.cf has no rewrite service in these
tests), so the tests control its answers and see which rule was asked for;
one test uses the real trivial-rewrite when it is built.

Records are encoded and decoded with tests/e2e/postern_rec.py, an
independent reading of src/lib/rec_type.h.
"""
import os
import pwd
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import BUILD, IS_ROOT, wait_for
from postern_attr import Reader, encode
from postern_rec import parse_records, record as rec

# private/cleanup, where smtpd and pickup connect (cleanup_proto.h); the brief's
# "cleanup unix n ..." would put it in public/.
CLEANUP_MASTER_LINE = "cleanup unix - - n - 0 cleanup"
REWRITE_MASTER_LINE = "rewrite unix - - n - - trivial-rewrite"

FLAG_LOCAL, FLAG_EXTRACT, FLAG_HOLD, FLAG_DISCARD = 1, 2, 4, 8
STAT_BAD, STAT_WRITE, STAT_SIZE, STAT_CONT, STAT_HOPS, STAT_RCPT, STAT_DEFER = \
    1, 2, 4, 8, 16, 32, 64
QUEUE_ID = re.compile(r"^[0-9A-Za-z]+$")


# ---- records ---------------------------------------------------------------
def message(sender="sender@example.com", rcpts=("rcpt@example.com",), content=None,
            fullname=None, attrs=(), arrival=b"1700000000.123456", headers=None, body=None):
    """The record stream a client sends: T F? S A* R* M content X E."""
    out = rec("T", arrival)
    if fullname is not None:
        out += rec("F", fullname)
    out += rec("S", sender)
    for a in attrs:
        out += rec("A", a)
    for r in rcpts:
        out += rec("R", r)
    out += rec("M")
    if content is None:
        if headers is None:
            headers = ["From: a@example.com", "To: b@example.com", "Subject: test",
                       "Message-ID: <test.1@example.com>", "Date: Tue, 14 Nov 2023 22:13:20 +0000"]
        lines = list(headers) + [""] + (body if body is not None else ["hello", "world"])
        content = b"".join(rec("N", ln) for ln in lines)
    out += content + rec("X") + rec("E")
    return out


class QueueFile:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.raw = f.read()
        self.records = parse_records(self.raw)
        types = "".join(t for t, _ in self.records)
        assert types[0:2] == "VC", types
        assert types.endswith("E"), types
        m = types.index("M")
        x = types.index("X", m)
        self.envelope = self.records[:m]
        self.content = self.records[m + 1:x]
        self.extra = self.records[x + 1:-1]
        sizes = self.records[1][1].split()
        self.message_size, self.content_offset, self.rcpt_count = (int(s) for s in sizes)
        self.sender = next(d.decode() for t, d in self.envelope if t == "S")
        self.rcpts = [d.decode() for t, d in self.envelope + self.extra if t == "R"]
        self.attrs = [d.decode() for t, d in self.envelope if t == "A"]
        # Lines: L pieces joined with the N that ends them.
        self.lines, cur = [], b""
        for t, d in self.content:
            assert t in "NL", t
            cur += d
            if t == "N":
                self.lines.append(cur.decode(errors="replace"))
                cur = b""
        assert cur == b"", "content ends in the middle of a line"
        self.headers = self.lines[:self.lines.index("")] if "" in self.lines else self.lines

    def header(self, name):
        return [h for h in self.headers if h.lower().startswith(name.lower() + ":")]


# ---- a scripted trivial-rewrite ------------------------------------------
class FakeRewrite:
    """Answers rewrite requests on private/rewrite: user -> user@fake.example."""

    def __init__(self, inst, fail=False):
        self.path = os.path.join(inst.dir, "queue", "private", "rewrite")
        self.fail = fail
        self.requests = []
        self.stopping = False
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        if IS_ROOT:
            pw = pwd.getpwnam(self.mail_owner(inst))
            os.chown(self.path, pw.pw_uid, pw.pw_gid)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.threads = [threading.Thread(target=self.accept_loop, daemon=True)]
        self.threads[0].start()

    @staticmethod
    def mail_owner(inst):
        r = inst.run("conf", "-h", "mail_owner")
        name = r.stdout.strip().split("=")[-1].strip()
        return name or "postern"

    def accept_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self.serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def serve(self, conn):
        conn.settimeout(30)
        try:
            conn.sendall(encode([("protocol", "trivial-rewrite")]))
            reader = Reader(conn)
            while not self.stopping:
                req = reader.read()
                self.requests.append(req)
                addr = req.get("address", "")
                if "@" not in addr and addr:
                    addr += "@fake.example"
                conn.sendall(encode([("flags", 1 if self.fail else 0), ("address", addr)]))
        except (EOFError, OSError):
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopping = True
        self.sock.close()
        for t in self.threads:
            t.join(timeout=5)


# ---- fixtures and the client side ------------------------------------------
def setup_instance(new_instance, options=(), rewrite=True, fail=False):
    inst = new_instance(options=options)
    inst.append_master_cf(CLEANUP_MASTER_LINE)
    # A Python stand-in answers on private/rewrite, so master must not;
    # and delivery is held, so queue files stay in incoming/ to be read.
    inst.remove_service("rewrite", "unix")
    inst.remove_service("qmgr")
    inst.start()
    inst.fake = FakeRewrite(inst, fail=fail) if rewrite else None
    return inst


@pytest.fixture
def cinst(new_instance):
    inst = setup_instance(new_instance)
    yield inst
    inst.fake.stop()


def qdir(inst):
    return os.path.join(inst.dir, "queue")


def connect(inst, flags=0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(os.path.join(qdir(inst), "private", "cleanup"))
    r = Reader(s)
    assert r.read() == {"protocol": "cleanup"}
    s.sendall(encode([("flags", flags)]))
    qid = r.read()["queue_id"]
    assert QUEUE_ID.match(qid), qid
    return s, r, qid


def submit(inst, records, flags=0):
    """Send one message; returns (queue_id, reply dict)."""
    s, r, qid = connect(inst, flags)
    try:
        s.sendall(records)
        reply = r.read()
    finally:
        s.close()
    return qid, reply


def queue_files(inst):
    """Every file anywhere under the queue's message directories: (queue, relative path)."""
    found = []
    for q in ("incoming", "active", "deferred", "hold", "corrupt", "maildrop"):
        top = os.path.join(qdir(inst), q)
        for dirpath, _, files in os.walk(top):
            for f in files:
                if q == "incoming" and f == ".sweep":
                    continue            # cleanup's sweep stamp, not a message
                found.append((q, os.path.relpath(os.path.join(dirpath, f), top)))
    return found


def find_file(inst, queue, qid):
    for q, rel in queue_files(inst):
        if q == queue and os.path.basename(rel) == qid:
            return os.path.join(qdir(inst), q, rel)
    return None


def committed(inst, qid, queue="incoming"):
    path = find_file(inst, queue, qid)
    assert path, f"{qid} not in {queue}/: {queue_files(inst)}"
    return QueueFile(path)


def assert_nothing_queued(inst):
    files = [f for f in queue_files(inst) if not os.path.basename(f[1]).startswith(".tmp.")]
    assert files == [], files


# ---- tests -------------------------------------------------------------
FLAG_MORE = 16                          # CLEANUP_FLAG_MORE


def test_spare_files_reused_only_when_sound(cinst):
    """cleanup takes files from spare/ before it creates one, but only regular
    files of its own with one link; anything else is removed, logged, and the
    message gets a new file. A spare that still holds a finished message (taken
    before qmgr emptied it) is emptied and used. Names that are no slot are
    left alone."""
    spare = os.path.join(qdir(cinst), "spare")
    owner = os.stat(os.path.join(qdir(cinst), "incoming"))     # mail_owner's
    outside = os.path.join(cinst.dir, "outside")
    with open(outside, "w") as f:
        f.write("not for cleanup\n")
    with open(os.path.join(spare, "0"), "w") as f:
        f.write("old message\n" * 400)                 # not emptied yet: still usable
    full_ino = os.stat(os.path.join(spare, "0")).st_ino
    os.symlink(outside, os.path.join(spare, "1"))       # a link
    os.link(outside, os.path.join(spare, "2"))          # two names
    open(os.path.join(spare, "junk"), "w").close()      # not a slot name
    if IS_ROOT:                                         # so that only the flaw named above counts
        for name in ("0", "2"):
            os.chown(os.path.join(spare, name), owner.st_uid, owner.st_gid)
    ids = []
    for i in range(3):
        qid, reply = submit(cinst, message(rcpts=[f"r{i}@example.com"]))
        assert reply["status"] == "0", reply
        ids.append(qid)
        assert committed(cinst, qid).rcpts == [f"r{i}@example.com"]
    cinst.wait_log(r"removing unusable spare queue file", count=2)
    assert sorted(os.listdir(spare)) == ["junk"]
    # Only the link and the file with two names were unusable.
    assert len(re.findall(r"removing unusable spare queue file", cinst.log())) == 2
    # The full spare became one of the messages, with none of its old bytes.
    reused = [q for q in ids if os.stat(find_file(cinst, "incoming", q)).st_ino == full_ino]
    assert len(reused) == 1, ids
    with open(find_file(cinst, "incoming", reused[0]), "rb") as f:
        assert b"old message" not in f.read()
    with open(outside) as f:
        assert f.read() == "not for cleanup\n"        # neither followed nor emptied
    assert os.stat(outside).st_nlink == 1
    # A sound spare: empty, ours, one link. The next message is that inode.
    good = os.path.join(spare, "7")
    open(good, "w").close()
    if IS_ROOT:
        os.chown(good, owner.st_uid, owner.st_gid)
    ino = os.stat(good).st_ino
    qid, reply = submit(cinst, message())
    assert reply["status"] == "0"
    assert os.stat(find_file(cinst, "incoming", qid)).st_ino == ino
    assert sorted(os.listdir(spare)) == ["junk"]


def test_kept_connection_closed_with_announced_id_unread(cinst):
    """A client that closes a kept connection between messages, with the next
    queue ID unread (smtpd after max_use, or idle), ends it normally: the
    announced file goes, and nothing is logged as a warning."""
    before = len(re.findall(r"postern/cleanup\[\d+\]: warning:", cinst.log()))
    s, r, qid1 = connect(cinst, FLAG_MORE)
    s.sendall(message())
    # Neither the reply nor the next ID is read: both wait in our socket
    # buffer once the message is committed and the next file made.
    wait_for(lambda: find_file(cinst, "incoming", qid1) is not None
             and len([f for f in queue_files(cinst) if ".tmp." in f[1]]) == 1,
             what="the message committed and the next file announced")
    time.sleep(0.2)
    s.close()                           # unread data: the close is a reset for cleanup
    wait_for(lambda: [f for f in queue_files(cinst) if ".tmp." in f[1]] == [],
             what="the announced file removed")
    # The connection end was seen (file gone); no warning came with it.
    qid2, reply = submit(cinst, message())  # and the service is still there
    assert reply["status"] == "0"
    log = cinst.log()
    assert len(re.findall(r"postern/cleanup\[\d+\]: warning:", log)) == before, log[-2000:]


def test_several_messages_per_connection_and_announced_ids(cinst):
    s, r, qid1 = connect(cinst, FLAG_MORE)
    try:
        s.sendall(message(rcpts=["one@example.com"]))
        assert r.read() == {"status": "0", "reason": ""}
        # CLEANUP_FLAG_MORE: the next queue ID comes unasked, its file exists already.
        qid2 = r.read()["queue_id"]
        assert QUEUE_ID.match(qid2) and qid2 != qid1
        s.sendall(encode([("flags", 0)]) + message(rcpts=["two@example.com"]))
        assert r.read() == {"status": "0", "reason": ""}
        # Without the flag the old order holds: {flags} first, then the ID.
        s.sendall(encode([("flags", 0)]))
        qid3 = r.read()["queue_id"]
        s.sendall(message(rcpts=[]))            # refused, yet the connection goes on
        assert r.read()["status"] == "32"
        s.sendall(encode([("flags", FLAG_MORE)]))
        qid4 = r.read()["queue_id"]
        s.sendall(message(rcpts=["four@example.com"]))
        assert r.read()["status"] == "0"
        qid5 = r.read()["queue_id"]             # announced, then never used
    finally:
        s.close()
    assert committed(cinst, qid1).rcpts == ["one@example.com"]
    assert committed(cinst, qid2).rcpts == ["two@example.com"]
    assert committed(cinst, qid4).rcpts == ["four@example.com"]
    assert len({qid1, qid2, qid3, qid4, qid5}) == 5
    # The file made in advance for qid5 is removed when the client closes.
    wait_for(lambda: not [f for q, f in queue_files(cinst) if ".tmp." in f],
             what="the unused temporary file removed")
    assert_nothing_queued_except(cinst, [qid1, qid2, qid4])


def test_watchdog_restarts_per_message_and_kills_an_idle_process(new_instance):
    # daemon_timeout counts per message on a kept connection: three messages
    # over more than the timeout go through; then, idle, the process dies of
    # the watchdog's SIGALRM (14), which master logs.
    inst = setup_instance(new_instance, options=["daemon_timeout = 2s"])
    try:
        s, r, qid = connect(inst, FLAG_MORE)
        ids = [qid]
        try:
            for i in range(3):
                time.sleep(1.2)
                s.sendall((encode([("flags", FLAG_MORE)]) if i else b"")
                          + message(rcpts=[f"r{i}@example.com"]))
                assert r.read() == {"status": "0", "reason": ""}
                ids.append(r.read()["queue_id"])
            started = time.time()
            s.settimeout(15)
            assert s.recv(100) == b"", "the connection ends when the watchdog fires"
            assert 1.0 < time.time() - started < 10
        finally:
            s.close()
        inst.wait_log(r"process \S*cleanup pid \d+ killed by signal 14")
        for qid in ids[:3]:
            committed(inst, qid)
    finally:
        inst.fake.stop()


def test_message_lands_in_incoming_with_its_records(cinst):
    qid, reply = submit(cinst, message(attrs=["protocol=ESMTP", "client_address=192.0.2.1"]))
    assert reply == {"status": "0", "reason": ""}
    qf = committed(cinst, qid)
    assert qf.sender == "sender@example.com"
    assert qf.rcpts == ["rcpt@example.com"]
    assert qf.rcpt_count == 1
    assert qf.attrs == ["protocol=ESMTP", "client_address=192.0.2.1"]
    assert [t for t, _ in qf.envelope] == ["V", "C", "T", "S", "A", "A", "R"]
    assert qf.envelope[2][1] == b"1700000000.123456"
    assert qf.lines == ["From: a@example.com", "To: b@example.com", "Subject: test",
                        "Message-ID: <test.1@example.com>",
                        "Date: Tue, 14 Nov 2023 22:13:20 +0000", "", "hello", "world"]
    assert qf.message_size == sum(len(ln) + 1 for ln in qf.lines)
    # content_offset points at the first record after M.
    assert qf.raw[qf.content_offset:qf.content_offset + 1] == b"N"
    assert qf.raw[qf.content_offset - 2:qf.content_offset] == b"M\x00"
    st = os.stat(find_file(cinst, "incoming", qid))
    assert st.st_mode & 0o777 == 0o600
    cinst.wait_log(rf"postern/cleanup\[\d+\]: {qid}: message-id=<test\.1@example\.com>")
    # Nothing else is logged for the message after the commit.
    assert not re.search(rf"{qid}: (reject|warning)", cinst.log())
    assert_nothing_queued_except(cinst, [qid])


def assert_nothing_queued_except(inst, ids):
    names = sorted(os.path.basename(rel) for _, rel in queue_files(inst))
    assert names == sorted(ids), names


def test_local_submission_gets_missing_headers(cinst):
    qid, reply = submit(cinst, message(sender="alice", rcpts=["bob"], fullname="Alice Q. User",
                                       headers=["Subject: hi"]), flags=FLAG_LOCAL)
    assert reply["status"] == "0", reply
    qf = committed(cinst, qid)
    assert qf.sender == "alice@fake.example"          # rewritten
    assert qf.rcpts == ["bob@fake.example"]
    assert all(r.get("rule") == "local" for r in cinst.fake.requests), cinst.fake.requests
    hdrs = qf.headers
    assert hdrs[0] == "Subject: hi"
    # Added after the existing ones, in Postfix's order.
    names = [h.split(":")[0] for h in hdrs[1:]]
    assert names == ["Message-Id", "Date", "From", "To"], hdrs
    mid = qf.header("Message-Id")[0]
    assert re.fullmatch(rf"Message-Id: <\d{{14}}\.{qid}@[^>]+>", mid), mid
    assert re.fullmatch(r"Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}( \(.+\))?",
                        qf.header("Date")[0]), qf.header("Date")
    assert "14 Nov 2023" in qf.header("Date")[0] or "15 Nov 2023" in qf.header("Date")[0]
    assert qf.header("From") == ['From: "Alice Q. User" <alice@fake.example>']
    assert qf.header("To") == ["To: undisclosed-recipients:;"]
    cinst.wait_log(rf"{qid}: message-id=<\d{{14}}\.{qid}@")


def test_remote_mail_gets_no_added_headers(cinst):
    qid, reply = submit(cinst, message(headers=["Subject: x"]))
    assert reply["status"] == "0"
    qf = committed(cinst, qid)
    assert qf.headers == ["Subject: x"]
    assert all(r.get("rule") == "remote" for r in cinst.fake.requests)
    cinst.wait_log(rf"{qid}: message-id=<>")


def test_rewrite_context_attribute_wins(cinst):
    qid, reply = submit(cinst, message(sender="u", attrs=["rewrite_context=local"]))
    assert reply["status"] == "0"
    assert committed(cinst, qid).sender == "u@fake.example"
    assert [r["rule"] for r in cinst.fake.requests if r.get("address") == "u"] == ["local"]


def test_always_add_missing_headers(new_instance):
    inst = setup_instance(new_instance, options=["always_add_missing_headers=yes"])
    try:
        qid, reply = submit(inst, message(headers=["Subject: x", "Cc: c@example.com"]))
        assert reply["status"] == "0"
        names = [h.split(":")[0] for h in committed(inst, qid).headers]
        assert names == ["Subject", "Cc", "Message-Id", "Date", "From"]
    finally:
        inst.fake.stop()


def test_bcc_content_length_return_path_removed(cinst):
    hdrs = ["To: a@example.com", "Bcc: secret@example.com,", " other@example.com",
            "Content-Length: 12", "Return-Path: <x@example.com>", "Resent-Bcc: r@example.com",
            "Subject: keep"]
    qid, reply = submit(cinst, message(headers=hdrs))
    assert reply["status"] == "0"
    qf = committed(cinst, qid)
    assert qf.headers == ["To: a@example.com", "Subject: keep"]
    assert "secret" not in qf.raw.decode(errors="replace")


def test_folded_headers_written_as_received(cinst):
    hdrs = ["Subject: one", "\ttwo", "  three", "X-Long: " + "y" * 3000]
    qid, reply = submit(cinst, message(headers=hdrs))
    assert reply["status"] == "0"
    qf = committed(cinst, qid)
    assert qf.headers == hdrs
    # The long header was split at line_length_limit (2048) into L + N records.
    pieces = [(t, len(d)) for t, d in qf.content if d.startswith(b"X-Long") or len(d) == 2048]
    assert pieces[0] == ("L", 2048)


def test_extract_recipients_from_headers(cinst):
    hdrs = ["To: One <one@example.com>, two@example.com", "Cc: group: three@example.com;",
            "Bcc: hidden@example.com", "Subject: t"]
    qid, reply = submit(cinst, message(rcpts=["two@example.com"], headers=hdrs),
                        flags=FLAG_EXTRACT)
    assert reply["status"] == "0", reply
    qf = committed(cinst, qid)
    # Envelope recipients first; extracted ones after X; duplicates dropped.
    assert qf.rcpts == ["two@example.com", "one@example.com", "three@example.com",
                        "hidden@example.com"]
    assert qf.rcpt_count == 4
    assert [t for t, _ in qf.extra] == ["R", "R", "R"]
    assert qf.header("Bcc") == []


def test_extract_uses_resent_headers_when_present(cinst):
    hdrs = ["To: old@example.com", "Resent-To: new@example.com", "Resent-Bcc: nb@example.com"]
    qid, reply = submit(cinst, message(rcpts=[], headers=hdrs), flags=FLAG_EXTRACT | FLAG_LOCAL)
    assert reply["status"] == "0", reply
    qf = committed(cinst, qid)
    assert qf.rcpts == ["new@example.com", "nb@example.com"]
    names = [h.split(":")[0] for h in qf.headers]
    # Resent- variants are added for resent mail.
    assert "Resent-Message-Id" in names and "Resent-Date" in names and "Resent-From" in names
    assert "Message-Id" not in names


def test_duplicate_recipients_dropped_dsn_kept(cinst):
    recs = (rec("T", "1700000000.1") + rec("S", "s@example.com")
            + rec("R", "a@example.com") + rec("R", "a@example.com")
            + rec("O", "rfc822;a@example.com") + rec("N", "6") + rec("R", "a@example.com")
            + rec("O", "rfc822;a@example.com") + rec("N", "6") + rec("R", "a@example.com")
            + rec("M") + rec("N", "Subject: d") + rec("X") + rec("E"))
    qid, reply = submit(cinst, recs)
    assert reply["status"] == "0", reply
    qf = committed(cinst, qid)
    assert qf.rcpts == ["a@example.com", "a@example.com"]
    types = [t for t, _ in qf.envelope]
    assert types[types.index("S"):] == ["S", "R", "O", "N", "R"]
    assert (("O", b"rfc822;a@example.com") in qf.envelope
            and ("N", b"6") in qf.envelope)


def test_hop_limit(new_instance):
    inst = setup_instance(new_instance, options=["hopcount_limit=5"])
    try:
        hdrs = [f"Received: from h{i} by x; Tue, 14 Nov 2023 22:13:20 +0000" for i in range(4)]
        qid, reply = submit(inst, message(headers=hdrs))
        assert reply["status"] == "0", reply
        hdrs.append("Received: one too many")
        qid2, reply = submit(inst, message(headers=hdrs))
        assert int(reply["status"]) == STAT_HOPS
        assert reply["reason"].startswith("5.4.6 ")
        assert find_file(inst, "incoming", qid2) is None
        inst.wait_log(rf"{qid2}: reject: too many hops")
        assert_nothing_queued_except(inst, [qid])
    finally:
        inst.fake.stop()


def test_message_size_limit(new_instance):
    inst = setup_instance(new_instance, options=["message_size_limit=2000"])
    try:
        qid, reply = submit(inst, message(body=["x" * 100] * 10))
        assert reply["status"] == "0"
        qid2, reply = submit(inst, message(body=["x" * 100] * 30))
        assert int(reply["status"]) == STAT_SIZE
        assert reply["reason"] == "5.3.4 message file too big"
        inst.wait_log(rf"{qid2}: reject: message size exceeds")
        assert_nothing_queued_except(inst, [qid])
    finally:
        inst.fake.stop()


def test_header_size_limit_rest_is_body(new_instance):
    inst = setup_instance(new_instance, options=["header_size_limit=200"])
    try:
        hdrs = [f"X-H{i}: " + "v" * 40 for i in range(8)] + ["Bcc: late@example.com"]
        qid, reply = submit(inst, message(headers=hdrs), flags=FLAG_LOCAL)
        assert reply["status"] == "0", reply
        qf = committed(inst, qid)
        lines = qf.lines
        # Added headers come before the header that crossed the limit; the
        # rest, Bcc included, is body and kept as received.
        mid = next(i for i, ln in enumerate(lines) if ln.startswith("Message-Id:"))
        assert lines[:mid] == hdrs[:mid]
        assert mid < 8
        assert "Bcc: late@example.com" in lines
    finally:
        inst.fake.stop()


def test_long_body_lines_split(cinst):
    long = "z" * 5000
    # The client sends the line as one 5000-byte N record; cleanup re-splits it.
    qid, reply = submit(cinst, message(body=[long, "end"]))
    assert reply["status"] == "0"
    qf = committed(cinst, qid)
    assert qf.lines[-2:] == [long, "end"]
    sizes = [(t, len(d)) for t, d in qf.content if d.startswith(b"zz")]
    assert sizes == [("L", 2048), ("L", 2048), ("N", 904)]
    # L pieces from the client are joined the same way.
    content = (rec("N", "Subject: s") + rec("N", "") + rec("L", "a" * 1500) + rec("L", "b" * 1500)
               + rec("N", "c"))
    qid, reply = submit(cinst, message(content=content))
    assert reply["status"] == "0"
    assert committed(cinst, qid).lines[-1] == "a" * 1500 + "b" * 1500 + "c"


def test_no_recipients(cinst):
    qid, reply = submit(cinst, message(rcpts=[]))
    assert int(reply["status"]) == STAT_RCPT
    assert reply["reason"].startswith("5.1.3 ")
    cinst.wait_log(rf"{qid}: reject: no recipients")
    assert_nothing_queued(cinst)
    # sendmail -t with nothing to extract is the same.
    qid, reply = submit(cinst, message(rcpts=[], headers=["Subject: none"]), flags=FLAG_EXTRACT)
    assert int(reply["status"]) == STAT_RCPT
    assert_nothing_queued(cinst)


@pytest.mark.parametrize("records", [
    rec("S", "s@example.com") + rec("T", "1.0"),                          # T not first
    rec("T", "1.0") + rec("R", "r@example.com"),                          # no sender
    rec("T", "1.0") + rec("S", "s") + rec("R", "r@x") + rec("A", "protocol=SMTP"),  # A after R
    rec("T", "1.0") + rec("S", "s") + rec("O", "rfc822;x") + rec("M"),    # O without R
    rec("T", "1.0") + rec("S", "s") + rec("R", "r@x") + rec("M") + rec("R", "late@x"),
    rec("T", "1.0") + rec("S", "s") + rec("R", "r@x") + rec("M") + rec("X") + rec("N", "x"),
    rec("T", "1.0") + rec("S", "s") + rec("R", "r@x") + rec("M") + rec("E"),
    rec("T", "junk"),                                                     # bad time
    rec("T", "1.0") + rec("S", "a\x00b"),                                 # NUL in address
    rec("T", "1.0") + rec("S", "s") + rec("R", "r\nx@y"),                 # newline in address
    rec("T", "1.0") + rec("S", "s") + rec("A", "evil=1"),                 # unknown attribute
    rec("T", "1.0") + rec("S", "s") + rec("A", "protocol=a") + rec("A", "protocol=b"),
    rec("T", "1.0") + rec("S", "s") + rec("A", "rewrite_context=elsewhere"),
    rec("T", "1.0") + rec("S", "s") + rec("N", "99") + rec("R", "r@x"),   # bad NOTIFY
    rec("T", "1.0") + rec("S", "s" * 5000),                               # over the envelope limit
    rec("T", "1.0") + rec("S", "s") + rec("R", "r@x") + rec("?", "what"),
    b"T\xff\xff\xff\xff\xff\xff",                                          # overlong varint
])
def test_bad_record_order_and_garbage(cinst, records):
    s, r, qid = connect(cinst)
    try:
        s.sendall(records)
        try:
            reply = r.read()
        except (EOFError, OSError):
            reply = None
    finally:
        s.close()
    assert reply is not None and int(reply["status"]) & STAT_BAD, reply
    assert reply["reason"].startswith("4.3.0 ")
    cinst.wait_log(rf"warning: {qid}: (bad|unexpected|malformed) ")
    wait_for(lambda: queue_files(cinst) == [], what="temporary file removed")


def test_garbage_instead_of_flags(cinst):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(os.path.join(qdir(cinst), "private", "cleanup"))
    r = Reader(s)
    assert r.read() == {"protocol": "cleanup"}
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    assert s.recv(100) == b""
    s.close()
    cinst.wait_log(r"postern/cleanup\[\d+\]: warning: bad request from client")
    assert queue_files(cinst) == []
    # And the service still works.
    qid, reply = submit(cinst, message())
    assert reply["status"] == "0"


def test_client_disconnect_mid_message(cinst):
    s, r, qid = connect(cinst)
    s.sendall(message()[:-20])
    # The temporary file exists while the message is being received.
    wait_for(lambda: any(os.path.basename(f).startswith(".tmp.") for _, f in queue_files(cinst)),
             what="temporary file")
    s.close()
    cinst.wait_log(rf"warning: {qid}: lost connection with client")
    wait_for(lambda: queue_files(cinst) == [], what="temporary file removed")


def test_rewrite_failure_defers(new_instance):
    inst = setup_instance(new_instance, fail=True)
    try:
        qid, reply = submit(inst, message())
        assert int(reply["status"]) == STAT_DEFER
        assert reply["reason"] == "4.3.0 address rewriting failed"
        inst.wait_log(rf"warning: {qid}: address rewriting failed")
        assert_nothing_queued(inst)
    finally:
        inst.fake.stop()


def test_no_rewrite_service_defers(new_instance):
    inst = setup_instance(new_instance, rewrite=False)
    qid, reply = submit(inst, message())
    assert int(reply["status"]) == STAT_DEFER
    assert_nothing_queued(inst)


def test_hold_and_discard(cinst):
    qid, reply = submit(cinst, message(), flags=FLAG_HOLD)
    assert reply["status"] == "0"
    assert committed(cinst, qid, queue="hold").rcpts == ["rcpt@example.com"]
    assert find_file(cinst, "incoming", qid) is None
    qid2, reply = submit(cinst, message(), flags=FLAG_DISCARD)
    assert reply == {"status": "0", "reason": ""}
    assert_nothing_queued_except(cinst, [qid])


def test_real_trivial_rewrite(new_instance):
    if not os.path.exists(os.path.join(BUILD, "libexec", "postern", "trivial-rewrite")):
        pytest.skip("trivial-rewrite is not built")
    inst = new_instance()
    inst.append_master_cf(CLEANUP_MASTER_LINE)
    inst.append_master_cf(REWRITE_MASTER_LINE)
    inst.remove_service("qmgr")
    inst.start()
    qid, reply = submit(inst, message(sender="someone", rcpts=["user@example.com"]),
                        flags=FLAG_LOCAL)
    assert reply["status"] == "0", reply
    qf = committed(inst, qid)
    assert qf.sender.startswith("someone@")
    assert qf.rcpts == ["user@example.com"]


def strace_lines(path):
    with open(path, errors="replace") as f:
        return f.read().splitlines()


def test_durability_order(new_instance):
    """The whole file written, renamed to its queue ID, fsync'ed, and only then the reply."""
    inst = setup_instance(new_instance)
    trace = os.path.join(inst.dir, "strace.out")
    tracer = None
    try:
        mpid = inst.master_pid()
        tracer = subprocess.Popen(["strace", "-f", "-qq", "-s", "80", "-o", trace,
                                   "-e", "trace=openat,fsync,fdatasync,rename,renameat,"
                                   "renameat2,link,write,sendto", "-p", str(mpid)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(trace), what="strace started")
        time.sleep(0.5)
        qid, reply = submit(inst, message())
        assert reply["status"] == "0"
    finally:
        if tracer:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(timeout=10)
        inst.fake.stop()
    lines = strace_lines(trace)
    create = next(i for i, ln in enumerate(lines) if "incoming/.tmp." in ln and "openat" in ln)
    pid, fd = re.match(r"^(\d+)\s+openat\(.*\)\s+=\s+(\d+)", lines[create]).groups()
    mine = [(i, ln) for i, ln in enumerate(lines) if ln.startswith(pid + " ")]
    fsync_file = next(i for i, ln in mine if re.search(rf"fsync\({fd}\)\s+=\s+0", ln))
    rename = next(i for i, ln in mine if "rename" in ln and f"incoming/{qid}" in ln)
    reply_write = next(i for i, ln in mine
                       if ("write(" in ln or "sendto(" in ln) and "status" in ln)
    data_writes = [i for i, ln in mine if re.search(rf"write\({fd},", ln)]
    assert data_writes and max(data_writes) < rename, "queue file written after the rename"
    # The fsync after the rename makes the data and the new name durable (cleanup_out.c).
    assert rename < fsync_file < reply_write, (rename, fsync_file, reply_write)
    assert len([i for i, ln in mine if re.search(r"fsync\(", ln)]) == 1, "one sync per message"
    # Few large writes: the whole small message in one write.
    assert len(data_writes) == 1, data_writes


def test_kill_mid_message_leaves_no_queue_file(cinst):
    s, r, qid = connect(cinst)
    s.sendall(message()[:-20])
    wait_for(lambda: any(os.path.basename(f).startswith(".tmp.") for _, f in queue_files(cinst)),
             what="temporary file")
    pids = [p for p in cinst.children() if "cleanup" in open(f"/proc/{p}/cmdline", "rb").read()
            .decode(errors="replace")]
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    s.close()
    wait_for(lambda: not os.path.exists(f"/proc/{pids[0]}"), what="cleanup gone")
    # Only the temporary file is left: no queue ID anywhere, so no reader takes it.
    left = queue_files(cinst)
    assert len(left) == 1 and left[0][0] == "incoming"
    assert os.path.basename(left[0][1]).startswith(".tmp."), left
    assert find_file(cinst, "incoming", qid) is None
    # A new cleanup process removes it once it is older than daemon_timeout,
    # but only if no cleanup process swept incoming/ in the last five minutes:
    # the first one did, at its start, and left its stamp.
    old = time.time() - 2 * 86400
    stale = os.path.join(qdir(cinst), "incoming", left[0][1])
    stamp = os.path.join(qdir(cinst), "incoming", ".sweep")
    assert os.path.isfile(stamp)
    os.utime(stale, (old, old))
    qid2, reply = submit(cinst, message())
    assert reply["status"] == "0"
    assert os.path.exists(stale), "swept again within the sweep interval"
    # Once the stamp is old, the next cleanup process sweeps.
    for pid in [p for p in cinst.children() if "cleanup" in open(f"/proc/{p}/cmdline", "rb")
                .read().decode(errors="replace")]:
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="cleanup gone")
    os.utime(stamp, (old, old))
    qid3, reply = submit(cinst, message())
    assert reply["status"] == "0"
    cinst.wait_log(r"removed stale temporary file incoming/\.tmp\.")
    assert not os.path.exists(stale)
    assert os.stat(stamp).st_mtime > time.time() - 600
    assert_nothing_queued_except(cinst, [qid2, qid3])
