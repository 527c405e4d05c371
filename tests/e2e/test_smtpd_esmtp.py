"""smtpd ESMTP extensions: EHLO list, SIZE, BODY, SMTPUTF8, DSN, CHUNKING (BDAT)."""
import re

import pytest

from conftest import read_reply
from test_smtpd_mail import fake, session, talk  # noqa: F401  (fixture re-used)


def test_ehlo_keywords(fake):
    inst, fc = fake()
    s = inst.raw()
    assert read_reply(s).startswith("220")
    reply = talk(s, "EHLO client.example")
    keywords = [line[4:] for line in reply.strip().split("\r\n")[1:]]
    assert keywords == ["PIPELINING", "SIZE 10240000", "VRFY", "ENHANCEDSTATUSCODES", "8BITMIME",
                        "DSN", "SMTPUTF8", "CHUNKING"]
    s.close()


def test_ehlo_without_vrfy_and_size_limit(fake):
    inst, fc = fake(options=["disable_vrfy_command=yes", "message_size_limit=0"])
    with inst.smtp() as c:
        c.ehlo("client.example")
        assert not c.has_extn("vrfy")
        assert c.esmtp_features["size"] == ""
        assert c.has_extn("chunking") and c.has_extn("dsn")


def test_dsn_and_body_parameters_are_handed_to_cleanup(fake):
    inst, fc = fake()
    with inst.smtp() as c:
        c.ehlo("client.example")
        assert c.mail("a@example.org", ["BODY=8BITMIME", "RET=FULL", "ENVID=id+2B1",
                                        "SIZE=100"])[0] == 250
        assert c.rcpt("x@localhost", ["NOTIFY=NEVER", "ORCPT=rfc822;X+40example.org"])[0] == 250
        assert c.rcpt("y@localhost", ["NOTIFY=DELAY,FAILURE"])[0] == 250
        assert c.rcpt("z@localhost")[0] == 250
        assert c.data(b"Subject: dsn\r\n\r\n\xe4\r\n")[0] == 250
    m = fc.wait_messages(1)[0]
    a = m.attrs()
    assert a["encoding"] == "8bitmime" and a["dsn_ret"] == "1" and a["dsn_envid"] == "id+1"
    env = [(t, d) for t, d in m.envelope() if t in "ONR"]
    assert env == [("O", b"rfc822;X@example.org"), ("N", b"1"), ("R", b"x@localhost"),
                   ("N", b"12"), ("R", b"y@localhost"), ("R", b"z@localhost")]


def test_body_7bit_recorded(fake):
    inst, fc = fake()
    with inst.smtp() as c:
        c.ehlo("client.example")
        assert c.mail("a@example.org", ["BODY=7BIT"])[0] == 250
        assert c.rcpt("x@localhost")[0] == 250
        assert c.data(b"x\r\n")[0] == 250
    assert fc.wait_messages(1)[0].attrs()["encoding"] == "7bit"


def test_smtputf8(fake):
    inst, fc = fake()
    s = session(inst)
    # A UTF-8 address without SMTPUTF8 is refused.
    assert talk(s, "MAIL FROM:<j\u00f6rg@example.org>".encode() + b"\r\n").startswith("553 5.6.7")
    assert talk(s, "MAIL FROM:<j\u00f6rg@example.org> SMTPUTF8".encode() + b"\r\n").startswith("250")
    assert talk(s, "RCPT TO:<m\u00fcller@localhost>".encode() + b"\r\n").startswith("250")
    assert talk(s, "DATA").startswith("354")
    assert talk(s, b"x\r\n.\r\n").startswith("250")
    s.close()
    m = fc.wait_messages(1)[0]
    assert m.attrs()["smtputf8"] == "1" and m.attrs()["protocol"] == "UTF8SMTP"
    assert m.recipients() == ["m\u00fcller@localhost"]
    assert b"with UTF8SMTP id" in m.lines()[1]


