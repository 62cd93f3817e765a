# Epson ESC/POS: no job framing; DLE EOT n real-time status; GS V cuts count as pages;
# GS r n, answered only once everything before it is processed, marks the end of a job.
# Many printers and modules answer DLE EOT but not GS r: the driver asks once, while the
# printer is ready and idle, and on those a job ends once every byte was taken and the
# status shows no error ("sent, not confirmed").
# The receive stream mixes DLE EOT replies (0xx1xx10), automatic status back messages
# (4 bytes, the first 0xx1xx00) and GS r replies (0xx0xxxx) (reference §2.3).
from firmware.printers import base

INIT = b"\x1b@"
STATUS_BACK = b"\x1da\x0e"  # GS a: send status on online/offline, error and paper changes
DLE_EOT = b"\x10\x04"
PAPER_SENSOR = b"\x1dr\x01"
GS_R = "gs_r"  # completion confirmed by a GS r reply
DLE_EOT_ONLY = "dle_eot"  # completion from the status alone: sent, not confirmed


def _is_status(b):
    return b & 0x93 == 0x12


def _has_status(reply):
    for b in reply:
        if _is_status(b):
            return True
    return False


def _has_marker(reply):
    for b in reply:
        if b & 0x90 == 0:
            return True
    return False


def status_byte(reply):
    for b in reply:
        if _is_status(b):
            return b
    return None


def state_from(printer, cause):
    """The printer state from DLE EOT 1 and (when offline) DLE EOT 2 replies."""
    if not printer & 0x08:
        return base.READY
    if cause is None:
        return base.NOT_ANSWERING
    if cause & 0x04:
        return base.HEAD_OPEN
    if cause & 0x20:
        return base.PAPER_OUT
    return base.PAUSED


def asb_state(asb):
    if asb[0] & 0x20:
        return base.HEAD_OPEN  # cover open
    if asb[2] & 0x0C:
        return base.PAPER_OUT
    if asb[0] & 0x08:
        return base.PAUSED  # offline for another reason
    return base.READY


def _qr(data):
    d = data.encode()
    n = len(d) + 3
    return (b"\x1d(k\x04\x001A2\x00"          # model 2
            b"\x1d(k\x03\x001C\x06"           # module size 6
            b"\x1d(k\x03\x001E0"              # error correction L
            + b"\x1d(k" + bytes((n & 0xFF, n >> 8)) + b"1P0" + d
            + b"\x1d(k\x03\x001Q0")           # print the symbol


class EscPosDriver(base.Driver):
    language = "escpos"
    content_type = "application/x-escpos"
    default_name = "Receipt printer"
    page_mark = b"\x1dV"

    def __init__(self, uart, clock, stall_ms=30000, status_timeout_ms=1000, xonxoff=False,
                 flow_window=64, media=(0, 203), status_back=False, completion="auto"):
        base.Driver.__init__(self, uart, clock, stall_ms, status_timeout_ms, xonxoff, flow_window, media)
        self._status_back = status_back
        self.completion = None if completion == "auto" else completion  # None: not learned yet
        self._asb_left = 0
        self._asb_seen = False
        self.asb = bytearray(4)  # the last automatic status back message

    def begin_job(self):
        base.Driver.begin_job(self)
        if self._status_back:
            self.write(STATUS_BACK)  # buffered: the printer answers once it reaches it

    def unsolicited(self, b):
        if self._asb_left:
            self.asb[4 - self._asb_left] = b
            self._asb_left -= 1
            if not self._asb_left:
                self._asb_seen = True
            return True
        if b & 0x93 == 0x10:  # the first byte of an ASB message
            self.asb[0] = b
            self._asb_left = 3
            return True
        return False

    def known_state(self):
        """The state from the last automatic status back message (reference §2.3)."""
        self.poll_rx()
        if not self._asb_seen:
            return None
        return asb_state(self.asb)

    def _ask(self, n):
        reply = self._query(DLE_EOT + bytes((n,)), _has_status)
        return None if reply is None else status_byte(reply)

    def status(self):
        printer = self._ask(1)
        if printer is None:
            return base.NOT_ANSWERING
        state = state_from(printer, self._ask(2) if printer & 0x08 else 0)
        if state == base.READY and self.completion is None:
            self._learn_completion()
        return state

    def _learn_completion(self):
        """Does this printer answer GS r? Asked while it is ready (GS r waits behind
        anything still printing, so the wait is longer than a status reply's)."""
        answered = self._query(PAPER_SENSOR, _has_marker, self._status_timeout_ms * 3) is not None
        self.completion = GS_R if answered else DLE_EOT_ONLY

    @property
    def confirms_completion(self):
        return self.completion != DLE_EOT_ONLY

    def progress(self):
        state = self.status()
        if state != base.READY:
            return state, None
        if self.completion == DLE_EOT_ONLY:
            return state, 0  # every byte was taken and the status shows no error
        # A GS r reply proves everything sent before it has been processed.
        return state, 0 if self._query(PAPER_SENSOR, _has_marker) is not None else 1

    def test_page(self, version):
        return (INIT + b"\x1ba\x01Test print\n\ncloudprint-agent " + base.ascii_only(version).encode()
                + b"\nESC/POS, printer OK\n\n\n\x1dVB\x00")

    def claim_ticket(self, token, invite_url, complete_url):
        return (INIT + b"\x1ba\x01"
                + b"Claim this printer\n\nCode: " + base.ascii_only(token).encode() + b"\n\n"
                + base.ascii_only(invite_url).encode() + b"\n\n"
                + _qr(base.ascii_only(complete_url))
                + b"\n\n\n\x1dVB\x00")
