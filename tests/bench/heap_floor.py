"""Smallest MicroPython heap (-X heapsize, in bytes on this 64-bit host) at which the
agent still works, found by bisection, with a baseline measured in the same run.

  .venv/bin/python -m tests.bench.heap_floor

Figures printed:
  chain     registration, claim, token exchange and one job, over verified HTTPS
  job 10KB  a registered agent printing a 10 KB job
  job 5MB   the same with a 5 MB job (equal to the line above = memory does not grow)
  baseline  a bare verified-HTTPS download streamed to the printer by our HTTP client
On the 32-bit ESP32 objects are about half this size (MicroPython's -X heapsize=NwK)."""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

from tools.hostrun import MICROPYTHON, Agent, claim, provision, wait_for, zpl_labels
from tools import build
from tools.printservice.client import Client
from tools.printservice.server import Service
from tools.printersim.server import PrinterSim

STEP = 512


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


class World:
    def __init__(self, root):
        self.root = root
        self.tree = os.path.join(root, "device")
        build.build(self.tree)
        self.service = Service(os.path.join(root, "svc"), log=lambda m: None).start()
        self.owner = Client(self.service.http_url + "/cloudprint", self.service.owner_key)
        self.printer = PrinterSim("zpl", os.path.join(root, "printer")).start()
        self.n = 0

    def close(self):
        self.printer.stop()
        self.service.stop()

    def fresh_flash(self):
        self.n += 1
        flash = os.path.join(self.root, "flash%d" % self.n)
        provision(flash, self.service)
        return flash

    def print_job(self, agent, payload, printer_id, timeout):
        job = self.owner.submit(printer_id, payload, "application/x-zpl", "bench")
        mark = len(self.printer.printer.received())

        def finished():
            j = self.owner.job(job["id"])
            if not agent.alive():
                return "dead"
            return j["semanticState"]["state"]["type"] in ("DONE", "ABORTED") and j
        j = wait_for(finished, timeout, "job")
        return (j != "dead" and j["semanticState"]["state"]["type"] == "DONE"
                and payload in self.printer.printer.received()[mark:])

    def chain(self, heap):
        flash = self.fresh_flash()
        agent = Agent(flash, self.printer.address, heap=str(heap), tree=self.tree)
        try:
            claim(agent, self.owner, 20)
            agent.wait_line("claimed by", 10)
            printer_id = self._printer_id(flash)
            return self.print_job(agent, b"^XA^FDbench^FS^XZ", printer_id, 20)
        except AssertionError:
            return False
        finally:
            agent.stop()

    def registered_flash(self):
        flash = self.fresh_flash()
        agent = Agent(flash, self.printer.address, tree=self.tree)
        claim(agent, self.owner, 20)
        wait_for(lambda: os.path.exists(os.path.join(flash, "credentials.json")), 10, "credentials")
        agent.stop()
        return flash

    def _printer_id(self, flash):
        import json
        wait_for(lambda: os.path.exists(os.path.join(flash, "credentials.json")), 10, "credentials")
        with open(os.path.join(flash, "credentials.json")) as f:
            return json.load(f)["printer_id"]

    def job(self, flash, heap, payload):
        # every try is a short start on the same flash: not the boot loop safe mode is for
        if os.path.exists(os.path.join(flash, "boot.json")):
            os.remove(os.path.join(flash, "boot.json"))
        agent = Agent(flash, self.printer.address, heap=str(heap), tree=self.tree)
        try:
            return self.print_job(agent, payload, self._printer_id(flash), 60)
        except AssertionError:
            return False
        finally:
            agent.stop()

    def baseline(self, heap, payload, printer_id):
        job = self.owner.submit(printer_id, payload, "application/x-zpl", "baseline")
        db = sqlite3.connect(os.path.join(self.service.data_dir, "service.db"))
        token = db.execute("SELECT token FROM tokens WHERE kind='access' AND printer_id=? "
                           "ORDER BY expires_ms DESC", (printer_id,)).fetchone()[0]
        db.close()
        mark = len(self.printer.printer.received())
        host, port = self.printer.address[6:].rsplit(":", 1)
        proc = subprocess.run([MICROPYTHON, "-X", "heapsize=%d" % heap,
                               os.path.join(os.path.dirname(__file__), "mp_stream.py"), self.tree,
                               self.service.certs["ca_der"], job["fileUrl"].replace(
                                   self.service.http_url, self.service.https_url), token, host, port],
                              capture_output=True, text=True, timeout=60)
        time.sleep(0.3)
        return proc.returncode == 0 and payload in self.printer.printer.received()[mark:]


def main():
    root = tempfile.mkdtemp(prefix="heapbench-")
    w = World(root)
    try:
        t0 = time.time()
        chain = bisect(w.chain, 16 * 1024, 256 * 1024)
        flash = w.registered_flash()
        small, _ = zpl_labels(10 * 1024)
        big, _ = zpl_labels(5 * 1024 * 1024)
        job_small = bisect(lambda h: w.job(flash, h, small), 16 * 1024, 256 * 1024)
        job_big = bisect(lambda h: w.job(flash, h, big), 16 * 1024, 256 * 1024)
        base = bisect(lambda h: w.baseline(h, big, w._printer_id(flash)), 4 * 1024, 128 * 1024)
        print("smallest -X heapsize on this host (bytes, 64-bit objects; bisected to %d B)" % STEP)
        print("  chain    (register, claim, exchange, 1 job, HTTPS) %7d" % chain)
        print("  job 10KB (registered agent)                        %7d" % job_small)
        print("  job 5MB  (registered agent)                        %7d" % job_big)
        print("  baseline (bare verified-HTTPS streamer, 5 MB)      %7d" % base)
        print("  ratio job 5MB / job 10KB                           %7.2f" % (job_big / job_small))
        print("  ratio job 5MB / baseline                           %7.2f" % (job_big / base))
        print("  ratio chain / baseline                             %7.2f" % (chain / base))
        print("(%.0f s)" % (time.time() - t0))
    finally:
        w.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
