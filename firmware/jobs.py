# The job runner: /fetch, then per job /control IN_PROGRESS, stream fileUrl through
# one preallocated buffer to the printer, and report DONE or ABORTED with a cause.
from firmware.cloudprint import ApiError, ServiceError, AuthRejected, ERR_UNKNOWN_JOB, ERR_JOB_FINISHED
from firmware.http import HttpError
from firmware.oauth import OAuthError
from firmware.printers.base import PrinterError, READY

RAW = "application/vnd.cups-raw"  # "any raw bytes" (reference §6)
MAX_JOBS_PER_FETCH = 16
REPORT_TRIES = 5


def aborted(cause_key, code):
    return {"state": {"type": "ABORTED", cause_key: {"error_code": code}}}


class JobRunner:
    def __init__(self, api, driver, clock, log, backoff, buffer_size, download_deadline_ms):
        self._api = api
        self._driver = driver
        self._clock = clock
        self._log = log
        self._backoff = backoff
        self._buf = bytearray(buffer_size)
        self._mv = memoryview(self._buf)
        self._deadline_ms = download_deadline_ms
        self._raw_type = driver.content_type
        self.last_job = None

    def run_pending(self, printer_id):
        """Print every job /fetch hands out; the number handled."""
        jobs = self._api.fetch(printer_id)
        done = 0
        for job in jobs[:MAX_JOBS_PER_FETCH]:
            if not isinstance(job, dict) or not isinstance(job.get("id"), str):
                self._log.warn("fetch: skipping a job without an id")
                continue
            state = self._driver.status()
            if state != READY:
                self._log.warn("printer is %s; jobs wait in the queue", state)
                break
            self.run(job)
            done += 1
        return done

    def run(self, job):
        job_id = job["id"]
        log = self._log
        ctype = job.get("contentType")
        url = job.get("fileUrl")
        log.info("job %s: %s (%s)", job_id, job.get("title", ""), ctype)
        if not self._report(job_id, {"state": {"type": "IN_PROGRESS"}}):
            return
        if ctype not in (self._raw_type, RAW) or not isinstance(url, str):
            log.warn("job %s: content type %s is not printable here", job_id, ctype)
            self._finish(job_id, aborted("device_action_cause", "DOWNLOAD_FAILURE"))
            return
        result = self._stream(job_id, url)
        self._finish(job_id, result)

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
                driver.feed(buf, n)
                sent += n
            driver.end_job(True)
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

    def _end_quietly(self, sent):
        if sent:
            try:
                self._driver.end_job(False)
            except PrinterError:
                pass

    def _finish(self, job_id, diff):
        self.last_job = (job_id, diff["state"]["type"])
        self._report(job_id, diff)

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
