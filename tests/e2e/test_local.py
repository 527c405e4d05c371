"""End-to-end tests of the local delivery agent (src/local/).

local must run as root to act as each recipient, so these tests need root
and skip themselves otherwise. Each test creates real Unix accounts with
useradd (removed again with userdel) and an instance where localhost is a
local domain (mydestination) delivered by the "local" service. Until qmgr
runs in every instance, the tests stand in for it: they put a queue file in
active/ and send the delivery request themselves (deliver_client.py),
then look at the reply, the mailboxes and the log.
"""
import mailbox
import os
import pwd
import random
import shutil
import string
import subprocess
import time

import pytest

import deliver_client
from conftest import IS_ROOT, POSTFIX_ROUTING, wait_for

pytestmark = pytest.mark.skipif(
    not IS_ROOT or shutil.which("useradd") is None,
    reason="local delivery tests create Unix users and need root (and useradd)")

SENDER = "alice@example.org"


def _name():
    return "pl" + "".join(random.choice(string.ascii_lowercase) for _ in range(8))


@pytest.fixture
def users():
    """Factory: users() -> (name, pw entry) of a new account with a home dir."""
    made = []
    base = None

    def make():
        nonlocal base
        if base is None:
            import tempfile
            base = tempfile.mkdtemp(prefix="postern-local-home-", dir="/tmp")
            os.chmod(base, 0o755)
        name = _name()
        home = os.path.join(base, name)
        r = subprocess.run(["useradd", "-m", "-d", home, "-s", "/bin/sh", "-U", name],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        made.append(name)
        return name, pwd.getpwnam(name)

    yield make
    for name in made:
        subprocess.run(["userdel", "-r", "-f", name], capture_output=True, timeout=30)
    if base:
        shutil.rmtree(base, ignore_errors=True)


def make_instance(new_instance, aliases="", extra=""):
    """An instance with local delivery for localhost, a 1777 mail spool, and aliases."""
    inst = new_instance(options=POSTFIX_ROUTING + ["local_transport=local",
                                                   "recipient_delimiter=+"])
    spool = os.path.join(inst.dir, "spool")
    os.makedirs(spool)
    os.chmod(spool, 0o1777)
    os.chmod(inst.dir, 0o755)
    inst.spool = spool
    with open(os.path.join(inst.dir, "aliases"), "w") as f:
        f.write("postmaster: root\n" + aliases)
    r = inst.run("map", "-a", f"hash:{inst.dir}/aliases")
    assert r.returncode == 0, r.stdout + r.stderr
    inst.append_main_cf(f"mail_spool_directory = {spool}\n"
                        "command_time_limit = 2s\n" + extra)
    inst.append_master_cf("local unix - n n - - local")
    inst.remove_service("qmgr")     # the tests stand in for qmgr; resubmitted mail stays queued
    inst.start()
    return inst


def deliver(inst, recipients, lines=None, sender=SENDER):
    if lines is None:
        lines = ["Subject: test", "From: " + sender, "", "hello"]
    reply, qid = deliver_client.deliver(inst, "local", sender, recipients, lines, timeout=60)
    assert reply.get("status") == "0", reply
    return reply, qid


def maildir_files(path):
    new = os.path.join(path, "new")
    return [os.path.join(new, f) for f in sorted(os.listdir(new))] if os.path.isdir(new) else []


def test_maildir_in_home(new_instance, users):
    inst = make_instance(new_instance, extra="home_mailbox = Maildir/\n")
    name, pw = users()
    reply, qid = deliver(inst, [f"{name}@localhost"])
    assert reply["rcpt_0_result"] == "sent", reply
    assert reply["rcpt_0_dsn"] == "2.0.0"
    files = maildir_files(os.path.join(pw.pw_dir, "Maildir"))
    assert len(files) == 1
    st = os.stat(files[0])
    assert st.st_uid == pw.pw_uid, "the message must belong to the user"
    with open(files[0]) as f:
        text = f.read()
    assert text.startswith(f"Return-Path: <{SENDER}>\nDelivered-To: {name}@localhost\n")
    assert text.endswith("\nhello\n")
    inst.wait_log(rf"{qid}: to=<{name}@localhost>, relay=local, .*status=sent")


def test_mbox_in_spool_keeps_from_lines(new_instance, users):
    inst = make_instance(new_instance)
    name, pw = users()
    body = ["Subject: mbox", "", "From here on the line starts with From", ">From quoted",
            "last"]
    for _ in range(2):
        reply, _ = deliver(inst, [f"{name}@localhost"], body)
        assert reply["rcpt_0_result"] == "sent", reply
    path = os.path.join(inst.spool, name)
    st = os.lstat(path)
    assert st.st_uid == pw.pw_uid and (st.st_mode & 0o077) == 0
    box = mailbox.mbox(path, create=False)
    msgs = list(box)
    assert len(msgs) == 2, "a body line starting with From must not split the mailbox"
    for m in msgs:
        assert m["Delivered-To"] == f"{name}@localhost"
        assert m["Return-Path"] == f"<{SENDER}>"
        payload = m.get_payload()
        assert ">From here on the line starts with From\n" in payload
        assert "\n>From quoted\n" in payload      # mboxo: only "From " is quoted
        assert "last" in payload
    box.close()


def test_unknown_user_bounces(new_instance):
    inst = make_instance(new_instance)
    reply, _ = deliver(inst, ["nosuchuser-xyz@localhost"])
    assert reply["rcpt_0_result"] == "bounced", reply
    assert reply["rcpt_0_dsn"] == "5.1.1"
    assert "unknown user" in reply["rcpt_0_reason"]


def test_alias_command_exit_codes(new_instance, users):
    inst = make_instance(new_instance, aliases=(
        "fail67: |exit 67\n"
        "fail75: \"|echo try later; exit 75\"\n"
        "fail1: |exit 1\n"
        "good: |cat >/dev/null\n"))
    reply, _ = deliver(inst, ["fail67@localhost", "fail75@localhost", "fail1@localhost",
                              "good@localhost"])
    assert reply["rcpt_0_result"] == "bounced", reply
    assert reply["rcpt_0_dsn"] == "5.1.1"
    assert "exit status 67" in reply["rcpt_0_reason"]
    assert reply["rcpt_1_result"] == "deferred"
    assert reply["rcpt_1_dsn"].startswith("4.")
    assert "try later" in reply["rcpt_1_reason"], "command output goes into the reason"
    assert reply["rcpt_2_result"] == "bounced"
    assert reply["rcpt_3_result"] == "sent"
    assert "delivered to command" in reply["rcpt_3_reason"]


def test_alias_command_runs_as_default_privs(new_instance):
    outdir = os.path.join("/tmp", "postern-local-out-" + _name())
    os.makedirs(outdir)
    os.chmod(outdir, 0o1777)
    try:
        inst = make_instance(new_instance, aliases=(
            f"who: \"|(id -u; echo $RECIPIENT; echo $SENDER; head -1) > {outdir}/who\"\n"))
        reply, _ = deliver(inst, ["who@localhost"])
        assert reply["rcpt_0_result"] == "sent", reply
        with open(os.path.join(outdir, "who")) as f:
            uid, rcpt, sender, first = f.read().splitlines()
        assert int(uid) == pwd.getpwnam("nobody").pw_uid
        assert rcpt == "who@localhost" and sender == SENDER
        assert first.startswith("From alice@example.org "), "commands get a From line first"
        assert os.stat(os.path.join(outdir, "who")).st_uid == pwd.getpwnam("nobody").pw_uid
    finally:
        shutil.rmtree(outdir, ignore_errors=True)


def test_hanging_command_is_killed(new_instance):
    marker = str(random.randint(100000, 999999))
    inst = make_instance(new_instance, aliases=f"hang: \"|sleep {marker}\"\n")
    t0 = time.monotonic()
    reply, qid = deliver(inst, ["hang@localhost"])
    took = time.monotonic() - t0
    assert reply["rcpt_0_result"] == "bounced", reply
    assert "time limit" in reply["rcpt_0_reason"]
    assert took < 20, f"command_time_limit (2s) not enforced: {took:.1f}s"

    def sleepers():
        found = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if f"sleep\0{marker}".encode() in f.read():
                            found.append(int(pid))
                except OSError:
                    pass
        return found
    # SIGKILL is asynchronous: allow the kernel a moment to finish the job.
    wait_for(lambda: sleepers() == [], 5, what="the command's process group to be killed")
    inst.wait_log(rf"{qid}: .*ran longer than command_time_limit")


def test_forward_file(new_instance, users):
    inst = make_instance(new_instance, extra="home_mailbox = Maildir/\n")
    name, pw = users()
    fwd = os.path.join(pw.pw_dir, ".forward")
    with open(fwd, "w") as f:
        f.write(f"# keep a copy and run a command\n\\{name}, \"|cat > $HOME/copy\"\n")
    os.chown(fwd, pw.pw_uid, pw.pw_gid)
    os.chmod(fwd, 0o644)
    reply, _ = deliver(inst, [f"{name}@localhost"])
    assert reply["rcpt_0_result"] == "sent", reply
    assert len(maildir_files(os.path.join(pw.pw_dir, "Maildir"))) == 1
    copy = os.path.join(pw.pw_dir, "copy")
    assert os.stat(copy).st_uid == pw.pw_uid, "forward commands run as the user"
    with open(copy) as f:
        assert f"Delivered-To: {name}@localhost" in f.read()


def test_forward_owned_by_someone_else_is_ignored(new_instance, users):
    inst = make_instance(new_instance, extra="home_mailbox = Maildir/\n")
    name, pw = users()
    other, opw = users()
    fwd = os.path.join(pw.pw_dir, ".forward")
    with open(fwd, "w") as f:
        f.write("|exit 67\n")
    os.chown(fwd, opw.pw_uid, opw.pw_gid)
    os.chmod(fwd, 0o644)
    reply, qid = deliver(inst, [f"{name}@localhost"])
    assert reply["rcpt_0_result"] == "sent", reply
    assert len(maildir_files(os.path.join(pw.pw_dir, "Maildir"))) == 1
    inst.wait_log(rf"{qid}: ignoring {fwd}: owned by uid {opw.pw_uid}")
    # A group-writable .forward of the user is ignored too.
    os.chown(fwd, pw.pw_uid, pw.pw_gid)
    os.chmod(fwd, 0o664)
    reply, _ = deliver(inst, [f"{name}@localhost"])
    assert reply["rcpt_0_result"] == "sent", reply
    assert len(maildir_files(os.path.join(pw.pw_dir, "Maildir"))) == 2


def test_symlinked_mailbox_is_refused(new_instance, users):
    inst = make_instance(new_instance)
    name, pw = users()
    target = os.path.join(pw.pw_dir, "target")
    with open(target, "w"):
        pass
    os.chown(target, pw.pw_uid, pw.pw_gid)
    os.symlink(target, os.path.join(inst.spool, name))
    reply, _ = deliver(inst, [f"{name}@localhost"])
    assert reply["rcpt_0_result"] in ("bounced", "deferred"), reply
    assert os.path.getsize(target) == 0, "nothing may be written through the link"


def test_delivered_to_loop(new_instance, users):
    inst = make_instance(new_instance)
    name, pw = users()
    lines = ["Delivered-To: someone@else", f"Delivered-To: {name.upper()}@localhost",
             "Subject: loop", "", "body"]
    reply, _ = deliver(inst, [f"{name}@localhost"], lines)
    assert reply["rcpt_0_result"] == "bounced", reply
    assert reply["rcpt_0_dsn"] == "5.4.6"
    assert "loop" in reply["rcpt_0_reason"]
    assert not os.path.exists(os.path.join(inst.spool, name))
    # The same header in the body is no loop.
    reply, _ = deliver(inst, [f"{name}@localhost"],
                       ["Subject: x", "", f"Delivered-To: {name}@localhost"])
    assert reply["rcpt_0_result"] == "sent", reply


def test_alias_chain_self_reference_and_extension(new_instance, users):
    bob, bpw = users()
    ann, apw = users()
    inst = make_instance(new_instance, aliases=(
        f"team: {bob}, {ann}, team\n"
        f"{bob}: {bob}, {ann}\n"
        "loopa: loopb\nloopb: loopa\n"))
    reply, _ = deliver(inst, ["team@localhost"])
    # team -> bob (alias: bob itself + ann), ann; "team" refers to itself
    # but has no account: that part bounces.
    assert reply["rcpt_0_result"] == "bounced", reply
    assert box_count(inst, bob) == 1
    assert box_count(inst, ann) == 1, "a destination reached twice is delivered once"
    reply, _ = deliver(inst, [f"{bob}+ext@localhost"])
    assert reply["rcpt_0_result"] == "sent", reply
    assert box_count(inst, bob) == 2 and box_count(inst, ann) == 2
    reply, _ = deliver(inst, ["loopa@localhost"])
    assert reply["rcpt_0_result"] == "bounced", reply


def box_count(inst, name):
    path = os.path.join(inst.spool, name)
    if not os.path.exists(path):
        return 0
    box = mailbox.mbox(path, create=False)
    n = len(box)
    box.close()
    return n


def test_alias_to_remote_address_is_requeued(new_instance, users):
    inst = make_instance(new_instance, aliases="fwd: someone@example.com\n")
    reply, qid = deliver(inst, ["fwd@localhost"])
    assert reply["rcpt_0_result"] == "sent", reply
    assert reply["rcpt_0_reason"].startswith("forwarded as ")
    new_id = reply["rcpt_0_reason"].split()[2]
    r = inst.run("cat", new_id)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "someone@example.com" in r.stdout
    assert "Delivered-To: fwd@localhost" in r.stdout
    assert SENDER in r.stdout


def test_mail_to_files_and_restrictions(new_instance, users):
    name, pw = users()
    inst = make_instance(new_instance, aliases=f"tofile: /tmp/postern-local-never-{name}\n",
                 extra="allow_mail_to_files = forward\n")
    reply, _ = deliver(inst, ["tofile@localhost"])
    assert reply["rcpt_0_result"] == "bounced", reply
    assert "restricted" in reply["rcpt_0_reason"]
    assert not os.path.exists(f"/tmp/postern-local-never-{name}")
    # A .forward may name a file (written as the user).
    fwd = os.path.join(pw.pw_dir, ".forward")
    dest = os.path.join(pw.pw_dir, "saved.mbox")
    with open(fwd, "w") as f:
        f.write(dest + "\n")
    os.chown(fwd, pw.pw_uid, pw.pw_gid)
    reply, _ = deliver(inst, [f"{name}@localhost"])
    assert reply["rcpt_0_result"] == "sent", reply
    assert os.stat(dest).st_uid == pw.pw_uid
    assert len(mailbox.mbox(dest, create=False)) == 1


def test_mailbox_size_limit(new_instance, users):
    inst = make_instance(new_instance, extra="mailbox_size_limit = 2000\n")
    name, pw = users()
    big = ["Subject: big", ""] + ["x" * 70] * 40
    reply, _ = deliver(inst, [f"{name}@localhost"], big)
    assert reply["rcpt_0_result"] == "bounced", reply
    assert reply["rcpt_0_dsn"].startswith("5.2.")


QMGR_LINES = ("qmgr fifo n - n 300 1 qmgr\n"
              "bounce unix - - n - 0 bounce\n"
              "defer unix - - n - 0 bounce\n")


def full_instance(new_instance, aliases="", extra=""):
    """make_instance() plus qmgr and bounce: mail goes in by SMTP."""
    from conftest import BUILD
    for prog in ("qmgr", "bounce"):
        if not os.path.exists(os.path.join(BUILD, "libexec", "postern", prog)):
            pytest.skip(f"no {prog} in this build yet")
    inst = new_instance(options=POSTFIX_ROUTING + ["local_transport=local",
                                                   "recipient_delimiter=+"])
    spool = os.path.join(inst.dir, "spool")
    os.makedirs(spool)
    os.chmod(spool, 0o1777)
    inst.spool = spool
    with open(os.path.join(inst.dir, "aliases"), "w") as f:
        f.write("postmaster: root\n" + aliases)
    r = inst.run("map", "-a", f"hash:{inst.dir}/aliases")
    assert r.returncode == 0, r.stdout + r.stderr
    inst.append_main_cf(f"mail_spool_directory = {spool}\ncommand_time_limit = 2s\n" + extra)
    inst.append_master_cf("local unix - n n - - local\n" + QMGR_LINES)
    inst.start()
    return inst


def test_smtp_to_forward_and_maildir(new_instance, users):
    """Acceptance 5: a user with ~/.forward and a Maildir home_mailbox gets the mail."""
    inst = full_instance(new_instance, extra="home_mailbox = Maildir/\n")
    name, pw = users()
    fwd = os.path.join(pw.pw_dir, ".forward")
    with open(fwd, "w") as f:
        f.write(f"\\{name}\n")
    os.chown(fwd, pw.pw_uid, pw.pw_gid)
    with inst.smtp() as s:
        s.sendmail(SENDER, [f"{name}@localhost"], "Subject: via smtp\r\n\r\nFrom me\r\n")
    md = os.path.join(pw.pw_dir, "Maildir")
    files = wait_for(lambda: maildir_files(md), 20, what="delivery to the Maildir")
    with open(files[0]) as f:
        text = f.read()
    assert f"Delivered-To: {name}@localhost" in text and "Received: " in text
    assert "\nFrom me\n" in text, "Maildir messages are not From-quoted"


def test_smtp_alias_exit_67_bounces_to_sender(new_instance, users):
    """Acceptance 4: |exit 67 bounces with a DSN; with NOTIFY=NEVER it does not."""
    inst = full_instance(new_instance, aliases="fail67: |exit 67\n")
    sender, spw = users()
    with inst.smtp() as s:
        s.sendmail(f"{sender}@localhost", ["fail67@localhost"], "Subject: one\r\n\r\nx\r\n")
    wait_for(lambda: box_count(inst, sender) == 1, 30, what="the bounce in the sender's mbox")
    box = mailbox.mbox(os.path.join(inst.spool, sender), create=False)
    msg = list(box)[0]
    box.close()
    assert msg.get_content_type() == "multipart/report"
    assert "delivery-status" in msg.get("Content-Type", "")
    with inst.smtp() as s:
        s.ehlo()
        s.mail(f"{sender}@localhost")
        code, _ = s.rcpt("fail67@localhost", options=["NOTIFY=NEVER"])
        assert code == 250
        code, _ = s.data("Subject: two\r\n\r\nx\r\n")
        assert code == 250
    inst.wait_log(r"to=<fail67@localhost>, relay=local.*status=bounced", count=2, timeout=30)
    time.sleep(2)
    assert box_count(inst, sender) == 1, "NOTIFY=NEVER: no bounce"
