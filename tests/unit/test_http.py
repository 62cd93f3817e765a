import pytest

from firmware import http as H
from firmware.wire import IO_SLICE_MS
from tests.fakes import Connector, FakeClock, FakeConn, http_reply


def client(*conns, clock=None, deadline_ms=60000):
    return H.Http(Connector(*conns), clock or FakeClock(), timeout_s=5, deadline_ms=deadline_ms)


def read_body(resp, size=3):
    out = bytearray()
    buf = bytearray(size)
    mv = memoryview(buf)
    while True:
        n = resp.readinto(mv)
        if n == 0:
            return bytes(out)
        out += buf[:n]


def test_request_bytes_on_the_wire():
    conn = FakeConn(http_reply(200, b"ok"))
    c = client(conn)
    body = '{"name": "Grüße €"}'.encode()
    resp = c.request("POST", "http://example.test:8080/a/b?x=1", [("X-A", "1")], body)
    assert resp.status == 200
    head, _, sent_body = bytes(conn.written).partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [b"POST /a/b?x=1 HTTP/1.1", b"Host: example.test:8080",
                                    b"X-A: 1", b"Content-Length: 23"]
    assert sent_body == body


def test_a_connection_read_to_its_end_serves_the_next_request_to_that_server():
    first = FakeConn([http_reply(200, b"one", [("Content-Length", "3")]),
                      http_reply(200, b"two", chunked=True)])
    other = FakeConn(http_reply(200, b"x", [("Content-Length", "1")]))
    connector = Connector(first, other)
    c = H.Http(connector, FakeClock(), timeout_s=5)
    assert read_body(c.request("GET", "http://a.test/1")) == b"one"
    assert read_body(c.request("GET", "http://a.test/2")) == b"two"
    assert len(connector.calls) == 1 and not first.closed
    assert read_body(c.request("GET", "http://b.test/3")) == b"x"  # another server
    assert first.closed and len(connector.calls) == 2


def test_the_kept_connection_is_closed_before_a_wait():
    kept = FakeConn(http_reply(200, b"ok", [("Content-Length", "2")]))
    connector = Connector(kept, FakeConn(http_reply(204)))
    c = H.Http(connector, FakeClock(), timeout_s=5)
    resp = c.request("GET", "http://a.test/1")
    assert read_body(resp) == b"ok"
    resp.close()  # read to its end: the connection is kept
    assert not kept.closed
    c.close_idle()
    assert kept.closed
    c.close_idle()  # nothing kept: nothing to do
    assert c.request("GET", "http://a.test/2").status == 204 and len(connector.calls) == 2


def test_no_reuse_after_an_unread_body_or_connection_close():
    unread = FakeConn(http_reply(200, b"abcdef", [("Content-Length", "6")]))
    told = FakeConn(http_reply(200, b"ok", [("Content-Length", "2"), ("Connection", "close")]))
    last = FakeConn(http_reply(204))
    connector = Connector(unread, told, last)
    c = H.Http(connector, FakeClock(), timeout_s=5)
    c.request("GET", "http://a.test/1").readinto(memoryview(bytearray(2)))
    assert read_body(c.request("GET", "http://a.test/2")) == b"ok"
    assert unread.closed  # its body was left half read: the connection cannot be trusted
    c.request("GET", "http://a.test/3")
    assert told.closed and len(connector.calls) == 3


def test_a_kept_connection_the_server_ended_is_retried_once_on_a_new_one():
    stale = FakeConn([http_reply(200, b"ok", [("Content-Length", "2")])])  # then EOF: closed
    fresh = FakeConn(http_reply(200, b"again", [("Content-Length", "5")]))
    connector = Connector(stale, fresh)
    c = H.Http(connector, FakeClock(), timeout_s=5)
    assert read_body(c.request("POST", "http://a.test/1", body=b"x")) == b"ok"
    assert read_body(c.request("POST", "http://a.test/2", body=b"y")) == b"again"
    assert stale.written.count(b"POST /2") == 1 and fresh.written.count(b"POST /2") == 1
    # a reply that broke off after it began is not sent twice: the server saw the request
    half = FakeConn([http_reply(200, b"ok", [("Content-Length", "2")]), b"HTTP/1.1 2"])
    c = H.Http(Connector(half, FakeConn(http_reply(204))), FakeClock(), timeout_s=5)
    read_body(c.request("POST", "http://a.test/1", body=b"x"))
    with pytest.raises(H.HttpError):
        c.request("POST", "http://a.test/2", body=b"y")


def test_default_port_is_left_out_of_host():
    conn = FakeConn(http_reply(204))
    client(conn).request("GET", "https://example.test/x")
    assert b"Host: example.test\r\n" in conn.written


def test_content_length_body_streams_in_small_reads():
    body = bytes(range(256)) * 40
    resp = client(FakeConn(http_reply(200, body), chunk=13)).request("GET", "http://h/x")
    assert read_body(resp, 64) == body


