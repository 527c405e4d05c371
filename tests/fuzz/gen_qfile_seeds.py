# Generator of the qfile fuzz seeds (valid and broken files); run once from the top directory:
#     python3 tests/fuzz/gen_qfile_seeds.py
import os, sys
sys.path.insert(0, "tests/e2e")
from postern_rec import *
out = "tests/fuzz/seeds/qfile"
good = queue_file("joe@example.com", [("bob@example.com", "rfc822;bob@example.com", 6), "carol@example.com"],
                  ["Subject: hi", "From: joe", "", "body", "x" * 300], arrival=1700000000.5, fullname="Joe",
                  attrs=(("rewrite_context", "local"), ("helo_name", "h")), done=(1,),
                  extra=record("W", "1700003600") + record("R", "ext@example.com"), extra_rcpts=1,
                  line_limit=100)
seeds = {
    "good_queue": good,
    "good_minimal": queue_file("", ["a@b"], [], arrival=1),
    "good_maildrop": maildrop_file("joe", ["a@b"], ["hi"], arrival=1700000000, attrs=(("submit_uid", "0"),)),
    "truncated": good[:len(good) // 2],
    "no_end": good[:-2],
    "after_end": good + b"\0",
    "bad_version": good.replace(b"V\x011", b"V\x012", 1),
    "bad_size": queue_file("a@b", ["c@d"], ["x"], arrival=1, size=(5, 0, 1)),
    "huge_length": good[:60] + b"N\xff\xff\xff\xff\x03",
    "overlong_varint": record("V", "1") + b"C\x80\x00",
    "wrong_order": record("V", "1") + record("S", "a@b") + record("T", "1"),
    "binary_content": queue_file("a@b", ["c@d"], [b"\0\xff\x1b", b""], arrival=1),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
