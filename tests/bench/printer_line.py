"""How well the agent feeds a printer, with figures from one run:

  .venv/bin/python -m tests.bench.printer_line [--quick]

- line busy: a 2 MB ZPL job to a simulator paced at 115200 and 921600 baud with a 4 KB
  buffer (print engine twice as fast as the line, so only the agent can leave it idle):
  (bytes x 10 / baud) / (last byte - first byte);
- bytes lost: a 64 KB job at 115200 baud into buffers from 45 B to 16 KB with a slow
  print engine, for hardware-style and XON/XOFF flow control (a 45 B buffer leaves
  16 B of margin after XOFF: 1.4 ms of line time at 115200, 0.17 ms at 921600), and
  the 45 B buffer once more at 9600 baud, the rate such printers run at;
- throughput with pacing off, against a plain CPython socket-to-socket copy of the
  same bytes measured in the same run."""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from tools import build
from tools.printservice.client import Client
from tools.printservice.server import Service
from tools.hostrun import BOARDS, ROOT, Agent, claim, provision, wait_for, wait_job, zpl_labels
from tools.printersim.server import PrinterSim


class Bench:
    def __init__(self, root):
        self.root = root
        self.tree = os.path.join(root, "device")
        build.build(self.tree)
        self.svc = Service(os.path.join(root, "svc"), log=lambda m: None).start()
        self.owner = Client(self.svc.http_url + "/cloudprint", self.svc.owner_key)
        self.flash = os.path.join(root, "flash")
        provision(self.flash, self.svc, poll_interval_s=1)
        with PrinterSim("zpl", os.path.join(root, "first")) as sim:
            agent = Agent(self.flash, sim.address, tree=self.tree)
            claim(agent, self.owner)
            wait_for(lambda: os.path.exists(os.path.join(self.flash, "credentials.json")), 10, "credentials")
            agent.stop()
        with open(os.path.join(self.flash, "credentials.json")) as f:
            self.printer_id = json.load(f)["printer_id"]
        self.n = 0

    def board(self, flow, window, baud):
        # Hardware-style flow on a host link is the link's own back-pressure (TCP, tty):
        # the agent does nothing for it; XON/XOFF is the agent's job.
        with open(os.path.join(BOARDS, "host-zpl.json")) as f:
            b = json.load(f)
        b.update(flow_control="xonxoff" if flow == "xonxoff" else "none", stall_timeout_s=30,
                 flow_window=window, baudrate=baud or 115200)
        path = os.path.join(self.root, "board-%s-%d-%d.json" % (flow, window, baud or 0))
        with open(path, "w") as f:
            json.dump(b, f)
        return path

    def run(self, payload, agent_flow, window=64, **sim_options):
        """(printer, seconds from first to last data byte, job state)."""
        self.n += 1
        with PrinterSim("zpl", os.path.join(self.root, "p%d" % self.n), **sim_options) as sim:
            board = self.board(agent_flow, window, sim_options.get("baud"))
            agent = Agent(self.flash, sim.address, board=board, tree=self.tree)
            try:
                job = self.owner.submit(self.printer_id, payload, "application/x-zpl", "bench")
                done = wait_job(self.owner, job["id"], deadline_s(payload, sim_options.get("baud")),
                                agent=agent)
            finally:
                agent.stop()
            p = sim.printer
            return p, p.last_data_at - p.first_data_at, done["semanticState"]["state"]["type"]

    def run_apart(self, payload, agent_flow, window, baud, **sim):
        """(bytes the printer lost, job state) with the printer simulator in a process of
        its own, as a real printer is: in this process it would share the interpreter
        lock with the service's TLS, and its late reads would look like a late XOFF."""
        self.n += 1
        port, control = free_port(), free_port()
        cmd = [sys.executable, "-m", "tools.printersim", "--language", "zpl", "--port", str(port),
               "--control-port", str(control), "--record", os.path.join(self.root, "p%d" % self.n),
               "--baud", str(baud)]
        for k, v in sim.items():
            cmd += ["--" + k.replace("_", "-"), str(v)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            proc.stdout.readline()  # "printersim: ... at ..." once it listens
            board = self.board(agent_flow, window, baud)
            agent = Agent(self.flash, "tcp://127.0.0.1:%d" % port, board=board, tree=self.tree)
            try:
                job = self.owner.submit(self.printer_id, payload, "application/x-zpl", "bench")
                done = wait_job(self.owner, job["id"], deadline_s(payload, baud), agent=agent)
            finally:
                agent.stop()
            with socket.create_connection(("127.0.0.1", control), 5) as c:
                c.sendall(b"status\n")
                status = json.loads(c.makefile().readline())
            return status["lost"], done["semanticState"]["state"]["type"]
        finally:
            proc.terminate()
            proc.wait(5)

    def close(self):
        self.svc.stop()


def deadline_s(payload, baud):
    """Three times the job's line time, and a minute for the rest: a step that takes
    longer has failed, and says so."""
    return 60 + 3 * len(payload) * 10 // (baud or 115200)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plain_copy_seconds(payload):
    """A CPython socket-to-socket copy of the same bytes over loopback."""
    src = socket.create_server(("127.0.0.1", 0))
    dst = socket.create_server(("127.0.0.1", 0))
    got = []

    def sink():
        c, _ = dst.accept()
        n = 0
        while True:
            b = c.recv(65536)
            if not b:
                break
            n += len(b)
        got.append(n)
        c.close()

    def source():
        c, _ = src.accept()
        c.sendall(payload)
        c.close()
    threading.Thread(target=sink, daemon=True).start()
    threading.Thread(target=source, daemon=True).start()
    t0 = time.monotonic()
    a = socket.create_connection(src.getsockname())
    b = socket.create_connection(dst.getsockname())
    while True:
        chunk = a.recv(1024)
        if not chunk:
            break
        b.sendall(chunk)
    b.close()
    wait_for(lambda: got, 30, "sink")
    return time.monotonic() - t0


def main(argv):
    quick = "--quick" in argv
    root = tempfile.mkdtemp(prefix="linebench-")
    bench = Bench(root)
    try:
        big, _ = zpl_labels((256 if quick else 2048) * 1024)
        print("line busy, %d KB job, 4 KB buffer, engine 2x the line:" % (len(big) // 1024))
        for baud in (115200, 921600):
            for flow in ("hardware", "xonxoff"):
                p, secs, state = bench.run(big, flow, baud=baud, buffer_size=4096, flow=flow,
                                           busy_free=128, ready_free=1024, print_rate=baud // 5)
                busy = len(big) * 10 / baud / secs
                print("  %6d baud %-8s busy %6.2f %%  lost %d  %s" % (baud, flow, 100 * busy, p.lost, state))
        small, _ = zpl_labels(64 * 1024)
        print("bytes lost, 64 KB job at 115200 baud, engine 20 KB/s:")
        for size, busy_free, ready_free in ((45, 16, 26), (256, 64, 128), (1024, 128, 256),
                                            (4096, 128, 1024), (16384, 128, 1024)):
            row = []
            for flow in ("hardware", "xonxoff"):
                # a window inside the printer's XOFF margin, as its board config would set
                lost, state = bench.run_apart(small, flow, min(64, busy_free // 2), 115200,
                                              buffer=size, flow=flow, busy_free=busy_free,
                                              ready_free=ready_free, print_rate=20000)
                row.append("%s lost %6d (%s)" % (flow, lost, state))
            print("  buffer %5d B: %s" % (size, ";  ".join(row)))
        # A 45 B buffer is a setting for slow lines (cheap TTL modules run at 9600 or 19200):
        # its 16 B XOFF margin is 16.7 ms of line time at 9600 but only 1.4 ms at 115200.
        label, _ = zpl_labels(8 * 1024)
        lost, state = bench.run_apart(label, "xonxoff", 8, 9600, buffer=45, flow="xonxoff",
                                      busy_free=16, ready_free=26, print_rate=2000)
        print("  buffer    45 B at 9600 baud, 8 KB job: xonxoff lost %d (%s)" % (lost, state))
        runs = 3  # medians: one run of either can be disturbed by the other's threads
        secs = statistics.median(bench.run(big, "hardware")[1] for _ in range(runs))
        base = statistics.median(plain_copy_seconds(big) for _ in range(runs))
        print("throughput, pacing off (median of %d): agent %.1f MB/s, plain socket copy %.1f MB/s, "
              "ratio %.3f" % (runs, len(big) / secs / 1e6, len(big) / base / 1e6, base / secs))
    finally:
        bench.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
