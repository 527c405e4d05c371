"""Local submission: sendmail -> postdrop -> maildrop/ -> pickup -> cleanup.

Most tests check the maildrop file that postdrop writes (master runs without
pickup, so the file stays there) or what pickup hands to a fake cleanup
service that this test runs on private/cleanup. The fake speaks the
documented cleanup protocol (cleanup_proto.h) with the independent codec in
postern_attr.py, so the tests do not depend on the real cleanup daemon; one
test uses the real one when it is built.
"""
import os
import re
import pwd
import grp
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import BUILD, IS_ROOT, wait_for
import postern_attr
from postern_rec import content_lines, parse_records, record as rec, varint

SENDMAIL = os.path.join(BUILD, "bin", "sendmail")
POSTDROP = os.path.join(BUILD, "bin", "postdrop")
MAILQ = os.path.join(BUILD, "bin", "mailq")
NEWALIASES = os.path.join(BUILD, "bin", "newaliases")

EX_USAGE, EX_DATAERR, EX_UNAVAILABLE, EX_TEMPFAIL, EX_NOPERM = 64, 65, 69, 75, 77
PICKUP_LINE = "pickup fifo n - n 60 1 pickup"


# ---- records ------------------------------------------------------------------

def envelope(records):
    env = []
    for t, d in records:
        if t == "M":
            break
        env.append((t, d.decode()))
    return env


# ---- helpers ------------------------------------------------------------------

def qdir(inst):
    return os.path.join(inst.dir, "queue")


def maildrop_files(inst):
    d = os.path.join(qdir(inst), "maildrop")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def read_maildrop(inst):
    files = maildrop_files(inst)
    assert len(files) == 1, f"expected one maildrop file, got {files}"
    with open(os.path.join(qdir(inst), "maildrop", files[0]), "rb") as f:
        return files[0], parse_records(f.read())


def sendmail(inst, *args, input=b"", user=None, env=None, timeout=30, argv0=None):
    e = inst.env() if env is None else env
    kw = {}
    if user is not None:
        pw = pwd.getpwnam(user)

        def drop():
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        kw["preexec_fn"] = drop
    cmd = [argv0 or SENDMAIL, "-C", inst.dir, *args]
    return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=e, **kw)


@pytest.fixture
def started(new_instance):
    """A started instance without pickup: submissions stay in maildrop/."""
    inst = new_instance()
    inst.remove_service("pickup")
    inst.start()
    return inst


class FakeCleanup:
    """A cleanup service on private/cleanup that records what it is sent."""

    def __init__(self, inst, status=0, reason=""):
        self.path = os.path.join(qdir(inst), "private", "cleanup")
        self.status, self.reason = status, reason
        self.sessions = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock.bind(self.path)
        if IS_ROOT:
            pw = pwd.getpwnam(owner_of(inst))
            os.chown(self.path, pw.pw_uid, pw.pw_gid)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.serve(conn)
            except Exception as e:          # recorded for the test to see
                self.sessions.append({"error": repr(e)})
            finally:
                conn.close()

    def serve(self, conn):
        conn.settimeout(10)
        conn.sendall(postern_attr.encode([("protocol", "cleanup")]))
        reader = postern_attr.Reader(conn)
        req = reader.read()
        qid = f"1{len(self.sessions) + 1:09d}zQ"
        conn.sendall(postern_attr.encode([("queue_id", qid)]))
        buf = reader.buf
        while True:
            recs = safe_parse(buf)
            if recs and recs[-1][0] == "E":
                break
            chunk = conn.recv(65536)
            if not chunk:
                raise EOFError("client closed before E")
            buf += chunk
        self.sessions.append({"flags": int(req["flags"]), "records": recs, "queue_id": qid})
        conn.sendall(postern_attr.encode([("status", self.status), ("reason", self.reason)]))

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


def safe_parse(buf):
    try:
        recs = parse_records(buf)
    except IndexError:
        return None
    # a record cut short parses with fewer data bytes: check the total length
    if sum(1 + len(varint(len(d))) + len(d) for _, d in recs) != len(buf):
        return None
    return recs


def owner_of(inst):
    with open(inst.main_cf) as f:
        for line in f:
            if line.startswith("mail_owner"):
                return line.split("=", 1)[1].strip()
    return "postern"


def trigger_pickup(inst):
    fd = os.open(os.path.join(qdir(inst), "public", "pickup"), os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, b"W")
    finally:
        os.close(fd)


