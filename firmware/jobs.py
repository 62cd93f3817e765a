# The job runner: /fetch, then per job: journal, /control IN_PROGRESS, /ticket, stream
# fileUrl through one preallocated buffer to the printer, and report DONE or ABORTED
# with a cause. The journal (journal.py) makes this exactly-once across power cuts.
from firmware.cloudprint import ApiError, ServiceError, AuthRejected, ERR_UNKNOWN_JOB, ERR_JOB_FINISHED, as_int
from firmware.http import HttpError
from firmware.journal import ACCEPTED, PRINTING, SENT
from firmware.oauth import OAuthError
from firmware.printers.base import HEAD_OPEN, PAPER_OUT, PAUSED, PrinterError, PrinterFault, READY

RAW = "application/vnd.cups-raw"  # "any raw bytes" (reference §6)
MAX_JOBS_PER_FETCH = 16
MAX_COPIES = 999  # as the CDD says
REPORT_TRIES = 5
DOWNLOAD_TRIES = 4  # failed attempts in a row before a download counts as failed
FAULT_POLL_MS = 2000
IN_PROGRESS = {"state": {"type": "IN_PROGRESS"}}
DELIVERED, GONE, FAILED = 0, 1, 2  # what became of a state report


def stopped_diff(state):
    """The STOPPED diff for a printer state (reference §5.5)."""
    if state == PAUSED:
        return {"state": {"type": "STOPPED", "user_action_cause": {"action_code": "PAUSED"}}}
    code = {PAPER_OUT: "INPUT_TRAY", HEAD_OPEN: "MEDIA_PATH"}.get(state, "OTHER")
    return {"state": {"type": "STOPPED", "device_state_cause": {"error_code": code}}}


def content_range_start(resp):
    """The first byte a 206 reply carries ("bytes START-END/LENGTH"), -1 if unreadable."""
    value = resp.headers.get("content-range", "")
    if not value.startswith("bytes "):
        return -1
    first = value[6:].split("-", 1)[0]
    return int(first) if first.isdigit() else -1


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
    return n if 1 <= n <= MAX_COPIES else None


