"""Job submitted -> first byte at the printer, push against polling, figures from one run:

  .venv/bin/python -m tests.bench.push_latency [--jobs 200] [--poll-agents 5]

- push: one agent subscribed to the service's embedded broker (the default set-up);
  one-label jobs, each submitted after the previous one reached the printer plus a
  random 50-150 ms pause;
- polling only, at the default poll interval (60 s): agents without a broker; the same
  number of jobs submitted at random instants over four poll intervals, each to a random
  agent (so several may wait for the same poll, as at a busy dock);
- a broker restart in the middle of a burst of 50 jobs submitted 100 ms apart: jobs lost
  (not printed within the fast poll's reach) and jobs printed twice, both must be 0.

The first byte is timed in the printer simulator as it arrives (no polling of files)."""
import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import threading
import time

from tools import build
from tools.printservice.client import Client
from tools.printservice.server import Service
from tools.hostrun import Agent, claim, provision, wait_for
from tools.printersim.server import PrinterSim

DEFAULT_POLL_S = 60  # firmware/config.py poll_interval_s
poll_s = DEFAULT_POLL_S


class Arrivals:
    """Watches a printer's data for job markers; the monotonic time each first appeared."""

    def __init__(self, printer):
        self.seen = {}
        self.counts = {}
        self._tail = b""
        self._lock = threading.Lock()
        printer.watchers.append(self._on_data)

    def _on_data(self, data, now):
        with self._lock:
            text = self._tail + data
            start = 0
            while True:
                i = text.find(b"^FDjob-", start)
                if i < 0:
                    break
                end = text.find(b"^FS", i)
                if end < 0:
                    break
                # counted before only if it lay whole in the tail kept from the last chunk
                if end + 3 > len(self._tail):
                    marker = text[i + 3:end].decode()
                    self.seen.setdefault(marker, now)
                    self.counts[marker] = self.counts.get(marker, 0) + 1
                start = end
            self._tail = text[-64:]


def label(marker):
    return b"^XA^FO20,20^A0N,30,30^FD" + marker.encode() + b"^FS^XZ"


class Fleet:
    def __init__(self, root):
        self.root = root
        self.tree = os.path.join(root, "device")
        build.build(self.tree)
        self.svc = Service(os.path.join(root, "svc"), log=lambda m: None, broker_port=0).start()
        self.owner = Client(self.svc.http_url + "/cloudprint", self.svc.owner_key)
        self.parts = []
        self.n = 0

    def agent(self, push, **settings):
        """(printer id, Agent, Arrivals) for a newly claimed printer."""
        self.n += 1
        name = "p%d" % self.n
        sim = PrinterSim("zpl", os.path.join(self.root, name)).start()
        flash = os.path.join(self.root, "flash-" + name)
        provision(flash, self.svc, mqtt_url=self.svc.mqtt_url if push else "",
                  poll_interval_s=poll_s, **settings)
        agent = Agent(flash, sim.address, tree=self.tree)
        self.parts.append((agent, sim))
        claim(agent, self.owner, 60)
        wait_for(lambda: os.path.exists(os.path.join(flash, "credentials.json")), 10, "credentials")
        with open(os.path.join(flash, "credentials.json")) as f:
            pid = json.load(f)["printer_id"]
        if push:
            agent.wait_line(r"push: subscribed", 30)
        time.sleep(1)  # past the fetch that follows start-up
        return pid, agent, Arrivals(sim.printer)

    def submit(self, pid, marker):
        t = time.monotonic()
        self.owner.submit(pid, label(marker), "application/x-zpl", marker)
        return t

    def close(self):
        for agent, sim in self.parts:
            agent.stop()
            sim.stop()
        self.svc.stop()


def percentiles(latencies):
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return q[49], q[94]


def run_push(fleet, jobs):
    pid, agent, arrivals = fleet.agent(True)
    lat = []
    for i in range(jobs):
        marker = "job-push-%d" % i
        t = fleet.submit(pid, marker)
        wait_for(lambda: marker in arrivals.seen, 30, marker)
        lat.append(arrivals.seen[marker] - t)
        time.sleep(random.uniform(0.05, 0.15))
    return lat


def run_poll(fleet, jobs, n_agents):
    agents = [fleet.agent(False) for _ in range(n_agents)]
    span = 4 * poll_s
    plan = sorted((random.uniform(0, span), random.randrange(n_agents), i) for i in range(jobs))
    submitted = {}
    t0 = time.monotonic()
    for at, k, i in plan:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        marker = "job-poll-%d" % i
        submitted[marker] = (fleet.submit(agents[k][0], marker), agents[k][2])
    wait_for(lambda: all(m in a.seen for m, (_, a) in submitted.items()), poll_s * 2 + 60,
             "every polled job")
    return [a.seen[m] - t for m, (t, a) in submitted.items()]


def run_restart(fleet, burst=50):
    fast_poll_s = 30
    pid, agent, arrivals = fleet.agent(True, fast_poll_s=fast_poll_s)
    broker = fleet.svc.broker
    markers = []
    for i in range(burst):
        if i == burst * 3 // 10:
            broker.stop()
        if i == burst * 7 // 10:
            broker.start()
        markers.append("job-burst-%d" % i)
        fleet.submit(pid, markers[-1])
        time.sleep(0.1)
    try:
        wait_for(lambda: all(m in arrivals.seen for m in markers), fast_poll_s * 2 + 30, "the burst")
    except AssertionError:
        pass
    time.sleep(2)  # anything printed twice would show by now
    lost = sum(1 for m in markers if m not in arrivals.seen)
    twice = sum(1 for m in markers if arrivals.counts.get(m, 0) > 1)
    return lost, twice, agent.output.count("push: subscribed")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.bench.push_latency", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--poll-agents", type=int, default=5)
    ap.add_argument("--poll-s", type=int, default=DEFAULT_POLL_S, help="poll interval (default: the "
                    "firmware's default; shorter only for a quick check of the script)")
    args = ap.parse_args(argv)
    global poll_s
    poll_s = args.poll_s
    root = tempfile.mkdtemp(prefix="bench-push-")
    fleet = Fleet(root)
    try:
        push = run_push(fleet, args.jobs)
        poll = run_poll(fleet, args.jobs, args.poll_agents)
        lost, twice, sessions = run_restart(fleet)
    finally:
        fleet.close()
        shutil.rmtree(root, ignore_errors=True)
    p50, p95 = percentiles(push)
    q50, q95 = percentiles(poll)
    print("submitted -> first byte at the printer, %d jobs each (loopback, embedded broker):" % args.jobs)
    print("  %-34s p50 %8.1f ms   p95 %8.1f ms   max %8.1f ms" % ("push", p50 * 1000, p95 * 1000,
                                                                   max(push) * 1000))
    print("  %-34s p50 %8.1f ms   p95 %8.1f ms   max %8.1f ms" % (
        "polling only, every %d s (%d agents)" % (poll_s, args.poll_agents),
        q50 * 1000, q95 * 1000, max(poll) * 1000))
    print("  ratio polling / push: p50 %.0fx, p95 %.0fx" % (q50 / p50, q95 / p95))
    print("broker stopped and restarted during a burst of 50 jobs: lost %d, printed twice %d, "
          "sessions %d" % (lost, twice, sessions))
    return 0 if lost == 0 and twice == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
