# A watchdog for host runs, shaped like machine.WDT (feed()): a thread that ends the
# process, as the hardware would reset the board, when no feed came for timeout_ms.
# Host-only (micropython main.py --watchdog S): the ESP32 uses machine.WDT.
from micropython import const
import _thread
import os
import time

_CHECK_MS = const(100)


class FakeWatchdog:
    def __init__(self, timeout_ms):
        self._timeout_ms = timeout_ms
        self._fed = time.ticks_ms()
        _thread.start_new_thread(self._watch, ())

    def feed(self):
        self._fed = time.ticks_ms()

    def _watch(self):
        while time.ticks_diff(time.ticks_ms(), self._fed) < self._timeout_ms:
            time.sleep_ms(_CHECK_MS)
        print("[error] watchdog: no sign of life for %d s; resetting" % (self._timeout_ms // 1000))
        os.system("kill -9 $PPID")  # the shell's parent is this process: a reset, not an exit
