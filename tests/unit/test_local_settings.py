"""Local settings (reference §4.4): pending from the owner, applied and confirmed as current."""
import json

from firmware import local_settings as L
from tests.fakes import ListLog

SETTINGS = {"mqtt_keepalive_s": 60}


class Api:
    def __init__(self, stored):
        self.stored = stored
        self.updates = []

    def local_settings(self, printer_id):
        return self.stored if isinstance(self.stored, dict) else {}

    def update(self, printer_id, fields):
        assert fields[0][0] == "local_settings" and fields[0][2] == "application/json"
        self.updates.append(json.loads(fields[0][1]))


def test_pending_keepalive_is_applied_kept_and_confirmed():
    api = Api({"current": L.current(60), "pending": {"xmpp_timeout_value": 120, "local_discovery": True}})
    creds = {"printer_id": "p1"}
    assert L.apply_pending(api, creds, SETTINGS, ListLog()) == (120, True)
    assert creds[L.KEY] == 120
    # what is in force, Privet stays off whatever was asked
    assert api.updates == [{"current": L.current(120)}]
    assert api.updates[0]["current"]["local_discovery"] is False


def test_out_of_range_or_garbled_values_keep_the_old_one_and_still_confirm():
    for bad in (5, 5000, "soon", None):
        api = Api({"current": L.current(60), "pending": {"xmpp_timeout_value": bad}})
        creds = {"printer_id": "p1", L.KEY: 90}
        log = ListLog()
        assert L.apply_pending(api, creds, SETTINGS, log) == (90, False)
        assert api.updates == [{"current": L.current(90)}] and creds[L.KEY] == 90
        assert any("outside 10..1200" in line for line in log.lines)


def test_nothing_pending_and_current_agrees_sends_nothing():
    api = Api({"current": L.current(60)})
    assert L.apply_pending(api, {"printer_id": "p1"}, SETTINGS, ListLog()) == (60, False)
    assert api.updates == []
    api = Api("not an object")  # none stored: confirm what is in force
    assert L.apply_pending(api, {"printer_id": "p1"}, SETTINGS, ListLog()) == (60, False)
    assert api.updates == [{"current": L.current(60)}]
