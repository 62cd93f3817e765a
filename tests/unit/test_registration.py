import json

import pytest

from firmware import cloudprint as CP
from firmware import registration as R
from firmware.cloudprint import ApiError, ServiceError
from firmware.printers.zpl import ZplDriver
from firmware.console import Status
from firmware.indicator import Indicator
from firmware.store import Flash
from tests.fakes import Body, FakeClock, FakeUart, ListLog

SETTINGS = {"service_url": "https://svc/cloudprint", "oauth_client_id": "cid",
            "oauth_client_secret": "csecret", "printer_name": "Dock 3", "claim_poll_s": 6,
            "mqtt_keepalive_s": 45}
REPLY = {"success": True, "printers": [{"id": "p-1"}], "registration_token": "AB12C",
         "token_duration": "30", "invite_url": "https://svc/claim",
         "complete_invite_url": "https://svc/claim?token=AB12C",
         "polling_url": "https://svc/getauthcode?printerid=p-1&oauth_client_id="}
CDD = {"version": "1.0", "printer": {"supported_content_type": [{"content_type": "application/x-zpl"}]}}


class ScriptedApi:
    def __init__(self, polls):
        self.polls = list(polls)
        self.calls = []

    def call(self, interface, fields, auth=True, multipart=False, url=None, spec=None):
        self.calls.append((interface, fields, auth, multipart, url))
        if interface == "register":  # the reply as the service sends it, read as the agent reads it
            body = json.dumps(dict(REPLY, printers=[dict(REPLY["printers"][0], capabilities=CDD)])).encode()
            return CP.pick(spec, Body(body)) if spec else json.loads(body)
        step = self.polls.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def make(tmp_path, api, exchange=None, monkeypatch=None):
    clock = FakeClock()
    log = ListLog()
    uart = FakeUart()
    reg = R.Registration(api, None, Flash(str(tmp_path)), ZplDriver(uart, clock), clock, log,
                         SETTINGS, "https://svc/oauth2/token", {"proxy": "px", "uuid": "u1"}, "0.1",
                         Status(Indicator(), lambda: "net", lambda: None))
    return reg, clock, log, uart


def test_register_fields_follow_gcp_2_0():
    fields = {f[0]: (f[1], f[2]) for f in R.register_fields(
        SETTINGS, {"proxy": "px", "uuid": "u1"}, ZplDriver(FakeUart(), FakeClock()), "0.1")}
    assert fields["gcp_version"] == ("2.0", None) and fields["use_cdd"] == ("true", None)
    assert fields["proxy"] == ("px", None) and fields["name"] == ("Dock 3", None)
    cdd = json.loads(fields["capabilities"][0])
    types = [c["content_type"] for c in cdd["printer"]["supported_content_type"]]
    assert types == ["application/x-zpl", "application/vnd.cups-raw"]
    assert json.loads(fields["semantic_state"][0]) == {"version": "1.0", "printer": {"state": "IDLE"}}
    assert fields["capabilities"][1] == "application/json" and fields["firmware"] == ("0.1", None)
    local = json.loads(fields["local_settings"][0])["current"]
    assert local["xmpp_timeout_value"] == 45 and local["local_discovery"] is False


@pytest.mark.parametrize("drop", ["polling_url", "registration_token", "complete_invite_url", "printers"])
def test_register_reply_missing_a_field_is_a_clear_error(drop):
    reply = dict(REPLY)
    del reply[drop]
    with pytest.raises(R.RegistrationError, match="no " + drop):
        R.parse_register_reply(reply)
    with pytest.raises(R.RegistrationError, match="token_duration"):
        R.parse_register_reply(dict(REPLY, token_duration="soon"))


def test_claimed_after_polls_no_faster_than_5s(tmp_path, monkeypatch):
    api = ScriptedApi([ApiError("getauthcode", 502, "Token not registered yet."),
                       ServiceError("HTTP 503"),
                       {"success": True, "authorization_code": "4/code", "user_email": "o@x",
                        "xmpp_jid": "j@x"}])
    reply = {"access_token": "ya29.access", "expires_in": 3600, "mqtt_password": "mq.broker"}
    monkeypatch.setattr(R, "exchange_code", lambda *a: ("1/refresh", reply))
    reg, clock, log, uart = make(tmp_path, api)
    creds, got = reg.run()
    assert creds == {"printer_id": "p-1", "refresh_token": "1/refresh", "xmpp_jid": "j@x",
                     "user_email": "o@x", "firmware": "0.1",
                     "caps_hash": [f for f in api.calls[0][1] if f[0] == "capsHash"][0][1]}
    assert got is reply  # seeds the tokens: no refresh right after claiming
    assert Flash(str(tmp_path)).read_json("credentials.json") == creds
    assert all(ms >= 5000 for ms in clock.slept)
    register = api.calls[0]
    assert register[2] is False and register[3] is True  # anonymous, multipart
    assert api.calls[1][4] == REPLY["polling_url"] + "cid"
    assert b"AB12C" in uart.sent and b"^BQN" in uart.sent
    assert "Code:  AB12C" in log.lines
    assert not any("1/refresh" in line or "ya29.access" in line for line in log.lines)


def test_expired_ticket_returns_none(tmp_path):
    api = ScriptedApi([ApiError("getauthcode", 502, "not yet")] * 10)
    reg, clock, log, _ = make(tmp_path, api)
    assert reg.run() is None
    assert clock.now - 1000 <= 30000 + 6000
    assert any("expired" in line for line in log.lines)


def test_other_refusal_registers_anew(tmp_path):
    reg, _, log, _ = make(tmp_path, ScriptedApi([ApiError("getauthcode", 506, "expired")]))
    assert reg.run() is None
    assert not Flash(str(tmp_path)).exists("credentials.json")


def test_the_register_reply_is_read_for_what_registration_uses_only():
    body = json.dumps(dict(REPLY, printers=[{"id": "p-1", "capabilities": CDD, "tags": ["x"] * 50}])).encode()
    obj = CP.pick(R.REGISTER_REPLY, Body(body))
    assert obj["printers"] == [{"id": "p-1"}]  # the CDD echo and the rest are never parsed
    assert R.parse_register_reply(obj)["printer_id"] == "p-1"
    assert obj["registration_token"] == "AB12C" and obj["success"] is True
