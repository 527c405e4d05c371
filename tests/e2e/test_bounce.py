"""The bounce service: delivery status notifications from bounce/defer/trace
logs.

Each test writes an original queue file (postern_rec) and a log (by hand,
in the format of bounce_proto.h) into a running instance's queue, calls
private/bounce directly (postern_attr), and reads the notice that cleanup
queued in incoming/ (there is no qmgr in these instances, so it stays there)
with `postern cat`, parsing it with Python's email package.
"""
import email
import email.policy
import os
import pwd
import re
import socket

import pytest

from conftest import IS_ROOT
from postern_attr import Reader, encode
from postern_rec import queue_file, queue_id, queue_path, write_queue_file

T0 = 1700000000
BOUNCE_SERVICES = ("bounce unix - - n - 0 bounce\n"
                   "defer unix - - n - 0 bounce\n")
ORIGINAL = ["From: Joe <joe@example.com>", "To: bob@localhost",
            "Subject: the original", "Message-ID: <orig.1@example.com>", "",
            "first body line", "second body line"]


def owner(inst):
    r = inst.run("conf", "-h", "mail_owner")
    return r.stdout.strip() or "postern"


def chown_tree(inst, path):
    """Files the test writes must belong to mail_owner, as qmgr's would."""
    if not IS_ROOT:
        return
    pw = pwd.getpwnam(owner(inst))
    qdir = inst.queue_dir
    while path.startswith(qdir) and path != qdir:
        os.chown(path, pw.pw_uid, pw.pw_gid)
        path = os.path.dirname(path)


@pytest.fixture
def binst(new_instance):
    inst = new_instance()
    inst.append_master_cf(BOUNCE_SERVICES)
    inst.remove_service("qmgr")         # notices stay in incoming/ to be read
    r = inst.run("conf", "-x", "-h", "queue_directory")
    assert r.returncode == 0, r.stderr
    inst.queue_dir = r.stdout.strip()
    return inst


class Msg:
    """One original message with its log in an instance's queue."""
    serial = 0

    def __init__(self, inst, sender="joe@example.com", rcpts=("bob@example.com",),
                 attrs=(("rewrite_context", "local"),), queue="active", lines=ORIGINAL):
        Msg.serial += 1
        self.inst = inst
        self.sender = sender
        self.queue = queue
        self.qid = queue_id(T0 * 10**6 + Msg.serial, 1000 + Msg.serial)
        data = queue_file(sender, list(rcpts), lines, arrival=T0, attrs=attrs)
        self.offsets = rcpt_offsets(data)
        chown_tree(inst, write_queue_file(inst.queue_dir, queue, self.qid, data))

    def log(self, kind, blocks, raw=None):
        """Write LOG/[hash/]ID: blocks are dicts of name -> value."""
        text = raw if raw is not None else "".join(
            "".join(f"{k}={v}\n" for k, v in b.items()) + "\n" for b in blocks)
        path = queue_path(self.inst.queue_dir, kind, self.qid)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
        chown_tree(self.inst, path)
        return path

    def request(self, req, sender=None, envid=None, ret=None, extra=()):
        attrs = [("request", req), ("queue_name", self.queue), ("queue_id", self.qid),
                 ("sender", self.sender if sender is None else sender)]
        if envid is not None:
            attrs.append(("dsn_envid", envid))
        if ret is not None:
            attrs.append(("dsn_ret", ret))
        return call_bounce(self.inst, attrs + list(extra))


def rcpt_offsets(data):
    """Offsets of the R records of a queue file, in order."""
    offs, pos = [], 0
    while pos < len(data):
        t = data[pos:pos + 1]
        n, shift, p = 0, 0, pos + 1
        while True:
            b = data[p]
            n |= (b & 0x7F) << shift
            shift += 7
            p += 1
            if not b & 0x80:
                break
        if t == b"R":
            offs.append(pos)
        if t == b"M":
            break
        pos = p + n
    return offs


