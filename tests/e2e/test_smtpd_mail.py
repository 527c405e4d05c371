"""smtpd mail transactions: MAIL/RCPT/DATA sequencing, content, hand-off to cleanup.

Most tests put a scripted cleanup (smtpd_fake_cleanup.py) on
private/cleanup so they can check exactly which records smtpd sends; the
last ones run the real cleanup daemon when it is built.
"""
import os
import re
import socket
import time

import pytest

from conftest import BUILD, POSTFIX_ROUTING, read_reply, wait_for
from smtpd_fake_cleanup import FakeCleanup, parse_varint

BASE_OPTS = POSTFIX_ROUTING + ["local_recipient_maps="]
REWRITE_SERVICE = "rewrite unix - - n - - trivial-rewrite"
# private/cleanup as cleanup_proto.h says (the brief's "cleanup unix n ..." would be public/).
CLEANUP_SERVICE = "cleanup unix - - n - 0 cleanup"


@pytest.fixture
def fake(new_instance):
    """An instance whose cleanup is the scripted fake: (inst, fake)."""
    made = []

    def make(options=(), status=0, reason=""):
        inst = new_instance(options=BASE_OPTS + list(options))
        inst.append_master_cf(REWRITE_SERVICE)
        inst.remove_service("cleanup")      # the fake answers on private/cleanup
        inst.start()
        fc = FakeCleanup(inst, status=status, reason=reason)
        made.append(fc)
        return inst, fc

    yield make
    for fc in made:
        fc.stop()


def talk(sock, line):
    sock.sendall(line if isinstance(line, bytes) else line.encode() + b"\r\n")
    return read_reply(sock)


def session(inst, helo="EHLO client.example"):
    s = inst.raw()
    assert read_reply(s).startswith("220")
    assert talk(s, helo).startswith("250")
    return s


def test_simple_message_is_queued(fake):
    inst, fc = fake()
    with inst.smtp() as c:
        c.ehlo("client.example")
        code, msg = c.mail("alice@example.org")
        assert (code, msg) == (250, b"2.1.0 Ok")
        code, msg = c.rcpt("bob@localhost")
        assert (code, msg) == (250, b"2.1.5 Ok")
        code, msg = c.data(b"Subject: hi\r\n\r\nhello\r\n")
        assert code == 250
        assert re.fullmatch(rb"2\.0\.0 Ok: queued as 4TestQ0001", msg)
    m = fc.wait_messages(1)[0]
    assert m.flags == 16 and m.complete            # CLEANUP_FLAG_MORE: smtpd keeps the connection
    env = m.envelope()
    types = "".join(t for t, _ in env)
    assert re.fullmatch(r"TSA+R", types), types
    assert dict(env)["S"] == b"alice@example.org"
    assert m.recipients() == ["bob@localhost"]
    a = m.attrs()
    assert a["client_address"] == "127.0.0.1"
    assert a["helo_name"] == "client.example"
    assert a["protocol"] == "ESMTP"
    assert "encoding" not in a and "dsn_envid" not in a
    lines = m.lines()
    assert lines[0].startswith(b"Received: from client.example (localhost [127.0.0.1])")
    assert re.fullmatch(rb"\tby \S+ \(Postern\) with ESMTP id 4TestQ0001", lines[1])
    assert re.fullmatch(rb"\tfor <bob@localhost>; \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4} \(.+\)",
                        lines[2])
    assert lines[3:] == [b"Subject: hi", b"", b"hello"]
    assert m.records[-2:] == [("X", b""), ("E", b"")]
    inst.wait_log(r"postern/smtpd\[\d+\]: 4TestQ0001: client=localhost\[127\.0\.0\.1\]$")
    inst.wait_log(r"disconnect from localhost\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 data=1 quit=1 "
                  r"commands=5$")


