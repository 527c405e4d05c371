"""virtual: delivery to virtual mailboxes, driven over private/virtual.

A stand-in for qmgr (deliver_client.py) writes a queue file into active/ and
sends the delivery request itself, so these tests need only master and the
agent. As root the mailboxes belong to "nobody" (virtual_uid_maps =
static:65534); as an ordinary user the agent delivers as that user (maps
unset), the case of an instance made by "postern init" without root.
"""
import mailbox
import os
import pwd
import re
import subprocess
import time

import pytest

from conftest import BUILD, IS_ROOT, wait_for
from deliver_client import connect, deliver, make_queue_file, request_attrs, send_request
from postern_attr import Reader, encode

VIRTUAL_LINE = "virtual unix - n n - - virtual"
LINES = ["From: joe@example.com", "To: bob@localhost", "Subject: hello",
         "Message-ID: <1@example.com>", "", "From the body", "bye"]

if IS_ROOT:
    OWNER_UID = pwd.getpwnam("nobody").pw_uid
    OWNER_GID = pwd.getpwnam("nobody").pw_gid
else:
    OWNER_UID, OWNER_GID = os.getuid(), os.getgid()


def owner_options():
    if IS_ROOT:
        return [f"virtual_uid_maps=static:{OWNER_UID}", f"virtual_gid_maps=static:{OWNER_GID}"]
    return []


@pytest.fixture
def vinst(new_instance):
    inst = new_instance(options=owner_options())
    inst.append_master_cf(VIRTUAL_LINE)
    inst.remove_service("qmgr")     # the test stands in for qmgr
    inst.start()
    return inst


def maildir_files(inst, name, sub="new"):
    d = os.path.join(inst.dir, "mail", name, sub)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_maildir_delivery(vinst):
    reply, qid = deliver(vinst, "virtual", "joe@example.com", ["Bob@localhost"], LINES)
    assert reply["status"] == "0", reply
    assert reply["rcpt_0_result"] == "sent", reply
    assert reply["rcpt_0_dsn"] == "2.0.0"
    assert reply["rcpt_0_relay"] == "virtual"
    files = maildir_files(vinst, "bob")
    assert len(files) == 1
    assert maildir_files(vinst, "bob", "tmp") == []
    path = os.path.join(vinst.dir, "mail", "bob", "new", files[0])
    text = read(path).decode()
    assert text.startswith("Return-Path: <joe@example.com>\nDelivered-To: bob@localhost\n"
                           "From: joe@example.com\n")
    assert text.endswith("\n\nFrom the body\nbye\n")
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (OWNER_UID, OWNER_GID)
    assert os.stat(os.path.join(vinst.dir, "mail", "bob")).st_uid == OWNER_UID
    vinst.wait_log(rf"postern/virtual\[\d+\]: {qid}: to=<Bob@localhost>, relay=virtual, "
                   r"delay=[\d.]+, delays=[\d.]+/[\d.]+/0/[\d.]+, dsn=2\.0\.0, "
                   r"status=sent \(delivered to maildir\)")
    # The agent did not touch the queue file: qmgr owns it.
    assert os.path.exists(os.path.join(vinst.dir, "queue", "active", qid))


def test_requests_one_after_another_on_one_connection(new_instance):
    # qmgr keeps a connection for its next request (deliver_proto.h); the
    # agent counts each request towards max_use and closes after the last.
    inst = new_instance(options=owner_options() + ["max_use = 3"])
    inst.append_master_cf(VIRTUAL_LINE)
    inst.remove_service("qmgr")
    inst.start()
    s = connect(inst, "virtual")
    try:
        r = Reader(s)
        assert r.read() == {"protocol": "delivery"}     # once, not per request
        for i in range(3):
            qid, off, data = make_queue_file(inst, "joe@example.com", [f"u{i}@localhost"], LINES)
            s.sendall(encode(request_attrs(qid, off, "joe@example.com", [f"u{i}@localhost"],
                                           size=len(data))))
            reply = r.read()
            assert reply["status"] == "0" and reply["rcpt_0_result"] == "sent", reply
            assert len(maildir_files(inst, f"u{i}")) == 1
        started = time.time()
        assert s.recv(100) == b"", "max_use reached: the agent ends the connection"
        assert time.time() - started < 5, "at once, not after the idle wait for a next request"
    finally:
        s.close()


