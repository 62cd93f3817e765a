"""The agent against faithful simulated printers: buffers, flow control, faults."""
import itertools
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


def claimed(tmp_path, service, owner, sim, agents, tree, board, **settings):
    flash = str(tmp_path / "flash")
    provision(flash, service, **settings)
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
        if loses:  # the simulator detects the overflow: bytes silently discarded
            wait_for(lambda: sim.printer.lost > 0, 60, "the overflow")
        else:
            done = wait_job(owner, job["id"], 60, agent=agent)
            assert sim.printer.lost == 0
            assert done["semanticState"]["state"]["type"] == "DONE"
            assert len(sim.printer.printed) - 1 == labels == done["semanticState"]["pages_printed"]
            assert sim.printer.data().endswith(payload)


LABEL = b"^XA^FO20,20^A0N,30,30^FDhello^FS^XZ"


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


STOPPED_OTHER = {"type": "STOPPED", "device_state_cause": {"error_code": "OTHER"}}
STOPPED_PAPER = {"type": "STOPPED", "device_state_cause": {"error_code": "INPUT_TRAY"}}


def states_of(service, job_id):
    """Every state the agent reported for the job, in order."""
    return [json.loads(r["diff"])["state"] for r in service.api.seen
            if r["interface"] == "control" and r["job"] == job_id and r["diff"]]


@pytest.mark.parametrize("language, status_back, cause", [
    ("zpl", False, STOPPED_OTHER),      # the line is blocked and ZPL says nothing unasked
    ("escpos", True, STOPPED_PAPER)])   # automatic status back names the cause
def test_paper_out_with_the_buffer_full_stops_the_job_and_resumes_the_download(
        tmp_path, service, owner, agents, device_tree, language, status_back, cause):
    # The job is far larger than the printer's buffer: when the paper runs out the line
    # blocks, the job goes STOPPED, and the download the reports interrupt is resumed.
    with PrinterSim(language, str(tmp_path / "p"), buffer_size=8192, print_rate=200000) as sim:
        changes = {"stall_timeout_s": 3}
        if language == "escpos":
            changes["status_back"] = status_back
        board = board_file(tmp_path, "host-" + language, **changes)
        agent, pid = claimed(tmp_path, service, owner, sim, agents, device_tree, board)
        if language == "zpl":
            payload, pages = zpl_labels(300 * 1024)
            ctype = "application/x-zpl"
        else:
            receipt = b"\x1b@" + b"Item 1.00 Lorem ipsum dolor sit amet\n" * 40 + b"\x1dVB\x00"
            pages = 300 * 1024 // len(receipt)
            payload = receipt * pages
            ctype = "application/x-escpos"
        sim.printer.fault("paper_out", after_bytes=100 * 1024)
        job = owner.submit(pid, payload, ctype, "runs out")
        wait_job(owner, job["id"], 30, ("STOPPED",), agent=agent)
        assert owner.job(job["id"])["semanticState"]["state"] == cause
        wait_for(lambda: printer_state(owner, pid)["state"] == "STOPPED", 10, "printer STOPPED")
        sim.printer.clear()
        done = wait_job(owner, job["id"], 90, agent=agent)
        assert done["semanticState"]["state"]["type"] == "DONE"
        assert done["semanticState"]["pages_printed"] == pages
        assert states_of(service, job["id"]) == [
            {"type": "IN_PROGRESS"}, cause, {"type": "IN_PROGRESS"}, {"type": "DONE"}]
        assert sim.printer.lost == 0
        assert sim.printer.data().count(payload) == 1  # every byte, in order, once
        downloads = [r for r in service.api.seen if r["interface"] == "download"]
        assert len(downloads) >= 2 and downloads[-1]["range"].startswith("bytes=")


