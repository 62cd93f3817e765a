"""The GCP client interfaces as the GCP Python samples use them (/search, /submit, /jobs,
/deletejob with an owner's token and no XSRF header), job expiry and idempotent submits,
over real HTTP."""
import json
import time

from tests.unit.test_service_api import call, claimed_printer, register
from tools.printservice import api

LABEL = "^XA^FO20,20^FDhi^FS^XZ"


def owner_call(svc, interface, fields, headers=None):
    """As an app would: the owner's key, no proxy header, no XSRF token."""
    h = {"Authorization": "Bearer " + svc.owner_key}
    h.update(headers or {})
    return call(svc, "/cloudprint/" + interface, fields, headers=h, proxy=False)


def submit(svc, pid, **extra):
    fields = {"printerid": pid, "contentType": "application/x-zpl", "title": "t", "content": LABEL}
    fields.update(extra)
    return owner_call(svc, "submit", fields)[1]


def fetch(svc, pid, tok):
    return call(svc, "/cloudprint/fetch", {"printerid": pid}, headers={"Authorization": "Bearer " + tok["access_token"]})[1]


def test_owner_calls_need_no_xsrf_but_printer_side_writes_still_do(svc):
    pid, tok, _, _ = claimed_printer(svc)
    job = submit(svc, pid)
    assert job["success"], job
    assert owner_call(svc, "deletejob", {"jobid": job["job"]["id"]})[1]["success"]
    printer = {"Authorization": "Bearer " + tok["access_token"]}
    assert call(svc, "/cloudprint/update", {"printerid": pid, "firmware": "x"}, headers=printer,
                proxy=False)[1]["errorCode"] == api.ERR_XSRF
    assert call(svc, "/cloudprint/register", {"name": "p", "proxy": "x", "capabilities": "{}"},
                proxy=False)[1]["errorCode"] == api.ERR_XSRF
    assert owner_call(svc, "update", {"printerid": pid, "default_display_name": "Dock 7"})[1]["success"]
    assert owner_call(svc, "delete", {"printerid": pid})[1]["success"]


def test_search_finds_the_owners_printers_by_name_and_connection(svc):
    a, _, _, _ = claimed_printer(svc)
    b, tok_b, _, _ = claimed_printer(svc)
    owner_call(svc, "update", {"printerid": a, "default_display_name": "Dock 7 labels"})
    svc.store.update("printers", {"id": b}, accessed_ms=0)
    found = owner_call(svc, "search", {}, )[1]["printers"]
    assert sorted(p["id"] for p in found) == sorted([a, b])
    assert [p["id"] for p in owner_call(svc, "search", {"q": "dock 7"})[1]["printers"]] == [a]
    online = owner_call(svc, "search", {"connection_status": "ONLINE"})[1]["printers"]
    offline = owner_call(svc, "search", {"connection_status": "OFFLINE"})[1]["printers"]
    assert [p["id"] for p in online] == [a] and [p["id"] for p in offline] == [b]
    assert offline[0]["connectionStatus"] == "OFFLINE"
    assert owner_call(svc, "search", {"connection_status": "SOMETIMES"})[1]["errorCode"] == api.ERR_MISSING
    as_printer = call(svc, "/cloudprint/search", {}, headers={"Authorization": "Bearer " + tok_b["access_token"]})
    assert as_printer[1]["errorCode"] == api.ERR_NOT_AUTHORIZED


def test_jobs_filter_sort_and_page(svc):
    a, _, _, _ = claimed_printer(svc)
    b, _, _, _ = claimed_printer(svc)
    for title, pid in (("box 1", a), ("crate 2", a), ("box 3", b)):
        submit(svc, pid, title=title)
    def titles(**q):
        reply = owner_call(svc, "jobs", q)[1]
        return [j["title"] for j in reply["jobs"]], reply["range"]
    assert titles()[0] == ["box 1", "crate 2", "box 3"]
    assert titles(printerid=a)[0] == ["box 1", "crate 2"]
    assert titles(q="BOX")[0] == ["box 1", "box 3"]
    assert titles(sortorder="TITLE_DESC")[0] == ["crate 2", "box 3", "box 1"]
    assert titles(sortorder="CREATE_TIME_DESC", offset="1", limit="1") == (
        ["crate 2"], {"jobsTotal": "3", "jobsCount": "1", "offset": "1"})
    assert titles(status="DONE")[0] == []
    assert owner_call(svc, "jobs", {"sortorder": "SIDEWAYS"})[1]["errorCode"] == api.ERR_MISSING
    assert owner_call(svc, "jobs", {"limit": "many"})[1]["errorCode"] == api.ERR_MISSING


def test_an_expired_job_is_never_handed_out_and_its_owner_sees_why(svc):
    pid, tok, _, _ = claimed_printer(svc)
    short = submit(svc, pid, expireAfter="1")["job"]["id"]
    kept = submit(svc, pid)["job"]["id"]
    time.sleep(1.1)
    assert [j["id"] for j in fetch(svc, pid, tok)["jobs"]] == [kept]
    state = svc.store.get("jobs", id=short)
    assert state["state_type"] == "ABORTED" and json.loads(state["state"])["state"]["service_action_cause"] == {
        "error_code": "EXPIRED"}
    assert submit(svc, pid, expireAfter="0")["errorCode"] == api.ERR_MISSING
    assert submit(svc, pid, expireAfter="soon")["errorCode"] == api.ERR_MISSING


