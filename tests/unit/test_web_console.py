"""The web console over real HTTP, as a browser without scripts uses it: sign-up and
invitations, log-in, sessions, CSRF, claiming, uploads, previews, cancel, one account
against another. (tests/system/test_console_browser.py drives it in a real Chromium.)"""
import http.client
import http.cookiejar
import io
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from PIL import Image

from tests.service_faults import FaultyService
from tests.unit.test_service_api import call, poll, register
from tools.printservice import status

PASSWORD = "correct horse battery"
LABEL = b"^XA^FO50,50^GB300,300,300^FS^FO50,400^A0N,40,40^FDhello^FS^XZ"
CDD = {"version": "1.0", "printer": {"supported_content_type": [{"content_type": "application/x-zpl"}]}}


class Browser:
    """A cookie jar and a form poster: what a person's browser does without scripts."""

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = None

    def open(self, path, fields=None, files=None, headers=None, method=None):
        data, h = None, dict(headers or {})
        if files:
            data, h["Content-Type"] = multipart(fields or {}, files)
        elif fields is not None:
            data = urllib.parse.urlencode(fields).encode()
        req = urllib.request.Request(self.base + path, data=data, headers=h, method=method)
        try:
            with self.opener.open(req, timeout=15) as r:
                body, code, url, hdrs = r.read(), r.status, r.url, r.headers
        except urllib.error.HTTPError as e:
            body, code, url, hdrs = e.read(), e.code, e.url, e.headers
        m = re.search(rb'name="csrf" value="([^"]+)"', body)
        if m:
            self.csrf = m.group(1).decode()
        return code, url[len(self.base):], body, hdrs

    def post(self, path, fields, files=None, headers=None):
        fields = dict(fields)
        if self.csrf and "csrf" not in fields:
            fields["csrf"] = self.csrf
        return self.open(path, fields, files, headers)

    def cookie(self):
        return next((c for c in self.jar if c.name == "ps_session"), None)


