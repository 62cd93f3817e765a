# The serial console's input: sys.stdin (the USB serial REPL port on an ESP32, the
# terminal or a pipe on a host), read without blocking. Ctrl-C still reaches MicroPython
# as KeyboardInterrupt, so mpremote and the deploy tool can always interrupt the agent.
from micropython import const
import select
import sys
import time

_MAX_READ = const(128)  # bytes taken per call; the rest waits for the next one


class StdinReader:
    def __init__(self, stream=None):
        self._stream = stream or sys.stdin
        self._raw = getattr(self._stream, "buffer", self._stream)
        self._poll = select.poll()
        self._poll.register(self._stream, select.POLLIN)
        self._open = True

    def __call__(self, wait_ms):
        """Bytes typed so far (waiting up to wait_ms for the first), or None."""
        if not self._open:
            if wait_ms > 0:
                time.sleep_ms(wait_ms)
            return None
        if not self._poll.poll(wait_ms):
            return None
        out = bytearray()
        while len(out) < _MAX_READ:
            # stdin.buffer gives bytes; the stubs know only the text stream
            b = self._raw.read(1)  # type: ignore[assignment]  # type: bytes
            if not b:  # end of input (a closed pipe): nothing more will come
                self._open = False
                self._poll.unregister(self._stream)
                break
            out += b
            if not self._poll.poll(0):
                break
        return bytes(out) if out else None
