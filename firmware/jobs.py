# The job runner: /fetch, then per job: journal, /control IN_PROGRESS, /ticket, stream
# fileUrl through one preallocated buffer to the printer, and report DONE or ABORTED
# with a cause. The journal (journal.py) makes this exactly-once across power cuts.
# It owns the one hold loop: whenever the printer stops (before a job, mid-job with its
# line blocked, while the job drains) it reports STOPPED, waits up to fault_wait and
# reports IN_PROGRESS again; the driver only says what it sees.
from micropython import const
from firmware.cloudprint import ApiError, ERR_UNKNOWN_JOB, ERR_JOB_FINISHED, as_int
from firmware.download import Download, DownloadFailed
from firmware.journal import ACCEPTED, PRINTING, SENT
from firmware.printers.base import (HEAD_OPEN, NOT_ANSWERING, PAPER_OUT, PAUSED, PrinterError, PrinterFault,
                                    PrinterStall, READY)
from firmware.wire import WireError

RAW = "application/vnd.cups-raw"  # "any raw bytes" (reference §6)
_MAX_COPIES = const(999)  # as the CDD says
_REPORT_TRIES = const(5)
_FAULT_POLL_MS = const(2000)  # a stopped printer's status is asked this often
_BLOCKED_POLL_MS = const(50)  # a blocked line is tried this often (it takes bytes the moment it can)
_SEND_SLICE_MS = const(100)  # the longest wait in one hand-over to the printer
_DRAIN_POLL_MS = const(200)
_BREATHE_MS = const(100)  # the clock's idle work gets a turn this often during a job
_TICK_MS = const(1000)  # push is kept alive this often during a job
IN_PROGRESS = {"state": {"type": "IN_PROGRESS"}}


class Undelivered(WireError):
    """A job's state report could not be delivered for now (it is kept, or the job
    stays accepted): nothing new is taken until it is."""


class JobGone(Exception):
    """The service no longer wants updates for this job (deleted, or finished)."""


def stopped_diff(state):
    """The STOPPED diff for a printer state (reference §5.5)."""
    if state == PAUSED:
        return {"state": {"type": "STOPPED", "user_action_cause": {"action_code": "PAUSED"}}}
    code = {PAPER_OUT: "INPUT_TRAY", HEAD_OPEN: "MEDIA_PATH"}.get(state, "OTHER")
    return {"state": {"type": "STOPPED", "device_state_cause": {"error_code": code}}}


def aborted(cause_key, code):
    return {"state": {"type": "ABORTED", cause_key: {"error_code": code}}}


def copies_from(ticket):
    """The copies a CJT asks for; None when this printer cannot honour the ticket."""
    section = ticket.get("print", {})
    if not isinstance(section, dict):
        return None
    item = section.get("copies")
    if item is None:
        return 1
    if not isinstance(item, dict):
        return None
    n = as_int(item.get("copies", 1), -1)
    return n if 1 <= n <= _MAX_COPIES else None