def test_received_without_for_when_several_recipients_and_helo_protocol(fake):
    inst, fc = fake()
    s = session(inst, "HELO old.example")
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<x@localhost>").startswith("250")
    assert talk(s, "RCPT TO:<y@localhost>").startswith("250")
    assert talk(s, "DATA").startswith("354")
    assert talk(s, b"body\r\n.\r\n").startswith("250 2.0.0")
    s.close()
    m = fc.wait_messages(1)[0]
    assert m.recipients() == ["x@localhost", "y@localhost"]
    assert m.attrs()["protocol"] == "SMTP"
    lines = m.lines()
    assert lines[0].startswith(b"Received: from old.example (localhost [127.0.0.1])")
    assert re.fullmatch(rb"\tby \S+ \(Postern\) with SMTP id 4TestQ0001; .+", lines[1])
    assert lines[2] == b"body"


def test_sequencing_errors(fake):
    inst, fc = fake()
    s = session(inst)
    assert talk(s, "RCPT TO:<x@localhost>").startswith("503 5.5.1")
    assert talk(s, "DATA").startswith("503 5.5.1")
    assert talk(s, "BDAT 3\r\nabc").startswith("503 5.5.1")     # the 3 bytes are eaten
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("503 5.5.1")
    assert talk(s, "DATA").startswith("554 5.5.1")              # no valid recipients
    assert talk(s, "RSET").startswith("250")
    assert talk(s, "RCPT TO:<x@localhost>").startswith("503 5.5.1")
    assert talk(s, "DATA extra").startswith("501 5.5.4")
    assert talk(s, "NOOP").startswith("250")
    s.close()


def test_syntax_errors(fake):
    inst, fc = fake()
    s = session(inst)
    assert talk(s, "MAIL").startswith("501 5.5.4")
    assert talk(s, "MAIL TO:<a@b.example>").startswith("501 5.5.4")
    assert talk(s, "MAIL FROM:<a@b.example").startswith("501 5.1.7")
    assert talk(s, "MAIL FROM:<>").startswith("250")            # null sender is fine
    assert talk(s, "RCPT TO:<>").startswith("501 5.1.3")
    assert talk(s, "RCPT TO:bob@localhost>").startswith("501 5.1.3")
    assert talk(s, "RCPT").startswith("501 5.5.4")
    assert talk(s, "RCPT TO:<bob@localhost> FOO=1").startswith("555 5.5.4")
    assert talk(s, "RSET").startswith("250")
    assert talk(s, "MAIL FROM:<a@b.example> FROB").startswith("555 5.5.4")
    assert talk(s, "MAIL FROM:<a@b.example> SIZE=12x").startswith("501 5.5.4")
    assert talk(s, "MAIL FROM:<a@b.example> BODY=9BIT").startswith("501 5.5.4")
    assert talk(s, "MAIL FROM:<a@b.example> RET=SOME").startswith("501 5.5.4")
    assert talk(s, "MAIL FROM:<a@b.example> ENVID=a+2").startswith("501 5.5.4")
    # A failed MAIL leaves no transaction behind.
    assert talk(s, "RCPT TO:<bob@localhost>").startswith("503 5.5.1")
    assert talk(s, "MAIL FROM:<a@b.example>").startswith("250")
    assert talk(s, "RCPT TO:<bob@localhost> NOTIFY=NEVER,SUCCESS").startswith("501 5.5.4")
    assert talk(s, "RCPT TO:<bob@localhost> NOTIFY=SOMETIMES").startswith("501 5.5.4")
    assert talk(s, "RCPT TO:<bob@localhost> ORCPT=nosemicolon").startswith("501 5.5.4")
    assert talk(s, "QUIT").startswith("221")
    s.close()
    assert fc.messages == []        # nothing accepted, so cleanup was never asked


def test_recipient_limit(fake):
    inst, fc = fake(options=["smtpd_recipient_limit=2"])
    s = session(inst)
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<a@localhost>").startswith("250")
    assert talk(s, "RCPT TO:<b@localhost>").startswith("250")
    assert talk(s, "RCPT TO:<c@localhost>").startswith("452 4.5.3")
    assert talk(s, "DATA").startswith("354")
    assert talk(s, b"x\r\n.\r\n").startswith("250")
    s.close()
    assert fc.wait_messages(1)[0].recipients() == ["a@localhost", "b@localhost"]


