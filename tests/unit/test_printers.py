import pytest
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
    assert parse_host_status(HS_OK) == (base.READY, 0)
    assert parse_host_status(HS_SAMPLE) == (base.PAPER_OUT, 0)
    assert parse_host_status(HS_OK.replace(b"001,0,0,0", b"001,0,1,0"))[0] == base.HEAD_OPEN
    assert parse_host_status(HS_OK.replace(b"030,0,0", b"030,0,1"))[0] == base.PAUSED
    assert parse_host_status(hs(formats=3, partial=1)) == (base.READY, 4)
    assert parse_host_status(b"\x02030,0\x03") == (base.NOT_ANSWERING, None)


def hs(formats=0, partial=0, paper=0):
    return (b"\x02030,%d,0,1225,%03d,0,0,%d,000,0,0,0\x03\r\n" % (paper, formats, partial)
            + b"\x02001,0,0,0,0,2,6,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n")


def test_a_reply_split_across_reads_is_reassembled():
    d = ZplDriver(FakeUart({HS: hs(formats=2)}, rx_chunk=1), FakeClock(), status_timeout_ms=10000)
    assert d.progress() == (base.READY, 2)


def drain(d, clock, poll_ms=200):
    """The job runner's drain loop: the number of looks it took."""
    d.begin_drain()
    looks = 1
    while not d.drained():
        clock.sleep_ms(poll_ms)
        looks += 1
    return looks


def test_drain_waits_until_the_printer_has_printed_everything():
    uart = FakeUart({HS: [hs(formats=3), hs(formats=2, partial=1), hs(formats=1), hs()]})
    clock = FakeClock()
    assert drain(ZplDriver(uart, clock, stall_ms=5000), clock) == 4
    assert uart.sent.count(HS) == 4


def test_drain_reports_a_fault_and_a_printer_that_stops_printing():
    clock = FakeClock()
    d = ZplDriver(FakeUart({HS: [hs(formats=2), hs(formats=1, paper=1)]}), clock)
    with pytest.raises(base.PrinterFault) as e:
        drain(d, clock)
    assert e.value.state == base.PAPER_OUT
    stuck = ZplDriver(FakeUart({HS: hs(formats=2)}), clock, stall_ms=3000)
    start = clock.now
    with pytest.raises(base.PrinterStall):
        drain(stuck, clock)
    assert 3000 < clock.now - start <= 3400


def test_xoff_holds_writes_until_xon():
    uart = FakeUart(accept=lambda n: min(n, 4))
    uart.rx += b"\x13"  # XOFF before we start
    clock = FakeClock()
    d = ZplDriver(uart, clock, stall_ms=1000, xonxoff=True)
    with pytest.raises(base.PrinterStall):
        d.write(b"0123456789")
    assert bytes(uart.sent) == b""
    uart.rx += b"\x11"  # XON
    d.write(b"0123456789")
    assert bytes(uart.sent) == b"0123456789"


ASB_PAPER_OUT = bytes((0x18, 0x00, 0x0C, 0x00))


@given(st.lists(st.sampled_from(["asb", "xon", "xoff"]), max_size=8), st.integers(0, 8),
       st.sampled_from([0x12, 0x16, 0x1A, 0x1E]), st.integers(1, 5))
def test_escpos_reply_found_among_asb_and_flow_control(noise, where, reply, chunk):
    stream = bytearray()
    pieces = {"asb": ASB_PAPER_OUT, "xon": b"\x11", "xoff": b"\x13"}
    for i, kind in enumerate(noise):
        if i == where:
            stream.append(reply)
        stream += pieces[kind]
    if where >= len(noise):
        stream.append(reply)
    uart = FakeUart(rx_chunk=chunk)
    d = EscPosDriver(uart, FakeClock())
    uart.replies = {b"\x10\x04\x01": bytes(stream)}
    assert d._ask(1) == reply
    for _ in range(10):  # bytes after the reply arrive with the next poll
        d.poll_rx()
    flow = [k for k in noise if k in ("xon", "xoff")]
    assert d._xoff == (flow[-1] == "xoff" if flow else False)
    if "asb" in noise:
        assert bytes(d.asb) == ASB_PAPER_OUT


