"""Smallest MicroPython heap (-X heapsize, bytes) at which the agent still works, found by
bisection (512 B steps), with a baseline measured in the same run, side by side for:

  64-bit         this host's interpreter from PyPI, the firmware as .mpy
  32-bit .mpy    a 32-bit interpreter (objects as on the ESP32), the firmware as .mpy,
                 its bytecode in the heap as on stock ESP32 firmware
  32-bit frozen  the same interpreter built with firmware/manifest.py frozen in, as a
                 custom ESP32 firmware image

  .venv/bin/python -m tests.bench.heap_floor [--only NAME ...]
  MICROPYTHON32=.../micropython32/bin/micropython-i386 .venv/bin/python -m tests.bench.heap_floor

MICROPYTHON32 names the 32-bit interpreter; the frozen one is built with the build.sh beside
its bin/ folder (MICROPYTHON32_BUILD names another), once, into run/micropython32-frozen.
Without MICROPYTHON32 only the 64-bit column is measured (a note says so).

Workloads:
  chain         registration, claim, token exchange and one job, over verified HTTPS
  chain+push    the same with push over TLS (mqtts) and the console asked for its status
  job 10KB      a registered agent printing a 10 KB job
  job 5MB       the same with a 5 MB job (equal to the line above = memory does not grow)
  push job 5MB  a registered agent with push over TLS printing a 5 MB job
  baseline      a bare verified-HTTPS download streamed to the printer by our HTTP client
Goals (32-bit): every workload at most 65,536 B as .mpy and 32,768 B frozen; job 5MB /
job 10KB at most 1.05."""
import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

from tests.system.conftest import free_port
from tools import build
from tools.hostrun import MICROPYTHON, ROOT, Agent, claim, provision, wait_for, zpl_labels
from tools.printersim.server import PrinterSim
from tools.printservice.client import Client
from tools.printservice.server import Service

STEP = 512
GOALS = {"32-bit .mpy": 65536, "32-bit frozen": 32768}
FROZEN_BUILD = os.path.join(ROOT, "run", "micropython32-frozen")


def bisect(passes, lo, hi):
    """The smallest n in (lo, hi] (to STEP) with passes(n); lo must fail, hi pass."""
    if not passes(hi):
        raise RuntimeError("fails even at %d bytes" % hi)
    while hi - lo > STEP:
        mid = (lo + hi) // 2 // 256 * 256
        if passes(mid):
            hi = mid
        else:
            lo = mid
    return hi


class Interpreter:
    """A MicroPython binary and the device tree it runs (frozen: boot.py and main.py only)."""

    def __init__(self, name, path, tree):
        self.name, self.path, self.tree = name, path, tree


def interpreters(root):
    mpy_tree = os.path.join(root, "device")
    build.build(mpy_tree)
    out = [Interpreter("64-bit", MICROPYTHON, mpy_tree)]
    i386 = os.environ.get("MICROPYTHON32")
    if not i386:
        print("note: MICROPYTHON32 is not set: no 32-bit figures (it names a 32-bit MicroPython unix build)")
        return out
    out.append(Interpreter("32-bit .mpy", i386, mpy_tree))
    script = os.environ.get("MICROPYTHON32_BUILD") or os.path.join(os.path.dirname(os.path.dirname(i386)), "build.sh")
    if not os.path.exists(FROZEN_BUILD) or _older_than_firmware(FROZEN_BUILD):
        print("building the 32-bit interpreter with the firmware frozen in (%s) ..." % script, flush=True)
        subprocess.run([script, FROZEN_BUILD, os.path.join(ROOT, "firmware", "manifest.py")], check=True)
    boot_tree = os.path.join(root, "boot-only")
    os.makedirs(boot_tree)
    for name in ("boot.py", "main.py"):
        shutil.copy(os.path.join(ROOT, name), boot_tree)
    out.append(Interpreter("32-bit frozen", FROZEN_BUILD, boot_tree))
    return out


def _older_than_firmware(path):
    built = os.path.getmtime(path)
    return any(os.path.getmtime(os.path.join(ROOT, f)) > built for f in build.firmware_sources())


