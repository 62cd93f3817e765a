# A job's file as one resumable stream: readinto(mv) over as many requests as it takes.
# A break is resumed where it broke with an HTTP Range request; a server that answers
# the whole file again (200) is skipped into; what cannot be had raises DownloadFailed.
#
# The single-connection rule: the agent has one HTTP connection (a second TLS session
# costs heap we do not have), so any other request closes an open download. The job
# runner therefore calls suspend() before it reports anything mid-job, and the next
# readinto resumes at the same byte.
from micropython import const
from firmware.wire import WireError

_TRIES = const(4)  # retries in a row (no byte between them) before the download fails


class DownloadFailed(Exception):
    """The file could not be had: refused for good, or broken again after _TRIES retries."""


def range_start(value):
    """The first byte of a 206 reply's Content-Range ("bytes START-END/LENGTH"), -1 if unreadable."""
    if not value.startswith("bytes "):
        return -1
    first = value[6:].split("-", 1)[0]
    return int(first) if first.isdigit() else -1


class Download:
    def __init__(self, api, url, accept, deadline_ms, clock, backoff, log, job_id):
        self._api = api
        self._url = url
        self._accept = accept
        self._deadline_ms = deadline_ms
        self._clock = clock
        self._backoff = backoff
        self._log = log
        self._job_id = job_id
        self._resp = None
        self.offset = 0  # bytes of the file handed out so far

    def readinto(self, mv):
        """Bytes of the file read into mv, 0 at its end; DownloadFailed."""
        breaks = 0
        while True:
            try:
                if self._resp is None or self._resp.closed:
                    self._resp = self._open(mv)
                n = self._resp.readinto(mv)
                if n == 0:
                    self.suspend()
                self.offset += n
                return n
            except WireError as e:
                self._log.warn("job %s: download broke after %d bytes: %s", self._job_id, self.offset, e)
                self.suspend()
                breaks += 1
                if breaks > _TRIES:
                    raise DownloadFailed("download failed %d times after %d bytes: %s"
                                         % (breaks, self.offset, e))
                self._clock.sleep_ms(self._backoff.next_ms())

    def suspend(self):
        """Give the connection back; the next readinto goes on from the same byte."""
        resp, self._resp = self._resp, None
        if resp is not None:
            resp.close()

    def _open(self, mv):
        """The reply positioned at self.offset (mv is scratch space for skipping);
        WireError when worth another try, DownloadFailed when refused for good."""
        offset = self.offset
        resp = self._api.download(self._url, self._accept, self._deadline_ms, offset)
        try:
            status = resp.status
            if status == 206 and offset and range_start(resp.headers.get("content-range", "")) == offset:
                return resp
            if status == 200:
                left = offset  # the server ignored the Range: skip what was handed out already
                while left:
                    n = resp.readinto(mv[:min(left, len(mv))])
                    if n == 0:
                        raise WireError("body ended before byte %d" % offset)
                    left -= n
                return resp
            if 400 <= status < 500 and status not in (408, 429):
                raise DownloadFailed("download refused: HTTP %d" % status)
            raise WireError("download answered HTTP %d" % status)
        except Exception:
            resp.close()
            raise
