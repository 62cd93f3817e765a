from hypothesis import given, strategies as st

from firmware.printers import base
from firmware.printers.escpos import EscPosDriver, status_byte
from firmware.printers.zpl import ZplDriver, parse_host_status, HS
from tests.fakes import FakeClock, FakeUart

HS_OK = (b"\x02030,0,0,1225,000,0,0,0,000,0,0,0\x03\r\n"
         b"\x02001,0,0,0,0,2,6,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n")
# The reference's sample: paper out and paused.
HS_SAMPLE = (b"\x02030,1,1,1225,000,0,0,0,000,0,0,0\x03\r\n"
             b"\x02001,0,0,1,1,2,6,0,00000100,1,000\x03\r\n\x021234,0\x03\r\n")


def test_host_status_parsing():
    assert parse_host_status(HS_OK) == base.READY
    assert parse_host_status(HS_SAMPLE) == base.PAPER_OUT
    assert parse_host_status(HS_OK.replace(b"001,0,0,0", b"001,0,1,0")) == base.HEAD_OPEN
    assert parse_host_status(HS_OK.replace(b"030,0,0", b"030,0,1")) == base.PAUSED
    assert parse_host_status(b"\x02030,0\x03") == base.NOT_ANSWERING


def test_zpl_status_query_and_silence():
    clock = FakeClock()
    assert ZplDriver(FakeUart({HS: HS_OK}), clock).status() == base.READY
    silent = ZplDriver(FakeUart(), _TickingClock(), status_timeout_ms=500)
    assert silent.status() == base.NOT_ANSWERING


class _TickingClock(FakeClock):
    def ticks_ms(self):
        self.now += 10
        return self.now


def test_escpos_status():
    def drv(replies):
        return EscPosDriver(FakeUart(replies), FakeClock())
    assert drv({b"\x10\x04\x01": b"\x12"}).status() == base.READY
    assert drv({b"\x10\x04\x01": b"\x1a", b"\x10\x04\x02": b"\x32"}).status() == base.PAPER_OUT
    assert drv({b"\x10\x04\x01": b"\x1a", b"\x10\x04\x02": b"\x16"}).status() == base.HEAD_OPEN
    assert status_byte(b"\x11\x13\x16") == 0x16  # XON/XOFF are not status replies


def test_stall_is_detected_when_the_printer_takes_nothing():
    uart = FakeUart(accept=lambda n: None)
    d = ZplDriver(uart, _TickingClock(), stall_ms=2000)
    try:
        d.write(b"^XA^XZ")
        assert False, "expected a stall"
    except base.PrinterStall as e:
        assert "2 s" in str(e)


def test_partial_writes_are_completed():
    uart = FakeUart(accept=lambda n: min(n, 3))
    ZplDriver(uart, FakeClock()).write(b"0123456789")
    assert bytes(uart.sent) == b"0123456789"


def test_claim_ticket_escapes_field_data():
    t = ZplDriver(FakeUart(), FakeClock()).claim_ticket("AB_1", "https://x/~a^b", "https://x/c")
    assert t.startswith(b"^XA") and t.endswith(b"^XZ") and b"^FH_" in t
    assert b"AB_5F1" in t and b"_7Ea_5Eb" in t and b"^BQN,2,6^FDQA,https://x/c^FS" in t
    r = EscPosDriver(FakeUart(), FakeClock()).claim_ticket("AB12C", "https://x/claim", "https://x/q")
    assert r.startswith(b"\x1b@") and b"AB12C" in r and b"\x1d(k\x0e\x001P0https://x/q" in r
    assert r.endswith(b"\x1dVB\x00")


@given(st.lists(st.sampled_from([b"^XA", b"^XZ", b"^", b"X", b"Z", b"data", b"^X"]), max_size=60),
       st.lists(st.integers(1, 7), min_size=1, max_size=10))
def test_page_marks_are_counted_across_any_chunking(parts, sizes):
    stream = b"".join(parts)
    counter = base.MarkCounter(b"^XZ")
    total = 0
    pos = 0
    i = 0
    while pos < len(stream):
        n = sizes[i % len(sizes)]
        buf = bytearray(stream[pos:pos + n]) + bytearray(8)  # stale bytes after n
        total += counter.count(buf, min(n, len(stream) - pos))
        pos += n
        i += 1
    assert total == stream.count(b"^XZ")