def call_bounce(inst, attrs, service="bounce"):
    path = os.path.join(inst.queue_dir, "private", service)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(path)
    try:
        r = Reader(s)
        assert r.read() == {"protocol": "bounce"}
        s.sendall(encode(attrs))
        return r.read()
    finally:
        s.close()


def notice(inst, qid):
    """The queued notice: (envelope text, email.message.Message)."""
    env = inst.run("cat", "-e", qid)
    assert env.returncode == 0, env.stderr
    r = inst.run("cat", "-hb", qid)
    assert r.returncode == 0, r.stderr
    return env.stdout, email.message_from_string(r.stdout, policy=email.policy.compat32)


def incoming(inst):
    ids = []
    for root, _, files in os.walk(os.path.join(inst.queue_dir, "incoming")):
        ids += [f for f in files if not f.startswith(".")]
    return ids


def parts(msg):
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    p = msg.get_payload()
    assert isinstance(p, list)
    return p


def status_groups(part):
    """message/delivery-status -> [per-message fields, per-recipient...] as dicts."""
    assert part.get_content_type() == "message/delivery-status"
    groups = []
    for g in part.get_payload():
        groups.append({k.lower(): v for k, v in g.items()})
    return groups


def test_failure_notice_structure(binst):
    binst.start()
    m = Msg(binst, rcpts=[("bob@example.com", "rfc822;Bob@Example.com", 4), "al@example.com"])
    m.log("bounce", [
        {"recipient": "bob@example.com", "orig_rcpt": "robert@example.com",
         "offset": m.offsets[0], "status": "5.1.1", "action": "failed",
         "reason": "unknown user: \"bob\"", "relay": "local", "time": T0 + 60},
        {"recipient": "al@example.com", "offset": m.offsets[1], "status": "5.0.0",
         "action": "failed", "reason": "host mx.example.com[192.0.2.7] said: 550 5.7.1 "
         "go away", "relay": "mx.example.com[192.0.2.7]:25", "time": T0 + 61},
    ])
    reply = m.request("flush", envid="ENV-42")
    assert reply["status"] == "0", reply
    nid = reply["queue_id"]
    assert nid in incoming(binst)
    binst.wait_log(rf"{m.qid}: sender non-delivery notification: {nid}")
    # The log is gone once the notice is queued.
    assert not os.path.exists(queue_path(binst.queue_dir, "bounce", m.qid))

    env, msg = notice(binst, nid)
    assert re.search(r"^sender: *$", env, re.M), env
    assert re.search(r"^recipient: joe@example.com$", env, re.M), env
    assert msg["From"].startswith("Mail Delivery System <MAILER-DAEMON@")
    assert msg["To"] == "<joe@example.com>"
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Date"] and msg["Message-ID"]
    text, status, original = parts(msg)
    assert text.get_content_type() == "text/plain"
    body = text.get_payload()
    assert "<bob@example.com> (expanded from <robert@example.com>): unknown user" in body
    assert "<al@example.com>: host mx.example.com" in body

    g = status_groups(status)
    assert g[0]["reporting-mta"].startswith("dns; ")
    assert g[0]["x-postern-queue-id"] == m.qid
    assert g[0]["original-envelope-id"] == "ENV-42"
    assert "2023" in g[0]["arrival-date"]
    assert len(g) == 3
    assert g[1]["final-recipient"] == "rfc822; bob@example.com"
    assert g[1]["original-recipient"] == "rfc822; Bob@Example.com"
    assert g[1]["action"] == "failed" and g[1]["status"] == "5.1.1"
    assert g[1]["diagnostic-code"] == "x-unix; unknown user: \"bob\""
    assert "remote-mta" not in g[1]
    assert "last-attempt-date" in g[1]
    assert g[2]["final-recipient"] == "rfc822; al@example.com"
    assert "original-recipient" not in g[2]
    assert g[2]["remote-mta"] == "dns; mx.example.com"
    assert g[2]["diagnostic-code"] == "smtp; 550 5.7.1 go away"

    assert original.get_content_type() == "message/rfc822"
    inner = original.get_payload()[0]
    assert inner["Subject"] == "the original"
    assert inner["Message-ID"] == "<orig.1@example.com>"
    assert inner.get_payload() == "first body line\nsecond body line\n"


