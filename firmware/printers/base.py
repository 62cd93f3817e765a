# What every printer driver shares: bounded UART writes, software XON/XOFF, a
# demultiplexer for the receive stream, status queries with a reply deadline, a look at
# whether a job has drained, and one printer-state model. The driver only answers: it
# says what the printer took or why it takes nothing, and the job runner decides what
# to report and how long to wait (DESIGN §1.3).
#
# The UART port has machine.UART's shape: write(buf) -> n | None, readinto(buf) -> n | None.

from micropython import const
READY = "ready"
PAPER_OUT = "paper_out"
HEAD_OPEN = "head_open"
PAUSED = "paused"
NOT_ANSWERING = "not_answering"

XON = 0x11
XOFF = 0x13
_REPLY_MAX = const(512)
_PROBE_MS = const(1000)  # a write blocked this long asks the printer's unsolicited status why
_BREATHE_MS = const(100)  # a long write on a slow line still lets the console in this often


class PrinterError(Exception):
    pass


class PrinterStall(PrinterError):
    """The printer stopped taking bytes for longer than the stall timeout."""


class PrinterFault(PrinterError):
    """The printer reports a state that stops printing (paper out, head open, ...)."""

    def __init__(self, state):
        super().__init__("printer is %s" % state)
        self.state = state


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
    language = None  # type: str
    default_name = None  # type: str  # the printer's name when the settings give none
    content_type = None  # type: str
    page_mark = None  # type: bytes  # the bytes that mark one printed page (label end, cut)

    def __init__(self, uart, clock, stall_ms=30000, status_timeout_ms=1000, xonxoff=False,
                 flow_window=64, media=(0, 203)):
        self._uart = uart
        self.media = media  # (media width in mm, 0: the language's usual; dots per inch): for the CDD
        self._window = flow_window  # with XON/XOFF, the most bytes in flight after an XOFF
        self._clock = clock
        self._stall_ms = stall_ms
        self._status_timeout_ms = status_timeout_ms
        self._xonxoff = xonxoff
        self._xoff = False
        self._rx = bytearray(64)
        self.reply = bytearray()  # reply bytes, with flow control and unsolicited status taken out
        self._marks = MarkCounter(self.page_mark)
        self.pages = 0
        self._left = None  # while a job drains: what the printer had left at the last look
        self._since = 0  # ... and since when

    @property
    def confirms_completion(self):
        """The printer says when it has printed everything (not just taken the bytes)."""
        return True

    # ---- the receive stream
    def poll_rx(self):
        """Take what the printer sent: flow control, unsolicited status, replies."""
        for _ in range(16):
            n = self._uart.readinto(self._rx)
            if not n:
                return
            for i in range(n):
                b = self._rx[i]
                if b == XOFF:
                    self._xoff = True
                elif b == XON:
                    self._xoff = False
                elif not self.unsolicited(b) and len(self.reply) < _REPLY_MAX:
                    self.reply.append(b)

    def unsolicited(self, b):
        """True if b belongs to an unsolicited status message (consumed here)."""
        return False

    def known_state(self):
        """The state the printer told us without being asked, None if it does not."""
        return None

    # ---- sending
    def send(self, mv, wait_ms=0):
        """Hand the printer what it takes of mv (a memoryview) within about wait_ms: the
        count, 0 when it took nothing."""
        clock = self._clock
        end = clock.ticks_add(clock.ticks_ms(), wait_ms)
        while True:
            if self._xonxoff:
                self.poll_rx()
            if not self._xoff:
                n = self._uart.write(mv[:self._window] if self._xonxoff else mv)
                if n:
                    return n
            if clock.ticks_diff(end, clock.ticks_ms()) <= 0:
                return 0
            clock.sleep_ms(1)

    def blocked(self, idle_ms):
        """Why the printer has taken nothing for idle_ms, as far as it said unasked (a
        blocked line lets no status query through): its state, NOT_ANSWERING after the
        stall timeout, or None while it is too early to say."""
        if idle_ms <= _PROBE_MS:
            return None
        state = self.known_state()
        if state is None or state == READY:
            return NOT_ANSWERING if idle_ms > self._stall_ms else None
        return state

    def write(self, data):
        """Send all of data (bytes or memoryview) outside a job (queries, tickets, test
        pages); PrinterStall when the printer takes nothing for the stall timeout."""
        mv = data if isinstance(data, memoryview) else memoryview(data)
        clock = self._clock
        off = 0
        last = breathed = clock.ticks_ms()
        while off < len(mv):
            n = self.send(mv[off:] if off else mv, _PROBE_MS)
            now = clock.ticks_ms()
            if n:
                off += n
                last = now
            elif clock.ticks_diff(now, last) > self._stall_ms:
                raise PrinterStall("printer took no data for %d s" % (self._stall_ms // 1000))
            if clock.ticks_diff(now, breathed) >= _BREATHE_MS:
                breathed = now
                clock.breathe()

    def _query(self, request, done, timeout_ms=0):
        """Send request; the reply once done(reply) says it is complete, None on timeout."""
        self.poll_rx()
        self.reply = bytearray()
        self.write(request)
        end = self._clock.ticks_add(self._clock.ticks_ms(), timeout_ms or self._status_timeout_ms)
        while self._clock.ticks_diff(end, self._clock.ticks_ms()) > 0:
            self.poll_rx()
            if done(self.reply):
                return bytes(self.reply)
            self._clock.sleep_ms(2)
        return None

    # ---- per job
    def begin_job(self):
        self.pages = 0
        self._marks.reset()

    def count(self, buf, n):
        """buf[:n] went to the printer: count the pages it will print."""
        self.pages += self._marks.count(buf, n)

    def cut_off(self):
        """The job stops part-way: keep its tail from spoiling the next job."""

    def begin_drain(self):
        self._left = None
        self._since = self._clock.ticks_ms()

    def drained(self):
        """One look at the end of a job: True once the printer has printed everything
        sent; PrinterFault if it reports an error, PrinterStall if it made no progress
        for the stall timeout."""
        state, left = self.progress()
        if state not in (READY, NOT_ANSWERING):
            raise PrinterFault(state)
        if state == READY and left == 0:
            return True
        now = self._clock.ticks_ms()
        if left != self._left and state == READY:
            self._left, self._since = left, now
        elif self._clock.ticks_diff(now, self._since) > self._stall_ms:
            if state == NOT_ANSWERING:  # a ZPL printer in error may go silent (comm.halt)
                raise PrinterFault(NOT_ANSWERING)
            raise PrinterStall("printer did not finish the job within %d s" % (self._stall_ms // 1000))
        return False

    # Per-language
    def status(self):
        raise NotImplementedError

    def progress(self):
        """(state, how much is still to print: 0 when done)."""
        raise NotImplementedError

    def claim_ticket(self, token, invite_url, complete_url):
        raise NotImplementedError


def ascii_only(text):
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
