"""Run the real firmware under the MicroPython unix port against the simulators (used by
the demo, the system tests and the benchmarks)."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the unix-port interpreter from PyPI; a benchmark may name another (a 32-bit build, whose
# heap figures are an ESP32's) in CLOUDPRINT_MICROPYTHON
MICROPYTHON = os.environ.get("CLOUDPRINT_MICROPYTHON") or os.path.join(os.path.dirname(sys.executable),
                                                                       "micropython")
BOARDS = os.path.join(ROOT, "board_configs")


def stop_process(proc):
    """Terminate, then kill if it will not go within 5 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve_until_signalled(stop):
    """For the simulators' command lines: run until SIGTERM or Ctrl-C, then stop()."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    done.wait()
    stop()


def wait_for(predicate, timeout, what, interval=0.05):
    """predicate()'s first true value within timeout s; what names it in the failure (a
    callable is asked then, so the failure shows the state at the end of the wait)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what() if callable(what) else what))


def provision(flash_dir, service, https=True, **overrides):
    """Write what provisioning puts in a device's flash: settings and the CA."""
    os.makedirs(flash_dir, exist_ok=True)
    shutil.copy(service.certs["ca_der"], os.path.join(flash_dir, "ca.der"))
    settings = {"service_url": (service.https_url if https else service.http_url) + "/cloudprint",
                "oauth_client_id": service.client["client_id"],
                "oauth_client_secret": service.client["client_secret"],
                "claim_poll_s": 5, "poll_interval_s": 1, "http_timeout_s": 5}
    settings.update(overrides)
    with open(os.path.join(flash_dir, "settings.json"), "w") as f:
        json.dump(settings, f)
    return settings


class Agent:
    """One `micropython main.py` process; its console output is collected in lines."""

    def __init__(self, flash_dir, printer_address, board="host-zpl", heap=None, tree=ROOT, args=(),
                 interpreter=None):
        """interpreter: another MicroPython binary (a 32-bit build, one with the firmware frozen in)."""
        self.flash_dir = flash_dir
        cmd = [interpreter or MICROPYTHON]
        if heap:
            cmd += ["-X", "heapsize=" + heap]
        cmd += [os.path.join(tree, "main.py"), "--flash", flash_dir, "--printer", printer_address]
        if board:
            cmd += ["--board", board if board.endswith(".json") else os.path.join(BOARDS, board + ".json")]
        cmd += list(args)
        # stdin is the serial console (firmware/console.py): type() writes a line to it
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE, cwd=flash_dir)
        self.lines = []
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def output(self):
        return "\n".join(self.lines)

    def wait_line(self, pattern, timeout=30):
        rx = re.compile(pattern)

        def seen():
            for line in list(self.lines):
                m = rx.search(line)
                if m:
                    return m
            if self.proc.poll() is not None:
                raise AssertionError("agent exited (%s) before %r:\n%s"
                                     % (self.proc.returncode, pattern, self.output))
            return None
        return wait_for(seen, timeout, lambda: "agent line %r; output:\n%s" % (pattern, self.output))

    def type(self, line):
        """Type a line on the agent's serial console."""
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        """Cut the power: SIGKILL, so nothing in the agent runs after it."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        """A deliberate stop: SIGINT (Ctrl-C), which does not count towards safe mode."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                stop_process(self.proc)
        self._reader.join(2)


def claim(agent, client, timeout=30):
    """Read the claim code off the agent's console and claim it as the owner."""
    code = agent.wait_line(r"^Code:  (\w+)$", timeout).group(1)
    client.claim(code)
    agent.wait_line(r"claimed by owner@example.com", timeout)
    return code


def wait_job(client, job_id, timeout=60, states=("DONE", "ABORTED"), agent=None):
    def finished():
        if agent is not None and not agent.alive():
            raise AssertionError("agent exited (%s):\n%s" % (agent.proc.returncode, agent.output))
        if agent is not None and "SAFE MODE" in agent.output:
            raise AssertionError("agent is in safe mode: no job can print:\n%s" % agent.output)
        j = client.job(job_id)
        return j if j and j["semanticState"]["state"]["type"] in states else None
    return wait_for(finished, timeout, "job %s to reach %s" % (job_id, "/".join(states)), 0.1)


def claimed_flash(tmp_path, service, owner, printer, start, tree):
    """A flash directory holding a claimed printer's credentials; the printer id."""
    flash = str(tmp_path / "flash")
    provision(flash, service)
    agent = start(flash, printer.address, tree=tree)
    claim(agent, owner)
    wait_for(lambda: os.path.exists(os.path.join(flash, "credentials.json")), 10, "credentials")
    agent.stop()
    with open(os.path.join(flash, "credentials.json")) as f:
        return flash, json.load(f)["printer_id"]


def zpl_labels(total_bytes):
    """Realistic ZPL of about total_bytes: labels with hex graphic fields, no tildes."""
    out = bytearray()
    n = 0
    while len(out) < total_bytes:
        blob = os.urandom(1024).hex().upper().encode()
        out += (b"^XA^FO20,20^A0N,30,30^FDLabel %d^FS^FO20,80^GFA,2048,2048,32," % n + blob
                + b"^FS^XZ\n")
        n += 1
    return bytes(out), n