def test_kept_connection_ends_at_once_when_master_reloads(vinst):
    # An agent waiting for qmgr's next request sees master's reload at once
    # (it waits on master's pipe too), not after its 10 s idle wait.
    s = connect(vinst, "virtual")
    try:
        r = Reader(s)
        assert r.read() == {"protocol": "delivery"}
        qid, off, data = make_queue_file(vinst, "joe@example.com", ["kay@localhost"], LINES)
        s.sendall(encode(request_attrs(qid, off, "joe@example.com", ["kay@localhost"],
                                       size=len(data))))
        assert r.read()["rcpt_0_result"] == "sent"
        assert vinst.run("reload").returncode == 0
        started = time.time()
        s.settimeout(15)
        assert s.recv(100) == b""
        assert time.time() - started < 5
    finally:
        s.close()


def test_several_recipients_one_request(vinst):
    reply, _ = deliver(vinst, "virtual", "", ["a1@localhost", "a2@localhost", ".bad@localhost"],
                       LINES)
    assert reply["rcpt_0_result"] == "sent" and reply["rcpt_1_result"] == "sent"
    assert reply["rcpt_2_result"] == "bounced"
    assert reply["rcpt_2_dsn"] == "5.1.1"
    assert "User unknown in virtual mailbox table" in reply["rcpt_2_reason"]
    text = read(os.path.join(vinst.dir, "mail", "a1", "new",
                             maildir_files(vinst, "a1")[0])).decode()
    assert text.startswith("Return-Path: <>\nDelivered-To: a1@localhost\n")


def test_mbox_and_recipient_delimiter(new_instance):
    inst = new_instance(options=owner_options() + ["recipient_delimiter=+"])
    maps = os.path.join(inst.dir, "vmaps")
    with open(maps, "w") as f:
        f.write("carol@localhost carol.mbox\n")
    inst.append_main_cf(f"virtual_mailbox_maps = texthash:{maps}")
    inst.append_master_cf(VIRTUAL_LINE)
    inst.remove_service("qmgr")     # the test stands in for qmgr
    inst.start()
    for n in range(2):
        reply, _ = deliver(inst, "virtual", "joe@example.com", ["carol+list@localhost"],
                           LINES[:4] + [f"", f"message {n}", "From here on", ">From there"])
        assert reply["rcpt_0_result"] == "sent", reply
    box = os.path.join(inst.dir, "mail", "carol.mbox")
    assert os.stat(box).st_uid == OWNER_UID
    msgs = list(mailbox.mbox(box))
    assert len(msgs) == 2
    for n, m in enumerate(msgs):
        assert m["Delivered-To"] == "carol+list@localhost"
        assert m["Return-Path"] == "<joe@example.com>"
        assert m.get_payload() == f"message {n}\n>From here on\n>From there\n"
    assert not os.path.exists(box + ".lock")
    # Not in the table: user unknown.
    reply, _ = deliver(inst, "virtual", "joe@example.com", ["dave@localhost"], LINES)
    assert (reply["rcpt_0_result"], reply["rcpt_0_dsn"]) == ("bounced", "5.1.1")


