"""postern map: building and querying lookup tables as a postmaster does with
postmap/postalias, and a built table used by a running instance."""
import os
import subprocess

from conftest import POSTERN

ACCESS = """\
# Postfix-style access table
Spammer@Example.COM     REJECT go away
example.net             OK
friend@example.org      OK   we know them
long                    first part
    and the second part
"""


def run(*args, input=None):
    env = dict(os.environ)
    env.pop("POSTERN_CONFIG", None)
    return subprocess.run([POSTERN, *args], capture_output=True, text=True, timeout=30,
                          input=input, env=env)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def test_build_and_query_hash_table(tmp_path):
    src = write(tmp_path / "access", ACCESS)
    r = run("map", f"hash:{src}")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert os.path.exists(src + ".lmdb")
    assert [n for n in os.listdir(tmp_path) if n not in ("access", "access.lmdb")] == []

    r = run("map", "-q", "spammer@example.com", f"hash:{src}")
    assert (r.returncode, r.stdout) == (0, "REJECT go away\n")
    r = run("map", "-q", "SPAMMER@EXAMPLE.COM", f"hash:{src}")     # keys fold
    assert (r.returncode, r.stdout) == (0, "REJECT go away\n")
    r = run("map", "-q", "long", src)                                # no type: hash
    assert (r.returncode, r.stdout) == (0, "first part and the second part\n")
    r = run("map", "-q", "stranger@example.com", f"hash:{src}")
    assert (r.returncode, r.stdout) == (1, "")

    # Several keys on stdin: "key<TAB>value" for those found.
    r = run("map", "-q", "-", f"btree:{src}",
            input="example.net\nnobody\nfriend@example.org\n")
    assert r.returncode == 0
    assert r.stdout == "example.net\tOK\nfriend@example.org\tOK   we know them\n"
    r = run("map", "-q", "-", f"lmdb:{src}", input="nobody\n")
    assert (r.returncode, r.stdout) == (1, "")

    # Several tables: the first one that has the key answers.
    other = write(tmp_path / "other", "example.net REJECT from other\nonly-here yes\n")
    assert run("map", f"hash:{other}").returncode == 0
    r = run("map", "-q", "example.net", f"hash:{other}", f"hash:{src}")
    assert r.stdout == "REJECT from other\n"
    r = run("map", "-q", "friend@example.org", f"hash:{other}", f"hash:{src}")
    assert r.stdout == "OK   we know them\n"


def test_rebuild_replaces_the_table(tmp_path):
    src = write(tmp_path / "t", "a 1\nb 1\n")
    assert run("map", f"hash:{src}").returncode == 0
    write(tmp_path / "t", "a 2\n")
    assert run("map", f"hash:{src}").returncode == 0
    assert run("map", "-q", "a", f"hash:{src}").stdout == "2\n"
    assert run("map", "-q", "b", f"hash:{src}").returncode == 1


def test_warnings_and_errors(tmp_path):
    src = write(tmp_path / "dups", "a 1\nA 2\nlonely\n")
    r = run("map", f"hash:{src}")
    assert r.returncode == 0
    assert f"{src}, line 2: duplicate key \"a\" ignored" in r.stderr
    assert f"{src}, line 3: no value" in r.stderr
    assert run("map", "-q", "a", f"hash:{src}").stdout == "1\n"
    # -r: a later duplicate replaces the earlier one, silently.
    r = run("map", "-r", f"hash:{src}")
    assert "duplicate" not in r.stderr
    assert run("map", "-q", "a", f"hash:{src}").stdout == "2\n"

    # Building: a missing source, a type that is not indexed, an unknown type.
    r = run("map", f"hash:{tmp_path}/missing")
    assert r.returncode == 1
    assert f"{tmp_path}/missing: No such file or directory" in r.stderr
    r = run("map", f"texthash:{src}")
    assert r.returncode == 1 and "not indexed" in r.stderr
    r = run("map", f"nis:{src}")
    assert r.returncode == 1 and "unsupported dictionary type: nis" in r.stderr

    # Querying a table that was never built: exit 2 and how to build it.
    r = run("map", "-q", "a", f"hash:{tmp_path}/never")
    assert r.returncode == 2
    assert f"{tmp_path}/never.lmdb" in r.stderr and "postern map hash:" in r.stderr

    # Usage errors.
    assert run("map").returncode == 2
    assert run("map", "-q").returncode == 2
    assert run("map", "-z", src).returncode == 2


