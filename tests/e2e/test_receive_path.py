"""The receive path as a postmaster sees it (issue 4's acceptance): mail from the
network and from sendmail reaches the queue of a fresh instance, the queue tools
show it, and a message is acknowledged only once it is safely queued."""
import json
import os
import signal
import subprocess

from conftest import BUILD, read_reply, wait_for

SENDMAIL = os.path.join(BUILD, "bin", "sendmail")


def queue_json(inst):
    r = inst.run("queue", "-j")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def procs_named(inst, name):
    """PIDs of the instance's processes whose program is "name"."""
    found = []
    for pid in inst.pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if os.path.basename(argv0) == name:
            found.append(pid)
    return found


def queue_files(inst):
    qdir = os.path.join(inst.dir, "queue")
    found = []
    for name in ("incoming", "active", "deferred", "hold", "maildrop", "corrupt"):
        for root, _dirs, files in os.walk(os.path.join(qdir, name)):
            found += [os.path.join(root, f) for f in files]
    return found


def test_smtp_and_sendmail_reach_the_queue(new_instance):
    instance = new_instance()
    instance.remove_service("qmgr")     # delivery held: mail stays in the queue
    instance.start()
    body = "Subject: over SMTP\r\n\r\n" + "line of text\r\n" * 50
    with instance.smtp() as c:
        c.ehlo("client.example")
        assert c.sendmail("alice@example.org", ["bob@localhost", "carol@localhost"], body) == {}
    r = subprocess.run([SENDMAIL, "-C", instance.dir, "-t", "-f", "dave@example.org"],
                       input=b"To: erin@localhost\nSubject: via sendmail\n\nhello\n",
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    # Both in incoming/: the local one is listed from maildrop/ before pickup takes it.
    wait_for(lambda: [m["queue_name"] for m in queue_json(instance)] == ["incoming"] * 2,
             what="both messages in incoming/")

    msgs = {m["sender"]: m for m in queue_json(instance)}
    smtp_msg, local_msg = msgs["alice@example.org"], msgs["dave@example.org"]
    assert smtp_msg["queue_name"] == "incoming"
    assert sorted(r["address"] for r in smtp_msg["recipients"]) == \
        ["bob@localhost", "carol@localhost"]
    assert [r["address"] for r in local_msg["recipients"]] == ["erin@localhost"]
    # The size counts the content as stored (one "\n" per line), so it is at
    # least the body sent, and grows with the headers Postern added.
    assert smtp_msg["message_size"] > len(body.replace("\r\n", "\n"))
    assert 0 < local_msg["message_size"] < 2000

    for m, subject in ((smtp_msg, "over SMTP"), (local_msg, "via sendmail")):
        r = instance.run("cat", m["queue_id"])
        assert r.returncode == 0, r.stderr
        out = r.stdout
        assert "*** ENVELOPE RECORDS" in out and "*** MESSAGE CONTENTS" in out
        headers = out.split("*** MESSAGE CONTENTS", 1)[1].split("\n\n", 1)[0]
        for h in ("Received: ", "Message-Id: ", "Date: ", f"Subject: {subject}"):
            assert h in headers, (h, headers)
    r = instance.run("cat", smtp_msg["queue_id"])
    assert "line of text" in r.stdout
    assert "sender: alice@example.org" in r.stdout
    instance.wait_log(rf"{smtp_msg['queue_id']}: client=localhost\[127\.0\.0\.1\]")
    instance.wait_log(r"pickup\[\d+\]: \w+: uid=\d+ from=<dave@example\.org>")


def test_relay_denied_and_unknown_mailbox(new_instance):
    inst = new_instance(options=["mynetworks=192.0.2.0/24"])   # 127.0.0.1 is "outside"
    inst.start()
    with inst.smtp() as c:
        c.ehlo("client.example")
        assert c.mail("a@example.org")[0] == 250
        code, text = c.rcpt("victim@remote.example")
        assert (code, text[:5]) == (554, b"5.7.1"), text
        code, text = c.rcpt("../etc@localhost")
        assert (code, text[:5]) == (550, b"5.1.1"), text
        assert c.rcpt("bob@localhost")[0] == 250
    inst.wait_log(r"NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 554 5\.7\.1 "
                  r"<victim@remote\.example>: Relay access denied")


def test_killed_cleanup_mid_message_gives_4xx_and_no_file(new_instance):
    instance = new_instance()
    instance.remove_service("qmgr")     # delivery held: the queue is inspected
    instance.start()
    s = instance.raw()
    assert read_reply(s).startswith("220")
    for cmd in (b"EHLO client.example", b"MAIL FROM:<a@example.org>", b"RCPT TO:<bob@localhost>",
                b"DATA"):
        s.sendall(cmd + b"\r\n")
        reply = read_reply(s)
        assert reply[0] in "23", (cmd, reply)
    s.sendall(b"Subject: half\r\n\r\nfirst part\r\n")
    # cleanup holds the message now: find it and kill it.
    cleanup = wait_for(lambda: procs_named(instance, "cleanup"), what="a cleanup process")
    for pid in cleanup:
        os.kill(pid, signal.SIGKILL)
    s.sendall(b"second part\r\n.\r\n")
    reply = read_reply(s)
    assert reply.startswith("451 4.3.0"), reply
    s.sendall(b"QUIT\r\n")
    s.close()
    instance.wait_log(r"process \S+/cleanup pid \d+ killed by signal 9")
    # Nothing was queued: no queue file anywhere, only a temporary file
    # (not a queue ID) that no reader picks up, and cleanup's sweep stamp.
    assert [f for f in queue_files(instance)
            if not os.path.basename(f).startswith(".")] == []
    assert queue_json(instance) == []
    # The next message goes through with a fresh cleanup.
    with instance.smtp() as c:
        assert c.sendmail("a@example.org", ["bob@localhost"], "Subject: next\r\n\r\nx\r\n") == {}
    wait_for(lambda: len(queue_json(instance)) == 1, what="the next message queued")
