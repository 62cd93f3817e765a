"""Simulated printers: what a ZPL or ESC/POS printer does with the bytes it receives
(reference: printer-wire-protocols.md §4).

Two paths, as on the real printers: real-time commands (ZPL ~HS ~HQES ~JA ~JX, ESC/POS
DLE EOT n) act on arrival wherever they appear; everything else enters a finite receive
buffer that a print engine drains at print speed, stopping while the printer is in an
error state. Flow control is XON/XOFF (sent on the reply stream) or "hardware" (the
transport stops reading: RTS/CTS on a serial line, TCP back-pressure on port 9100).
Bytes that arrive while the buffer is full are silently discarded, as on a real printer.

Records, in record_dir: received.bin (every byte that arrived), data.bin (the print data
the buffer accepted), printed/NNNN.<lang> (each label or receipt the engine printed)."""
import os
import threading
import time

XON, XOFF = 0x11, 0x13
CUT_WITH_FEED = (65, 66, 97, 98, 103, 104)  # GS V m n forms
FAULTS = ("paper_out", "head_open", "paused")


class Printer:
    language = None
    realtime_prefix = None
    realtime = ()  # (command bytes, total length)

    def __init__(self, record_dir, buffer_size=65536, flow="hardware", busy_free=128, ready_free=1024,
                 print_rate=None, comm_halt=False):
        os.makedirs(os.path.join(record_dir, "printed"), exist_ok=True)
        self.record_dir = record_dir
        self.lock = threading.RLock()
        self.buffer_size = buffer_size
        self.flow = flow  # "hardware", "xonxoff" or "none"
        self.busy_free = busy_free
        self.ready_free = ready_free
        self.print_rate = print_rate  # bytes per second the engine prints; None = at once
        self.comm_halt = comm_halt  # ZPL comm.halt: no RX and no replies while in error
        self._received = open(os.path.join(record_dir, "received.bin"), "ab")
        self._data = open(os.path.join(record_dir, "data.bin"), "ab")
        self._pending = b""
        self.buffer = bytearray()
        self.faults = set()
        self._armed = []  # (data bytes received, fault)
        self.data_bytes = 0
        self.lost = 0  # bytes discarded because the buffer was full
        self.busy = False
        self.outbox = bytearray()  # unsolicited bytes for the host (XON/XOFF, ASB)
        self.printed = []  # every label or receipt, as bytes
        self._credit = 0.0
        self._last = time.monotonic()
        self.watchers = []  # called with (print data, monotonic time) as it arrives: benchmarks
        self.first_data_at = None  # when print data first and last arrived (monotonic)
        self.last_data_at = None

    # ---- what the host sees
    @property
    def pages(self):
        return len(self.printed)

    def halted(self):
        return self.comm_halt and bool(self.faults)

    def can_receive(self):
        """False while the printer holds the line: hardware flow control or comm.halt."""
        with self.lock:
            return not self.halted() and not (self.flow == "hardware" and self.busy)

    def window(self, most):
        """How many bytes to read off the line now: with hardware flow control the sender
        stops when told, so never more than the buffer can take."""
        with self.lock:
            if self.flow == "hardware":
                return min(most, self.buffer_size - len(self.buffer))
            return most

    def take_outbox(self):
        with self.lock:
            out, self.outbox = bytes(self.outbox), bytearray()
            return out

    def received(self):
        with open(os.path.join(self.record_dir, "received.bin"), "rb") as f:
            return f.read()

    def data(self):
        with open(os.path.join(self.record_dir, "data.bin"), "rb") as f:
            return f.read()

    def close(self):
        with self.lock:
            self._received.close()
            self._data.close()

    # ---- faults
    def fault(self, kind, after_bytes=None):
        """Raise a fault now, or once after_bytes more print-data bytes have arrived."""
        if kind not in FAULTS:
            raise ValueError("unknown fault %r (known: %s)" % (kind, ", ".join(FAULTS)))
        with self.lock:
            if after_bytes is None:
                self._set_fault(kind, True)
            else:
                self._armed.append((self.data_bytes + after_bytes, kind))

    def clear(self, kind=None):
        """Clear one fault (or all, and those armed for later: paper reloaded, head closed,
        resumed)."""
        with self.lock:
            if kind is None:
                self._armed = []
            for k in list(self.faults):
                if kind is None or k == kind:
                    self._set_fault(k, False)

    def _set_fault(self, kind, on):
        before = set(self.faults)
        (self.faults.add if on else self.faults.discard)(kind)
        if self.faults != before:
            self.status_changed()

    def status_changed(self):
        pass

    # ---- the receive path
    def feed(self, chunk):
        """Take bytes that crossed the line; the reply bytes to send back."""
        with self.lock:
            self._received.write(chunk)
            self._received.flush()
            data, replies = self._split(self._pending + chunk)
            if data:
                self._accept(data)
            return replies + self.take_outbox()

    def _accept(self, data):
        free = self.buffer_size - len(self.buffer)
        kept = data[:max(0, free)]
        self.lost += len(data) - len(kept)
        if kept:
            self.buffer += kept
            self._data.write(kept)
            self._data.flush()
        self.data_bytes += len(data)
        now = time.monotonic()
        self.first_data_at = self.first_data_at or now
        self.last_data_at = now
        for watch in self.watchers:
            watch(data, now)
        for armed in list(self._armed):
            if self.data_bytes >= armed[0]:
                self._armed.remove(armed)
                self._set_fault(armed[1], True)
        self._update_busy()

    def _update_busy(self):
        free = self.buffer_size - len(self.buffer)
        if not self.busy and free <= self.busy_free:
            self.busy = True
            if self.flow == "xonxoff":
                self.outbox.append(XOFF)
        elif self.busy and free >= self.ready_free:
            self.busy = False
            if self.flow == "xonxoff":
                self.outbox.append(XON)

    def _split(self, buf):
        """(print data, replies); a real-time command cut by the end of buf waits."""
        out = bytearray()
        replies = bytearray()
        i = 0
        prefix = self.realtime_prefix
        while True:
            j = buf.find(prefix, i)
            if j < 0:
                out += buf[i:]
                self._pending = b""
                return bytes(out), bytes(replies)
            out += buf[i:j]
            rest = buf[j:]
            for cmd, size in self.realtime:
                if rest[:len(cmd)] == cmd[:len(rest)] and len(rest) < size:
                    self._pending = bytes(rest)  # the rest of the command is on its way
                    return bytes(out), bytes(replies)
                if rest[:len(cmd)] == cmd:
                    if not self.halted():
                        replies += self.run_realtime(bytes(rest[:size]))
                    i = j + size
                    break
            else:
                out += rest[:1]
                i = j + 1

    # ---- the print engine
    def engine_step(self, now=None):
        """Print what print speed allows since the last step; stopped while in error."""
        with self.lock:
            now = time.monotonic() if now is None else now
            elapsed, self._last = max(0.0, now - self._last), now
            if self.faults or not self.buffer:
                self._credit = 0.0
                return
            if self.print_rate is None:
                n = len(self.buffer)
            else:
                self._credit = min(self._credit + elapsed * self.print_rate, float(self.buffer_size))
                n = min(int(self._credit), len(self.buffer))
                self._credit -= n
            if n:
                self.process(bytes(self.buffer[:n]))
                del self.buffer[:n]
                self._update_busy()

    def finish(self, document):
        self.printed.append(document)
        path = os.path.join(self.record_dir, "printed", "%04d.%s" % (len(self.printed), self.language))
        with open(path, "wb") as f:
            f.write(document)


