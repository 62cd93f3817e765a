"""The device side of the agent under the real micropython: the watchdog, safe mode that
only a crash loop (not a deliberate stop) brings, files holding secrets, --help."""
import os
import stat
import subprocess
import time

from tools.hostrun import MICROPYTHON, ROOT, claim, provision, wait_for, wait_job
from tests.system.test_console import answer

LABEL = b"^XA^FO20,20^A0N,30,30^FDwatched^FS^XZ"


def test_the_watchdog_is_fed_by_every_wait_and_resets_a_hung_agent():
    probe = os.path.join(ROOT, "tests", "system", "mp", "watchdog_probe.py")
    t0 = time.monotonic()
    proc = subprocess.run([MICROPYTHON, probe, ROOT, "1000"], capture_output=True, text=True, timeout=30)
    took = time.monotonic() - t0
    assert "alive after the clock's waits" in proc.stdout  # 3 s of waits with a 1 s watchdog
    assert "watchdog: no sign of life for 1 s; resetting" in proc.stdout
    assert "not reset" not in proc.stdout and proc.returncode != 0 and took < 10


def test_an_agent_with_the_watchdog_prints_and_is_never_reset(tmp_path, service, owner, zpl_printer,
                                                              agents, device_tree):
    flash = str(tmp_path / "flash")
    provision(flash, service)
    agent = agents(flash, zpl_printer.address, tree=device_tree, args=["--watchdog", "3"])
    claim(agent, owner)  # registration, TLS handshakes, the claim polls: all within 3 s beats
    pid = wait_for(lambda: owner.printers() and owner.printers()[0]["id"], 10, "the printer")
    job = owner.submit(pid, LABEL, "application/x-zpl", "watched")
    assert wait_job(owner, job["id"], 30, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    time.sleep(5)  # idle polling
    assert agent.alive() and "watchdog" not in agent.output
    assert answer(agent, "status", r"led: +online") < 5


def test_deliberate_stops_do_not_count_towards_safe_mode(tmp_path, service, zpl_printer, agents,
                                                         device_tree):
    flash = str(tmp_path / "flash")
    provision(flash, service)
    for _ in range(5):  # stopped by SIGINT (Ctrl-C, systemd KillSignal=SIGINT) right after start
        a = agents(flash, zpl_printer.address, tree=device_tree)
        a.wait_line(r"agent .* up")
        a.stop()
        assert a.proc.returncode == 0 and "stopped" in a.output
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"^Code:  \w+$", 30)
    assert "SAFE MODE" not in agent.output


def test_files_holding_secrets_are_private(tmp_path, service, owner, zpl_printer, agents, device_tree):
    flash = str(tmp_path / "flash")
    provision(flash, service)
    os.chmod(os.path.join(flash, "settings.json"), 0o644)  # as a careless copy would leave it
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    claim(agent, owner)
    wait_for(lambda: os.path.exists(os.path.join(flash, "credentials.json")), 10, "credentials")
    answer(agent, "set log_level info", r"ok: log_level")  # the console rewrites settings.json
    for name in ("credentials.json", "identity.json", "settings.json"):
        mode = stat.S_IMODE(os.stat(os.path.join(flash, name)).st_mode)
        assert mode == 0o600, (name, oct(mode))
    import json
    with open(os.path.join(flash, "identity.json")) as f:
        proxy = json.load(f)["proxy"]
    assert proxy.startswith("cpa-") and len(proxy) == 4 + 20  # 80 random bits, not the MAC


def test_help_prints_usage_and_exits_0(tmp_path):
    proc = subprocess.run([MICROPYTHON, os.path.join(ROOT, "main.py"), "--help"], capture_output=True,
                          text=True, timeout=20, cwd=str(tmp_path))
    assert proc.returncode == 0 and proc.stdout.startswith("usage: micropython main.py")
    assert "--watchdog" in proc.stdout
    proc = subprocess.run([MICROPYTHON, os.path.join(ROOT, "main.py"), "--bogus"], capture_output=True,
                          text=True, timeout=20, cwd=str(tmp_path))
    assert proc.returncode == 2 and "unknown argument --bogus" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
