"""trivial-rewrite: rewrite and resolve over private/rewrite, end to end."""
import os
import socket
import time

import pytest

from conftest import POSTFIX_ROUTING, wait_for
from postern_attr import Reader, encode

MASTER_LINE = "rewrite unix - - n - - trivial-rewrite"


def connect(inst):
    path = os.path.join(inst.dir, "queue", "private", "rewrite")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    r = Reader(s)
    assert r.read() == {"protocol": "trivial-rewrite"}
    return s, r


def ask(sock, reader, **attrs):
    sock.sendall(encode(list(attrs.items())))
    return reader.read()


def rewrite(sock, reader, rule, address):
    return ask(sock, reader, request="rewrite", rule=rule, address=address)


def resolve(sock, reader, address, sender="sender@example.org"):
    return ask(sock, reader, request="resolve", sender=sender, address=address)


CLASS_LOCAL, CLASS_ALIAS, CLASS_VIRTUAL, CLASS_RELAY, CLASS_DEFAULT = (1 << 8, 1 << 9, 1 << 10,
                                                                       1 << 11, 1 << 12)
FLAG_FAIL, FLAG_ERROR, FLAG_ROUTED = 1, 2, 4


@pytest.fixture
def rw(new_instance):
    """An instance with the rewrite service and a texthash: transport table."""
    inst = new_instance(options=POSTFIX_ROUTING + [
                                 "myhostname=mail.example.com", "mydomain=example.com",
                                 "relay_domains=relay.example",
                                 "virtual_mailbox_domains=vmail.example",
                                 "allow_percent_hack=yes", "swap_bangpath=yes"])
    table = os.path.join(inst.dir, "transport")
    with open(table, "w") as f:
        f.write("# routing overrides\n"
                "special.example   smtp:[mx.special.example]:2525\n"
                "bounce.example    error:5.1.2 this domain is gone\n"
                ".sub.example      :[sub-gw.example]\n"
                "user@vmail.example local:\n")
    inst.append_main_cf(f"transport_maps = texthash:{table}")
    inst.append_master_cf(MASTER_LINE)
    inst.start()
    return inst


def test_rewrite_rules(rw):
    s, r = connect(rw)
    assert rewrite(s, r, "local", "user") == {"flags": "0", "address": "user@mail.example.com"}
    assert rewrite(s, r, "remote", "user") == {"flags": "0", "address": "user"}
    assert rewrite(s, r, "local", "user@example.org.") == \
        {"flags": "0", "address": "user@example.org"}
    assert rewrite(s, r, "local", "host!user")["address"] == "user@host"
    assert rewrite(s, r, "local", "user%example.org")["address"] == "user@example.org"
    assert rewrite(s, r, "local", "")["address"] == ""
    assert rewrite(s, r, "remote", "John Doe@example.org")["address"] == "John Doe@example.org"
    s.close()


def test_resolve_classes_and_transports(rw):
    s, r = connect(rw)
    got = resolve(s, r, "user@mail.example.com")
    assert got == {"flags": str(CLASS_LOCAL), "transport": "local",
                   "nexthop": "mail.example.com", "recipient": "user@mail.example.com"}
    got = resolve(s, r, "user+ext@localhost")
    assert int(got["flags"]) == CLASS_LOCAL and got["recipient"] == "user+ext@localhost"
    assert resolve(s, r, "user")["recipient"] == "user@mail.example.com"
    got = resolve(s, r, "user@relay.example")
    assert int(got["flags"]) == CLASS_RELAY and got["transport"] == "relay"
    assert got["nexthop"] == "relay.example"
    got = resolve(s, r, "other@vmail.example")
    assert int(got["flags"]) == CLASS_VIRTUAL and got["transport"] == "virtual"
    got = resolve(s, r, "user@example.org")
    assert got == {"flags": str(CLASS_DEFAULT), "transport": "smtp",
                   "nexthop": "example.org", "recipient": "user@example.org"}
    # Routed through a local domain: the remote part decides the class.
    got = resolve(s, r, "user%example.org@mail.example.com")
    assert int(got["flags"]) == CLASS_DEFAULT | FLAG_ROUTED
    assert got["recipient"] == "user@example.org"
    got = resolve(s, r, "user@[127.0.0.1]")
    assert int(got["flags"]) & CLASS_LOCAL
    got = resolve(s, r, "user@bad..example")
    assert int(got["flags"]) & FLAG_ERROR
    s.close()


def test_transport_maps(rw):
    s, r = connect(rw)
    got = resolve(s, r, "user@special.example")
    assert (got["transport"], got["nexthop"]) == ("smtp", "[mx.special.example]:2525")
    got = resolve(s, r, "user@bounce.example")
    assert (got["transport"], got["nexthop"]) == ("error", "5.1.2 this domain is gone")
    got = resolve(s, r, "user@a.sub.example")
    assert (got["transport"], got["nexthop"]) == ("smtp", "[sub-gw.example]")
    got = resolve(s, r, "user@sub.example")
    assert (got["transport"], got["nexthop"]) == ("smtp", "sub.example")
    got = resolve(s, r, "user@vmail.example")
    assert int(got["flags"]) == CLASS_VIRTUAL
    assert (got["transport"], got["nexthop"]) == ("local", "vmail.example")
    s.close()


