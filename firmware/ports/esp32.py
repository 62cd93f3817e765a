# ESP32 ports: machine.UART with optional RTS/CTS, network.WLAN, NTP, flash at "/",
# the hardware watchdog (machine.WDT, fed by every clock beat) and the status LED.
# machine.UART.write has no timeout and blocks while CTS is held (paper out), so we
# write at most txbuf bytes and only once the previous bytes have drained.
from micropython import const
import binascii
import random
import time

import machine
import network

from firmware.clock import SystemClock
from firmware.indicator import Indicator
from firmware.ports.netsock import Connector
from firmware.ports.stdin_console import StdinReader
from firmware.store import Flash

_WIFI_JOIN_MS = const(20000)


class NetworkDown(Exception):
    pass


class EspUart:
    def __init__(self, board):
        kw = {"txbuf": board["uart_txbuf"], "rxbuf": board["uart_rxbuf"], "timeout": 0}
        for key in ("tx", "rx"):
            if board["uart_" + key] is not None:
                kw[key] = board["uart_" + key]
        if board["flow_control"] == "rtscts":
            kw["rts"] = board["uart_rts"]
            kw["cts"] = board["uart_cts"]
            kw["flow"] = machine.UART.RTS | machine.UART.CTS
        self._u = machine.UART(board["uart_id"], board["baudrate"], **kw)
        self._max = board["uart_txbuf"]

    def write(self, buf):
        if not self._u.txdone():
            time.sleep_ms(2)
            return None
        if len(buf) > self._max:
            buf = buf[:self._max]
        return self._u.write(buf)

    def readinto(self, buf):
        return self._u.readinto(buf)


class EspPorts:
    def __init__(self, board):
        self.flash = Flash("/")  # secrets: protected by flash encryption (README, "Secrets")
        led = board["led_pin"]
        self.indicator = Indicator(None if led is None else machine.Pin(led, machine.Pin.OUT).value)
        # Once started the WDT cannot be stopped: after Ctrl-C on the REPL the board resets
        # within watchdog_s, so deploy and provision within it (the tools are quicker).
        wdt = machine.WDT(timeout=board["watchdog_s"] * 1000) if board["watchdog_s"] else None
        indicator = self.indicator

        def beat(now):
            if wdt is not None:
                wdt.feed()
            indicator.tick(now)
        self.clock = SystemClock(beat)
        self.board = board
        self.uart = EspUart(board)
        self.rand = random.random
        self._wlan = network.WLAN(network.STA_IF)
        self._clock_set = False
        self.console_read = StdinReader()
        # safe mode: the board's button (to ground, pulled up) held at power-on
        pin = board["button_pin"]
        held = pin is not None and machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP).value() == 0
        self.safe_mode_asked = "the button was held at power-on" if held else None
        # a power-on is not a crash; a reset by the watchdog, a panic or the agent is
        self.start_counts = machine.reset_cause() != machine.PWRON_RESET
        self.board_file = None

    def reboot(self):
        machine.reset()

    def network_status(self):
        w = self._wlan
        if not w.isconnected():
            return "Wi-Fi not connected (status %d)" % w.status()
        return "Wi-Fi %s, address %s" % (w.config("essid"), w.ifconfig()[0])

    def connector(self, ca_der):
        return Connector(ca_der)

    def network_up(self, settings):
        """Join Wi-Fi within _WIFI_JOIN_MS and set the clock (TLS checks dates)."""
        w = self._wlan
        if not w.isconnected():
            if not settings["wifi_ssid"]:
                raise NetworkDown("no Wi-Fi network configured (set wifi_ssid)")
            w.active(True)
            w.connect(settings["wifi_ssid"], settings["wifi_password"])
            end = time.ticks_add(time.ticks_ms(), _WIFI_JOIN_MS)
            while not w.isconnected():
                if time.ticks_diff(end, time.ticks_ms()) <= 0:
                    raise NetworkDown("Wi-Fi join timed out (status %d)" % w.status())
                self.clock.sleep_ms(200)
        if not self._clock_set:
            import ntptime
            try:
                ntptime.settime()
                self._clock_set = True
            except OSError as e:
                raise NetworkDown("NTP failed: %s" % e)

    def serial(self):
        return binascii.hexlify(machine.unique_id()).decode()


def build(argv, check_board):
    raw = Flash("/").read_json("board.json")
    if raw is None:
        raise ValueError("board.json is missing from flash")
    return EspPorts(check_board(raw))
