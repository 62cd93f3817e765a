"""The print service against the protocol reference, over real HTTP."""
import json
import os
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tools.printservice.api import check_diff
from tools.printservice.client import Client
from tools.printservice.server import Service

CDD = {"version": "1.0", "printer": {"supported_content_type": [{"content_type": "application/x-zpl"}]}}


def call(svc, path, fields=None, method="POST", headers=None, proxy=True):
    url = svc.http_url + path
    data = None
    if method == "GET" and fields:
        url += "?" + urllib.parse.urlencode(fields)
    elif fields is not None:
        data = urllib.parse.urlencode(fields).encode()
    h = {"X-CloudPrint-Proxy": "test"} if proxy else {}
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        return e.code, json.loads(body) if body.startswith(b"{") else body


def register(svc, **extra):
    fields = {"name": "p", "proxy": "px", "capabilities": json.dumps(CDD)}
    fields.update(extra)
    return call(svc, "/cloudprint/register", fields)[1]


def poll(reg, svc, client_id=None):
    """GET the register reply's polling_url, as the printer does."""
    url = reg["polling_url"] + urllib.parse.quote(client_id or svc.client["client_id"])
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, json.loads(r.read())


def claimed_printer(svc, **extra):
    reg = register(svc, **extra)
    owner = Client(svc.http_url + "/cloudprint", svc.owner_key)
    owner.claim(reg["registration_token"])
    pid = reg["printers"][0]["id"]
    code = poll(reg, svc)[1]["authorization_code"]
    status, tok = call(svc, "/oauth2/token", {"grant_type": "authorization_code", "code": code,
                                              "client_id": svc.client["client_id"],
                                              "client_secret": svc.client["client_secret"],
                                              "redirect_uri": "oob"})
    assert status == 200
    return pid, tok, owner, code


def test_register_reply_follows_the_reference(svc):
    reg = register(svc)
    assert reg["success"] is True and isinstance(reg["token_duration"], str)
    assert reg["polling_url"].endswith("oauth_client_id=")
    assert reg["complete_invite_url"].endswith(reg["registration_token"])
    assert isinstance(reg["printers"][0]["createTime"], str)


def test_write_calls_need_the_proxy_header_or_xsrf(svc):
    status, body = call(svc, "/cloudprint/register", {"name": "p", "proxy": "x", "capabilities": "{}"},
                        proxy=False)
    assert status == 200 and body["errorCode"] == 9
    assert register(svc, capabilities="not json")["errorCode"] == 2


def test_claim_poll_exchange_refresh_and_revocation(svc):
    reg = register(svc)
    pid = reg["printers"][0]["id"]
    assert poll(reg, svc)[1]["errorCode"] == 502
    pid, tok, owner, code = claimed_printer(svc)
    assert tok["refresh_token"] and tok["expires_in"] > 0
    again = call(svc, "/oauth2/token", {"grant_type": "authorization_code", "code": code,
                                        "client_id": svc.client["client_id"],
                                        "client_secret": svc.client["client_secret"], "redirect_uri": "oob"})
    assert again == (400, {"error": "invalid_grant", "error_description": "Code is unknown, used or expired."})
    bad = call(svc, "/oauth2/token", {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                                      "client_id": svc.client["client_id"], "client_secret": "wrong"})
    assert bad[0] == 401 and bad[1]["error"] == "invalid_client"
    refresh = {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
               "client_id": svc.client["client_id"], "client_secret": svc.client["client_secret"]}
    assert call(svc, "/oauth2/token", refresh)[0] == 200
    auth = {"Authorization": 'Bearer "%s"' % tok["access_token"]}  # quoted form is accepted
    assert call(svc, "/cloudprint/delete", {"printerid": pid}, headers=auth)[1]["success"]
    assert call(svc, "/oauth2/token", refresh)[1]["error"] == "invalid_grant"


def test_auth_is_required_and_both_schemes_work(svc):
    pid, tok, _, _ = claimed_printer(svc)
    assert call(svc, "/cloudprint/fetch", {"printerid": pid})[0] == 403
    for scheme in ("Bearer", "OAuth", "bearer"):
        status, body = call(svc, "/cloudprint/fetch", {"printerid": pid}, method="GET",
                            headers={"Authorization": "%s %s" % (scheme, tok["access_token"])})
        assert status == 200 and body["errorCode"] == 413


