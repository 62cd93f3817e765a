# Host ports for the MicroPython unix port: flash is a directory, the UART is a TCP
# connection (a network printer's raw port 9100, or the simulator) or a device path
# (/dev/ttyUSB0, /dev/usb/lp0, a pty). Both are opened lazily and reopened after an
# error, so a printer that is off at boot does not stop the agent.
import binascii
import os
import random
import select
import socket

from firmware import config
from firmware.clock import SystemClock
from firmware.ports.netsock import Connector
from firmware.store import Flash

USAGE = ("usage: micropython main.py [--flash DIR] [--board FILE] "
         "[--printer tcp://HOST:PORT | DEVICE]")
WRITE_WAIT_MS = 100
READ_WAIT_MS = 10
DEVICE_WRITE_MAX = 256


class UsageError(Exception):
    pass


def parse_args(argv):
    opts = {"flash": "flash", "board": None, "printer": None}
    i = 0
    while i < len(argv):
        name = argv[i]
        if name in ("--flash", "--board", "--printer") and i + 1 < len(argv):
            opts[name[2:]] = argv[i + 1]
            i += 2
        else:
            raise UsageError("unknown argument %s\n%s" % (name, USAGE))
    return opts


class TcpUart:
    def __init__(self, host, port):
        self._host = host
        self._port = port
        self._sock = None
        self._poll = select.poll()

    def _open(self):
        if self._sock is None:
            addr = socket.getaddrinfo(self._host, self._port, 0, socket.SOCK_STREAM)[0][-1]
            s = socket.socket()
            try:
                s.settimeout(2)
                s.connect(addr)
                s.setblocking(False)
            except OSError:
                s.close()
                raise
            self._sock = s

    def _wait(self, event, ms):
        self._poll.register(self._sock, event)
        try:
            return bool(self._poll.poll(ms))
        finally:
            self._poll.unregister(self._sock)

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def write(self, buf):
        try:
            self._open()
            if not self._wait(select.POLLOUT, WRITE_WAIT_MS):
                return None
            return self._sock.send(buf)
        except OSError:
            self.close()
            return None

    def readinto(self, buf):
        try:
            self._open()
            if not self._wait(select.POLLIN, READ_WAIT_MS):
                return None
            n = self._sock.readinto(buf)
        except OSError:
            self.close()
            return None
        if n == 0:  # the printer closed the connection
            self.close()
            return None
        return n


class DeviceUart:
    def __init__(self, path, baudrate):
        self._path = path
        self._baud = baudrate
        self._f = None
        self._poll = select.poll()

    def _open(self):
        if self._f is None:
            f = open(self._path, "r+b")
            try:
                import termios
                termios.setraw(f.fileno())
                attrs = termios.tcgetattr(f.fileno())
                speed = getattr(termios, "B%d" % self._baud, None)
                if speed is not None:
                    attrs[4] = attrs[5] = speed
                    termios.tcsetattr(f.fileno(), termios.TCSANOW, attrs)
            except (ImportError, OSError):
                pass  # not a tty: a USB printer class device such as /dev/usb/lp0
            self._poll.register(f, select.POLLIN | select.POLLOUT)
            self._f = f

    def _ready(self, event, ms):
        for _obj, ev in self._poll.poll(ms):
            if ev & event:
                return True
        return False

    def close(self):
        if self._f is not None:
            self._poll.unregister(self._f)
            self._f.close()
            self._f = None

    def write(self, buf):
        try:
            self._open()
            if not self._ready(select.POLLOUT, WRITE_WAIT_MS):
                return None
            n = len(buf) if len(buf) <= DEVICE_WRITE_MAX else DEVICE_WRITE_MAX
            return self._f.write(buf[:n] if n < len(buf) else buf)
        except OSError:
            self.close()
            return None

    def readinto(self, buf):
        # FileIO.read(n) blocks for all n bytes, so take one byte while one is waiting.
        try:
            self._open()
            n = 0
            while n < len(buf) and self._ready(select.POLLIN, READ_WAIT_MS if n == 0 else 0):
                b = self._f.read(1)
                if not b:
                    break
                buf[n] = b[0]
                n += 1
            return n or None
        except OSError:
            self.close()
            return None


def open_uart(address, baudrate):
    if address.startswith("tcp://"):
        hostport = address[6:]
        i = hostport.rfind(":")
        if i <= 0:
            raise UsageError("printer address %s needs a port" % address)
        try:
            return TcpUart(hostport[:i], int(hostport[i + 1:]))
        except ValueError:
            raise UsageError("bad port in %s" % address)
    if address.startswith("/"):
        return DeviceUart(address, baudrate)
    raise UsageError("printer address must be tcp://HOST:PORT or a device path, not %s" % address)


class HostPorts:
    def __init__(self, flash_dir, board, printer):
        self.flash = Flash(flash_dir)
        self.clock = SystemClock()
        self.board = board
        self.uart = open_uart(printer, board["baudrate"])
        self.rand = random.random

    def connector(self, ca_der):
        return Connector(ca_der)

    def network_up(self, settings):
        pass  # the host's own network is up or it is not; sockets will say

    def serial(self):
        return binascii.hexlify(os.urandom(6)).decode()


def build(argv):
    """HostPorts from the command line; UsageError or ConfigError when it is wrong."""
    opts = parse_args(argv)
    flash = Flash(opts["flash"])
    try:
        os.stat(opts["flash"])
    except OSError:
        raise UsageError("flash directory %s does not exist" % opts["flash"])
    raw = _read_board(opts["board"] or flash.path("board.json"))
    board = config.validate(config.BOARD, raw, "board config")
    printer = opts["printer"] or board["host_printer"]
    if not printer:
        raise UsageError("no printer: pass --printer or set host_printer in the board config")
    return HostPorts(opts["flash"], board, printer)


def _read_board(path):
    import json
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        raise UsageError("cannot read board config %s" % path)
    try:
        return json.loads(data)
    except ValueError:
        raise config.ConfigError("board config %s is not valid JSON" % path)
