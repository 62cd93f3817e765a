"""The host tools against the simulated device (tools/serialsim.py: micropython on a pty,
bridged to a second pty that the tools open as a serial port): deploy with mpremote to the
bare REPL, then provision over the agent's console, from an empty flash to a claimed
printer that prints; and the clear failures."""
import os
import re

import pytest

from tools import deploy, provision
from tools.hostrun import wait_for, wait_job
from tools.serialsim import SerialDevice

LABEL = b"^XA^FO20,20^A0N,30,30^FDprovisioned^FS^XZ"


def test_deploy_then_provision_from_zero_to_a_printed_job(tmp_path, service, owner, zpl_printer):
    flash = str(tmp_path / "flash")
    os.makedirs(flash)
    out = []
    assert deploy.main(["--port", "/dev/null", "--board", "board_configs/host-zpl.json", "--dry-run"],
                       say=out.append) == 0
    assert "dry run: nothing copied" in out and os.listdir(flash) == []
    os.makedirs(os.path.join(flash, "firmware", "ports"))
    for stale in ("firmware/retired.mpy", "firmware/ports/retired.py"):  # an older deploy's
        open(os.path.join(flash, stale), "w").close()
    with SerialDevice(flash, repl=True) as repl:
        assert deploy.main(["--port", repl.port, "--board", "board_configs/host-zpl.json",
                            "--resume", "--no-reset"], say=out.append) == 0
    assert sorted(os.listdir(flash)) == ["board.json", "boot.py", "firmware", "main.py"]
    assert os.path.exists(os.path.join(flash, "firmware", "app.mpy"))
    assert not os.path.exists(os.path.join(flash, "firmware", "retired.mpy"))
    assert not os.path.exists(os.path.join(flash, "firmware", "ports", "retired.py"))
    assert not os.path.exists(os.path.join(flash, "firmware", "ports", "esp32.mpy"))
    # the deployed tree runs, with the deployed board.json: nothing else on the command line
    with SerialDevice(flash, printer=zpl_printer.address, tree=flash) as dev:
        said = []
        secret = service.client["client_secret"]
        assert provision.main([
            "--port", dev.port, "--ca", service.certs["ca_pem"], "--reboot",
            "--set", "service_url=%s/cloudprint" % service.https_url,
            "--set", "oauth_client_id=" + service.client["client_id"],
            "--set", "oauth_client_secret=" + secret,
            "--set", "claim_poll_s=5", "--set", "poll_interval_s=1"], say=said.append) == 0
        text = "\n".join(said)
        assert "[3/6] oauth_client_secret = ******** ... ok" in text and "[6/6] ca_cert" in text
        assert secret not in text and secret not in dev.text
        assert dev.starts == 2  # the reboot started the agent again
        assert re.search(r"state: +(registering|waiting to be claimed)", text), text
        code = wait_for(lambda: re.search(r"Code:  (\w+)", dev.text), 30, "the claim code").group(1)
        owner.claim(code)
        wait_for(lambda: os.path.exists(os.path.join(flash, "credentials.json")), 30, "the claim")
        pid = owner.printers()[0]["id"]
        job = owner.submit(pid, LABEL, "application/x-zpl", "provisioned")
        assert wait_job(owner, job["id"], 30)["semanticState"]["state"]["type"] == "DONE"
        assert LABEL in zpl_printer.printer.data()


