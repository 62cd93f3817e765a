"""The service as one process: the store, the API, an HTTPS listener (and an HTTP one
where asked), and the embedded MQTT broker, all served from one event loop in one
thread, so idle keep-alive and push connections cost no thread each."""
import asyncio
import json
import logging
import os
import socket
import threading

from tools.printservice import broker_auth, certs, serving
from tools.printservice.accounts import Accounts
from tools.printservice.api import Api
from tools.printservice.broker_auth import BrokerRules
from tools.printservice.console import Console
from tools.printservice.logins import Logins
from tools.printservice.push import NoPush, Push
from tools.printservice.store import Store, data_dir_url, new_secret
from tools.printservice.web import make_app

OWNER = "owner@example.com"  # the first account, unless --owner-email names another
START_TIMEOUT_S = 15
MAINTENANCE_S = 30  # expiring queued jobs, purging sessions and idempotency keys
WEBHOOK_POLL_S = 0.5  # how often waiting webhook events are looked for


class Service:
    """The whole service. http_port=None: no plain HTTP listener (0: any free port)."""

    def __init__(self, data_dir, host="127.0.0.1", http_port=0, https_port=0,
                 client_id="cloudprint-agent", client_secret=None, token_duration_s=899,
                 access_ttl_s=3600, public_host=None, log=print, mqtt_url=None, mqtt_ca=None,
                 mqtt_user=None, mqtt_password=None, mqtt_dynsec=False, broker_port=None,
                 broker_tls_port=None, api_class=Api, database_url=None, owner_email=None,
                 tls_cert=None, tls_key=None, tls_ca=None, open_signup=False, broker_auth_key=None,
                 public_port=None):
        """Push: mqtt_url names an external broker (mqtt_user/mqtt_password: the service's
        account there; mqtt_dynsec: it is mosquitto's dynamic-security admin, see push.py);
        broker_port (0 = any free port) starts the embedded broker instead. database_url:
        an SQLAlchemy URL (default: SQLite in the data directory). owner_email: the first
        account, made with its key in DATA/owner.key when the service has no account yet.
        tls_cert, tls_key, tls_ca: an operator's certificate chain, its key and the root the
        printers must trust, instead of the service's own CA. open_signup: anyone who reaches
        the console may make an account (else only with an invitation). broker_auth_key: serve
        the endpoints a clustered broker asks who may connect (broker_auth.py) under this key.
        public_port: the HTTPS port printers reach, when it is not this one (replicas behind
        a load balancer: every URL the service hands out names the balancer)."""
        os.makedirs(data_dir, exist_ok=True)
        os.chmod(data_dir, 0o700)  # keys and certificates, whichever engine holds the data
        self.data_dir = data_dir
        self.log = log
        self.database_url = database_url or data_dir_url(data_dir)
        self.store = Store(self.database_url)
        self.accounts = Accounts(self.store)
        self.logins = Logins(self.store, self.accounts)
        self.open_signup = open_signup
        self.client = self._client(client_id, client_secret)
        self.owner_key = self._bootstrap_key(owner_email)
        names = [h for h in (host, public_host) if h and h not in ("0.0.0.0", "::")]
        if tls_cert or tls_key or tls_ca:
            if not (tls_cert and tls_key and tls_ca):
                raise ValueError("an operator's certificate needs all three: --tls-cert, --tls-key, --tls-ca")
            if not names:
                raise ValueError("an operator's certificate needs --public-host, the name printers use")
            self.certs = certs.operator(data_dir, tls_cert, tls_key, tls_ca, [public_host or host])
        else:
            self.certs = certs.ensure(data_dir, ["localhost", "127.0.0.1"] + names)
        self._sockets = {}
        if http_port is not None:
            self._sockets["http"] = _listen("HTTP", host, http_port)
        self._sockets["https"] = _listen("HTTPS", host, https_port)
        name = public_host or host
        urls = {scheme: "%s://%s:%d" % (scheme, name, sock.getsockname()[1])
                for scheme, sock in self._sockets.items()}
        if public_port:
            urls["https"] = "https://%s:%d" % (name, public_port)
        self.http_url = urls.get("http")
        self.https_url = urls["https"]
        self.broker = None
        if broker_port is not None:
            from tools.printservice.broker import EmbeddedBroker  # amqtt loads only when used
            mqtt_user, mqtt_password, mqtt_dynsec = "printservice-push", new_secret(24), False
            broker_port = broker_port or _free_port(host)
            for what, port in (("broker", broker_port), ("broker TLS", broker_tls_port)):
                if port:
                    _listen(what, host, port).close()  # amqtt's own error names no port
            self.broker = EmbeddedBroker(
                self.database_url, mqtt_user, mqtt_password, host, broker_port,
                broker_tls_port, self.certs["cert"], self.certs["key"])
            mqtt_url = "mqtt://%s:%d" % (host, broker_port)
            mqtt_ca = None
        # the broker address printers use (mqtt_url itself when the service reaches it the same way)
        self.mqtt_url = mqtt_url
        if broker_port is not None:
            self.mqtt_url = "mqtt://%s:%d" % (name, broker_port)
            if broker_tls_port:
                self.mqtt_url = "mqtts://%s:%d" % (name, broker_tls_port)
        self.broker_auth_key = broker_auth_key
        self._broker_rules = BrokerRules(self.store.broker_password_ok, mqtt_user, mqtt_password)
        self.push = NoPush()
        if mqtt_url:
            self.push = Push(mqtt_url, mqtt_ca, mqtt_user, mqtt_password, log=log, dynsec=mqtt_dynsec,
                             grants=self._broker_grants, presence=self._presence)
        self._apis = {scheme: api_class(self.store, url + "/cloudprint", self.client["client_id"],
                                        self.client["client_secret"], token_duration_s, access_ttl_s,
                                        log, self.push)
                      for scheme, url in urls.items()}
        self._thread = None
        self._loop = None
        self._stopping = None
        self._error = None
        self._log_handler = serving.LogTo(log)

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

    def _bootstrap_key(self, owner_email):
        """The key in DATA/owner.key. On the first start it makes the first account and that
        key; once accounts exist nothing is made behind the operator's back (None when the
        file is gone or its key revoked)."""
        path = os.path.join(self.data_dir, "owner.key")
        if os.path.exists(path):
            with open(path) as f:
                key = f.read().strip()
            if self.accounts.for_key(key):
                return key
        if self.accounts.any():
            return None
        email = self.accounts.create(owner_email or OWNER)
        _, key = self.accounts.create_key(email, "bootstrap")
        _write_private(path, key + "\n")
        return key

    def _presence(self, changes):
        self.api.set_presences(changes)

    def _broker_grants(self):
        return self.store.broker_grants()

    @property
    def api(self):
        return self._apis.get("http") or self._apis["https"]

    def set_token_duration(self, seconds):
        for api in self._apis.values():
            api.token_duration_s = seconds

    def start(self):
        server_log = logging.getLogger("uvicorn.error")
        server_log.addHandler(self._log_handler)
        server_log.propagate = False
        ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(ready),),
                                        name="service", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT_S):
            self._error = RuntimeError("the service did not start within %d s" % START_TIMEOUT_S)
        if self._error is not None:
            self.stop()
            raise self._error
        return self

    async def _serve(self, ready):
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        servers, tasks = [], []
        try:
            if self.broker is not None:
                await self.broker.start()
            limit = serving.connection_limit()
            for scheme, sock in self._sockets.items():
                tls = (self.certs["cert"], self.certs["key"]) if scheme == "https" else ()
                api = self._apis[scheme]
                app = make_app(api, Console(api, self.logins, self.open_signup),
                               broker_auth.routes(self._broker_rules, self.broker_auth_key))
                server = serving.server(app, limit, *tls)
                servers.append(server)
                tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
            while not all(s.started for s in servers):
                if any(t.done() for t in tasks):
                    raise RuntimeError("the HTTP server stopped while starting")
                await asyncio.sleep(0.01)
            tasks.append(asyncio.create_task(self._maintain()))
            tasks.append(asyncio.create_task(self._deliver()))
        except Exception as e:
            self._error = e
            self._stopping.set()
        ready.set()
        await self._stopping.wait()
        for server in servers:
            server.should_exit = True
        for t in tasks[len(servers):]:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.broker is not None:
            await self.broker.stop()

    async def _maintain(self):
        """Api.maintain every MAINTENANCE_S, in a worker thread."""
        while True:
            await asyncio.sleep(MAINTENANCE_S)
            try:
                await asyncio.to_thread(self.api.maintain)
            except Exception as e:  # the database away for a moment: the next round tries again
                self.log("maintenance failed: %s: %s" % (type(e).__name__, e))

    async def _deliver(self):
        """Webhook events, sent every WEBHOOK_POLL_S, in a worker thread."""
        while True:
            await asyncio.sleep(WEBHOOK_POLL_S)
            try:
                await asyncio.to_thread(self.api.webhooks.deliver_due)
            except Exception as e:  # the database away for a moment: the next round tries again
                self.log("webhook delivery failed: %s: %s" % (type(e).__name__, e))

    def stop(self):
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:
                pass  # the loop has just ended
        if self._thread is not None:
            self._thread.join(serving.GRACEFUL_STOP_S + 10)
        for sock in self._sockets.values():
            sock.close()
        logging.getLogger("uvicorn.error").removeHandler(self._log_handler)
        self.push.close()
        self.store.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class ListenError(OSError):
    pass


def _listen(what, host, port):
    """A listening TCP socket. Made with IPPROTO_TCP named, since asyncio sets TCP_NODELAY
    only on sockets that say so: without it each reply's head and body wait out the
    client's delayed ACK (40 ms a request)."""
    try:
        family = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(1024)
        except OSError:
            sock.close()
            raise
        return sock
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
