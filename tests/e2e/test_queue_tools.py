"""`postern queue -p/-j` and `postern cat` on queue files written directly
into an instance's queue (the instance need not run for these commands)."""
import json
import os
import subprocess

import pytest

from postern_rec import (queue_file, maildrop_file, queue_id, record,
                         write_queue_file)

QUEUES = ["incoming", "active", "deferred", "hold", "maildrop", "corrupt",
          "defer"]
T0 = 1700000000


@pytest.fixture
def inst(new_instance):
    i = new_instance()
    r = i.run("conf", "-x", "-h", "queue_directory")
    assert r.returncode == 0, r.stderr
    i.queue_dir = r.stdout.strip()
    for q in QUEUES:
        os.makedirs(os.path.join(i.queue_dir, q), mode=0o700, exist_ok=True)
    return i


def put(inst, queue, usec, inode, data):
    qid = queue_id(usec, inode)
    write_queue_file(inst.queue_dir, queue, qid, data)
    return qid


def test_empty_queue(inst):
    r = inst.run("queue", "-p")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Mail queue is empty\n"
    r = inst.run("queue", "-j")
    assert r.returncode == 0 and r.stdout == ""


def test_mailq_layout_and_json(inst):
    a = put(inst, "active", T0 * 10**6 + 5, 4242,
            queue_file("joe@example.com", ["bob@example.com", "al@example.com"],
                       ["Subject: one", "", "hello"], arrival=T0, done=(1,)))
    d = put(inst, "deferred", (T0 + 1) * 10**6, 77,
            queue_file("", ["x@example.com", "y@example.com"],
                       ["Subject: two", "", "b" * 2000], arrival=T0 + 1))
    write_queue_file(inst.queue_dir, "defer", d,
                     b"recipient=x@example.com\nreason=connect to mx[192.0.2.1]:25: "
                     b"Connection refused\n\nrecipient=y@example.com\nreason=say \"\xff\"\x01\n\n")
    h = put(inst, "hold", (T0 + 2) * 10**6, 78,
            queue_file("h@example.com", ["z@example.com"], ["Subject: held"], arrival=T0 + 2))
    m = put(inst, "maildrop", (T0 + 3) * 10**6, 79,
            maildrop_file("local", ["w@example.com"], ["hi"], arrival=T0 + 3))

    r = inst.run("queue", "-p")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0].startswith("-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient")
    text = r.stdout
    assert (a + "*") in text and (h + "!") in text
    assert (d + " ") in text and (m + " ") in text
    assert "MAILER-DAEMON" in text                    # null sender
    assert " " * 41 + "bob@example.com\n" in text
    assert "al@example.com" not in text               # already delivered
    assert "(connect to mx[192.0.2.1]:25: Connection refused)" in text
    assert '(say "?"?)' in text                       # not UTF-8, control char
    # Queue order: active before deferred before hold before maildrop.
    assert text.index(a) < text.index(d) < text.index(h) < text.index(m)
    size_total = (len("Subject: one\n\nhello\n") + len("Subject: two\n\n") + 2001
                  + len("Subject: held\n") + len("hi\n"))
    assert lines[-2] == "-- %d Kbytes in 4 Requests." % ((size_total + 1023) // 1024)

    r = inst.run("queue", "-j")
    assert r.returncode == 0, r.stderr
    raw = r.stdout.encode()
    objs = [json.loads(l) for l in r.stdout.splitlines()]
    assert [o["queue_id"] for o in objs] == [a, d, h, m]
    assert [o["queue_name"] for o in objs] == ["active", "deferred", "hold", "maildrop"]
    first = objs[0]
    assert first["arrival_time"] == T0 and first["forced_expire"] is False
    assert first["message_size"] == len("Subject: one\n\nhello\n")
    assert first["sender"] == "joe@example.com"
    assert first["recipients"] == [{"address": "bob@example.com"}]
    second = objs[1]
    assert second["sender"] == ""
    assert second["recipients"][0] == {
        "address": "x@example.com",
        "delay_reason": "connect to mx[192.0.2.1]:25: Connection refused"}
    # Invalid UTF-8 is \u00XX; control characters were replaced.
    assert second["recipients"][1]["delay_reason"] == 'say "\u00ff"?'
    assert b"\\u00ff" in raw
    assert "delay_reason" not in objs[2]["recipients"][0]


def test_json_escaping(inst):
    put(inst, "incoming", T0 * 10**6, 5,
        queue_file('we"ird\\x@example.com', ["caf\u00e9@example.com"], ["x"], arrival=T0))
    r = inst.run("queue", "-j")
    assert r.returncode == 0, r.stderr
    o = json.loads(r.stdout)
    assert o["sender"] == 'we"ird\\x@example.com'
    assert o["recipients"][0]["address"] == "caf\u00e9@example.com"
    assert "caf\u00e9" in r.stdout                    # valid UTF-8 passes through


def test_corrupt_file_skipped_in_listing(inst):
    good = put(inst, "incoming", T0 * 10**6, 5,
               queue_file("a@example.com", ["b@example.com"], ["x"], arrival=T0))
    bad = put(inst, "incoming", T0 * 10**6 + 1, 6,
              queue_file("a@example.com", ["b@example.com"], ["x"], arrival=T0)[:-2])
    # Names that are not queue IDs are ignored.
    with open(os.path.join(inst.queue_dir, "incoming", ".tmp.x"), "w") as f:
        f.write("junk")
    r = inst.run("queue", "-p")
    assert r.returncode == 0
    assert good in r.stdout and bad not in r.stdout
    assert bad in r.stderr and "incomplete" in r.stderr
    assert "1 Request." in r.stdout


def test_cat_sections(inst):
    qid = put(inst, "deferred", T0 * 10**6, 9,
              queue_file("joe@example.com", [("bob@example.com", "rfc822;Bob@example.com", 6)],
                         ["Subject: hi", "X-Long: " + "y" * 50, "", "line one", "", "line three"],
                         arrival=T0, fullname="Joe User", line_limit=20,
                         extra=record("R", "ext@example.com"), extra_rcpts=1))
    r = inst.run("cat", qid)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    label = "deferred/" + qid
    for marker in ("ENVELOPE RECORDS", "MESSAGE CONTENTS", "HEADER EXTRACTED", "MESSAGE FILE END"):
        assert "*** %s %s ***" % (marker, label) in out
    assert out.index("ENVELOPE RECORDS") < out.index("MESSAGE CONTENTS") \
        < out.index("HEADER EXTRACTED") < out.index("MESSAGE FILE END")
    assert "sender: joe@example.com\n" in out
    assert "sender_fullname: Joe User\n" in out
    assert "original_recipient: rfc822;Bob@example.com\n" in out
    assert "notify_flags: SUCCESS,FAILURE\n" in out
    assert "recipient: bob@example.com\n" in out
    assert "message_arrival_time: " in out
    # The extracted recipient comes after HEADER EXTRACTED.
    assert out.index("recipient: ext@example.com") > out.index("HEADER EXTRACTED")
    # Long lines are joined again.
    assert "X-Long: " + "y" * 50 + "\n" in out

    r = inst.run("cat", "-h", qid)
    assert r.returncode == 0
    assert r.stdout == "Subject: hi\nX-Long: " + "y" * 50 + "\n"
    r = inst.run("cat", "-b", qid)
    assert r.stdout == "line one\n\nline three\n"
    r = inst.run("cat", "-hb", qid)
    assert r.stdout == "Subject: hi\nX-Long: " + "y" * 50 + "\n\nline one\n\nline three\n"
    r = inst.run("cat", "-e", qid)
    assert "line one" not in r.stdout and "sender: joe@example.com" in r.stdout
    # By path, and -q.
    path = os.path.join(inst.queue_dir, "deferred", qid[9], qid)
    r = inst.run("cat", "-b", path)
    assert r.returncode == 0 and r.stdout == "line one\n\nline three\n"
    r = inst.run("cat", "-q", "-b", qid)
    assert r.returncode == 0 and r.stdout == "line one\n\nline three\n"


def test_cat_errors(inst):
    r = inst.run("cat", queue_id(T0 * 10**6, 1))
    assert r.returncode == 1 and "no such message" in r.stderr
    r = inst.run("cat", "-q", "../etc/passwd")
    assert r.returncode == 1 and "not a queue ID" in r.stderr
    r = inst.run("cat", "/nonexistent/file")
    assert r.returncode == 1 and "cannot open" in r.stderr
    r = inst.run("cat")
    assert r.returncode == 2

    data = queue_file("a@example.com", ["b@example.com"], ["Subject: x", "", "body"], arrival=T0)
    cases = {
        "truncated": (data[:len(data) - 8], "truncated"),
        "no_end": (data[:len(data) - 2], "incomplete"),
        "after_end": (data + b"junk", "data after the end record"),
        "bad_version": (data.replace(b"V\x011", b"V\x019", 1), 'version "9"'),
        "huge": (data[:data.index(b"M\x00") + 2] + b"N\xff\xff\xff\xff\x03", "exceeds the limit"),
        "garbage": (b"\x00\x01\x02hello", "not a queue file"),
        "empty": (b"", "empty file"),
    }
    for n, (blob, want) in enumerate(cases.values()):
        qid = put(inst, "corrupt", T0 * 10**6 + n, 100 + n, blob)
        r = inst.run("cat", qid)
        assert r.returncode == 1, (want, r.stdout)
        assert want in r.stderr, (want, r.stderr)
        assert "corrupt/" + qid in r.stderr
        assert "offset" in r.stderr


def test_queue_options(inst):
    r = inst.run("queue")
    assert r.returncode == 2
    r = inst.run("queue", "-f")          # not started: nobody listens on public/qmgr
    assert r.returncode == 1 and "mail system is down" in r.stderr
    r = inst.run("queue", "-p", "-j")
    assert r.returncode == 2


def test_queue_without_queue_directory(new_instance):
    i = new_instance()
    r = i.run("queue", "-p")
    # Not started yet: there is no queue directory; a clear error, no crash.
    qdir = i.run("conf", "-x", "-h", "queue_directory").stdout.strip()
    if not os.path.isdir(qdir):
        assert r.returncode == 1 and "queue_directory" in r.stderr
    else:
        assert r.returncode == 0
