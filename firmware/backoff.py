# Jittered exponential backoff: start ~0.5 s, x1.5, +-50 % jitter, capped.


class Backoff:
    def __init__(self, rand, start_ms=500, factor=1.5, cap_ms=60000):
        self._rand = rand
        self._start = start_ms
        self._factor = factor
        self._cap = cap_ms
        self._cur = start_ms

    def reset(self):
        self._cur = self._start

    def next_ms(self):
        base = self._cur
        self._cur = min(self._cap, int(self._cur * self._factor))
        return int(base * (0.5 + self._rand()))