def test_ret_hdrs_returns_headers_only(binst):
    binst.start()
    m = Msg(binst, attrs=(("rewrite_context", "local"), ("dsn_ret", "2"), ("dsn_envid", "E1")))
    m.log("bounce", [{"recipient": "bob@example.com", "status": "5.1.1",
                      "action": "failed", "reason": "nope"}])
    # No dsn_ret/dsn_envid in the request: the queue file's A records count.
    reply = m.request("flush")
    assert reply["status"] == "0", reply
    _, msg = notice(binst, reply["queue_id"])
    text, status, original = parts(msg)
    assert original.get_content_type() == "text/rfc822-headers"
    payload = original.get_payload()
    assert "Subject: the original" in payload
    assert "first body line" not in payload
    assert status_groups(status)[0]["original-envelope-id"] == "E1"


def test_bounce_size_limit_truncates(binst):
    binst.append_main_cf("bounce_size_limit = 600")
    binst.start()
    lines = ORIGINAL[:5] + ["line %04d %s" % (i, "x" * 40) for i in range(200)]
    m = Msg(binst, lines=lines)
    m.log("bounce", [{"recipient": "bob@example.com", "status": "5.1.1", "reason": "nope"}])
    reply = m.request("flush")
    assert reply["status"] == "0", reply
    _, msg = notice(binst, reply["queue_id"])
    original = parts(msg)[2]
    assert original.get_content_type() == "message/rfc822"
    inner = original.get_payload()[0]
    assert inner["Subject"] == "the original"
    body = inner.get_payload()
    assert "line 0000" in body and "line 0199" not in body
    assert len(inner.as_string()) <= 700


def test_notify_never_and_selection(binst):
    binst.start()
    m = Msg(binst, rcpts=[("a@example.com", None, 1), ("b@example.com", None, 2 | 8)])
    m.log("bounce", [
        {"recipient": "a@example.com", "offset": m.offsets[0], "status": "5.1.1",
         "reason": "never tell"},
        {"recipient": "b@example.com", "offset": m.offsets[1], "status": "5.1.1",
         "reason": "only success and delay asked"},
    ])
    before = incoming(binst)
    reply = m.request("flush")
    assert reply == {"status": "0", "queue_id": ""}, reply
    assert incoming(binst) == before
    binst.wait_log(rf"{m.qid}: no non-delivery notification: DSN NOTIFY excludes every recipient")
    assert not os.path.exists(queue_path(binst.queue_dir, "bounce", m.qid))

    # NOTIFY in the log itself, mixed: only the FAILURE one is reported.
    m2 = Msg(binst, rcpts=["c@example.com", "d@example.com"])
    m2.log("bounce", [
        {"recipient": "c@example.com", "dsn_notify": 1, "reason": "hidden"},
        {"recipient": "d@example.com", "dsn_notify": 4, "reason": "shown"},
    ])
    reply = m2.request("flush")
    assert reply["status"] == "0" and reply["queue_id"], reply
    _, msg = notice(binst, reply["queue_id"])
    g = status_groups(parts(msg)[1])
    assert [x["final-recipient"] for x in g[1:]] == ["rfc822; d@example.com"]


