"""The data-access module and its migrations, on real SQLite files."""
import io
import json
import os
import sqlite3
import urllib.request

import alembic.autogenerate
import alembic.migration
import alembic.script
import sqlalchemy as sa

from tools.printservice import accounts, store
from tools.printservice.client import Client
from tools.printservice.server import Service
from tools.printservice.store import Store, sqlite_url

OLD_SCHEMA = os.path.join(os.path.dirname(__file__), "data", "service_db_before_migrations.sql")
CDD = {"version": "1.0", "printer": {"supported_content_type": [{"content_type": "application/x-zpl"}]}}


def head_revision():
    cfg = alembic.config.Config()
    cfg.set_main_option("script_location", store.MIGRATIONS)
    return alembic.script.ScriptDirectory.from_config(cfg).get_current_head()


def revision_of(s):
    with s.engine.connect() as c:
        return alembic.migration.MigrationContext.configure(c).get_current_revision()


def test_the_migrations_make_exactly_the_schema_the_code_uses(tmp_path):
    s = Store(sqlite_url(str(tmp_path / "new.db")))
    try:
        assert revision_of(s) == head_revision()
        with s.engine.connect() as c:
            diffs = alembic.autogenerate.compare_metadata(
                alembic.migration.MigrationContext.configure(c), store.metadata)
        assert diffs == []
    finally:
        s.close()


