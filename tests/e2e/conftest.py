"""End-to-end test harness: real Postern instances on loopback ports.

Every test gets a fresh instance in its own directory under /tmp, on a free
127.0.0.1 port. The `instance` fixture starts it; `new_instance` only creates
it (for tests that change the configuration first). On teardown each
instance is stopped, and the test fails if any process of it is left (they
are found by their unique configuration directory in /proc and killed by
PID). Sanitizer reports of the daemons (SAN=1 builds) are collected in a
per-instance directory and fail the test too.
"""
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("POSTERN_BUILD", os.path.join(TOP, "build"))
POSTERN = os.path.join(BUILD, "bin", "postern")
IS_ROOT = os.geteuid() == 0
LOG_LINE = re.compile(
    r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ postern/[a-z0-9-]+\[\d+\]: .+$")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, step=0.05, what="condition"):
    """Poll predicate() until it returns a true value; bounded in time."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def proc_uid(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


class Instance:
    """One Postern instance: its directory, its port, and helpers."""

    def __init__(self, path, port):
        self.dir = path
        self.port = port
        self.san_dir = os.path.join(path, "san")

    # ---- commands -------------------------------------------------------
    def env(self):
        env = dict(os.environ)
        env.pop("POSTERN_CONFIG", None)
        env.pop("POSTERN_LOG_STDERR", None)
        # Sanitizer reports of every program go to files we check on teardown.
        env["ASAN_OPTIONS"] = f"detect_leaks=0:log_path={self.san_dir}/asan"
        env["UBSAN_OPTIONS"] = f"print_stacktrace=1:log_path={self.san_dir}/ubsan"
        return env

    def run(self, *args, check=False, timeout=60, input=None):
        return subprocess.run([POSTERN, "-c", self.dir, *args], capture_output=True,
                              text=True, timeout=timeout, env=self.env(), input=input)

    def start(self):
        r = self.run("start")
        assert r.returncode == 0, f"start failed: {r.stdout}{r.stderr}"
        return r

    def stop(self):
        return self.run("stop")

    def status(self):
        return self.run("status")

    def master_pid(self):
        r = self.status()
        m = re.match(r"running \(pid (\d+)\)", r.stdout)
        return int(m.group(1)) if m else None

    # ---- files ----------------------------------------------------------
    @property
    def main_cf(self):
        return os.path.join(self.dir, "main.cf")

    @property
    def master_cf(self):
        return os.path.join(self.dir, "master.cf")

    @property
    def maillog(self):
        return os.path.join(self.dir, "log", "maillog")

    def log(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=10.0, count=1):
        rx = re.compile(pattern, re.M)
        return wait_for(lambda: len(rx.findall(self.log())) >= count, timeout,
                        what=f"log line /{pattern}/ x{count}")

    def append_main_cf(self, text):
        with open(self.main_cf, "a") as f:
            f.write(text if text.endswith("\n") else text + "\n")

    def append_master_cf(self, text):
        """Add master.cf lines; a line for a service (name and type) that is
        already defined replaces that definition, so a test can redefine a
        service that "postern init" wrote."""
        for line in text.splitlines():
            f = line.split()
            if len(f) >= 2 and not line[0].isspace() and not line.startswith("#"):
                self.remove_service(f[0], f[1])
        with open(self.master_cf, "a") as f:
            f.write(text if text.endswith("\n") else text + "\n")

    def remove_service(self, name, type_=None):
        """Delete a service's definition (and its continuation lines) from
        master.cf, e.g. to stand in for it with a fake server."""
        out, skipping = [], False
        with open(self.master_cf) as f:
            for line in f:
                if line.strip() and not line[0].isspace() and not line.startswith("#"):
                    fields = line.split()
                    skipping = (fields[0] == name
                                and (type_ is None or (len(fields) > 1 and fields[1] == type_)))
                elif line[:1].isspace() and line.strip() and not line.strip().startswith("#"):
                    pass            # continuation: keeps the previous decision
                else:
                    skipping = False
                if not skipping:
                    out.append(line)
        with open(self.master_cf, "w") as f:
            f.writelines(out)

    # ---- processes --------------------------------------------------------
    def pids(self):
        """PIDs of every process of this instance (argv holds its directory)."""
        found = []
        needle = self.dir.encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if needle in argv and int(entry) != os.getpid():
                found.append(int(entry))
        return found

    def children(self, program=None):
        """master's children; only those running "program" when given."""
        mp = self.master_pid()
        kids = [p for p in self.pids() if proc_ppid(p) == mp] if mp else []
        if program is None:
            return kids
        found = []
        for pid in kids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv0 = f.read().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            if os.path.basename(argv0) == program:
                found.append(pid)
        return found

    # ---- SMTP ---------------------------------------------------------------
    def smtp(self, timeout=10):
        return smtplib.SMTP("127.0.0.1", self.port, timeout=timeout)

    def raw(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return s


def read_reply(sock):
    """Read one complete (possibly multi-line) SMTP reply from a socket."""
    buf = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return buf.decode(errors="replace")
        buf += chunk
        lines = buf.split(b"\r\n")
        for line in lines[:-1]:
            if len(line) >= 4 and line[3:4] == b" ":
                return buf.decode(errors="replace")


def cleanup(inst):
    """Stop the instance and make sure nothing of it is left running."""
    if inst.master_pid():
        inst.stop()
    deadline = time.monotonic() + 10
    left = inst.pids()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = inst.pids()
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    reports = []
    if os.path.isdir(inst.san_dir):
        for name in os.listdir(inst.san_dir):
            with open(os.path.join(inst.san_dir, name), errors="replace") as f:
                reports.append(f"{name}:\n{f.read()}")
    return left, reports


# "postern init" makes localhost and $myhostname virtual mailbox domains (see
# CONTRACT.md). Tests of Postfix's default routing, where they are local
# domains delivered to system accounts, pass these options.
POSTFIX_ROUTING = ["mydestination=$myhostname, localhost.$mydomain, localhost",
                   "virtual_mailbox_domains=$virtual_mailbox_maps", "virtual_mailbox_maps="]


@pytest.fixture
def new_instance(request):
    """Factory: new_instance(listen=None, options=()) -> Instance, not started."""
    made = []

    def make(listen=None, options=()):
        base = tempfile.mkdtemp(prefix="postern-e2e-", dir="/tmp")
        os.chmod(base, 0o755)
        path = os.path.join(base, "inst")
        port = free_port()
        args = [POSTERN, "init", path, "--listen", listen or f"127.0.0.1:{port}"]
        for o in options:
            args += ["-o", o]
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"init failed: {r.stdout}{r.stderr}"
        inst = Instance(path, port)
        os.makedirs(inst.san_dir)
        os.chmod(inst.san_dir, 0o1777)
        made.append((base, inst))
        return inst

    yield make
    problems = []
    for base, inst in made:
        left, reports = cleanup(inst)
        if left:
            problems.append(f"processes left running after stop: {left}")
        if reports:
            problems.append("sanitizer reports:\n" + "\n".join(reports))
        if not problems and not os.environ.get("POSTERN_KEEP"):
            shutil.rmtree(base, ignore_errors=True)
    assert not problems, "\n".join(problems)


@pytest.fixture
def instance(new_instance):
    """A started instance with the default configuration."""
    inst = new_instance()
    inst.start()
    return inst
