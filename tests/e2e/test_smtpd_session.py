"""smtpd session layer: greeting, EHLO, limits, logging."""
import os
import re
import signal
import smtplib
import subprocess
import time

from conftest import read_reply, wait_for


def test_ehlo_and_logging(instance):
    with instance.smtp() as c:
        code, msg = c.ehlo("client.example")
        assert code == 250
        assert c.has_extn("pipelining") and c.has_extn("enhancedstatuscodes")
        assert c.noop()[0] == 250
        assert c.rset()[0] == 250
    instance.wait_log(r"postern/smtpd\[\d+\]: disconnect from localhost\[127\.0\.0\.1\] "
                      r"ehlo=1 noop=1 rset=1 quit=1 commands=4$")
    assert re.search(r"postern/smtpd\[\d+\]: connect from localhost\[127\.0\.0\.1\]$",
                     instance.log(), re.M)


def test_unknown_and_out_of_order_commands(instance):
    s = instance.raw()
    assert read_reply(s).startswith("220")
    s.sendall(b"FROB\r\n")
    assert read_reply(s).startswith("502 5.5.2")
    s.sendall(b"RCPT TO:<a@example.com>\r\n")
    assert read_reply(s).startswith("503 5.5.1")
    s.sendall(b"DATA\r\n")
    assert read_reply(s).startswith("503 5.5.1")
    s.sendall(b"HELO\r\n")
    assert read_reply(s).startswith("501 5.5.4")
    s.sendall(b"QUIT\r\n")
    assert read_reply(s).startswith("221")
    s.close()


def test_helo_required(new_instance):
    inst = new_instance(options=["smtpd_helo_required=yes"])
    inst.start()
    s = inst.raw()
    assert read_reply(s).startswith("220")
    s.sendall(b"MAIL FROM:<a@example.com>\r\n")
    assert read_reply(s).startswith("503 5.5.1")
    s.sendall(b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n")
    reply = read_reply(s)
    if "250 2.1.0" not in reply:
        reply += read_reply(s)
    assert "250 2.1.0" in reply
    s.close()


def test_mail_without_cleanup_is_refused_temporarily(new_instance):
    # No cleanup service in master.cf: the first accepted recipient needs the
    # queue, and the client must be told to keep its mail (4xx), never 250.
    inst = new_instance(options=["local_recipient_maps="])
    inst.append_master_cf("rewrite unix - - n - - trivial-rewrite")
    inst.remove_service("cleanup")
    inst.start()
    with inst.smtp() as c:
        c.ehlo("client.example")
        assert c.mail("a@example.com")[0] == 250
        code, msg = c.rcpt("bob@localhost")
        assert (code, msg) == (451, b"4.3.0 Error: queue file write error")
    inst.wait_log(r"warning: cannot hand mail to cleanup")


def test_bare_lf_command_is_refused(instance):
    s = instance.raw()
    assert read_reply(s).startswith("220")
    s.sendall(b"EHLO x.example\n")
    assert read_reply(s).startswith("521 5.5.2")
    assert s.recv(100) == b""
    s.close()


def test_nul_and_long_line(instance):
    s = instance.raw()
    assert read_reply(s).startswith("220")
    s.sendall(b"NOOP \0x\r\n")
    assert read_reply(s).startswith("500 5.5.2")
    s.sendall(b"NOOP " + b"x" * 5000 + b"\r\n")
    assert read_reply(s).startswith("500 5.5.2")
    s.sendall(b"NOOP\r\n")
    assert read_reply(s).startswith("250")
    s.close()


def test_hard_error_limit(new_instance):
    inst = new_instance(options=["smtpd_hard_error_limit=3", "smtpd_soft_error_limit=100"])
    inst.start()
    s = inst.raw()
    assert read_reply(s).startswith("220")
    for _ in range(2):
        s.sendall(b"FROB\r\n")
        assert read_reply(s).startswith("502")
    s.sendall(b"FROB\r\n")
    # The third error still gets its own reply, then the 421 and the close.
    rest = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        rest += chunk
    assert rest.startswith(b"502 ")
    assert b"\r\n421 4.7.0 " in rest
    s.close()


def test_vrfy_disabled(new_instance):
    inst = new_instance(options=["disable_vrfy_command=yes"])
    inst.start()
    with inst.smtp() as c:
        code, _ = c.verify("bob")
        assert code == 502


def test_swaks_client(instance):
    import shutil
    import subprocess
    swaks = shutil.which("swaks")
    assert swaks, "swaks is installed by scripts/install-deps.sh"
    r = subprocess.run([swaks, "--server", f"127.0.0.1:{instance.port}", "--quit-after", "EHLO",
                        "--ehlo", "swaks.example"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250-PIPELINING" in r.stdout


RESOLVER_FILES = ("/etc/hosts", "/etc/resolv.conf", "/etc/host.conf", "/etc/nsswitch.conf")


def resolver_files_read_by_second_session(inst):
    """Two sessions in a row on the one smtpd process; the resolver files the
    second one made that process open or stat (traced with strace)."""
    with open(inst.master_cf) as f:
        lines = f.read().splitlines(True)
    with open(inst.master_cf, "w") as f:
        for line in lines:
            fields = line.split()
            if len(fields) >= 8 and fields[1] == "inet" and fields[7] == "smtpd":
                fields[6] = "1"                 # one process: both sessions meet the same one
                line = " ".join(fields) + "\n"
            f.write(line)
    inst.start()
    with inst.smtp() as c:
        c.ehlo("client.example")
    inst.wait_log(r"disconnect from localhost\[127\.0\.0\.1\]")
    pids = inst.children("smtpd")
    assert len(pids) == 1, pids
    trace = os.path.join(inst.dir, "strace.out")
    tracer = subprocess.Popen(["strace", "-qq", "-o", trace, "-e",
                               "trace=open,openat,stat,newfstatat,access", "-p", str(pids[0])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: os.path.exists(trace), what="strace started")
        time.sleep(0.5)
        with inst.smtp() as c:
            c.ehlo("client.example")
        inst.wait_log(r"disconnect from localhost\[127\.0\.0\.1\]", count=2)
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=10)
    assert inst.children("smtpd") == pids, "the second session had another process"
    with open(trace, errors="replace") as f:
        text = f.read()
    return [name for name in RESOLVER_FILES if f'"{name}"' in text]


def test_client_name_is_reused_within_cache_time(new_instance):
    # The name localhost, verified for 127.0.0.1 at the first connection, is
    # reused by the same process: no new reverse and forward lookup.
    inst = new_instance()
    assert resolver_files_read_by_second_session(inst) == []
    assert len(re.findall(r"connect from localhost\[127\.0\.0\.1\]$", inst.log(), re.M)) == 2


def test_client_name_cache_time_zero_looks_up_every_time(new_instance):
    inst = new_instance(options=["smtpd_client_name_cache_time=0"])
    assert resolver_files_read_by_second_session(inst) != []
    assert len(re.findall(r"connect from localhost\[127\.0\.0\.1\]$", inst.log(), re.M)) == 2
