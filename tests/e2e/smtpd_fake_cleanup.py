"""A scripted stand-in for the cleanup service, for smtpd tests.

It listens on queue_directory/private/cleanup (when master.cf has no
cleanup service), speaks the protocol of src/lib/cleanup_proto.h, and keeps
every record smtpd sent, so tests can check exactly what smtpd hands over:
envelope records, the Received: header, dot-unstuffed content. The verdict
it answers is set by the test (status, reason). Each connection is served
in a thread; everything is bounded in time and closed by stop().
"""
import os
import pwd
import re
import socket
import threading
import time

from postern_attr import encode
from postern_rec import parse_varint  # also imported from here by test_smtpd_mail


FLAG_MORE = 16                      # CLEANUP_FLAG_MORE in src/lib/cleanup_proto.h


class Message:
    """What cleanup received for one message."""

    def __init__(self, queue_id, flags, conn_no):
        self.queue_id = queue_id
        self.flags = flags
        self.conn_no = conn_no      # which connection (1, 2, ...) carried it
        self.records = []           # [(type char, bytes)]
        self.complete = False       # E seen
        self.closed_early = False   # the client went away before E

    def envelope(self):
        out = []
        for t, d in self.records:
            if t == "M":
                break
            out.append((t, d))
        return out

    def attrs(self):
        return dict(d.decode().split("=", 1) for t, d in self.envelope() if t == "A")

    def recipients(self):
        return [d.decode() for t, d in self.envelope() if t == "R"]

    def lines(self):
        """Content lines (L pieces joined), after M and before X."""
        out, cur, inside = [], b"", False
        for t, d in self.records:
            if t == "M":
                inside = True
            elif t == "X":
                break
            elif inside and t == "L":
                cur += d
            elif inside and t == "N":
                out.append(cur + d)
                cur = b""
        return out

    def raw_content(self):
        return [(t, d) for t, d in self.records if t in "NL"][len(self.envelope()):]


class FakeCleanup:
    """one_per_connection: close each connection after its first message,
    as a cleanup that went away would, so smtpd must connect again."""

    def __init__(self, inst, status=0, reason="", one_per_connection=False):
        self.inst = inst
        self.status = status
        self.reason = reason
        self.one_per_connection = one_per_connection
        self.messages = []
        self.seq = 0
        self.conns = 0              # connections accepted so far
        self.open_conns = 0         # of those, not yet closed by the client
        self.lock = threading.Lock()
        qdir = self._param("queue_directory")
        self.path = os.path.join(qdir, "private", "cleanup")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock.bind(self.path)
        owner = self._param("mail_owner")
        if os.geteuid() == 0:
            pw = pwd.getpwnam(owner)
            os.chown(self.path, pw.pw_uid, pw.pw_gid)
        os.chmod(self.path, 0o600)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.running = True
        self.threads = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _param(self, name):
        with open(self.inst.main_cf) as f:
            for line in f:
                m = re.match(rf"^{name}\s*=\s*(.*)$", line)
                if m:
                    return m.group(1).strip()
        raise KeyError(name)

    def _accept(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, conn):
        conn.settimeout(30)
        with self.lock:
            self.conns += 1
            self.open_conns += 1
            conn_no = self.conns
        try:
            conn.sendall(encode([("protocol", "cleanup")]))
            buf, announce = b"", False
            while buf is not None:
                buf, announce = self._one_message(conn, conn_no, buf, announce)
                if self.one_per_connection:
                    break
        except (OSError, socket.timeout):
            pass
        finally:
            conn.close()
            with self.lock:
                self.open_conns -= 1

    def _one_message(self, conn, conn_no, buf, announce):
        """Serve one message; returns (the unread input or None at the end,
        whether the next queue ID is announced: CLEANUP_FLAG_MORE)."""
        if announce:
            qid = self._next_id()
            conn.sendall(encode([("queue_id", qid)]))
        # {flags = N} ends with "0:,"
        while b"0:," not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                return None, False
            buf += chunk
        m = re.match(rb"5:flags,(\d+):(\d+),0:,", buf)
        assert m, f"bad flags message {buf[:60]!r}"
        flags = int(m.group(2))
        buf = buf[m.end():]
        if not announce:
            qid = self._next_id()
        msg = Message(qid, flags, conn_no)
        with self.lock:
            self.messages.append(msg)
        if not announce:
            conn.sendall(encode([("queue_id", qid)]))
        pos = 0
        while True:
            if pos < len(buf):
                t = chr(buf[pos])
                n, p2 = parse_varint(buf, pos + 1)
                if n is not None and p2 + n <= len(buf):
                    msg.records.append((t, buf[p2:p2 + n]))
                    pos = p2 + n
                    if t == "E":
                        msg.complete = True
                        break
                    continue
            chunk = conn.recv(65536)
            if not chunk:
                msg.closed_early = True
                return None, False
            buf = buf[pos:] + chunk
            pos = 0
        conn.sendall(encode([("status", self.status), ("reason", self.reason)]))
        return buf[pos:], bool(flags & FLAG_MORE)

    def _next_id(self):
        with self.lock:
            self.seq += 1
            return f"4TestQ{self.seq:04d}"

    def wait_messages(self, count, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [m for m in self.messages if m.complete or m.closed_early]
            if len(done) >= count:
                return done
            time.sleep(0.02)
        raise AssertionError(f"fake cleanup: expected {count} messages, got {len(self.messages)}")

    def stop(self):
        self.running = False
        self.sock.close()
        self.acceptor.join(timeout=5)
        for t in self.threads:
            t.join(timeout=5)
        try:
            os.unlink(self.path)
        except OSError:
            pass
