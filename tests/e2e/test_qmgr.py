"""End-to-end tests of the queue manager with fake delivery agents.

Mail to remote domains goes to default_transport = fake: a small agent
written here in Python listens on queue/private/fake, speaks the delivery
protocol of deliver_proto.h and answers what each test wants. A fake bounce
service on queue/private/bounce records the requests qmgr makes.
"""
import os
import pwd
import signal
import smtplib
import socket
import threading
import time

import pytest

import postern_attr
from conftest import BUILD, IS_ROOT, wait_for

QMGR_MASTER_CF = "qmgr fifo n - n 300 1 qmgr"


def queue_dir(inst):
    return os.path.join(inst.dir, "queue")


def queue_files(inst, name):
    """IDs of the files in a queue (hashed subdirectories included)."""
    found = []
    top = os.path.join(queue_dir(inst), name)
    for dirpath, _dirs, files in os.walk(top):
        found += [f for f in files if not f.startswith(".")]
    return sorted(found)


def queue_file_path(inst, name, qid):
    top = os.path.join(queue_dir(inst), name)
    for dirpath, _dirs, files in os.walk(top):
        if qid in files:
            return os.path.join(dirpath, qid)
    return None


def trigger(inst, what):
    """Write a wake-up byte to the qmgr fifo, as postern queue -f does."""
    fd = os.open(os.path.join(queue_dir(inst), "public", "qmgr"), os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, what)
    finally:
        os.close(fd)


def give_to_mail_owner(path):
    if IS_ROOT:
        pw = pwd.getpwnam("postern")
        os.chown(path, pw.pw_uid, pw.pw_gid)


class FakeServer:
    """A threaded unix-socket server under queue/private/NAME.

    handler(conn_state, request_dict) -> reply list of (name, value), or None
    to close the connection without a reply. Counts parallel connections.
    keep: serve requests one after another on a connection, as the real
    agents do (deliver_proto.h), at most `keep` of them (then close); by
    default one request per connection. drop_next: on a connection that
    already got a reply, read the next request and close without a reply
    (what qmgr sees when an agent leaves a kept connection as it sends).
    """

    def __init__(self, inst, name, protocol, handler, keep=1, drop_next=False):
        self.keep = keep
        self.drop_next = drop_next
        self.connections = 0
        self.dropped = 0
        self.path = os.path.join(queue_dir(inst), "private", name)
        self.protocol = protocol
        self.handler = handler
        self.lock = threading.Lock()
        self.requests = []
        self.parallel = 0
        self.max_parallel = 0
        self.stopping = False
        self.paused = threading.Event()     # set: accept nothing, connections queue up
        self.threads = []
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        while not self.stopping:
            if self.paused.is_set():
                time.sleep(0.05)
                continue
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, conn):
        with self.lock:
            self.parallel += 1
            self.max_parallel = max(self.max_parallel, self.parallel)
            self.connections += 1
        try:
            conn.settimeout(30)
            conn.sendall(postern_attr.encode([("protocol", self.protocol)]))
            reader = postern_attr.Reader(conn)
            for n in range(self.keep + (1 if self.drop_next else 0)):
                req = reader.read()
                if n == self.keep:      # drop_next: read, then leave without a reply
                    with self.lock:
                        self.dropped += 1
                    break
                with self.lock:
                    self.requests.append(req)
                reply = self.handler(req)
                if reply is None:
                    break
                conn.sendall(postern_attr.encode(reply))
        except (OSError, EOFError):
            pass
        finally:
            with self.lock:
                self.parallel -= 1
            conn.close()

    def close(self):
        self.stopping = True
        self.sock.close()
        for t in self.threads:
            t.join(timeout=35)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def rcpts_of(req):
    return [req[f"rcpt_{i}_address"] for i in range(int(req["rcpt_count"]))]


def reply_all(req, result, dsn, reason):
    out = [("status", 0)]
    for i in range(int(req["rcpt_count"])):
        out += [(f"rcpt_{i}_result", result), (f"rcpt_{i}_dsn", dsn),
                (f"rcpt_{i}_reason", reason), (f"rcpt_{i}_relay", "fake")]
    return out


