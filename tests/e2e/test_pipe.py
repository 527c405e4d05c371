"""pipe: delivery to external commands, driven over private/SERVICE.

A stand-in for qmgr (deliver_client.py) sends the requests. The commands are
small shell scripts in a directory everyone can use; as root they run as
"nobody", otherwise as the current user.
"""
import os
import pathlib
import pwd
import shutil
import tempfile
import time

import pytest

from conftest import IS_ROOT, wait_for
from deliver_client import deliver

USER = "nobody" if IS_ROOT else pwd.getpwuid(os.getuid()).pw_name
USER_UID = pwd.getpwnam(USER).pw_uid
LINES = ["From: joe@example.com", "Subject: piped", "", "From the start", ".dot", "end"]


@pytest.fixture
def work():
    """A directory the command's user can reach (pytest's tmp_path is root's only)."""
    base = tempfile.mkdtemp(prefix="postern-pipe-", dir="/tmp")
    os.chmod(base, 0o755)
    d = pathlib.Path(base) / "work"
    d.mkdir()
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(base, ignore_errors=True)


def script(work, name, body):
    path = work / name
    path.write_text("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return str(path)


def pipe_instance(new_instance, line, main=""):
    inst = new_instance(options=["recipient_delimiter=+"])
    if main:
        inst.append_main_cf(main)
    inst.append_master_cf(line)
    inst.remove_service("qmgr")     # the test stands in for qmgr
    inst.start()
    return inst


def test_macros_flags_and_user(new_instance, work):
    out = work / "out"
    cmd = script(work, "record", f'{{ id -u; for a in "$@"; do echo "ARG:$a"; done; cat; }} > {out}\n')
    inst = pipe_instance(new_instance,
                         f"mypipe unix - n n - - pipe flags=FODR> user={USER} argv={cmd} "
                         "${sender} ${recipient} ${user} ${extension} ${domain} ${nexthop} "
                         "${original_recipient} ${mailbox} x${queue_id}")
    reply, qid = deliver(inst, "mypipe", "joe@example.com", ["Bob+tag@Example.ORG"], LINES,
                         nexthop="Example.ORG")
    assert reply["rcpt_0_result"] == "sent", reply
    assert reply["rcpt_0_dsn"] == "2.0.0"
    assert reply["rcpt_0_relay"] == "mypipe"
    assert reply["rcpt_0_reason"] == "delivered via mypipe service"
    text = out.read_text().split("\n")
    assert text[0] == str(USER_UID)
    assert text[1:10] == ["ARG:joe@example.com", "ARG:Bob+tag@Example.ORG", "ARG:Bob", "ARG:tag",
                          "ARG:Example.ORG", "ARG:Example.ORG", "ARG:Bob+tag@Example.ORG",
                          "ARG:Bob+tag", f"ARG:x{qid}"]
    assert text[10].startswith("From joe@example.com  ")
    assert text[11:] == ["X-Original-To: Bob+tag@Example.ORG",
                         "Delivered-To: bob+tag@example.org",
                         "Return-Path: <joe@example.com>", "From: joe@example.com",
                         "Subject: piped", "", ">From the start", ".dot", "end", ""]
    inst.wait_log(rf"postern/pipe\[\d+\]: {qid}: to=<Bob\+tag@Example\.ORG>, relay=mypipe, "
                  r"delay=[\d.]+, delays=[\d./]+, dsn=2\.0\.0, status=sent")


def test_recipient_argument_repeats_and_folding(new_instance, work):
    out = work / "out"
    cmd = script(work, "record", f'for a in "$@"; do echo "ARG:$a"; done >> {out}; cat > /dev/null\n')
    inst = pipe_instance(new_instance,
                         f"mypipe unix - n n - - pipe flags=hu. user={USER} argv={cmd} "
                         "-s ${sender} -r ${recipient}")
    reply, _ = deliver(inst, "mypipe", "", ["A@X.ORG", "b@y.org"], LINES)
    assert reply["rcpt_0_result"] == "sent" and reply["rcpt_1_result"] == "sent", reply
    # Only the argument that holds ${recipient} repeats, as in Postfix.
    assert out.read_text().split("\n") == ["ARG:-s", "ARG:MAILER-DAEMON", "ARG:-r", "ARG:a@x.org",
                                           "ARG:b@y.org", ""]


@pytest.mark.parametrize("body, result, dsn, reason", [
    ("exit 75\n", "deferred", "4.3.0", "temporary failure"),
    ("exit 67\n", "bounced", "5.1.1", "user unknown"),
    ("echo 'no such mailbox here'; exit 64\n", "bounced", "5.3.0",
     "command line usage error. Command output: no such mailbox here"),
    ("echo '4.7.0 come back later'; exit 1\n", "deferred", "4.7.0",
     "command died with status 1. Command output: 4.7.0 come back later"),
    ("exit 3\n", "bounced", "5.3.0", "command died with status 3"),
    ("kill -9 $$\n", "deferred", "4.3.0", "command died with signal 9"),
])
def test_exit_status_mapping(new_instance, work, body, result, dsn, reason):
    cmd = script(work, "fail", "cat > /dev/null\n" + body)
    inst = pipe_instance(new_instance, f"mypipe unix - n n - - pipe user={USER} argv={cmd}")
    reply, _ = deliver(inst, "mypipe", "joe@example.com", ["a@example.org"], LINES)
    assert (reply["rcpt_0_result"], reply["rcpt_0_dsn"]) == (result, dsn), reply
    assert reply["rcpt_0_reason"] == reason


def test_hanging_command_is_killed(new_instance, work):
    pids = work / "pids"
    cmd = script(work, "hang", f"sleep 300 &\necho $$ $! > {pids}\nwait\n")
    inst = pipe_instance(new_instance, f"mypipe unix - n n - - pipe user={USER} argv={cmd}",
                         main="mypipe_time_limit = 2s")
    start = time.monotonic()
    reply, _ = deliver(inst, "mypipe", "joe@example.com", ["a@example.org"], LINES, timeout=30)
    took = time.monotonic() - start
    assert (reply["rcpt_0_result"], reply["rcpt_0_dsn"]) == ("bounced", "5.0.0"), reply
    assert "time limit" in reply["rcpt_0_reason"]
    assert 1.5 < took < 15
    for pid in map(int, pids.read_text().split()):
        wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
                 open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z",
                 5, what=f"process {pid} to be killed")