class ZplPrinter(Printer):
    language = "zpl"
    page_mark = b"^XZ"
    realtime_prefix = b"~"
    realtime = ((b"~HQES", 5), (b"~HS", 3), (b"~JA", 3), (b"~JX", 3))

    def __init__(self, *args, **kwargs):
        Printer.__init__(self, *args, **kwargs)
        self._format = bytearray()  # the format the engine is reading
        self._in_format = False
        self._carry = b""  # a "^" or "^X" that may begin the next format

    def process(self, data):
        data = self._carry + data
        self._carry = b""
        pos = 0
        while pos < len(data):
            if not self._in_format:
                start = data.find(b"^XA", pos)
                if start < 0:  # bytes outside a format are ignored; keep a possible "^X"
                    self._carry = data[-2:] if data.endswith((b"^", b"^X")) else b""
                    return
                self._in_format = True
                self._format = bytearray(b"^XA")
                pos = start + 3
                continue
            seen = len(self._format)
            self._format += data[pos:]
            end = self._format.find(b"^XZ", max(0, seen - 2))  # ^XZ may straddle two steps
            if end < 0:
                return
            pos += end + 3 - seen
            del self._format[end + 3:]
            self.finish(bytes(self._format))
            self._in_format = False

    def formats_in_buffer(self):
        return self.buffer.count(b"^XZ")

    def partial_format(self):
        tail = self.buffer[self.buffer.rfind(b"^XZ") + 1:] if b"^XZ" in self.buffer else self.buffer
        return self._in_format or b"^XA" in tail

    def run_realtime(self, cmd):
        if cmd == b"~HS":
            return self.host_status()
        if cmd == b"~HQES":
            return self.extended_status()
        if cmd == b"~JA":  # cancel all: everything received before it
            self.buffer = bytearray()
            self._in_format = False
            self._update_busy()
        elif cmd == b"~JX":  # cancel the partially received format
            cut = self.buffer.rfind(b"^XA")
            if cut >= 0 and self.buffer.find(b"^XZ", cut) < 0:
                del self.buffer[cut:]
            elif cut < 0:
                self._in_format = False
            self._update_busy()
        return b""

    def host_status(self):
        f = self.faults
        one = "030,%d,%d,1225,%03d,%d,0,%d,000,0,0,0" % (
            "paper_out" in f, "paused" in f, min(999, self.formats_in_buffer()),
            self.busy, self.partial_format())
        two = "001,0,%d,0,0,2,6,0,00000000,1,000" % ("head_open" in f)
        return b"".join(b"\x02" + s.encode() + b"\x03\r\n" for s in (one, two, "1234,0"))

    def extended_status(self):
        mask = (("paper_out" in self.faults) * 0x1 | ("head_open" in self.faults) * 0x4
                | ("paused" in self.faults) * 0x10000)
        pad = " " * 10
        return ("\x02\r\n\r\n  PRINTER STATUS%s\r\n   ERRORS:         %d 00000000 %08X%s\r\n"
                "   WARNINGS:       0 00000000 00000000%s\r\n\x03" % (pad, bool(mask), mask, pad, pad)).encode()


