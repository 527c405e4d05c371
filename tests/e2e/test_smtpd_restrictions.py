"""smtpd access restrictions: relay control, unlisted recipients, access tables, logging."""
import os
import re

from conftest import POSTFIX_ROUTING, read_reply
from test_smtpd_mail import CLEANUP_SERVICE, REWRITE_SERVICE, fake, session, talk  # noqa: F401

OUTSIDE = "mynetworks=192.0.2.0/24"     # so that 127.0.0.1 is not a trusted client


def table(inst, name, text):
    path = os.path.join(inst.dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def rcpt_reply(inst, rcpt, sender="a@example.org", helo="EHLO client.example"):
    s = session(inst, helo)
    r = talk(s, f"MAIL FROM:<{sender}>")
    if r.startswith("250"):
        r = talk(s, f"RCPT TO:<{rcpt}>")
    talk(s, "QUIT")
    s.close()
    return r.strip()


def test_relay_denied_outside_mynetworks(fake):
    inst, fc = fake(options=[OUTSIDE])
    assert rcpt_reply(inst, "x@remote.example") == \
        "554 5.7.1 <x@remote.example>: Relay access denied"
    inst.wait_log(r"postern/smtpd\[\d+\]: NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: "
                  r"554 5\.7\.1 <x@remote\.example>: Relay access denied; from=<a@example\.org> "
                  r"to=<x@remote\.example> proto=ESMTP helo=<client\.example>$")
    # Local mail is still welcome.
    assert rcpt_reply(inst, "bob@localhost").startswith("250")
    assert fc.messages and fc.messages[0].recipients() == []


def test_relay_allowed_inside_mynetworks(fake):
    inst, fc = fake()
    assert rcpt_reply(inst, "x@remote.example").startswith("250 2.1.5")


def test_relay_domains_accepted_from_anyone(fake):
    inst, fc = fake(options=[OUTSIDE, "relay_domains=relay.example"])
    assert rcpt_reply(inst, "x@relay.example").startswith("250")
    assert rcpt_reply(inst, "x@other.example").startswith("554 5.7.1")


def test_unlisted_local_recipient(new_instance):
    inst = new_instance(options=["recipient_delimiter=+"] + POSTFIX_ROUTING)
    users = table(inst, "users", "bob 1\nalice@localhost 1\n")
    inst.append_main_cf(f"local_recipient_maps = texthash:{users}")
    inst.append_master_cf(REWRITE_SERVICE)
    inst.append_master_cf(CLEANUP_SERVICE)
    inst.start()
    assert rcpt_reply(inst, "bob@localhost").startswith("250")
    assert rcpt_reply(inst, "bob+tag@localhost").startswith("250")
    assert rcpt_reply(inst, "alice@localhost").startswith("250")
    assert rcpt_reply(inst, "carol@localhost") == \
        "550 5.1.1 <carol@localhost>: Recipient address rejected: User unknown in local " \
        "recipient table"
    inst.wait_log(r"NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 550 5\.1\.1 "
                  r"<carol@localhost>: Recipient address rejected: User unknown in local "
                  r"recipient table; from=<a@example\.org> to=<carol@localhost> proto=ESMTP "
                  r"helo=<client\.example>$")


def test_unlisted_recipient_check_can_be_turned_off(new_instance):
    inst = new_instance(options=["smtpd_reject_unlisted_recipient=no"] + POSTFIX_ROUTING)
    users = table(inst, "users", "bob 1\n")
    inst.append_main_cf(f"local_recipient_maps = texthash:{users}")
    inst.append_master_cf(REWRITE_SERVICE)
    inst.remove_service("cleanup")
    inst.start()
    # No cleanup here: passing the checks shows as 451 4.3.0 (queue unavailable).
    assert rcpt_reply(inst, "carol@localhost").startswith("451 4.3.0 Error: queue")
    # ... unless the restriction is named explicitly.
    inst2 = new_instance(options=["smtpd_reject_unlisted_recipient=no",
                                  "smtpd_recipient_restrictions=reject_unlisted_recipient"]
                         + POSTFIX_ROUTING)
    inst2.append_main_cf(f"local_recipient_maps = texthash:{users}")
    inst2.append_master_cf(REWRITE_SERVICE)
    inst2.start()
    assert rcpt_reply(inst2, "carol@localhost").startswith("550 5.1.1")


def test_unlisted_virtual_recipient(fake):
    inst, fc = fake(options=["virtual_mailbox_domains=virt.example"])
    boxes = table(inst, "vboxes", "known@virt.example box/\n")
    inst.append_main_cf(f"virtual_mailbox_maps = texthash:{boxes}")
    inst.stop()
    inst.start()
    assert rcpt_reply(inst, "known@virt.example").startswith("250")
    assert rcpt_reply(inst, "unknown@virt.example") == \
        "550 5.1.1 <unknown@virt.example>: Recipient address rejected: User unknown in " \
        "virtual mailbox table"


def test_check_recipient_access_inline(fake):
    inst, fc = fake(options=[
        "smtpd_recipient_restrictions=check_recipient_access inline:{ blocked@localhost=REJECT, "
        "{ deferme@localhost = 450 4.2.0 come back later }, {texty@localhost = REJECT go away}, "
        "special.example=OK, dunno@localhost=DUNNO, weird@localhost=FROBNICATE }"])
    assert rcpt_reply(inst, "blocked@localhost") == \
        "554 5.7.1 <blocked@localhost>: Recipient address rejected: Access denied"
    assert rcpt_reply(inst, "deferme@localhost") == \
        "450 4.2.0 <deferme@localhost>: Recipient address rejected: come back later"
    assert rcpt_reply(inst, "texty@localhost") == \
        "554 5.7.1 <texty@localhost>: Recipient address rejected: go away"
    assert rcpt_reply(inst, "someone@localhost").startswith("250")
    assert rcpt_reply(inst, "dunno@localhost").startswith("250")
    assert rcpt_reply(inst, "weird@localhost").startswith("451 4.3.5")
    inst.wait_log(r'warning: access table inline:.*unknown action "FROBNICATE"')


def test_check_sender_access_texthash_and_parent_domains(fake):
    inst, fc = fake()
    access = table(inst, "senders", "spammer.example REJECT no spam please\n"
                                    "friend@spammer.example OK\n<> DUNNO\nnobody@ REJECT\n")
    inst.append_main_cf(f"smtpd_sender_restrictions = check_sender_access texthash:{access}")
    inst.stop()
    inst.start()
    # smtpd_delay_reject=yes: MAIL is accepted, the reject comes at RCPT.
    assert rcpt_reply(inst, "bob@localhost", sender="x@sub.spammer.example") == \
        "554 5.7.1 <x@sub.spammer.example>: Sender address rejected: no spam please"
    assert rcpt_reply(inst, "bob@localhost", sender="friend@spammer.example").startswith("250")
    assert rcpt_reply(inst, "bob@localhost", sender="nobody@anywhere.example").startswith("554")
    assert rcpt_reply(inst, "bob@localhost", sender="").startswith("250")


def test_delay_reject_off_rejects_at_mail(fake):
    inst, fc = fake(options=["smtpd_delay_reject=no",
                             "smtpd_sender_restrictions=check_sender_access "
                             "inline:{bad.example=REJECT}"])
    s = session(inst)
    assert talk(s, "MAIL FROM:<x@bad.example>").startswith(
        "554 5.7.1 <x@bad.example>: Sender address rejected: Access denied")
    assert talk(s, "MAIL FROM:<x@good.example>").startswith("250")
    s.close()
    inst.wait_log(r"NOQUEUE: reject: MAIL from localhost\[127\.0\.0\.1\]: 554 5\.7\.1")


def test_check_client_access(fake):
    inst, fc = fake(options=["smtpd_client_restrictions=check_client_access inline:{127=REJECT}"])
    assert rcpt_reply(inst, "bob@localhost") == \
        "554 5.7.1 <localhost[127.0.0.1]>: Client host rejected: Access denied"


def test_check_client_access_cidr(fake):
    inst, fc = fake()
    nets = table(inst, "nets", "127.0.0.0/8 REJECT no loopback\n")
    inst.append_main_cf(f"smtpd_client_restrictions = check_client_access cidr:{nets}")
    inst.stop()
    inst.start()
    assert rcpt_reply(inst, "bob@localhost") == \
        "554 5.7.1 <localhost[127.0.0.1]>: Client host rejected: no loopback"


def test_check_helo_access_and_fqdn_checks(fake):
    inst, fc = fake(options=[
        "smtpd_helo_restrictions=check_helo_access inline:{bad.example=REJECT}, "
        "reject_non_fqdn_helo_hostname",
        "smtpd_recipient_restrictions=reject_non_fqdn_recipient, reject_non_fqdn_sender"])
    assert rcpt_reply(inst, "bob@localhost", helo="EHLO host.bad.example") == \
        "554 5.7.1 <host.bad.example>: Helo command rejected: Access denied"
    assert rcpt_reply(inst, "bob@localhost", helo="EHLO shortname") == \
        "504 5.5.2 <shortname>: Helo command rejected: need fully-qualified hostname"
    assert rcpt_reply(inst, "bob@localhost") == \
        "504 5.5.2 <bob@localhost>: Recipient address rejected: need fully-qualified address"
    assert rcpt_reply(inst, "bob@host.localhost.example", sender="a@nodot") == \
        "504 5.5.2 <a@nodot>: Sender address rejected: need fully-qualified address"


def test_warn_if_reject_only_logs(fake):
    inst, fc = fake(options=["smtpd_recipient_restrictions=warn_if_reject reject"])
    assert rcpt_reply(inst, "bob@localhost").startswith("250")
    inst.wait_log(r"reject_warning: RCPT from localhost\[127\.0\.0\.1\]: 554 5\.7\.1 "
                  r"<bob@localhost>: Recipient address rejected: Access denied;")


def test_plain_reject_defer_permit(fake):
    inst, fc = fake(options=["smtpd_client_restrictions=permit, reject",
                             "smtpd_recipient_restrictions=defer"])
    # permit ends the client list only; defer in the recipient list still applies.
    assert rcpt_reply(inst, "bob@localhost") == \
        "450 4.7.1 <bob@localhost>: Recipient address rejected: Try again later"


def test_restriction_name_as_table_result(fake):
    inst, fc = fake(options=[
        OUTSIDE,
        "smtpd_relay_restrictions=check_recipient_access inline:{friend.example=permit}, "
        "permit_mynetworks, reject_unauth_destination"])
    assert rcpt_reply(inst, "x@friend.example").startswith("250")
    assert rcpt_reply(inst, "x@stranger.example").startswith("554 5.7.1")


def test_table_failure_is_a_temporary_error(fake):
    inst, fc = fake(options=["smtpd_recipient_restrictions=check_recipient_access "
                             "texthash:/nonexistent/table"])
    assert rcpt_reply(inst, "bob@localhost") == \
        "451 4.3.0 <bob@localhost>: Temporary lookup failure"
    inst.wait_log(r"warning: cannot open table texthash:/nonexistent/table")


def test_unknown_restriction_is_fatal(new_instance):
    inst = new_instance(options=["smtpd_recipient_restrictions=permit_mynetworks, frobnicate"])
    inst.start()
    s = inst.raw()
    s.settimeout(10)
    try:
        data = s.recv(100)
    except OSError:
        data = b""
    assert not data.startswith(b"220")
    s.close()
    inst.wait_log(r'postern/smtpd\[\d+\]: fatal: smtpd_recipient_restrictions: unknown '
                  r'restriction "frobnicate"')


def test_missing_table_argument_is_fatal(new_instance):
    inst = new_instance(options=["smtpd_recipient_restrictions=check_recipient_access"])
    inst.start()
    s = inst.raw()
    s.settimeout(10)
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()
    inst.wait_log(r"fatal: smtpd_recipient_restrictions: check_recipient_access needs a "
                  r"type:name table argument")


def test_unknown_client_hostname(fake):
    inst, fc = fake(options=["smtpd_peername_lookup=no",
                             "smtpd_client_restrictions=reject_unknown_client_hostname"])
    r = rcpt_reply(inst, "bob@localhost")
    assert r == "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.1]"
    inst.wait_log(r"connect from unknown\[127\.0\.0\.1\]")


def test_rewrite_service_down_is_a_temporary_error(new_instance):
    inst = new_instance(options=[OUTSIDE])
    inst.remove_service("rewrite")              # no trivial-rewrite in master.cf
    inst.start()
    assert rcpt_reply(inst, "x@remote.example") == \
        "451 4.3.0 <x@remote.example>: Temporary lookup failure"


def test_default_local_recipient_maps(new_instance):
    # The default local_recipient_maps is "unix:passwd.byname $alias_maps":
    # root is a system user, a made-up name is not.
    inst = new_instance(options=POSTFIX_ROUTING)
    aliases = table(inst, "aliases", "postmaster root\n")
    inst.append_main_cf(f"alias_maps = texthash:{aliases}")
    inst.append_master_cf(REWRITE_SERVICE)
    inst.append_master_cf(CLEANUP_SERVICE)
    inst.start()
    assert rcpt_reply(inst, "root@localhost").startswith("250")
    assert rcpt_reply(inst, "postmaster@localhost").startswith("250")
    assert rcpt_reply(inst, "no-such-user-xyz@localhost").startswith("550 5.1.1")
