# The job journal and the report outbox, one small file in flash. It is written at job
# boundaries only (never per chunk: flash wear) and says, after a power cut, what became
# of the job in flight, so no job is printed twice and no final report is lost.
#
# Stages of the job in flight (reference §5.6):
#   accepted  taken from /fetch, no byte sent: after a reboot it prints normally
#   printing  bytes are going to the printer: after a reboot it is ABORTED, not reprinted
#   sent      every byte is in the printer: after a reboot it is finished and reported DONE
# A final state goes to the outbox before it is sent and leaves it once delivered.
#
# Finished jobs are remembered as the first 8 bytes of the SHA-256 of their id, in one
# fixed buffer: sixteen ids as strings held about 1 KiB of a small heap. Two ids share a
# digest with a chance of about 2**-60 per job.
from micropython import const
import binascii
import hashlib

from firmware.store import CorruptFile

JOURNAL = "journal.json"
ACCEPTED = "accepted"
PRINTING = "printing"
SENT = "sent"
STAGES = (ACCEPTED, PRINTING, SENT)
RECENT = 16  # finished jobs remembered, so a job handed out again is not printed again
_DIGEST = const(8)
_OUTBOX_MAX = const(8)  # the runner fetches nothing new while a report is pending, so 1 is usual


class Journal:
    def __init__(self, flash, log):
        self._flash = flash
        self._log = log
        self.job = None  # {"id", "url", "type", "title", "stage", "pages"}
        self._seen = bytearray(RECENT * _DIGEST)  # a ring of digests (_digest)
        self._seen_n = 0  # digests held
        self._seen_next = 0  # the slot the next one takes
        self.outbox = []  # [[job id, final state diff], ...]
        try:
            raw = flash.read_json(JOURNAL)
        except CorruptFile as e:
            log.error("%s; starting with an empty journal", e)
            raw = None
        if raw:
            self._load(raw)

    def _load(self, raw):
        job = raw.get("job")
        if isinstance(job, dict) and isinstance(job.get("id"), str) and job.get("stage") in STAGES:
            self.job = job
        seen = raw.get("seen")  # the ring as it was, and the slot its next digest takes
        if isinstance(seen, str) and len(seen) <= 2 * len(self._seen) and len(seen) % (2 * _DIGEST) == 0:
            try:
                seen = binascii.unhexlify(seen)
            except ValueError:
                seen = b""
            self._seen[:len(seen)] = seen
            self._seen_n = n = len(seen) // _DIGEST
            at = raw.get("next")
            self._seen_next = at if n == RECENT and isinstance(at, int) and 0 <= at < RECENT else n % RECENT
        recent = raw.get("recent")  # an older firmware's journal: the ids themselves
        if isinstance(recent, list):
            for job_id in recent:
                if isinstance(job_id, str):
                    self._remember(job_id)
        outbox = raw.get("outbox")
        if isinstance(outbox, list):
            self.outbox = [e for e in outbox if isinstance(e, list) and len(e) == 2
                           and isinstance(e[0], str) and isinstance(e[1], dict)][-_OUTBOX_MAX:]

    def _save(self):
        used = memoryview(self._seen)[:self._seen_n * _DIGEST]
        seen = binascii.hexlify(used).decode()  # type: ignore[arg-type]  # any buffer will do
        self._flash.write_json(JOURNAL, {"job": self.job, "seen": seen, "next": self._seen_next,
                                         "outbox": self.outbox})

    def knows(self, job_id):
        """True for the job in flight, one finished lately, or one whose report is pending."""
        if self.job is not None and self.job["id"] == job_id:
            return True
        if self._find(_digest(job_id)):
            return True
        for entry in self.outbox:
            if entry[0] == job_id:
                return True
        return False

    def accept(self, job):
        title = job.get("title")
        self.job = {"id": job["id"], "url": job.get("fileUrl"), "type": job.get("contentType"),
                    "title": title[:64] if isinstance(title, str) else "", "stage": ACCEPTED}
        self._save()

    def stage(self, stage, pages=None):
        self.job["stage"] = stage
        if pages is not None:
            self.job["pages"] = pages
        self._save()

    def finish(self, diff):
        """The job in flight ends with diff: into the outbox until delivered()."""
        job_id = self.job["id"]
        self.job = None
        if len(self.outbox) >= _OUTBOX_MAX:
            dropped = self.outbox.pop(0)
            self._log.error("report outbox full; dropping the report for job %s", dropped[0])
        self.outbox.append([job_id, diff])
        self._save()

    def drop(self):
        """The service no longer wants the job in flight (deleted, finished elsewhere)."""
        self._remember(self.job["id"])
        self.job = None
        self._save()

    def delivered(self, job_id):
        self.outbox = [e for e in self.outbox if e[0] != job_id]
        self._remember(job_id)
        self._save()

    def _remember(self, job_id):
        d = _digest(job_id)
        if not self._find(d):
            at = self._seen_next * _DIGEST
            self._seen[at:at + _DIGEST] = d
            self._seen_next = (self._seen_next + 1) % RECENT
            self._seen_n = min(self._seen_n + 1, RECENT)

    def _find(self, d):
        seen, end = self._seen, self._seen_n * _DIGEST
        i = seen.find(d, 0, end)
        while i >= 0 and i % _DIGEST:  # a match must start at a slot
            i = seen.find(d, i + 1, end)
        return i >= 0

    def wipe(self):
        """Forget everything: the printer is no longer registered."""
        self.job = None
        self._seen_n = self._seen_next = 0
        self.outbox = []
        self._flash.remove(JOURNAL)


def _digest(job_id):
    return hashlib.sha256(job_id.encode()).digest()[:_DIGEST]