def test_dsn_parameters_need_ehlo(fake):
    inst, fc = fake()
    s = session(inst, "HELO old.example")
    assert talk(s, "MAIL FROM:<a@example.org> RET=FULL").startswith("555 5.5.4")
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<x@localhost> NOTIFY=NEVER").startswith("555 5.5.4")
    s.close()


def bdat(sock, data, last=False):
    head = b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"")
    sock.sendall(head + data)
    return read_reply(sock)


def test_bdat_chunks(fake):
    inst, fc = fake()
    s = session(inst)
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<x@localhost>").startswith("250")
    assert bdat(s, b"Subject: chunks\r\n\r\nfirst li").startswith("250 2.0.0 Ok: 27 bytes")
    # Raw data: a dot line is not special, and neither is "\r\n.\r\n".
    assert bdat(s, b"ne\r\n.\r\n..two\r\nMAIL FROM:<x@y>\r\n").startswith("250")
    assert bdat(s, b"no newline at end", last=True).startswith("250 2.0.0 Ok: queued as")
    assert talk(s, "QUIT").startswith("221")
    s.close()
    m = fc.wait_messages(1)[0]
    assert m.complete
    assert m.lines()[3:] == [b"Subject: chunks", b"", b"first line", b".", b"..two",
                             b"MAIL FROM:<x@y>", b"no newline at end"]
    inst.wait_log(r"disconnect from .* bdat=3 quit=1 commands=7$")


def test_bdat_zero_last(fake):
    inst, fc = fake()
    s = session(inst)
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<x@localhost>").startswith("250")
    assert bdat(s, b"Subject: x\r\n\r\nbody\r\n").startswith("250")
    assert bdat(s, b"", last=True).startswith("250 2.0.0 Ok: queued as")
    s.close()
    assert fc.wait_messages(1)[0].lines()[3:] == [b"Subject: x", b"", b"body"]


def test_bdat_errors(fake):
    inst, fc = fake(options=["message_size_limit=100"])
    s = session(inst)
    # Without MAIL the chunk is read and refused; its bytes are not commands.
    assert bdat(s, b"QUIT\r\n").startswith("503 5.5.1")
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert bdat(s, b"x").startswith("554 5.5.1")        # no recipients
    assert talk(s, "RCPT TO:<x@localhost>").startswith("503 5.5.1")  # transaction gone
    # Mixing BDAT and DATA.
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<x@localhost>").startswith("250")
    assert bdat(s, b"abc\r\n").startswith("250")
    assert talk(s, "DATA").startswith("503 5.5.1")
    # Too big: refused after the chunk was read.
    assert bdat(s, b"y" * 200).startswith("552 5.3.4")
    assert talk(s, "NOOP").startswith("250")
    assert bdat(s, b"more", last=True).startswith("503 5.5.1")
    # Bad syntax cannot be framed: the server hangs up.
    reply = talk(s, "BDAT lots")
    assert reply.startswith("501 5.5.4")
    s.settimeout(5)
    assert s.recv(100) == b""
    s.close()
    assert all(not m.complete for m in fc.messages)


def test_bdat_long_line_across_chunks(fake):
    inst, fc = fake(options=["line_length_limit=100"])
    s = session(inst)
    assert talk(s, "MAIL FROM:<a@example.org>").startswith("250")
    assert talk(s, "RCPT TO:<x@localhost>").startswith("250")
    for _ in range(5):
        assert bdat(s, b"q" * 70).startswith("250")
    assert bdat(s, b"\r\nend\r\n", last=True).startswith("250")
    s.close()
    m = fc.wait_messages(1)[0]
    assert m.lines()[3:] == [b"q" * 350, b"end"]
    assert max(len(d) for t, d in m.records if t in "NL") <= 100


def test_bdat_pipelined_with_swaks(fake):
    import shutil
    import subprocess
    inst, fc = fake()
    r = subprocess.run([shutil.which("swaks"), "--server", f"127.0.0.1:{inst.port}", "--pipeline",
                        "--from", "a@example.org", "--to", "x@localhost", "--body", "via swaks"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"250 2\.0\.0 Ok: queued as 4TestQ0001", r.stdout)