@pytest.fixture
def with_pickup(new_instance):
    """A started instance with pickup and a fake cleanup."""
    inst = new_instance()
    inst.append_master_cf(PICKUP_LINE)
    inst.remove_service("cleanup")      # the fake stands in for it
    inst.start()
    fake = FakeCleanup(inst)
    yield inst, fake
    fake.close()


# ---- sendmail and postdrop -------------------------------------------------------

def test_recipients_and_envelope(started):
    r = sendmail(started, "-f", "<alice@example.org>", "-F", "Alice A", "bob@example.org",
                 "carol, Dave <dave@example.net>", input=b"Subject: hi\n\nhello\n")
    assert r.returncode == 0, r.stderr
    name, recs = read_maildrop(started)
    env = envelope(recs)
    assert env[0][0] == "T"
    assert ("F", "Alice A") in env
    assert ("S", "alice@example.org") in env
    assert ("A", f"submit_uid={os.getuid()}") in env
    assert ("A", f"submit_user={pwd.getpwuid(os.getuid()).pw_name}") in env
    assert [d for t, d in env if t == "R"] == ["bob@example.org", "carol", "dave@example.net"]
    assert content_lines(recs) == ["Subject: hi", "", "hello"]
    assert [t for t, _ in recs][-2:] == ["X", "E"]
    st = os.stat(os.path.join(qdir(started), "maildrop", name))
    assert stat.S_IMODE(st.st_mode) == 0o444
    assert st.st_uid == os.getuid()


def test_default_sender_is_login_name(started):
    r = sendmail(started, "bob", input=b"x\n")
    assert r.returncode == 0, r.stderr
    _, recs = read_maildrop(started)
    assert ("S", pwd.getpwuid(os.getuid()).pw_name) in envelope(recs)


def test_dot_ends_input_without_i(started):
    r = sendmail(started, "bob", input=b"one\n.\ntwo\n")
    assert r.returncode == 0, r.stderr
    _, recs = read_maildrop(started)
    assert content_lines(recs) == ["one"]


@pytest.mark.parametrize("flag", ["-i", "-oi"])
def test_i_keeps_dot_lines(started, flag):
    r = sendmail(started, flag, "bob", input=b"one\n.\ntwo\n..\n")
    assert r.returncode == 0, r.stderr
    _, recs = read_maildrop(started)
    assert content_lines(recs) == ["one", ".", "two", ".."]


def test_crlf_long_lines_and_from_line(new_instance):
    inst = new_instance(options=["line_length_limit=100"])
    inst.start()
    long = b"x" * 250
    r = sendmail(inst, "bob", input=b"From someone Sat Jan  1 00:00:00 2000\r\nA: b\r\n\r\n" + long + b"\r\nend")
    assert r.returncode == 0, r.stderr
    _, recs = read_maildrop(inst)
    assert content_lines(recs) == ["A: b", "", "x" * 250, "end"]
    body = [(t, len(d)) for t, d in recs if t in "LN"][2:5]
    assert body == [("L", 100), ("L", 100), ("N", 50)]


def test_t_sets_extract_flag(started):
    r = sendmail(started, "-t", input=b"To: bob@example.org\n\nhi\n")
    assert r.returncode == 0, r.stderr
    _, recs = read_maildrop(started)
    env = envelope(recs)
    assert ("A", "submit_flags=2") in env
    assert not [d for t, d in env if t == "R"]


def test_dsn_options(started):
    r = sendmail(started, "-N", "success,delay", "-R", "hdrs", "-V", "env-1", "bob", input=b"x\n")
    assert r.returncode == 0, r.stderr
    _, recs = read_maildrop(started)
    env = envelope(recs)
    assert ("A", "dsn_envid=env-1") in env and ("A", "dsn_ret=2") in env
    i = env.index(("R", "bob"))
    assert env[i - 1] == ("N", "10")


@pytest.mark.parametrize("args,code,text", [
    ([], EX_USAGE, "no recipient"),
    (["-N", "sometimes", "bob"], EX_USAGE, "-N"),
    (["-R", "most", "bob"], EX_USAGE, "-R"),
    (["-bs", "bob"], EX_USAGE, "-bs takes its recipients"),
    (["-bv", "bob"], EX_UNAVAILABLE, "not supported"),
    (["-Z", "bob"], EX_USAGE, "unknown option"),
    (["-f", "a\x01b", "bob"], EX_USAGE, "control character"),
])
def test_usage_errors(started, args, code, text):
    r = sendmail(started, *args, input=b"x\n")
    assert r.returncode == code, (r.returncode, r.stderr)
    assert text in r.stderr.decode()
    assert maildrop_files(started) == []


