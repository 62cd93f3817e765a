# Epson ESC/POS: no job framing; DLE EOT n real-time status; GS V cuts count as pages.
from firmware.printers import base

INIT = b"\x1b@"
DLE_EOT = b"\x10\x04"


def _one_status_byte(reply):
    # A DLE EOT reply has the pattern 0xx1xx10 (reference §2.3).
    for b in reply:
        if b & 0x93 == 0x12:
            return True
    return False


def status_byte(reply):
    for b in reply:
        if b & 0x93 == 0x12:
            return b
    return None


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
    page_mark = b"\x1dV"

    def _ask(self, n):
        reply = self._query(DLE_EOT + bytes((n,)), _one_status_byte)
        return None if reply is None else status_byte(reply)

    def status(self):
        printer = self._ask(1)
        if printer is None:
            return base.NOT_ANSWERING
        if not printer & 0x08:  # online
            return base.READY
        cause = self._ask(2)
        if cause is None:
            return base.NOT_ANSWERING
        if cause & 0x04:
            return base.HEAD_OPEN
        if cause & 0x20:
            return base.PAPER_OUT
        return base.PAUSED

    def claim_ticket(self, token, invite_url, complete_url):
        return (INIT + b"\x1ba\x01"
                + b"Claim this printer\n\nCode: " + base.ascii_only(token).encode() + b"\n\n"
                + base.ascii_only(invite_url).encode() + b"\n\n"
                + _qr(base.ascii_only(complete_url))
                + b"\n\n\n\x1dVB\x00")