def test_symlinked_mailbox_refused(vinst, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.chmod(tmp_path, 0o755)
    os.symlink(str(target), os.path.join(vinst.dir, "mail", "eve"))
    reply, _ = deliver(vinst, "virtual", "joe@example.com", ["eve@localhost"], LINES)
    assert reply["rcpt_0_result"] == "bounced", reply
    assert reply["rcpt_0_dsn"] == "5.2.0"
    assert "symbolic link" in reply["rcpt_0_reason"]
    assert os.listdir(target) == []


def test_mailbox_replaced_by_symlink_between_deliveries(vinst, tmp_path):
    # The agent walks a mailbox path as root once in a while, not for every
    # message; a Maildir that became a symbolic link is refused all the same.
    # One connection, so one agent process, which remembers the path.
    s = connect(vinst, "virtual")
    try:
        r = Reader(s)
        assert r.read() == {"protocol": "delivery"}

        def one():
            qid, off, data = make_queue_file(vinst, "joe@example.com", ["zed@localhost"], LINES)
            s.sendall(encode(request_attrs(qid, off, "joe@example.com", ["zed@localhost"],
                                           size=len(data))))
            return r.read()
        reply = one()
        assert reply["rcpt_0_result"] == "sent", reply
        target = tmp_path / "elsewhere"
        target.mkdir()
        os.chmod(tmp_path, 0o755)
        box = os.path.join(vinst.dir, "mail", "zed")
        os.rename(box, box + ".old")
        os.symlink(str(target), box)
        reply = one()
        assert reply["rcpt_0_result"] == "bounced", reply
        assert "symbolic link" in reply["rcpt_0_reason"]
        assert os.listdir(target) == []
    finally:
        s.close()


def test_bad_request_is_answered_and_agent_survives(vinst):
    qid, off, _ = make_queue_file(vinst, "joe@example.com", ["bob@localhost"], LINES)
    attrs = request_attrs(qid, off, "joe@example.com", ["bob@localhost"])
    bad = [(k, "../../etc" if k == "queue_id" else v) for k, v in attrs]
    reply = send_request(vinst, "virtual", bad)
    assert reply["status"] != "0" and "queue ID" in reply["reason"]
    # A wrong content offset: the queue file check defers, nothing is written.
    wrong = [(k, off + 1 if k == "content_offset" else v) for k, v in attrs]
    reply = send_request(vinst, "virtual", wrong)
    assert reply["rcpt_0_result"] == "deferred", reply
    assert maildir_files(vinst, "bob") == [] and maildir_files(vinst, "bob", "tmp") == []
    reply = send_request(vinst, "virtual", attrs)
    assert reply["rcpt_0_result"] == "sent", reply
    assert "warning" in vinst.log()


def test_uid_below_minimum_is_deferred(new_instance):
    inst = new_instance(options=["virtual_uid_maps=static:5", "virtual_gid_maps=static:5"])
    inst.append_master_cf(VIRTUAL_LINE)
    inst.remove_service("qmgr")     # the test stands in for qmgr
    inst.start()
    reply, _ = deliver(inst, "virtual", "joe@example.com", ["bob@localhost"], LINES)
    assert (reply["rcpt_0_result"], reply["rcpt_0_dsn"]) == ("deferred", "4.3.5"), reply
    assert "virtual_minimum_uid" in reply["rcpt_0_reason"]
    assert maildir_files(inst, "bob") == []


@pytest.mark.skipif(not IS_ROOT, reason="needs root: the agent only refuses root delivery as root")
def test_root_without_uid_maps_defers(new_instance):
    inst = new_instance(options=["virtual_uid_maps=", "virtual_gid_maps="])   # init sets them
    inst.append_master_cf(VIRTUAL_LINE)
    inst.remove_service("qmgr")     # the test stands in for qmgr
    inst.start()
    reply, _ = deliver(inst, "virtual", "joe@example.com", ["bob@localhost"], LINES)
    assert (reply["rcpt_0_result"], reply["rcpt_0_dsn"]) == ("deferred", "4.3.5"), reply
    assert "virtual_uid_maps" in reply["rcpt_0_reason"]
    assert not os.path.exists(os.path.join(inst.dir, "mail", "bob"))


def test_mailbox_limit_bounces_and_truncates(new_instance):
    inst = new_instance(options=owner_options() + ["virtual_mailbox_limit=2000"])
    maps = os.path.join(inst.dir, "vmaps")
    with open(maps, "w") as f:
        f.write("carol@localhost carol.mbox\n")
    inst.append_main_cf(f"virtual_mailbox_maps = texthash:{maps}")
    inst.append_master_cf(VIRTUAL_LINE)
    inst.remove_service("qmgr")     # the test stands in for qmgr
    inst.start()
    reply, _ = deliver(inst, "virtual", "joe@example.com", ["carol@localhost"], LINES)
    assert reply["rcpt_0_result"] == "sent", reply
    box = os.path.join(inst.dir, "mail", "carol.mbox")
    size = os.path.getsize(box)
    big = LINES[:5] + ["x" * 70] * 60
    reply, _ = deliver(inst, "virtual", "joe@example.com", ["carol@localhost"], big)
    assert (reply["rcpt_0_result"], reply["rcpt_0_dsn"]) == ("bounced", "5.2.2"), reply
    assert os.path.getsize(box) == size


@pytest.mark.skipif(not IS_ROOT, reason="needs root to mount a small tmpfs")
def test_full_disk_defers_and_leaves_nothing(vinst):
    mnt = os.path.join(vinst.dir, "mail", "full")
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", mnt],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {r.stderr.strip()}")
    try:
        maps = os.path.join(vinst.dir, "mailboxes")
        with open(maps, "w") as f:
            f.write("/^(.*)@localhost$/\tfull/$1/\n")
        vinst.stop()
        vinst.start()
        big = LINES[:5] + ["y" * 999] * 200        # 200 KB, more than the tmpfs holds
        reply, qid = deliver(vinst, "virtual", "joe@example.com", ["bob@localhost"], big)
        assert reply["rcpt_0_result"] == "deferred", reply
        assert reply["rcpt_0_dsn"].startswith("4."), reply
        assert "No space left" in reply["rcpt_0_reason"]
        box = os.path.join(mnt, "bob")
        assert os.listdir(os.path.join(box, "new")) == []
        assert os.listdir(os.path.join(box, "tmp")) == []
        assert os.path.exists(os.path.join(vinst.dir, "queue", "active", qid))
        # Room again: the same message goes through.
        reply, _ = deliver(vinst, "virtual", "joe@example.com", ["bob@localhost"], LINES)
        assert reply["rcpt_0_result"] == "sent", reply
    finally:
        vinst.stop()
        subprocess.run(["umount", "-l", mnt], capture_output=True)


