"""The attribute-list codec of Postern's internal protocols, for tests.

An independent implementation from docs/ipc.md, so the tests check the C
codec against the documented wire format: each attribute is a netstring name
and a netstring value; an empty name ends the message.
"""


def netstring(b):
    return str(len(b)).encode() + b":" + b + b","


def encode(attrs):
    """attrs: list of (name, value) with str/bytes/int values."""
    out = b""
    for name, value in attrs:
        if isinstance(value, int):
            value = str(value)
        if isinstance(value, str):
            value = value.encode()
        out += netstring(name.encode()) + netstring(value)
    return out + b"0:,"


class Reader:
    """Reads messages from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(4096)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def _netstring(self):
        while b":" not in self.buf:
            self._fill()
        head, _ = self.buf.split(b":", 1)
        n = int(head)
        need = len(head) + 1 + n + 1
        while len(self.buf) < need:
            self._fill()
        body = self.buf[len(head) + 1:len(head) + 1 + n]
        assert self.buf[need - 1:need] == b",", "bad netstring terminator"
        self.buf = self.buf[need:]
        return body

    def read(self):
        """One message as a dict of str -> str."""
        result = {}
        while True:
            name = self._netstring()
            if name == b"":
                return result
            result[name.decode()] = self._netstring().decode()