def test_ignored_options(started):
    r = sendmail(started, "-oem", "-odb", "-v", "-B", "8BITMIME", "-h", "5", "bob", input=b"x\n")
    assert r.returncode == 0, r.stderr
    assert len(maildrop_files(started)) == 1


def test_message_size_limit(new_instance):
    inst = new_instance(options=["message_size_limit=1000"])
    inst.start()
    r = sendmail(inst, "bob", input=b"y" * 60 + b"\n" * 0 + (b"z" * 50 + b"\n") * 30)
    assert r.returncode == EX_DATAERR, r.stderr
    assert "too large" in r.stderr.decode()
    assert maildrop_files(inst) == []
    r = sendmail(inst, "bob", input=(b"z" * 50 + b"\n") * 10)
    assert r.returncode == 0, r.stderr


def run_postdrop(inst, data, env=None):
    return subprocess.run([POSTDROP, "-c", inst.dir], input=data, capture_output=True,
                          timeout=30, env=env or inst.env())


def good_records(*extra_attrs):
    return (rec("T", "1700000000.000001") + rec("S", "a@b")
            + b"".join(rec("A", a) for a in extra_attrs)
            + rec("R", "bob") + rec("M") + rec("N", "hi") + rec("X") + rec("E"))


def test_postdrop_direct(started):
    r = run_postdrop(started, good_records("dsn_ret=1"))
    assert r.returncode == 0, r.stderr
    _, recs = read_maildrop(started)
    assert ("A", "dsn_ret=1") in envelope(recs)


@pytest.mark.parametrize("data,text", [
    (good_records("submit_uid=0"), "not allowed"),
    (good_records("submit_user=root"), "not allowed"),
    (good_records("rewrite_context=remote"), "not allowed"),
    (good_records("dsn_ret=1", "dsn_ret=1"), "twice"),
    (rec("S", "a@b") + rec("R", "x") + rec("M") + rec("X") + rec("E"), "arrival time"),
    (rec("T", "1") + rec("S", "a@b") + rec("M") + rec("X") + rec("E"), "no recipients"),
    (good_records() + rec("N", "x"), "after the end"),
    (b"T\xff\xff\xff\xff\xff\x01", "malformed"),
])
def test_postdrop_rejects_bad_input(started, data, text):
    r = run_postdrop(started, data)
    assert r.returncode == EX_DATAERR, (r.returncode, r.stderr)
    assert text in r.stderr.decode()
    assert maildrop_files(started) == []


def test_postdrop_truncated_input_leaves_nothing(started):
    r = run_postdrop(started, good_records()[:-2])          # no E record
    assert r.returncode == EX_TEMPFAIL, r.stderr
    assert maildrop_files(started) == []
    r = run_postdrop(started, good_records()[:-3])          # cut inside a record
    assert r.returncode in (EX_DATAERR, EX_TEMPFAIL), r.stderr
    assert maildrop_files(started) == []


def test_mailq_is_postern_queue(started):
    q = started.run("queue", "-p")
    r = subprocess.run([MAILQ, "-C", started.dir], capture_output=True, text=True, timeout=30,
                       env=started.env())
    assert (r.returncode, r.stdout) == (q.returncode, q.stdout)
    r2 = sendmail(started, "-bp")
    assert r2.returncode == q.returncode and r2.stdout.decode() == q.stdout


def test_newaliases_builds_alias_database(new_instance):
    inst = new_instance()
    aliases = os.path.join(inst.dir, "aliases")
    with open(aliases, "w") as f:
        f.write("postmaster: root\n")
    inst.append_main_cf(f"alias_database = hash:{aliases}")
    r = subprocess.run([NEWALIASES, "-C", inst.dir], capture_output=True, text=True, timeout=30,
                       env=inst.env())
    assert r.returncode == 0, r.stderr
    assert os.path.exists(aliases + ".lmdb")
    os.unlink(aliases)
    r = subprocess.run([NEWALIASES, "-C", inst.dir], capture_output=True, text=True, timeout=30,
                       env=inst.env())
    assert r.returncode != 0 and aliases in r.stderr


# ---- unprivileged users ------------------------------------------------------------

