"""Accounts and API keys: hashed, named, revocable, shown once; the bootstrap key; and one
account seeing nothing of another's, on every interface, over real HTTP."""
import json
import os
import stat
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.unit.test_service_api import claimed_printer, register
from tools.printservice import admin
from tools.printservice.accounts import AccountError, Accounts, key_hash
from tools.printservice.client import Client, ClientError
from tools.printservice.server import Service
from tools.printservice.store import Store, sqlite_url


def test_keys_are_named_revocable_and_kept_only_as_a_hash(tmp_path):
    store = Store(sqlite_url(str(tmp_path / "a.db")))
    try:
        accounts = Accounts(store)
        email = accounts.create(" Alice@Example.COM ")
        assert email == "alice@example.com"
        with pytest.raises(AccountError, match="exists already"):
            accounts.create("alice@example.com")
        (id1, k1), (id2, k2) = accounts.create_key(email, "shop app"), accounts.create_key(email, "erp")
        assert k1.startswith("psk_") and len(k1) == 47 and k1 != k2
        assert accounts.for_key(k1) == accounts.for_key(k2) == email
        listed = accounts.keys(email)
        assert [k["name"] for k in listed] == ["shop app", "erp"] and k1 not in json.dumps(listed)
        with store.engine.connect() as c:
            dump = "\n".join(str(tuple(r)) for r in c.exec_driver_sql("SELECT * FROM api_keys"))
        assert k1 not in dump and key_hash(k1) in dump
        accounts.revoke_key(email, id1)
        assert accounts.for_key(k1) is None and accounts.for_key(k2) == email
        with pytest.raises(AccountError, match="no live key"):
            accounts.revoke_key(email, id1)
        with pytest.raises(AccountError):
            accounts.revoke_key("bob@example.com", id2)  # not bob's to revoke
        for bad in ("", "not-an-email", "a@b c"):
            with pytest.raises(AccountError):
                accounts.create(bad)
        with pytest.raises(AccountError):
            accounts.create_key(email, "")
        with pytest.raises(AccountError, match="no account"):
            accounts.create_key("nobody@example.com", "x")
        assert accounts.for_key("") is None and accounts.for_key("psk_made-up") is None
    finally:
        store.close()


def test_the_first_start_makes_the_first_account_and_its_key_file_once(tmp_path):
    data = str(tmp_path / "svc")
    with Service(data, log=lambda m: None, owner_email="ops@example.com") as s1:
        key = s1.owner_key
        assert s1.accounts.emails() == ["ops@example.com"]
        assert stat.S_IMODE(os.stat(os.path.join(data, "owner.key")).st_mode) == 0o600
        assert Client(s1.http_url + "/cloudprint", key).printers() == []
        key_id = s1.accounts.keys("ops@example.com")[0]["id"]
    with Service(data, log=lambda m: None) as s2:
        assert s2.owner_key == key and s2.accounts.emails() == ["ops@example.com"]
        s2.accounts.revoke_key("ops@example.com", key_id)
    with Service(data, log=lambda m: None) as s3:  # nothing is made behind the operator's back
        assert s3.owner_key is None and s3.accounts.emails() == ["ops@example.com"]
        with pytest.raises(ClientError, match="403"):
            Client(s3.http_url + "/cloudprint", key).printers()


def test_the_admin_command_manages_accounts_and_keys(tmp_path, capsys):
    data = str(tmp_path / "svc")
    Service(data, log=lambda m: None).stop()
    assert admin.main(["--data", data, "add-account", "bob@example.com"]) == 0
    out = str(tmp_path / "bob.key")
    assert admin.main(["--data", data, "add-key", "bob@example.com", "label app", "--out", out]) == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    key = open(out).read().strip()
    assert admin.main(["--data", data, "add-key", "bob@example.com", "second"]) == 0
    capsys.readouterr()
    assert admin.main(["--data", data, "keys", "bob@example.com"]) == 0
    listing = capsys.readouterr().out
    assert "label app" in listing and "second" in listing and key not in listing
    key_id = listing.split()[0]
    assert admin.main(["--data", data, "accounts"]) == 0
    assert capsys.readouterr().out.split() == ["bob@example.com", "owner@example.com"]
    assert admin.main(["--data", data, "revoke-key", "bob@example.com", key_id]) == 0
    assert admin.main(["--data", data, "revoke-key", "bob@example.com", key_id]) == 1
    assert admin.main(["--data", data, "add-account", "bob@example.com"]) == 1
    assert admin.main(["--data", data, "add-key", "bob@example.com", "x", "--out", out]) == 1
    err = capsys.readouterr().err
    assert "no live key" in err and "exists already" in err and "Traceback" not in err
    with Service(data, log=lambda m: None) as s:
        assert s.accounts.for_key(key) is None  # the first key was the one revoked


def _http(svc, path, key, fields=None):
    """(status, body) of a call as the holder of key."""
    data = None if fields is None else urllib.parse.urlencode(fields).encode()
    req = urllib.request.Request(svc.http_url + path, data=data, headers={
        "Authorization": "Bearer " + key, "X-CloudPrint-Proxy": "test"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_one_account_sees_and_touches_nothing_of_another(svc):
    pid, tok, alice, _ = claimed_printer(svc)  # the bootstrap account's printer
    job = alice.submit(pid, b"^XA^FDalice^FS^XZ", "application/x-zpl", "alice's label")
    svc.accounts.create("bob@example.com")
    _, bob_key = svc.accounts.create_key("bob@example.com", "bob's app")
    bob = Client(svc.http_url + "/cloudprint", bob_key)

    assert bob.printers() == [] and bob.jobs() == []
    assert bob.jobs(pid) == []
    for interface, fields in (("printer", {"printerid": pid}),
                              ("submit", {"printerid": pid, "contentType": "application/x-zpl",
                                          "content": "^XA^XZ"}),
                              ("update", {"printerid": pid, "name": "bob's now"}),
                              ("delete", {"printerid": pid}),
                              ("deletejob", {"jobid": job["id"]}),
                              ("control", {"jobid": job["id"],
                                           "semantic_state_diff": '{"state":{"type":"DONE"}}'}),
                              ("fetch", {"printerid": pid})):
        status, body = _http(svc, "/cloudprint/" + interface, bob_key, fields)
        assert json.loads(body)["success"] is False, interface
    for path in ("/cloudprint/download?id=" + job["id"], "/cloudprint/ticket?jobid=" + job["id"]):
        status, body = _http(svc, path, bob_key)
        assert status == 404 or json.loads(body)["success"] is False, path

    # a code alice claimed cannot be claimed again by bob, and bob's claim of a fresh
    # registration makes that printer bob's and nothing more
    reg = register(svc)
    bob.claim(reg["registration_token"])
    with pytest.raises(ClientError, match="claimed by someone else"):
        alice.claim(reg["registration_token"])
    assert [p["id"] for p in bob.printers()] == [reg["printers"][0]["id"]]

    # alice's side is as it was
    assert [p["id"] for p in alice.printers()] == [pid] and alice.printers()[0]["name"] == "p"
    assert alice.job(job["id"])["semanticState"]["state"]["type"] == "QUEUED"
    assert [j["id"] for j in alice.jobs()] == [job["id"]]
    status, body = _http(svc, "/cloudprint/download?id=" + job["id"], tok["access_token"])
    assert status == 200 and body == b"^XA^FDalice^FS^XZ"
