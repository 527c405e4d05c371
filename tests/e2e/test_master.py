"""master: on-demand processes, crashes, throttling, reload, limits."""
import os
import re
import signal
import socket
import time

from conftest import free_port, read_reply, wait_for


def smtpd_pid_of_latest_connect(inst, count):
    inst.wait_log(r"postern/smtpd\[\d+\]: connect from", count=count)
    pids = re.findall(r"postern/smtpd\[(\d+)\]: connect from", inst.log())
    return int(pids[-1])


def test_killed_daemon_is_replaced(instance):
    s = instance.raw()
    assert read_reply(s).startswith("220")
    pid = smtpd_pid_of_latest_connect(instance, 1)
    os.kill(pid, signal.SIGKILL)
    instance.wait_log(rf"process \S+/smtpd pid {pid} killed by signal 9")
    s.close()
    # The next client is served by a fresh process.
    s2 = instance.raw()
    assert read_reply(s2).startswith("220")
    pid2 = smtpd_pid_of_latest_connect(instance, 2)
    assert pid2 != pid
    s2.sendall(b"QUIT\r\n")
    assert read_reply(s2).startswith("221")
    s2.close()
    assert "throttling" not in instance.log()


def test_program_that_cannot_be_started_is_throttled(new_instance, tmp_path):
    # The program went away after the configuration was checked: posix_spawn
    # fails, which is logged once and throttles the service (no retry loop);
    # other services go on.
    inst = new_instance()
    bad_port = free_port()
    missing = tmp_path / "no-such-daemon"
    missing.write_text("#!/bin/sh\nexit 0\n")
    missing.chmod(0o755)
    os.chmod(tmp_path, 0o755)
    inst.append_master_cf(f"127.0.0.1:{bad_port} inet n - n - - {missing}")
    inst.start()
    missing.unlink()
    for _ in range(3):
        try:
            with socket.create_connection(("127.0.0.1", bad_port), timeout=5):
                time.sleep(0.3)
        except OSError:
            pass
    inst.wait_log(rf"cannot start {re.escape(str(missing))}: No such file or directory")
    time.sleep(1)
    assert len(re.findall(r"cannot start .*no-such-daemon", inst.log())) == 1
    s = inst.raw()
    assert read_reply(s).startswith("220")
    s.close()


def test_daemon_that_dies_at_start_is_throttled(new_instance):
    inst = new_instance()
    bad_port = free_port()
    inst.append_master_cf(f"127.0.0.1:{bad_port} inet n - n - - /bin/false")
    inst.start()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", bad_port), timeout=5):
            time.sleep(0.3)
    inst.wait_log(r"/bin/false: bad command startup -- throttling")
    time.sleep(1)
    log = inst.log()
    # One start, then no more during service_throttle_time: no tight loop.
    assert len(re.findall(r"process /bin/false pid \d+ exit status 1", log)) == 1
    assert len(re.findall(r"bad command startup", log)) == 1
    # The healthy service is not affected.
    s = inst.raw()
    assert read_reply(s).startswith("220")
    s.close()


def test_kill_master_then_start(instance):
    s = instance.raw()
    assert read_reply(s).startswith("220")
    s.close()
    old = instance.master_pid()
    os.kill(old, signal.SIGKILL)
    # Its children notice and go away; the stale pid file is not a problem.
    wait_for(lambda: instance.pids() == [], what="orphaned daemons to exit")
    assert instance.status().returncode == 1
    instance.start()
    assert instance.master_pid() not in (None, old)
    s = instance.raw()
    assert read_reply(s).startswith("220")
    s.close()


def test_max_use_retires_process(new_instance):
    inst = new_instance(options=["max_use=2"])
    inst.start()
    pids = []
    for i in range(3):
        s = inst.raw()
        assert read_reply(s).startswith("220")
        s.sendall(b"QUIT\r\n")
        assert read_reply(s).startswith("221")
        s.close()
        inst.wait_log(r"postern/smtpd\[\d+\]: disconnect from", count=i + 1)
        pids.append(smtpd_pid_of_latest_connect(inst, i + 1))
    assert pids[0] == pids[1] != pids[2]


def test_max_idle_ends_process(new_instance):
    inst = new_instance(options=["max_idle=1s"])
    inst.start()
    s = inst.raw()
    assert read_reply(s).startswith("220")
    s.sendall(b"QUIT\r\n")
    read_reply(s)
    s.close()
    wait_for(lambda: inst.children("smtpd") == [], timeout=10, what="idle smtpd to exit")


