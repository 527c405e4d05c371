"""error, retry and discard pseudo agents, driven over their private/ sockets.

A stand-in for qmgr (deliver_client.py) sends the requests; the nexthop of a
request is the reason text (transport_maps "error:5.1.1 text").
"""
import pytest

from deliver_client import deliver

LINES = ["Subject: x", "", "body"]


@pytest.fixture
def inst(new_instance):
    i = new_instance()
    i.append_master_cf("error unix - - n - - error\n"
                       "retry unix - - n - - error\n"
                       "discard unix - - n - - discard\n")
    i.remove_service("qmgr")        # the test stands in for qmgr
    i.start()
    return i


@pytest.mark.parametrize("service, nexthop, result, dsn, reason", [
    ("error", "5.1.1 no such user here", "bounced", "5.1.1", "no such user here"),
    ("error", "mailbox closed", "bounced", "5.0.0", "mailbox closed"),
    ("error", "", "bounced", "5.0.0", "delivery refused"),
    ("error", "4.7.1 try later", "deferred", "4.7.1", "try later"),
    ("error", "5.1 not a code", "bounced", "5.0.0", "5.1 not a code"),
    ("retry", "", "deferred", "4.0.0", "delivery temporarily suspended"),
    ("retry", "5.2.1 held", "deferred", "4.2.1", "held"),
    ("retry", "maintenance", "deferred", "4.0.0", "maintenance"),
    ("discard", "", "sent", "2.0.0", "discarded"),
    ("discard", "spam trap", "sent", "2.0.0", "spam trap"),
])
def test_pseudo_agents(inst, service, nexthop, result, dsn, reason):
    reply, qid = deliver(inst, service, "joe@example.com", ["a@example.org", "b@example.org"],
                         LINES, nexthop=nexthop)
    assert reply["status"] == "0", reply
    for i in range(2):
        assert reply[f"rcpt_{i}_result"] == result, reply
        assert reply[f"rcpt_{i}_dsn"] == dsn
        assert reply[f"rcpt_{i}_reason"] == reason
        assert reply[f"rcpt_{i}_relay"] == "none"
    program = "discard" if service == "discard" else "error"
    inst.wait_log(rf"postern/{program}\[\d+\]: {qid}: to=<b@example\.org>, relay=none, "
                  rf"delay=[\d.]+, delays=[\d./]+, dsn={dsn.replace('.', '[.]')}, "
                  rf"status={result} \({reason}\)")