@pytest.mark.parametrize("args, text", [
    ("argv=/bin/cat", "user= is required"),
    ("user=root argv=/bin/cat", "root privileges"),
    (f"user={USER} flags=Z argv=/bin/cat", "unknown flag"),
    (f"user={USER} argv=/bin/echo ${{nosuch}}", "unknown macro"),
    (f"user={USER} bogus=1 argv=/bin/cat", "unknown attribute"),
    (f"user={USER}", "argv="),
])
def test_configuration_errors_defer(new_instance, args, text):
    inst = pipe_instance(new_instance, f"mypipe unix - n n - - pipe {args}")
    reply, _ = deliver(inst, "mypipe", "joe@example.com", ["a@example.org"], LINES)
    assert (reply["rcpt_0_result"], reply["rcpt_0_dsn"]) == ("deferred", "4.3.5"), reply
    assert text in reply["rcpt_0_reason"]


def test_size_limit_bounces(new_instance, work):
    out = work / "out"
    cmd = script(work, "record", f"cat > {out}\n")
    inst = pipe_instance(new_instance, f"mypipe unix - n n - - pipe size=10 user={USER} argv={cmd}")
    reply, _ = deliver(inst, "mypipe", "joe@example.com", ["a@example.org"], LINES)
    assert (reply["rcpt_0_result"], reply["rcpt_0_dsn"]) == ("bounced", "5.2.3"), reply
    assert not out.exists()