def sent(req):
    return reply_all(req, "sent", "2.0.0", "delivered")


@pytest.fixture
def qmgr_instance(new_instance):
    """make(main_cf_lines) -> a started instance whose qmgr delivers every
    remote domain through the fake transport (the fake is started by the test)."""
    fakes = []

    def make(extra=(), master_cf=None):
        inst = new_instance()
        inst.append_master_cf(QMGR_MASTER_CF)
        if master_cf:
            inst.append_master_cf(master_cf)
        inst.remove_service("bounce")
        inst.append_main_cf("default_transport = fake")
        for line in extra:
            inst.append_main_cf(line)
        inst.start()
        return inst

    def fake(inst, handler, name="fake", protocol="delivery", **kw):
        f = FakeServer(inst, name, protocol, handler, **kw)
        fakes.append(f)
        return f

    make.fake = fake
    yield make
    for f in fakes:
        f.close()


def send(inst, rcpts, sender="alice@localhost", body="hello\n"):
    with inst.smtp() as s:
        s.sendmail(sender, rcpts, f"Subject: test\r\n\r\n{body}")


def queued_ids(inst, count, timeout=15):
    """The IDs of the first `count` messages qmgr took (from its log)."""
    import re
    rx = re.compile(r"qmgr\[\d+\]: (\w+): from=<[^>]*>, size=\d+, nrcpt=\d+ \(queue active\)")
    wait_for(lambda: len(set(rx.findall(inst.log()))) >= count, timeout,
             what=f"{count} messages in the active queue")
    return list(dict.fromkeys(rx.findall(inst.log())))


def test_delivery_and_removal(qmgr_instance):
    inst = qmgr_instance()
    fake = qmgr_instance.fake(inst, sent)
    send(inst, ["bob@example.com", "carol@example.com"])
    qid = queued_ids(inst, 1)[0]
    inst.wait_log(rf"qmgr\[\d+\]: {qid}: removed")
    assert f"{qid}: from=<alice@localhost>, size=" in inst.log()
    assert "nrcpt=2 (queue active)" in inst.log()
    assert len(fake.requests) == 1
    req = fake.requests[0]
    assert sorted(rcpts_of(req)) == ["bob@example.com", "carol@example.com"]
    assert req["queue_id"] == qid and req["queue_name"] == "active"
    assert req["sender"] == "alice@localhost"
    assert req["transport"] == "fake" and req["nexthop"] == "example.com"
    for q in ("incoming", "active", "deferred", "corrupt"):
        assert queue_files(inst, q) == [], q


