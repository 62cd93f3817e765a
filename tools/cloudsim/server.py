"""HTTP and HTTPS front of the simulated print service.

Paths: <base>/cloudprint/<interface> for the GCP interfaces (and the claim page),
<base>/oauth2/token for OAuth. GET (query string) and POST (urlencoded or multipart)
are both accepted everywhere."""
import collections
import email.parser
import email.policy
import json
import os
import socket
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tools.cloudsim import certs
from tools.cloudsim.api import Api, Reply, Request
from tools.cloudsim.faults import Faults
from tools.cloudsim.push import NoPush, Push
from tools.cloudsim.store import Store, new_secret

MAX_BODY = 64 * 1024 * 1024
OWNER = "owner@example.com"


def parse_multipart(content_type, body):
    """(params, files) from a multipart/form-data body."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    params, files = {}, {}
    if not msg.is_multipart():
        boundary = msg.get_param("boundary") or ""
        if body.strip() == b"--" + boundary.encode() + b"--":
            return params, files  # a form with no fields
        raise ValueError("not a multipart body")
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        data = part.get_payload(decode=True) or b""
        if part.get_filename() or part.get_content_type() not in ("text/plain",):
            files[name] = (data, part.get_content_type())
        else:
            params.setdefault(name, []).append(data.decode("utf-8", "replace"))
    return params, files


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cloudsim/1"
    # per socket operation, and how long a kept-alive connection may idle: a stalled or
    # silent client frees its thread
    timeout = 30

    def log_message(self, fmt, *args):  # quiet: the API logs what matters
        pass

    def _dispatch(self):
        api = self.server.api
        url = urllib.parse.urlsplit(self.path)
        params = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        files = {}
        length = self.headers.get("Content-Length")
        if length is not None:
            if not length.isdigit() or int(length) > MAX_BODY:
                reply = Reply(status=413, body=b"body too large", content_type="text/plain")
                reply.close = True  # the body is still on the wire
                return self._send(reply)
            body = self.rfile.read(int(length))
            ctype = self.headers.get("Content-Type", "")
            try:
                if ctype.startswith("multipart/form-data"):
                    p, files = parse_multipart(ctype, body)
                    for k, v in p.items():
                        params.setdefault(k, []).extend(v)
                elif body:
                    for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace"),
                                                      keep_blank_values=True).items():
                        params.setdefault(k, []).extend(v)
            except (ValueError, UnicodeError):
                return self._send(Reply(status=400, body=b"malformed body", content_type="text/plain"))
        path = url.path.rstrip("/")
        if path in ("/oauth2/token", "/cloudprint/oauth2/token"):
            interface = "token"
        elif path.startswith("/cloudprint/"):
            interface = path[len("/cloudprint/"):]
        elif path in ("", "/"):
            return self._send(Reply(body=b"cloudsim: GCP 2.0 compatible print service\n",
                                    content_type="text/plain"))
        else:
            return self._send(Reply(status=404, body=b"not found", content_type="text/plain"))
        req = Request(self.command, interface, params, files, self.headers, self.client_address[0])
        try:
            reply = api.handle(req)
        except Exception as e:  # a bug in the simulator must not look like a network fault
            api.log("internal error in /%s: %s: %s" % (interface, type(e).__name__, e))
            reply = Reply(status=500, body=b"internal error", content_type="text/plain")
        self._send(reply)

    do_GET = _dispatch
    do_POST = _dispatch

    def _send(self, reply):
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        length = reply.length if reply.stream else len(reply.body)
        self.send_header("Content-Length", str(length))
        # HTTP/1.1 keep-alive unless the client or a fault ends the connection
        close = (reply.close or reply.drip_s is not None
                 or self.headers.get("Connection", "").lower() == "close")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        for k, v in reply.headers:
            self.send_header(k, v)
        self.end_headers()
        try:
            if reply.drip_s:
                self.wfile.flush()
                for i in range(len(reply.body)):
                    self.wfile.write(reply.body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(reply.drip_s)
            elif reply.stream:
                reply.stream(self.wfile.write)
            else:
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    ssl_context = None

    def get_request(self):
        # The TLS handshake runs in the request's own thread (on first read), so a
        # slow or refusing client cannot hold up the accept loop.
        sock, addr = self.socket.accept()
        # replies go out as header and body writes: no Nagle wait for the client's delayed ACK
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        import sys
        err = sys.exc_info()[1]
        if not isinstance(err, (ssl.SSLError, ConnectionError, TimeoutError)):
            self.api.log("request from %s failed: %s: %s" % (client_address[0], type(err).__name__, err))


class Service:
    """The whole service: store, API, and an HTTP and an HTTPS listener."""

    def __init__(self, data_dir, host="127.0.0.1", http_port=0, https_port=0,
                 client_id="cloudprint-agent", client_secret=None, token_duration_s=899,
                 access_ttl_s=3600, public_host=None, log=print, mqtt_url=None, mqtt_ca=None,
                 mqtt_user=None, mqtt_password=None, mqtt_dynsec=False, broker_port=None,
                 broker_tls_port=None):
        """Push: mqtt_url names an external broker (mqtt_user/mqtt_password: the service's
        account there; mqtt_dynsec: it is mosquitto's dynamic-security admin, see push.py);
        broker_port (0 = any free port) starts the embedded broker instead."""
        os.makedirs(data_dir, exist_ok=True)
        self.data_dir = data_dir
        self.log = log
        self.store = Store(os.path.join(data_dir, "cloudsim.db"))
        self.faults = Faults()
        self.client = self._client(client_id, client_secret)
        self.owner_key = self.store.ensure_user(OWNER)
        _write_private(os.path.join(data_dir, "owner.key"), self.owner_key + "\n")
        names = ["localhost", "127.0.0.1"] + [h for h in (host, public_host) if h and h not in ("0.0.0.0", "::")]
        self.certs = certs.ensure(data_dir, names)
        self._http = _listen("HTTP", host, http_port)
        self._https = _listen("HTTPS", host, https_port)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.certs["cert"], self.certs["key"])
        self._https.ssl_context = ctx
        name = public_host or host
        self.http_url = "http://%s:%d" % (name, self._http.server_address[1])
        self.https_url = "https://%s:%d" % (name, self._https.server_address[1])
        self.broker = None
        if broker_port is not None:
            from tools.cloudsim.broker import EmbeddedBroker  # amqtt loads only when used
            mqtt_user, mqtt_password, mqtt_dynsec = "cloudsim-push", new_secret(24), False
            broker_port = broker_port or _free_port(host)
            for what, port in (("broker", broker_port), ("broker TLS", broker_tls_port)):
                if port:
                    _listen(what, host, port).server_close()  # amqtt's own error names no port
            self.broker = EmbeddedBroker(
                os.path.join(data_dir, "cloudsim.db"), mqtt_user, mqtt_password, host, broker_port,
                broker_tls_port, self.certs["cert"], self.certs["key"]).start()
            mqtt_url = "mqtt://%s:%d" % (host, broker_port)
            mqtt_ca = None
        # the broker address printers use (mqtt_url itself when the service reaches it the same way)
        self.mqtt_url = mqtt_url
        if broker_port is not None:
            self.mqtt_url = "mqtt://%s:%d" % (name, broker_port)
            if broker_tls_port:
                self.mqtt_url = "mqtts://%s:%d" % (name, broker_tls_port)
        self.push = NoPush()
        if mqtt_url:
            self.push = Push(mqtt_url, mqtt_ca, mqtt_user, mqtt_password, log=log, dynsec=mqtt_dynsec,
                             grants=self._broker_grants)
        self._apis = []
        self.seen = collections.deque(maxlen=1000)
        for srv, url in ((self._http, self.http_url), (self._https, self.https_url)):
            srv.api = Api(self.store, self.faults, url + "/cloudprint", self.client["client_id"],
                          self.client["client_secret"], token_duration_s, access_ttl_s, log, self.seen,
                          self.push)
            self._apis.append(srv.api)
        self._threads = []

    def _client(self, client_id, client_secret):
        path = os.path.join(self.data_dir, "oauth_client.json")
        if os.path.exists(path):
            with open(path) as f:
                stored = json.load(f)
            if client_secret is None and stored.get("client_id") == client_id:
                return stored
        client = {"client_id": client_id, "client_secret": client_secret or new_secret(24)}
        _write_private(path, json.dumps(client))
        return client

    def _broker_grants(self):
        return [(r["printer_id"], r["token"]) for r in self.store.q(
            "SELECT t.printer_id, t.token FROM tokens t JOIN printers p ON p.id = t.printer_id"
            " WHERE t.kind = 'mqtt' AND t.revoked = 0 AND p.deleted = 0")]

    @property
    def api(self):
        return self._apis[0]

    def set_token_duration(self, seconds):
        for api in self._apis:
            api.token_duration_s = seconds

    def start(self):
        for srv in (self._http, self._https):
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        for srv in (self._http, self._https):
            srv.shutdown()
            srv.server_close()
        self.push.close()
        if self.broker is not None:
            self.broker.stop()
        self.store.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class ListenError(OSError):
    pass


def _listen(what, host, port):
    try:
        return _Server((host, port), Handler)
    except OSError as e:
        hint = {"HTTP": "--http-port", "HTTPS": "--https-port", "broker": "--broker-port (or --mqtt URL "
                "for a broker you run)", "broker TLS": "--broker-tls-port"}[what]
        raise ListenError("%s port %d on %s: %s; choose another with %s"
                          % (what, port, host, e.strerror or e, hint))


def _free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
