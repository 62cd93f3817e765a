# Fuzz the firmware's parsers under the real micropython (not CPython: the two fail
# differently, MemoryError where CPython raises RecursionError). Run by tests/fuzz:
#   micropython mp_fuzz.py TREE FLASH_DIR TARGET SEED COUNT [FIRST]
# TREE holds firmware/ (as deployed, .mpy); FIRST replays from that input on.
# Each input is a mutation of a valid seed, or random bytes, sometimes with a long
# filler streamed after it (generated as it is read, so a parser that keeps what it
# reads runs out of the capped heap). An exception other than the target's documented
# error, a MemoryError, an input slower than SLOW_MS, or heap that stays taken after
# the input is a failure: printed as "FAIL index kind detail" for a replay.
import gc
import random
import sys
import time

sys.path.insert(0, sys.argv[1])
FLASH = sys.argv[2]

from firmware import http as H  # noqa: E402
from firmware import jsonpick  # noqa: E402

SLOW_MS = 2000  # plus PER_KB_MS for each KB streamed: slowness in proportion is no hang
PER_KB_MS = 100  # a console line per 16 bytes, each a command: about 1.5 ms a line
LEAK_SLACK = 4096  # bytes the heap may hold past what the seeds left (caches, interned names)
TOKENS = (b"\r\n", b"\r\n\r\n", b"\n", b":", b";", b" ", b"0", b"-1", b"0x", b"ffffffff", b"1_0",
          b"Transfer-Encoding: chunked", b"Content-Length: ", b"HTTP/1.1 200 OK", b"\x00", b"\xff",
          b"{", b"}", b"[", b"]", b'"', b"\\", b",", b"1e999", b"\xc3(", b"\x10\x04", b"\x1dr",
          b"\x02", b"\x03", b"\x11", b"\x13", b"^XA", b"~HS", b"set ", b"get ", b"\x30", b"\x32")


def rnd(n):
    return random.getrandbits(30) % n if n > 0 else 0


def rand_bytes(n):
    return bytes(random.getrandbits(8) for _ in range(n))


def mutate(seed):
    data = bytes(seed)  # rebuilt by slicing: MicroPython's bytearray cannot delete a slice
    for _ in range(1 + rnd(6)):
        op = rnd(7)
        i = rnd(len(data) + 1)
        if op == 0 and data:
            i = min(i, len(data) - 1)
            data = data[:i] + bytes((random.getrandbits(8),)) + data[i + 1:]
        elif op == 1:
            data = data[:i] + TOKENS[rnd(len(TOKENS))] + data[i:]
        elif op == 2:
            data = data[:i] + data[i + 1 + rnd(16):]
        elif op == 3:
            data = data[:i] + rand_bytes(1 + rnd(8)) + data[i:]
        elif op == 4 and data:
            j = rnd(len(data))
            data = data[:i] + data[j:j + 1 + rnd(32)] + data[i:]
        elif op == 5:
            data = data[:i]
        else:
            data = data[:i] + TOKENS[rnd(len(TOKENS))] * (1 + rnd(64)) + data[i:]
    return data


class Stream:
    """Serves head, then filler repeated count times, in uneven pieces; then EOF."""

    def __init__(self, head, filler=b"", count=0):
        self.head, self.filler, self.count = head, filler, count
        self.pos = 0
        self.written = 0
        self.served = 0

    def readinto(self, mv, wait_ms=0):
        if self.pos >= len(self.head):
            if not self.count or not self.filler:
                return 0
            self.head, self.pos, self.count = self.filler, 0, self.count - 1
        n = min(len(mv), len(self.head) - self.pos, 1 + rnd(97))
        mv[0:n] = self.head[self.pos:self.pos + n]
        self.pos += n
        self.served += n
        return n

    def write(self, data, wait_ms=0):
        self.written += len(data)
        return len(data)

    def close(self):
        pass


class Clock:
    def __init__(self):
        self.now = 0

    def ticks_ms(self):
        self.now += 1  # time moves as the parser works: deadlines do end
        return self.now

    def ticks_add(self, t, d):
        return t + d

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        self.now += max(ms, 0)

    def pause_ms(self, ms):
        self.now += max(ms, 0)

    def breathe(self):
        pass


LAST = [None]  # the input's stream: how much it served bounds the time it may take


