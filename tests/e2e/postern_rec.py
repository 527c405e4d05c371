"""Postern's queue file record format, for tests.

An independent writer from docs/queue.md (and src/lib/rec_type.h): each
record is a type byte, the data length as a base-128 varint (low 7 bits
first, high bit set when another byte follows) and the data. A queue file
is V, C, T, [F], S, A*, per recipient [O] [N] R|D, M, content N/L, X,
records added later, E.

    data = queue_file("joe@example.com", ["bob@example.com"],
                      ["Subject: hi", "", "body"])
"""
import os
import time

SIZE_FORMAT = "%15d %15d %15d"


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def record(rtype, data=b""):
    """One record: rtype is a one-letter str, data str or bytes."""
    if isinstance(data, str):
        data = data.encode()
    return rtype.encode() + varint(len(data)) + data


def parse_varint(buf, pos):
    """Decode a length at buf[pos:]: (value, position after it), or
    (None, pos) when buf ends first; ValueError when it is longer than the
    5 bytes the format allows."""
    n = shift = 0
    for i in range(5):
        if pos + i >= len(buf):
            return None, pos
        b = buf[pos + i]
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos + i + 1
    raise ValueError("varint too long")


def iter_records(buf):
    """(type letter, data, offset of the type byte, offset after the data)
    for each record of buf; AssertionError when a record is cut short."""
    pos = 0
    while pos < len(buf):
        start, t = pos, chr(buf[pos])
        n, pos = parse_varint(buf, pos + 1)
        assert n is not None, f"record {t!r} at {start}: length cut short"
        assert pos + n <= len(buf), f"record {t!r} at {start} runs past the end"
        yield t, bytes(buf[pos:pos + n]), start, pos + n
        pos += n


def parse_records(buf):
    """A record stream as a list of (type letter, bytes); asserts it is well formed."""
    return [(t, d) for t, d, _, _ in iter_records(buf)]


def content_lines(records):
    """The content between M and X of (type, bytes) records, as text lines
    (L pieces joined to the N that ends them)."""
    lines, cur, inside = [], b"", False
    for t, d in records:
        if t == "M":
            inside = True
        elif t == "X":
            inside = False
        elif inside and t == "L":
            cur += d
        elif inside and t == "N":
            lines.append((cur + d).decode())
            cur = b""
    return lines


def content_records(lines, line_limit=0):
    """Content lines (str or bytes, without newline) as N/L records."""
    out = b""
    for line in lines:
        if isinstance(line, str):
            line = line.encode()
        while line_limit and len(line) > line_limit:
            out += record("L", line[:line_limit])
            line = line[line_limit:]
        out += record("N", line)
    return out


def content_size(lines):
    return sum(len(l.encode() if isinstance(l, str) else l) + 1 for l in lines)


def queue_file(sender, recipients, lines, arrival=None, fullname=None,
               attrs=(("rewrite_context", "local"),), done=(), extra=b"",
               extra_rcpts=0, line_limit=0, size=None):
    """A complete queue file as bytes.

    recipients: addresses, or (address, orcpt, notify) tuples; those whose
    index is in `done` are written as D records. extra: raw records put
    between X and E (count extracted recipients in extra_rcpts). size:
    override the C record numbers (message_size, content_offset, rcpts).
    """
    if arrival is None:
        arrival = time.time()
    env = record("T", "%d.%06d" % (int(arrival), int((arrival % 1) * 1e6)))
    if fullname is not None:
        env += record("F", fullname)
    env += record("S", sender)
    for name, value in attrs:
        env += record("A", "%s=%s" % (name, value))
    for i, r in enumerate(recipients):
        addr, orcpt, notify = (r, None, None) if isinstance(r, str) else r
        if orcpt is not None:
            env += record("O", orcpt)
        if notify is not None:
            env += record("N", str(notify))
        env += record("D" if i in done else "R", addr)
    head = record("V", "1")
    c_len = len(record("C", SIZE_FORMAT % (0, 0, 0)))
    content_offset = len(head) + c_len + len(env) + len(record("M"))
    if size is None:
        size = (content_size(lines), content_offset, len(recipients) + extra_rcpts)
    out = head + record("C", SIZE_FORMAT % size) + env + record("M")
    out += content_records(lines, line_limit) + record("X") + extra + record("E")
    return out


def maildrop_file(sender, recipients, lines, arrival=None, attrs=()):
    """A maildrop file (as postdrop stores it): no V or C record."""
    if arrival is None:
        arrival = time.time()
    out = record("T", "%d.%06d" % (int(arrival), int((arrival % 1) * 1e6))) + record("S", sender)
    for name, value in attrs:
        out += record("A", "%s=%s" % (name, value))
    for r in recipients:
        out += record("R", r)
    return out + record("M") + content_records(lines) + record("X") + record("E")


ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxy"


def queue_id(usec, inode):
    """The queue ID for an arrival time in microseconds and an inode."""
    t = ""
    for _ in range(10):
        t = ALPHABET[usec % 51] + t
        usec //= 51
    i = ""
    while True:
        i = ALPHABET[inode % 51] + i
        inode //= 51
        if not inode:
            break
    return t + "z" + i


def queue_path(queue_dir, queue, qid, hashed=("deferred", "defer"), depth=1):
    """Where a file of that queue lives (default hash_queue_* settings)."""
    d = os.path.join(queue_dir, queue)
    if queue in hashed:
        for level in range(depth):
            d = os.path.join(d, qid[9 - level])
    return os.path.join(d, qid)


def write_queue_file(queue_dir, queue, qid, data, **kw):
    """Store data as queue/ID (creating directories); returns the path."""
    path = queue_path(queue_dir, queue, qid, **kw)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path
