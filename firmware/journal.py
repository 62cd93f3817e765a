# The job journal and the report outbox, one small file in flash. It is written at job
# boundaries only (never per chunk: flash wear) and says, after a power cut, what became
# of the job in flight, so no job is printed twice and no final report is lost.
#
# Stages of the job in flight (reference §5.6):
#   accepted  taken from /fetch, no byte sent: after a reboot it prints normally
#   printing  bytes are going to the printer: after a reboot it is ABORTED, not reprinted
#   sent      every byte is in the printer: after a reboot it is finished and reported DONE
# A final state goes to the outbox before it is sent and leaves it once delivered.
from micropython import const
from firmware.store import CorruptFile

JOURNAL = "journal.json"
ACCEPTED = "accepted"
PRINTING = "printing"
SENT = "sent"
STAGES = (ACCEPTED, PRINTING, SENT)
RECENT = 16  # finished job ids kept, so a job handed out again is not printed again
_OUTBOX_MAX = const(8)  # the runner fetches nothing new while a report is pending, so 1 is usual


class Journal:
    def __init__(self, flash, log):
        self._flash = flash
        self._log = log
        self.job = None  # {"id", "url", "type", "title", "stage", "pages"}
        self.recent = []
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
        recent = raw.get("recent")
        if isinstance(recent, list):
            self.recent = [i for i in recent if isinstance(i, str)][-RECENT:]
        outbox = raw.get("outbox")
        if isinstance(outbox, list):
            self.outbox = [e for e in outbox if isinstance(e, list) and len(e) == 2
                           and isinstance(e[0], str) and isinstance(e[1], dict)][-_OUTBOX_MAX:]

    def _save(self):
        self._flash.write_json(JOURNAL, {"job": self.job, "recent": self.recent, "outbox": self.outbox})

    def knows(self, job_id):
        """True for the job in flight, one finished lately, or one whose report is pending."""
        if self.job is not None and self.job["id"] == job_id:
            return True
        if job_id in self.recent:
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
        if job_id not in self.recent:
            self.recent.append(job_id)
            if len(self.recent) > RECENT:
                self.recent.pop(0)

    def wipe(self):
        """Forget everything: the printer is no longer registered."""
        self.job = None
        self.recent = []
        self.outbox = []
        self._flash.remove(JOURNAL)