def test_chunked_body_is_decoded():
    body = b"hello chunked world, with several chunks"
    resp = client(FakeConn(http_reply(200, body, chunked=True))).request("GET", "http://h/x")
    assert read_body(resp) == body


def test_body_shorter_than_content_length_is_an_error():
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 40
    resp = client(FakeConn(raw)).request("GET", "http://h/x")
    with pytest.raises(H.HttpError, match="40 of 100"):
        read_body(resp)


def test_non_ascii_content_length_is_refused():
    raw = "HTTP/1.1 200 OK\r\nContent-Length: ١٠\r\n\r\n".encode() + b"x" * 10
    with pytest.raises(H.HttpError, match="Content-Length"):
        client(FakeConn(raw)).request("GET", "http://h/x")


def test_chunk_with_bad_size_is_an_error():
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
    resp = client(FakeConn(raw)).request("GET", "http://h/x")
    with pytest.raises(H.HttpError, match="chunk size"):
        read_body(resp)


def test_not_http_is_an_error():
    with pytest.raises(H.HttpError, match="not an HTTP reply"):
        client(FakeConn(b"SSH-2.0-OpenSSH\r\n\r\n")).request("GET", "http://h/x")


def test_header_line_longer_than_the_buffer_is_an_error():
    raw = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n"
    with pytest.raises(H.HttpError, match="longer than"):
        client(FakeConn(raw, chunk=512)).request("GET", "http://h/x")


def test_deadline_bounds_a_dripping_server():
    clock = FakeClock()
    raw = http_reply(200, b"x" * 1000)
    conn = FakeConn(raw, chunk=1, clock=clock, ms_per_read=1000)  # one byte a second
    with pytest.raises(H.HttpError, match="deadline"):
        read_body(client(conn, clock=clock, deadline_ms=30000).request("GET", "http://h/x"))
    assert clock.now <= 1000 + 30000 + 1000


def test_read_all_limits_the_size():
    resp = client(FakeConn(http_reply(200, b"x" * 100))).request("GET", "http://h/x")
    with pytest.raises(H.HttpError, match="limit"):
        resp.read_all(50)
    resp = client(FakeConn(http_reply(200, b"y" * 100, chunked=True))).request("GET", "http://h/x")
    with pytest.raises(H.HttpError, match="limit"):
        resp.read_all(50)


def test_connect_failure_and_tls_refusal_are_classified():
    with pytest.raises(H.HttpError, match="connect to h:80 failed"):
        client(OSError(111, "ECONNREFUSED")).request("GET", "http://h/x")
    with pytest.raises(H.HttpError, match="TLS to h:443 refused: The certificate is not correctly signed"):
        client(ValueError("The certificate is not correctly signed by the trusted CA")).request(
            "GET", "https://h/x")


def test_tls_refusal_on_first_read_is_classified_and_closes():
    conn = FakeConn([ValueError("certificate validity has expired")])
    with pytest.raises(H.HttpError, match="TLS to h:443 refused: certificate validity has expired"):
        client(conn).request("GET", "https://h/x")
    assert conn.closed


def test_header_injection_is_refused_before_connecting():
    connector = Connector()
    c = H.Http(connector, FakeClock())
    with pytest.raises(ValueError):
        c.request("GET", "http://h/x", [("Authorization", "Bearer a\r\nX-Evil: 1")])
    assert connector.calls == []


def test_parse_url():
    assert H.parse_url("https://a.b/c?d") == (True, "a.b", 443, "/c?d")
    assert H.parse_url("http://127.0.0.1:8080") == (False, "127.0.0.1", 8080, "/")
    for bad in ("ftp://x/", "http://:80/", "http://h:x/"):
        with pytest.raises(ValueError):
            H.parse_url(bad)


def test_urlencode_and_multipart():
    assert b"".join(H.urlencode([("a b", "c&d=é")])) == b"a%20b=c%26d%3D%C3%A9"
    assert b"".join(H.urlencode([("a", "1", None), ("b", "")])) == b"a=1&b="  # (name, value, type) too
    body = b"".join(H.multipart([("x", "1", None), ("j", "{}", "application/json")], "BB"))
    assert body == (b'--BB\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n'
                    b'--BB\r\nContent-Disposition: form-data; name="j"\r\nContent-Type: '
                    b'application/json\r\n\r\n{}\r\n--BB--\r\n')


def test_a_new_request_closes_the_previous_response():
    first = FakeConn(http_reply(200, b"a" * 50))
    c = client(first, FakeConn(http_reply(200, b"bb")))
    c.request("GET", "http://h/1")
    second = c.request("GET", "http://h/2")
    assert first.closed and read_body(second) == b"bb"


class _SilentConn(FakeConn):
    """Sends its reply head, then nothing: every read waits its full allowance in vain."""

    def __init__(self, clock):
        FakeConn.__init__(self, http_reply(200, b"x" * 100)[:-100])
        self.clock = clock
        self.waits = []

    def readinto(self, mv, ms=None):
        if self.steps and self.steps[0]:
            return FakeConn.readinto(self, mv)
        self.waits.append(ms)
        self.clock.advance(ms)
        return None


