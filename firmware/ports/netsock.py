# The network connector for MicroPython (ESP32 and unix port alike): a TCP socket with
# the per-operation timeout set before connect, wrapped in TLS that verifies the
# server against our CA (DER) and host name. MicroPython's ssl wrapper defaults to no
# verification, so verify_mode is set explicitly.
#
# Once connected, the socket is non-blocking behind Conn: a blocking readinto() loops
# inside MicroPython until the buffer is full, so a server dripping one byte a second
# could hold it for hours; Conn's calls return what came within the wait they are given.
import select
import socket


class Conn:
    def __init__(self, sock):
        self._sock = sock
        sock.setblocking(False)
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)

    def _wait(self, event, ms):
        self._poll.modify(self._sock, event)
        return self._poll.poll(ms)

    def readinto(self, mv, ms):
        """Bytes read (0 at the end of the stream), or None if none came within ms."""
        n = self._sock.readinto(mv)
        if n is None and self._wait(select.POLLIN, ms):
            n = self._sock.readinto(mv)
        return n

    def write(self, data, ms):
        """Bytes written, or None if the socket took none within ms."""
        n = self._sock.write(data)
        if not n and self._wait(select.POLLOUT, ms):
            n = self._sock.write(data)
        return n or None

    def close(self):
        self._sock.close()


class Connector:
    def __init__(self, ca_der):
        self._ctx = None
        if ca_der:
            import tls
            ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
            # a documented attribute (docs.micropython.org, tls) that the stubs lack
            ctx.verify_mode = tls.CERT_REQUIRED  # type: ignore[attr-defined]
            ctx.load_verify_locations(ca_der)
            self._ctx = ctx

    def __call__(self, host, port, use_tls, timeout_s):
        if use_tls and self._ctx is None:
            raise ValueError("no CA certificate configured for https")
        ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        if not ai:
            raise OSError("no address for host")
        family, kind, proto, _, addr = ai[0]
        s = socket.socket(family, kind, proto)
        try:
            s.settimeout(timeout_s)
            s.connect(addr)
            if use_tls:
                s = self._ctx.wrap_socket(s, server_hostname=host)  # the handshake, blocking
            return Conn(s)
        except Exception:
            s.close()
            raise