def streamed(data):
    """Sometimes a long filler after the input: what a hostile peer sends forever."""
    s = Stream(data) if rnd(16) else Stream(data, mutate(TOKENS[rnd(len(TOKENS))] * 4), 500 + rnd(5000))
    LAST[0] = s
    return s


# ---- targets: (documented errors, seeds, run(data))
def http_run(data):
    conn = streamed(data)
    c = H.Http(lambda host, port, tls, t: conn, Clock(), timeout_s=5, deadline_ms=10 ** 9)
    resp = c.request("GET", "http://h/x")
    buf = bytearray(64)
    if rnd(2):
        resp.read_all(16384)
    else:
        mv = memoryview(buf)
        while resp.readinto(mv if rnd(2) else buf):
            pass
    resp.close()


HTTP_SEEDS = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: application/json\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    b"HTTP/1.1 206 Partial\r\nContent-Range: bytes 5-9/10\r\nContent-Length: 5\r\n\r\n56789",
    b"HTTP/1.0 503 Busy\r\nRetry-After: 7\r\nConnection: close\r\n\r\nbusy",
)


class Body:
    """A reply body read in random pieces, as cloudprint's parsers read one."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def readinto(self, mv):
        n = min(len(mv), 1 + rnd(40), len(self.data) - self.pos)
        mv[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n

    def read_all(self, limit):
        out, self.pos = bytearray(self.data[self.pos:]), len(self.data)
        return out


def jsonpick_run(data):
    from firmware import cloudprint
    try:
        cloudprint.pick(cloudprint.ENVELOPE_ONLY, Body(data))
    finally:
        try:
            cloudprint.pick(cloudprint.LOCAL_SETTINGS_REPLY, Body(data))
        finally:
            jsonpick.loads(data) if rnd(2) else None


JSON_SEEDS = (
    b'{"success": true, "printers": [{"id": "p1", "local_settings": {"current": {"xmpp_timeout_value": 60}}}]}',
    b'{"success": false, "errorCode": "413", "message": "No print job \\"x\\" \\u00e9"}',
    b'{"jobs": [{"id": "j1", "title": "[[{{", "semanticState": {"state": {"type": "QUEUED"}}}], "success": true}',
)


def mqtt_run(data):
    from firmware import mqtt
    conn = streamed(b"\x20\x02\x00\x00" + data)
    m = mqtt.Mqtt(lambda h, p, t, s: conn, Clock(), "b", 1883, False, 5000)
    m.connect("p1", "p1", "pw", 60)
    for _ in range(64):
        if m.poll(0) is None and conn.pos >= len(conn.head) and not conn.count:
            break


def publish(topic, payload, qos):
    body = bytes((len(topic) >> 8, len(topic) & 0xFF)) + topic + (b"\x00\x07" if qos else b"") + payload
    from firmware.mqtt import _remaining_length
    return bytes((0x30 | (qos << 1),)) + _remaining_length(len(body)) + body


MQTT_SEEDS = (
    publish(b"cloudprint/printers/p1", b"p1/delete", 1),
    publish(b"cloudprint/printers/p1", b"p1", 0) + b"\xd0\x00" + publish(b"t", b"p1/update_settings", 1),
    b"\x90\x03\x00\x01\x01\x40\x02\x00\x01",
)


class Uart:
    """The printer's side: every write is answered with (a piece of) the fuzzed reply."""

    def __init__(self, data):
        self.stream = streamed(data)
        self.sent = 0

    def write(self, buf):
        self.sent += len(buf)
        return len(buf) if rnd(8) else None

    def readinto(self, buf):
        n = self.stream.readinto(memoryview(buf))
        return n or None


def printer_run(kind, data):
    from firmware.printers import base
    if kind == "zpl":
        from firmware.printers.zpl import ZplDriver as D
    else:
        from firmware.printers.escpos import EscPosDriver as D
    d = D(Uart(data), Clock(), 5000, 200, bool(rnd(2)))
    state = d.status()
    assert state in (base.READY, base.PAPER_OUT, base.HEAD_OPEN, base.PAUSED, base.NOT_ANSWERING), state
    d.progress()
    d.known_state()


ZPL_SEEDS = (
    b"\x02030,0,0,1225,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,0,0,0,2,6,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n",
    b"\x02030,1,1,1225,002,1,0,1,000,0,0,0\x03\r\n\x02001,0,1,0,0,2,6,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n",
)
ESCPOS_SEEDS = (b"\x12", b"\x1a\x32", b"\x1a\x16\x00", b"\x10\x00\x0c\x00\x12", b"\x11\x13\x12\x0c")