def test_a_database_from_before_migrations_keeps_everything(tmp_path):
    data = tmp_path / "svc"
    data.mkdir()
    big = bytes(range(256)) * 800  # 200 KB: several chunks after the upgrade
    db = sqlite3.connect(str(data / "cloudsim.db"))  # its name back then, too
    db.executescript(open(OLD_SCHEMA).read())
    db.execute("INSERT INTO users VALUES ('owner@example.com', 'the-owner-key')")
    db.execute("INSERT INTO printers (id, proxy, name, capabilities, semantic_state, local_settings, owner,"
               " created_ms, updated_ms, accessed_ms) VALUES ('p1', 'px', 'old printer', ?, ?, ?,"
               " 'owner@example.com', 1, 1, 1)",
               (json.dumps(CDD), '{"version":"1.0","printer":{"state":"IDLE"}}', '{"current":{}}'))
    db.execute("INSERT INTO registrations VALUES ('OLDCODE', 'p1', 1, 'owner@example.com', NULL)")
    db.execute("INSERT INTO tokens VALUES ('ya29.old', 'access', 'p1', 'cloudprint-agent', 99999999999999, 0, 0)")
    queued = '{"version":"1.0","state":{"type":"QUEUED"}}'
    # z before a, in the same millisecond: only the order they were stored in says which is first
    for job_id, content in (("z-first", b"^XA^FDz^FS^XZ"), ("a-second", big), ("m-third", b"^XA^XZ")):
        db.execute("INSERT INTO jobs (id, printer_id, title, owner, content_type, content, ticket, state,"
                   " create_ms, update_ms) VALUES (?, 'p1', ?, 'owner@example.com', 'application/x-zpl', ?,"
                   " '{}', ?, 5, 5)", (job_id, job_id, content, queued))
    db.commit()
    db.close()
    (data / "owner.key").write_text("the-owner-key\n")  # as the service wrote it at every start
    with Service(str(data), log=lambda m: None) as svc:
        assert revision_of(svc.store) == head_revision()
        assert svc.owner_key == "the-owner-key"
        owner = Client(svc.http_url + "/cloudprint", "the-owner-key")
        assert [p["name"] for p in owner.printers()] == ["old printer"]
        req = urllib.request.Request(svc.http_url + "/cloudprint/fetch?printerid=p1",
                                     headers={"Authorization": "Bearer ya29.old"})
        with urllib.request.urlopen(req, timeout=10) as r:
            fetched = json.loads(r.read())["jobs"]
        assert [j["id"] for j in fetched] == ["z-first", "a-second", "m-third"]
        req = urllib.request.Request(svc.http_url + "/cloudprint/download?id=a-second",
                                     headers={"Authorization": "Bearer ya29.old"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.read() == big
        assert [k["name"] for k in svc.accounts.keys("owner@example.com")] == ["bootstrap"]
        assert svc.store.get("api_keys", key_hash=accounts.key_hash("the-owner-key"))  # hashed only
        reg = svc.store.get("registrations", token="OLDCODE")
        assert reg["code_given"] == 0 and reg["poll_secret"] is None
        # numbered for the PrintNode API, with the history their states imply (migration 0007)
        from tests.unit.test_printnode import pn
        assert [p["id"] for p in pn(svc, "GET", "/printers")[1]] == [1]
        assert pn(svc, "GET", "/whoami")[1]["id"] == 1
        states = pn(svc, "GET", "/printjobs/states?dir=asc")[1]
        assert [[s["state"] for s in job] for job in states] == [["new", "sent_to_client"]] * 3
        with svc.store.tx() as s:
            assert s.next_number("printers") == 2  # the next printer's
    assert not os.path.exists(data / "cloudsim.db")
    for name in ("service.db", "service.db-wal"):  # nor in a freed page
        if os.path.exists(data / name):
            assert b"the-owner-key" not in (data / name).read_bytes()


def test_a_job_file_is_stored_and_read_a_chunk_at_a_time(tmp_path):
    s = Store(sqlite_url(str(tmp_path / "jobs.db")))
    try:
        content = os.urandom(5 * 1024 * 1024 + 17)
        s.add_job(io.BytesIO(content), id="j", printer_id="p", title="t", owner="o", content_type="application/x-zpl",
                  ticket="{}", state="{}", state_type="QUEUED", create_ms=1, update_ms=1)
        with s.engine.connect() as c:
            sizes = [len(r[0]) for r in c.execute(sa.select(store.job_content.c.data))]
        assert max(sizes) == store.CHUNK and sum(sizes) == len(content)
        chunks = list(s.job_chunks("j"))
        assert all(len(c) <= store.CHUNK for c in chunks) and b"".join(chunks) == content
        start = 3 * store.CHUNK + 1000  # a resumed download starts mid-chunk
        assert b"".join(s.job_chunks("j", start)) == content[start:]
        assert s.get("jobs", id="j")["size"] == len(content)
        assert s.delete_job("j") == 1 and list(s.job_chunks("j")) == []
    finally:
        s.close()


def test_reads_do_not_wait_for_a_long_write(tmp_path):
    # the embedded broker checks logins on the event loop: it must not sit out a writer
    import threading
    import time
    s = Store(sqlite_url(str(tmp_path / "rw.db")))
    try:
        s.insert("users", email="a@example.com")
        writing, done = threading.Event(), threading.Event()

        def long_write():
            with s.tx() as t:
                t.insert("users", email="b@example.com")
                writing.set()
                done.wait(10)
        th = threading.Thread(target=long_write)
        th.start()
        writing.wait(5)
        t0 = time.monotonic()
        assert s.get("users", email="a@example.com") is not None and s.get("users", email="b@example.com") is None
        assert s.broker_password_ok("p", "x") is False
        assert time.monotonic() - t0 < 1
        done.set()
        th.join()
        assert s.get("users", email="b@example.com") is not None
    finally:
        s.close()


def test_a_second_store_in_one_process_keeps_the_first_ones_locks(tmp_path):
    # the service and its embedded broker each open a Store on one SQLite file; another
    # process (the admin command) that writes and closes must still see them as users of
    # it, or it deletes the WAL under their open connections ("disk I/O error")
    import subprocess
    import sys
    path = str(tmp_path / "shared.db")
    first = Store(sqlite_url(path))
    second = None
    try:
        first.insert("users", email="a@example.com")  # a pooled connection stays open
        second = Store(sqlite_url(path), migrate_schema=False)
        assert second.get("users", email="a@example.com") is not None
        other = ("import sqlite3; c = sqlite3.connect(%r); c.execute('PRAGMA journal_mode=WAL'); "
                 "c.execute(\"INSERT INTO users (email) VALUES ('b@example.com')\"); c.commit(); c.close()" % path)
        subprocess.run([sys.executable, "-c", other], check=True, timeout=30)
        assert os.path.exists(path + "-wal")  # the other process knew it was not the last
        first.insert("users", email="c@example.com")
        assert {r["email"] for r in second.all("users")} == {"a@example.com", "b@example.com", "c@example.com"}
    finally:
        if second is not None:
            second.close()
        first.close()
