"""What PostgreSQL's isolation (READ COMMITTED, many connections at once) must not break,
on a real server: several threads send the same request at once to a service on it, as
replicas and printers retrying do. SQLite runs one writer at a time, so these races only
exist here; the rest of the service's tests run on both engines (tests/unit/conftest.py)."""
import json
import threading

import pytest

from tests.unit.test_service_api import call, claimed_printer, register
from tools.printservice.api import CLAIM_CODE_LIMIT
from tools.printservice.client import Client
from tools.printservice.store import Store, now_ms

THREADS = 12


@pytest.fixture
def database():
    return "postgresql"


def at_once(n, work):
    """work(i) in n threads released together; their results (or exceptions) in order."""
    gate, out = threading.Barrier(n), [None] * n

    def run(i):
        gate.wait()
        try:
            out[i] = work(i)
        except Exception as e:  # a failure is a result to assert on
            out[i] = e
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_reports_on_one_job_at_once_move_it_once(svc):
    pid, tok, owner, _ = claimed_printer(svc)
    auth = {"Authorization": "Bearer " + tok["access_token"]}
    job = owner.submit(pid, b"^XA^XZ", "application/x-zpl")
    call(svc, "/cloudprint/fetch", {"printerid": pid}, headers=auth)
    ends = [{"state": {"type": "DONE"}},
            {"state": {"type": "ABORTED", "device_action_cause": {"error_code": "OTHER"}}}]

    def report(i):
        return call(svc, "/cloudprint/control", {"jobid": job["id"], "semantic_state_diff":
                                                 json.dumps(ends[i % 2])}, headers=auth)
    replies = at_once(THREADS, report)
    assert all(r[0] == 200 for r in replies), replies
    won = [r[1]["job"]["semanticState"]["state"]["type"] for r in replies if r[1]["success"]]
    lost = [r[1]["errorCode"] for r in replies if not r[1]["success"]]
    assert len(set(won)) == 1 and set(lost) <= {1003}  # one end; the other is refused as finished
    assert owner.job(job["id"])["semanticState"]["state"]["type"] == won[0]
    history = [e["what"] for e in svc.store.job_history([job["id"]])[job["id"]]]
    assert history == ["QUEUED", "SENT", won[0]]


def test_many_accounts_claiming_one_code_at_once_one_wins(svc):
    reg = register(svc)
    pid = reg["printers"][0]["id"]
    n = CLAIM_CODE_LIMIT[0]  # more tries on one code than this are refused as guessing
    keys = [svc.accounts.create_key(svc.accounts.create("c%d@example.com" % i), "k")[1] for i in range(n)]

    def claim(i):
        return Client(svc.http_url + "/cloudprint", keys[i]).claim(reg["registration_token"])
    results = at_once(n, claim)
    winners = [i for i, r in enumerate(results) if not isinstance(r, Exception)]
    assert len(winners) == 1, results
    assert all("claimed by someone else" in str(r) for r in results if isinstance(r, Exception))
    assert svc.store.printer(pid)["owner"] == "c%d@example.com" % winners[0]


def test_first_hits_on_a_rate_limit_at_once_all_count(svc):
    allowed = at_once(THREADS, lambda i: svc.store.allow("race:bucket", 5, 60000))
    assert sorted(allowed, key=str) == [False] * (THREADS - 5) + [True] * 5, allowed
    assert svc.store.hits("race:bucket", 60000) == THREADS


def test_one_idempotency_key_submitted_at_once_makes_one_job(svc):
    pid, _, owner, _ = claimed_printer(svc)
    jobs = at_once(THREADS, lambda i: owner.submit(pid, b"^XA^XZ", "application/x-zpl", idempotency_key="k-1"))
    assert not [j for j in jobs if isinstance(j, Exception)], jobs
    assert len({j["id"] for j in jobs}) == 1 and len(owner.jobs(pid)) == 1


def test_accounts_made_at_once_get_distinct_numbers(svc):
    at_once(THREADS, lambda i: svc.accounts.create("n%d@example.com" % i))
    with svc.store.engine.connect() as c:
        nums = [r[0] for r in c.exec_driver_sql("SELECT num FROM users")]
    assert len(nums) == THREADS + 1 and len(set(nums)) == len(nums)


def test_expiry_leaves_alone_a_job_a_printer_started_meanwhile(svc):
    """Expiry and a printer's IN_PROGRESS on the same job: the printer's transaction holds
    the row; expiry, waiting for it, must see the job started, not abort it."""
    pid, _, owner, _ = claimed_printer(svc)
    job = owner.submit(pid, b"^XA^XZ", "application/x-zpl", expire_after=1)
    other = Store(svc.database_url, migrate_schema=False)
    try:
        with other.tx() as s:
            s.set_job_state(job["id"], {"version": "1.0", "state": {"type": "IN_PROGRESS"}})
            expired = []
            t = threading.Thread(target=lambda: expired.append(svc.store.expire_jobs(now_ms() + 5000)))
            t.start()
            t.join(1)
            assert t.is_alive()  # waiting on the printer's row lock
        t.join(30)
        assert expired == [[]]
        assert svc.store.get("jobs", id=job["id"])["state_type"] == "IN_PROGRESS"
    finally:
        other.close()


def test_database_url_in_the_data_directory_names_the_database(tmp_path, postgres):
    from tools.printservice.store import data_dir_url
    url = postgres.fresh_database()
    data = tmp_path / "data"
    data.mkdir()
    (data / "database.url").write_text(url + "\n")
    (data / "database.url").chmod(0o644)
    assert data_dir_url(str(data)) == url
    assert (data / "database.url").stat().st_mode & 0o077 == 0  # it may hold a password
    (data / "database.url").write_text("mysql://u@127.0.0.1/db\n")
    with pytest.raises(ValueError, match="must hold one database URL"):
        data_dir_url(str(data))
