# A small HTTP/1.1 client of our own (see DESIGN §3 "HTTP"): the body streamed into the
# caller's buffer, chunked decoding, Content-Length enforced, and every request bounded by
# an overall deadline as well as the per-operation socket timeout the connector sets.
# A connection whose reply was read to its end is kept for the next request to the same
# server: a TLS handshake costs far more than a request (over 100 ms on the unix port,
# seconds on an ESP32). If the server closed it meanwhile, the request goes once more
# on a new connection; it cannot have been seen, as no reply byte came back.
#
# The connector is injected: connect(host, port, use_tls, timeout_s) returns a stream
# with readinto(buf) and write(buf), already TLS-verified when use_tls is true.
from micropython import const
from firmware.clock import Deadline
from firmware.wire import WireError, bounded_io

LINE_MAX = 1024
MAX_HEADERS = 64
KEPT_HEADERS = (b"content-length", b"transfer-encoding", b"content-type", b"retry-after", b"content-range",
                b"connection")
_CHUNK_SIZE_DIGITS = const(8)  # a chunk of 4 GiB or more is not one we would read
_HEX = b"0123456789abcdefABCDEF"


class HttpError(WireError):
    """Transport or protocol failure: worth retrying later."""


def parse_url(url):
    """(use_tls, host, port, target) for an http:// or https:// URL."""
    if url.startswith("https://"):
        use_tls, rest, port = True, url[8:], 443
    elif url.startswith("http://"):
        use_tls, rest, port = False, url[7:], 80
    else:
        raise ValueError("not an http(s) URL")
    i = rest.find("/")
    hostport, target = (rest, "/") if i < 0 else (rest[:i], rest[i:])
    j = hostport.rfind(":")
    host = hostport
    if j >= 0:
        host = hostport[:j]
        try:
            port = int(hostport[j + 1:])
        except ValueError:
            raise ValueError("bad port in URL")
    if not host:
        raise ValueError("no host in URL")
    return use_tls, host, port, target


_SAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def quote(text):
    """text percent-encoded, as bytes (a bytearray)."""
    out = bytearray()  # a byte per character, not a list of one-character strings
    for b in text.encode():
        if b in _SAFE:
            out.append(b)
        else:
            out.extend(b"%%%02X" % b)
    return out


def urlencode(fields):
    """A form body from (name, value, ...) fields, as a list of pieces for request()
    (never joined: the pieces fit where one block of the whole might not)."""
    pieces = []  # type: list
    for f in fields:
        pieces += (b"&" if pieces else b"", quote(f[0]), b"=", quote(f[1]))
    return pieces


def multipart(fields, boundary):
    """The body for multipart/form-data, as a list of pieces that request() sends one
    after another (never joined: a /register body is KiBs, and a fragmented heap may
    have no block that large); fields are (name, text, content_type or None)."""
    pieces = []
    for name, value, ctype in fields:
        head = "--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n" % (boundary, name)
        if ctype:
            head += "Content-Type: %s\r\n" % ctype
        pieces.append((head + "\r\n").encode())
        pieces.append(value.encode())
        pieces.append(b"\r\n")
    pieces.append(("--%s--\r\n" % boundary).encode())
    return pieces


class _Reader:
    """Buffered reads from the connection, each bounded by the deadline and by the
    longest silence allowed (the socket timeout)."""

    def __init__(self, conn, deadline, buf, timeout_ms, clock):
        self._conn = conn
        self._deadline = deadline
        self._buf = buf
        self._mv = memoryview(buf)
        self._start = 0
        self._end = 0
        self._timeout_ms = timeout_ms
        self._clock = clock
        self.got = 0

    def _recv(self, mv):
        n = bounded_io(self._conn.readinto, mv, self._deadline, self._timeout_ms, self._clock, "read",
                       HttpError)
        self.got += n
        return n

    def readline(self):
        while True:
            i = self._buf.find(b"\n", self._start, self._end)
            if i >= 0:
                line = bytes(self._mv[self._start:i])
                self._start = i + 1
                return line[:-1] if line.endswith(b"\r") else line
            if self._start > 0:
                pending = self._end - self._start
                self._mv[0:pending] = self._mv[self._start:self._end]
                self._start, self._end = 0, pending
            if self._end >= LINE_MAX:
                raise HttpError("line longer than %d bytes" % LINE_MAX)
            n = self._recv(self._mv[self._end:])
            if n == 0:
                raise HttpError("connection closed mid-header")
            self._end += n

    def readinto(self, mv):
        pending = self._end - self._start
        if pending:
            n = min(pending, len(mv))
            mv[0:n] = self._mv[self._start:self._start + n]
            self._start += n
            return n
        return self._recv(mv)