def test_null_sender_never_loops(binst):
    binst.start()
    m = Msg(binst, sender="")
    m.log("bounce", [{"recipient": "bob@example.com", "status": "5.1.1", "reason": "x"}])
    before = incoming(binst)
    reply = m.request("flush")
    assert reply == {"status": "0", "queue_id": ""}, reply
    assert incoming(binst) == before
    binst.wait_log(rf"{m.qid}: sender is <>: no non-delivery notification "
                   r"\(notify_classes has no 2bounce\)")
    assert not os.path.exists(queue_path(binst.queue_dir, "bounce", m.qid))


def test_double_bounce_goes_to_postmaster(binst):
    binst.append_main_cf("notify_classes = resource, software, 2bounce\n"
                         "2bounce_notice_recipient = admin")
    binst.start()
    m = Msg(binst, sender="")
    m.log("bounce", [{"recipient": "bob@example.com", "status": "5.1.1", "reason": "gone"}])
    reply = m.request("flush")
    assert reply["status"] == "0" and reply["queue_id"], reply
    env, msg = notice(binst, reply["queue_id"])
    assert re.search(r"^sender: double-bounce@", env, re.M), env
    assert re.search(r"^recipient: admin@", env, re.M), env
    assert msg["To"].startswith("<admin@")
    assert msg["Subject"].startswith("Postmaster Copy: ")
    binst.wait_log(rf"{m.qid}: postmaster non-delivery notification: {reply['queue_id']}")

    # A failed postmaster notice (from double-bounce) is dropped, not bounced again.
    m2 = Msg(binst, sender="double-bounce")
    m2.log("bounce", [{"recipient": "admin@example.com", "status": "5.1.1", "reason": "x"}])
    before = incoming(binst)
    reply = m2.request("flush")
    assert reply == {"status": "0", "queue_id": ""}, reply
    assert incoming(binst) == before
    binst.wait_log(rf"{m2.qid}: mail from <double-bounce> failed: dropped")


def test_postmaster_copy_of_bounce(binst):
    binst.append_main_cf("notify_classes = bounce\nbounce_notice_recipient = pm")
    binst.start()
    m = Msg(binst)
    m.log("bounce", [{"recipient": "bob@example.com", "status": "5.1.1", "reason": "gone"}])
    before = set(incoming(binst))
    reply = m.request("flush")
    assert reply["status"] == "0", reply
    new = set(incoming(binst)) - before
    assert len(new) == 2 and reply["queue_id"] in new
    (copy,) = new - {reply["queue_id"]}
    env, msg = notice(binst, copy)
    assert re.search(r"^recipient: pm@", env, re.M), env
    assert re.search(r"^sender: double-bounce@", env, re.M), env
    assert parts(msg)[2].get_content_type() == "text/rfc822-headers"


def test_delay_warning(binst):
    binst.start()
    m = Msg(binst, rcpts=["bob@example.com", "al@example.com"], queue="deferred")
    log = m.log("defer", [
        {"recipient": "bob@example.com", "status": "4.4.1", "action": "delayed",
         "reason": "connection refused", "relay": "none", "time": T0 + 10},
        {"recipient": "al@example.com", "status": "4.2.2", "action": "delayed",
         "reason": "mailbox full", "time": T0 + 11},
        {"recipient": "bob@example.com", "status": "4.4.2", "action": "delayed",
         "reason": "lost connection", "time": T0 + 20},
    ])
    reply = call_bounce(binst, [("request", "warn"), ("queue_name", "deferred"),
                                ("queue_id", m.qid), ("sender", m.sender),
                                ("dsn_envid", ""), ("dsn_ret", 0)], service="defer")
    assert reply["status"] == "0" and reply["queue_id"], reply
    binst.wait_log(rf"{m.qid}: sender delay status notification: {reply['queue_id']}")
    assert os.path.exists(log), "the defer log belongs to qmgr and must stay"
    _, msg = notice(binst, reply["queue_id"])
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    text, status, original = parts(msg)
    assert "warning" in text.get_payload().lower()
    g = status_groups(status)
    assert len(g) == 3                       # the newest result per recipient
    assert g[1]["final-recipient"] == "rfc822; bob@example.com"
    assert g[1]["action"] == "delayed" and g[1]["status"] == "4.4.2"
    assert g[1]["diagnostic-code"] == "x-unix; lost connection"
    assert "will-retry-until" in g[1]
    assert g[2]["status"] == "4.2.2"
    assert original.get_content_type() == "message/rfc822"


