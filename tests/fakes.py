"""Fakes for unit tests of single firmware modules under CPython."""


class FakeClock:
    """A clock that only moves when slept on (or advanced by a test)."""

    def __init__(self, start_ms=1000):
        self.now = start_ms
        self.slept = []

    def ticks_ms(self):
        return self.now

    def ticks_add(self, t, delta):
        return t + delta

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        self.slept.append(ms)
        self.now += max(0, ms)

    def breathe(self):
        pass

    def pause_ms(self, ms):
        self.sleep_ms(ms)

    def advance(self, ms):
        self.now += ms

    def time(self):
        return self.now // 1000


class FakeConn:
    """A connection that replays a scripted reply, a few bytes per read, and records
    what was written. `steps` may hold bytes or an exception to raise on that read."""

    def __init__(self, reply, chunk=7, clock=None, ms_per_read=0):
        self.steps = list(reply) if isinstance(reply, list) else [reply]
        self.chunk = chunk
        self.written = bytearray()
        self.closed = False
        self.clock = clock
        self.ms_per_read = ms_per_read

    def write(self, data, ms=None):
        self.written += bytes(data)
        return len(data)

    def readinto(self, mv, ms=None):
        if self.clock:
            self.clock.advance(self.ms_per_read)
        while self.steps:
            head = self.steps[0]
            if isinstance(head, Exception):
                self.steps.pop(0)
                raise head
            if not head:
                self.steps.pop(0)
                continue
            n = min(len(mv), self.chunk, len(head))
            mv[:n] = head[:n]
            self.steps[0] = head[n:]
            return n
        return 0

    def close(self):
        self.closed = True


class Connector:
    """connect(host, port, tls, timeout) handing out scripted FakeConns in order."""

    def __init__(self, *conns):
        self.conns = list(conns)
        self.calls = []

    def __call__(self, host, port, use_tls, timeout_s):
        self.calls.append((host, port, use_tls, timeout_s))
        if not self.conns:
            raise OSError(111, "ECONNREFUSED")
        c = self.conns.pop(0)
        if isinstance(c, Exception):
            raise c
        return c


def http_reply(status, body=b"", headers=(), chunked=False):
    head = "HTTP/1.1 %d X\r\n" % status
    for k, v in headers:
        head += "%s: %s\r\n" % (k, v)
    if chunked:
        head += "Transfer-Encoding: chunked\r\n\r\n"
        out = head.encode()
        for i in range(0, len(body), 5):
            part = body[i:i + 5]
            out += b"%x\r\n" % len(part) + part + b"\r\n"
        return out + b"0\r\n\r\n"
    head += "Content-Length: %d\r\n\r\n" % len(body)
    return head.encode() + body


class FakeUart:
    """machine.UART's shape. accept(n) says how many bytes each write takes (None = all)."""

    def __init__(self, replies=None, accept=None, rx_chunk=64):
        self.sent = bytearray()
        # request bytes -> reply bytes, or a list of replies given in turn (the last repeats)
        self.replies = dict(replies or {})
        self.rx = bytearray()
        self.accept = accept
        self.rx_chunk = rx_chunk

    def write(self, buf):
        data = bytes(buf)
        if self.accept is not None:
            n = self.accept(len(data))
            if not n:
                return None
            data = data[:n]
        self.sent += data
        for req, reply in self.replies.items():
            if data.endswith(req):
                if isinstance(reply, list):
                    reply = reply.pop(0) if len(reply) > 1 else reply[0]
                self.rx += reply
        return len(data)

    def readinto(self, buf):
        if not self.rx:
            return None
        n = min(len(buf), len(self.rx), self.rx_chunk)
        buf[:n] = self.rx[:n]
        del self.rx[:n]
        return n


class ListLog:
    """firmware.log.Log writing into a list."""

    def __new__(cls, level="debug"):
        from firmware.log import Log
        lines = []
        log = Log(lines.append, level)
        log.lines = lines
        return log


class Body:
    """A reply body as cloudprint's parsers read it: readinto in pieces of `piece` bytes
    (odd splits: a member name or an escape cut in two), or read_all."""

    def __init__(self, data, piece=7):
        self.data = bytes(data)
        self.pos = 0
        self.piece = piece

    def readinto(self, mv):
        n = min(len(mv), self.piece, len(self.data) - self.pos)
        mv[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n

    def read_all(self, limit):
        assert len(self.data) - self.pos <= limit
        out, self.pos = bytearray(self.data[self.pos:]), len(self.data)
        return out
