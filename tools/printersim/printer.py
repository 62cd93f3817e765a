"""Simulated printers: what a ZPL or ESC/POS printer does with the bytes it receives.

Real-time commands (ZPL ~HS, ~JX; ESC/POS DLE EOT n) act on arrival, wherever they
appear in the stream, as on the real printers; the rest is print data. Everything
received is recorded (received.bin), and the print data separately (data.bin)."""
import os
import threading


class Printer:
    language = None
    page_mark = None

    def __init__(self, record_dir):
        os.makedirs(record_dir, exist_ok=True)
        self.record_dir = record_dir
        self.lock = threading.Lock()
        self._received = open(os.path.join(record_dir, "received.bin"), "ab")
        self._data = open(os.path.join(record_dir, "data.bin"), "ab")
        self._pending = b""
        self.paper_out = False
        self.head_open = False
        self.paused = False
        self.pages = 0
        self._mark_tail = b""

    def close(self):
        with self.lock:
            self._received.close()
            self._data.close()

    def feed(self, chunk):
        """Take received bytes; the reply bytes to send back."""
        with self.lock:
            self._received.write(chunk)
            self._received.flush()
            data, replies = self._split(self._pending + chunk)
            if data:
                self._data.write(data)
                self._data.flush()
                joined = self._mark_tail + data
                self.pages += joined.count(self.page_mark)
                self._mark_tail = joined[-(len(self.page_mark) - 1):]
            return replies

    def _split(self, buf):
        """(print data, replies) from buf; an incomplete command at the end waits."""
        out = bytearray()
        replies = bytearray()
        i = 0
        prefix = self.commands_prefix
        while True:
            j = buf.find(prefix, i)
            if j < 0:
                out += buf[i:]
                self._pending = b""
                break
            out += buf[i:j]
            rest = buf[j:]
            matched = False
            for cmd, size in self.commands:
                if rest[:len(cmd)] == cmd and len(rest) >= size:
                    replies += self.run_command(rest[:size])
                    i = j + size
                    matched = True
                    break
                if len(rest) < size and cmd.startswith(rest[:len(cmd)]):
                    self._pending = bytes(rest)  # the rest of the command is still on its way
                    return bytes(out), bytes(replies)
            if not matched:
                out += rest[:1]
                i = j + 1
        return bytes(out), bytes(replies)

    def received(self):
        with open(os.path.join(self.record_dir, "received.bin"), "rb") as f:
            return f.read()

    def data(self):
        with open(os.path.join(self.record_dir, "data.bin"), "rb") as f:
            return f.read()


class ZplPrinter(Printer):
    language = "zpl"
    page_mark = b"^XZ"
    commands_prefix = b"~"
    commands = ((b"~HS", 3), (b"~JX", 3), (b"~JA", 3))

    def run_command(self, cmd):
        if cmd == b"~HS":
            return self.host_status()
        return b""

    def host_status(self):
        one = "030,%d,%d,1225,000,0,0,0,000,0,0,0" % (self.paper_out, self.paused)
        two = "001,0,%d,0,0,2,6,0,00000000,1,000" % self.head_open
        return b"".join(b"\x02" + s.encode() + b"\x03\r\n" for s in (one, two, "1234,0"))


class EscPosPrinter(Printer):
    language = "escpos"
    page_mark = b"\x1dV"
    commands_prefix = b"\x10"
    commands = ((b"\x10\x04", 3),)

    def run_command(self, cmd):
        n = cmd[2]
        offline = self.paper_out or self.head_open or self.paused
        if n == 1:
            return bytes((0x12 | (0x08 if offline else 0),))
        if n == 2:
            return bytes((0x12 | (0x04 if self.head_open else 0) | (0x20 if self.paper_out else 0),))
        if n == 3:
            return b"\x12"
        if n == 4:
            return bytes((0x12 | (0x60 if self.paper_out else 0),))
        return b""


def make(language, record_dir):
    return {"zpl": ZplPrinter, "escpos": EscPosPrinter}[language](record_dir)