def console_run(data):
    from firmware import app  # noqa: F401  resident on the device
    from firmware.console import Console, Status
    from firmware.indicator import Indicator
    from firmware.store import Flash
    status = Status(Indicator(), lambda: "fuzz", lambda: None)
    c = Console(lambda ms: None, lambda line: None, Flash(FLASH), status, lambda ms: None)
    s = streamed(data)
    buf = bytearray(128)
    while True:
        n = s.readinto(memoryview(buf))
        if not n:
            break
        c.feed(bytes(buf[:n]))
    c.feed(b"\n")


CONSOLE_SEEDS = (b"status\r\n", b"get log_level\n", b"set poll_interval_s 30\r\n", b"show\n",
                 b"set ca_cert MIIB\n", b"help\n\x1b[A\n", b"set printer_name Dock \xe2\x82\xac 3\n")


def config_run(data):
    from firmware import config
    raw = jsonpick.loads(data)
    config.validate(config.SETTINGS if rnd(2) else config.BOARD, raw, "fuzz")


CONFIG_SEEDS = (
    b'{"service_url": "https://s/cloudprint", "oauth_client_id": "c", "poll_interval_s": 30}',
    b'{"board": "b", "printer_language": "escpos", "uart_tx": 17, "baudrate": 9600, "flow_control": "rtscts"}',
)


def targets():
    from firmware.mqtt import MqttError
    from firmware.config import ConfigError
    from firmware.printers.base import PrinterError
    return {
        "http": ((H.HttpError,), HTTP_SEEDS, http_run),
        "jsonpick": ((ValueError,), JSON_SEEDS, jsonpick_run),
        "mqtt": ((MqttError,), MQTT_SEEDS, mqtt_run),
        "zpl_status": ((PrinterError,), ZPL_SEEDS, lambda d: printer_run("zpl", d)),
        "escpos_status": ((PrinterError,), ESCPOS_SEEDS, lambda d: printer_run("escpos", d)),
        "console": ((), CONSOLE_SEEDS, console_run),
        "config": ((ValueError, ConfigError), CONFIG_SEEDS, config_run),
    }


def main():
    name, seed, count = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    first = int(sys.argv[6]) if len(sys.argv) > 6 else 0  # replay from this input on
    allowed, seeds, run = targets()[name]
    failures = 0
    slowest = 0
    random.seed(seed)
    for data in seeds:  # each path once first: the qstrs of what it loads stay interned for good
        try:
            run(data)
        except allowed:
            pass
    LAST[0] = data = None
    gc.collect()
    base_heap = gc.mem_alloc()
    for index in range(first, first + count):
        random.seed(seed * 1000003 + index)
        data = mutate(seeds[rnd(len(seeds))]) if rnd(10) else rand_bytes(rnd(300))
        t0 = time.ticks_ms()
        LAST[0] = None
        kind = None
        try:
            run(data)
        except allowed:
            pass
        except MemoryError as e:
            kind = "MemoryError"
            if len(sys.argv) > 6:
                sys.print_exception(e)
        except Exception as e:
            kind = "%s: %s" % (type(e).__name__, e)
        took = time.ticks_diff(time.ticks_ms(), t0)
        slowest = max(slowest, took)
        served = LAST[0].served if LAST[0] is not None else len(data)
        if kind is None and took > SLOW_MS + PER_KB_MS * served // 1024:
            kind = "slow: %d ms for %d bytes" % (took, served)
        shown = bytes(data[:120])
        data = LAST[0] = None  # the input itself is not what the parser held on to
        gc.collect()
        heap = gc.mem_alloc()
        if kind is None and heap > base_heap + LEAK_SLACK:
            kind = "heap held after the input: %d B over what the seeds left" % (heap - base_heap)
            base_heap = heap
        if kind is not None:
            failures += 1
            if failures <= 20:
                print("FAIL %d %s input=%s" % (index, kind, shown))
        if index % 5000 == 4999:
            print("progress %d" % (index + 1))
    print("done %s inputs=%d failures=%d slowest_ms=%d heap_after=%d" % (name, count, failures, slowest,
                                                                        gc.mem_alloc()))


main()