def test_exactly_once_60_messages_6_sessions(qmgr_instance):
    inst = qmgr_instance()
    fake = qmgr_instance.fake(inst, sent)
    errors = []

    def session(n):
        try:
            with inst.smtp(timeout=30) as s:
                for i in range(10):
                    s.sendmail("alice@localhost", [f"u{n}-{i}@d{n}.example"], "Subject: x\r\n\r\nx\r\n")
        except Exception as e:      # reported below
            errors.append(e)

    threads = [threading.Thread(target=session, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    inst.wait_log(r"qmgr\[\d+\]: \w+: removed", timeout=60, count=60)
    got = sorted(r for req in fake.requests for r in rcpts_of(req))
    assert got == sorted(f"u{n}-{i}@d{n}.example" for n in range(6) for i in range(10))
    assert queue_files(inst, "active") == [] and queue_files(inst, "incoming") == []


def test_kept_connection_carries_the_next_requests(qmgr_instance):
    # After a good reply qmgr sends the transport's next request over the
    # same connection, also for another destination.
    inst = qmgr_instance()
    fake = qmgr_instance.fake(inst, sent, keep=100)
    for i in range(5):
        send(inst, [f"r{i}@d{i % 2}.example"])
        inst.wait_log(r"qmgr\[\d+\]: \w+: removed", count=i + 1)
    assert len(fake.requests) == 5
    assert fake.connections == 1, fake.connections
    assert sorted(r for req in fake.requests for r in rcpts_of(req)) == \
        sorted(f"r{i}@d{i % 2}.example" for i in range(5))
    # Idle for longer than qmgr keeps it (2 s, checked every second): closed.
    wait_for(lambda: fake.parallel == 0, 10, what="the idle connection closed by qmgr")


def test_kept_connection_closed_under_a_request_is_not_a_failure(qmgr_instance):
    # The agent leaves a kept connection just as qmgr sends on it: the
    # request goes again over a new connection, nothing is deferred.
    inst = qmgr_instance()
    fake = qmgr_instance.fake(inst, sent, keep=1, drop_next=True)
    for i in range(3):
        send(inst, [f"r{i}@one.example"])
        inst.wait_log(r"qmgr\[\d+\]: \w+: removed", count=i + 1)
    assert sorted(r for req in fake.requests for r in rcpts_of(req)) == \
        [f"r{i}@one.example" for i in range(3)]
    assert fake.dropped == 2 and fake.connections == 3, (fake.dropped, fake.connections)
    assert "status=deferred" not in inst.log() and "without a reply" not in inst.log()


def test_kept_connection_closed_while_the_socket_is_full_requeues(qmgr_instance):
    # The agent leaves a kept connection as qmgr sends on it, and a new
    # connection cannot be made because the agents' socket is full (its
    # backlog taken, EAGAIN): the request waits for the next turn; it is not
    # a delivery failure, and nothing is deferred.
    inst = qmgr_instance()
    fake = qmgr_instance.fake(inst, sent, keep=1, drop_next=True)
    send(inst, ["r0@one.example"])
    inst.wait_log(r"qmgr\[\d+\]: \w+: removed", count=1)
    fake.paused.set()
    fake.sock.listen(0)                 # one waiting connection fills the backlog
    time.sleep(0.3)                     # the acceptor is past its last accept()
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    filler.setblocking(False)
    filler.connect(fake.path)
    try:
        send(inst, ["r1@one.example"])
        wait_for(lambda: fake.dropped == 1, 15, what="the kept connection dropped under a request")
        time.sleep(1.5)                 # qmgr tries again at its ticks; the socket stays full
        assert "status=deferred" not in inst.log() and queue_files(inst, "deferred") == []
    finally:
        filler.close()
        fake.sock.listen(64)
        fake.paused.clear()
    inst.wait_log(r"qmgr\[\d+\]: \w+: removed", count=2, timeout=15)
    assert sorted(r for req in fake.requests for r in rcpts_of(req)) == ["r0@one.example",
                                                                         "r1@one.example"]
    assert "transport fake:" not in inst.log(), inst.log()[-1500:]


def test_fresh_connection_closed_without_reply_defers(qmgr_instance):
    # On a new connection no such retry: the recipients are deferred.
    inst = qmgr_instance()
    qmgr_instance.fake(inst, lambda req: None)
    send(inst, ["r@one.example"])
    inst.wait_log(r"transport fake: delivery agent closed the connection without a reply")
    qid = queued_ids(inst, 1)[0]
    wait_for(lambda: queue_files(inst, "deferred"), 10, what="the message deferred")
    assert qid in str(queue_files(inst, "deferred"))


def test_destination_concurrency_limit(qmgr_instance):
    inst = qmgr_instance(["fake_destination_concurrency_limit = 2"])

    def slow(req):
        time.sleep(0.4)
        return sent(req)

    fake = qmgr_instance.fake(inst, slow)
    with inst.smtp() as s:
        for i in range(8):
            s.sendmail("alice@localhost", [f"r{i}@one.example"], "Subject: x\r\n\r\nx\r\n")
    inst.wait_log(r"qmgr\[\d+\]: \w+: removed", timeout=30, count=8)
    assert fake.max_parallel == 2, fake.max_parallel


def test_round_robin_between_destinations(qmgr_instance):
    """A destination with a backlog does not hold back another one."""
    # maxproc 1 for the transport: one request at a time over all its
    # destinations. (master's own socket for "fake" is replaced by the fake
    # agent's, so master never starts the placeholder command.)
    inst = qmgr_instance(master_cf="fake unix - - n - 1 cleanup")
    order = []

    def slow(req):
        order.append(req["nexthop"])
        time.sleep(0.2)
        return sent(req)

    fake = qmgr_instance.fake(inst, slow)
    with inst.smtp() as s:
        for i in range(6):
            s.sendmail("alice@localhost", [f"r{i}@big.example"], "Subject: x\r\n\r\nx\r\n")
        s.sendmail("alice@localhost", ["r@small.example"], "Subject: x\r\n\r\nx\r\n")
    inst.wait_log(r"qmgr\[\d+\]: \w+: removed", timeout=30, count=7)
    # small.example must not wait behind the whole big.example backlog
    assert order.index("small.example") < 4, order
    assert fake.max_parallel == 1


def test_recipient_limit_per_request(qmgr_instance):
    inst = qmgr_instance(["fake_destination_recipient_limit = 3"])
    fake = qmgr_instance.fake(inst, sent)
    rcpts = [f"r{i}@lim.example" for i in range(7)]
    send(inst, rcpts)
    inst.wait_log(r"qmgr\[\d+\]: \w+: removed", timeout=20)
    sizes = sorted(int(r["rcpt_count"]) for r in fake.requests)
    assert sizes == [1, 3, 3], sizes
    assert sorted(x for r in fake.requests for x in rcpts_of(r)) == sorted(rcpts)


def test_defer_backoff_then_flush(qmgr_instance):
    inst = qmgr_instance(["minimal_backoff_time = 100s", "maximal_backoff_time = 200s"])
    mode = {"result": "deferred"}

    def handler(req):
        if mode["result"] == "deferred":
            return reply_all(req, "deferred", "4.4.1", "connection refused by fake")
        return sent(req)

    fake = qmgr_instance.fake(inst, handler)
    send(inst, ["bob@slow.example"])
    qid = queued_ids(inst, 1)[0]
    wait_for(lambda: queue_files(inst, "deferred") == [qid], 15, what="message in deferred/")
    st = os.stat(queue_file_path(inst, "deferred", qid))
    assert 90 <= st.st_mtime - time.time() <= 101, st.st_mtime - time.time()
    defer_log = queue_file_path(inst, "defer", qid)
    assert defer_log, "no defer log"
    with open(defer_log) as f:
        text = f.read()
    assert "recipient=bob@slow.example" in text and "action=delayed" in text
    assert "status=4.4.1" in text and "reason=connection refused by fake" in text
    assert queue_files(inst, "active") == []
    # Not retried before its time ...
    trigger(inst, b"A")
    time.sleep(1.5)
    assert len(fake.requests) == 1
    # ... but a flush ignores the back-off.
    mode["result"] = "sent"
    trigger(inst, b"F")
    inst.wait_log(rf"{qid}: removed", timeout=15)
    assert len(fake.requests) == 2
    assert queue_file_path(inst, "defer", qid) is None
    assert queue_files(inst, "deferred") == []


def test_expired_message_is_bounced(qmgr_instance):
    inst = qmgr_instance(["maximal_queue_lifetime = 0"])
    qmgr_instance.fake(inst, lambda req: reply_all(req, "deferred", "4.4.1", "host down"))
    seen_logs = []

    def bounce(req):
        path = queue_file_path(inst, "bounce", req["queue_id"])
        with open(path) as f:
            seen_logs.append(f.read())
        return [("status", 0), ("queue_id", "")]

    bsrv = qmgr_instance.fake(inst, bounce, name="bounce", protocol="bounce")
    send(inst, ["bob@gone.example"])
    qid = queued_ids(inst, 1)[0]
    inst.wait_log(rf"{qid}: removed", timeout=15)
    assert f"{qid}: from=<alice@localhost>, status=expired, returned to sender" in inst.log()
    assert len(bsrv.requests) == 1
    req = bsrv.requests[0]
    assert req["request"] == "flush" and req["queue_id"] == qid
    assert req["sender"] == "alice@localhost"
    assert "action=failed" in seen_logs[0] and "status=5.4.1" in seen_logs[0]
    assert "message delayed too long: host down" in seen_logs[0]


def test_bounce_kept_until_bounce_service_answers(qmgr_instance):
    inst = qmgr_instance(["minimal_backoff_time = 100s"])
    qmgr_instance.fake(inst, lambda req: reply_all(req, "bounced", "5.1.1", "no such user"))
    send(inst, ["nobody@hard.example"])
    qid = queued_ids(inst, 1)[0]
    # No bounce service: the message and its log must stay.
    inst.wait_log(rf"{qid}: non-delivery notice not sent", timeout=15)
    wait_for(lambda: queue_files(inst, "deferred") == [qid], 10, what="message in deferred/")
    blog = queue_file_path(inst, "bounce", qid)
    with open(blog) as f:
        text = f.read()
    assert "recipient=nobody@hard.example" in text and "status=5.1.1" in text
    bsrv = qmgr_instance.fake(inst, lambda req: [("status", 0), ("queue_id", "")],
                              name="bounce", protocol="bounce")
    trigger(inst, b"F")
    inst.wait_log(rf"{qid}: removed", timeout=15)
    assert [r["request"] for r in bsrv.requests] == ["flush"]


def test_notify_success_writes_trace_log(qmgr_instance):
    inst = qmgr_instance()
    qmgr_instance.fake(inst, sent)
    traces = []

    def bounce(req):
        traces.append((req["request"], open(queue_file_path(inst, "trace", req["queue_id"])).read()))
        return [("status", 0), ("queue_id", "")]

    qmgr_instance.fake(inst, bounce, name="bounce", protocol="bounce")
    with inst.smtp() as s:
        s.ehlo()
        s.sendmail("alice@localhost", ["bob@t.example"], "Subject: x\r\n\r\nx\r\n",
                   rcpt_options=["NOTIFY=SUCCESS"])
    qid = queued_ids(inst, 1)[0]
    inst.wait_log(rf"{qid}: removed", timeout=15)
    assert traces and traces[0][0] == "trace"
    assert "action=delivered" in traces[0][1] and "recipient=bob@t.example" in traces[0][1]


def test_dead_transport_defers(qmgr_instance):
    inst = qmgr_instance(["minimal_backoff_time = 100s"])
    # no fake agent at all: private/fake does not exist
    send(inst, ["bob@nowhere.example"])
    qid = queued_ids(inst, 1)[0]
    wait_for(lambda: queue_files(inst, "deferred") == [qid], 15, what="message in deferred/")
    assert "connect to transport private/fake" in inst.log()
    with open(queue_file_path(inst, "defer", qid)) as f:
        assert "reason=mail transport unavailable" in f.read()


def test_crash_recovery_no_duplicate_of_done_recipient(qmgr_instance):
    # master throttles a daemon that dies young; keep that pause short here
    inst = qmgr_instance(["fake_destination_recipient_limit = 1", "service_throttle_time = 1s"])
    release = threading.Event()
    answered = []

    def handler(req):
        r = rcpts_of(req)[0]
        if r.startswith("quick"):
            answered.append(r)
            return sent(req)
        release.wait(20)
        return None                 # the agent "crashes": no reply

    fake = qmgr_instance.fake(inst, handler)
    rcpts = ["quick1@c.example", "quick2@c.example", "slow1@c.example", "slow2@c.example"]
    send(inst, rcpts)
    qid = queued_ids(inst, 1)[0]
    wait_for(lambda: len(fake.requests) == 4 and len(answered) == 2, 15,
             what="four requests, two answered")
    # The done marks are written when the replies arrive; give qmgr a moment.
    time.sleep(0.5)
    qmgr_pids = [p for p in inst.pids() if b"qmgr" in open(f"/proc/{p}/cmdline", "rb").read()]
    assert len(qmgr_pids) == 1
    os.kill(qmgr_pids[0], signal.SIGKILL)
    release.set()
    wait_for(lambda: not os.path.exists(f"/proc/{qmgr_pids[0]}"), 5, what="qmgr gone")
    assert queue_files(inst, "active") == [qid]

    fake.handler = sent
    n_before = len(fake.requests)
    wait_for(lambda: (trigger(inst, b"W") or True) and f"{qid}: removed" in inst.log(), 20,
             step=0.5, what="message delivered after restart")
    again = [r for req in fake.requests[n_before:] for r in rcpts_of(req)]
    assert sorted(again) == ["slow1@c.example", "slow2@c.example"], again


def test_done_marks_are_synced_only_while_recipients_remain(qmgr_instance):
    """A message whose last recipient is done is removed without a sync of its
    marks; marks of a message that stays in the queue are synced."""
    import subprocess
    inst = qmgr_instance(["fake_destination_recipient_limit = 1"])

    def handler(req):
        r = rcpts_of(req)[0]
        if r.startswith("later"):
            return reply_all(req, "deferred", "4.4.1", "try later")
        return sent(req)

    qmgr_instance.fake(inst, handler)
    wait_for(lambda: inst.children("qmgr"), what="qmgr running")
    qpid = inst.children("qmgr")[0]
    trace = os.path.join(inst.dir, "qmgr.strace")
    tracer = subprocess.Popen(["strace", "-qq", "-e", "trace=fdatasync,unlink,renameat2", "-o", trace,
                               "-p", str(qpid)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: os.path.exists(trace), what="strace started")
        time.sleep(0.5)
        send(inst, ["one@d.example"])
        qid1 = queued_ids(inst, 1)[0]
        inst.wait_log(rf"{qid1}: removed")
        send(inst, ["now@d.example", "later@d.example"])
        qid2 = queued_ids(inst, 2)[1]
        wait_for(lambda: queue_files(inst, "deferred") == [qid2], what="the message deferred")
        time.sleep(0.3)
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=10)
    with open(trace) as f:
        calls = f.read()
    syncs = [ln for ln in calls.splitlines() if ln.startswith("fdatasync(")]
    # Only the second message's done mark (now@) was synced: it stayed queued.
    assert len(syncs) == 1, calls
    assert f"active/{qid1}" in calls     # the first was removed (or kept as a spare), unsynced


def test_delivered_queue_file_is_reused_for_the_next_message(qmgr_instance):
    """qmgr keeps a finished queue file in spare/; cleanup's next message
    reuses that inode, emptied first."""
    inst = qmgr_instance()
    release = threading.Event()

    def handler(req):
        if rcpts_of(req)[0].startswith("second"):
            release.wait(20)        # keep the second message in active/ for a look
        return sent(req)

    fake = qmgr_instance.fake(inst, handler)
    spare = os.path.join(queue_dir(inst), "spare")
    big = "first message line that will not survive\n" * 400
    send(inst, ["first@e.example"], body=big)
    qid1 = queued_ids(inst, 1)[0]
    inst.wait_log(rf"{qid1}: removed")
    names = os.listdir(spare)
    assert len(names) == 1, names
    st = os.stat(os.path.join(spare, names[0]))
    ino = st.st_ino
    assert st.st_size > 16000               # qmgr does not empty it: cleanup does
    # cleanup made its next file in advance for smtpd's kept connection before
    # that file was spare; once smtpd gives the connection back (idle for a
    # second), the next message starts afresh and takes the spare.
    incoming = os.path.join(queue_dir(inst), "incoming")
    wait_for(lambda: not [f for f in os.listdir(incoming) if f.startswith(".tmp.")],
             what="the kept cleanup connection given back")
    try:
        send(inst, ["second@e.example"], body="short\n")
        wait_for(lambda: len(fake.requests) == 2, what="the second request")
        qid2 = fake.requests[1]["queue_id"]
        path = queue_file_path(inst, "active", qid2)
        st = os.stat(path)
        assert st.st_ino == ino and os.listdir(spare) == []
        assert st.st_mode & 0o7777 == 0o600
        with open(path, "rb") as f:
            data = f.read()
        assert b"will not survive" not in data and st.st_size < 2000
        r = inst.run("cat", qid2)
        assert r.returncode == 0, r.stderr
        out = r.stdout
        assert "short" in out
    finally:
        release.set()
    inst.wait_log(rf"{qid2}: removed")


def test_corrupt_file_moves_to_corrupt(qmgr_instance):
    inst = qmgr_instance()
    qmgr_instance.fake(inst, sent)
    send(inst, ["bob@ok.example"])          # qmgr is running now
    queued_ids(inst, 1)
    bad_id = "4bKj7Pq2RtzM3x"
    path = os.path.join(queue_dir(inst), "incoming", bad_id)
    with open(path, "wb") as f:
        f.write(b"this is not a queue file\n")
    give_to_mail_owner(path)
    trigger(inst, b"W")
    wait_for(lambda: queue_files(inst, "corrupt") == [bad_id], 15, what="file in corrupt/")
    assert f"{bad_id}: corrupt queue file, moved to corrupt/" in inst.log()
    assert queue_files(inst, "incoming") == [] and queue_files(inst, "active") == []


def test_check_accepts_per_transport_parameters(new_instance):
    inst = new_instance()
    inst.append_master_cf("fake unix - - n - 4 cleanup")
    inst.append_main_cf("fake_destination_concurrency_limit = 3\n"
                        "fake_destination_recipient_limit = 2\n"
                        "fake_destination_rate_delay = 1s\n")
    r = inst.run("check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "unknown" not in (r.stdout + r.stderr)
    inst.append_main_cf("bogus_destination_concurrency_limit = 3")
    r = inst.run("check")
    assert "bogus_destination_concurrency_limit" in r.stdout + r.stderr
    inst.append_main_cf("fake_destination_recipient_limit = many")
    r = inst.run("check")
    assert r.returncode != 0 and "fake_destination_recipient_limit" in r.stdout + r.stderr


def test_delay_warning_sent_once(qmgr_instance):
    inst = qmgr_instance(["delay_warning_time = 1s", "minimal_backoff_time = 100s"])

    def slow_defer(req):
        time.sleep(1.2)             # the message is older than delay_warning_time
        return reply_all(req, "deferred", "4.4.1", "try later")

    fake = qmgr_instance.fake(inst, slow_defer)
    bsrv = qmgr_instance.fake(inst, lambda req: [("status", 0), ("queue_id", "")],
                              name="bounce", protocol="bounce")
    send(inst, ["bob@late.example"])
    qid = queued_ids(inst, 1)[0]
    wait_for(lambda: queue_files(inst, "deferred") == [qid], 15, what="message in deferred/")
    assert [r["request"] for r in bsrv.requests] == ["warn"]
    assert bsrv.requests[0]["queue_id"] == qid
    assert os.stat(queue_file_path(inst, "deferred", qid)).st_mode & 0o100
    trigger(inst, b"F")
    wait_for(lambda: len(fake.requests) == 2 and queue_files(inst, "deferred") == [qid], 15,
             what="second attempt")
    time.sleep(0.3)
    assert [r["request"] for r in bsrv.requests] == ["warn"], "warned twice"


def test_destination_rate_delay(qmgr_instance):
    inst = qmgr_instance(["fake_destination_rate_delay = 1s"])
    times = []

    def stamp(req):
        times.append(time.monotonic())
        return sent(req)

    fake = qmgr_instance.fake(inst, stamp)
    with inst.smtp() as s:
        for i in range(3):
            s.sendmail("alice@localhost", [f"r{i}@rate.example"], "Subject: x\r\n\r\nx\r\n")
    inst.wait_log(r"qmgr\[\d+\]: \w+: removed", timeout=20, count=3)
    assert fake.max_parallel == 1
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g >= 0.9 for g in gaps), gaps


def test_real_virtual_agent_delivers_to_maildir(new_instance):
    """With the real virtual agent: mail to bob@localhost lands in DIR/mail/bob/new/."""
    virtual = os.path.join(BUILD, "libexec", "postern", "virtual")
    if not os.path.exists(virtual):
        pytest.skip("the virtual delivery agent is not built")
    inst = new_instance()
    inst.append_master_cf(QMGR_MASTER_CF + "\nvirtual unix - n n - - virtual")
    # The mailboxes belong to mail_owner (as root) or to whoever runs the test.
    pw = pwd.getpwnam("postern") if IS_ROOT else pwd.getpwuid(os.getuid())
    inst.append_main_cf(f"virtual_uid_maps = static:{pw.pw_uid}\n"
                        f"virtual_gid_maps = static:{pw.pw_gid}\n"
                        f"virtual_minimum_uid = 1")
    os.chown(os.path.join(inst.dir, "mail"), pw.pw_uid, pw.pw_gid)
    inst.start()
    send(inst, ["bob@localhost"])
    new = os.path.join(inst.dir, "mail", "bob", "new")
    wait_for(lambda: os.path.isdir(new) and len(os.listdir(new)) == 1, 20, what="mail in Maildir")
    inst.wait_log(r"qmgr\[\d+\]: \w+: removed")
    with open(os.path.join(new, os.listdir(new)[0])) as f:
        text = f.read()
    assert text.startswith("Return-Path: <alice@localhost>")
    assert "Delivered-To: bob@localhost" in text and "hello" in text


def test_active_limit_bounds_memory(qmgr_instance):
    inst = qmgr_instance(["qmgr_message_active_limit = 2"])
    seen_active = []

    def slow(req):
        seen_active.append(len(queue_files(inst, "active")))
        time.sleep(0.3)
        return sent(req)

    fake = qmgr_instance.fake(inst, slow)
    with inst.smtp() as s:
        for i in range(6):
            s.sendmail("alice@localhost", [f"r{i}@d{i}.example"], "Subject: x\r\n\r\nx\r\n")
    inst.wait_log(r"qmgr\[\d+\]: \w+: removed", timeout=30, count=6)
    assert len(fake.requests) == 6
    assert max(seen_active) <= 2, seen_active
    assert fake.max_parallel <= 2


def test_scan_of_a_full_incoming_lets_deliveries_go_on(qmgr_instance):
    """A scan of a full incoming/ takes a few files at a time and serves the
    agents' replies in between: deliveries finish while the scan is still
    under way, not only after it has read every file."""
    n = 300
    inst = qmgr_instance(["fake_destination_concurrency_limit = 1"])
    inst.stop()
    inst.remove_service("qmgr")         # mail stays in incoming/ meanwhile
    inst.start()
    with inst.smtp(timeout=60) as s:
        for i in range(n):
            s.sendmail("alice@localhost", [f"r{i}@one.example"], "Subject: x\r\n\r\nx\r\n")
    wait_for(lambda: len(queue_files(inst, "incoming")) == n, 30, what=f"{n} files in incoming/")
    inst.stop()
    inst.append_master_cf(QMGR_MASTER_CF)
    fake = qmgr_instance.fake(inst, sent, keep=n)
    inst.start()
    inst.wait_log(r"qmgr\[\d+\]: \w+: removed", timeout=60, count=n)
    assert len(fake.requests) == n
    lines = [l for l in inst.log().splitlines() if "postern/qmgr[" in l]
    admitted = [i for i, l in enumerate(lines) if l.endswith("(queue active)")]
    removed = [i for i, l in enumerate(lines) if l.endswith(": removed")]
    # One at a time (concurrency 1): a scan in one go admits all n before
    # the first reply is read; in steps, replies are read while it goes on.
    assert len(admitted) == n and removed[0] < admitted[-1], (removed[0], admitted[-1])
