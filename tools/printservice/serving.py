"""uvicorn, as the service runs it: the guards a public server needs that uvicorn lacks,
and the open-files limit that decides how many connections one process can hold."""
import logging
import resource

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_TIMEOUT_S = 10  # from the first byte of a request (or the connect) to its last header
KEEP_ALIVE_S = 60  # an idle kept-alive connection is closed after this
GRACEFUL_STOP_S = 5
RESERVED_FILES = 64  # descriptors kept for the database, the broker and the log


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with two guards.

    A client must send a request's head within HEAD_TIMEOUT_S of connecting or of its first
    byte: uvicorn waits for ever, so silent or dripping sockets would pile up until the
    process runs out of descriptors.

    A response the application could not finish (a download cut short) ends the TCP
    connection at once. A TLS close would send close_notify and wait for the peer's, but
    MicroPython's mbedTLS socket never reports close_notify as the end of the stream, so
    the printer would sit out the TLS shutdown timeout (30 s) before noticing the cut."""

    def connection_made(self, transport):
        super().connection_made(_AbortUnfinished(transport, self))
        self._head_timer = None
        self._arm_head_timer()

    def data_received(self, data):
        if self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm_head_timer()
        super().data_received(data)

    def _arm_head_timer(self):
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_overdue, self.cycle)

    def _head_overdue(self, cycle_when_armed):
        self._head_timer = None
        if self.cycle is cycle_when_armed and not self.transport.is_closing():
            self.transport.close()  # no request began since the timer was armed

    def connection_lost(self, exc):
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)


class _AbortUnfinished:
    """The connection's transport, whose close() aborts while a response is unfinished."""

    def __init__(self, transport, protocol):
        self._transport = transport
        self._protocol = protocol

    def close(self):
        cycle = self._protocol.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            self._transport.abort()
        else:
            self._transport.close()

    def __getattr__(self, name):
        return getattr(self._transport, name)


def raise_open_files_limit():
    """Raise this process's soft open-files limit to the hard limit; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        want = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft


def connection_limit():
    """How many connections this process can hold: its open-files limit, raised first."""
    return max(100, raise_open_files_limit() - RESERVED_FILES)


def server(app, max_connections, certfile=None, keyfile=None):
    """A uvicorn server for app, answering 503 past max_connections; TLS with certfile and keyfile."""
    config = uvicorn.Config(app, http=GuardedH11Protocol, lifespan="off", access_log=False,
                            log_config=None, server_header=False, date_header=True,
                            timeout_keep_alive=KEEP_ALIVE_S, limit_concurrency=max_connections,
                            timeout_graceful_shutdown=GRACEFUL_STOP_S,
                            ssl_certfile=certfile, ssl_keyfile=keyfile)
    return uvicorn.Server(config)


class LogTo(logging.Handler):
    """Sends the server's own warnings (a request it could not parse, a reply cut short)
    to the service's log."""

    def __init__(self, log):
        super().__init__(logging.WARNING)
        self._log = log

    def emit(self, record):
        self._log("server: %s" % record.getMessage())
