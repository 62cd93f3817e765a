# What every printer driver shares: bounded UART writes with stall detection, software
# XON/XOFF, a demultiplexer for the receive stream, status queries with a reply
# deadline, waiting for the printer to drain a job, and one printer-state model.
#
# The UART port has machine.UART's shape: write(buf) -> n | None, readinto(buf) -> n | None.

READY = "ready"
PAPER_OUT = "paper_out"
HEAD_OPEN = "head_open"
PAUSED = "paused"
NOT_ANSWERING = "not_answering"

XON = 0x11
XOFF = 0x13
REPLY_MAX = 512
DRAIN_POLL_MS = 200
PROBE_MS = 1000  # a write blocked this long asks the printer's unsolicited status why
BREATHE_MS = 100  # a long write on a slow line still lets the console in this often


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
                 flow_window=64, fault_wait_ms=3600000, media=(0, 203)):
        self._uart = uart
        self.media = media  # (media width in mm, 0: the language's usual; dots per inch): for the CDD
        self._fault_wait_ms = fault_wait_ms
        # Told when the printer stops taking a job's bytes (stopped(state)) and when it
        # takes them again (resumed()); None outside a job: a stall is then an error.
        self.watcher = None
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
                elif not self.unsolicited(b) and len(self.reply) < REPLY_MAX:
                    self.reply.append(b)

    def unsolicited(self, b):
        """True if b belongs to an unsolicited status message (consumed here)."""
        return False

    def known_state(self):
        """The state the printer told us without being asked, None if it does not."""
        return None

    # ---- sending
    def write(self, data):
        """Send all of data (bytes or memoryview); PrinterStall if the printer stops."""
        mv = data if isinstance(data, memoryview) else memoryview(data)
        total = len(mv)
        off = 0
        clock = self._clock
        last = clock.ticks_ms()
        stopped = None  # the state reported to the watcher while the printer takes nothing
        breathed = last
        while off < total:
            if self._xonxoff:
                self.poll_rx()
            n = None
            if not self._xoff:
                if self._xonxoff:
                    n = self._uart.write(mv[off:off + self._window])
                else:
                    n = self._uart.write(mv[off:] if off else mv)
            now = clock.ticks_ms()
            if n:
                off += n
                last = now
                if clock.ticks_diff(now, breathed) >= BREATHE_MS:
                    breathed = now
                    clock.breathe()
                if stopped is not None:
                    stopped = None
                    self.watcher.resumed()
                continue
            idle = clock.ticks_diff(now, last)
            if self.watcher is None:
                if idle > self._stall_ms:
                    raise PrinterStall("printer took no data for %d s" % (self._stall_ms // 1000))
            elif idle > PROBE_MS:
                self.watcher.idle()  # a slow line must not starve the push keepalive
                # The line is blocked, so a status query cannot get through: go by what
                # the printer said unasked, and call a long silence a stall.
                state = self.known_state()
                if state is None or state == READY:
                    state = NOT_ANSWERING if idle > self._stall_ms else None
                if stopped is not None and idle > self._stall_ms + self._fault_wait_ms:
                    if stopped == NOT_ANSWERING:
                        raise PrinterStall("printer took no data for %d s" % (idle // 1000))
                    raise PrinterFault(stopped)
                if state is not None and state != stopped:
                    stopped = state
                    self.watcher.stopped(state)
            if stopped is not None:
                clock.sleep_ms(50)  # a stopped printer can take minutes: do not spin
            elif self._xoff or idle > PROBE_MS:
                clock.sleep_ms(1)

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

    def feed(self, buf, mv, n):
        """Stream buf[:n] (mv is a memoryview of buf), one chunk of the job, and count
        what it will print."""
        self.write(mv if n == len(mv) else mv[:n])
        self.pages += self._marks.count(buf, n)

    def end_job(self, complete):
        if complete:
            self.wait_drained()

    def wait_drained(self):
        """Return once the printer has printed everything sent; PrinterFault if it reports
        an error, PrinterStall if it makes no progress for the stall timeout."""
        last_left = None
        since = self._clock.ticks_ms()
        while True:
            state, left = self.progress()
            if state not in (READY, NOT_ANSWERING):
                raise PrinterFault(state)
            if state == READY and left == 0:
                return
            now = self._clock.ticks_ms()
            if left != last_left and state == READY:
                last_left, since = left, now
            elif self._clock.ticks_diff(now, since) > self._stall_ms:
                if state == NOT_ANSWERING:  # a ZPL printer in error may go silent (comm.halt)
                    raise PrinterFault(NOT_ANSWERING)
                raise PrinterStall("printer did not finish the job within %d s" % (self._stall_ms // 1000))
            self._clock.sleep_ms(DRAIN_POLL_MS)
            if self.watcher is not None:
                self.watcher.idle()

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