def test_trace_success_notice(binst):
    binst.start()
    m = Msg(binst, rcpts=[("bob@example.com", None, 2)])
    m.log("trace", [{"recipient": "bob@example.com", "offset": m.offsets[0], "status": "2.0.0",
                     "action": "delivered", "reason": "delivered to maildir",
                     "relay": "virtual"}])
    reply = m.request("trace")
    assert reply["status"] == "0" and reply["queue_id"], reply
    binst.wait_log(rf"{m.qid}: sender delivery status notification: {reply['queue_id']}")
    assert not os.path.exists(queue_path(binst.queue_dir, "trace", m.qid))
    _, msg = notice(binst, reply["queue_id"])
    assert msg["Subject"] == "Successful Mail Delivery Report"
    g = status_groups(parts(msg)[1])
    assert g[1]["action"] == "delivered" and g[1]["status"] == "2.0.0"


def test_missing_log_and_missing_original(binst):
    binst.start()
    m = Msg(binst)
    reply = m.request("flush")
    assert reply == {"status": "0", "queue_id": ""}, reply
    # The queue file is gone: the notice goes out without the original.
    m2 = Msg(binst)
    m2.log("bounce", [{"recipient": "bob@example.com", "status": "5.1.1", "reason": "x"}])
    os.unlink(queue_path(binst.queue_dir, "active", m2.qid))
    reply = m2.request("flush")
    assert reply["status"] == "0" and reply["queue_id"], reply
    _, msg = notice(binst, reply["queue_id"])
    assert len(parts(msg)) == 2
    binst.wait_log(rf"{m2.qid}: open .*; the notice goes without the original message")


def test_malformed_log_blocks_are_skipped(binst):
    binst.start()
    m = Msg(binst, rcpts=["bob@example.com", "al@example.com"])
    m.log("bounce", None, raw=b"recipient=bob@example.com\nstatus=5.1.1\nreason=ok\n\n"
          b"recipient=al@example.com\nstatus=9.9\n\nrecipient=cut@example.com\nreas")
    reply = m.request("flush")
    assert reply["status"] == "0", reply
    _, msg = notice(binst, reply["queue_id"])
    g = status_groups(parts(msg)[1])
    assert [x["final-recipient"] for x in g[1:]] == ["rfc822; bob@example.com"]
    binst.wait_log(rf"{m.qid}: bounce log: 2 malformed block\(s\) ignored, the first at "
                   r"line 5: bad status")


def test_bad_requests(binst):
    binst.start()
    m = Msg(binst)
    for attrs, why in [
        ([("request", "explode"), ("queue_name", "active"), ("queue_id", m.qid),
          ("sender", "a@b")], "unknown request"),
        ([("request", "flush"), ("queue_name", "../etc"), ("queue_id", m.qid),
          ("sender", "a@b")], "bad queue_name"),
        ([("request", "flush"), ("queue_name", "active"), ("queue_id", "../../x"),
          ("sender", "a@b")], "bad queue_id"),
        ([("request", "flush"), ("queue_name", "active"), ("queue_id", m.qid)],
         "sender"),
        ([("request", "flush"), ("queue_name", "active"), ("queue_id", m.qid),
          ("sender", "a@b"), ("surprise", "1")], "surprise"),
    ]:
        reply = call_bounce(binst, attrs)
        assert reply["status"] != "0", (attrs, reply)
        binst.wait_log(r"postern/bounce\[\d+\]: warning: bad request: .*" + re.escape(why))
    # The service still works afterwards.
    m.log("bounce", [{"recipient": "bob@example.com", "status": "5.1.1", "reason": "x"}])
    assert m.request("flush")["status"] == "0"


