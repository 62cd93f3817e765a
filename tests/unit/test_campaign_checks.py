"""The fault campaign's judge (tests/campaign.py): what it counts as printed twice or as
a DONE job printed wrong, on a made-up printer record."""
from tests.campaign import check_prints, labels


def job(docs, copies, final):
    return {"id": "j", "docs": docs, "copies": copies, "final": final}


def test_the_judge_tells_a_clean_record_from_a_label_printed_twice_or_missing():
    a = labels(0, 0, 3000)
    assert len(a) >= 3 and len(set(a)) == len(a)  # unique labels
    assert check_prints([job(a, 2, "DONE")], a + a) == []
    assert check_prints([job(a, 1, "ABORTED")], a[:1]) == []  # cut short: fewer is fine
    assert check_prints([job(a, 1, "DONE")], a + a[:1])[0].startswith("printed twice")
    assert "DONE but" in check_prints([job(a, 1, "DONE")], a[:-1])[0]
    assert "out of order" in check_prints([job(a, 1, "DONE")], a[::-1])[0]
    assert check_prints([job(a, 1, "ABORTED")], a[:1] * 2)[0].startswith("printed twice")