def test_a_silent_server_times_out_and_no_wait_outlasts_the_deadline():
    clock = FakeClock()
    conn = _SilentConn(clock)
    resp = client(conn, clock=clock).request("GET", "http://h/x")
    with pytest.raises(H.HttpError, match="read timed out after 5 s"):
        read_body(resp)
    # waits in slices, so the clock's idle work (the console) gets a turn between them
    assert conn.waits == [IO_SLICE_MS] * (5000 // IO_SLICE_MS)
    conn = _SilentConn(clock)
    resp = client(conn, clock=clock, deadline_ms=7000).request("GET", "http://h/x")
    clock.advance(6900)
    with pytest.raises(H.HttpError, match="deadline passed"):
        read_body(resp)
    assert conn.waits == [100]  # never waits past the deadline


def test_chunked_reply_reads_whole_into_a_bytearray_and_with_read_all():
    body = b'{"success": true, "printers": [{"id": "p1"}]}' * 7
    resp = client(FakeConn(http_reply(200, body, chunked=True), chunk=3)).request("GET", "http://h/x")
    assert bytes(resp.read_all(4096)) == body
    resp = client(FakeConn(http_reply(200, body, chunked=True))).request("GET", "http://h/x")
    out, buf = bytearray(), bytearray(64)  # a plain bytearray, larger than every chunk
    while True:
        n = resp.readinto(buf)
        if not n:
            break
        out += buf[:n]
    assert bytes(out) == body


@pytest.mark.parametrize("size_line", [b"-3", b"0x3", b"1_0", b"+3", b" 3", b"3 3", b"", b"g",
                                       b"123456789", "３".encode()])
def test_chunk_sizes_outside_rfc_9112_are_errors(size_line):
    raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size_line
           + b"\r\nabc\r\n0\r\n\r\n")
    resp = client(FakeConn(raw)).request("GET", "http://h/x")
    with pytest.raises(H.HttpError, match="chunk size"):
        resp.read_all(4096)


def test_chunk_extensions_are_allowed_and_framing_never_reaches_the_body():
    raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3;name=value\r\nabc\r\nA \t; x\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n")
    resp = client(FakeConn(raw, chunk=2)).request("GET", "http://h/x")
    assert bytes(resp.read_all(100)) == b"abc0123456789"
    bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n"
    resp = client(FakeConn(bad)).request("GET", "http://h/x")
    with pytest.raises(H.HttpError, match="framing"):
        resp.read_all(100)


def test_endless_trailers_are_an_error_not_a_kept_connection():
    raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n"
           + b"X-T: 1\r\n" * (H.MAX_HEADERS + 1) + b"\r\n")
    resp = client(FakeConn(raw)).request("GET", "http://h/x")
    with pytest.raises(H.HttpError, match="trailer"):
        resp.read_all(100)


def test_a_header_name_that_is_not_utf8_is_an_http_error_not_a_tls_rejection():
    raw = b"HTTP/1.1 200 OK\r\nX-\xff\xfe: 1\r\nContent-Length: 2\r\n\r\nok"
    resp = client(FakeConn(raw)).request("GET", "https://h/x")
    assert bytes(resp.read_all(10)) == b"ok"  # a header we do not keep is not decoded
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/\xff\r\nContent-Length: 2\r\n\r\nok"
    with pytest.raises(H.HttpError) as err:
        client(FakeConn(raw)).request("GET", "https://h/x")
    assert "TLS" not in str(err.value)


def test_a_body_goes_out_whole_through_the_line_buffer_in_as_few_writes_as_it_takes():
    class CountingConn(FakeConn):
        def __init__(self, reply, take=None):
            super().__init__(reply)
            self.writes, self.take = [], take

        def write(self, data, ms=None):
            data = bytes(data)[:self.take]  # a socket may take part of a write
            self.writes.append(len(data))
            return super().write(data)

    small = CountingConn(http_reply(200, b"{}"))
    client(small).request("POST", "http://svc/control", [("A", "b")], b"x=1").close()
    assert len(small.writes) == 1 and small.written.endswith(b"\r\n\r\nx=1")  # one write: no Nagle wait
    pieces = H.multipart([("caps", "c" * 3000, "application/json"), ("n", "v", None)], "BB")
    big = CountingConn(http_reply(200, b"{}"), take=700)
    client(big).request("POST", "http://svc/register", [], pieces).close()
    sent = bytes(big.written)
    body = b"".join(pieces)
    assert sent.endswith(b"\r\n\r\n" + body) and b"Content-Length: %d\r\n" % len(body) in sent
    assert max(big.writes) <= H.LINE_MAX and len(big.writes) <= 2 * (len(sent) // H.LINE_MAX + 1)
