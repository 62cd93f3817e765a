# Host ports for the MicroPython unix port: flash is a directory, the UART is a TCP
# connection (a network printer's raw port 9100, or the simulator) or a device path
# (/dev/ttyUSB0, /dev/usb/lp0, a pty). Both are opened lazily and reopened after an
# error, so a printer that is off at boot does not stop the agent.
from micropython import const
import binascii
import os
import random
import select
import socket
import time

from firmware.clock import SystemClock
from firmware.indicator import Indicator
from firmware.ports.netsock import Connector
from firmware.ports.stdin_console import StdinReader
from firmware.store import Flash

_SO_SNDBUF = const(7)  # Linux's values; MicroPython's socket module does not name them
IPPROTO_TCP = 6
TCP_NODELAY = 1
_SEND_BUFFER = const(8192)  # like the ESP32's lwIP send buffer: a printer status query must not
# queue behind megabytes of print data, as it would with Linux's autotuned buffers
_WRITE_WAIT_MS = const(100)
_READ_WAIT_MS = const(0)  # readinto never waits, as machine.UART with timeout=0
_MIN_PACED_WRITE = const(16)  # bytes: fewer per send would cost more in system calls than the line time


class TcpUart:
    """pace_bps: send no faster than a serial line (bytes a second), so that, as on a
    real UART, little is in flight when the printer sends XOFF. 0: as fast as TCP takes."""

    def __init__(self, host, port, pace_bps=0):
        self._host = host
        self._port = port
        self._sock = None
        self._poll = select.poll()
        self._pace = pace_bps
        self._credit_us = 0
        self._last = time.ticks_us()

    def _open(self):
        if self._sock is None:
            addr = socket.getaddrinfo(self._host, self._port, 0, socket.SOCK_STREAM)[0][-1]
            s = socket.socket()
            try:
                s.setsockopt(socket.SOL_SOCKET, _SO_SNDBUF, _SEND_BUFFER)
                # No Nagle: small paced writes must leave at once, as on a serial line, not
                # wait for the printer's delayed ACK and then arrive as one burst.
                s.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
                s.settimeout(2)
                s.connect(addr)
                s.setblocking(False)
            except OSError:
                s.close()
                raise
            self._poll.register(s, select.POLLOUT)
            self._sock = s

    def _wait(self, event, ms):
        self._poll.modify(self._sock, event)
        return bool(self._poll.poll(ms))

    def close(self):
        if self._sock is not None:
            self._poll.unregister(self._sock)
            self._sock.close()
            self._sock = None

    def _allowance(self, want):
        # Line time is kept in microseconds, so no fraction of a byte is lost per call.
        now = time.ticks_us()
        self._credit_us = min(self._credit_us + time.ticks_diff(now, self._last),
                              (want * 1000000 + self._pace - 1) // self._pace)  # rounded up
        self._last = now
        return self._credit_us * self._pace // 1000000

    def write(self, buf):
        try:
            self._open()
            n = len(buf)
            if self._pace:
                least = min(n, _MIN_PACED_WRITE)
                have = self._allowance(n)
                if have < least:  # sleep just until the line has room: no dribbles, no idle line
                    time.sleep_us((least - have) * 1000000 // self._pace + 1)
                    return None
                n = have
                buf = buf[:n] if n < len(buf) else buf
            if not self._wait(select.POLLOUT, _WRITE_WAIT_MS):
                return None
            sent = self._sock.send(buf)
            if self._pace:
                self._credit_us -= sent * 1000000 // self._pace
            return sent
        except OSError:
            self.close()
            return None

    def readinto(self, buf):
        try:
            self._open()
            if not self._wait(select.POLLIN, _READ_WAIT_MS):
                return None
            n = self._sock.readinto(buf)
        except OSError:
            self.close()
            return None
        if n == 0:  # the printer closed the connection
            self.close()
            return None
        return n


def open_uart(address, baudrate, pace=False):
    if address.startswith("tcp://"):
        hostport = address[6:]
        i = hostport.rfind(":")
        if i <= 0:
            raise ValueError("printer address %s needs a port" % address)
        try:
            return TcpUart(hostport[:i], int(hostport[i + 1:]), baudrate // 10 if pace else 0)
        except ValueError:
            raise ValueError("bad port in %s" % address)
    if address.startswith("/"):
        from firmware.ports.hostdev import DeviceUart
        return DeviceUart(address, baudrate, _READ_WAIT_MS, _WRITE_WAIT_MS)
    raise ValueError("printer address must be tcp://HOST:PORT or a device path, not %s" % address)


def owner_only(path):
    """chmod 600: MicroPython's unix port has no os.chmod or umask."""
    if os.system("chmod 600 '%s'" % path.replace("'", "'\\''")) != 0:
        raise OSError("cannot make %s private" % path)


REBOOT_EXIT = 3  # "reboot" on a host: exit with this code for the supervisor to restart


class HostPorts:
    def __init__(self, flash_dir, board, printer, safe_mode=False, board_file=None, watchdog_s=0):
        self.flash = Flash(flash_dir, owner_only)
        self.indicator = Indicator()  # no LED on a host: the console's status names the pattern
        watchdog = None
        if watchdog_s:
            from firmware.ports.unix_watchdog import FakeWatchdog
            watchdog = FakeWatchdog(watchdog_s * 1000)
        self.clock = SystemClock(watchdog and (lambda now: watchdog.feed()))
        self.board = board
        # XON/XOFF only works at a serial line's pace; port 9100 has none to keep.
        self.uart = open_uart(printer, board["baudrate"], board["flow_control"] == "xonxoff")
        self.rand = random.random
        self.console_read = StdinReader()
        self.safe_mode_asked = "--safe-mode was given" if safe_mode else None  # the board's button
        self.board_file = board_file  # --board FILE; None: DIR/board.json, as on the device
        self.start_counts = True  # every start counts towards safe mode until it gets to work

    def reboot(self):
        raise SystemExit(REBOOT_EXIT)

    def network_status(self):
        return "the host's network"

    def connector(self, ca_der):
        return Connector(ca_der)

    def network_up(self, settings):
        pass  # the host's own network is up or it is not; sockets will say

    def serial(self):
        return binascii.hexlify(os.urandom(6)).decode()