def test_cleanup_down_keeps_the_log(binst):
    binst.remove_service("cleanup")
    binst.start()
    m = Msg(binst)
    path = m.log("bounce", [{"recipient": "bob@example.com", "status": "5.1.1", "reason": "x"}])
    reply = m.request("flush")
    assert reply["status"] != "0" and "cleanup" in reply.get("reason", ""), reply
    assert os.path.exists(path)


# ---- the whole path: smtpd -> cleanup -> qmgr -> local (|exit 67) -> bounce --
FULL_MASTER_CF = ("qmgr fifo n - n 300 1 qmgr\n"
                  "local unix - n n - - local\n"
                  "virtual unix - n n - - virtual\n")


def have_daemons(*names):
    from conftest import BUILD
    return all(os.path.exists(os.path.join(BUILD, "libexec", "postern", n)) for n in names)


@pytest.fixture
def full(new_instance):
    if not have_daemons("qmgr", "local", "virtual", "bounce"):
        pytest.skip("qmgr, local and virtual are not built yet")
    if not IS_ROOT:
        pytest.skip("local delivery to a command needs root (to switch to default_privs)")
    pw = pwd.getpwnam("postern")
    inst = new_instance(options=["mydestination=local.test", "local_recipient_maps=",
                                 f"virtual_uid_maps=static:{pw.pw_uid}",
                                 f"virtual_gid_maps=static:{pw.pw_gid}"])
    aliases = os.path.join(inst.dir, "aliases")
    with open(aliases, "w") as f:
        f.write("bouncer |exit 67\n")   # texthash: "key value"
    r = inst.run("conf", "-e", f"alias_maps = texthash:{aliases}",
                 f"alias_database = texthash:{aliases}")
    assert r.returncode == 0, r.stderr
    inst.append_master_cf(BOUNCE_SERVICES + FULL_MASTER_CF)
    inst.start()
    return inst


def maildir_messages(inst, user, count, timeout=30):
    d = os.path.join(inst.dir, "mail", user, "new")
    from conftest import wait_for
    wait_for(lambda: os.path.isdir(d) and len(os.listdir(d)) >= count, timeout,
             what=f"{count} message(s) in {d}")
    out = []
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name)) as f:
            out.append(email.message_from_file(f, policy=email.policy.compat32))
    return out


def send_smtp(inst, rcpt, notify=None):
    with inst.smtp() as s:
        s.ehlo("client.test")
        opts = [f"NOTIFY={notify}"] if notify else []
        s.mail("joe@localhost")
        code, _ = s.rcpt(rcpt, options=opts)
        assert code == 250
        s.data(b"From: joe@localhost\r\nTo: bouncer@local.test\r\nSubject: to a failing alias"
               b"\r\n\r\nhello\r\n")


def test_alias_exit_67_bounces_to_sender(full):
    send_smtp(full, "bouncer@local.test")
    (msg,) = maildir_messages(full, "joe", 1)
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    text, status, original = parts(msg)
    g = status_groups(status)
    assert g[1]["final-recipient"] == "rfc822; bouncer@local.test"
    assert g[1]["action"] == "failed" and g[1]["status"].startswith("5.")
    assert g[1]["diagnostic-code"].startswith("x-unix; ") and "67" in g[1]["diagnostic-code"]
    assert original.get_payload()[0]["Subject"] == "to a failing alias"
    full.wait_log(r"sender non-delivery notification: ")


def test_alias_exit_67_notify_never_no_bounce(full):
    send_smtp(full, "bouncer@local.test", notify="NEVER")
    full.wait_log(r"no non-delivery notification: DSN NOTIFY excludes every recipient",
                  timeout=30)
    d = os.path.join(full.dir, "mail", "joe", "new")
    assert not os.path.isdir(d) or os.listdir(d) == []
