"""cloudprint.py and oauth.py over scripted HTTP replies."""
import json
from urllib.parse import parse_qs

import pytest

from firmware import cloudprint as CP
from firmware import oauth
from firmware.http import Http
from tests.fakes import Connector, FakeClock, FakeConn, FakeUart, ListLog, http_reply


def jreply(obj, status=200, headers=()):
    return FakeConn(http_reply(status, json.dumps(obj).encode(), headers))


class StaticTokens:
    def __init__(self):
        self.n = 0

    def access_token(self):
        return "tok%d" % self.n

    def invalidate(self):
        self.n += 1


def api(*conns):
    connector = Connector(*conns)
    cp = CP.CloudPrint(Http(connector, FakeClock()), "http://svc/cloudprint", "proxy-1", StaticTokens())
    return cp, connector


def sent(conn):
    head, _, body = bytes(conn.written).partition(b"\r\n\r\n")
    return head.decode(), body


def test_fetch_sends_bearer_and_proxy_and_parses_jobs():
    c = jreply({"success": True, "jobs": [{"id": "j1"}]})
    cp, _ = api(c)
    assert cp.fetch("p1") == [{"id": "j1"}]
    head, body = sent(c)
    assert head.startswith("POST /cloudprint/fetch HTTP/1.1")
    assert "Authorization: Bearer tok0" in head and "X-CloudPrint-Proxy: proxy-1" in head
    assert parse_qs(body.decode()) == {"printerid": ["p1"]}


def test_fetch_413_is_left_to_the_caller_it_also_means_no_such_printer():
    cp, _ = api(jreply({"success": False, "errorCode": "413", "message": "No print job"}))
    with pytest.raises(CP.ApiError) as e:
        cp.fetch("p1")
    assert e.value.code == CP.ERR_NO_JOBS


def test_printer_exists_reads_only_the_envelope_of_printer():
    c = jreply({"success": True, "printers": [{"id": "p1", "capabilities": {"x": [1] * 50}}]})
    cp, _ = api(c, jreply({"success": False, "errorCode": 1001, "message": "Unknown printer."}))
    assert cp.printer_exists("p1") is True
    assert parse_qs(sent(c)[1].decode()) == {"printerid": ["p1"]}
    assert cp.printer_exists("p1") is False


def test_403_refreshes_once_then_retries():
    c1 = FakeConn(http_reply(403, b"no"))
    c2 = jreply({"success": True, "jobs": []})
    cp, connector = api(c1, c2)
    assert cp.fetch("p1") == []
    assert "Bearer tok1" in sent(c2)[0]
    cp2, _ = api(FakeConn(http_reply(403, b"")), FakeConn(http_reply(403, b"")))
    with pytest.raises(CP.AuthRejected):
        cp2.fetch("p1")


def test_errors_are_classified():
    cp, _ = api(jreply({"success": False, "errorCode": "1001", "message": "Unknown printer."}))
    with pytest.raises(CP.ApiError) as e:
        cp.local_settings("p1")
    assert e.value.code == 1001
    cp, _ = api(FakeConn(http_reply(503, b"busy", [("Retry-After", "7")])))
    with pytest.raises(CP.ServiceError) as e:
        cp.fetch("p1")
    assert e.value.retry_after_s == 7
    cp, _ = api(FakeConn(http_reply(200, b"<html>oops</html>")))
    with pytest.raises(CP.ServiceError, match="not JSON"):
        cp.fetch("p1")
    cp, _ = api(jreply({"success": True}))
    with pytest.raises(CP.ServiceError, match="no job list"):
        cp.fetch("p1")


def test_control_sends_the_state_diff():
    c = jreply({"success": True})
    cp, _ = api(c)
    cp.control("j1", {"state": {"type": "DONE"}, "pages_printed": 2})
    form = parse_qs(sent(c)[1].decode())
    assert form["jobid"] == ["j1"]
    assert json.loads(form["semantic_state_diff"][0]) == {"state": {"type": "DONE"}, "pages_printed": 2}


