"""Expose a simulated printer on a TCP port (like a network printer's raw port 9100) and,
optionally, on a raw-mode pty (like a USB serial adapter), with:

- pacing: with baud set, at most baud/10 bytes a second cross the "line";
- flow control: "hardware" stops reading while the printer is busy (RTS/CTS, or TCP
  back-pressure), "xonxoff" keeps reading and sends XOFF/XON, "none" keeps reading;
- a print engine thread draining the receive buffer at print speed;
- a control port taking one command per line: `fault paper_out|head_open|paused [after N]`,
  `clear [FAULT]`, `status` (answers one JSON line)."""
import json
import os
import select
import socket
import threading
import time
import tty

from tools.printersim.printer import make

ENGINE_TICK_S = 0.002
RECEIVE_WINDOW = 8192  # a printer's TCP window is small: it reads only as its buffer allows


class Pacer:
    """A token bucket of line time: baud/10 bytes a second (8N1), or unlimited."""

    def __init__(self, baud):
        self.rate = baud / 10.0 if baud else None
        self._credit = 0.0
        self._last = time.monotonic()

    def allowance(self, most):
        if self.rate is None:
            return most
        now = time.monotonic()
        self._credit = min(self._credit + (now - self._last) * self.rate, 256.0)
        self._last = now
        return min(most, int(self._credit))

    def spend(self, n):
        if self.rate is not None:
            self._credit -= n


class PrinterSim:
    def __init__(self, language, record_dir, host="127.0.0.1", port=0, pty=False, baud=None,
                 control_port=None, **printer_options):
        self.printer = make(language, record_dir, **printer_options)
        self.baud = baud
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_WINDOW)  # inherited
        self._listener.bind((host, port))
        self._listener.listen(8)
        self._listener.settimeout(0.2)
        self.address = "tcp://%s:%d" % (host, self._listener.getsockname()[1])
        self._control = None
        self.control_address = None
        if control_port is not None:
            self._control = socket.create_server((host, control_port))
            self._control.settimeout(0.2)
            self.control_address = "%s:%d" % (host, self._control.getsockname()[1])
        self.pty_path = None
        self._pty_master = None
        if pty:
            master, slave = os.openpty()
            tty.setraw(slave)
            tty.setraw(master)
            self._pty_master, self._pty_slave = master, slave
            self.pty_path = os.ttyname(slave)
        self._stop = threading.Event()
        self._threads = []
        self._line = 0  # which connection holds the line

    def start(self):
        self._spawn(self._accept_loop, self._listener, self._serve)
        self._spawn(self._engine_loop)
        if self._control is not None:
            self._spawn(self._accept_loop, self._control, self._serve_control)
        if self._pty_master is not None:
            self._spawn(self._pty_loop)
        return self

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def _engine_loop(self):
        while not self._stop.is_set():
            self.printer.engine_step()
            time.sleep(ENGINE_TICK_S)

    def _accept_loop(self, listener, handler):
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except (socket.timeout, OSError):
                continue
            self._spawn(handler, conn)

    def _pump(self, read, write, wait_readable):
        """Move bytes between the line and the printer until the line closes."""
        pacer = Pacer(self.baud)
        while not self._stop.is_set():
            out = self.printer.take_outbox()
            if out:
                write(out)
            if not self.printer.can_receive():
                time.sleep(0.001)
                continue
            n = self.printer.window(pacer.allowance(65536))
            if n < 1:
                time.sleep(0.0005)
                continue
            if not wait_readable(0.002):  # short: an XON in the outbox must not wait
                continue
            chunk = read(n)
            if chunk is None:
                continue
            if not chunk:
                return
            pacer.spend(len(chunk))
            reply = self.printer.feed(chunk)
            if reply:
                write(reply)

    def _serve(self, conn):
        # One line, one host: a new connection is a new board (say, after a power cut).
        # What the old one left in the socket never crossed the wire, so it is dropped.
        self._line += 1
        mine = self._line
        with conn:
            conn.setblocking(True)
            # a serial line has no Nagle: an XON must not wait for the host's delayed ACK
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def readable(timeout):
                return bool(select.select([conn], [], [], timeout)[0])

            def read(n):
                if self._line != mine:
                    return b""
                try:
                    return conn.recv(n)
                except OSError:
                    return b""
            try:
                self._pump(read, conn.sendall, readable)
            except OSError:
                pass

    def _pty_loop(self):
        fd = self._pty_master

        def readable(timeout):
            return bool(select.select([fd], [], [], timeout)[0])

        def read(n):
            try:
                return os.read(fd, n)
            except OSError:
                return None  # no reader on the other side yet
        while not self._stop.is_set():
            self._pump(read, lambda data: os.write(fd, data), readable)

    def _serve_control(self, conn):
        with conn:
            f = conn.makefile("rwb", buffering=0)
            for line in f:
                f.write((self.control(line.decode("utf-8", "replace")) + "\n").encode())

    def control(self, line):
        """Run one control command; the answer line."""
        words = line.split()
        try:
            if words[:1] == ["fault"] and len(words) in (2, 4):
                after = int(words[3]) if len(words) == 4 and words[2] == "after" else None
                self.printer.fault(words[1], after)
                return "ok"
            if words[:1] == ["clear"] and len(words) <= 2:
                self.printer.clear(words[1] if len(words) == 2 else None)
                return "ok"
            if words == ["status"]:
                p = self.printer
                with p.lock:
                    return json.dumps({"faults": sorted(p.faults), "buffered": len(p.buffer),
                                       "busy": p.busy, "pages": p.pages, "lost": p.lost,
                                       "received_data": p.data_bytes})
        except ValueError as e:
            return "error: %s" % e
        return "error: commands are: fault KIND [after N] | clear [KIND] | status"

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        self._listener.close()
        if self._control is not None:
            self._control.close()
        if self._pty_master is not None:
            os.close(self._pty_master)
            os.close(self._pty_slave)
        self.printer.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
