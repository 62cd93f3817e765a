"""The simulated device's USB serial port. micropython runs on one pty (the agent, or the
bare REPL for mpremote), bridged to a second pty whose path tools open as they would
/dev/ttyUSB0: pyserial, or `mpremote connect PATH resume ...` (see the platform reference).
A reboot (the agent exits with code 3 on a host) starts micropython again on the same port.

  python -m tools.serialsim --flash DIR [--board FILE] [--printer tcp://HOST:PORT] [--repl]"""
import argparse
import errno
import os
import select
import subprocess
import threading
import tty

from tools.hostrun import MICROPYTHON, ROOT, serve_until_signalled, stop_process

REBOOT_EXIT = 3


class SerialDevice:
    def __init__(self, flash_dir, printer=None, board=None, repl=False, tree=ROOT, args=()):
        self.flash_dir = flash_dir
        if repl:
            self._cmd = [MICROPYTHON]
        else:
            self._cmd = [MICROPYTHON, os.path.join(tree, "main.py"), "--flash", flash_dir]
            if printer:
                self._cmd += ["--printer", printer]
            if board:
                self._cmd += ["--board", board]
            self._cmd += list(args)
        self._dev_master, self._dev_slave = os.openpty()  # micropython's side
        self._tool_master, self._tool_slave = os.openpty()  # the tool's side
        for fd in (self._dev_master, self._dev_slave, self._tool_master, self._tool_slave):
            tty.setraw(fd)
        # nobody on the tool's side: drop output, as a USB serial port with no host does,
        # rather than block the device
        os.set_blocking(self._tool_master, False)
        self.port = os.ttyname(self._tool_slave)
        self.output = bytearray()  # everything the device wrote, for tests
        self.starts = 0
        self.proc = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self):
        self._spawn()
        for fn in (self._to_tool, self._to_device, self._supervise):
            threading.Thread(target=fn, daemon=True).start()
        return self

    def _spawn(self):
        with self._lock:
            self.starts += 1
            self.proc = subprocess.Popen(self._cmd, stdin=self._dev_slave, stdout=self._dev_slave,
                                         stderr=self._dev_slave, cwd=self.flash_dir)

    def _supervise(self):
        while not self._stop.is_set():
            code = self.proc.wait()
            if self._stop.is_set() or code != REBOOT_EXIT:
                return
            self._spawn()

    def _to_tool(self):
        while not self._stop.is_set():
            if not select.select([self._dev_master], [], [], 0.1)[0]:
                continue
            try:
                data = os.read(self._dev_master, 4096)
            except OSError:
                continue
            self.output += data
            try:
                os.write(self._tool_master, data)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EIO):
                    raise

    def _to_device(self):
        while not self._stop.is_set():
            if not select.select([self._tool_master], [], [], 0.1)[0]:
                continue
            try:
                data = os.read(self._tool_master, 4096)
            except OSError:  # EIO: no tool has the port open right now
                self._stop.wait(0.05)
                continue
            os.write(self._dev_master, data)

    @property
    def text(self):
        return self.output.decode("utf-8", "replace")

    def stop(self):
        self._stop.set()
        if self.proc is not None:
            stop_process(self.proc)
        for fd in (self._dev_master, self._dev_slave, self._tool_master, self._tool_slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.serialsim", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flash", required=True, help="the device's flash directory")
    ap.add_argument("--board", help="board config (default: FLASH/board.json)")
    ap.add_argument("--printer", help="printer address, tcp://HOST:PORT or a device path")
    ap.add_argument("--repl", action="store_true", help="the bare MicroPython REPL (for mpremote)")
    args = ap.parse_args(argv)
    os.makedirs(args.flash, exist_ok=True)
    dev = SerialDevice(os.path.abspath(args.flash), args.printer, args.board, args.repl).start()
    print("serial port: %s" % dev.port, flush=True)
    serve_until_signalled(dev.stop)


if __name__ == "__main__":
    main()
