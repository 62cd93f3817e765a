# The job runner: /fetch, then per job /control IN_PROGRESS, stream fileUrl through
# one preallocated buffer to the printer, and report DONE or ABORTED with a cause.
from firmware.cloudprint import ApiError, ServiceError, AuthRejected, ERR_UNKNOWN_JOB, ERR_JOB_FINISHED
from firmware.http import HttpError
from firmware.oauth import OAuthError
from firmware.printers.base import HEAD_OPEN, PAPER_OUT, PAUSED, PrinterError, PrinterFault, READY

RAW = "application/vnd.cups-raw"  # "any raw bytes" (reference §6)
MAX_JOBS_PER_FETCH = 16
REPORT_TRIES = 5
FAULT_POLL_MS = 2000


def stopped(state):
    """The STOPPED diff for a printer state (reference §5.5)."""
    if state == PAUSED:
        return {"state": {"type": "STOPPED", "user_action_cause": {"action_code": "PAUSED"}}}
    code = {PAPER_OUT: "INPUT_TRAY", HEAD_OPEN: "MEDIA_PATH"}.get(state, "OTHER")
    return {"state": {"type": "STOPPED", "device_state_cause": {"error_code": code}}}


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
        driver = self._driver
        try:
            resp = self._api.download(url, self._raw_type, self._deadline_ms)
        except (HttpError, ServiceError, OAuthError, AuthRejected) as e:
            self._log.warn("job %s: download failed: %s", job_id, e)
            return aborted("device_action_cause", "DOWNLOAD_FAILURE")
        sent = 0
        try:
            if resp.status != 200:
                self._log.warn("job %s: download answered HTTP %d", job_id, resp.status)
                return aborted("device_action_cause", "DOWNLOAD_FAILURE")
            driver.begin_job()
            buf = self._buf
            mv = self._mv
            while True:
                n = resp.readinto(mv)
                if n == 0:
                    break
                driver.feed(buf, mv, n)
                sent += n
            while True:
                try:
                    driver.end_job(True)
                    break
                except PrinterFault as e:  # the printer holds the rest of the job
                    if not self._hold(job_id, e.state):
                        raise
        except HttpError as e:
            self._log.warn("job %s: download broke after %d bytes: %s", job_id, sent, e)
            self._end_quietly(sent)
            return aborted("device_action_cause", "DOWNLOAD_FAILURE")
        except PrinterError as e:
            self._log.warn("job %s: printer failed after %d bytes: %s", job_id, sent, e)
            return aborted("device_action_cause", "PRINT_FAILURE")
        finally:
            resp.close()
        self._log.info("job %s: %d bytes sent, %d pages", job_id, sent, driver.pages)
        return {"state": {"type": "DONE"}, "pages_printed": driver.pages}

    def _hold(self, job_id, state):
        """Report STOPPED with the printer's cause and wait until it is ready again (True,
        after reporting IN_PROGRESS) or fault_wait runs out (False)."""
        log = self._log
        log.warn("job %s: printer is %s; waiting", job_id, state)
        waited = 0
        reported = None
        while state != READY:
            if state != reported:
                self._report(job_id, stopped(state))
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
