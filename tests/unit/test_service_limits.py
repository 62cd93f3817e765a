"""The service's HTTP front under hostile traffic, over real sockets: limits apply before
the work they guard, and silent or slow clients are dropped."""
import json
import socket
import ssl
import time

import pytest

from tools.printservice import forms, serving
from tests.service_faults import FaultyService as Service


def connect(svc):
    host, port = svc.http_url.rsplit("/", 1)[1].split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def head_only(svc, path, length, headers=""):
    """Send a request's head declaring length body bytes and none of them; the reply."""
    with connect(svc) as s:
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s"
                   "Content-Type: application/x-www-form-urlencoded\r\n\r\n" % (path, length, headers)).encode())
        return read_reply(s)


def read_reply(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    want = int(headers.get("content-length", "0"))
    while len(body) < want:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def closed_within(s, seconds):
    """Whether the server ends the connection within seconds (EOF or reset)."""
    s.settimeout(seconds)
    try:
        while s.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_an_unknown_path_is_answered_before_its_body_is_read(svc):
    t0 = time.monotonic()
    status, headers, _ = head_only(svc, "/no/such/place", 64 * 1024 * 1024)
    assert status == 404 and headers.get("connection") == "close"
    assert time.monotonic() - t0 < 2  # nobody waited for 64 MiB that never came
    status, _, _ = head_only(svc, "/cloudprint/nosuchinterface", 64 * 1024 * 1024)
    assert status == 404


def test_a_body_over_the_limit_is_refused_from_its_declared_length(svc):
    status, headers, body = head_only(svc, "/cloudprint/register", forms.FORM_BODY_MAX + 1)
    assert status == 413 and b"at most %d bytes" % forms.FORM_BODY_MAX in body
    # a job may be larger, but only for an authenticated owner: the header decides first
    status, _, _ = head_only(svc, "/cloudprint/submit", 10 * 1024 * 1024)
    assert status == 413
    status, _, _ = head_only(svc, "/cloudprint/submit", 10 * 1024 * 1024,
                             "Authorization: Bearer %s\r\n" % "not-a-key")
    assert status == 413


def test_a_chunked_body_is_cut_off_at_the_limit(svc):
    with connect(svc) as s:
        s.sendall(b"POST /cloudprint/register HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
        chunk = b"a" * 65536
        try:
            for _ in range(forms.FORM_BODY_MAX // len(chunk) + 8):
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading once it had answered
        status, _, body = read_reply(s)
    assert status == 413


def test_too_many_form_fields_or_parts_are_refused_while_parsing(svc):
    with connect(svc) as s:
        body = "&".join("f%d=1" % i for i in range(forms.FORM_FIELDS_MAX + 1)).encode()
        s.sendall(b"POST /cloudprint/register HTTP/1.1\r\nHost: x\r\nX-CloudPrint-Proxy: t\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(body), body))
        assert read_reply(s)[0] == 413
    parts = b"".join(b"--b\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\n1\r\n" % i
                     for i in range(5000)) + b"--b--\r\n"
    t0 = time.monotonic()
    with connect(svc) as s:
        s.sendall(b"POST /cloudprint/register HTTP/1.1\r\nHost: x\r\nX-CloudPrint-Proxy: t\r\n"
                  b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: %d\r\n\r\n" % len(parts))
        try:
            s.sendall(parts)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, body = read_reply(s)
    assert status == 400 and b"Too many fields" in body
    assert time.monotonic() - t0 < 5


def test_a_client_that_sends_nothing_or_drips_its_head_is_dropped(svc, monkeypatch):
    monkeypatch.setattr(serving, "HEAD_TIMEOUT_S", 1)
    with connect(svc) as silent, connect(svc) as dripping:
        t0 = time.monotonic()
        try:
            for ch in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                dripping.sendall(bytes([ch]))  # a byte every 0.1 s: never a whole head in 1 s
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert time.monotonic() - t0 < 3
        assert closed_within(silent, 1) and closed_within(dripping, 1)
    with connect(svc) as s:  # one that asks in time is answered, and kept alive
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_reply(s)[0] == 200
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_reply(s)[0] == 200


def test_a_body_that_does_not_arrive_in_time_is_a_408(svc, monkeypatch):
    monkeypatch.setattr(forms, "BODY_DEADLINE_S", 1)
    with connect(svc) as s:
        s.sendall(b"POST /cloudprint/register HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\n\r\nname=")
        status, headers, _ = read_reply(s)
        assert status == 408 and headers.get("connection") == "close"


def test_idle_connections_do_not_stop_a_fresh_request(svc):
    idle = [connect(svc) for _ in range(300)]
    try:
        t0 = time.monotonic()
        with connect(svc) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_reply(s)[0] == 200
        assert time.monotonic() - t0 < 1
    finally:
        for s in idle:
            s.close()


def test_plain_http_listens_only_where_asked(tmp_path):
    s = Service(str(tmp_path / "svc"), http_port=None, log=lambda m: None).start()
    try:
        assert s.http_url is None and s.https_url.startswith("https://")
        ctx = ssl.create_default_context(cafile=s.certs["ca_pem"])
        host, port = s.https_url.rsplit("/", 1)[1].split(":")
        with ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10),
                             server_hostname=host) as t:
            t.sendall(b"GET /cloudprint/nothing-here HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body = read_reply(t)
        assert status == 404  # served, and not an interface of ours
    finally:
        s.stop()


def test_a_download_cut_short_over_tls_ends_the_connection_at_once(tmp_path):
    from tests.unit.test_service_api import claimed_printer
    s = Service(str(tmp_path / "svc"), log=lambda m: None).start()
    try:
        pid, tok, owner, _ = claimed_printer(s)
        access = tok["access_token"]
        job = owner.submit(pid, b"^XA" + b"x" * 100000 + b"^XZ", "application/x-zpl", "cut")
        s.faults.arm("truncate_download", keep=1000)
        ctx = ssl.create_default_context(cafile=s.certs["ca_pem"])
        host, port = s.https_url.rsplit("/", 1)[1].split(":")
        # suppress_ragged_eofs=False: a TCP end without TLS close_notify raises, which is
        # what a client must get here (MicroPython would not take close_notify as the end)
        with ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10),
                             server_hostname=host, suppress_ragged_eofs=False) as t:
            t.sendall(("GET /cloudprint/download?id=%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
                       "\r\n\r\n" % (job["id"], access)).encode())
            t0 = time.monotonic()
            data = b""
            with pytest.raises((ssl.SSLEOFError, ConnectionResetError)):
                while True:
                    chunk = t.recv(65536)
                    assert chunk, "the server sent close_notify: a TLS client may wait for its TCP end"
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200") and len(body) == 1000
            assert time.monotonic() - t0 < 2
    finally:
        s.stop()


def test_replies_are_not_held_back_by_nagle(svc):
    # asyncio sets TCP_NODELAY only on sockets made with IPPROTO_TCP named; without it
    # every reply's head and body wait out the client's delayed ACK, 40 ms a request
    for sock in svc._sockets.values():
        assert sock.proto == socket.IPPROTO_TCP
    with connect(svc) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        read_reply(s)
        t0 = time.monotonic()
        for _ in range(10):
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_reply(s)[0] == 200
        assert time.monotonic() - t0 < 0.35  # ten delayed ACKs would be 0.4 s