def test_as_int_accepts_strings():
    assert CP.as_int("899") == 899 and CP.as_int(899) == 899 and CP.as_int(" 5 ") == 5
    assert CP.as_int("x", 3) == 3 and CP.as_int(None, 4) == 4 and CP.as_int(True, 1) == 1


def tokens(*conns, clock=None):
    log = ListLog()
    clock = clock or FakeClock()
    t = oauth.Tokens(Http(Connector(*conns), clock), clock, log, "http://svc/oauth2/token",
                     "cid", "csecret", "1/refresh")
    return t, log


def test_refresh_then_cache_until_80_percent_of_lifetime():
    clock = FakeClock()
    c1 = jreply({"access_token": "ya29.a", "expires_in": "100"})
    c2 = jreply({"access_token": "ya29.b", "expires_in": 100})
    t, log = tokens(c1, c2, clock=clock)
    assert t.access_token() == "ya29.a"
    form = parse_qs(sent(c1)[1].decode())
    assert form == {"grant_type": ["refresh_token"], "refresh_token": ["1/refresh"],
                    "client_id": ["cid"], "client_secret": ["csecret"]}
    clock.advance(79000)
    assert t.access_token() == "ya29.a"
    clock.advance(2000)
    assert t.access_token() == "ya29.b"
    log.info("leak ya29.b 1/refresh csecret")
    assert log.lines[-1] == "[info] leak *** *** ***"


def test_the_broker_credential_comes_with_the_token_and_stays_secret():
    clock = FakeClock()
    t, log = tokens(jreply({"access_token": "ya29.b", "expires_in": 100, "mqtt_password": "mq.two"}),
                    clock=clock)
    t.seed({"access_token": "ya29.a", "expires_in": 100, "mqtt_password": "mq.one"})
    assert t.broker_password() == "mq.one"  # the code exchange's reply: no refresh
    clock.advance(81000)
    assert t.broker_password() == "mq.two" and t.access_token() == "ya29.b"
    log.info("leak mq.one mq.two")
    assert log.lines[-1] == "[info] leak mq.one ***"  # the old one is dead and forgotten
    t, _ = tokens(jreply({"access_token": "ya29.c", "expires_in": 100}))
    assert t.broker_password() is None  # a service without push


def test_invalid_grant_is_revocation_and_5xx_is_transient():
    t, _ = tokens(jreply({"error": "invalid_grant"}, status=400))
    with pytest.raises(oauth.Revoked):
        t.access_token()
    t, _ = tokens(jreply({"error": "invalid_client"}, status=401))
    with pytest.raises(oauth.ClientRejected):
        t.access_token()
    t, _ = tokens(FakeConn(http_reply(502, b"bad gateway")))
    with pytest.raises(oauth.OAuthError):
        t.access_token()
    t, _ = tokens(jreply({"token_type": "Bearer"}))
    with pytest.raises(oauth.OAuthError, match="no access_token"):
        t.access_token()


def test_cdd_and_firmware_are_sent_only_when_they_changed():
    from firmware import cdd
    from firmware.printers.zpl import ZplDriver

    class Api:
        calls = []

        def update(self, printer_id, fields):
            self.calls.append((printer_id, [f[0] for f in fields]))
    api = Api()
    driver = ZplDriver(FakeUart(), FakeClock())
    creds = {"printer_id": "p1", "caps_hash": cdd.document(driver)[1], "firmware": "1.0"}
    local = ("local_settings", "{}", "application/json")
    assert cdd.sync(api, dict(creds), driver, "1.0", local) is False and api.calls == []
    changed = dict(creds, caps_hash="old")
    assert cdd.sync(api, changed, driver, "1.1", local) is True
    assert api.calls == [("p1", ["use_cdd", "capabilities", "capsHash", "firmware", "local_settings"])]
    assert changed == dict(creds, firmware="1.1")