def test_reload_adds_service_and_keeps_sessions(instance):
    s = instance.raw()
    assert read_reply(s).startswith("220")
    s.sendall(b"EHLO before.example\r\n")
    assert read_reply(s).startswith("250")
    port2 = free_port()
    instance.append_master_cf(f"127.0.0.1:{port2} inet n - n - - smtpd")
    r = instance.run("reload")
    assert r.returncode == 0, r.stderr
    instance.wait_log(r"reload -- version")

    def second_listener():
        try:
            with socket.create_connection(("127.0.0.1", port2), timeout=5) as c:
                return read_reply(c).startswith("220")
        except OSError:
            return False
    wait_for(second_listener, what="the new listener")
    # The session that was open during the reload still works.
    s.sendall(b"NOOP\r\n")
    assert read_reply(s).startswith("250")
    s.sendall(b"QUIT\r\n")
    assert read_reply(s).startswith("221")
    s.close()


def test_reload_with_bad_config_refuses(instance):
    # "postern reload" checks the configuration first and does not signal
    # master when it is broken; master keeps running with the old one.
    pid = instance.master_pid()
    instance.append_main_cf("max_idle = banana")
    r = instance.run("reload")
    assert r.returncode == 1
    assert "max_idle" in r.stderr and "banana" in r.stderr
    assert instance.master_pid() == pid
    assert instance.run("status").stdout.strip() == f"running (pid {pid})"


def test_reload_with_bad_master_cf_keeps_serving(instance):
    instance.append_master_cf("broken line")
    r = instance.run("reload")
    assert r.returncode == 1
    assert "master.cf" in r.stderr
    s = instance.raw()
    assert read_reply(s).startswith("220")
    s.close()


def test_sighup_with_bad_config_keeps_old(instance):
    # A SIGHUP sent directly (not through "postern reload") must not take
    # master down when the configuration is broken.
    instance.append_master_cf("broken line")
    os.kill(instance.master_pid(), signal.SIGHUP)
    instance.wait_log(r"keeping the previous configuration")
    s = instance.raw()
    assert read_reply(s).startswith("220")
    s.close()


def test_maxproc_limits_processes(new_instance):
    inst = new_instance()
    # Replace the smtpd line with one that allows 2 processes.
    text = open(inst.master_cf).read()
    text = re.sub(r"^(127\.0\.0\.1:\d+\s+inet\s+n\s+-\s+n\s+-\s+)-(\s+smtpd)", r"\g<1>2\2", text,
                  flags=re.M)
    open(inst.master_cf, "w").write(text)
    inst.start()
    socks = []
    for _ in range(3):
        socks.append(inst.raw(timeout=3))
    assert read_reply(socks[0]).startswith("220")
    assert read_reply(socks[1]).startswith("220")
    # The third waits in the listen queue until a process is free.
    socks[2].settimeout(1.0)
    try:
        got = socks[2].recv(512)
    except socket.timeout:
        got = b""
    assert got == b""
    assert len(inst.children("smtpd")) == 2
    socks[0].sendall(b"QUIT\r\n")
    read_reply(socks[0])
    socks[0].close()
    socks[2].settimeout(10)
    assert read_reply(socks[2]).startswith("220")
    for s in socks[1:]:
        s.close()


def test_waiting_client_is_served_by_the_same_process_with_max_use(new_instance):
    """A client already waiting when one is done is served at once by the same
    process (no status reports in between); max_use still counts each one."""
    inst = new_instance(options=["max_use=2"])
    text = open(inst.master_cf).read()
    text = re.sub(r"^(127\.0\.0\.1:\d+\s+inet\s+n\s+-\s+n\s+-\s+)-(\s+smtpd)", r"\g<1>1\2", text,
                  flags=re.M)
    open(inst.master_cf, "w").write(text)
    inst.start()
    socks = [inst.raw(timeout=10) for _ in range(3)]
    assert read_reply(socks[0]).startswith("220")
    for i, s in enumerate(socks):
        if i > 0:
            assert read_reply(s).startswith("220")
        s.sendall(b"QUIT\r\n")
        assert read_reply(s).startswith("221")
        s.close()
    inst.wait_log(r"postern/smtpd\[\d+\]: disconnect from", count=3)
    pids = re.findall(r"postern/smtpd\[(\d+)\]: connect from", inst.log())
    # Two clients per process (max_use = 2), the waiting one taken at once.
    assert pids[0] == pids[1] != pids[2], pids
