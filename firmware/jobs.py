# The job runner: /fetch, then per job /control IN_PROGRESS, stream fileUrl through
# one preallocated buffer to the printer, and report DONE or ABORTED with a cause.
from firmware.cloudprint import ApiError, ServiceError, AuthRejected, ERR_UNKNOWN_JOB, ERR_JOB_FINISHED
from firmware.http import HttpError
from firmware.oauth import OAuthError
from firmware.printers.base import HEAD_OPEN, PAPER_OUT, PAUSED, PrinterError, PrinterFault, READY

RAW = "application/vnd.cups-raw"  # "any raw bytes" (reference §6)
MAX_JOBS_PER_FETCH = 16
REPORT_TRIES = 5
DOWNLOAD_TRIES = 4  # failed attempts in a row before a download counts as failed
FAULT_POLL_MS = 2000


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


class JobRunner:
    def __init__(self, api, driver, clock, log, backoff, buffer_size, download_deadline_ms,
                 monitor, fault_wait_ms):
        self._api = api
        self._monitor = monitor
        self._fault_wait_ms = fault_wait_ms
        self._driver = driver
        self._clock = clock
        self._log = log
        self._backoff = backoff
        self._buf = bytearray(buffer_size)
        self._mv = memoryview(self._buf)
        self._deadline_ms = download_deadline_ms
        self._raw_type = driver.content_type
        self._job_id = None

    def run_pending(self, printer_id):
        """Print every job /fetch hands out; the number handled."""
        self._monitor.printer_id = printer_id
        state = self._driver.status()
        self._monitor.report(state)
        jobs = self._api.fetch(printer_id)
        done = 0
        for job in jobs[:MAX_JOBS_PER_FETCH]:
            if not isinstance(job, dict) or not isinstance(job.get("id"), str):
                self._log.warn("fetch: skipping a job without an id")
                continue
            self.run(job, state)
            done += 1
            state = self._driver.status()  # for the next job, and the printer's state after
            self._monitor.report(state)
        return done

    def run(self, job, state):
        """Print one job; state is the printer's state just before it."""
        job_id = job["id"]
        log = self._log
        ctype = job.get("contentType")
        url = job.get("fileUrl")
        log.info("job %s: %s (%s)", job_id, job.get("title", ""), ctype)
        if not self._report(job_id, {"state": {"type": "IN_PROGRESS"}}):
            return
        if ctype not in (self._raw_type, RAW) or not isinstance(url, str):
            log.warn("job %s: content type %s is not printable here", job_id, ctype)
            self._report(job_id, aborted("device_action_cause", "DOWNLOAD_FAILURE"))
            return
        if state != READY and not self._hold(job_id, state):
            self._report(job_id, aborted("device_action_cause", "PRINT_FAILURE"))
            return
        self._monitor.report(READY, True)
        result = self._stream(job_id, url)
        self._report(job_id, result)

    def _stream(self, job_id, url):
        """Download the job and stream it to the printer; the final state diff. A download
        that breaks is resumed where it broke (HTTP Range), so is one that a state report
        closed while the printer was stopped."""
        driver = self._driver
        buf = self._buf
        mv = self._mv
        taken = 0  # bytes of the file taken from the download, all handed to the printer
        breaks = 0  # failed attempts since the last progress
        resp = None
        self._job_id = job_id
        driver.watcher = self
        try:
            while True:
                n = -1
                if resp is None:
                    resp = self._open(job_id, url, taken)
                    if resp is False:  # refused for good: retrying cannot help
                        resp = None
                        self._end_quietly(taken)
                        return aborted("device_action_cause", "DOWNLOAD_FAILURE")
                    if resp is not None and not taken:
                        driver.begin_job()
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
                        self._end_quietly(taken)
                        return aborted("device_action_cause", "DOWNLOAD_FAILURE")
                    self._clock.sleep_ms(self._backoff.next_ms())
                    continue
                if n == 0:
                    break
                breaks = 0
                taken += n
                driver.feed(buf, mv, n)
                if resp.closed:  # a state report took the connection while the printer was stopped
                    resp = None
            resp.close()
            resp = None
            while True:
                try:
                    driver.end_job(True)
                    break
                except PrinterFault as e:  # the printer holds the rest of the job
                    if not self._hold(job_id, e.state):
                        raise
        except PrinterError as e:
            self._log.warn("job %s: printer failed after %d bytes: %s", job_id, taken, e)
            return aborted("device_action_cause", "PRINT_FAILURE")
        finally:
            driver.watcher = None
            if resp is not None:
                resp.close()
        self._log.info("job %s: %d bytes sent, %d pages", job_id, taken, driver.pages)
        return {"state": {"type": "DONE"}, "pages_printed": driver.pages}

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

    # ---- the driver's watcher: the printer stopped or resumed taking the job's bytes
    def stopped(self, state):
        self._log.warn("job %s: printer is %s; waiting", self._job_id, state)
        self._report(self._job_id, stopped_diff(state))
        self._monitor.report(state)

    def resumed(self):
        self._log.info("job %s: printer takes data again; continuing", self._job_id)
        self._report(self._job_id, {"state": {"type": "IN_PROGRESS"}})
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
            waited += FAULT_POLL_MS
            state = self._driver.status()
        log.info("job %s: printer ready again; continuing", job_id)
        self._report(job_id, {"state": {"type": "IN_PROGRESS"}})
        self._monitor.report(READY, True)
        return True

    def _end_quietly(self, sent):
        if sent:
            try:
                self._driver.end_job(False)
            except PrinterError:
                pass

    def _report(self, job_id, diff):
        """Deliver a state diff, retrying transient failures; False if it did not land."""
        self._backoff.reset()
        for attempt in range(REPORT_TRIES):
            try:
                self._api.control(job_id, diff)
                return True
            except ApiError as e:
                if e.code in (ERR_UNKNOWN_JOB, ERR_JOB_FINISHED):
                    self._log.info("job %s: service no longer wants updates (%s)", job_id, e)
                else:
                    self._log.warn("job %s: control refused: %s", job_id, e)
                return False
            except (HttpError, ServiceError, OAuthError, AuthRejected) as e:
                self._log.warn("job %s: control failed: %s", job_id, e)
                if attempt < REPORT_TRIES - 1:
                    self._clock.sleep_ms(self._backoff.next_ms())
        return False
