"""A fleet's service: two replica processes on one PostgreSQL and one broker, behind a
round-robin balancer, with the real agent under MicroPython printing through them."""
import os
import subprocess
import sys
import types

from tests.peers.round_robin import RoundRobin
from tests.replicas import ROOT, Replica, copy_data_dir, first_data_dir
from tests.system.conftest import DYNSEC_ADMIN, free_port, start_secured_mosquitto
from tests.unit.test_web_console import PASSWORD, Browser
from tests.unit.test_webhooks import Receiver, add_webhook
from tools.hostrun import Agent, claim, provision, wait_for, wait_job
from tools.printservice.client import Client
from tools.printservice import store


def test_two_replicas_print_every_job_once_and_one_may_die(tmp_path, postgres, zpl_printer):
    database_url = postgres.fresh_database()
    broker, broker_port = start_secured_mosquitto(tmp_path)
    password_file = tmp_path / "broker.pass"
    password_file.write_text(DYNSEC_ADMIN[1])
    push = ["--mqtt", "mqtt://127.0.0.1:%d" % broker_port, "--mqtt-user", DYNSEC_ADMIN[0],
            "--mqtt-password-file", str(password_file), "--mqtt-dynsec"]
    balancer = RoundRobin().start()
    push += ["--public-port", str(balancer.port)]
    receiver, replicas, agent = Receiver(), [], None
    try:
        first = first_data_dir(str(tmp_path / "replica1"), database_url)
        replicas.append(Replica(first, free_port(), free_port(), push))
        replicas.append(Replica(copy_data_dir(first, str(tmp_path / "replica2")), free_port(), free_port(), push))
        r1, r2 = replicas
        balancer.backends = [("127.0.0.1", r.https_port) for r in replicas]
        key = r1.owner_key
        owner1, owner2 = (Client(r.http_url + "/cloudprint", key) for r in replicas)

        # an API key, a web session and an idempotency key are good on either replica
        set_password = subprocess.run([sys.executable, "-m", "tools.printservice.admin", "--data", first,
                                       "set-password", "owner@example.com"], input=PASSWORD + "\n",
                                      capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert set_password.returncode == 0, set_password.stderr
        browser = Browser(r1.http_url)
        browser.open("/console/login")
        assert browser.post("/console/login", {"email": "owner@example.com", "password": PASSWORD})[1] == "/console/"
        browser.base = r2.http_url
        code, where, body, _ = browser.open("/console/")
        assert code == 200 and where == "/console/" and b"owner@example.com" in body

        # the agent, through the balancer: each connection to the next replica
        flash = str(tmp_path / "flash")
        service = types.SimpleNamespace(https_url="https://127.0.0.1:%d" % balancer.port, client=r1.client,
                                        certs={"ca_der": os.path.join(first, "ca.der")})
        provision(flash, service)
        agent = Agent(flash, zpl_printer.address)
        claim(agent, owner2)  # registered through one replica or the other, claimed through the second
        wait_for(lambda: os.path.exists(os.path.join(flash, "credentials.json")), 15, "credentials")
        agent.wait_line(r"agent .* up: zpl printer")
        printer_id = owner2.printers()[0]["id"]
        # a replica has the http_url and owner_key the helper uses
        assert add_webhook(r1, receiver.url)["url"] == receiver.url

        labels = [b"^XA^FDreplica job %d^FS^XZ" % i for i in range(6)]
        before = [owner1.submit(printer_id, label, "application/x-zpl", "before %d" % i)
                  for i, label in enumerate(labels[:3])]
        again = owner2.submit(printer_id, labels[0], "application/x-zpl", idempotency_key="k-1")
        assert owner1.submit(printer_id, labels[0], "application/x-zpl", idempotency_key="k-1")["id"] == again["id"]
        owner2.cancel(again["id"])
        for job in before:
            assert wait_job(owner2, job["id"], 60, agent=agent)["semanticState"]["state"]["type"] == "DONE"
        wait_for(lambda: len(_done_events(receiver)) == 3, 30, "the webhook's DONE events")
        assert set(receiver.accepted()[1].values()) == {1}  # each event once, across both replicas
        assert len(balancer.served) == 2, balancer.served  # the agent worked through both

        # the replica that took the next jobs dies at once: the other finishes them
        after = [owner1.submit(printer_id, label, "application/x-zpl", "after %d" % i)
                 for i, label in enumerate(labels[3:])]
        r1.kill()
        for job in after:
            assert wait_job(owner2, job["id"], 90, agent=agent)["semanticState"]["state"]["type"] == "DONE"
        printed = zpl_printer.printer.data()
        assert [printed.count(label) for label in labels] == [1] * len(labels)
        assert printed.index(labels[3]) > printed.index(labels[2])
        # a replica killed mid-send may have sent an event it had no time to mark: at least once
        wait_for(lambda: len(_done_events(receiver)) == 6, 90, "the DONE events after the kill")

        tokens = _tokens(database_url)
        for secret in tokens + [key, r1.client["client_secret"]]:
            assert secret not in agent.output, "a secret reached the console"
            assert all(secret not in line for r in replicas for line in r.lines), "a secret reached a log"
    finally:
        if agent is not None:
            agent.stop()
        for r in replicas:
            r.stop()
        balancer.stop()
        receiver.close()
        broker.terminate()
        broker.wait(5)


def _done_events(receiver):
    events, _ = receiver.accepted()
    return {e["data"]["printjobId"] for e in events if e["type"] == "job.state" and e["data"]["state"] == "DONE"}


def _tokens(database_url):
    s = store.Store(database_url, migrate_schema=False)
    try:
        with s.engine.connect() as c:
            return [r[0] for r in c.exec_driver_sql("SELECT token FROM tokens")]
    finally:
        s.close()
