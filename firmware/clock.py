# The real clock. Every class takes a clock at construction so unit tests can pass a
# fake one and never sleep.
import time

BEAT_MS = 250  # the longest stretch of a wait without a beat


class SystemClock:
    def __init__(self, beat=None):
        # idle(wait_ms): what to do while the agent waits (serve the console); it must
        # return within wait_ms. Every wait goes through sleep_ms or breathe.
        self.idle = None
        # beat(now_ms): proof of life from every wait: feeds the watchdog, blinks the LED
        self._beat = beat

    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_add(self, t, delta):
        return time.ticks_add(t, delta)

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def sleep_ms(self, ms):
        end = time.ticks_add(time.ticks_ms(), ms)
        while True:
            now = time.ticks_ms()
            if self._beat is not None:
                self._beat(now)
            left = time.ticks_diff(end, now)
            if left <= 0:
                return
            step = left if left < BEAT_MS else BEAT_MS
            if self.idle is None:
                time.sleep_ms(step)
            else:
                self.idle(step)

    def pause_ms(self, ms):
        """A plain sleep, without the idle work (for the idle work itself)."""
        if ms > 0:
            time.sleep_ms(ms)

    def breathe(self):
        """A moment for the idle work between steps that do not sleep."""
        if self._beat is not None:
            self._beat(time.ticks_ms())
        if self.idle is not None:
            self.idle(0)

    def time(self):
        return time.time()


class Deadline:
    """A point in time `ms` from now, on a clock with ticks_ms/ticks_diff."""

    def __init__(self, clock, ms):
        self._clock = clock
        self._end = clock.ticks_add(clock.ticks_ms(), ms)

    def remaining_ms(self):
        return self._clock.ticks_diff(self._end, self._clock.ticks_ms())

    def expired(self):
        return self.remaining_ms() <= 0