class Response:
    def __init__(self, conn, reader, status, headers, keep=None):
        self._conn = conn
        self._keep = keep  # takes the connection back once the body is read to its end
        self._reader = reader
        self.status = status
        self.headers = headers
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._left = None  # bytes left in the body (or in the current chunk)
        self._done = False
        self.received = 0
        cl = headers.get("content-length")
        if cl is not None and not self._chunked:
            if not _ascii_digits(cl):
                self.close()
                raise HttpError("bad Content-Length")
            self._left = int(cl)
            self._done = self._left == 0
        elif self._chunked:
            self._left = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def closed(self):
        return self._conn is None

    def close(self):
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._keep is not None:
            self._keep(conn)
            return
        try:
            conn.close()
        except OSError:
            pass

    def _next_chunk(self):
        if self.received:
            if self._reader.readline() != b"":
                raise HttpError("bad chunk framing")
        self._left = chunk_size(self._reader.readline())
        if self._left == 0:
            for _ in range(MAX_HEADERS):
                if self._reader.readline() == b"":
                    self._done = True
                    return
            raise HttpError("too many trailer lines")

    def readinto(self, mv):
        """Bytes read into mv, 0 at the end of the body; TruncatedBody if it stops short."""
        if self._done:
            return 0
        if self._chunked and self._left == 0:
            self._next_chunk()
            if self._done:
                return 0
        if self._left is None:
            n = self._reader.readinto(mv)
            if n == 0:
                self._done = True
            self.received += n
            return n
        if len(mv) > self._left:
            # a memoryview, so the slice is a window on the caller's buffer, not a copy
            mv = memoryview(mv)[:self._left]
        n = self._reader.readinto(mv)
        if n == 0:
            raise HttpError("body ended after %d of %d bytes" % (self.received, self.received + self._left))
        self._left -= n
        self.received += n
        if self._left == 0 and not self._chunked:
            self._done = True
        return n

    def read_all(self, limit):
        """The whole body (a bytearray: no copy of it is made); HttpError when it is
        larger than limit."""
        if self._left is not None and not self._chunked:
            if self._left > limit:
                raise HttpError("reply of %d bytes is over the %d-byte limit" % (self._left, limit))
            out = bytearray(self._left)
            mv = memoryview(out)
            got = 0
            while got < len(out):
                got += self.readinto(mv[got:])
            return out
        out = bytearray()
        chunk = bytearray(256)
        while True:
            n = self.readinto(chunk)
            if n == 0:
                return out
            if len(out) + n > limit:
                raise HttpError("reply is over the %d-byte limit" % limit)
            out.extend(memoryview(chunk)[:n])


class Http:
    def __init__(self, connect, clock, timeout_s=15, deadline_ms=120000):
        self._connect = connect
        self._clock = clock
        self.timeout_s = timeout_s
        self.deadline_ms = deadline_ms
        self._line = bytearray(LINE_MAX)  # reused by every request: one at a time
        self._last = None
        self._idle = None  # (use_tls, host, port, connection) kept alive

    def request(self, method, url, headers=(), body=None, deadline_ms=None):
        """The Response once its head is read; body: bytes, or a list of pieces (forms, multipart)."""
        use_tls, host, port, target = parse_url(url)
        for name, value in headers:
            if "\r" in value or "\n" in value:
                raise ValueError("header %s holds a line break" % name)
        deadline = Deadline(self._clock, deadline_ms or self.deadline_ms)
        if self._last is not None:
            self._last.close()  # its reader shares our line buffer
            self._last = None
        for attempt in (0, 1):
            conn, reused = self._open(use_tls, host, port)
            reader = None
            try:
                timeout_ms = self.timeout_s * 1000
                _send(conn, method, host, port, use_tls, target, headers, body,
                      _Writer(conn, self._line, deadline, timeout_ms, self._clock))
                reader = _Reader(conn, deadline, self._line, timeout_ms, self._clock)
                status = _status_line(reader.readline())
                hdrs = {}
                for _ in range(MAX_HEADERS):
                    line = reader.readline()
                    if not line:
                        break
                    i = line.find(b":")
                    if i > 0:
                        name = line[:i].strip().lower()
                        if name in KEPT_HEADERS:
                            hdrs[name.decode()] = _text(line[i + 1:])
                else:
                    raise HttpError("too many header lines")
                keep = None
                if hdrs.get("connection", "").lower() != "close" and (
                        "content-length" in hdrs or "transfer-encoding" in hdrs):
                    keep = self._keeper(use_tls, host, port)
                self._last = Response(conn, reader, status, hdrs, keep)
                return self._last
            except ValueError as e:  # a TLS verification failure surfaces on first I/O
                conn.close()
                raise HttpError("TLS to %s:%d refused: %s" % (host, port, str(e).strip()))
            except HttpError:
                conn.close()
                if reused and (reader is None or reader.got == 0) and attempt == 0:
                    continue  # the server had ended the kept connection
                raise
            except Exception:
                conn.close()
                raise

    def close_idle(self):
        """Close the kept connection before a long wait: a server soon closes it anyway,
        and an idle TLS session holds its buffers (tens of KiB of an ESP32's RAM)."""
        idle, self._idle = self._idle, None
        if idle is not None:
            idle[3].close()

    def _keeper(self, use_tls, host, port):
        """What takes a connection back, for the next request to this server."""
        def keep(conn):
            self._idle = (use_tls, host, port, conn)
        return keep

    def _open(self, use_tls, host, port):
        """(connection, reused): the kept one when it leads to the same server."""
        idle, self._idle = self._idle, None
        if idle is not None:
            if idle[0] == use_tls and idle[1] == host and idle[2] == port:
                return idle[3], True
            idle[3].close()
        try:
            return self._connect(host, port, use_tls, self.timeout_s), False
        except ValueError as e:
            raise HttpError("TLS to %s:%d refused: %s" % (host, port, str(e).strip()))
        except OSError as e:
            raise HttpError("connect to %s:%d failed: %s" % (host, port, e))