# ---- end to end, through smtpd, cleanup and qmgr -------------------------------
QMGR_LINE = "qmgr fifo n - n 300 1 qmgr"


def test_smtp_to_maildir_end_to_end(new_instance):
    if not os.path.exists(os.path.join(BUILD, "libexec", "postern", "qmgr")):
        pytest.skip("qmgr is not built")
    inst = new_instance(options=owner_options())
    inst.append_master_cf(QMGR_LINE + "\n" + VIRTUAL_LINE)
    inst.start()
    with inst.smtp() as s:
        s.sendmail("joe@example.com", ["bob@localhost"],
                   "From: joe@example.com\r\nTo: bob@localhost\r\nSubject: e2e\r\n\r\nhello\r\n")
    new = os.path.join(inst.dir, "mail", "bob", "new")
    files = wait_for(lambda: os.path.isdir(new) and os.listdir(new), 20,
                     what="a message in mail/bob/new")
    assert len(files) == 1
    text = read(os.path.join(new, files[0])).decode()
    head = text.split("\n\n", 1)[0]
    assert head.startswith("Return-Path: <joe@example.com>\nDelivered-To: bob@localhost\n")
    for name in ("Received:", "Message-ID:", "Date:"):
        assert re.search(rf"^{name}", head, re.M | re.I), f"no {name} in\n{head}"
    assert text.endswith("\nhello\n")
    inst.wait_log(r"postern/virtual\[\d+\]: \w+: to=<bob@localhost>, relay=virtual, .*"
                  r"status=sent \(delivered to maildir\)")