def test_declared_size_over_limit(fake):
    inst, fc = fake(options=["message_size_limit=1000"])
    with inst.smtp() as c:
        c.ehlo("client.example")
        assert "1000" in c.esmtp_features["size"]
        code, msg = c.mail("a@example.org", ["SIZE=1001"])
        assert code == 552 and msg.startswith(b"5.3.4")
        assert c.mail("a@example.org", ["SIZE=1000"])[0] == 250


def test_actual_size_over_limit_is_read_then_refused(fake):
    inst, fc = fake(options=["message_size_limit=1000"])
    s = session(inst)
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<a@localhost>").startswith("250")
    assert talk(s, "DATA").startswith("354")
    body = b"".join(b"line %04d of filler text\r\n" % i for i in range(100))
    assert talk(s, body + b".\r\n").startswith("552 5.3.4")
    # The session goes on: the rest of the message was not taken as commands.
    assert talk(s, "NOOP").startswith("250")
    s.close()
    m = fc.wait_messages(1)[0]
    assert m.closed_early and not m.complete     # cleanup was told to drop it
    inst.wait_log(r"4TestQ0001: reject: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: 552 5\.3\.4")


def test_dot_unstuffing_and_end_of_data(fake):
    inst, fc = fake()
    s = session(inst)
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<a@localhost>").startswith("250")
    assert talk(s, "DATA").startswith("354")
    s.sendall(b"Subject: dots\r\n\r\n..leading dot\r\n.\r\n"[:-3])
    s.sendall(b"...\r\n. not the end\r\nx.\r\n.")
    time.sleep(0.1)
    s.sendall(b"\r\n")
    assert read_reply(s).startswith("250 2.0.0")
    s.close()
    m = fc.wait_messages(1)[0]
    assert m.lines()[3:] == [b"Subject: dots", b"", b".leading dot", b"..", b" not the end", b"x."]


@pytest.mark.parametrize("payload", [
    b"one\n.\ntwo\r\n",             # bare LF on both sides of the dot
    b"one\r\n.\ntwo\r\n",           # CRLF . LF
    b"one\n.\r\ntwo\r\n",           # LF . CRLF
])
def test_bare_lf_never_ends_data_and_is_refused(fake, payload):
    inst, fc = fake()
    s = session(inst)
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<a@localhost>").startswith("250")
    assert talk(s, "DATA").startswith("354")
    s.sendall(payload + b"MAIL FROM:<smuggled@example.org>\r\n.\r\n")
    reply = read_reply(s)
    assert reply.startswith("521 5.5.2") and "bare <LF>" in reply
    s.settimeout(5)
    assert s.recv(100) == b""       # disconnected
    s.close()
    m = fc.wait_messages(1)[0]
    assert not m.complete
    assert all(b"smuggled" not in line for line in m.lines())
    inst.wait_log(r"disconnect: bare <LF> received from localhost\[127\.0\.0\.1\]")


def test_bare_lf_allowed_is_a_line_end_but_not_an_end_of_data(fake):
    inst, fc = fake(options=["smtpd_forbid_bare_newline=no"])
    s = session(inst)
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<a@localhost>").startswith("250")
    assert talk(s, "DATA").startswith("354")
    s.sendall(b"one\n.\ntwo\r\n.\nthree\r\n.\r\n")
    assert read_reply(s).startswith("250 2.0.0")
    s.close()
    m = fc.wait_messages(1)[0]
    assert m.lines()[3:] == [b"one", b"", b"two", b"", b"three"]


