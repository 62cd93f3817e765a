# Run by tests/system/test_device.py under the real micropython: the host watchdog is fed
# by the clock's waits, and resets (kills) the process once nothing beats.
import sys
import time

sys.path.insert(0, sys.argv[1])
from firmware.clock import SystemClock  # noqa: E402
from firmware.ports.unix_watchdog import FakeWatchdog  # noqa: E402

dog = FakeWatchdog(int(sys.argv[2]))
clock = SystemClock(lambda now: dog.feed())
clock.sleep_ms(3 * int(sys.argv[2]))  # every wait beats
print("alive after the clock's waits")
time.sleep(30)  # a hang: nothing beats now
print("not reset")
