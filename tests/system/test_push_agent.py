"""Push end to end: the service publishes hints to a real mosquitto (logins and topic access
checked by its dynamic-security plugin), the agent under the real micropython subscribes with
the credential from the token endpoint and fetches on each hint; polling is the safety net."""
import json
import os
import time

import pytest

from tests.system.conftest import DYNSEC_ADMIN, start_secured_mosquitto
from tools.printservice.client import Client
from tests.service_faults import FaultyService as Service
from tools.hostrun import BOARDS, claimed_flash, provision, wait_for, wait_job

LABEL = b"^XA^FO20,20^A0N,30,30^FDpushed^FS^XZ"


@pytest.fixture
def pushed(tmp_path):
    """A service publishing to a mosquitto the test can stop and start again."""
    proc, port = start_secured_mosquitto(tmp_path)
    state = {"proc": proc}
    svc = Service(str(tmp_path / "service"), log=lambda m: None, mqtt_url="mqtt://127.0.0.1:%d" % port,
                  mqtt_user=DYNSEC_ADMIN[0], mqtt_password=DYNSEC_ADMIN[1], mqtt_dynsec=True)
    svc.start()

    def restart_broker(up):
        if state["proc"] is not None:
            state["proc"].terminate()
            state["proc"].wait(5)
            state["proc"] = None
        if up:
            state["proc"] = start_secured_mosquitto(tmp_path, port=port)[0]
    yield svc, port, restart_broker
    svc.stop()
    restart_broker(False)


def push_flash(tmp_path, svc, port, owner, printer, agents, tree):
    flash, pid = claimed_flash(tmp_path, svc, owner, printer, agents, tree)
    provision(flash, svc, mqtt_url="mqtt://127.0.0.1:%d" % port, mqtt_keepalive_s=10,
              poll_interval_s=120, safety_poll_s=120, fast_poll_s=2)
    return flash, pid


def subscribed_agent(tmp_path, pushed, printer, agents, tree):
    """(service, owner, printer id, agent, flash) once the claimed agent has subscribed."""
    svc, port, _ = pushed
    owner = Client(svc.http_url + "/cloudprint", svc.owner_key)
    flash, pid = push_flash(tmp_path, svc, port, owner, printer, agents, tree)
    agent = agents(flash, printer.address, tree=tree)
    agent.wait_line(r"push: subscribed to cloudprint/printers/" + pid)
    return svc, owner, pid, agent, flash


def test_a_hint_prints_the_job_at_once_and_polling_covers_a_broker_outage(
        tmp_path, pushed, zpl_printer, agents, device_tree):
    svc, owner, pid, agent, _ = subscribed_agent(tmp_path, pushed, zpl_printer, agents, device_tree)
    restart_broker = pushed[2]
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
    svc, owner, pid, agent, flash = subscribed_agent(tmp_path, pushed, zpl_printer, agents, device_tree)
    time.sleep(2)  # past the fetch that follows subscribing: the agent waits for hints now
    owner.call("delete", [("printerid", pid)])
    agent.wait_line(r"no longer registered .*the service deleted this printer", timeout=15)
    agent.wait_line(r"^Code:  \w+$")
    assert not os.path.exists(os.path.join(flash, "credentials.json"))


def fetches(svc):
    return sum(1 for r in list(svc.seen) if r["interface"] == "fetch")


