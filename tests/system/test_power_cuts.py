"""Exactly-once printing across power cuts: the agent is SIGKILLed at each point of a
job's life and started again on the same flash. The printer simulator's record is the
judge: no job is printed twice, every job ends DONE or ABORTED."""
import json
import os

import pytest

from tools.hostrun import claimed_flash, wait_for, wait_job, zpl_labels
from tools.printersim.server import PrinterSim

FINAL = ("DONE", "ABORTED")


def run_and_cut(tmp_path, service, owner, agents, device_tree, sim, arm, payload):
    """Submit a job, cut the power where arm(agent) says, restart; the finished job."""
    flash, pid = claimed_flash(tmp_path, service, owner, sim, agents, device_tree)
    agent = agents(flash, sim.address, tree=device_tree)
    cut = arm(agent)
    job = owner.submit(pid, payload, "application/x-zpl", "power cut")
    cut()  # returns once the power is cut where intended
    wait_for(lambda: not agent.alive(), 10, "the agent to die")
    again = agents(flash, sim.address, tree=device_tree)
    done = wait_job(owner, job["id"], 60, agent=again)
    # the agent goes on printing new jobs afterwards
    nxt = owner.submit(pid, b"^XA^FDafter^FS^XZ", "application/x-zpl", "after")
    assert wait_job(owner, nxt["id"], 30, agent=again)["semanticState"]["state"]["type"] == "DONE", again.output
    def settled():  # the agent records delivery just after the service has the report
        with open(os.path.join(flash, "journal.json")) as f:
            journal = json.load(f)
        return journal["job"] is None and journal["outbox"] == []
    wait_for(settled, 10, "an empty journal")
    return done["semanticState"]


def intercept(service, interface, state=None, apply=False):
    """Cut the power while the service handles that call: before it takes effect, or after."""
    def arm(agent):
        hit = []
        service.faults.arm("intercept", interface=interface, state=state, apply=apply,
                           then=lambda: (hit.append(1), agent.kill()))
        return lambda: wait_for(lambda: hit, 60, "the intercepted /%s" % interface)
    return arm


LABEL = b"^XA^FO20,20^A0N,30,30^FDonce^FS^XZ"


@pytest.mark.parametrize("point, arm_args, expect", [
    ("before IN_PROGRESS reaches the service", ("control", "IN_PROGRESS", False), "DONE"),
    ("before DONE reaches the service", ("control", "DONE", False), "DONE"),
    ("after DONE took effect, before its reply", ("control", "DONE", True), "DONE"),
    ("while the ticket is read", ("ticket", None, False), "DONE"),
])
def test_a_power_cut_at_a_report_prints_the_job_exactly_once(tmp_path, service, owner, agents,
                                                            device_tree, zpl_printer, point, arm_args,
                                                            expect):
    state = run_and_cut(tmp_path, service, owner, agents, device_tree, zpl_printer,
                        intercept(service, *arm_args), LABEL)
    assert state["state"]["type"] == expect, point
    assert zpl_printer.printer.data().count(LABEL) == 1, point


def test_a_power_cut_mid_print_aborts_and_never_reprints(tmp_path, service, owner, agents, device_tree):
    payload, labels = zpl_labels(200 * 1024)
    with PrinterSim("zpl", str(tmp_path / "p"), buffer_size=16384, print_rate=50000) as sim:
        def arm(agent):
            def cut():
                if sim.printer.data_bytes > 60 * 1024:
                    agent.kill()
                    return True
            return lambda: wait_for(cut, 60, "60 KB at the printer")
        state = run_and_cut(tmp_path, service, owner, agents, device_tree, sim, arm, payload)
        assert state["state"] == {"type": "ABORTED", "device_action_cause": {"error_code": "PRINT_FAILURE"}}
        data = sim.printer.data()
        assert payload not in data and data.count(payload[:60 * 1024]) == 1  # the start went once
        assert b"~JX" in sim.printer.received()  # the cut-off format is cancelled
        assert sim.printer.pages - 2 < labels  # claim ticket and "after" aside


def test_a_power_cut_after_the_last_byte_finishes_the_job_without_reprinting(tmp_path, service, owner,
                                                                             agents, device_tree):
    payload, labels = zpl_labels(40 * 1024)
    with PrinterSim("zpl", str(tmp_path / "p"), print_rate=10000) as sim:  # 4 s to print it
        def arm(agent):
            def cut():  # every byte is in the printer and the agent is polling for the drain
                received = sim.printer.received()
                if payload in received and received.endswith(b"~HS"):
                    agent.kill()
                    return True
            return lambda: wait_for(cut, 60, "the drain")
        state = run_and_cut(tmp_path, service, owner, agents, device_tree, sim, arm, payload)
        assert state["state"] == {"type": "DONE"} and state["pages_printed"] == labels
        assert sim.printer.data().count(payload) == 1


def test_a_power_cut_during_the_token_exchange_leaves_no_half_credentials(tmp_path, service, owner,
                                                                          agents, device_tree,
                                                                          zpl_printer):
    # The service has issued the tokens, the agent dies before it has stored them: it
    # must come back with no credentials (never a corrupt file) and register anew.
    from tools.hostrun import claim, provision
    flash = str(tmp_path / "flash")
    provision(flash, service)
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    hit = []
    service.faults.arm("intercept", interface="token", apply=True,
                       then=lambda: (hit.append(1), agent.kill()))
    claim_code = agent.wait_line(r"^Code:  (\w+)$").group(1)
    owner.claim(claim_code)
    wait_for(lambda: hit and not agent.alive(), 30, "the cut during the exchange")
    assert not os.path.exists(os.path.join(flash, "credentials.json"))
    again = agents(flash, zpl_printer.address, tree=device_tree)
    claim(again, owner)
    wait_for(lambda: os.path.exists(os.path.join(flash, "credentials.json")), 10, "credentials")
    with open(os.path.join(flash, "credentials.json")) as f:
        creds = json.load(f)
    job = owner.submit(creds["printer_id"], LABEL, "application/x-zpl", "after the cut")
    assert wait_job(owner, job["id"], 30, agent=again)["semanticState"]["state"]["type"] == "DONE"