def test_many_requests_on_one_connection(rw):
    s, r = connect(rw)
    for i in range(200):
        got = resolve(s, r, f"user{i}@example.org")
        assert got["recipient"] == f"user{i}@example.org"
    s.close()


def test_idle_client_is_dropped(rw):
    s, r = connect(rw)
    start = time.monotonic()
    with pytest.raises(EOFError):
        r.read()                        # nothing sent: the server lets go after ipc_idle (5s)
    assert time.monotonic() - start < 9
    s.close()


@pytest.mark.parametrize("garbage", [
    b"x:,",                                                         # bad netstring
    b"7:request,7:rewrite,7:address,4:user,0:,",                    # no rule
    b"7:request,7:rewrite,4:rule,5:weird,7:address,4:user,0:,",     # unknown rule
    b"7:request,6:frobit,0:,",                                      # unknown request
    b"7:request,7:resolve,6:sender,0:,7:address,1:x,5:extra,1:y,0:,",  # extra attribute
    b"7:request,7:resolve,6:sender,0:,7:address,3:a\x00b,0:,",       # NUL in address
    b"99999999:",                                                   # oversized
    b"4:rule,5:local,0:,",                                          # no request
])
def test_bad_requests_drop_the_client(rw, garbage):
    s, r = connect(rw)
    s.sendall(garbage)
    with pytest.raises(EOFError):
        r.read()
    s.close()
    rw.wait_log(r"postern/trivial-rewrite\[\d+\]: warning: bad request from client")
    # The service still answers.
    s2, r2 = connect(rw)
    assert resolve(s2, r2, "user@localhost")["transport"] == "local"
    s2.close()


def test_garbage_then_eof_does_not_crash(rw):
    s, r = connect(rw)
    s.sendall(b"\x00\xff" * 100)
    s.shutdown(socket.SHUT_WR)
    with pytest.raises(EOFError):
        r.read()
    s.close()
    s2, r2 = connect(rw)
    assert rewrite(s2, r2, "local", "a")["address"] == "a@mail.example.com"
    s2.close()
    assert "panic" not in rw.log() and "fatal" not in rw.log()


def test_long_address_is_an_error_not_a_crash(rw):
    s, r = connect(rw)
    got = resolve(s, r, "a" * 1500 + "@example.org")
    assert int(got["flags"]) & FLAG_ERROR
    got = rewrite(s, r, "local", "b" * 1500)
    assert int(got["flags"]) & FLAG_ERROR
    s.close()


def test_bad_table_is_fatal_and_logged(new_instance):
    inst = new_instance()
    inst.append_main_cf("transport_maps = texthash:/nonexistent/transport")
    inst.append_master_cf(MASTER_LINE)
    inst.start()
    path = os.path.join(inst.dir, "queue", "private", "rewrite")

    def try_connect():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(path)
            s.recv(100)
        except OSError:
            pass
        finally:
            s.close()
        return "fatal: transport_maps:" in inst.log()

    wait_for(try_connect, timeout=15, step=0.5, what="the fatal log line for the bad table")


def test_one_process_serves_many_open_connections(new_instance):
    """Clients keep their connection for their whole life (smtpd, cleanup,
    qmgr). With one process allowed, ten open connections are all answered,
    in turn, while every one of them stays open: no client waits for another
    to go idle."""
    inst = new_instance(options=POSTFIX_ROUTING)
    inst.append_master_cf("rewrite unix - - n - 1 trivial-rewrite")
    inst.start()
    conns = [connect(inst) for _ in range(10)]
    start = time.monotonic()
    for rnd in range(3):
        for i, (s, r) in enumerate(conns):
            assert resolve(s, r, f"u{i}-{rnd}@example.org")["recipient"] == f"u{i}-{rnd}@example.org"
    assert time.monotonic() - start < 3     # ipc_idle (5 s) would be the wait otherwise
    # And one of them closing does not disturb the others.
    conns[0][0].close()
    for s, r in conns[1:]:
        assert rewrite(s, r, "local", "user@example.org.")["address"] == "user@example.org"
        s.close()


def test_client_that_never_reads_its_replies_is_dropped(rw):
    """Replies pile up in the server only so far: a client that keeps sending
    requests and reads nothing is let go with a warning, and the service goes
    on for the others."""
    s, r = connect(rw)
    one = encode([("request", "resolve"), ("sender", "s@example.org"),
                  ("address", "user@example.org")])
    try:
        s.sendall(one * 30000)          # about 2 MB of requests, no reply read
    except OSError:
        pass                            # dropped while we sent
    rw.wait_log(r"trivial-rewrite\[\d+\]: warning: bad request from client: "
                r"more than \d+ bytes of replies not read")
    s.close()
    s2, r2 = connect(rw)
    assert resolve(s2, r2, "other@example.org")["recipient"] == "other@example.org"
    s2.close()
