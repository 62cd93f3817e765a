"""Push end to end: the service publishes hints to a real mosquitto, the agent under the
real micropython subscribes and fetches on each hint; polling is the safety net."""
import json
import os
import time

import pytest

from tests.system.conftest import start_mosquitto
from tools.cloudsim.client import Client
from tools.cloudsim.server import Service
from tools.hostrun import BOARDS, claimed_flash, provision, wait_for, wait_job

LABEL = b"^XA^FO20,20^A0N,30,30^FDpushed^FS^XZ"


@pytest.fixture
def pushed(tmp_path):
    """A service publishing to a mosquitto the test can stop and start again."""
    proc, port = start_mosquitto(tmp_path)
    state = {"proc": proc}
    svc = Service(str(tmp_path / "service"), log=lambda m: None, mqtt_url="mqtt://127.0.0.1:%d" % port)
    svc.start()

    def restart_broker(up):
        if state["proc"] is not None:
            state["proc"].terminate()
            state["proc"].wait(5)
            state["proc"] = None
        if up:
            state["proc"] = start_mosquitto(tmp_path, port=port)[0]
    yield svc, port, restart_broker
    svc.stop()
    restart_broker(False)


def push_flash(tmp_path, svc, port, owner, printer, agents, tree):
    flash, pid = claimed_flash(tmp_path, svc, owner, printer, agents, tree)
    provision(flash, svc, mqtt_url="mqtt://127.0.0.1:%d" % port, mqtt_keepalive_s=10,
              poll_interval_s=120, safety_poll_s=120, fast_poll_s=2)
    return flash, pid


def test_a_hint_prints_the_job_at_once_and_polling_covers_a_broker_outage(
        tmp_path, pushed, zpl_printer, agents, device_tree):
    svc, port, restart_broker = pushed
    owner = Client(svc.http_url + "/cloudprint", svc.owner_key)
    flash, pid = push_flash(tmp_path, svc, port, owner, zpl_printer, agents, device_tree)
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"push: subscribed to cloudprint/printers/" + pid)
    time.sleep(1)  # past the fetch that follows subscribing: only a hint can start the next
    t0 = time.monotonic()
    job = owner.submit(pid, LABEL, "application/x-zpl", "pushed")
    assert wait_job(owner, job["id"], 30, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    assert time.monotonic() - t0 < 10  # the safety poll is 120 s away
    restart_broker(False)
    agent.wait_line(r"push: connection lost|push: .*polling, next try", timeout=40)
    late = owner.submit(pid, LABEL, "application/x-zpl", "while the broker is down")
    assert wait_job(owner, late["id"], 30, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    restart_broker(True)
    wait_for(lambda: agent.output.count("push: subscribed") >= 2, 60, "the agent to resubscribe")
    assert zpl_printer.printer.data().count(LABEL) == 2


def test_a_deletion_hint_returns_the_printer_to_unregistered(tmp_path, pushed, zpl_printer, agents,
                                                             device_tree):
    svc, port, _ = pushed
    owner = Client(svc.http_url + "/cloudprint", svc.owner_key)
    flash, pid = push_flash(tmp_path, svc, port, owner, zpl_printer, agents, device_tree)
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"push: subscribed")
    time.sleep(2)  # past the fetch that follows subscribing: the agent waits for hints now
    owner.call("delete", [("printerid", pid)])
    agent.wait_line(r"no longer registered .*the service deleted this printer", timeout=15)
    agent.wait_line(r"^Code:  \w+$")
    assert not os.path.exists(os.path.join(flash, "credentials.json"))


def test_keepalive_holds_through_a_long_slow_job(tmp_path, pushed, agents, device_tree):
    # 30 KB at 9600 baud: over 30 s of streaming with a 10 s keepalive. Mosquitto drops a
    # client that is silent for 1.5 x keepalive, so only pings sent mid-job keep it.
    from tools.hostrun import zpl_labels
    from tools.printersim.server import PrinterSim
    svc, port, _ = pushed
    owner = Client(svc.http_url + "/cloudprint", svc.owner_key)
    with PrinterSim("zpl", str(tmp_path / "slow"), baud=9600, buffer_size=4096) as sim:
        flash, pid = push_flash(tmp_path, svc, port, owner, sim, agents, device_tree)
        # over TCP a 9600-baud line moves in bursts of window updates, seconds apart
        board = tmp_path / "slow-board.json"
        with open(os.path.join(BOARDS, "host-zpl.json")) as f:
            board.write_text(json.dumps(dict(json.load(f), stall_timeout_s=60)))
        agent = agents(flash, sim.address, board=str(board), tree=device_tree)
        agent.wait_line(r"push: subscribed")
        payload, labels = zpl_labels(30 * 1024)
        t0 = time.monotonic()
        job = owner.submit(pid, payload, "application/x-zpl", "slow")
        assert wait_job(owner, job["id"], 90, agent=agent)["semanticState"]["state"]["type"] == "DONE"
        assert time.monotonic() - t0 > 25  # it really was a long job
        assert "connection lost" not in agent.output and agent.output.count("push: subscribed") == 1