class JobRunner:
    """buf: the one stream buffer (a bytearray); status: where the console reads busy and
    last_job (console.Status); push: the notifier, kept alive during a job (None without
    push)."""

    def __init__(self, api, driver, clock, log, backoff, buf, download_deadline_ms,
                 monitor, fault_wait_ms, journal, status, push=None):
        self._api = api
        self._monitor = monitor
        self._fault_wait_ms = fault_wait_ms
        self._driver = driver
        self._clock = clock
        self._log = log
        self._backoff = backoff
        self._journal = journal
        self._status = status
        self._push = push
        self._buf = buf
        self._mv = memoryview(self._buf)
        self._deadline_ms = download_deadline_ms
        self._raw_type = driver.content_type
        self._download = None  # the open download of the job in flight
        self._ticked = self._breathed = 0

    def run_pending(self, printer_id):
        """Deliver pending reports, finish the job a restart interrupted, then print every
        job /fetch hands out; the number handled. Undelivered when a report could not be
        delivered: nothing new is taken until it is; /fetch's ApiError ERR_NO_JOBS when
        nothing is queued."""
        self._monitor.printer_id = printer_id
        journal = self._journal
        self._status.busy = True
        try:
            self._flush_outbox()
            done = 0
            if journal.job is not None:
                self._resume(journal.job)
                done += 1
            state = self._driver.status()
            self._monitor.report(state)
            jobs = self._api.fetch(printer_id)
            for job in jobs:  # at most 16 (cloudprint.FETCH_REPLY)
                if not isinstance(job, dict) or not isinstance(job.get("id"), str):
                    self._log.warn("fetch: skipping a job without an id")
                    continue
                if journal.knows(job["id"]):
                    self._log.info("job %s: handed out again; already handled, ignored", job["id"])
                    continue
                journal.accept(job)
                self._print(journal.job, state)
                done += 1
                state = self._driver.status()  # for the next job, and the printer's state after
                self._monitor.report(state)
            return done
        finally:
            self._status.busy = journal.job is not None or bool(journal.outbox)

    def _flush_outbox(self):
        for job_id, diff in list(self._journal.outbox):
            try:
                self._report(job_id, diff)
            except JobGone as e:
                self._log.info("job %s: service no longer wants updates (%s)", job_id, e)
            self._journal.delivered(job_id)

    def _resume(self, job):
        """The job in flight when the agent stopped (power cut, crash)."""
        job_id = job["id"]
        stage = job["stage"]
        if stage == ACCEPTED:
            self._log.info("job %s: resuming; no byte of it was sent", job_id)
            self._print(job, self._driver.status())
        elif stage == PRINTING:
            # Part of it went to the printer: a half label beats a duplicate one.
            self._log.warn("job %s: a restart cut it off mid-print; aborted, not printed again", job_id)
            self._cut_off()
            self._finish(aborted("device_action_cause", "PRINT_FAILURE"))
        else:  # SENT: every byte is in the printer
            self._log.info("job %s: all bytes were sent before the restart; finishing it", job_id)
            try:
                self._drain(job_id)
                result = {"state": {"type": "DONE"}, "pages_printed": job.get("pages", 0)}
            except PrinterError as e:
                self._log.warn("job %s: printer failed: %s", job_id, e)
                result = aborted("device_action_cause", "PRINT_FAILURE")
            self._finish(result)

    def _print(self, job, state):
        """Print the journal's accepted job; state is the printer's state just before it."""
        job_id = job["id"]
        log = self._log
        ctype = job["type"]
        url = job["url"]
        log.info("job %s: %s (%s)", job_id, job["title"], ctype)
        try:
            self._report(job_id, IN_PROGRESS)  # on Undelivered it stays accepted: printed next round
            if ctype not in (self._raw_type, RAW) or not isinstance(url, str):
                log.warn("job %s: content type %s is not printable here", job_id, ctype)
                self._finish(aborted("device_action_cause", "DOWNLOAD_FAILURE"))
                return
            copies = self._copies(job_id)
            if copies is None:
                self._finish(aborted("device_action_cause", "INVALID_TICKET"))
                return
            try:
                if state != READY:
                    self._hold(job_id, state)
            except PrinterError as e:
                log.warn("job %s: %s", job_id, e)
                self._finish(aborted("device_action_cause", "PRINT_FAILURE"))
                return
            self._monitor.report(READY, True)
            self._finish(self._stream(job_id, url, copies))
        except JobGone as e:  # deleted or finished before a byte of it was sent
            log.info("job %s: service no longer wants updates (%s)", job_id, e)
            self._journal.drop()

    def _copies(self, job_id):
        """Copies from the job's ticket: None if it cannot be honoured; JobGone."""
        try:
            ticket = self._api.ticket(job_id)
        except ApiError as e:
            if e.code in (ERR_UNKNOWN_JOB, ERR_JOB_FINISHED):
                raise JobGone(str(e))
            self._log.warn("job %s: ticket refused: %s", job_id, e)
            return None
        copies = copies_from(ticket)
        if copies is None:
            self._log.warn("job %s: the ticket asks for what this printer cannot do", job_id)
        return copies

    def _finish(self, diff):
        """The journal's job ends with diff: kept in the outbox until it is delivered."""
        job_id = self._journal.job["id"]
        self._status.last_job = "%s %s" % (job_id, diff["state"]["type"])
        self._journal.finish(diff)
        try:
            self._report(job_id, diff)
        except JobGone as e:
            self._log.info("job %s: service no longer wants updates (%s)", job_id, e)
        self._journal.delivered(job_id)

    def _stream(self, job_id, url, copies):
        """Download the job and stream it to the printer, copies times over; the final
        state diff."""
        driver = self._driver
        buf = self._buf
        mv = self._mv
        sent = 0
        try:
            for _ in range(copies):
                self._download = Download(self._api, url, self._raw_type, self._deadline_ms, self._clock,
                                          self._backoff, self._log, job_id)
                while True:
                    n = self._download.readinto(mv)
                    if n == 0:
                        break
                    if not sent:
                        self._journal.stage(PRINTING)  # before the first byte reaches the printer
                        driver.begin_job()
                    self._feed(job_id, mv if n == len(mv) else mv[:n])
                    driver.count(buf, n)
                    sent += n
                self._end_download()
            if not sent:
                driver.begin_job()  # an empty file: no pages
            self._journal.stage(SENT, driver.pages)
            self._drain(job_id)
        except DownloadFailed as e:
            self._log.warn("job %s: %s", job_id, e)
            self._end_download()
            if sent:
                self._cut_off()
            return aborted("device_action_cause", "DOWNLOAD_FAILURE")
        except PrinterError as e:
            self._log.warn("job %s: printer failed after %d bytes: %s", job_id, sent, e)
            self._end_download()
            return aborted("device_action_cause", "PRINT_FAILURE")
        self._log.info("job %s: %d bytes sent in %d copies, %d pages", job_id, sent, copies, driver.pages)
        return {"state": {"type": "DONE"}, "pages_printed": driver.pages}

    def _feed(self, job_id, mv):
        """Hand mv to the printer, holding whenever it stops taking bytes."""
        driver = self._driver
        clock = self._clock
        off = 0
        last = clock.ticks_ms()
        while off < len(mv):
            n = driver.send(mv[off:] if off else mv, _SEND_SLICE_MS)
            now = clock.ticks_ms()
            if not n:
                state = driver.blocked(clock.ticks_diff(now, last))
                if state is None:
                    self._tick()
                    continue
                n = self._hold(job_id, state, mv[off:])
                now = clock.ticks_ms()
            off += n
            last = now
            self._tick()

    def _drain(self, job_id):
        """Wait until the printer has printed everything, holding through faults;
        PrinterError when it cannot."""
        self._driver.begin_drain()
        while True:
            try:
                if self._driver.drained():
                    return
            except PrinterFault as e:  # the printer holds the rest of the job
                self._hold(job_id, e.state)
                self._driver.begin_drain()
                continue
            self._pause(_DRAIN_POLL_MS)

    def _hold(self, job_id, state, pending=None):
        """The one hold loop: report STOPPED with the printer's cause, wait until it is
        ready, then report IN_PROGRESS. pending: bytes it would not take (ready once it
        takes some: the count is returned); without it, ready once its status says so.
        PrinterFault, or PrinterStall when it never said why, once fault_wait passes."""
        log = self._log
        clock = self._clock
        driver = self._driver
        log.warn("job %s: printer is %s; waiting", job_id, state)
        if self._download is not None:
            self._download.suspend()  # the reports need the one connection (download.py)
        start = blocked_since = clock.ticks_ms()
        reported = None
        taken = 0
        while True:
            if state != reported:
                self._report_quietly(job_id, stopped_diff(state))
                self._monitor.report(state)
                reported = state
            waited = clock.ticks_diff(clock.ticks_ms(), start)
            if waited >= self._fault_wait_ms:
                log.warn("job %s: printer still %s after %d s", job_id, state, waited // 1000)
                if state == NOT_ANSWERING:
                    raise PrinterStall("printer took no data for %d s" % (waited // 1000))
                raise PrinterFault(state)
            if pending is None:
                self._pause(_FAULT_POLL_MS)
                state = driver.status()
                if state == READY:
                    break
            else:
                self._pause(_BLOCKED_POLL_MS)
                taken = driver.send(pending)
                if taken:
                    break
                state = driver.blocked(clock.ticks_diff(clock.ticks_ms(), blocked_since)) or state
        log.info("job %s: printer ready again; continuing", job_id)
        self._report_quietly(job_id, IN_PROGRESS)
        self._monitor.report(READY, True)
        return taken

    def _pause(self, ms):
        self._clock.sleep_ms(ms)
        self._tick()

    def _tick(self):
        """Let the clock's idle work (watchdog, console) in during a long job, and keep
        push alive (at most once a second)."""
        clock = self._clock
        now = clock.ticks_ms()
        if clock.ticks_diff(now, self._breathed) >= _BREATHE_MS:
            self._breathed = now
            clock.breathe()
            if self._push is not None and clock.ticks_diff(now, self._ticked) >= _TICK_MS:
                self._ticked = now
                self._push.tick()

    def _end_download(self):
        if self._download is not None:
            self._download.suspend()
            self._download = None

    def _cut_off(self):
        try:
            self._driver.cut_off()
        except PrinterError:
            pass

    def _report_quietly(self, job_id, diff):
        """A mid-job report: one that is not delivered, or not wanted, does not stop the
        job (its final report says what became of it)."""
        try:
            self._report(job_id, diff)
        except (Undelivered, JobGone):
            pass

    def _report(self, job_id, diff):
        """Deliver a state diff, retrying transient failures; JobGone when the service no
        longer wants updates for the job, Undelivered when it could not be told for now."""
        self._backoff.reset()
        for attempt in range(_REPORT_TRIES):
            try:
                self._api.control(job_id, diff)
                return
            except ApiError as e:
                if e.code not in (ERR_UNKNOWN_JOB, ERR_JOB_FINISHED):
                    self._log.warn("job %s: control refused: %s", job_id, e)
                raise JobGone(str(e))
            except WireError as e:
                self._log.warn("job %s: control failed: %s", job_id, e)
                if attempt < _REPORT_TRIES - 1:
                    self._clock.sleep_ms(self._backoff.next_ms())
        raise Undelivered("job %s: %s not delivered; kept for later" % (job_id, diff["state"]["type"]))