def test_nul_and_8bit_data_pass_through(fake):
    # Postfix passes NUL bytes and 8-bit text without BODY=8BITMIME unchanged.
    inst, fc = fake()
    s = session(inst)
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<a@localhost>").startswith("250")
    assert talk(s, "DATA").startswith("354")
    assert talk(s, b"a\x00b\r\nsch\xc3\xb6n\r\n.\r\n").startswith("250")
    s.close()
    m = fc.wait_messages(1)[0]
    assert m.lines()[3:] == [b"a\x00b", b"sch\xc3\xb6n"]
    assert "encoding" not in m.attrs()


def test_long_lines_are_split_into_pieces(fake):
    inst, fc = fake(options=["line_length_limit=100"])
    s = session(inst)
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<a@localhost>").startswith("250")
    assert talk(s, "DATA").startswith("354")
    # 99 x's then CR at the piece boundary, then LF: one line, no stray CR.
    long1 = b"y" * 250
    edge = b"x" * 99
    assert talk(s, b"." + long1 + b"\r\n" + edge + b"\r\n" + b"z\rz\r\n.\r\n").startswith("250")
    s.close()
    m = fc.wait_messages(1)[0]
    assert m.lines()[3:] == [long1, edge, b"z\rz"]
    pieces = [d for t, d in m.records if t == "L"]
    assert pieces and max(len(p) for p in pieces) <= 100


def test_rset_and_quit_drop_the_cleanup_connection(fake):
    inst, fc = fake()
    s = session(inst)
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<a@localhost>").startswith("250")
    assert talk(s, "RSET").startswith("250")
    assert talk(s, "MAIL FROM:<b@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<b@localhost>").startswith("250")
    assert talk(s, "QUIT").startswith("221")
    s.close()
    msgs = fc.wait_messages(2)
    assert all(m.closed_early and not m.complete for m in msgs)


def test_lost_connection_during_data(fake):
    inst, fc = fake()
    s = session(inst)
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<a@localhost>").startswith("250")
    assert talk(s, "DATA").startswith("354")
    s.sendall(b"partial line")
    s.close()
    inst.wait_log(r"lost connection after DATA \(\d+ bytes\) from localhost\[127\.0\.0\.1\]")
    m = fc.wait_messages(1)[0]
    assert m.closed_early and not m.complete


def send_one(s, sender, rcpt, body=b"x\r\n"):
    """One whole transaction on an open session; returns the DATA reply."""
    assert talk(s, f"MAIL FROM:<{sender}>").startswith("250")
    assert talk(s, f"RCPT TO:<{rcpt}>").startswith("250")
    assert talk(s, "DATA").startswith("354")
    return talk(s, body + b".\r\n")


def test_cleanup_connection_is_kept_for_the_next_message(fake):
    inst, fc = fake()
    s = session(inst)
    for i in range(3):
        assert send_one(s, f"a{i}@example.org", f"b{i}@localhost").startswith("250 2.0.0")
    assert talk(s, "QUIT").startswith("221")
    s.close()
    msgs = fc.wait_messages(3)
    assert all(m.complete for m in msgs)
    # One connection carried all three messages, each with its own queue ID.
    assert {m.conn_no for m in msgs} == {1} and fc.conns == 1
    assert len({m.queue_id for m in msgs}) == 3
    assert [m.recipients() for m in msgs] == [["b0@localhost"], ["b1@localhost"], ["b2@localhost"]]


def test_refused_message_keeps_the_connection_and_an_abandoned_one_drops_it(fake):
    inst, fc = fake(status=8, reason="5.7.1 no thanks")
    s = session(inst)
    assert send_one(s, "a@example.org", "b@localhost").startswith("550 5.7.1")
    assert send_one(s, "c@example.org", "d@localhost").startswith("550 5.7.1")
    # A transaction abandoned after RCPT closes the connection: cleanup drops that file.
    assert talk(s, "MAIL FROM:<e@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<f@localhost>").startswith("250")
    assert talk(s, "RSET").startswith("250")
    assert send_one(s, "g@example.org", "h@localhost").startswith("550 5.7.1")
    s.close()
    # The abandoned message only got its announced queue ID (its {flags} were
    # still buffered in smtpd), so cleanup saw nothing of it but the close.
    msgs = fc.wait_messages(3)
    assert [m.conn_no for m in msgs] == [1, 1, 2]
    assert all(m.complete for m in msgs)
    # IDs handed out: three messages, the abandoned one, and one announced on connection 2.
    assert fc.seq == 5