def _ascii_digits(text):
    # str.isdigit() accepts other scripts' digits on CPython; HTTP wants ASCII only.
    if not text:
        return False
    for c in text:
        if c < "0" or c > "9":
            return False
    return True


def _text(raw):
    """A header value we keep; HttpError when it is not UTF-8 (all we keep is ASCII)."""
    try:
        return raw.decode().strip()
    except UnicodeError:
        raise HttpError("header value is not UTF-8")


def chunk_size(line):
    """The size on a chunk-size line (RFC 9112 §7.1: hex digits, then optional
    extensions after ';'); HttpError for anything else: no sign, no 0x, no _."""
    end = line.find(b";")
    size = (line if end < 0 else line[:end]).rstrip(b" \t")
    if not size or len(size) > _CHUNK_SIZE_DIGITS:
        raise HttpError("bad chunk size")
    for b in size:
        if b not in _HEX:
            raise HttpError("bad chunk size")
    return int(size, 16)


def _status_line(line):
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise HttpError("not an HTTP reply")
    return int(parts[1])


def _send(conn, method, host, port, use_tls, target, headers, body, out):
    # piece by piece into the line buffer: a joined request head would be one more block
    # of a few hundred bytes, and that is what a fragmented heap lacks first
    pieces = () if body is None else [body] if isinstance(body, (bytes, bytearray)) else body
    out.text(method, " ", target, " HTTP/1.1\r\nHost: ", host)
    if port != (443 if use_tls else 80):
        out.text(":%d" % port)
    for name, value in headers:
        out.text("\r\n", name, ": ", value)
    if body is not None:
        out.text("\r\nContent-Length: %d" % sum(len(p) for p in pieces))
    out.text("\r\n\r\n")
    for piece in pieces:
        out.put(piece)
    out.flush()


class _Writer:
    """Sends what it is given through buf (the client's line buffer, idle while a request
    goes out): a small request leaves in one write, as a second small write would wait
    for the server's delayed ACK (Nagle), and a large one in buffer-sized writes."""

    def __init__(self, conn, buf, deadline, timeout_ms, clock):
        self._conn, self._buf, self._mv = conn, buf, memoryview(buf)
        self._n = 0
        self._deadline, self._timeout_ms, self._clock = deadline, timeout_ms, clock

    def text(self, *parts):
        for part in parts:
            self.put(part.encode())

    def put(self, data):
        mv = memoryview(data)
        off = 0
        while off < len(mv):
            if self._n == len(self._buf):
                self.flush()
            n = min(len(mv) - off, len(self._buf) - self._n)
            self._mv[self._n:self._n + n] = mv[off:off + n]
            self._n += n
            off += n

    def flush(self):
        off = 0
        while off < self._n:
            n = bounded_io(self._conn.write, self._mv[off:self._n], self._deadline, self._timeout_ms,
                           self._clock, "send", HttpError)
            if not n:
                raise HttpError("send made no progress")
            off += n
        self._n = 0