def multipart(fields, files):
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for k, v in fields.items():
        out.write(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (boundary, k, v)).encode())
    for k, (name, data) in files.items():
        out.write(('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                   'Content-Type: application/octet-stream\r\n\r\n' % (boundary, k, name)).encode())
        out.write(data + b"\r\n")
    out.write(("--%s--\r\n" % boundary).encode())
    return out.getvalue(), "multipart/form-data; boundary=" + boundary


def signed_up(svc, email):
    """A Browser logged in to a new account made through an invitation."""
    token = svc.logins.invite("test", email)
    b = Browser(svc.http_url)
    code, where, body, _ = b.post("/console/signup", {"invite": token, "password": PASSWORD, "password2": PASSWORD})
    assert code == 200 and where == "/console/", body
    return b


def claimed_by(svc, browser):
    """A printer registered over the API and claimed through the console: (printer id, reg)."""
    reg = register(svc)
    code, where, body, _ = browser.open("/cloudprint/claim?token=" + reg["registration_token"])
    assert code == 200 and where.startswith("/console/claim?token=") and b"Claim this printer" in body
    code, where, body, _ = browser.post("/console/claim", {"token": reg["registration_token"]})
    pid = reg["printers"][0]["id"]
    assert code == 200 and where == "/console/printers/" + pid, body
    return pid, reg


def db(svc):
    """The service's database as it stands, whichever engine holds it."""
    return svc.store.engine.connect()


def test_sign_up_is_by_invitation_unless_the_operator_opens_it(svc, tmp_path):
    b = Browser(svc.http_url)
    code, _, body, _ = b.open("/console/signup")
    assert code == 400 and b"by invitation" in body and b'name="password"' not in body
    code, _, body, _ = b.post("/console/signup", {"email": "x@example.com", "password": PASSWORD, "password2": PASSWORD})
    assert code == 400 and not svc.accounts.exists("x@example.com")
    with FaultyService(str(tmp_path / "open"), log=lambda m: None, open_signup=True) as open_svc:
        b = Browser(open_svc.http_url)
        code, where, _, _ = b.post("/console/signup", {"email": "x@example.com", "password": PASSWORD,
                                                        "password2": PASSWORD})
        assert code == 200 and where == "/console/" and open_svc.accounts.exists("x@example.com")
        for i in range(9):  # ten new accounts an hour from one address, then no more
            assert Browser(open_svc.http_url).post("/console/signup", {
                "email": "x%d@example.com" % i, "password": PASSWORD, "password2": PASSWORD})[0] == 200
        code, _, body, _ = Browser(open_svc.http_url).post("/console/signup", {
            "email": "y@example.com", "password": PASSWORD, "password2": PASSWORD})
        assert code == 400 and b"Too many new accounts" in body and not open_svc.accounts.exists("y@example.com")


def test_an_invitation_makes_one_account_once_and_the_password_is_kept_as_argon2(svc):
    token = svc.logins.invite("owner@example.com", "New@Example.com")
    b = Browser(svc.http_url)
    code, _, body, _ = b.open("/console/signup?invite=" + token)
    assert code == 200 and b"new@example.com" in body
    assert b.post("/console/signup", {"invite": token, "password": "short", "password2": "short"})[0] == 400
    code, where, body, _ = b.post("/console/signup", {"invite": token, "password": PASSWORD, "password2": PASSWORD})
    assert where == "/console/" and b"new@example.com" in body
    again = Browser(svc.http_url).post("/console/signup", {"invite": token, "password": PASSWORD,
                                                           "password2": PASSWORD})
    assert again[0] == 400 and b"used or has expired" in again[2]
    with db(svc) as c:
        (stored,), = c.exec_driver_sql("SELECT password_hash FROM users WHERE email='new@example.com'")
        sessions = [r[0] for r in c.exec_driver_sql("SELECT id_hash FROM sessions")]
        invitations = [r[0] for r in c.exec_driver_sql("SELECT token_hash FROM invitations")]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert b.cookie().value not in sessions and token not in invitations  # only their hashes


def test_the_first_account_gets_its_password_from_an_invitation(svc):
    token = svc.logins.invite("admin", "owner@example.com")  # made with its key, no password
    b = Browser(svc.http_url)
    assert b.post("/console/signup", {"invite": token, "password": PASSWORD, "password2": PASSWORD})[1] == "/console/"
    with pytest.raises(ValueError):
        svc.logins.invite("admin", "owner@example.com")  # it has a password now


def test_log_in_log_out_and_wrong_passwords(svc):
    signed_up(svc, "a@example.com")
    b = Browser(svc.http_url)
    code, where, _, _ = b.open("/console/jobs")
    assert where == "/console/login?next=%2Fconsole%2Fjobs"
    wrong = b.post("/console/login", {"email": "a@example.com", "password": "not the password"})
    nobody = b.post("/console/login", {"email": "nobody@example.com", "password": "not the password"})
    assert wrong[0] == nobody[0] == 401 and b"Wrong email or password." in wrong[2] and b"Wrong email" in nobody[2]
    code, where, body, hdrs = b.post("/console/login", {"email": "A@example.com", "password": PASSWORD,
                                                         "next": "/console/jobs"})
    assert code == 200 and where == "/console/jobs"
    old = b.cookie().value
    code, where, _, _ = b.post("/console/logout", {})
    assert where == "/console/login"
    stale = Browser(svc.http_url)
    stale.jar.set_cookie(http.cookiejar.Cookie(0, "ps_session", old, None, False, "127.0.0.1", False, False,
                                               "/", True, False, None, False, None, None, {}))
    assert stale.open("/console/")[1].startswith("/console/login")  # the session ended on the server


def test_the_log_in_form_works_while_a_session_is_open(svc):
    b = signed_up(svc, "a@example.com")  # logged in: the log-in form carries no CSRF token
    code, where, _, _ = b.open("/console/login", {"email": "a@example.com", "password": PASSWORD})
    assert code == 200 and where == "/console/"


def test_five_wrong_passwords_make_the_account_wait(svc):
    signed_up(svc, "a@example.com")
    b = Browser(svc.http_url)
    for _ in range(5):
        assert b.post("/console/login", {"email": "a@example.com", "password": "guess guess"})[0] == 401
    code, _, body, _ = b.post("/console/login", {"email": "a@example.com", "password": PASSWORD})
    assert code == 401 and b"wait a minute" in body


def test_the_login_never_redirects_off_the_site(svc):
    signed_up(svc, "a@example.com")
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        b = Browser(svc.http_url)
        assert b.post("/console/login", {"email": "a@example.com", "password": PASSWORD,
                                          "next": evil})[1] == "/console/"


def test_every_post_needs_the_sessions_csrf_token_and_forms_from_elsewhere_are_refused(svc):
    b = signed_up(svc, "a@example.com")
    b.open("/console/account")
    code, _, body, _ = b.post("/console/account", {"action": "new-key", "name": "shop", "csrf": "forged"})
    assert code == 403 and b"expired" in body and svc.accounts.keys("a@example.com") == []
    code, _, body, _ = b.post("/console/account", {"action": "new-key", "name": "shop"})
    key = re.search(rb'id="new-key">([^<]+)<', body).group(1).decode()
    assert code == 200 and [k["name"] for k in svc.accounts.keys("a@example.com")] == ["shop"]
    assert call(svc, "/cloudprint/list", method="GET", headers={"Authorization": "Bearer " + key})[1]["success"]
    assert key.encode() not in b.open("/console/account")[2]  # shown once
    other = Browser(svc.http_url)
    code, _, _, _ = other.post("/console/login", {"email": "a@example.com", "password": PASSWORD},
                               headers={"Origin": "https://evil.example"})
    assert code == 403 and other.cookie() is None


def test_the_session_cookie_is_http_only_same_site_and_secure_over_https(svc):
    signed_up(svc, "a@example.com")
    for url, secure in ((svc.http_url, False), (svc.https_url, True)):
        u = urllib.parse.urlsplit(url)
        conn = (http.client.HTTPSConnection(u.hostname, u.port, context=ssl.create_default_context(
            cafile=svc.certs["ca_pem"])) if secure else http.client.HTTPConnection(u.hostname, u.port))
        conn.request("POST", "/console/login", urllib.parse.urlencode({"email": "a@example.com", "password": PASSWORD}),
                     {"Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse()
        cookie = r.getheader("Set-Cookie")
        assert r.status == 303 and r.getheader("Location") == "/console/"
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and ("Secure" in cookie) == secure
        conn.close()


def test_pages_forbid_framing_and_foreign_scripts(svc):
    b = signed_up(svc, "a@example.com")
    _, _, _, hdrs = b.open("/console/")
    assert "script-src 'self'" in hdrs["Content-Security-Policy"] and "frame-ancestors 'none'" in hdrs[
        "Content-Security-Policy"]
    assert hdrs["Cache-Control"] == "no-store" and hdrs["Referrer-Policy"] == "same-origin"


def test_claim_from_the_ticket_link_then_the_printer_collects_its_code(svc):
    b = signed_up(svc, "a@example.com")
    reg = register(svc)
    anonymous = Browser(svc.http_url)
    code, where, _, _ = anonymous.open("/cloudprint/claim?token=" + reg["registration_token"])
    assert where.startswith("/console/login?next=") and reg["registration_token"] in urllib.parse.unquote(where)
    code, where, body, _ = anonymous.post("/console/login", {"email": "a@example.com", "password": PASSWORD,
                                                              "next": urllib.parse.parse_qs(where.split("?")[1])["next"][0]})
    assert b"Claim this printer" in body and b"a@example.com" in body
    anonymous.post("/console/claim", {"token": reg["registration_token"].lower()})
    assert poll(reg, svc)[1]["user_email"] == "a@example.com"
    code, _, body, _ = b.open("/console/claim?token=" + reg["registration_token"])
    assert code == 400 and b"unknown, used or expired" in body


def test_upload_preview_cancel_and_state(svc):
    b = signed_up(svc, "a@example.com")
    pid, _ = claimed_by(svc, b)
    code, where, body, _ = b.post("/console/print", {"printer": pid, "title": "box 7", "copies": "2"},
                                  files={"file": ("box.zpl", LABEL)})
    assert code == 200 and where == "/console/jobs" and b"box 7" in body and b"QUEUED" in body
    job = svc.store.all("jobs")[0]
    assert b"".join(svc.store.job_chunks(job["id"])) == LABEL and job["content_type"] == "application/x-zpl"
    assert status.copies(job["ticket"]) == 2
    code, _, png, hdrs = b.open("/console/jobs/%s/preview.png" % job["id"])
    img = Image.open(io.BytesIO(png))
    assert code == 200 and hdrs["Content-Type"] == "image/png"
    assert img.getpixel((100, 100)) < 128 and img.getpixel((600, 100)) > 128  # the box, and paper
    live = b.open("/console/jobs?part=live")[2]
    assert live.startswith(b"\n<table") and b"<html" not in live
    assert b.post("/console/jobs/%s/cancel" % job["id"], {})[1] == "/console/jobs"
    assert status.job_state(svc.store.get("jobs", id=job["id"])["state"]) == ("ABORTED", "cancelled")
    code, _, body, _ = b.post("/console/jobs/%s/cancel" % job["id"], {})
    assert code == 409 and b"can no longer be cancelled" in body


def test_the_print_form_sent_twice_prints_once(svc):
    b = signed_up(svc, "a@example.com")
    pid, _ = claimed_by(svc, b)
    form = b.open("/console/print")[2]
    key = re.search(rb'name="idempotency" value="([^"]+)"', form).group(1).decode()
    for _ in range(2):  # a double click, or the page sent again
        assert b.post("/console/print", {"printer": pid, "idempotency": key},
                      files={"file": ("l.zpl", LABEL)})[1] == "/console/jobs"
    assert len(svc.store.all("jobs")) == 1
    assert key.encode() not in b.open("/console/print")[2]  # each form its own key


def test_the_printers_page_shows_presence_state_and_reason(svc):
    b = signed_up(svc, "a@example.com")
    pid, _ = claimed_by(svc, b)
    svc.store.update("printers", {"id": pid}, accessed_ms=0, semantic_state=json.dumps(
        {"version": "1.0", "printer": {"state": "STOPPED", "input_tray_state": {"item": [{"vendor_id": "roll",
                                                                                          "state": "EMPTY"}]}}}))
    body = b.open("/console/?part=live")[2]
    assert b"offline" in body and b"STOPPED" in body and b"paper out" in body
    svc.store.set_presence(pid, "online")  # the printer's retained status on the broker
    assert b"online" in b.open("/console/?part=live")[2]


def test_printer_settings_and_delete(svc):
    b = signed_up(svc, "a@example.com")
    pid, _ = claimed_by(svc, b)
    b.open("/console/printers/" + pid)
    assert b.post("/console/printers/" + pid, {"action": "settings", "keepalive": "5"})[0] == 400
    code, _, body, _ = b.post("/console/printers/" + pid, {"action": "settings", "keepalive": "120"})
    assert code == 200 and json.loads(svc.store.printer(pid)["local_settings"])["pending"] == {
        "xmpp_timeout_value": 120}
    assert b.post("/console/printers/" + pid, {"action": "delete"})[1] == "/console/"
    assert svc.store.printer(pid) is None


def test_one_account_sees_and_touches_nothing_of_anothers_in_the_console(svc):
    a = signed_up(svc, "a@example.com")
    pid, _ = claimed_by(svc, a)
    a.post("/console/print", {"printer": pid}, files={"file": ("l.zpl", LABEL)})
    job = svc.store.all("jobs")[0]["id"]
    b = signed_up(svc, "b@example.com")
    b.open("/console/print")
    assert pid.encode() not in b.open("/console/")[2] and job.encode() not in b.open("/console/jobs")[2]
    assert b.open("/console/printers/" + pid)[0] == 404
    assert b.open("/console/jobs/%s/preview.png" % job)[0] == 404
    assert b.post("/console/jobs/%s/cancel" % job, {})[0] == 404
    assert b.post("/console/printers/" + pid, {"action": "delete"})[0] == 404
    code, _, body, _ = b.post("/console/print", {"printer": pid}, files={"file": ("l.zpl", LABEL)})
    assert code == 400 and b"Choose one of your printers" in body
    assert svc.store.printer(pid)["owner"] == "a@example.com" and len(svc.store.all("jobs")) == 1
    assert svc.store.get("jobs", id=job)["state_type"] == "QUEUED"


def test_an_upload_without_a_session_is_refused_before_its_body_is_read(svc):
    u = urllib.parse.urlsplit(svc.http_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.putrequest("POST", "/console/print")
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(60 * 1024 * 1024))
    conn.endheaders()  # and not a byte of the body
    r = conn.getresponse()
    assert r.status == 403 and r.getheader("Connection") == "close" and b"log in again" in r.read()
    conn.close()


def test_the_admin_command_invites_and_sets_passwords(tmp_path, capsys, monkeypatch):
    from tools.printservice import admin
    from tools.printservice.server import Service
    data = str(tmp_path / "svc")
    Service(data, log=lambda m: None).stop()
    assert admin.main(["--data", data, "invite", "owner@example.com", "--url", "https://print.example.com:8443/"]) == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith("https://print.example.com:8443/console/signup?invite=")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert admin.main(["--data", data, "set-password", "owner@example.com"]) == 1
    assert "10 to 256 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert admin.main(["--data", data, "set-password", "owner@example.com"]) == 0
    assert PASSWORD not in capsys.readouterr().out
    with FaultyService(data, log=lambda m: None) as svc:
        b = Browser(svc.http_url)
        assert b.post("/console/login", {"email": "owner@example.com", "password": PASSWORD})[1] == "/console/"
        token = link.rsplit("=", 1)[1]  # made before the password was set: it takes over nothing now
        code, _, body, _ = Browser(svc.http_url).post("/console/signup", {"invite": token, "password": "x" * 12,
                                                                            "password2": "x" * 12})
        assert code == 400 and b"has a password already" in body
        assert Browser(svc.http_url).post("/console/login", {"email": "owner@example.com",
                                                             "password": PASSWORD})[1] == "/console/"


def test_presence_words():
    p = {"presence": None, "presence_ms": None, "accessed_ms": 1000}
    assert status.online(p, 2000) == (True, "polling")
    assert status.online(p, 1000 + status.CONTACT_WINDOW_MS) == (False, "offline")
    assert status.online(dict(p, presence="online", presence_ms=0), 10 ** 12) == (True, "push")
    assert status.online(dict(p, presence="offline", presence_ms=1500), 2000) == (False, "offline")  # last will
    assert status.online(dict(p, presence="offline", presence_ms=500), 2000) == (True, "polling")  # polled since
    cds = {"printer": {"state": "STOPPED", "cover_state": {"item": [{"state": "OPEN"}]},
                       "vendor_state": {"item": [{"state": "ERROR", "description": "Printer not responding"}]}}}
    assert status.printer_state(json.dumps(cds)) == ("STOPPED", ["head open", "Printer not responding"])
    assert status.printer_state("garbage") == ("UNKNOWN", [])
    assert status.job_state(json.dumps({"state": {"type": "STOPPED", "device_state_cause": {
        "error_code": "INPUT_TRAY"}}})) == ("STOPPED", "paper out")


def test_claim_codes_cannot_be_probed_on_the_claim_page(svc):
    b = signed_up(svc, "a@example.com")
    reg = register(svc)
    for i in range(10):  # looking at unknown codes counts as wrong claims
        assert b.open("/console/claim?token=NOSUCHCODE%d" % i)[0] == 400
    code, _, body, _ = b.open("/console/claim?token=" + reg["registration_token"])
    assert code == 400 and b"Claim this printer" not in body  # a live code, shown to nobody now


def test_a_pdf_upload_is_drawn_for_the_label_printer(svc):
    from tests.unit.test_raster import label_page, mismatch, pdf_of
    b = signed_up(svc, "a@example.com")
    pid, _ = claimed_by(svc, b)
    page = label_page()
    code, where, body, _ = b.post("/console/print", {"printer": pid, "title": "label.pdf"},
                                  files={"file": ("label.pdf", pdf_of(page))})
    assert code == 200 and where == "/console/jobs", body
    job = svc.store.all("jobs")[0]
    assert (job["content_type"], job["submitted_as"]) == ("application/x-zpl", "application/pdf")
    png = b.open("/console/jobs/%s/preview.png" % job["id"])[2]
    assert mismatch(Image.open(io.BytesIO(png)).crop((0, 0) + page.size), page) < 0.01
    code, _, body, _ = b.post("/console/print", {"printer": pid}, files={"file": ("bad.pdf", b"%PDF-1.4 broken")})
    assert code == 400 and b"not a PDF" in body and len(svc.store.all("jobs")) == 1


def test_webhooks_in_the_console_show_the_secret_once_and_the_deliveries(svc):
    from tests.unit.test_webhooks import Receiver
    from tools.hostrun import wait_for
    receiver = Receiver(fail=1)
    try:
        a = signed_up(svc, "a@example.com")
        code, _, body, _ = a.post("/console/webhooks", {"action": "add", "url": receiver.url})
        secret = re.search(rb'id="new-secret">([^<]+)<', body).group(1).decode()
        hook = svc.store.all("webhooks")[0]
        assert code == 200 and secret == hook["secret"] and receiver.url.encode() in body
        assert secret.encode() not in a.open("/console/webhooks")[2]  # shown once
        assert a.post("/console/webhooks", {"action": "add", "url": "javascript:alert(1)"})[0] == 400
        pid, _ = claimed_by(svc, a)
        a.post("/console/print", {"printer": pid}, files={"file": ("l.zpl", LABEL)})
        wait_for(lambda: receiver.accepted()[0], 20, "the event accepted")
        wait_for(lambda: svc.store.count("deliveries") >= 2, 10, "both tries logged")
        page = a.open("/console/webhooks/" + hook["id"])[2]
        assert b"500: answered 500 Internal Server Error" in page and b">200<" in page
        assert b"1 failed tries" not in a.open("/console/webhooks")[2]
        b = signed_up(svc, "b@example.com")
        assert b.open("/console/webhooks/" + hook["id"])[0] == 404 and receiver.url.encode() not in b.open(
            "/console/webhooks")[2]
        assert b.post("/console/webhooks", {"action": "delete", "webhook": hook["id"]})[0] == 400
        assert a.post("/console/webhooks", {"action": "delete", "webhook": hook["id"]})[0] == 200
        assert svc.store.get("webhooks", id=hook["id"])["deleted_ms"] is not None
    finally:
        receiver.close()


def test_the_print_form_sets_the_expiry(svc):
    b = signed_up(svc, "a@example.com")
    pid, _ = claimed_by(svc, b)
    assert b'<option value="1209600" selected>14 days</option>' in b.open("/console/print")[2]
    assert b.post("/console/print", {"printer": pid, "expire": "3600"}, files={"file": ("l.zpl", LABEL)})[0] == 200
    job = svc.store.all("jobs")[0]
    assert job["expires_ms"] - job["create_ms"] == 3600 * 1000
    code, _, body, _ = b.post("/console/print", {"printer": pid, "expire": "5"}, files={"file": ("l.zpl", LABEL)})
    assert code == 400 and b"expiry" in body and len(svc.store.all("jobs")) == 1
