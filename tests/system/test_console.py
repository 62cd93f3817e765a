"""The serial console under the real micropython: provisioning from an empty flash to a
claimed printer that prints, answers while a job prints and while the network is dead,
unregistering, and safe mode (a boot loop, or the button held at power-on)."""
import base64
import json
import os
import re
import time

from tools.hostrun import BOARDS, claim, claimed_flash, provision, wait_for, wait_job, zpl_labels
from tools.printersim.server import PrinterSim

LABEL = b"^XA^FO20,20^A0N,30,30^FDconsole^FS^XZ"


def answer(agent, line, pattern, timeout=10):
    """Type a line; the console's answer must come within timeout seconds."""
    n = len(agent.lines)
    agent.type(line)
    t0 = time.monotonic()
    rx = re.compile(pattern)
    wait_for(lambda: any(rx.search(x) for x in agent.lines[n:]), timeout,
             lambda: "the answer to %r; output:\n%s" % (line, agent.output))
    return time.monotonic() - t0


def test_provisioning_from_an_empty_flash_to_a_printed_job(tmp_path, service, owner, zpl_printer,
                                                           agents, device_tree):
    flash = str(tmp_path / "flash")
    os.makedirs(flash)
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"not configured: settings.json is missing")
    ca = base64.b64encode(open(service.certs["ca_der"], "rb").read()).decode()
    secret = service.client["client_secret"]
    for line, ok in [("set service_url %s/cloudprint" % service.https_url, "ok: service_url"),
                     ("set oauth_client_id " + service.client["client_id"], "ok: oauth_client_id"),
                     ("set oauth_client_secret " + secret, r"ok: oauth_client_secret = \*+"),
                     ("set ca_cert " + ca, "ok: ca_cert = ca.der"),
                     ("set claim_poll_s 5", "ok: claim_poll_s"),
                     ("set poll_interval_s 1", "ok: poll_interval_s")]:
        answer(agent, line, ok)
    agent.type("reboot")
    wait_for(lambda: not agent.alive(), 10, "the reboot")
    assert agent.proc.returncode == 3  # the host's "reboot": the supervisor starts it again
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    claim(agent, owner)
    with open(os.path.join(flash, "credentials.json")) as f:
        pid = json.load(f)["printer_id"]
    job = owner.submit(pid, LABEL, "application/x-zpl", "provisioned")
    assert wait_job(owner, job["id"], 30, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    answer(agent, "status", r"last job: +%s DONE" % job["id"])
    assert secret not in agent.output


def test_the_console_answers_while_a_job_prints(tmp_path, service, owner, agents, device_tree):
    with PrinterSim("zpl", str(tmp_path / "slow"), baud=9600, buffer_size=4096) as sim:
        flash, pid = claimed_flash(tmp_path, service, owner, sim, agents, device_tree)
        board = tmp_path / "slow-board.json"
        with open(os.path.join(BOARDS, "host-zpl.json")) as f:
            board.write_text(json.dumps(dict(json.load(f), stall_timeout_s=60)))
        agent = agents(flash, sim.address, board=str(board), tree=device_tree)
        agent.wait_line(r"printer state: ready")
        payload, _ = zpl_labels(20 * 1024)  # about 20 s at 9600 baud
        job = owner.submit(pid, payload, "application/x-zpl", "slow")
        agent.wait_line(r"printer state: ready \(printing\)", 15)
        took = answer(agent, "status", r"printer: +ready \(printing\)")
        assert took < 10  # the job itself takes about 20 s
        answer(agent, "test-print", r"error: a job is printing")
        assert owner.job(job["id"])["semanticState"]["state"]["type"] == "IN_PROGRESS"
        assert wait_job(owner, job["id"], 60, agent=agent)["semanticState"]["state"]["type"] == "DONE"
        # the service sees DONE before the agent's round ends (the printer's status, /update):
        # until then the console still says a job is printing; then the page goes out
        end = time.monotonic() + 60
        while True:
            n = len(agent.lines)
            answer(agent, "test-print", r"ok: test page sent|error: a job is printing", timeout=60)
            if any(re.search(r"ok: test page sent \(\d+ bytes\); printer: ", x) for x in agent.lines[n:]):
                break
            assert time.monotonic() < end, agent.output
            time.sleep(0.5)
        wait_for(lambda: b"Test print" in sim.printer.data(), 10, "the test page")


def test_the_console_answers_while_the_network_is_dead(tmp_path, service, owner, zpl_printer, agents,
                                                       device_tree):
    flash, _ = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    service.stop()  # the agent retries with backoff, for ever
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"retrying in \d+ ms", 30)
    assert answer(agent, "status", r"state: +registered") < 10
    assert answer(agent, "get poll_interval_s", r"poll_interval_s = 1") < 10


def test_unregister_on_the_console_wipes_the_claim_and_registers_anew(tmp_path, service, owner,
                                                                      zpl_printer, agents, device_tree):
    flash, pid = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"printer state: ready")
    answer(agent, "unregister", r"Type: unregister yes")
    assert os.path.exists(os.path.join(flash, "credentials.json"))
    answer(agent, "unregister yes", r"ok: unregistering")
    agent.wait_line(r"no longer registered \(unregistered on the console\)", 10)
    agent.wait_line(r"^Code:  \w+$", 15)
    assert not os.path.exists(os.path.join(flash, "credentials.json"))


def test_a_boot_loop_ends_in_safe_mode_with_the_console_only(tmp_path, service, owner, zpl_printer,
                                                             agents, device_tree):
    flash = str(tmp_path / "flash")
    provision(flash, service)
    for _ in range(3):  # three starts cut short: the power yanked, or a crash at boot
        a = agents(flash, zpl_printer.address, tree=device_tree)
        a.wait_line(r"agent .* up")
        a.kill()
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"SAFE MODE \(the agent stopped 3 times in a row", 10)
    answer(agent, "status", r"state: +safe mode")
    answer(agent, "set log_level debug", r"ok: log_level = debug")
    time.sleep(1)
    assert "registering" not in agent.output  # nothing but the console runs
    agent.type("reboot")
    wait_for(lambda: not agent.alive(), 10, "the reboot")
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"^Code:  \w+$", 30)  # a deliberate reboot is not a crash: normal start


def test_the_button_held_at_power_on_means_safe_mode(tmp_path, service, zpl_printer, agents, device_tree):
    flash = str(tmp_path / "flash")
    provision(flash, service)
    agent = agents(flash, zpl_printer.address, tree=device_tree, args=["--safe-mode"])
    agent.wait_line(r"SAFE MODE \(--safe-mode was given\)", 10)
    answer(agent, "get service_url", r"service_url = https://")