def test_no_fold(tmp_path):
    src = write(tmp_path / "cased", "Key Upper\n")
    assert run("map", "-f", f"hash:{src}").returncode == 0
    assert run("map", "-f", "-q", "Key", f"hash:{src}").stdout == "Upper\n"
    assert run("map", "-f", "-q", "key", f"hash:{src}").returncode == 1


def test_aliases(tmp_path):
    src = write(tmp_path / "aliases",
                "# aliases\nPostmaster: root\nroot: admin, \"|/bin/cat\"\n"
                "team: a,\n  b\nbroken line\n")
    r = run("map", "-a", f"hash:{src}")
    assert r.returncode == 0
    assert f"{src}, line 6: need \"name: value\"" in r.stderr
    assert run("map", "-q", "postmaster", f"hash:{src}").stdout == "root\n"
    assert run("map", "-q", "root", f"hash:{src}").stdout == "admin, \"|/bin/cat\"\n"
    assert run("map", "-q", "team", f"hash:{src}").stdout == "a, b\n"


def test_query_other_table_types(tmp_path):
    re_src = write(tmp_path / "re", "/^(.*)@example\\.com$/ local:$1\n/(/ broken\n")
    for t in ("regexp", "pcre"):
        r = run("map", "-q", "Joe@Example.com", f"{t}:{re_src}")
        assert (r.returncode, r.stdout) == (0, "local:Joe\n"), r.stderr
        assert f"{re_src}, line 2: bad pattern \"(\"" in r.stderr
        assert run("map", "-q", "joe@example.org", f"{t}:{re_src}").returncode == 1
    r = run("map", "-q", "root", "unix:passwd.byname")
    assert r.returncode == 0 and r.stdout.startswith("root:") and ":0:0:" in r.stdout
    r = run("map", "-q", "no-such-user-here", "unix:passwd.byname")
    assert r.returncode == 1
    th = write(tmp_path / "th", "k v\n")
    assert run("map", "-q", "k", f"texthash:{th}").stdout == "v\n"
    assert run("map", "-q", "x", "static:always").stdout == "always\n"


def test_check_recipient_access_with_hash_table(new_instance):
    inst = new_instance()
    src = write(os.path.join(inst.dir, "recipient_access"),
                "Blocked@localhost   REJECT this mailbox is closed\n"
                "alsoblocked@localhost   550 5.1.1 gone\n")
    r = run("map", f"hash:{src}")
    assert r.returncode == 0, r.stderr
    aliases = write(os.path.join(inst.dir, "aliases"), "postmaster: root\n")
    r = run("map", "-a", f"hash:{aliases}")
    assert r.returncode == 0, r.stderr
    inst.append_main_cf(f"alias_maps = hash:{aliases}\n"
                        f"smtpd_recipient_restrictions = check_recipient_access hash:{src}, "
                        "permit_mynetworks, reject_unauth_destination")
    inst.start()
    with inst.smtp() as s:
        s.ehlo("client.example")
        assert s.mail("sender@example.com")[0] == 250
        code, text = s.rcpt("blocked@localhost")
        assert code == 554, (code, text)
        assert b"this mailbox is closed" in text
        code, text = s.rcpt("alsoblocked@localhost")
        assert code == 550 and b"gone" in text, (code, text)
        # Not in the table: the table does not reject it, and it is accepted.
        code, text = s.rcpt("someone@localhost")
        assert code == 250, (code, text)
        assert b"closed" not in text
    assert "cannot open table" not in inst.log()
