"""Fault switches for tests: arm a named fault for the next N matching requests."""
import threading

KNOWN = {
    # name: what it does when taken
    "register_drop_field": "the next /register reply lacks the field given as `field`",
    "non_json": "the next reply of `interface` is not JSON",
    "http_error": "the next call of `interface` answers HTTP `status` (5xx, 429 + Retry-After)",
    "truncate_download": "the next download sends `keep` bytes of its body (or stops at byte "
                         "`at` of the file), then closes",
    "drip": "the next reply of `interface` trickles out one byte every `interval` seconds",
    "duplicate_delivery": "the next /fetch lists every job twice, IN_PROGRESS ones included",
    "intercept": "calls `then()` while handling the next call of `interface` (for /control, "
                 "the one moving a job to `state`): after it took effect if `apply`, else "
                 "instead of it (the call is dropped); tests use it to cut the power there",
}


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._armed = {}

    def arm(self, name, count=1, **params):
        if name not in KNOWN:
            raise ValueError("unknown fault %r; known: %s" % (name, ", ".join(sorted(KNOWN))))
        with self._lock:
            self._armed[name] = [count, params]

    def clear(self):
        with self._lock:
            self._armed.clear()

    def take(self, name, **match):
        """The fault's params if it is armed (and its params match), consuming one use."""
        with self._lock:
            entry = self._armed.get(name)
            if not entry:
                return None
            count, params = entry
            if any(params.get(k) != v for k, v in match.items()):
                return None
            if count <= 1:
                del self._armed[name]
            else:
                entry[0] = count - 1
            return params
