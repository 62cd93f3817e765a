"""A TCP load balancer for tests: each new connection goes to the next of several
backends in turn, below TLS (the replicas share one certificate). A backend that refuses
the connection is skipped for the next, as a balancer's health check would. A connection
idle for idle_s is closed, as balancers do (here short, so a client that keeps its
connection alive between polls still moves from replica to replica)."""
import socket
import threading
import time

from tests.peers.listener import Listener

PIECE = 16384
CONNECT_TIMEOUT_S = 2


class RoundRobin(Listener):
    def __init__(self, backends=(), idle_s=0.5):
        super().__init__()
        self.idle_s = idle_s
        self.backends = list(backends)  # (host, port); may be set after the port is known
        self.served = {}  # backend -> connections it took
        self._next = 0
        self._lock = threading.Lock()

    def _upstream(self):
        with self._lock:
            order = [self.backends[(self._next + i) % len(self.backends)] for i in range(len(self.backends))]
            self._next += 1
        for backend in order:
            try:
                up = socket.create_connection(backend, CONNECT_TIMEOUT_S)
            except OSError:
                continue
            with self._lock:
                self.served[backend] = self.served.get(backend, 0) + 1
            return up
        return None

    def _serve(self, client):
        up = self._upstream()
        if up is None:
            client.close()
            return
        for s in (client, up):
            s.settimeout(0.1)
        last = [time.monotonic()]  # bytes last moved either way
        threading.Thread(target=_pipe, args=(up, client, last, self.idle_s), daemon=True).start()
        _pipe(client, up, last, self.idle_s)


def _pipe(src, dst, last, idle_s):
    try:
        while time.monotonic() - last[0] < idle_s:
            try:
                data = src.recv(PIECE)
            except socket.timeout:
                continue
            if not data:
                break
            last[0] = time.monotonic()
            dst.settimeout(None)
            dst.sendall(data)
            dst.settimeout(0.1)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
