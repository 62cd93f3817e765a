# Host ports for the MicroPython unix port: flash is a directory, the UART is a TCP
# connection (a network printer's raw port 9100, or the simulator) or a device path
# (/dev/ttyUSB0, /dev/usb/lp0, a pty). Both are opened lazily and reopened after an
# error, so a printer that is off at boot does not stop the agent.
import binascii
import os
import random
import select
import socket

from firmware.clock import SystemClock
from firmware.ports.netsock import Connector
from firmware.store import Flash

WRITE_WAIT_MS = 100
READ_WAIT_MS = 10


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


def open_uart(address, baudrate):
    if address.startswith("tcp://"):
        hostport = address[6:]
        i = hostport.rfind(":")
        if i <= 0:
            raise ValueError("printer address %s needs a port" % address)
        try:
            return TcpUart(hostport[:i], int(hostport[i + 1:]))
        except ValueError:
            raise ValueError("bad port in %s" % address)
    if address.startswith("/"):
        from firmware.ports.hostdev import DeviceUart
        return DeviceUart(address, baudrate)
    raise ValueError("printer address must be tcp://HOST:PORT or a device path, not %s" % address)


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