def test_job_state_machine_and_fetch(svc):
    pid, tok, owner, _ = claimed_printer(svc)
    auth = {"Authorization": "Bearer " + tok["access_token"]}
    with pytest.raises(Exception, match="1005"):
        owner.submit(pid, b"%PDF", "application/pdf")
    job = owner.submit(pid, b"^XA^XZ", "application/x-zpl")
    fetched = call(svc, "/cloudprint/fetch", {"printerid": pid}, headers=auth)[1]["jobs"]
    assert [j["id"] for j in fetched] == [job["id"]]
    assert fetched[0]["semanticState"]["delivery_attempts"] == 1

    def control(diff):
        return call(svc, "/cloudprint/control", {"jobid": job["id"], "semantic_state_diff": json.dumps(diff)},
                    headers=auth)[1]
    assert control({"state": {"type": "QUEUED"}})["errorCode"] == 2
    assert control({"state": {"type": "STOPPED"}})["errorCode"] == 2
    assert control({"state": {"type": "ABORTED", "service_action_cause": {"error_code": "OTHER"}}})["errorCode"] == 2
    assert control({"state": {"type": "IN_PROGRESS"}})["success"]
    assert call(svc, "/cloudprint/fetch", {"printerid": pid}, headers=auth)[1]["errorCode"] == 413
    stopped = {"state": {"type": "STOPPED", "device_state_cause": {"error_code": "INPUT_TRAY"}}}
    assert control(stopped)["success"] and control(stopped)["success"]  # repeats are idempotent
    assert control({"state": {"type": "DONE"}, "pages_printed": "1"})["success"]
    assert control({"state": {"type": "DONE"}})["success"]  # a retried DONE is harmless
    assert control({"state": {"type": "IN_PROGRESS"}})["errorCode"] == 1003
    final = owner.job(job["id"])["semanticState"]
    assert final["state"] == {"type": "DONE"} and final["pages_printed"] == 1


def test_fetch_hands_out_a_bounded_batch_oldest_first(svc):
    pid, tok, owner, _ = claimed_printer(svc)
    ids = [owner.submit(pid, b"^XA^XZ", "application/x-zpl", "t" * 500)["id"] for _ in range(11)]
    auth = {"Authorization": "Bearer " + tok["access_token"]}
    status, body = call(svc, "/cloudprint/fetch", {"printerid": pid}, headers=auth)
    assert [j["id"] for j in body["jobs"]] == ids[:8]
    assert all(len(j["title"]) == 200 for j in body["jobs"])


def test_download_needs_the_printers_token(svc):
    pid, tok, owner, _ = claimed_printer(svc)
    job = owner.submit(pid, b"^XA^FDx^FS^XZ", "application/x-zpl")
    url = "/cloudprint/download?id=" + job["id"]
    req = urllib.request.Request(svc.http_url + url, headers={"Authorization": "Bearer " + tok["access_token"]})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.read() == b"^XA^FDx^FS^XZ" and r.headers["Content-Length"] == "13"
    assert call(svc, url, method="GET")[0] == 403


def test_download_resumes_from_a_byte_range(svc):
    pid, tok, owner, _ = claimed_printer(svc)
    job = owner.submit(pid, b"^XA^FDx^FS^XZ", "application/x-zpl")
    url = svc.http_url + "/cloudprint/download?id=" + job["id"]

    def get(rng):
        req = urllib.request.Request(url, headers={"Authorization": "Bearer " + tok["access_token"],
                                                   "Range": rng})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers.get("Content-Range"), r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Range"), e.read()
    assert get("bytes=4-") == (206, "bytes 4-12/13", b"FDx^FS^XZ")
    assert get("bytes=4-12") == (206, "bytes 4-12/13", b"FDx^FS^XZ")
    assert get("bytes=13-") == (416, "bytes */13", b"range not satisfiable")
    for ignored in ("bytes=0-3", "bytes=-5", "bytes=1-2,4-", "items=4-", "bytes=4x-"):
        assert get(ignored) == (200, None, b"^XA^FDx^FS^XZ"), ignored


def test_state_survives_a_restart(tmp_path):
    data = str(tmp_path / "svc")
    with Service(data, log=lambda m: None) as s1:
        pid, _, owner, _ = claimed_printer(s1)
        job = owner.submit(pid, b"^XA^XZ", "application/x-zpl")["id"]
        key, secret = s1.owner_key, s1.client["client_secret"]
    with Service(data, log=lambda m: None) as s2:
        assert s2.owner_key == key and s2.client["client_secret"] == secret
        owner = Client(s2.http_url + "/cloudprint", key)
        assert owner.job(job)["semanticState"]["state"]["type"] == "QUEUED"
        assert [p["id"] for p in owner.printers()] == [pid]


def test_check_diff():
    assert check_diff({"state": {"type": "ABORTED", "device_action_cause": {"error_code": "PRINT_FAILURE"}}}) is None
    assert "exactly one cause" in check_diff({"state": {"type": "DONE", "device_action_cause": {"error_code": "OTHER"}}})
    assert "negative" in check_diff({"pages_printed": -1})


