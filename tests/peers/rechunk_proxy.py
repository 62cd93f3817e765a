"""A reverse proxy in front of the print service that speaks HTTP through h11 (a
third-party implementation, not ours) and answers every reply with
Transfer-Encoding: chunked in small uneven chunks, as proxies with compression and
many servers do. Like nginx's sub_filter it rewrites the service's own base URL in
JSON replies, so the printer keeps talking through it.

gcp_deleted(printer_id) makes it answer as Google's service did for a printer deleted
there (reference §3.7): /fetch says 413 "no jobs" and /printer success:false, while
tokens still work."""
import json
import socket
import ssl
import urllib.parse

import h11

from tests.peers.listener import Listener

CHUNK_SIZES = (1, 7, 2, 13, 3, 64, 5)  # uneven, and many smaller than any field


class RechunkProxy(Listener):
    def __init__(self, upstream_url, cert, key):
        super().__init__()
        u = urllib.parse.urlsplit(upstream_url)
        self._upstream = (u.hostname, u.port)
        self._upstream_base = upstream_url.rstrip("/")
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.load_cert_chain(cert, key)
        self.url = "https://127.0.0.1:%d" % self.port
        self.replies = []  # (path, status, number of chunks)
        self._deleted = set()

    def gcp_deleted(self, printer_id):
        self._deleted.add(printer_id)

    def _serve(self, raw):
        try:
            raw.settimeout(30)
            conn = self._ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        server = h11.Connection(h11.SERVER)
        try:
            while not self._stop.is_set():
                request, body = _read_message(conn, server)
                if request is None:
                    return
                status, headers, reply = self._forward(request, body)
                self._answer(conn, server, request.target.decode(), status, headers, reply)
                if server.our_state is h11.MUST_CLOSE:
                    return
                server.start_next_cycle()
        except (OSError, h11.ProtocolError):
            pass
        finally:
            conn.close()

    def _forward(self, request, body):
        path = request.target.decode()
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        fake = self._gcp_deleted_reply(path, request, body, params)
        if fake is not None:
            return 200, [("Content-Type", "application/json")], fake
        up = socket.create_connection(self._upstream, 30)
        client = h11.Connection(h11.CLIENT)
        headers = [(k, v) for k, v in request.headers if k.lower() not in (b"host", b"connection")]
        headers += [(b"Host", b"%s:%d" % (self._upstream[0].encode(), self._upstream[1])),
                    (b"Connection", b"close")]
        try:
            up.sendall(client.send(h11.Request(method=request.method, target=request.target,
                                               headers=headers)))
            if body:
                up.sendall(client.send(h11.Data(data=body)))
            up.sendall(client.send(h11.EndOfMessage()))
            response, reply = _read_message(up, client)
        finally:
            up.close()
        kept = [(k, v) for k, v in response.headers
                if k.lower() not in (b"content-length", b"transfer-encoding", b"connection")]
        ctype = dict(response.headers).get(b"content-type", b"")
        if ctype.startswith(b"application/json"):
            reply = reply.replace(self._upstream_base.encode(), self.url.encode())
        return response.status_code, kept, reply

    def _gcp_deleted_reply(self, path, request, body, params):
        interface = urllib.parse.urlsplit(path).path.rsplit("/", 1)[-1]
        if interface not in ("fetch", "printer") or not self._deleted:
            return None
        text = body.decode("latin-1")
        if not any(pid in text or pid in params.get("printerid", []) for pid in self._deleted):
            return None
        if interface == "fetch":
            return json.dumps({"success": False, "errorCode": 413,
                               "message": "No print job available on specified printer."}).encode()
        return json.dumps({"success": False, "errorCode": 1001, "message": "Unknown printer."}).encode()

    def _answer(self, conn, server, path, status, headers, reply):
        conn.sendall(server.send(h11.Response(status_code=status, headers=headers + [
            (b"Transfer-Encoding", b"chunked")])))
        pos = n = 0
        while pos < len(reply):
            size = CHUNK_SIZES[n % len(CHUNK_SIZES)]
            conn.sendall(server.send(h11.Data(data=reply[pos:pos + size])))
            pos += size
            n += 1
        conn.sendall(server.send(h11.EndOfMessage()))
        self.replies.append((path, status, n))


def _read_message(sock, conn):
    """(head event, body bytes) of the next request or response; (None, b"") at EOF."""
    head, body = None, bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = sock.recv(65536)
            conn.receive_data(data)
            if not data and head is None:
                return None, b""
            continue
        if isinstance(event, (h11.Request, h11.Response)):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return head, bytes(body)
        elif isinstance(event, h11.ConnectionClosed):
            return None, b""