def test_provisioning_fails_clearly(tmp_path, service, zpl_printer, capsys):
    assert provision.main(["--port", str(tmp_path / "no-such-port"), "--set", "log_level=debug"]) == 1
    assert "cannot open" in capsys.readouterr().err
    import socket
    with socket.create_server(("127.0.0.1", 0)) as silent:  # a port with nothing answering
        url = "socket://127.0.0.1:%d" % silent.getsockname()[1]
        assert provision.main(["--port", url, "--timeout", "1", "--set", "log_level=debug"]) == 1
        assert "no answer from the agent's console on %s within 1 s" % url in capsys.readouterr().err
    with SerialDevice(str(tmp_path), repl=True) as repl:  # a board at the REPL prompt
        assert provision.main(["--port", repl.port, "--timeout", "2", "--set", "log_level=debug"]) == 1
        assert "at the MicroPython prompt" in capsys.readouterr().err
    flash = tmp_path / "flash"
    flash.mkdir()
    with SerialDevice(str(flash), printer=zpl_printer.address,
                      board=os.path.abspath("board_configs/host-zpl.json")) as dev:
        assert provision.main(["--port", dev.port, "--set", "log_level=debug",
                               "--set", "poll_interval_s=never"]) == 1
        err = capsys.readouterr()
        assert "the device refused poll_interval_s: poll_interval_s: expected a whole number" in err.err
        assert "[1/2] log_level = debug ... ok" in err.out


def test_a_frozen_deploy_copies_only_the_boot_files_and_removes_firmware(tmp_path):
    flash = str(tmp_path / "flash")
    os.makedirs(os.path.join(flash, "firmware", "ports"))
    for old in ("firmware/app.mpy", "firmware/ports/unix.mpy"):  # a .mpy deploy's, which would hide the frozen agent
        open(os.path.join(flash, old), "w").close()
    out = []
    with SerialDevice(flash, repl=True) as repl:
        assert deploy.main(["--port", repl.port, "--board", "board_configs/esp32-devkitc-rs232.json",
                            "--resume", "--no-reset", "--frozen"], say=out.append) == 0
    assert sorted(os.listdir(flash)) == ["board.json", "boot.py", "main.py"]
    assert "3 files" in out[0]


def test_deploy_refuses_a_bad_board_config(tmp_path, capsys):
    bad = tmp_path / "board.json"
    bad.write_text('{"board": "x", "printer_language": "pcl"}')
    assert deploy.main(["--port", "/dev/null", "--board", str(bad), "--dry-run"]) == 1
    assert "printer_language: must be one of zpl, escpos" in capsys.readouterr().err


@pytest.mark.parametrize("board", sorted(os.listdir("board_configs")))
def test_every_board_config_deploys_in_a_dry_run(board):
    out = []
    assert deploy.main(["--board", "board_configs/" + board, "--dry-run"], say=out.append) == 0
    assert out[-1] == "dry run: nothing copied" and any("board.json" in line for line in out)
    host = board.startswith("host-")
    assert any("ports/unix.mpy" in line for line in out) == host
    assert any("ports/esp32.mpy" in line for line in out) != host


def test_deploy_needs_a_port_unless_it_is_a_dry_run(capsys):
    with pytest.raises(SystemExit):
        deploy.main(["--board", "board_configs/esp32-c3.json"])
    assert "--port is needed" in capsys.readouterr().err


def test_the_tools_fail_in_one_line_without_a_traceback(tmp_path):
    import socket
    import subprocess
    import sys

    def run(*args):
        proc = subprocess.run([sys.executable, "-m"] + list(args), capture_output=True, text=True,
                              timeout=60, cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=os.getcwd()))
        assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
        return proc
    busy = socket.create_server(("127.0.0.1", 0))
    port = str(busy.getsockname()[1])
    try:
        p = run("tools.printersim", "--language", "zpl", "--port", port, "--record", str(tmp_path / "r"))
        assert p.returncode != 0 and "Address already in use (ports %s" % port in p.stderr
        p = run("tools.printservice", "--data", str(tmp_path / "d"), "--http-port", "0", "--https-port", port)
        assert p.returncode != 0 and "HTTPS port %s on 127.0.0.1" % port in p.stderr
        assert "--https-port" in p.stderr
    finally:
        busy.close()
    p = run("tools.printservice.client", "--key-file", str(tmp_path / "missing.key"), "printers")
    assert p.returncode == 1 and "missing.key: No such file or directory" in p.stderr
    p = run("tools.printservice.client", "--key", "k", "submit", "P", str(tmp_path / "label.zpl"))
    assert p.returncode == 1 and "label.zpl: No such file or directory" in p.stderr
    p = run("tools.printersim.preview")
    assert p.returncode == 2 and "record_dir" in p.stderr