def throwaway_user():
    name = f"pt{os.getpid() % 100000}"
    subprocess.run(["userdel", name], capture_output=True)
    r = subprocess.run(["useradd", "-M", "-N", "-s", "/bin/false", name], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return name


def remove_user(name):
    subprocess.run(["userdel", name], capture_output=True)


@pytest.fixture
def setgid_postdrop(new_instance):
    """An instance whose command_directory holds a setgid postdrop, and a throwaway user."""
    if not IS_ROOT:
        pytest.skip("needs root to create a user and a setgid program")
    with open(POSTDROP, "rb") as f:
        if b"__asan_init" in f.read():
            # LeakSanitizer cannot run in a set-gid (non-dumpable) process and fails its exit.
            pytest.skip("a sanitizer build cannot run set-gid")
    inst = new_instance()
    cmd_dir = tempfile.mkdtemp(prefix="postern-cmd-", dir="/tmp")
    os.chmod(cmd_dir, 0o755)
    target = os.path.join(cmd_dir, "postdrop")
    shutil.copy(POSTDROP, target)
    os.chown(target, 0, grp.getgrnam("postdrop").gr_gid)
    os.chmod(target, 0o2755)
    inst.append_main_cf(f"command_directory = {cmd_dir}")
    inst.start()
    user = throwaway_user()
    yield inst, user, cmd_dir
    remove_user(user)
    shutil.rmtree(cmd_dir, ignore_errors=True)


def test_unprivileged_user_submits(setgid_postdrop):
    inst, user, _ = setgid_postdrop
    pw = pwd.getpwnam(user)
    r = sendmail(inst, "bob", input=b"Subject: from a user\n\nhi\n", user=user)
    assert r.returncode == 0, r.stderr
    name, recs = read_maildrop(inst)
    env = envelope(recs)
    assert ("A", f"submit_uid={pw.pw_uid}") in env
    assert ("A", f"submit_user={user}") in env
    assert ("S", user) in env
    st = os.stat(os.path.join(qdir(inst), "maildrop", name))
    assert st.st_uid == pw.pw_uid and stat.S_IMODE(st.st_mode) == 0o444


def test_authorized_submit_users(setgid_postdrop):
    inst, user, _ = setgid_postdrop
    inst.run("conf", "-e", "authorized_submit_users = root, !nobody")
    r = sendmail(inst, "bob", input=b"hi\n", user=user)
    assert r.returncode == EX_NOPERM, r.stderr
    assert "not allowed" in r.stderr.decode()
    assert maildrop_files(inst) == []
    inst.run("conf", "-e", f"authorized_submit_users = !root, inline:{{{user}=yes}}")
    r = sendmail(inst, "bob", input=b"hi\n", user=user)
    assert r.returncode == 0, r.stderr


def test_setgid_postdrop_refuses_untrusted_config_dir(setgid_postdrop, tmp_path):
    # Set-gid, postdrop accepts a configuration directory from a user only when
    # the administrator chose it; a user's own copy of main.cf is refused.
    inst, user, cmd_dir = setgid_postdrop
    pw = pwd.getpwnam(user)
    copy = tmp_path / "conf"
    copy.mkdir()
    shutil.copy(inst.main_cf, copy / "main.cf")
    os.chown(copy, pw.pw_uid, -1)
    os.chmod(tmp_path, 0o755)

    def drop():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    r = subprocess.run([os.path.join(cmd_dir, "postdrop"), "-c", str(copy)], input=good_records(),
                       capture_output=True, timeout=30, env=inst.env(), preexec_fn=drop)
    assert r.returncode == EX_NOPERM, r.stderr
    assert "alternate_config_directories" in r.stderr.decode()
    assert maildrop_files(inst) == []


def test_postdrop_without_group_cannot_write(setgid_postdrop):
    inst, user, cmd_dir = setgid_postdrop
    os.chmod(os.path.join(cmd_dir, "postdrop"), 0o755)     # setgid bit gone
    r = sendmail(inst, "bob", input=b"hi\n", user=user)
    assert r.returncode == EX_TEMPFAIL, r.stderr
    assert "Permission denied" in r.stderr.decode()
    assert maildrop_files(inst) == []


# ---- pickup ----------------------------------------------------------------------------

def test_pickup_hands_message_to_cleanup(with_pickup):
    inst, fake = with_pickup
    r = sendmail(inst, "-f", "alice@example.org", "-V", "e1", "bob@example.org", input=b"Subject: s\n\nbody\n")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: fake.sessions, what="a cleanup session")
    s = fake.sessions[0]
    assert "error" not in s, s
    assert s["flags"] == 1                                    # CLEANUP_FLAG_LOCAL
    env = envelope(s["records"])
    attrs = [d for t, d in env if t == "A"]
    assert f"submit_uid={os.getuid()}" in attrs and "dsn_envid=e1" in attrs
    assert not [a for a in attrs if a.startswith("submit_user") or a.startswith("submit_flags")]
    assert ("R", "bob@example.org") in env
    lines = content_lines(s["records"])
    # pickup puts its own trace header first, then the message as submitted.
    assert re.match(rf"Received: by \S+ \(Postern, from userid {os.getuid()}\)$", lines[0]), lines
    assert lines[1].startswith(f"\tid {s['queue_id']}; "), lines
    assert lines[2:] == ["Subject: s", "", "body"]
    wait_for(lambda: maildrop_files(inst) == [], what="maildrop emptied")
    inst.wait_log(rf"postern/pickup\[\d+\]: {s['queue_id']}: uid={os.getuid()} from=<alice@example.org>")