def test_duplicate_hints_print_the_job_once_and_a_burst_is_one_fetch(
        tmp_path, pushed, zpl_printer, agents, device_tree):
    svc, owner, pid, agent, _ = subscribed_agent(tmp_path, pushed, zpl_printer, agents, device_tree)
    time.sleep(1)
    job = owner.submit(pid, LABEL, "application/x-zpl", "once")
    for _ in range(5):  # the service (or a flaky broker) says it again and again
        svc.push.new_job(pid)
    assert wait_job(owner, job["id"], 30, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    time.sleep(2)
    before = fetches(svc)
    for _ in range(20):  # a burst of hints for nothing new
        svc.push.new_job(pid)
    time.sleep(3)
    assert fetches(svc) - before <= 3  # collapsed: a fetch is not queued per hint
    assert zpl_printer.printer.data().count(LABEL) == 1


def test_hints_lost_while_disconnected_are_covered_by_the_fetch_after_reconnect(
        tmp_path, pushed, zpl_printer, agents, device_tree):
    svc, port, restart_broker = pushed
    owner = Client(svc.http_url + "/cloudprint", svc.owner_key)
    flash, pid = claimed_flash(tmp_path, svc, owner, zpl_printer, agents, device_tree)
    # polls far apart: only the fetch after reconnecting can print the job in time
    provision(flash, svc, mqtt_url="mqtt://127.0.0.1:%d" % port, mqtt_keepalive_s=10,
              poll_interval_s=300, safety_poll_s=300, fast_poll_s=300)
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"push: subscribed")
    time.sleep(1)
    before = fetches(svc)
    restart_broker(False)
    agent.wait_line(r"push: connection lost", timeout=30)
    wait_for(lambda: fetches(svc) > before, 10, "the fetch that follows losing the session")
    job = owner.submit(pid, LABEL, "application/x-zpl", "hint lost")
    time.sleep(2)
    assert owner.job(job["id"])["semanticState"]["state"]["type"] == "QUEUED"
    restart_broker(True)  # the agent's session is new: the hint published meanwhile is gone
    assert wait_job(owner, job["id"], 60, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    assert agent.output.count("push: subscribed") == 2, agent.output


def test_a_settings_hint_applies_and_confirms_the_owners_keepalive(
        tmp_path, pushed, zpl_printer, agents, device_tree):
    svc, owner, pid, agent, flash = subscribed_agent(tmp_path, pushed, zpl_printer, agents, device_tree)
    owner.call("update", [("printerid", pid), ("local_settings", '{"pending": {"xmpp_timeout_value": 25}}')])
    agent.wait_line(r"local settings confirmed: push keepalive 25 s", timeout=15)
    agent.wait_line(r"push: keepalive now 25 s; reconnecting")
    wait_for(lambda: agent.output.count("push: subscribed") >= 2, 30, "the new session")
    stored = owner.call("printer", [("printerid", pid)])["printers"][0]["local_settings"]
    assert stored["current"]["xmpp_timeout_value"] == 25 and "pending" not in stored
    with open(os.path.join(flash, "credentials.json")) as f:
        assert json.load(f)["keepalive_s"] == 25  # kept across reboots, gone with the registration


def test_keepalive_holds_through_a_long_slow_job(tmp_path, pushed, agents, device_tree):
    # 3 minutes of streaming at 9600 baud (about 175 KB) with a 10 s keepalive. Mosquitto
    # drops a client that is silent for 1.5 x keepalive, so only pings sent mid-job keep it.
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
        payload, labels = zpl_labels(175 * 1024)
        t0 = time.monotonic()
        job = owner.submit(pid, payload, "application/x-zpl", "slow")
        assert wait_job(owner, job["id"], 300, agent=agent)["semanticState"]["state"]["type"] == "DONE"
        assert time.monotonic() - t0 > 180  # it really was a 3-minute job
        assert "connection lost" not in agent.output and agent.output.count("push: subscribed") == 1


def test_the_console_answers_within_2_s_while_push_is_connected_idle_and_mid_job(
        tmp_path, pushed, agents, device_tree):
    from tests.system.test_console import answer
    from tools.hostrun import zpl_labels
    from tools.printersim.server import PrinterSim
    with PrinterSim("zpl", str(tmp_path / "slow"), baud=9600, buffer_size=4096) as sim:
        svc, owner, pid, agent, flash = subscribed_agent(tmp_path, pushed, sim, agents, device_tree)
        time.sleep(1)  # into the idle wait on the broker
        assert answer(agent, "status", r"push: +connected", timeout=2) < 2
        payload, _ = zpl_labels(12 * 1024)  # about 12 s at 9600 baud
        job = owner.submit(pid, payload, "application/x-zpl", "slow")
        agent.wait_line(r"printer state: ready \(printing\)", 15)
        for _ in range(3):
            assert answer(agent, "status", r"printer: +ready \(printing\)", timeout=2) < 2
            time.sleep(0.5)
        assert owner.job(job["id"])["semanticState"]["state"]["type"] == "IN_PROGRESS"
        assert wait_job(owner, job["id"], 60, agent=agent)["semanticState"]["state"]["type"] == "DONE"
        assert answer(agent, "status", r"last job: +\S+ DONE", timeout=2) < 2
