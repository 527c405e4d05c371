"""anvil: the event-loop skeleton and the attribute codec, end to end."""
import os
import socket
import time

import pytest

from conftest import wait_for
from postern_attr import Reader, encode


def anvil(inst):
    path = os.path.join(inst.dir, "queue", "private", "anvil")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    r = Reader(s)
    assert r.read() == {"protocol": "anvil"}
    return s, r


def ask(sock, reader, **attrs):
    sock.sendall(encode(list(attrs.items())))
    return reader.read()


def test_counts_follow_clients(instance):
    a, ra = anvil(instance)
    b, rb = anvil(instance)
    assert ask(a, ra, request="connect", ident="smtp:192.0.2.1") == \
        {"status": "0", "count": "1", "rate": "1"}
    assert ask(a, ra, request="connect", ident="smtp:192.0.2.1") == \
        {"status": "0", "count": "2", "rate": "2"}
    assert ask(b, rb, request="message", ident="smtp:192.0.2.1") == {"status": "0", "rate": "1"}
    got = ask(b, rb, request="lookup", ident="smtp:192.0.2.1")
    assert got["count"] == "2" and got["rate"] == "2" and got["message"] == "1"
    # b cannot close a's connections.
    assert ask(b, rb, request="disconnect", ident="smtp:192.0.2.1") == {"status": "0"}
    assert ask(b, rb, request="lookup", ident="smtp:192.0.2.1")["count"] == "2"
    assert ask(a, ra, request="disconnect", ident="smtp:192.0.2.1") == {"status": "0"}
    assert ask(b, rb, request="lookup", ident="smtp:192.0.2.1")["count"] == "1"
    # When a client goes away, its open connections stop counting.
    a.close()
    wait_for(lambda: ask(b, rb, request="lookup", ident="smtp:192.0.2.1")["count"] == "0",
             what="anvil to drop the closed client's connection")
    assert ask(b, rb, request="lookup", ident="smtp:unknown")["count"] == "0"
    b.close()


@pytest.mark.parametrize("garbage", [
    b"x:,",                                  # bad length
    b"7:request,7:connect,0:,",              # missing ident
    b"7:request,5:frobs,5:ident,1:x,0:,",   # unknown request
    b"7:REQUEST,7:connect,0:,",              # bad name
    b"99999999999:",                         # oversized
])
def test_bad_requests_close_the_client(instance, garbage):
    s, r = anvil(instance)
    s.sendall(garbage)
    with pytest.raises(EOFError):
        r.read()
    s.close()
    instance.wait_log(r"postern/anvil\[\d+\]: warning: bad request from client")
    # anvil itself is still serving.
    s2, r2 = anvil(instance)
    assert ask(s2, r2, request="lookup", ident="x")["status"] == "0"
    s2.close()


def test_statistics_logged_on_exit(instance):
    s, r = anvil(instance)
    for _ in range(3):
        ask(s, r, request="connect", ident="smtp:198.51.100.7")
    s.close()
    time.sleep(0.2)
    instance.stop()
    log = instance.log()
    assert "statistics: max connection rate 3/60s for (smtp:198.51.100.7)" in log
    assert "statistics: max connection count 3 for (smtp:198.51.100.7)" in log
