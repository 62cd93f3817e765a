# A printer on a device path for host runs: a USB serial adapter (/dev/ttyUSB0, set to
# raw mode at the board's baud rate), a USB printer class device (/dev/usb/lp0), or a
# pty. Loaded only when the printer address is a path.
from micropython import const
import select

_WRITE_MAX = const(256)  # a pty or tty write of more than its free space would block


class DeviceUart:
    def __init__(self, path, baudrate, read_wait_ms, write_wait_ms):
        self._read_wait_ms = read_wait_ms  # the waits of the TCP UART, so both behave alike
        self._write_wait_ms = write_wait_ms
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
            if not self._ready(select.POLLOUT, self._write_wait_ms):
                return None
            n = len(buf) if len(buf) <= _WRITE_MAX else _WRITE_MAX
            return self._f.write(buf[:n] if n < len(buf) else buf)
        except OSError:
            self.close()
            return None

    def readinto(self, buf):
        # FileIO.read(n) blocks for all n bytes, so take one byte while one is waiting.
        try:
            self._open()
            n = 0
            while n < len(buf) and self._ready(select.POLLIN, self._read_wait_ms if n == 0 else 0):
                b = self._f.read(1)
                if not b:
                    break
                buf[n] = b[0]
                n += 1
            return n or None
        except OSError:
            self.close()
            return None