class EscPosPrinter(Printer):
    language = "escpos"
    page_mark = b"\x1dV"
    realtime_prefix = b"\x10"
    realtime = ((b"\x10\x04", 3),)

    def __init__(self, *args, gs_r=True, **kwargs):
        Printer.__init__(self, *args, **kwargs)
        self.gs_r = gs_r  # False: a printer that answers DLE EOT but ignores GS r
        self._receipt = bytearray()
        self._tail = b""  # an unfinished command split across engine steps
        self.asb = 0  # GS a n mask; 0 = automatic status back off

    def process(self, data):
        data = self._tail + data
        self._tail = b""
        pos = 0
        while True:
            gs = data.find(b"\x1d", pos)
            if gs < 0:
                self._receipt += data[pos:]
                return
            size = 3
            if len(data) - gs >= 3 and data[gs + 1] == 0x56 and data[gs + 2] in CUT_WITH_FEED:
                size = 4
            elif len(data) - gs >= 3 and data[gs + 1] == 0x76 and data[gs + 2] == 0x30:  # GS v 0: raster
                size = 8 if len(data) - gs < 8 else 8 + (data[gs + 4] | data[gs + 5] << 8) * (
                    data[gs + 6] | data[gs + 7] << 8)  # its picture is data, whatever its bytes
            if len(data) - gs < size:  # the command's parameters are not here yet
                self._receipt += data[pos:gs]
                self._tail = data[gs:]
                return
            cmd, param = data[gs + 1], data[gs + 2]
            if cmd == 0x56:  # GS V: cut
                self._receipt += data[pos:gs + size]
                self.finish(bytes(self._receipt))
                self._receipt = bytearray()
            elif cmd == 0x72:  # GS r n: answered in order, once processed
                self._receipt += data[pos:gs]
                if self.gs_r:
                    self.outbox.append(0x0C if "paper_out" in self.faults else 0x00)
            elif cmd == 0x61:  # GS a n: automatic status back
                self._receipt += data[pos:gs]
                self.asb = param
                if self.asb:
                    self.outbox += self.asb_bytes()
            elif cmd == 0x76 and param == 0x30:
                self._receipt += data[pos:gs + size]
            else:
                self._receipt += data[pos:gs + 1]
                size = 1
            pos = gs + size

    def status_changed(self):
        if self.asb:
            self.outbox += self.asb_bytes()

    def offline(self):
        return bool(self.faults)

    def asb_bytes(self):
        f = self.faults
        one = 0x10 | (0x08 if self.offline() else 0) | (0x20 if "head_open" in f else 0)
        three = 0x0C if "paper_out" in f else 0
        return bytes((one, 0x00, three, 0x00))

    def run_realtime(self, cmd):
        n = cmd[2]
        f = self.faults
        if n == 1:
            return bytes((0x12 | (0x08 if self.offline() else 0),))
        if n == 2:
            return bytes((0x12 | (0x04 if "head_open" in f else 0) | (0x20 if "paper_out" in f else 0)
                          | (0x40 if f - {"paper_out", "head_open", "paused"} else 0),))
        if n == 3:
            return b"\x12"
        if n == 4:
            return bytes((0x12 | (0x60 if "paper_out" in f else 0),))
        return b""


def make(language, record_dir, **options):
    return {"zpl": ZplPrinter, "escpos": EscPosPrinter}[language](record_dir, **options)