def test_kept_connection_closed_by_cleanup_is_replaced(fake):
    inst, fc = fake()
    fc.one_per_connection = True        # as a cleanup that exited after each message
    s = session(inst)
    for i in range(3):
        assert send_one(s, f"a{i}@example.org", f"b{i}@localhost").startswith("250 2.0.0")
    s.close()
    msgs = fc.wait_messages(3)
    assert [m.conn_no for m in msgs] == [1, 2, 3]
    assert all(m.complete for m in msgs)
    # Replacing a stale connection is routine, not worth a warning.
    assert "cleanup service" not in inst.log()


def test_idle_smtpd_gives_back_the_cleanup_connection(fake):
    inst, fc = fake()
    s = session(inst)
    assert send_one(s, "a@example.org", "b@localhost").startswith("250 2.0.0")
    assert talk(s, "QUIT").startswith("221")
    s.close()
    fc.wait_messages(1)
    # The skeleton's idle hook runs about a second after the last client.
    wait_for(lambda: fc.open_conns == 0, timeout=10, what="smtpd to close its cleanup connection")
    assert fc.conns == 1


def test_real_cleanup_killed_between_messages(new_instance):
    inst = new_instance(options=BASE_OPTS)
    inst.append_master_cf(CLEANUP_SERVICE)
    inst.append_master_cf(REWRITE_SERVICE)
    inst.remove_service("qmgr")
    inst.start()
    s = session(inst)
    assert send_one(s, "a@example.org", "b@localhost").startswith("250 2.0.0")
    pids = inst.children("cleanup")
    assert len(pids) == 1, pids
    os.kill(pids[0], 9)
    wait_for(lambda: pids[0] not in inst.children("cleanup"), what="cleanup to die")
    # The kept connection is dead; the next message goes over a new one.
    assert send_one(s, "c@example.org", "d@localhost").startswith("250 2.0.0")
    assert send_one(s, "e@example.org", "f@localhost").startswith("250 2.0.0")
    s.close()
    incoming = [f for _, _, files in os.walk(os.path.join(inst.dir, "queue", "incoming"))
                for f in files if not f.startswith(".")]
    assert len(incoming) == 3


def test_timeout(new_instance):
    inst = new_instance(options=BASE_OPTS)
    inst.append_master_cf(REWRITE_SERVICE)
    with open(inst.master_cf) as f:
        text = f.read()
    with open(inst.master_cf, "w") as f:
        f.write(re.sub(r"(\bsmtpd)\n", r"\1 -o smtpd_timeout=1s\n", text, count=1))
    inst.start()
    s = session(inst)
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    s.settimeout(10)
    assert read_reply(s).startswith("421 4.4.2")
    s.close()
    inst.wait_log(r"timeout after MAIL from localhost\[127\.0\.0\.1\]")


@pytest.mark.parametrize("status,reason,expect", [
    (4, "5.3.4 message file too big", "552 5.3.4 message file too big"),
    (16, "5.4.6 too many hops", "554 5.4.6 too many hops"),
    (2, "4.3.0 queue file write error", "451 4.3.0 queue file write error"),
    (64, "", "451 4.3.0 Error: queue file write error"),
    (8, "no reason code", "550 5.7.1 Error: no reason code"),
])
def test_cleanup_refusal_maps_to_reply(fake, status, reason, expect):
    inst, fc = fake(status=status, reason=reason)
    s = session(inst)
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<a@localhost>").startswith("250")
    assert talk(s, "DATA").startswith("354")
    reply = talk(s, b"x\r\n.\r\n")
    assert reply.strip() == expect
    assert talk(s, "NOOP").startswith("250")
    s.close()


