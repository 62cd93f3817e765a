"""The agent against faithful simulated printers: buffers, flow control, faults."""
import json
import os

import pytest

from tools.hostrun import BOARDS, claim, provision, wait_for, wait_job, zpl_labels
from tools.printersim.server import PrinterSim


def board_file(tmp_path, base, **changes):
    with open(os.path.join(BOARDS, base + ".json")) as f:
        board = json.load(f)
    board.update(changes, board=base)
    path = tmp_path / (base + "-test.json")
    path.write_text(json.dumps(board))
    return str(path)


def claimed(tmp_path, service, owner, sim, agents, tree, board):
    flash = str(tmp_path / "flash")
    provision(flash, service)
    agent = agents(flash, sim.address, board=board, tree=tree)
    claim(agent, owner)
    wait_for(lambda: os.path.exists(os.path.join(flash, "credentials.json")), 10, "credentials")
    return agent, owner.printers()[0]["id"]


def test_done_only_after_the_printer_has_printed_everything(tmp_path, service, owner, agents, device_tree):
    # A slow print engine: the agent's last byte is sent long before the last label prints.
    with PrinterSim("zpl", str(tmp_path / "p"), buffer_size=256 * 1024, print_rate=100000) as sim:
        agent, pid = claimed(tmp_path, service, owner, sim, agents, device_tree, "host-zpl")
        payload, labels = zpl_labels(200 * 1024)
        job = owner.submit(pid, payload, "application/x-zpl", "slow")
        done = wait_job(owner, job["id"], 60, agent=agent)
        assert done["semanticState"]["state"]["type"] == "DONE"
        assert sim.printer.pages - 1 == labels == done["semanticState"]["pages_printed"]  # 1 = claim ticket


@pytest.mark.parametrize("flow, loses", [("xonxoff", False), ("none", True)])
def test_xon_xoff_flow_control_loses_nothing(tmp_path, service, owner, agents, device_tree, flow, loses):
    with PrinterSim("zpl", str(tmp_path / "p"), flow="xonxoff", buffer_size=4096, busy_free=512,
                    ready_free=2048, print_rate=200000) as sim:
        board = board_file(tmp_path, "host-zpl", flow_control=flow, stall_timeout_s=5)
        agent, pid = claimed(tmp_path, service, owner, sim, agents, device_tree, board)
        payload, labels = zpl_labels(120 * 1024)  # XON/XOFF runs at the board's 115200 baud
        job = owner.submit(pid, payload, "application/x-zpl", "flow " + flow)
        done = wait_job(owner, job["id"], 60, agent=agent)
        if loses:  # the simulator detects the overflow: bytes silently discarded
            assert sim.printer.lost > 0
        else:
            assert sim.printer.lost == 0
            assert done["semanticState"]["state"]["type"] == "DONE"
            assert len(sim.printer.printed) - 1 == labels == done["semanticState"]["pages_printed"]
            assert sim.printer.data().endswith(payload)


def printer_state(owner, pid):
    p = owner.call("printer", [("printerid", pid)])["printers"][0]
    return p["semanticState"]["printer"]


def test_paper_out_before_a_job_stops_it_until_reloaded(tmp_path, service, owner, agents, device_tree):
    with PrinterSim("escpos", str(tmp_path / "p")) as sim:
        agent, pid = claimed(tmp_path, service, owner, sim, agents, device_tree, "host-escpos")
        sim.printer.fault("paper_out")
        receipt = b"\x1b@Total 9.99\n\n\x1dVB\x00"
        job = owner.submit(pid, receipt, "application/x-escpos", "waits")
        wait_job(owner, job["id"], 30, ("STOPPED",), agent=agent)
        assert owner.job(job["id"])["semanticState"]["state"] == {
            "type": "STOPPED", "device_state_cause": {"error_code": "INPUT_TRAY"}}
        wait_for(lambda: printer_state(owner, pid)["state"] == "STOPPED", 10, "printer STOPPED")
        assert printer_state(owner, pid)["input_tray_state"]["item"][0]["state"] == "EMPTY"
        assert sim.printer.printed[-1] != receipt
        sim.printer.clear("paper_out")
        assert wait_job(owner, job["id"], 30, agent=agent)["semanticState"]["state"]["type"] == "DONE"
        assert sim.printer.printed[-1] == receipt
        wait_for(lambda: printer_state(owner, pid)["state"] == "IDLE", 10, "printer IDLE")


def test_paper_out_mid_job_stops_and_resumes_without_duplicates(tmp_path, service, owner, agents,
                                                                device_tree):
    # A slow engine and a big buffer: the whole job is in the printer when the paper runs out.
    with PrinterSim("zpl", str(tmp_path / "p"), buffer_size=512 * 1024, print_rate=50000) as sim:
        agent, pid = claimed(tmp_path, service, owner, sim, agents, device_tree, "host-zpl")
        payload, labels = zpl_labels(100 * 1024)
        sim.printer.fault("paper_out", after_bytes=60 * 1024)
        job = owner.submit(pid, payload, "application/x-zpl", "runs out")
        wait_job(owner, job["id"], 30, ("STOPPED",), agent=agent)
        wait_for(lambda: printer_state(owner, pid)["state"] == "STOPPED", 10, "printer STOPPED")
        printed_while_out = sim.printer.pages
        sim.printer.clear()
        done = wait_job(owner, job["id"], 60, agent=agent)
        assert done["semanticState"]["state"]["type"] == "DONE"
        assert done["semanticState"]["pages_printed"] == labels
        assert sim.printer.pages - 1 == labels > printed_while_out - 1
        assert len(set(sim.printer.printed[1:])) == labels  # every label once
