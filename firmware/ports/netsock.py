# The network connector for MicroPython (ESP32 and unix port alike): a TCP socket with
# the per-operation timeout set before connect, wrapped in TLS that verifies the
# server against our CA (DER) and host name. MicroPython's ssl wrapper defaults to no
# verification, so verify_mode is set explicitly.
import socket


class Connector:
    def __init__(self, ca_der):
        self._ctx = None
        if ca_der:
            import tls
            ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
            ctx.verify_mode = tls.CERT_REQUIRED
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
                s = self._ctx.wrap_socket(s, server_hostname=host)
            return s
        except Exception:
            s.close()
            raise
