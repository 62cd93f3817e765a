# What every printer driver shares: bounded UART writes with stall detection, a status
# query with a reply deadline, and one printer-state model.
#
# The UART port has machine.UART's shape: write(buf) -> n | None, readinto(buf) -> n | None.

READY = "ready"
PAPER_OUT = "paper_out"
HEAD_OPEN = "head_open"
PAUSED = "paused"
NOT_ANSWERING = "not_answering"


class PrinterError(Exception):
    pass


class PrinterStall(PrinterError):
    """The printer stopped taking bytes for longer than the stall timeout."""


class MarkCounter:
    """Counts a byte sequence in a stream of chunks, also when a chunk boundary splits it,
    without copying the chunk."""

    def __init__(self, mark):
        self._mark = mark
        self._matched = 0

    def reset(self):
        self._matched = 0

    def count(self, buf, n):
        mark = self._mark
        size = len(mark)
        found = 0
        i = 0
        m = self._matched
        while m and i < n:  # finish a match begun in the previous chunk
            if buf[i] != mark[m]:
                m = 0
                break
            m += 1
            i += 1
            if m == size:
                found += 1
                m = 0
        if m:  # the chunk ended still inside the mark
            self._matched = m
            return found
        while True:
            j = buf.find(mark, i, n)
            if j < 0:
                break
            found += 1
            i = j + size
        self._matched = 0
        for k in range(min(size - 1, n - i), 0, -1):  # a prefix of mark ending the chunk
            ok = True
            for t in range(k):
                if buf[n - k + t] != mark[t]:
                    ok = False
                    break
            if ok:
                self._matched = k
                break
        return found


class Driver:
    language = None
    content_type = None
    page_mark = None  # the bytes that mark one printed page (label end, cut)

    def __init__(self, uart, clock, stall_ms=30000, status_timeout_ms=1000):
        self._uart = uart
        self._clock = clock
        self._stall_ms = stall_ms
        self._status_timeout_ms = status_timeout_ms
        self._rx = bytearray(64)
        self._marks = MarkCounter(self.page_mark)
        self.pages = 0

    def write(self, data):
        """Send all of data (bytes or memoryview); PrinterStall if the printer stops."""
        mv = data if isinstance(data, memoryview) else memoryview(data)
        total = len(mv)
        off = 0
        clock = self._clock
        last = clock.ticks_ms()
        while off < total:
            n = self._uart.write(mv[off:] if off else mv)
            now = clock.ticks_ms()
            if n:
                off += n
                last = now
            elif clock.ticks_diff(now, last) > self._stall_ms:
                raise PrinterStall("printer took no data for %d s" % (self._stall_ms // 1000))

    def _drain_rx(self):
        for _ in range(64):
            if not self._uart.readinto(self._rx):
                return

    def _query(self, request, done):
        """Send request, collect the reply until done(reply) or the status timeout.
        The reply is None when nothing complete came back in time."""
        self._drain_rx()
        self.write(request)
        reply = b""
        end = self._clock.ticks_add(self._clock.ticks_ms(), self._status_timeout_ms)
        while self._clock.ticks_diff(end, self._clock.ticks_ms()) > 0:
            n = self._uart.readinto(self._rx)
            if n:
                reply += bytes(self._rx[:n])
                if done(reply):
                    return reply
                if len(reply) > 512:
                    return None
        return None

    # Per-language hooks
    def begin_job(self):
        self.pages = 0
        self._marks.reset()

    def feed(self, buf, n):
        """Stream buf[:n], one chunk of the job, and count what it will print."""
        self.write(memoryview(buf)[:n])
        self.pages += self._marks.count(buf, n)

    def end_job(self, complete):
        pass

    def status(self):
        raise NotImplementedError

    def claim_ticket(self, token, invite_url, complete_url):
        raise NotImplementedError


def ascii_only(text):
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
