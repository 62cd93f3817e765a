"""Expose a simulated printer on a TCP port (like a network printer's raw port 9100)
and, optionally, on a raw-mode pty (like a USB serial adapter)."""
import os
import select
import socket
import threading
import tty

from tools.printersim.printer import make


class PrinterSim:
    def __init__(self, language, record_dir, host="127.0.0.1", port=0, pty=False):
        self.printer = make(language, record_dir)
        self._listener = socket.create_server((host, port), reuse_port=False)
        self._listener.settimeout(0.2)
        self.address = "tcp://%s:%d" % (host, self._listener.getsockname()[1])
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

    def start(self):
        self._spawn(self._accept_loop)
        if self._pty_master is not None:
            self._spawn(self._pty_loop)
        return self

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            self._spawn(self._serve, conn)

    def _serve(self, conn):
        conn.settimeout(0.2)
        with conn:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                reply = self.printer.feed(chunk)
                if reply:
                    try:
                        conn.sendall(reply)
                    except OSError:
                        return

    def _pty_loop(self):
        fd = self._pty_master
        while not self._stop.is_set():
            r, _, _ = select.select([fd], [], [], 0.2)
            if not r:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                continue
            reply = self.printer.feed(chunk)
            if reply:
                os.write(fd, reply)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        self._listener.close()
        if self._pty_master is not None:
            os.close(self._pty_master)
            os.close(self._pty_slave)
        self.printer.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