@given(st.binary(max_size=300))
def test_status_parsers_never_crash_on_garbage(data):
    state, left = parse_host_status(data)
    assert state in (base.READY, base.PAPER_OUT, base.HEAD_OPEN, base.PAUSED, base.NOT_ANSWERING)
    assert left is None or left >= 0
    b = status_byte(data)
    assert b is None or b & 0x93 == 0x12


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


def _blocking_uart(clock, block_at, until_ms, replies=None):
    """Takes bytes until block_at have been sent, then none until the clock reaches until_ms."""
    uart = FakeUart(replies)

    def accept(n):
        if clock.now >= until_ms:
            return n
        return max(0, min(n, block_at - len(uart.sent)))
    uart.accept = accept
    return uart


ASB_OK = b"\x10\x00\x00\x00"
ASB_PAPER_OUT = b"\x18\x00\x0c\x00"  # offline, roll paper end


def test_escpos_status_back_names_the_fault_while_the_line_is_blocked():
    clock = _TickingClock()
    uart = _blocking_uart(clock, 100, 20000, {b"\x1da\x0e": ASB_OK})
    d = EscPosDriver(uart, clock, stall_ms=10000, status_back=True)
    d.begin_job()
    assert bytes(uart.sent) == b"\x1da\x0e"
    assert d.send(memoryview(b"x" * 90)) == 90
    assert d.send(memoryview(b"y" * 200), 50) == 7  # the line blocks at byte 100
    assert d.send(memoryview(b"y" * 193), 50) == 0
    assert d.blocked(500) is None and d.blocked(5000) is None  # ready, as far as it said
    uart.rx += ASB_PAPER_OUT  # sent by the printer as the paper runs out
    assert d.blocked(500) is None  # too early to tell a slow line from a stop
    assert d.blocked(1500) == base.PAPER_OUT
    assert d.blocked(60000) == base.PAPER_OUT  # it said why: not a silent printer


def test_a_silent_blocked_printer_is_not_answering_after_the_stall_timeout():
    clock = _TickingClock()
    d = ZplDriver(_blocking_uart(clock, 10, 10 ** 9), clock, stall_ms=5000)
    assert d.send(memoryview(b"^XA" * 20)) == 10
    assert d.send(memoryview(b"^XA" * 20), 100) == 0
    assert d.blocked(4000) is None and d.blocked(6000) == base.NOT_ANSWERING
    clock.now = 0
    with pytest.raises(base.PrinterStall):  # outside a job (a ticket, a test page) it is an error
        d.write(b"^XA")
    assert 5000 < clock.now < 7000


def test_escpos_learns_once_whether_the_printer_answers_gs_r():
    ready = {b"\x10\x04\x01": b"\x12"}
    plain = EscPosDriver(FakeUart(dict(ready)), FakeClock())
    assert plain.completion is None and plain.status() == base.READY
    assert plain.completion == "dle_eot" and not plain.confirms_completion
    sent = len(plain._uart.sent)
    assert plain.progress() == (base.READY, 0)  # bytes taken, no error: done, unconfirmed
    assert plain._uart.sent.count(b"\x1dr\x01") == 1 and len(plain._uart.sent) == sent + 3  # only DLE EOT 1
    epson = EscPosDriver(FakeUart({**ready, b"\x1dr\x01": b"\x00"}), FakeClock())
    epson.status()
    assert epson.completion == "gs_r" and epson.confirms_completion
    assert epson.progress() == (base.READY, 0)
    # not learned while the printer is offline: GS r gets no answer then on any printer
    offline = EscPosDriver(FakeUart({b"\x10\x04\x01": b"\x1a", b"\x10\x04\x02": b"\x32"}), FakeClock())
    assert offline.status() == base.PAPER_OUT and offline.completion is None
    forced = EscPosDriver(FakeUart(dict(ready)), FakeClock(), completion="dle_eot")
    forced.status()
    assert b"\x1dr" not in forced._uart.sent and forced.progress() == (base.READY, 0)


def test_the_cds_says_when_completion_is_not_confirmed():
    from firmware.monitor import cds
    assert "vendor_state" not in cds(base.READY, False)["printer"]
    items = cds(base.PAUSED, False, confirmed=False)["printer"]["vendor_state"]["item"]
    assert [i["description"] for i in items][0] == "Paused"
    assert "sent, not confirmed" in items[1]["description"]
