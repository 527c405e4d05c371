"""postern init/start/stop/status/check/conf as a postmaster uses them."""
import os
import pwd
import re
import socket
import subprocess

from conftest import IS_ROOT, LOG_LINE, POSTERN, proc_uid, wait_for


def test_start_status_stop(instance):
    # start returned: the port accepts connections right away.
    with socket.create_connection(("127.0.0.1", instance.port), timeout=5) as s:
        assert s.recv(512).startswith(b"220 ")
    r = instance.status()
    assert r.returncode == 0
    assert re.fullmatch(r"running \(pid \d+\)\n", r.stdout)
    pid = instance.master_pid()
    assert pid in instance.pids()
    r = instance.stop()
    assert r.returncode == 0, r.stderr
    r = instance.status()
    assert r.returncode == 1
    assert "not running" in r.stdout
    assert instance.pids() == []
    # The mail log has Postfix-style lines from master.
    lines = [l for l in instance.log().splitlines() if l]
    assert any("postern/master[" in l and "daemon started" in l for l in lines)
    assert all(LOG_LINE.match(l) for l in lines), lines


def test_second_start_refuses(instance):
    first = instance.master_pid()
    r = instance.run("start")
    assert r.returncode != 0
    assert "already running" in r.stderr
    assert instance.master_pid() == first


def test_stop_when_not_running(new_instance):
    inst = new_instance()
    r = inst.stop()
    assert r.returncode == 1
    assert "not running" in r.stderr


def test_master_root_children_not(instance):
    s = instance.raw()
    assert s.recv(512).startswith(b"220")
    kids = wait_for(instance.children, what="an smtpd child")
    master_uid = proc_uid(instance.master_pid())
    assert master_uid == os.geteuid()
    for pid in kids:
        uid = proc_uid(pid)
        if IS_ROOT:
            assert uid == pwd.getpwnam("postern").pw_uid, f"child {pid} runs as uid {uid}"
            assert uid != 0
        else:
            assert uid == os.geteuid()
    s.close()


def test_init_refuses_existing(new_instance):
    inst = new_instance()
    r = subprocess.run([POSTERN, "init", inst.dir], capture_output=True, text=True)
    assert r.returncode != 0
    assert "already exists" in r.stderr


def test_init_creates_instance_layout(new_instance):
    inst = new_instance(options=["smtpd_banner=$myhostname ESMTP test"])
    main = open(inst.main_cf).read()
    assert f"queue_directory = {inst.dir}/queue" in main
    assert f"maillog_file = {inst.dir}/log/maillog" in main
    assert "mynetworks = 127.0.0.0/8 [::1]/128" in main
    assert "smtpd_banner = $myhostname ESMTP test" in main
    assert f"127.0.0.1:{inst.port}" in open(inst.master_cf).read()
    if IS_ROOT:
        pwd.getpwnam("postern")
        import grp
        grp.getgrnam("postdrop")
        assert "mail_owner = postern" in main


def test_check_names_unknown_and_bad_values(new_instance):
    inst = new_instance()
    assert inst.run("check").returncode == 0
    inst.append_main_cf("no_such_parameter_xyz = 1\nmax_idle = banana\n")
    r = inst.run("check")
    assert r.returncode == 1
    assert "no_such_parameter_xyz" in r.stderr
    assert re.search(r"main\.cf, line \d+: .*banana.*max_idle|main\.cf, line \d+: .*max_idle.*banana",
                     r.stderr), r.stderr
    r = inst.run("start")
    assert r.returncode == 1
    assert inst.status().returncode == 1
    assert inst.pids() == []


def test_check_unknown_parameter_alone_is_a_warning(new_instance):
    inst = new_instance()
    inst.append_main_cf("no_such_parameter_xyz = 1")
    r = inst.run("check")
    assert r.returncode == 0
    assert "warning" in r.stderr and "no_such_parameter_xyz" in r.stderr


def test_check_bad_master_cf(new_instance):
    inst = new_instance()
    inst.append_master_cf("broken inet n - n")
    r = inst.run("check")
    assert r.returncode == 1
    assert re.search(r"master\.cf, line \d+: .*field", r.stderr), r.stderr
    assert inst.run("start").returncode == 1


def test_check_unknown_command(new_instance):
    inst = new_instance()
    inst.append_master_cf("frobnicate unix - - n - - no-such-daemon")
    r = inst.run("check")
    assert r.returncode == 1
    assert "no-such-daemon" in r.stderr
    assert inst.run("start").returncode == 1


def test_conf_like_postconf(new_instance):
    inst = new_instance()
    r = inst.run("conf", "myhostname")
    assert r.returncode == 0
    assert re.fullmatch(r"myhostname = \S+\n", r.stdout)
    r = inst.run("conf", "-d", "max_idle", "max_use")
    assert r.stdout == "max_idle = 100s\nmax_use = 100\n"
    r = inst.run("conf", "-h", "mynetworks")
    assert r.stdout == "127.0.0.0/8 [::1]/128\n"
    # -n lists only what main.cf sets, sorted.
    names = [l.split(" =")[0] for l in inst.run("conf", "-n").stdout.splitlines()]
    assert names == sorted(names)
    assert "queue_directory" in names and "max_idle" not in names
    # -x expands.
    inst.append_main_cf("smtpd_banner = $mail_name at $myhostname")
    assert inst.run("conf", "-h", "smtpd_banner").stdout == "$mail_name at $myhostname\n"
    assert inst.run("conf", "-xh", "smtpd_banner").stdout.startswith("Postern at ")
    # Unknown parameter: a warning naming it.
    r = inst.run("conf", "no_such_parameter_xyz")
    assert "no_such_parameter_xyz" in r.stderr and r.stdout == ""
    # Everything.
    assert len(inst.run("conf").stdout.splitlines()) > 40


def test_conf_edit_keeps_comments(new_instance):
    inst = new_instance()
    inst.append_main_cf("# keep this comment\nmax_use = 7\n    # indented comment stays\n")
    before = open(inst.main_cf).read()
    r = inst.run("conf", "-e", "max_use = 50", "max_idle=30s")
    assert r.returncode == 0, r.stderr
    after = open(inst.main_cf).read()
    assert "# keep this comment" in after and "# indented comment stays" in after
    assert "max_use = 7" not in after and "max_use = 50" in after
    assert "max_idle = 30s" in after
    # Every other line is unchanged and in place.
    assert [l for l in before.splitlines() if not l.startswith("max_use")] == \
        [l for l in after.splitlines() if not l.startswith(("max_use", "max_idle"))]
    assert inst.run("conf", "-h", "max_use").stdout == "50\n"


def test_parameter_docs_are_generated_from_the_table():
    from conftest import TOP
    r = subprocess.run([POSTERN, "conf", "--markdown"], capture_output=True, text=True)
    assert r.returncode == 0
    with open(os.path.join(TOP, "docs", "parameters.md")) as f:
        assert f.read() == r.stdout, "docs/parameters.md is stale: run make docs"