def test_the_service_expires_waiting_jobs_while_their_printer_is_away(svc):
    pid, _, _, _ = claimed_printer(svc)
    job = submit(svc, pid)["job"]["id"]
    default = svc.store.get("jobs", id=job)["expires_ms"] - svc.store.get("jobs", id=job)["create_ms"]
    assert default == api.EXPIRE_DEFAULT_S * 1000  # 14 days
    svc.store.update("jobs", {"id": job}, expires_ms=1)
    svc.api.maintain()  # what the service runs every 30 s
    assert svc.store.get("jobs", id=job)["state_type"] == "ABORTED"


def test_a_retried_submit_with_the_same_key_makes_one_job(svc):
    pid, _, _, _ = claimed_printer(svc)
    first = owner_call(svc, "submit", {"printerid": pid, "contentType": "application/x-zpl", "content": LABEL},
                       headers={"Idempotency-Key": "order-17"})[1]
    again = owner_call(svc, "submit", {"printerid": pid, "contentType": "application/x-zpl", "content": LABEL},
                       headers={"Idempotency-Key": "order-17"})[1]
    field = submit(svc, pid, idempotencyKey="order-17")
    assert first["job"]["id"] == again["job"]["id"] == field["job"]["id"]
    assert "already added" in again["message"] and len(svc.store.all("jobs")) == 1
    other = submit(svc, pid, idempotencyKey="order-18")
    assert other["job"]["id"] != first["job"]["id"]
    svc.store.update("idempotency_keys", {"key": "order-17"}, created_ms=1)  # a day and more ago
    assert submit(svc, pid, idempotencyKey="order-17")["job"]["id"] != first["job"]["id"]
    assert submit(svc, pid, idempotencyKey="k" * 256)["errorCode"] == api.ERR_MISSING


def test_idempotency_keys_belong_to_one_account(svc):
    pid, _, _, _ = claimed_printer(svc)
    mine = submit(svc, pid, idempotencyKey="same")["job"]["id"]
    _, key = svc.accounts.create_key(svc.accounts.create("b@example.com"), "b")
    reg = register(svc)
    svc.api.claim(reg["registration_token"], "b@example.com")
    theirs = call(svc, "/cloudprint/submit", {"printerid": reg["printers"][0]["id"], "contentType": "application/x-zpl",
                                              "content": LABEL, "idempotencyKey": "same"},
                  headers={"Authorization": "Bearer " + key}, proxy=False)[1]["job"]["id"]
    assert theirs != mine
    refused = call(svc, "/cloudprint/canceljob", {"jobid": mine}, headers={"Authorization": "Bearer " + key},
                   proxy=False)[1]
    assert refused["errorCode"] == api.ERR_UNKNOWN_JOB and svc.store.get("jobs", id=mine)["state_type"] == "QUEUED"


def test_the_command_line_client_cancels_deletes_and_says_why(svc, tmp_path, capsys):
    from tools.printservice import client as cli
    pid, _, _, _ = claimed_printer(svc)
    svc.store.update("printers", {"id": pid}, semantic_state=json.dumps(
        {"version": "1.0", "printer": {"state": "STOPPED", "input_tray_state": {"item": [{"state": "EMPTY"}]}}}))
    label = tmp_path / "label.zpl"
    label.write_bytes(LABEL.encode())
    base = ["--url", svc.http_url + "/cloudprint", "--key", svc.owner_key]
    assert cli.main(base + ["printers"]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert header.split() == ["PRINTER", "NAME", "CONNECTION", "STATE", "WHY", "FIRMWARE"]
    assert row.split()[:5] == [pid, "p", "online", "STOPPED", "paper"]
    assert cli.main(base + ["submit", pid, str(label), "--idempotency-key", "k1", "--expire-after", "600"]) == 0
    job = capsys.readouterr().out.split()[0]
    assert svc.store.get("jobs", id=job)["expires_ms"] - svc.store.get("jobs", id=job)["create_ms"] == 600000
    assert cli.main(base + ["submit", pid, str(label), "--idempotency-key", "k1"]) == 0
    assert capsys.readouterr().out.split()[0] == job
    assert cli.main(base + ["cancel", job]) == 0 and capsys.readouterr().out.split() == [job, "ABORTED"]
    assert cli.main(base + ["jobs"]) == 0
    assert "cancelled" in capsys.readouterr().out
    assert cli.main(base + ["cancel", job]) == 1
    assert "can no longer be cancelled" in capsys.readouterr().err
    assert cli.main(base + ["delete-job", job]) == 0 and svc.store.get("jobs", id=job) is None
    capsys.readouterr()
    assert cli.main(base + ["submit", pid, str(tmp_path / "missing.zpl")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.zpl" in err and "Traceback" not in err
    assert cli.main(["--url", svc.http_url + "/cloudprint", "--key-file", str(tmp_path / "no.key"), "jobs"]) == 1
    assert "no.key" in capsys.readouterr().err
    assert cli.main(base + ["delete-printer", pid]) == 0 and svc.store.printer(pid) is None