class JobRunner:
    def __init__(self, api, driver, clock, log, backoff, buffer_size, download_deadline_ms,
                 monitor, fault_wait_ms, journal):
        self._api = api
        self._monitor = monitor
        self._fault_wait_ms = fault_wait_ms
        self._driver = driver
        self._clock = clock
        self._log = log
        self._backoff = backoff
        self._journal = journal
        self._buf = bytearray(buffer_size)
        self._mv = memoryview(self._buf)
        self._deadline_ms = download_deadline_ms
        self._raw_type = driver.content_type
        self._job_id = None
        self.tick = None  # called about once a second while a job runs (push, console)
        self.last_job = None  # "id STATE" of the last job that ended, for the console
        self._ticked = 0

    @property
    def busy(self):
        """A job is between accepted and delivered: the printer is not free."""
        return self._journal.job is not None

    def run_pending(self, printer_id):
        """Deliver pending reports, finish the job a restart interrupted, then print every
        job /fetch hands out; the number handled. ServiceError when a report could not
        be delivered: nothing new is taken until it is; /fetch's ApiError ERR_NO_JOBS
        when nothing is queued."""
        self._monitor.printer_id = printer_id
        journal = self._journal
        self._flush_outbox()
        done = 0
        if journal.job is not None:
            self._resume(journal.job)
            done += 1
        state = self._driver.status()
        self._monitor.report(state)
        jobs = self._api.fetch(printer_id)
        for job in jobs[:MAX_JOBS_PER_FETCH]:
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

    def _flush_outbox(self):
        for job_id, diff in list(self._journal.outbox):
            if self._report(job_id, diff) == FAILED:
                raise ServiceError("job %s: final report still not delivered" % job_id)
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
            self._end_quietly(1)
            self._finish(aborted("device_action_cause", "PRINT_FAILURE"))
        else:  # SENT: every byte is in the printer
            self._log.info("job %s: all bytes were sent before the restart; finishing it", job_id)
            self._job_id = job_id
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
        said = self._report(job_id, IN_PROGRESS)
        if said == GONE:
            self._journal.drop()
            return
        if said == FAILED:  # stays accepted: printed on the next round
            raise ServiceError("job %s: could not report IN_PROGRESS" % job_id)
        if ctype not in (self._raw_type, RAW) or not isinstance(url, str):
            log.warn("job %s: content type %s is not printable here", job_id, ctype)
            self._finish(aborted("device_action_cause", "DOWNLOAD_FAILURE"))
            return
        copies = self._copies(job_id)
        if copies == 0:
            self._journal.drop()
            return
        if copies is None:
            self._finish(aborted("device_action_cause", "INVALID_TICKET"))
            return
        if state != READY and not self._hold(job_id, state):
            self._finish(aborted("device_action_cause", "PRINT_FAILURE"))
            return
        self._monitor.report(READY, True)
        self._finish(self._stream(job_id, url, copies))

    def _copies(self, job_id):
        """Copies from the job's ticket: None if it cannot be honoured, 0 if the job is gone."""
        try:
            ticket = self._api.ticket(job_id)
        except ApiError as e:
            if e.code in (ERR_UNKNOWN_JOB, ERR_JOB_FINISHED):
                return 0
            self._log.warn("job %s: ticket refused: %s", job_id, e)
            return None
        copies = copies_from(ticket)
        if copies is None:
            self._log.warn("job %s: the ticket asks for what this printer cannot do", job_id)
        return copies

    def _finish(self, diff):
        """The journal's job ends with diff: kept in the outbox until it is delivered."""
        job_id = self._journal.job["id"]
        self.last_job = "%s %s" % (job_id, diff["state"]["type"])
        self._journal.finish(diff)
        if self._report(job_id, diff) == FAILED:
            raise ServiceError("job %s: final report not delivered; kept for later" % job_id)
        self._journal.delivered(job_id)

    def _stream(self, job_id, url, copies):
        """Download the job and stream it to the printer, copies times over; the final
        state diff. A download that breaks is resumed where it broke (HTTP Range), so is
        one that a state report closed while the printer was stopped."""
        driver = self._driver
        self._job_id = job_id
        driver.watcher = self
        sent = 0
        try:
            for copy in range(copies):
                n = self._stream_copy(job_id, url, copy == 0)
                if n < 0:  # the download failed after -1 - n bytes of this copy
                    self._end_quietly(sent - 1 - n)
                    return aborted("device_action_cause", "DOWNLOAD_FAILURE")
                sent += n
            self._journal.stage(SENT, driver.pages)
            self._drain(job_id)
        except PrinterError as e:
            self._log.warn("job %s: printer failed after %d bytes: %s", job_id, sent, e)
            return aborted("device_action_cause", "PRINT_FAILURE")
        finally:
            driver.watcher = None
        self._log.info("job %s: %d bytes sent in %d copies, %d pages", job_id, sent, copies, driver.pages)
        return {"state": {"type": "DONE"}, "pages_printed": driver.pages}

    def _stream_copy(self, job_id, url, first):
        """Stream one copy; the bytes sent, or -1 - bytes sent when the download failed."""
        driver = self._driver
        buf = self._buf
        mv = self._mv
        taken = 0  # bytes of the file taken from the download, all handed to the printer
        breaks = 0  # failed attempts since the last progress
        resp = None
        try:
            while True:
                n = -1
                if resp is None:
                    resp = self._open(job_id, url, taken)
                    if resp is False:  # refused for good: retrying cannot help
                        resp = None
                        return -1 - taken
                    if resp is not None and first and not taken:
                        self._journal.stage(PRINTING)  # before the first byte reaches the printer
                        driver.begin_job()
                        first = False
                if resp is not None:
                    try:
                        n = resp.readinto(mv)
                    except HttpError as e:
                        self._log.warn("job %s: download broke after %d bytes: %s", job_id, taken, e)
                        resp.close()
                        resp = None
                if n < 0:
                    breaks += 1
                    if breaks > DOWNLOAD_TRIES:
                        return -1 - taken
                    self._clock.sleep_ms(self._backoff.next_ms())
                    continue
                if n == 0:
                    return taken
                breaks = 0
                taken += n
                driver.feed(buf, mv, n)
                self.idle()
                if resp.closed:  # a state report took the connection while the printer was stopped
                    resp = None
        finally:
            if resp is not None:
                resp.close()

    def _drain(self, job_id):
        """Wait until the printer has printed everything, holding through faults;
        PrinterError when it cannot."""
        while True:
            try:
                self._driver.end_job(True)
                return
            except PrinterFault as e:  # the printer holds the rest of the job
                if not self._hold(job_id, e.state):
                    raise

    def _open(self, job_id, url, offset):
        """The download response positioned at offset; after logging why not, None when
        worth another try, False when the service refused for good (4xx)."""
        try:
            resp = self._api.download(url, self._raw_type, self._deadline_ms, offset)
        except (HttpError, ServiceError, OAuthError, AuthRejected) as e:
            self._log.warn("job %s: download failed: %s", job_id, e)
            return None
        try:
            if resp.status == 206 and offset and content_range_start(resp) == offset:
                return resp
            if resp.status == 200:
                left = offset  # the server ignored the Range: skip what was sent already
                while left:
                    n = resp.readinto(self._mv[:min(left, len(self._mv))])
                    if n == 0:
                        raise HttpError("body ended before byte %d" % offset)
                    left -= n
                return resp
            self._log.warn("job %s: download answered HTTP %d", job_id, resp.status)
            resp.close()
            return False if 400 <= resp.status < 500 and resp.status not in (408, 429) else None
        except HttpError as e:
            self._log.warn("job %s: download failed: %s", job_id, e)
        resp.close()
        return None

    def idle(self):
        """Let the push channel breathe during a long job (at most once a second)."""
        if self.tick is not None:
            now = self._clock.ticks_ms()
            if self._clock.ticks_diff(now, self._ticked) >= 1000:
                self._ticked = now
                self.tick()

    # ---- the driver's watcher: the printer stopped or resumed taking the job's bytes
    def stopped(self, state):
        self._log.warn("job %s: printer is %s; waiting", self._job_id, state)
        self._report(self._job_id, stopped_diff(state))
        self._monitor.report(state)

    def resumed(self):
        self._log.info("job %s: printer takes data again; continuing", self._job_id)
        self._report(self._job_id, IN_PROGRESS)
        self._monitor.report(READY, True)

    def _hold(self, job_id, state):
        """Report STOPPED with the printer's cause and wait until it is ready again (True,
        after reporting IN_PROGRESS) or fault_wait runs out (False)."""
        log = self._log
        log.warn("job %s: printer is %s; waiting", job_id, state)
        waited = 0
        reported = None
        while state != READY:
            if state != reported:
                self._report(job_id, stopped_diff(state))
                self._monitor.report(state)
                reported = state
            if waited >= self._fault_wait_ms:
                log.warn("job %s: printer still %s after %d s", job_id, state, waited // 1000)
                return False
            self._clock.sleep_ms(FAULT_POLL_MS)
            self.idle()
            waited += FAULT_POLL_MS
            state = self._driver.status()
        log.info("job %s: printer ready again; continuing", job_id)
        self._report(job_id, IN_PROGRESS)
        self._monitor.report(READY, True)
        return True

    def _end_quietly(self, sent):
        if sent:
            try:
                self._driver.end_job(False)
            except PrinterError:
                pass

    def _report(self, job_id, diff):
        """Deliver a state diff, retrying transient failures: DELIVERED, GONE (the service
        no longer wants updates for the job) or FAILED (not delivered for now)."""
        self._backoff.reset()
        for attempt in range(REPORT_TRIES):
            try:
                self._api.control(job_id, diff)
                return DELIVERED
            except ApiError as e:
                if e.code in (ERR_UNKNOWN_JOB, ERR_JOB_FINISHED):
                    self._log.info("job %s: service no longer wants updates (%s)", job_id, e)
                else:
                    self._log.warn("job %s: control refused: %s", job_id, e)
                return GONE
            except (HttpError, ServiceError, OAuthError, AuthRejected) as e:
                self._log.warn("job %s: control failed: %s", job_id, e)
                if attempt < REPORT_TRIES - 1:
                    self._clock.sleep_ms(self._backoff.next_ms())
        return FAILED
