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
    assert last.job is None and last.outbox == [] and len(last.recent) == RECENT
    assert last.knows("j%d" % (RECENT + 4)) and not last.knows("a")


def test_a_corrupt_or_odd_journal_starts_empty_with_a_clear_error(tmp_path):
    (tmp_path / JOURNAL).write_bytes(b'{"job": {"id": "a", "stag')
    log = ListLog()
    j = Journal(Flash(str(tmp_path)), log)
    assert j.job is None and "journal.json is not valid JSON" in "\n".join(log.lines)
    (tmp_path / JOURNAL).write_text(json.dumps({"job": {"id": 5, "stage": ACCEPTED}, "recent": [1, "b"],
                                                "outbox": [["c"], ["d", {}], "e"]}))
    j = Journal(Flash(str(tmp_path)), ListLog())
    assert j.job is None and j.recent == ["b"] and j.outbox == [["d", {}]]
    j.wipe()
    assert not (tmp_path / JOURNAL).exists() and Journal(Flash(str(tmp_path)), ListLog()).recent == []
