# Bounded I/O, the one rule HTTP and MQTT share: every read or write ends by an overall
# deadline and after the longest silence allowed, waiting in slices so the clock's idle
# work (the console, the watchdog) gets its turns. WireError is the base of every failure
# of the network or of a peer on it: callers that only retry catch it alone.

IO_SLICE_MS = 250  # the longest socket wait before the clock's idle work gets a turn


class WireError(Exception):
    """The network or a peer failed: worth retrying later (after retry_after_s at least)."""
    retry_after_s = 0


def bounded_io(op, mv, deadline, timeout_ms, clock, what, error=WireError):
    """op(mv, wait_ms) until it moves bytes (the count; 0 = end of stream); error when
    the deadline passes or nothing moves for timeout_ms."""
    quiet_since = clock.ticks_ms()
    while True:
        left = deadline.remaining_ms()
        if left <= 0:
            raise error("deadline passed")
        try:
            n = op(mv, min(left, timeout_ms, IO_SLICE_MS))
        except OSError as e:
            raise error("%s failed: %s" % (what, e))
        if n is not None:
            return n
        if clock.ticks_diff(clock.ticks_ms(), quiet_since) >= timeout_ms:
            raise error("%s timed out after %d s" % (what, timeout_ms // 1000))
        clock.breathe()