def test_command_line_client_submits_and_lists(svc, tmp_path, capsys):
    from tools.printservice import client as cli
    pid, _, _, _ = claimed_printer(svc)
    label = tmp_path / "label.zpl"
    label.write_bytes(b"^XA^FDcli^FS^XZ")
    base = ["--url", svc.https_url + "/cloudprint", "--ca", svc.certs["ca_pem"],
            "--key-file", str(tmp_path / "svc" / "owner.key")]
    assert cli.main(base + ["submit", pid, str(label), "--copies", "2"]) == 0
    job_id, state = capsys.readouterr().out.split()
    assert state == "QUEUED"
    assert cli.main(base + ["jobs", "--printer", pid]) == 0
    header, line = capsys.readouterr().out.strip().splitlines()
    assert header.split() == ["JOB", "STATE", "WHY", "PAGES", "SUBMITTED", "TITLE"]
    assert line.startswith(job_id) and "QUEUED" in line and "label.zpl" in line
    assert cli.main(base + ["submit", "no-such-printer", str(label)]) == 1
    assert "Unknown printer" in capsys.readouterr().err


def test_simulated_zpl_engine_prints_labels_split_across_steps(tmp_path):
    from tools.printersim.printer import make
    p = make("zpl", str(tmp_path), print_rate=1000)
    stream = b"junk^XA^FDone^FS^XZ^XA^FDtwo^FS^XZ"
    p.feed(stream)
    t = 0.0
    p.engine_step(t)
    for _ in range(200):  # a few bytes per step: every boundary position occurs
        t += 0.003
        p.engine_step(t)
    assert p.printed == [b"^XA^FDone^FS^XZ", b"^XA^FDtwo^FS^XZ"]


def test_claim_codes_have_50_bits_from_an_unambiguous_alphabet_and_read_forgivingly(svc):
    from tools.printservice.store import CODE_ALPHABET
    codes = {register(svc)["registration_token"] for _ in range(20)}
    assert len(codes) == 20
    assert all(len(c) == 10 and set(c) <= set(CODE_ALPHABET) for c in codes)
    assert not set("ILOU") & set(CODE_ALPHABET) and len(CODE_ALPHABET) == 32  # 5 bits a symbol
    code = sorted(codes)[0]
    typed = code.lower().replace("0", "o").replace("1", "l")  # as a person may type it
    owner = Client(svc.http_url + "/cloudprint", svc.owner_key)
    assert owner.claim(typed[:5] + "-" + typed[5:])["success"]


def test_only_the_registering_printer_collects_its_code_and_only_once(svc):
    reg = register(svc)
    pid = reg["printers"][0]["id"]
    Client(svc.http_url + "/cloudprint", svc.owner_key).claim(reg["registration_token"])
    thief = {"printerid": pid, "oauth_client_id": svc.client["client_id"]}  # no secret: a stolen device
    assert call(svc, "/cloudprint/getauthcode", thief, method="GET")[1]["errorCode"] == 505
    assert call(svc, "/cloudprint/getauthcode", dict(thief, secret="guess"), method="GET")[1]["errorCode"] == 505
    token = {"grant_type": "authorization_code", "client_id": svc.client["client_id"],
             "client_secret": svc.client["client_secret"], "redirect_uri": "oob"}
    assert call(svc, "/oauth2/token", dict(token, code="4/made-up"))[0] == 400
    code = poll(reg, svc)[1]["authorization_code"]
    again = poll(reg, svc)[1]
    assert again["success"] is False and again["errorCode"] == 505  # handed out once
    assert call(svc, "/oauth2/token", dict(token, code=code))[0] == 200  # the real printer is unharmed


def test_a_printer_token_lists_only_its_own_printer(svc):
    pid, tok, owner, _ = claimed_printer(svc)
    other, _, _, _ = claimed_printer(svc)  # same proxy "px", another printer
    auth = {"Authorization": "Bearer " + tok["access_token"]}
    listed = call(svc, "/cloudprint/list", {"proxy": "px"}, headers=auth)[1]["printers"]
    assert [p["id"] for p in listed] == [pid]
    assert sorted(p["id"] for p in owner.printers()) == sorted([pid, other])


def test_registration_is_rate_limited_and_expired_ones_are_purged(svc):
    from tools.printservice import api
    limit = api.REGISTER_LIMIT[0]
    replies = [call(svc, "/cloudprint/register", {"name": "p", "proxy": "px", "capabilities": json.dumps(CDD)})
               for _ in range(limit + 1)]
    assert all(r[0] == 200 for r in replies[:limit])
    assert replies[-1][0] == 429 and "Too many registrations" in replies[-1][1]["message"]
    svc.store.delete("rate")
    svc.store.update("registrations", {}, expires_ms=0)
    register(svc)  # the next registration purges the expired ones, with their printers
    assert svc.store.count("registrations") == 1
    assert svc.store.count("printers") == 1