def test_pipelining_raw(fake):
    inst, fc = fake()
    s = inst.raw()
    assert read_reply(s).startswith("220")
    s.sendall(b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<a@localhost>\r\n"
              b"RCPT TO:<b@localhost>\r\nDATA\r\n")
    buf = b""
    deadline = time.monotonic() + 10
    while b"354 " not in buf and time.monotonic() < deadline:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    codes = [line[:3] for line in buf.split(b"\r\n") if line[3:4] == b" "]
    assert codes == [b"250", b"250", b"250", b"250", b"354"]
    s.sendall(b"hi\r\n.\r\nMAIL FROM:<c@example.org>\r\nRCPT TO:<c@localhost>\r\nDATA\r\n")
    buf = b""
    while buf.count(b"\r\n") < 4 and time.monotonic() < deadline:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    assert [line[:3] for line in buf.split(b"\r\n")[:4]] == [b"250", b"250", b"250", b"354"]
    assert talk(s, b"again\r\n.\r\n").startswith("250")
    s.close()
    assert len(fc.wait_messages(2)) == 2


def test_swaks_pipelining(fake):
    import shutil
    import subprocess
    inst, fc = fake()
    swaks = shutil.which("swaks")
    assert swaks
    r = subprocess.run([swaks, "--server", f"127.0.0.1:{inst.port}", "--pipeline", "--from",
                        "a@example.org", "--to", "bob@localhost", "--ehlo", "swaks.example",
                        "--body", "hello from swaks"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "queued as 4TestQ0001" in r.stdout
    m = fc.wait_messages(1)[0]
    assert b"hello from swaks" in m.lines()


# ---- the real cleanup daemon -------------------------------------------------

REAL = os.path.exists(os.path.join(BUILD, "libexec", "postern", "cleanup")) and \
    os.path.exists(os.path.join(BUILD, "libexec", "postern", "trivial-rewrite"))


@pytest.mark.skipif(not REAL, reason="cleanup and trivial-rewrite are not built")
def test_real_cleanup_commits_the_message(new_instance):
    inst = new_instance(options=BASE_OPTS)
    inst.append_master_cf(CLEANUP_SERVICE)
    inst.append_master_cf(REWRITE_SERVICE)
    inst.remove_service("qmgr")         # delivery held: the file stays in incoming/
    inst.start()
    with inst.smtp() as c:
        c.ehlo("client.example")
        assert c.mail("alice@example.org", ["RET=HDRS", "ENVID=abc+2Bdef"])[0] == 250
        r = c.rcpt("bob@localhost", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob+40x@y"])
        assert r[0] == 250, (r, inst.log())
        code, msg = c.data(b"Subject: real\r\n\r\nbody\r\n")
        assert code == 250, msg
        qid = re.search(rb"queued as (\S+)", msg).group(1).decode()
    path = None
    for root, _, files in os.walk(os.path.join(inst.dir, "queue", "incoming")):
        if qid in files:
            path = os.path.join(root, qid)
    assert path, f"{qid} not in incoming/"
    with open(path, "rb") as f:
        data = f.read()
    records, pos = [], 0
    while pos < len(data):
        n, p2 = parse_varint(data, pos + 1)
        records.append((chr(data[pos]), data[p2:p2 + n]))
        pos = p2 + n
    env = records[:[t for t, _ in records].index("M")]
    attrs = dict(d.decode().split("=", 1) for t, d in env if t == "A")
    assert attrs["dsn_ret"] == "2" and attrs["dsn_envid"] == "abc+def"
    assert ("O", b"rfc822;bob@x@y") in env
    assert ("N", b"6") in env                   # SUCCESS|FAILURE
    assert ("S", b"alice@example.org") in env
    assert [d for t, d in env if t == "R"] == [b"bob@localhost"]
    content = [d for t, d in records if t == "N"]
    assert any(d.startswith(b"Received: from client.example") for d in content)
    assert b"Subject: real" in content and b"body" in content
    assert records[-1] == ("E", b"")
