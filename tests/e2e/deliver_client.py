"""A stand-in for qmgr in delivery agent tests (src/lib/deliver_proto.h).

It puts a queue file in active/ (built with postern_rec), connects to
private/SERVICE, checks the {protocol = delivery} greeting, sends one request
and returns the reply as a dict. Independent of the C code: the request
attributes come from the protocol header's documentation.
"""
import os
import socket
import time

import postern_rec
from conftest import wait_for
from postern_attr import Reader, encode

_SEQ = [0]


def content_offset(data):
    """Offset of the first record after M in a queue file (bytes)."""
    for rtype, _, _, end in postern_rec.iter_records(data):
        if rtype == "M":
            return end
    raise AssertionError("no M record")


def make_queue_file(inst, sender, recipients, lines, queue="active"):
    """Write a queue file; returns (queue_id, content_offset, data)."""
    _SEQ[0] += 1
    usec = int(time.time() * 1e6) + _SEQ[0]
    qid = postern_rec.queue_id(usec, 1000 + _SEQ[0])
    data = postern_rec.queue_file(sender, recipients, lines)
    qdir = os.path.join(inst.dir, "queue")
    path = postern_rec.write_queue_file(qdir, queue, qid, data)
    os.chmod(path, 0o600)
    # As cleanup would: the file belongs to mail_owner, who owns the queue.
    st = os.stat(os.path.join(qdir, queue))
    if os.geteuid() == 0:
        os.chown(path, st.st_uid, st.st_gid)
    return qid, content_offset(data), data


def request_attrs(qid, offset, sender, recipients, nexthop="", queue="active", flags=0,
                  size=100, transport="virtual", orig=None):
    now = int(time.time())
    attrs = [("queue_name", queue), ("queue_id", qid), ("content_offset", offset),
             ("message_size", size), ("arrival_time", now), ("active_time", now),
             ("sender", sender), ("transport", transport), ("nexthop", nexthop),
             ("flags", flags), ("rcpt_count", len(recipients))]
    for i, r in enumerate(recipients):
        attrs += [(f"rcpt_{i}_address", r), (f"rcpt_{i}_orig", (orig or {}).get(r, r)),
                  (f"rcpt_{i}_offset", 10 + i)]
    return attrs


def connect(inst, service, timeout=30):
    path = os.path.join(inst.dir, "queue", "private", service)

    def try_connect():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            return None
    return wait_for(try_connect, 10, what=f"private/{service}")


def send_request(inst, service, attrs, timeout=30):
    """One delivery request; the reply as a dict."""
    s = connect(inst, service, timeout)
    try:
        reader = Reader(s)
        greeting = reader.read()
        assert greeting == {"protocol": "delivery"}, greeting
        s.sendall(encode(attrs))
        return reader.read()
    finally:
        s.close()


def deliver(inst, service, sender, recipients, lines, nexthop="", flags=0, timeout=30):
    """Queue file + request; returns (reply, queue_id)."""
    qid, off, data = make_queue_file(inst, sender, recipients, lines)
    attrs = request_attrs(qid, off, sender, recipients, nexthop=nexthop, flags=flags,
                          size=len(data), transport=service)
    return send_request(inst, service, attrs, timeout), qid