def test_a_printer_silent_in_error_comm_halt_is_waited_for(tmp_path, service, owner, agents,
                                                           device_tree):
    # ZPL comm.halt: in error the printer neither reads nor answers ~HS. The job must not
    # be DONE while the head is open, and must finish once it is closed.
    with PrinterSim("zpl", str(tmp_path / "p"), comm_halt=True, print_rate=20000) as sim:
        board = board_file(tmp_path, "host-zpl", stall_timeout_s=2)
        agent, pid = claimed(tmp_path, service, owner, sim, agents, device_tree, board)
        payload, labels = zpl_labels(40 * 1024)
        sim.printer.fault("head_open", after_bytes=30 * 1024)
        job = owner.submit(pid, payload, "application/x-zpl", "halts")
        wait_job(owner, job["id"], 30, ("STOPPED",), agent=agent)
        assert owner.job(job["id"])["semanticState"]["state"] == STOPPED_OTHER
        sim.printer.clear()
        done = wait_job(owner, job["id"], 60, agent=agent)
        assert done["semanticState"]["state"]["type"] == "DONE"
        assert done["semanticState"]["pages_printed"] == labels
        assert sim.printer.data().endswith(payload) and sim.printer.lost == 0


def test_a_printer_that_never_answers_aborts_the_job(tmp_path, service, owner, agents, device_tree):
    with PrinterSim("zpl", str(tmp_path / "p"), comm_halt=True) as sim:
        agent, pid = claimed(tmp_path, service, owner, sim, agents, device_tree, "host-zpl",
                             fault_wait_s=10)
        sim.printer.fault("paper_out")  # and with comm.halt, silent from now on
        job = owner.submit(pid, LABEL, "application/x-zpl", "nobody home")
        wait_job(owner, job["id"], 30, ("STOPPED",), agent=agent)
        done = wait_job(owner, job["id"], 60, agent=agent)
        assert done["semanticState"]["state"] == {
            "type": "ABORTED", "device_action_cause": {"error_code": "PRINT_FAILURE"}}
        assert LABEL not in sim.printer.received()


CAUSES = {"paper_out": {"type": "STOPPED", "device_state_cause": {"error_code": "INPUT_TRAY"}},
          "head_open": {"type": "STOPPED", "device_state_cause": {"error_code": "MEDIA_PATH"}},
          "paused": {"type": "STOPPED", "user_action_cause": {"action_code": "PAUSED"}}}


@pytest.mark.parametrize("language, fault, when", list(itertools.product(
    ("zpl", "escpos"), ("paper_out", "head_open", "paused"), ("start", "middle", "end"))))
def test_every_fault_at_the_start_middle_and_end_of_a_job(tmp_path, service, owner, agents, device_tree,
                                                          language, fault, when):
    with PrinterSim(language, str(tmp_path / "p"), print_rate=20000) as sim:
        agent, pid = claimed(tmp_path, service, owner, sim, agents, device_tree, "host-" + language)
        if language == "zpl":
            payload, pages = zpl_labels(30 * 1024)
        else:
            receipt = b"\x1b@" + b"Coffee 2.50\n" * 30 + b"\x1dVB\x00"
            pages = 30 * 1024 // len(receipt)
            payload = receipt * pages
        sim.printer.fault(fault, after_bytes={"start": None, "middle": len(payload) // 2,
                                              "end": len(payload)}[when])
        job = owner.submit(pid, payload, "application/x-" + language, fault + " at " + when)
        wait_job(owner, job["id"], 30, ("STOPPED",), agent=agent)
        assert owner.job(job["id"])["semanticState"]["state"] == CAUSES[fault]
        wait_for(lambda: printer_state(owner, pid)["state"] == "STOPPED", 10, "printer STOPPED")
        sim.printer.clear()
        done = wait_job(owner, job["id"], 60, agent=agent)
        assert done["semanticState"]["state"]["type"] == "DONE"
        assert done["semanticState"]["pages_printed"] == pages == sim.printer.pages - 1
        assert states_of(service, job["id"]) == [
            {"type": "IN_PROGRESS"}, CAUSES[fault], {"type": "IN_PROGRESS"}, {"type": "DONE"}]
        assert sim.printer.data().count(payload) == 1 and sim.printer.lost == 0
        wait_for(lambda: printer_state(owner, pid)["state"] == "IDLE", 10, "printer IDLE")
