import json

from firmware.journal import ACCEPTED, JOURNAL, PRINTING, RECENT, Journal
from firmware.store import Flash
from tests.fakes import ListLog


def test_the_journal_survives_a_restart_and_remembers_finished_jobs(tmp_path):
    j = Journal(Flash(str(tmp_path)), ListLog())
    j.accept({"id": "a", "fileUrl": "http://x/a", "contentType": "application/x-zpl", "title": "t" * 500})
    j.stage(PRINTING)
    again = Journal(Flash(str(tmp_path)), ListLog())
    assert again.job == {"id": "a", "url": "http://x/a", "type": "application/x-zpl", "title": "t" * 64,
                         "stage": PRINTING}
    again.finish({"state": {"type": "DONE"}})
    assert Journal(Flash(str(tmp_path)), ListLog()).outbox == [["a", {"state": {"type": "DONE"}}]]
    again.delivered("a")
    for i in range(RECENT + 5):
        again.accept({"id": "j%d" % i})
        again.drop()
    last = Journal(Flash(str(tmp_path)), ListLog())
    assert last.job is None and last.outbox == []
    assert [i for i in range(RECENT + 5) if last.knows("j%d" % i)] == list(range(5, RECENT + 5))
    assert not last.knows("a") and not last.knows("j")
    assert "j20" not in (tmp_path / JOURNAL).read_text()  # ids are kept as digests only
    last.accept({"id": "k"})
    last.drop()  # the ring goes on where it was: the oldest is forgotten first
    after = Journal(Flash(str(tmp_path)), ListLog())
    assert after.knows("k") and not after.knows("j5") and after.knows("j6") and after.knows("j20")


def test_a_journal_of_the_older_firmware_still_knows_its_finished_jobs(tmp_path):
    (tmp_path / JOURNAL).write_text(json.dumps({"job": None, "recent": ["x%d" % i for i in range(20)],
                                                "outbox": []}))
    j = Journal(Flash(str(tmp_path)), ListLog())
    assert [i for i in range(20) if j.knows("x%d" % i)] == list(range(4, 20))
    j.accept({"id": "new"})
    j.drop()
    again = Journal(Flash(str(tmp_path)), ListLog())
    assert again.knows("new") and again.knows("x5") and not again.knows("x4")


def test_a_corrupt_or_odd_journal_starts_empty_with_a_clear_error(tmp_path):
    (tmp_path / JOURNAL).write_bytes(b'{"job": {"id": "a", "stag')
    log = ListLog()
    j = Journal(Flash(str(tmp_path)), log)
    assert j.job is None and "journal.json is not valid JSON" in "\n".join(log.lines)
    (tmp_path / JOURNAL).write_text(json.dumps({"job": {"id": 5, "stage": ACCEPTED}, "recent": [1, "b"],
                                                "outbox": [["c"], ["d", {}], "e"]}))
    j = Journal(Flash(str(tmp_path)), ListLog())
    assert j.job is None and j.knows("b") and not j.knows("1") and j.outbox == [["d", {}]]
    for seen in ("zz" * 8, "ab" * 7, 5, "ab" * 8 * 17):  # not hex, not whole digests, not text, too many
        (tmp_path / JOURNAL).write_text(json.dumps({"job": None, "seen": seen, "outbox": []}))
        assert not Journal(Flash(str(tmp_path)), ListLog()).knows("b")
    j.wipe()
    assert not (tmp_path / JOURNAL).exists() and not Journal(Flash(str(tmp_path)), ListLog()).knows("b")