class World:
    def __init__(self, root):
        self.root = root
        self.service = Service(os.path.join(root, "svc"), log=lambda m: None, broker_port=0,
                               broker_tls_port=free_port()).start()
        self.owner = Client(self.service.http_url + "/cloudprint", self.service.owner_key)
        self.printer = PrinterSim("zpl", os.path.join(root, "printer")).start()
        self.n = 0
        self.registered = {}  # (interpreter, push) -> a claimed flash

    def close(self):
        self.printer.stop()
        self.service.stop()

    def fresh_flash(self, push):
        self.n += 1
        flash = os.path.join(self.root, "flash%d" % self.n)
        extra = {"mqtt_url": self.service.mqtt_url, "mqtt_keepalive_s": 30} if push else {}
        provision(flash, self.service, **extra)
        return flash

    def agent(self, interp, flash, heap=None):
        if os.path.exists(os.path.join(flash, "boot.json")):  # every try is a short start on
            os.remove(os.path.join(flash, "boot.json"))  # the same flash: no boot loop for safe mode
        return Agent(flash, self.printer.address, heap=heap and str(heap), tree=interp.tree,
                     interpreter=interp.path)

    def print_job(self, agent, payload, printer_id, timeout):
        mark = len(self.printer.printer.received())  # before the submit: with push it prints at once
        job = self.owner.submit(printer_id, payload, "application/x-zpl", "bench")

        def finished():
            j = self.owner.job(job["id"])
            if not agent.alive():
                return "dead"
            return j["semanticState"]["state"]["type"] in ("DONE", "ABORTED") and j
        j = wait_for(finished, timeout, "job")
        return (j != "dead" and j["semanticState"]["state"]["type"] == "DONE"
                and payload in self.printer.printer.received()[mark:])

    def chain(self, interp, heap, push=False):
        flash = self.fresh_flash(push)
        agent = self.agent(interp, flash, heap)
        try:
            claim(agent, self.owner, 40)
            if push:
                agent.wait_line(r"push: subscribed to", 40)
                agent.type("status")
                agent.wait_line(r"^push: +connected", 10)
            return self.print_job(agent, b"^XA^FDbench^FS^XZ", printer_id(flash), 20)
        except AssertionError:
            return False
        finally:
            agent.stop()

    def registered_flash(self, interp, push):
        key = (interp.name, push)
        if key not in self.registered:
            flash = self.fresh_flash(push)
            agent = self.agent(interp, flash)
            try:
                claim(agent, self.owner, 40)
                wait_for(lambda: os.path.exists(os.path.join(flash, "credentials.json")), 10, "credentials")
            finally:
                agent.stop()
            self.registered[key] = flash
        return self.registered[key]

    def job(self, interp, heap, payload, push=False):
        flash = self.registered_flash(interp, push)
        agent = self.agent(interp, flash, heap)
        try:
            if push:
                agent.wait_line(r"push: subscribed to", 40)
            return self.print_job(agent, payload, printer_id(flash), 60)
        except AssertionError:
            return False
        finally:
            agent.stop()

    def baseline(self, interp, heap, payload):
        pid = printer_id(self.registered_flash(interp, False))
        job = self.owner.submit(pid, payload, "application/x-zpl", "baseline")
        db = sqlite3.connect(os.path.join(self.service.data_dir, "service.db"))
        token = db.execute("SELECT token FROM tokens WHERE kind='access' AND printer_id=? "
                           "ORDER BY expires_ms DESC", (pid,)).fetchone()[0]
        db.close()
        mark = len(self.printer.printer.received())  # no agent runs: only mp_stream.py prints it
        host, port = self.printer.address[6:].rsplit(":", 1)
        proc = subprocess.run([interp.path, "-X", "heapsize=%d" % heap,
                               os.path.join(os.path.dirname(__file__), "mp_stream.py"), interp.tree,
                               self.service.certs["ca_der"], job["fileUrl"].replace(
                                   self.service.http_url, self.service.https_url), token, host, port],
                              capture_output=True, text=True, timeout=60)
        time.sleep(0.3)
        return proc.returncode == 0 and payload in self.printer.printer.received()[mark:]


def printer_id(flash):
    wait_for(lambda: os.path.exists(os.path.join(flash, "credentials.json")), 10, "credentials")
    with open(os.path.join(flash, "credentials.json")) as f:
        return json.load(f)["printer_id"]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.bench.heap_floor", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="measure only these workloads")
    ap.add_argument("--columns", nargs="*", help="measure only these interpreters (64-bit, '32-bit .mpy', "
                    "'32-bit frozen')")
    args = ap.parse_args(argv)
    root = tempfile.mkdtemp(prefix="heapbench-")
    small, _ = zpl_labels(10 * 1024)
    big, _ = zpl_labels(5 * 1024 * 1024)
    workloads = [
        ("chain", lambda w, i, h: w.chain(i, h), 16 * 1024),
        ("chain+push", lambda w, i, h: w.chain(i, h, push=True), 16 * 1024),
        ("job 10KB", lambda w, i, h: w.job(i, h, small), 16 * 1024),
        ("job 5MB", lambda w, i, h: w.job(i, h, big), 16 * 1024),
        ("push job 5MB", lambda w, i, h: w.job(i, h, big, push=True), 16 * 1024),
        ("baseline", lambda w, i, h: w.baseline(i, h, big), 4 * 1024),
    ]
    workloads = [wl for wl in workloads if not args.only or wl[0] in args.only]
    w = None
    try:
        t0 = time.time()
        interps = [i for i in interpreters(root) if not args.columns or i.name in args.columns]
        w = World(root)
        figures = {}
        for interp in interps:
            for name, run, lo in workloads:
                figures[name, interp.name] = bisect(lambda h: run(w, interp, h), lo, 256 * 1024)
                print("  measured %-13s %-13s %7d" % (name, interp.name, figures[name, interp.name]), flush=True)
        names = [i.name for i in interps]
        print("smallest -X heapsize, bytes (bisected to %d B)" % STEP)
        print("  %-13s" % "workload" + "".join(" %14s" % n for n in names))
        for name, _, _ in workloads:
            print("  %-13s" % name + "".join(" %14d" % figures[name, n] for n in names))
        for n in names:
            if ("job 5MB", n) in figures and ("job 10KB", n) in figures:
                print("  ratio job 5MB / job 10KB, %-13s %6.2f" % (n, figures["job 5MB", n] / figures["job 10KB", n]))
            if ("chain", n) in figures and ("baseline", n) in figures:
                print("  ratio chain / baseline, %-13s   %6.2f" % (n, figures["chain", n] / figures["baseline", n]))
        for n, goal in GOALS.items():
            over = [name for name, _, _ in workloads if figures.get((name, n), 0) > goal]
            if n in names:
                print("  goal %s <= %d: %s" % (n, goal, "met" if not over else "over in " + ", ".join(over)))
        print("(%.0f s)" % (time.time() - t0))
    finally:
        if w is not None:
            w.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