def test_claim_attempts_are_rate_limited_per_account(svc):
    from tools.printservice import api
    owner = Client(svc.http_url + "/cloudprint", svc.owner_key)
    answers = []
    for i in range(api.CLAIM_FAILURE_LIMIT[0] + 1):
        try:
            owner.claim("ZZZZZZZZ%02d" % i)
        except Exception as e:
            answers.append(str(e))
    assert "Unknown claim code" in answers[0] and "Too many wrong claim codes" in answers[-1]
    reg = register(svc)
    with pytest.raises(Exception, match="Too many wrong claim codes"):
        owner.claim(reg["registration_token"])  # even a right one waits out the minute


def test_json_nested_past_the_limit_is_a_400_and_nothing_is_stored(svc):
    deep = '{"printer": ' * 980 + "1" + "}" * 980
    status, body = call(svc, "/cloudprint/register", {"name": "p", "proxy": "px", "capabilities": deep})
    assert status == 400 and "nested deeper" in body["message"]
    assert svc.store.count("printers") == 0
    pid, tok, owner, _ = claimed_printer(svc)
    auth = {"Authorization": "Bearer " + tok["access_token"]}
    status, body = call(svc, "/cloudprint/update", {"printerid": pid, "capabilities": deep}, headers=auth)
    assert status == 400
    assert owner.printers()[0]["id"] == pid  # the owner's /list still works


def test_a_range_with_thousands_of_digits_is_no_server_error(svc):
    pid, tok, owner, _ = claimed_printer(svc)
    job = owner.submit(pid, b"^XA^XZ", "application/x-zpl", "j")
    req = urllib.request.Request(svc.http_url + "/cloudprint/download?id=" + job["id"], headers={
        "Authorization": "Bearer " + tok["access_token"], "X-CloudPrint-Proxy": "px",
        "Range": "bytes=" + "9" * 5000 + "-"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and r.read() == b"^XA^XZ"  # a range we do not serve: the whole file


def test_the_data_directory_and_database_are_private(svc):
    import os
    import stat
    claimed_printer(svc)  # writes: the WAL exists now
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(svc.data_dir) == 0o700
    names = ["owner.key", "ca.key", "server.key", "oauth_client.json"]
    if svc.database_url.startswith("sqlite"):
        names += ["service.db", "service.db-wal", "service.db-shm"]
    for name in names:
        assert mode(os.path.join(svc.data_dir, name)) == 0o600, name


def test_the_certificate_names_the_public_host_and_the_ca_is_kept(tmp_path):
    from cryptography import x509
    from tools.printservice import certs
    first = certs.ensure(str(tmp_path), ["localhost", "127.0.0.1"])
    ca = open(first["ca_der"], "rb").read()
    again = certs.ensure(str(tmp_path), ["localhost", "127.0.0.1", "print.example.com"])
    assert open(again["ca_der"], "rb").read() == ca  # reissued from the kept CA: printers keep theirs
    cert = x509.load_pem_x509_certificate(open(again["cert"], "rb").read())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "print.example.com" in names.get_values_for_type(x509.DNSName)
    svc = Service(str(tmp_path / "svc"), public_host="print.example.com", log=lambda m: None).start()
    try:
        cert = x509.load_pem_x509_certificate(open(svc.certs["cert"], "rb").read())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "print.example.com" in names.get_values_for_type(x509.DNSName)
    finally:
        svc.stop()


def test_a_data_directory_from_before_the_rename_keeps_its_data(tmp_path):
    data = str(tmp_path / "svc")
    with Service(data, log=lambda m: None) as s1:
        pid, _, owner, _ = claimed_printer(s1)
        job = owner.submit(pid, b"^XA^XZ", "application/x-zpl")["id"]
        key = s1.owner_key
    os.rename(os.path.join(data, "service.db"), os.path.join(data, "cloudsim.db"))
    with Service(data, log=lambda m: None) as s2:
        assert s2.owner_key == key
        assert Client(s2.http_url + "/cloudprint", key).job(job)["semanticState"]["state"]["type"] == "QUEUED"
    assert not os.path.exists(os.path.join(data, "cloudsim.db"))


def test_the_service_never_loads_the_test_only_fault_layer():
    import ast
    import glob
    for path in glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "tools", "**", "*.py"),
                          recursive=True):
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "tests" or n.startswith("tests.") for n in names), path