def test_pickup_extract_flag(with_pickup):
    inst, fake = with_pickup
    r = sendmail(inst, "-t", input=b"To: bob@example.org\n\nhi\n")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: fake.sessions, what="a cleanup session")
    assert fake.sessions[0]["flags"] == 3                     # LOCAL | EXTRACT


def write_maildrop(inst, name, data, uid=None):
    path = os.path.join(qdir(inst), "maildrop", name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_malformed_file_goes_to_corrupt(with_pickup):
    inst, fake = with_pickup
    write_maildrop(inst, "0000000001z1", rec("T", "1") + rec("S", "a@b") + rec("Q", "junk"))
    trigger_pickup(inst)
    wait_for(lambda: os.path.exists(os.path.join(qdir(inst), "corrupt", "0000000001z1")),
             what="file in corrupt/")
    inst.wait_log(r"pickup\[\d+\]: warning: maildrop/0000000001z1: unexpected 'Q' record")
    assert fake.sessions == []


def test_forged_submit_uid_goes_to_corrupt(with_pickup):
    inst, fake = with_pickup
    data = good_records(f"submit_uid={os.getuid() + 1}")
    write_maildrop(inst, "0000000002z1", data)
    trigger_pickup(inst)
    wait_for(lambda: os.path.exists(os.path.join(qdir(inst), "corrupt", "0000000002z1")),
             what="file in corrupt/")
    inst.wait_log(r"maildrop/0000000002z1: submit_uid \d+ is not the file owner")
    assert fake.sessions == []


def test_symlink_is_refused(with_pickup, tmp_path):
    inst, fake = with_pickup
    secret = tmp_path / "secret"
    secret.write_bytes(good_records("submit_uid=0"))
    os.chmod(tmp_path, 0o755)
    link = os.path.join(qdir(inst), "maildrop", "0000000003z1")
    os.symlink(str(secret), link)
    trigger_pickup(inst)
    wait_for(lambda: os.path.islink(os.path.join(qdir(inst), "corrupt", "0000000003z1")),
             what="link moved to corrupt/")
    inst.wait_log(r"maildrop/0000000003z1: refusing a symbolic link")
    assert fake.sessions == []
    assert secret.exists()


def test_cleanup_down_keeps_file(new_instance):
    inst = new_instance()
    inst.append_master_cf(PICKUP_LINE)
    inst.remove_service("cleanup")
    inst.start()
    r = sendmail(inst, "bob", input=b"hi\n")
    assert r.returncode == 0, r.stderr
    inst.wait_log(r"pickup\[\d+\]: warning: maildrop/\w+: .*will try again later")
    assert len(maildrop_files(inst)) == 1
    fake = FakeCleanup(inst)
    try:
        trigger_pickup(inst)
        wait_for(lambda: maildrop_files(inst) == [], what="maildrop emptied")
        assert len(fake.sessions) == 1
    finally:
        fake.close()


def test_permanent_cleanup_refusal_goes_to_corrupt(new_instance):
    inst = new_instance()
    inst.append_master_cf(PICKUP_LINE)
    inst.remove_service("cleanup")
    inst.start()
    fake = FakeCleanup(inst, status=4, reason="5.3.4 message file too big")
    try:
        r = sendmail(inst, "bob", input=b"hi\n")
        assert r.returncode == 0, r.stderr
        wait_for(lambda: os.listdir(os.path.join(qdir(inst), "corrupt")), what="file in corrupt/")
        inst.wait_log(r"cleanup: 5.3.4 message file too big; moved to corrupt/")
    finally:
        fake.close()


def test_real_cleanup_lands_in_incoming(new_instance):
    for prog in ("cleanup", "trivial-rewrite"):
        if not os.path.exists(os.path.join(BUILD, "libexec", "postern", prog)):
            pytest.skip(f"{prog} is not built yet")
    inst = new_instance()
    inst.append_master_cf("cleanup unix - - n - 0 cleanup\n"
                          "rewrite unix - - n - - trivial-rewrite\n" + PICKUP_LINE)
    inst.remove_service("qmgr")         # delivery held: the file stays in incoming/
    inst.start()
    r = sendmail(inst, "-t", input=b"To: bob@localhost\nSubject: real\n\nhi\n")
    assert r.returncode == 0, r.stderr
    inst.wait_log(r"pickup\[\d+\]: \w+: uid=\d+ from=<")

    def incoming():
        found = []
        for root, _, files in os.walk(os.path.join(qdir(inst), "incoming")):
            found += files
        return found
    wait_for(incoming, what="a file in incoming/")
    assert maildrop_files(inst) == []


# ---- sendmail -bs ---------------------------------------------------------------

def smtp_replies(out):
    """The reply codes of an SMTP dialogue, one per reply (continuation lines folded)."""
    return [l[:3] for l in out.decode().split("\r\n") if len(l) >= 4 and l[3] == " "]


def maildrop_envelopes(inst):
    got = []
    for name in maildrop_files(inst):
        with open(os.path.join(qdir(inst), "maildrop", name), "rb") as f:
            recs = parse_records(f.read())
        got.append((envelope(recs), content_lines(recs)))
    return sorted(got, key=lambda e: [d for t, d in e[0] if t == "S"])


def test_bs_pipelined_dialogue_queues_each_message(started):
    dialogue = (b"EHLO client.example\r\n"
                b"MAIL FROM:<alice@example.org> RET=HDRS ENVID=e+2B1 SIZE=100 BODY=8BITMIME\r\n"
                b"RCPT TO:<bob@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+40example.org\r\n"
                b'RCPT TO:<"john doe"@example.net>\r\n'
                b"DATA\r\n"
                b"Subject: one\r\n\r\n..leading dot\r\nplain\n.\r\n"
                b"MAIL FROM:<>\r\nRCPT TO:<carol@example.com>\r\nDATA\r\nSubject: two\r\n\r\nx\r\n.\r\n"
                b"QUIT\r\n")
    r = sendmail(started, "-bs", input=dialogue)
    assert r.returncode == 0, r.stderr
    assert smtp_replies(r.stdout) == ["220", "250", "250", "250", "250", "354", "250",
                                      "250", "250", "354", "250", "221"], r.stdout
    out = r.stdout.decode()
    assert "250-PIPELINING" in out and "250-SIZE" in out and "250 DSN" in out
    assert "250 2.0.0 Ok: queued" in out
    (env2, body2), (env1, body1) = maildrop_envelopes(started)
    assert ("S", "alice@example.org") in env1
    assert ("A", "dsn_envid=e+1") in env1 and ("A", "dsn_ret=2") in env1
    assert ("A", f"submit_uid={os.getuid()}") in env1
    rcpts = [d for t, d in env1 if t == "R"]
    assert rcpts == ["bob@example.org", '"john doe"@example.net']
    i = env1.index(("R", "bob@example.org"))
    assert env1[i - 2:i] == [("O", "rfc822;bob@example.org"), ("N", "6")]
    assert body1 == ["Subject: one", "", ".leading dot", "plain"]
    assert ("S", "") in env2 and [d for t, d in env2 if t == "R"] == ["carol@example.com"]
    assert body2 == ["Subject: two", "", "x"]


@pytest.mark.parametrize("commands,codes", [
    (b"RCPT TO:<bob>\r\n", ["503"]),
    (b"MAIL FROM:<a@b.c>\r\nDATA\r\n", ["250", "503"]),
    (b"MAIL FROM:<a@b.c>\r\nMAIL FROM:<a@b.c>\r\n", ["250", "503"]),
    (b"MAIL FROM:a@b.c>\r\n", ["501"]),
    (b"MAIL FROM:<a@b.c> SIZE=999999999\r\n", ["552"]),
    (b"MAIL FROM:<a@b.c> FOO=1\r\n", ["555"]),
    (b"MAIL FROM:<a@b.c>\r\nRCPT TO:<bob> NOTIFY=SOMETIMES\r\n", ["250", "501"]),
    (b"MAIL FROM:<a@b.c>\r\nRCPT TO:<>\r\n", ["250", "501"]),
    (b"EHLO\r\nBDAT 10 LAST\r\nSTARTTLS\r\n\r\n", ["501", "502", "502", "500"]),
    (b"NOOP\r\nRSET\r\nVRFY bob\r\nHELP\r\n" + b"X" * 3000 + b"\r\nNOOP\r\n",
     ["250", "250", "252", "214", "500", "250"]),
])
def test_bs_command_errors(started, commands, codes):
    r = sendmail(started, "-bs", input=commands + b"QUIT\r\n")
    assert r.returncode == 0, r.stderr
    assert smtp_replies(r.stdout) == ["220", *codes, "221"], r.stdout
    assert maildrop_files(started) == []


def test_bs_oversize_message_is_refused_and_dialogue_goes_on(new_instance):
    inst = new_instance(options=["message_size_limit=1000"])
    inst.remove_service("pickup")
    inst.start()
    big = b"".join(b"line %d " % i + b"y" * 60 + b"\r\n" for i in range(40))
    r = sendmail(inst, "-bs", input=b"MAIL FROM:<a@b.c>\r\nRCPT TO:<bob>\r\nDATA\r\n" + big +
                 b".\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<bob>\r\nDATA\r\nsmall\r\n.\r\nQUIT\r\n")
    assert smtp_replies(r.stdout) == ["220", "250", "250", "354", "552",
                                      "250", "250", "354", "250", "221"], r.stdout
    [(env, body)] = maildrop_envelopes(inst)
    assert body == ["small"]


def test_bs_input_ending_inside_data_queues_nothing(started):
    r = sendmail(started, "-bs", input=b"MAIL FROM:<a@b.c>\r\nRCPT TO:<bob>\r\nDATA\r\nhalf a message\r\n")
    assert r.returncode == 0, r.stderr
    assert smtp_replies(r.stdout) == ["220", "250", "250", "354"]
    assert maildrop_files(started) == []


def test_bs_too_many_errors_end_the_dialogue(new_instance):
    inst = new_instance(options=["smtpd_hard_error_limit=3"])
    inst.remove_service("pickup")
    inst.start()
    r = sendmail(inst, "-bs", input=b"FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n")
    assert smtp_replies(r.stdout) == ["220", "502", "502", "502", "421"], r.stdout


def test_bs_message_is_delivered(instance):
    """sendmail -bs as a user agent uses it: the message reaches bob's Maildir."""
    r = sendmail(instance, "-bs", input=b"HELO me\r\nMAIL FROM:<alice@example.org>\r\n"
                 b"RCPT TO:<bob@localhost>\r\nDATA\r\nSubject: by -bs\r\n\r\nhello\r\n.\r\nQUIT\r\n")
    assert r.returncode == 0, r.stderr
    assert smtp_replies(r.stdout) == ["220", "250", "250", "250", "354", "250", "221"]
    new = os.path.join(instance.dir, "mail", "bob", "new")
    wait_for(lambda: os.path.isdir(new) and os.listdir(new), timeout=20, what="delivery to bob")
    with open(os.path.join(new, os.listdir(new)[0]), "rb") as f:
        text = f.read()
    assert b"Subject: by -bs" in text and b"Return-Path: <alice@example.org>" in text


def test_bs_recipient_limit_and_disabled_vrfy(new_instance):
    inst = new_instance(options=["smtpd_recipient_limit=2", "disable_vrfy_command=yes"])
    inst.remove_service("pickup")
    inst.start()
    r = sendmail(inst, "-bs", input=b"VRFY bob\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<r1>\r\nRCPT TO:<r2>\r\n"
                 b"RCPT TO:<r3>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n")
    assert smtp_replies(r.stdout) == ["220", "502", "250", "250", "250", "452", "354", "250", "221"], r.stdout
    [(env, _)] = maildrop_envelopes(inst)
    assert [d for t, d in env if t == "R"] == ["r1", "r2"]
