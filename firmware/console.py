# The serial console: line commands to provision and diagnose the agent over USB serial.
# Console.poll runs whenever the agent waits (the clock's idle hook, which a job's long
# stream also lets in), so it answers while a job prints or the network is down; in safe
# mode it is all that runs. Only line assembly stays resident: the commands
# (console_commands.py, console_settings.py) are loaded for a line and unloaded after it. The console sees the
# agent only through a Status: what the owners wrote there, and one request slot.
from micropython import const

from firmware.modules import unload

LINE_MAX = 4096  # a CA certificate arrives as one base64 line
_LINE_START = const(64)
# console_commands.COMMANDS' names: a line that is none of them is answered without
# loading the commands (line noise must not cost a module load per line)
NAMES = ("help", "?", "status", "show", "get", "set", "test-print", "register", "unregister",
         "reboot", "factory-reset")


class Status:
    """What the console may see of the agent and ask of it. The agent, the job runner
    and the monitor write their fields; wanted is a request ("unregister") that the
    agent's main loop takes between steps; driver is the printer while no job holds it."""

    def __init__(self, indicator, network, reboot, board_file=None):
        self.indicator = indicator
        self.network = network  # () -> text: the network's state
        self.reboot = reboot
        self.board_file = board_file  # a host run's --board FILE, else None
        self.state = "starting"
        self.printer_id = None
        self.push = "off (polling)"
        self.last_job = None  # "id STATE" of the last job that ended
        self.printer = "not yet asked"
        self.busy = False  # a job is between accepted and delivered
        self.driver = None
        self.wanted = None

    def claiming(self, code, url):
        self.state = "waiting to be claimed: code %s at %s" % (code, url)
        self.indicator.show("claim")


class Console:
    """read(wait_ms) -> bytes or None: the serial port; write(text) prints a line;
    flash: the Flash store; status: what commands read and ask (a Status)."""

    def __init__(self, read, write, flash, status, sleep_ms):
        self._read = read
        self.write = write
        self.flash = flash
        self.status = status
        self._sleep_ms = sleep_ms
        self._buf = None  # taken when a line starts, given back when it ends: heap is scarce
        self._n = 0
        self._overflow = False
        self._running = False
        self.lines = 0  # lines run so far: safe mode waits while someone is typing

    def poll(self, wait_ms=0):
        """Take what the serial port has, waiting up to wait_ms, and run complete lines."""
        if self._running:  # a command is waiting on the agent's clock: no nesting
            if wait_ms > 0:
                self._sleep_ms(wait_ms)
            return
        data = self._read(wait_ms)
        if data:
            self.feed(data)

    def feed(self, data):
        for b in data:
            if b == 10 or b == 13:  # \n or \r ends a line; an empty line does nothing
                line = bytes(memoryview(self._buf)[:self._n]) if self._n and not self._overflow else None
                overflow = self._overflow
                self._buf = None
                self._n = 0
                self._overflow = False
                if overflow:
                    self.write("error: line longer than %d characters; ignored" % LINE_MAX)
                elif line:
                    self._line(line)
            elif self._n < LINE_MAX:
                buf = self._buf
                if buf is None or self._n == len(buf):
                    # grown by doubling: a command costs a few dozen bytes, a CA line up to LINE_MAX
                    grown = bytearray(_LINE_START if buf is None else min(2 * len(buf), LINE_MAX))
                    if buf is not None:
                        grown[:self._n] = buf
                    self._buf = buf = grown
                buf[self._n] = b
                self._n += 1
            else:
                self._overflow = True

    def _line(self, raw):
        self.lines += 1
        try:
            text = raw.decode()
        except UnicodeError:
            self.write("error: unreadable characters in the line; ignored")
            return
        for c in text:
            if ord(c) < 32 and c != "\t":  # line noise, an escape sequence: not a command
                self.write("error: control characters in the line; ignored")
                return
        words = text.split(None, 1)
        if not words:
            return
        if words[0].lower() not in NAMES:
            self.write("error: unknown command %s; type help" % words[0][:32])
            return
        self._running = True
        try:
            from firmware import console_commands
            console_commands.run(self, text)
        except MemoryError:
            self.write("error: out of memory; try again")
        finally:
            self._running = False
            unload("firmware.console_commands")
            unload("firmware.console_settings")
            unload("firmware.config")
