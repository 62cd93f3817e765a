import tempfile

import pytest

from firmware.cloudprint import ApiError, ServiceError
from firmware.console import Status
from firmware.http import HttpError
from firmware.jobs import JobRunner, Undelivered
from firmware.journal import Journal
from firmware.store import Flash
from firmware.backoff import Backoff
from firmware.printers.zpl import ZplDriver, HS
from tests.fakes import FakeClock, FakeUart, ListLog

READY_HS = (b"\x02030,0,0,1225,000,0,0,0,000,0,0,0\x03\r\n"
            b"\x02001,0,0,0,0,2,6,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n")
PAPER_OUT_HS = READY_HS.replace(b"030,0,0", b"030,1,0")


class Body:
    """One download reply: data from offset on, breaking after fail_after bytes."""

    def __init__(self, data, offset=0, fail_after=None, status=200, ranged=False):
        self.data = data
        self.pos = offset
        self.fail_after = fail_after
        self.status = 206 if ranged else status
        self.headers = {"content-range": "bytes %d-%d/%d" % (offset, len(data) - 1, len(data))} if ranged else {}
        self.closed = False

    def readinto(self, mv):
        if self.fail_after is not None and self.pos >= self.fail_after:
            raise HttpError("body ended after %d of %d bytes" % (self.pos, len(self.data)))
        end = len(self.data) if self.fail_after is None else min(len(self.data), self.fail_after)
        n = min(len(mv), end - self.pos, 300)
        mv[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n

    def close(self):
        self.closed = True


class Api:
    """The service side of a job: each download is a new Body; breaks lists where the
    successive downloads break (absolute offsets; None = no break)."""

    def __init__(self, jobs, data, control_errors=(), breaks=(), status=200, ranges=True):
        self.jobs = jobs
        self.data = data
        self.breaks = list(breaks)
        self.status = status
        self.ranges = ranges
        self.offsets = []  # the Range start of every download
        self.controls = []
        self.control_errors = list(control_errors)
        self.body = None

    ticket_reply = {"version": "1.0", "print": {}}

    def fetch(self, printer_id):
        return self.jobs

    def ticket(self, job_id):
        return self.ticket_reply

    def download(self, url, accept, deadline_ms, offset=0):
        self.accept = accept
        self.offsets.append(offset)
        fail_after = self.breaks.pop(0) if self.breaks else None
        ranged = bool(offset) and self.ranges
        self.body = Body(self.data, offset if ranged else 0, fail_after, self.status, ranged)
        return self.body

    def control(self, job_id, diff):
        if self.control_errors:
            raise self.control_errors.pop(0)
        self.controls.append((job_id, diff))


class Monitor:
    def __init__(self):
        self.printer_id = None
        self.states = []

    def report(self, state, printing=False):
        self.states.append((state, printing))


def status():
    from firmware.indicator import Indicator
    return Status(Indicator(), lambda: "net", lambda: None)


def journal(flash_dir=None):
    return Journal(Flash(flash_dir or tempfile.mkdtemp(prefix="flash-")), ListLog())


def runner(api, hs=READY_HS, fault_wait_ms=60000, flash_dir=None):
    uart = FakeUart({HS: hs})
    clock = FakeClock()
    r = JobRunner(api, ZplDriver(uart, clock), clock, ListLog(), Backoff(lambda: 0.5), bytearray(256), 60000,
                  Monitor(), fault_wait_ms, journal(flash_dir), status())
    return r, uart


JOB = {"id": "j1", "contentType": "application/x-zpl", "fileUrl": "http://svc/download?id=j1"}
LABELS = b"^XA^FDone^FS^XZ" * 40


def test_job_streams_and_reports_done_with_label_count():
    api = Api([JOB], LABELS)
    r, uart = runner(api)
    assert r.run_pending("p1") == 1
    assert LABELS in bytes(uart.sent)
    assert api.controls == [("j1", {"state": {"type": "IN_PROGRESS"}}),
                            ("j1", {"state": {"type": "DONE"}, "pages_printed": 40})]
    assert api.accept == "application/x-zpl" and api.body.closed


def test_a_download_that_keeps_breaking_aborts_and_recovers_the_printer():
    api = Api([JOB], LABELS, breaks=[300] * 10)
    r, uart = runner(api)
    r.run_pending("p1")
    assert api.controls[-1] == ("j1", {"state": {"type": "ABORTED",
                                                 "device_action_cause": {"error_code": "DOWNLOAD_FAILURE"}}})
    assert api.offsets == [0] + [300] * 4  # resumed where it broke, then given up
    sent = bytes(uart.sent)
    assert sent.endswith(LABELS[:300] + b"~JX~HS")  # the cut-off format is cancelled


@pytest.mark.parametrize("ranges", [True, False])
def test_a_broken_download_resumes_where_it_broke(ranges):
    api = Api([JOB], LABELS, breaks=[256, 300, None], ranges=ranges)
    r, uart = runner(api)
    r.run_pending("p1")
    assert api.offsets == [0, 256, 300]
    assert bytes(uart.sent).count(LABELS) == 1 and b"~JX" not in bytes(uart.sent)
    assert api.controls[-1] == ("j1", {"state": {"type": "DONE"}, "pages_printed": 40})


def test_download_404_aborts():
    api = Api([JOB], b"", status=404)
    r, _ = runner(api)
    r.run_pending("p1")
    assert api.controls[-1][1]["state"]["type"] == "ABORTED"
    assert api.offsets == [0]  # a 4xx is not retried


def test_wrong_content_type_is_never_sent_to_the_printer():
    api = Api([dict(JOB, contentType="application/pdf")], b"%PDF-1.4")
    r, uart = runner(api)
    r.run_pending("p1")
    assert b"%PDF" not in bytes(uart.sent)
    assert api.controls[-1][1]["state"]["device_action_cause"] == {"error_code": "DOWNLOAD_FAILURE"}


def test_paper_out_before_printing_stops_the_job_until_reloaded():
    api = Api([JOB], LABELS)
    r, uart = runner(api, [PAPER_OUT_HS, PAPER_OUT_HS, PAPER_OUT_HS, READY_HS])
    r.run_pending("p1")
    assert [d for _, d in api.controls] == [
        {"state": {"type": "IN_PROGRESS"}},
        {"state": {"type": "STOPPED", "device_state_cause": {"error_code": "INPUT_TRAY"}}},
        {"state": {"type": "IN_PROGRESS"}},
        {"state": {"type": "DONE"}, "pages_printed": 40}]
    assert ("paper_out", False) in r._monitor.states and ("ready", True) in r._monitor.states
    assert bytes(uart.sent).count(LABELS) == 1


def test_a_fault_while_draining_stops_then_resumes():
    api = Api([JOB], LABELS)
    head_open = READY_HS.replace(b"001,0,0,0", b"001,0,1,0").replace(b"1225,000", b"1225,005")
    r, uart = runner(api, [READY_HS, head_open, head_open, READY_HS])
    r.run_pending("p1")
    states = [d["state"] for _, d in api.controls]
    assert states == [{"type": "IN_PROGRESS"},
                      {"type": "STOPPED", "device_state_cause": {"error_code": "MEDIA_PATH"}},
                      {"type": "IN_PROGRESS"}, {"type": "DONE"}]


def test_a_fault_that_outlasts_the_wait_aborts():
    api = Api([JOB], LABELS)
    paused = READY_HS.replace(b"030,0,0", b"030,0,1")
    r, uart = runner(api, paused, fault_wait_ms=10000)
    r.run_pending("p1")
    assert [d["state"] for _, d in api.controls] == [
        {"type": "IN_PROGRESS"}, {"type": "STOPPED", "user_action_cause": {"action_code": "PAUSED"}},
        {"type": "ABORTED", "device_action_cause": {"error_code": "PRINT_FAILURE"}}]
    assert LABELS not in bytes(uart.sent)


def test_report_retries_transient_failures_and_drops_finished_jobs():
    api = Api([JOB], LABELS, [ServiceError("HTTP 503"), HttpError("reset")])
    r, _ = runner(api)
    r.run_pending("p1")
    assert [d["state"]["type"] for _, d in api.controls] == ["IN_PROGRESS", "DONE"]
    api = Api([JOB], LABELS, [ApiError("control", 1003, "Can't modify the finished job.")])
    r, uart = runner(api)
    r.run_pending("p1")
    assert api.controls == [] and LABELS not in bytes(uart.sent)


def test_monitor_sends_the_cds_only_on_change():
    from firmware.monitor import Monitor as RealMonitor, cds

    class UpdApi:
        calls = []

        def update(self, printer_id, fields):
            self.calls.append((printer_id, fields))
    api = UpdApi()
    from firmware.indicator import Indicator
    led = Indicator()
    m = RealMonitor(api, ListLog(), ZplDriver(FakeUart(), FakeClock()), led, status())
    m.printer_id = "p1"
    for state, printing in [("ready", False), ("ready", False), ("paper_out", False),
                            ("paper_out", False), ("ready", True)]:
        m.report(state, printing)
    import json
    sent = [json.loads(f[0][1])["printer"] for _, f in api.calls]
    assert [p["state"] for p in sent] == ["IDLE", "STOPPED", "PROCESSING"]
    assert sent[1]["input_tray_state"] == {"item": [{"vendor_id": "roll", "state": "EMPTY"}]}
    assert led.pattern == "printing"
    m.report("paper_out")
    assert led.pattern == "attention"
    assert cds("head_open", False)["printer"]["cover_state"]["item"][0]["state"] == "OPEN"
    assert cds("not_answering", False)["printer"]["vendor_state"]["item"][0]["description"] == \
        "Printer not responding"


def test_a_printer_that_stops_mid_stream_holds_the_job_and_the_download_resumes():
    class ClosingApi(Api):  # as the real Http client: a new request closes the open reply
        def control(self, job_id, diff):
            if self.body is not None:
                self.body.close()
            Api.control(self, job_id, diff)

    class Ticking(FakeClock):
        def ticks_ms(self):
            self.now += 10
            return self.now

    api = ClosingApi([JOB], LABELS)
    clock = Ticking()
    uart = FakeUart({HS: READY_HS})
    uart.accept = lambda n: n if clock.now > 60000 else max(0, min(n, 303 - len(uart.sent)))
    monitor = Monitor()
    r = JobRunner(api, ZplDriver(uart, clock, stall_ms=10000), clock, ListLog(), Backoff(lambda: 0.5),
                  bytearray(256), 60000, monitor, 600000, journal(), status())
    r.run_pending("p1")
    assert [d for _, d in api.controls] == [
        {"state": {"type": "IN_PROGRESS"}},
        {"state": {"type": "STOPPED", "device_state_cause": {"error_code": "OTHER"}}},
        {"state": {"type": "IN_PROGRESS"}},
        {"state": {"type": "DONE"}, "pages_printed": 40}]
    assert api.offsets == [0, 512]  # the stopped report closed the download: resumed after it
    assert bytes(uart.sent).count(LABELS) == 1
    assert ("not_answering", False) in monitor.states


class PowerCut(Exception):
    """Stands for the power going off: nothing after it runs."""


def restart(api, flash_dir, **kw):
    """A new runner on the same flash, as after a reboot."""
    return runner(api, flash_dir=flash_dir, **kw)


def test_a_job_cut_off_before_its_first_byte_prints_normally_after_a_restart(tmp_path):
    api = Api([JOB], LABELS)
    r, uart = runner(api, flash_dir=str(tmp_path))

    def cut(job_id):
        raise PowerCut()
    api.ticket = cut
    with pytest.raises(PowerCut):
        r.run_pending("p1")
    assert LABELS not in bytes(uart.sent)
    del api.ticket
    api.jobs = []  # IN_PROGRESS took it out of /fetch: only the journal knows it
    r, uart = restart(api, str(tmp_path))
    assert r.run_pending("p1") == 1
    assert bytes(uart.sent).count(LABELS) == 1
    assert api.controls[-1] == ("j1", {"state": {"type": "DONE"}, "pages_printed": 40})


def test_a_job_cut_off_mid_print_is_aborted_and_never_reprinted(tmp_path):
    api = Api([JOB], LABELS)
    r, uart = runner(api, flash_dir=str(tmp_path))
    uart.accept = lambda n: (_ for _ in ()).throw(PowerCut()) if len(uart.sent) > 300 else n
    with pytest.raises(PowerCut):
        r.run_pending("p1")
    api.jobs = []
    r, uart = restart(api, str(tmp_path))
    r.run_pending("p1")
    assert api.controls[-1] == ("j1", {"state": {"type": "ABORTED",
                                                 "device_action_cause": {"error_code": "PRINT_FAILURE"}}})
    sent = bytes(uart.sent)
    assert b"^XA" not in sent.replace(b"~HS", b"") and b"~JX" in sent  # only status and the cancel
    api.jobs = [JOB]  # handed out again: ignored
    r.run_pending("p1")
    assert b"^XA" not in bytes(uart.sent)


def test_a_job_whose_bytes_were_all_sent_is_finished_after_a_restart(tmp_path):
    api = Api([JOB], LABELS)
    r, uart = runner(api, flash_dir=str(tmp_path))
    r._driver.drained = lambda: (_ for _ in ()).throw(PowerCut())  # while draining
    with pytest.raises(PowerCut):
        r.run_pending("p1")
    assert bytes(uart.sent).count(LABELS) == 1
    api.jobs = []
    r, uart = restart(api, str(tmp_path))
    r.run_pending("p1")
    assert api.controls[-1] == ("j1", {"state": {"type": "DONE"}, "pages_printed": 40})
    assert LABELS not in bytes(uart.sent)


def test_an_undelivered_final_report_waits_in_the_outbox_and_blocks_new_jobs(tmp_path):
    api = Api([JOB], LABELS)
    r, uart = runner(api, flash_dir=str(tmp_path))
    real_control = api.control
    failing = [True]

    def control(job_id, diff):
        if diff["state"]["type"] == "DONE" and failing[0]:
            raise ServiceError("HTTP 503")
        real_control(job_id, diff)
    api.control = control
    with pytest.raises(Undelivered, match="DONE not delivered; kept for later"):
        r.run_pending("p1")
    second = dict(JOB, id="j2")
    api.jobs = [JOB, second]  # j1 is handed out again: the service never saw DONE
    with pytest.raises(Undelivered, match="DONE not delivered"):
        r, uart = restart(api, str(tmp_path))
        r.run_pending("p1")
    assert LABELS not in bytes(uart.sent)  # nothing new while a report is pending
    failing[0] = False
    r.run_pending("p1")
    assert [c for c in api.controls if c[1]["state"]["type"] == "DONE"] == [
        ("j1", {"state": {"type": "DONE"}, "pages_printed": 40}),
        ("j2", {"state": {"type": "DONE"}, "pages_printed": 40})]
    assert bytes(uart.sent).count(LABELS) == 1  # j2 only: j1 was not printed again


def test_the_same_job_twice_in_one_fetch_prints_once():
    api = Api([JOB, dict(JOB)], LABELS)
    r, uart = runner(api)
    assert r.run_pending("p1") == 1
    assert bytes(uart.sent).count(LABELS) == 1


@pytest.mark.parametrize("ticket, copies", [
    ({"version": "1.0", "print": {"copies": {"copies": 3}}}, 3),
    ({"version": "1.0", "print": {"copies": {"copies": "2"}}}, 2),
    ({"version": "1.0"}, 1)])
def test_copies_stream_the_payload_again(ticket, copies):
    api = Api([JOB], LABELS)
    api.ticket_reply = ticket
    r, uart = runner(api)
    r.run_pending("p1")
    assert bytes(uart.sent).count(LABELS) == copies
    assert api.offsets == [0] * copies  # each copy downloaded again: constant memory
    assert api.controls[-1] == ("j1", {"state": {"type": "DONE"}, "pages_printed": 40 * copies})


@pytest.mark.parametrize("ticket", [{"print": {"copies": {"copies": 0}}},
                                    {"print": {"copies": {"copies": 5000}}},
                                    {"print": {"copies": "many"}}, {"print": []}])
def test_a_ticket_the_printer_cannot_honour_aborts_the_job(ticket):
    api = Api([JOB], LABELS)
    api.ticket_reply = ticket
    r, uart = runner(api)
    r.run_pending("p1")
    assert api.controls[-1] == ("j1", {"state": {"type": "ABORTED",
                                                 "device_action_cause": {"error_code": "INVALID_TICKET"}}})
    assert LABELS not in bytes(uart.sent)


class Ticking(FakeClock):
    """A clock that moves 10 ms on every look, as a real one does while code runs."""

    def ticks_ms(self):
        self.now += 10
        return self.now


def test_a_receipt_printer_out_of_paper_mid_job_is_held_by_the_runner_and_resumed():
    from firmware.printers.escpos import EscPosDriver
    clock = Ticking()
    receipt = b"line of a receipt\n" * 40 + b"\x1dVB\x00"
    uart = FakeUart({b"\x10\x04\x01": b"\x12", b"\x1da\x0e": b"\x10\x00\x00\x00"})
    blocked_at = []

    def accept(n):  # the paper runs out after 300 bytes of the job; it is back at 40 s
        if clock.now >= 40000:
            return n
        room = max(0, 3 + 300 - len(uart.sent))  # 3: the GS a the job starts with
        if not room and not blocked_at:
            blocked_at.append(clock.now)
            uart.rx += b"\x18\x00\x0c\x00"  # status back: offline, roll paper end
        return min(n, room)
    uart.accept = accept
    api = Api([dict(JOB, contentType="application/x-escpos")], receipt)
    monitor = Monitor()
    r = JobRunner(api, EscPosDriver(uart, clock, stall_ms=10000, status_back=True, completion="dle_eot"),
                  clock, ListLog(), Backoff(lambda: 0.5), bytearray(256), 60000, monitor, 600000, journal(), status())
    assert r.run_pending("p1") == 1
    assert [d for _, d in api.controls] == [
        {"state": {"type": "IN_PROGRESS"}},
        {"state": {"type": "STOPPED", "device_state_cause": {"error_code": "INPUT_TRAY"}}},
        {"state": {"type": "IN_PROGRESS"}},
        {"state": {"type": "DONE"}, "pages_printed": 1}]
    assert bytes(uart.sent).count(receipt) == 1 and ("paper_out", False) in monitor.states
    assert api.offsets == [0, 512]  # the reports took the one connection; the download went on after it


def test_a_printer_that_never_takes_the_rest_aborts_the_job_once_fault_wait_passes():
    from firmware.printers.base import PrinterStall
    clock = Ticking()
    uart = FakeUart({HS: READY_HS})
    uart.accept = lambda n: max(0, min(n, 300 - len(uart.sent)))
    api = Api([JOB], LABELS)
    when = []
    control = api.control
    api.control = lambda job_id, diff: (when.append(clock.now), control(job_id, diff))
    r = JobRunner(api, ZplDriver(uart, clock, stall_ms=5000), clock, ListLog(), Backoff(lambda: 0.5),
                  bytearray(256), 60000, Monitor(), 60000, journal(), status())
    with pytest.raises(PrinterStall):  # asked for its status after the job: still blocked
        r.run_pending("p1")
    assert [d["state"]["type"] for _, d in api.controls] == ["IN_PROGRESS", "STOPPED", "ABORTED"]
    assert api.controls[1][1]["state"]["device_state_cause"] == {"error_code": "OTHER"}
    assert api.controls[-1][1]["state"]["device_action_cause"] == {"error_code": "PRINT_FAILURE"}
    assert 65000 <= when[-1] - when[0] < 70000  # the stall timeout, then fault_wait
    assert r._journal.job is None and not r._journal.outbox
