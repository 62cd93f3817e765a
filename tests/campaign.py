"""A randomized fault campaign: the real agent under MicroPython against the real service
(with its test-only fault switches) and the printer simulator, through a TCP fault proxy.

  .venv/bin/python -m tests.campaign --runs N --seed S      # N runs; S replays them
  .venv/bin/python -m tests.campaign --runs 1 --seed S --first K   # run K of seed S alone

Each run starts the agent on a fresh copy of one claimed printer's flash, with push through
a real mosquitto (its dynamic-security plugin checking logins and topics) in half the runs
and polling every second in the others, submits 1 to 3 jobs (each of unique labels, 1 or 2
copies, 2 KB to 150 KB) and draws one fault:
  kill-time      SIGKILL at a random moment after the submits (a flash write, a download,
                 a report: wherever it falls), then a restart on the same flash
  kill-download  SIGKILL once the printer has a random number of the jobs' bytes
  kill-call      SIGKILL while the service handles a random call (fetch, ticket, control
                 IN_PROGRESS or DONE, before or after it takes effect, download)
  network        the next 1 to 4 connections dropped, reset, stalled, truncated or re-chunked
  http           a burst of 1 to 4 answers 500, 502, 503 or 429 on a random interface
  printer        paper out at a random byte offset, back 1 to 4 s later
  broker         (push runs only) the broker stopped at a random moment after the
                 submits and started again 0.5 to 4 s later: the agent polls meanwhile
                 and subscribes again
  none           nothing
Invariants per run: every job ends DONE, or ABORTED with a cause, within 120 s; no label
is printed more often than its copies, and a DONE job's labels each exactly that often and
in order; the credentials are the printer's and parse; the agent prints a last job within
60 s. It prints the runs, lost, printed twice, stuck and the outcome histogram, and writes
the seed and run of every failure to run/campaign-failures.txt."""
import argparse
import collections
import json
import os
import pathlib
import random
import shutil
import sys
import tempfile
import threading
import time

from tests.peers.fault_proxy import FaultProxy
from tests.service_faults import FaultyService
from tests.system.conftest import DYNSEC_ADMIN, start_secured_mosquitto
from tools import build
from tools.hostrun import ROOT, Agent, claim, provision, wait_for
from tools.printersim.server import PrinterSim
from tools.printservice.client import Client

FINAL = ("DONE", "ABORTED")
JOB_BOUND_S = 120
SERVING_BOUND_S = 60
FAULTS = ("kill-time", "kill-download", "kill-call", "network", "http", "printer", "none")
PUSH_FAULTS = FAULTS + ("broker",)
# push runs: hints print at once; the safety poll is slow enough that a job the hint
# missed shows the fallback at work, fast enough to stay inside JOB_BOUND_S
PUSH_SETTINGS = {"mqtt_keepalive_s": 10, "safety_poll_s": 20, "fast_poll_s": 2}
FAILURES = os.path.join(ROOT, "run", "campaign-failures.txt")


def labels(run, job, size):
    """A job's unique labels, about size bytes in all."""
    out, n = [], 0
    while sum(map(len, out)) < size:
        out.append(b"^XA^FO20,20^A0N,30,30^FDrun %d job %d label %d^FS^FO20,80^FD%s^FS^XZ"
                   % (run, job, n, b"x" * 900))
        n += 1
    return out


class Campaign:
    def __init__(self, root, log=lambda m: None):
        self.root = root
        self.log = log
        self.tree = os.path.join(root, "device")
        build.build(self.tree)
        self.broker_dir = pathlib.Path(root, "broker")
        self.broker_dir.mkdir()
        self.broker, self.broker_port = start_secured_mosquitto(self.broker_dir)
        self.broker_restarts = 0
        self.service = FaultyService(os.path.join(root, "svc"), log=lambda m: None,
                                     mqtt_url="mqtt://127.0.0.1:%d" % self.broker_port, mqtt_user=DYNSEC_ADMIN[0],
                                     mqtt_password=DYNSEC_ADMIN[1], mqtt_dynsec=True).start()
        host, port = self.service.https_url[len("https://"):].rsplit(":", 1)
        self.proxy = FaultProxy(host, int(port)).start()
        url = "https://127.0.0.1:%d" % self.proxy.port
        self.service.advertise(url)  # the URLs it hands out lead through the proxy
        self.owner = Client(self.service.http_url + "/cloudprint", self.service.owner_key)
        self.sim = PrinterSim("zpl", os.path.join(root, "printer"), buffer_size=16384, print_rate=400000).start()
        self.template = os.path.join(root, "template")
        provision(self.template, self.service, service_url=url + "/cloudprint", poll_interval_s=1,
                  http_timeout_s=3)
        agent = Agent(self.template, self.sim.address, tree=self.tree)
        try:
            claim(agent, self.owner, 30)
            wait_for(lambda: os.path.exists(os.path.join(self.template, "credentials.json")), 10, "credentials")
        finally:
            agent.stop()
        with open(os.path.join(self.template, "credentials.json")) as f:
            self.printer_id = json.load(f)["printer_id"]
        self.kills = 0  # power cuts that happened (a kill whose moment never came is none)

    def close(self):
        self.sim.stop()
        self.proxy.stop()
        self.service.stop()
        self._broker_down()

    def _broker_down(self):
        if self.broker is not None:
            self.broker.terminate()
            self.broker.wait(5)
            self.broker = None

    def _broker_up(self):
        if self.broker is None:
            self.broker = start_secured_mosquitto(self.broker_dir, port=self.broker_port)[0]

    def _restart_broker_later(self, after, down_s):
        time.sleep(after)
        self._broker_down()
        time.sleep(down_s)
        self._broker_up()
        self.broker_restarts += 1

    def _use_push(self, flash):
        with open(os.path.join(flash, "settings.json")) as f:
            settings = json.load(f)
        settings.update(PUSH_SETTINGS, mqtt_url="mqtt://127.0.0.1:%d" % self.broker_port)
        with open(os.path.join(flash, "settings.json"), "w") as f:
            json.dump(settings, f)

    def run(self, seed, n):
        """One run: (outcomes of its jobs, the invariants it broke)."""
        rng = random.Random("%d/%d" % (seed, n))
        flash = os.path.join(self.root, "flash")
        shutil.rmtree(flash, ignore_errors=True)
        shutil.copytree(self.template, flash)
        self.service.faults.clear()
        self.proxy.plans.clear()
        printed_before = len(self.sim.printer.printed)
        data_before = self.sim.printer.data_bytes
        jobs = []
        for j in range(rng.randint(1, 3)):
            docs = labels(n, j, rng.choice((2048, 30 * 1024, 150 * 1024)))
            jobs.append({"docs": docs, "copies": rng.choice((1, 1, 2))})
        push = rng.random() < 0.5
        fault = rng.choice(PUSH_FAULTS if push else FAULTS)
        if push:
            self._use_push(flash)
        agent = Agent(flash, self.sim.address, tree=self.tree)
        agents = [agent]
        broken = []
        restart = None
        try:
            if push:  # submitted once subscribed, so the hint is what prints them
                try:
                    agent.wait_line(r"push: subscribed to", 30)
                except AssertionError:
                    broken.append("push: never subscribed")
            kill = self._arm(fault, rng, agent, jobs, data_before)
            for job in jobs:
                job["id"] = self.owner.submit(self.printer_id, b"".join(job["docs"]), "application/x-zpl",
                                              "campaign", copies=job["copies"])["id"]
            if fault == "broker":
                restart = threading.Thread(target=self._restart_broker_later,
                                           args=(rng.uniform(0, 3), rng.uniform(0.5, 4)), daemon=True)
                restart.start()
            if kill is not None:
                killed = kill()
                self.kills += bool(killed)
                if killed:
                    wait_for(lambda: not agent.alive(), 10, "the agent to die")
                    time.sleep(rng.uniform(0, 1))
                    agent = Agent(flash, self.sim.address, tree=self.tree)
                    agents.append(agent)
            outcomes = self._finish(jobs, agent, broken)
            self._serving(agent, n, broken)
            self._check_prints(jobs, printed_before, broken)
            self._check_credentials(flash, broken)
        finally:
            if restart is not None:
                restart.join(10)
            self._broker_up()
            for a in agents:
                a.stop()
            self.service.faults.clear()
            self.sim.printer.clear()
        fault = ("push " if push else "poll ") + fault
        if broken:
            self.log("seed %d run %d (%s): %s\n%s" % (seed, n, fault, "; ".join(broken), agent.output[-2000:]))
        return fault, outcomes, broken

    def _arm(self, fault, rng, agent, jobs, data_before):
        """Arm the fault; for the kills, a callable that waits for the moment and kills
        (True) or gives up (False)."""
        total = sum(len(b"".join(j["docs"])) * j["copies"] for j in jobs)
        if fault == "kill-time":
            delay = rng.uniform(0, 4)
            return lambda: (time.sleep(delay), agent.kill(), True)[-1]
        if fault == "kill-download":
            at = data_before + rng.randint(1, total)
            return lambda: self._kill_when(agent, lambda: self.sim.printer.data_bytes >= at, 30)
        if fault == "kill-call":
            interface, state = rng.choice((("fetch", None), ("ticket", None), ("control", "IN_PROGRESS"),
                                           ("control", "DONE"), ("download", None)))
            hit = threading.Event()
            self.service.faults.arm("intercept", interface=interface, state=state, apply=rng.random() < 0.5,
                                    then=lambda: (agent.kill(), hit.set()))
            return lambda: hit.wait(30)
        if fault == "network":
            for _ in range(rng.randint(1, 4)):
                kind = rng.choice(("drop", "reset", "stall", "truncate", "rechunk"))
                at = rng.randint(0, 20000)
                self.proxy.plans.append({"drop": ("drop", at), "reset": ("reset", at), "stall": ("stall", at, 4),
                                         "truncate": ("truncate", at), "rechunk": ("rechunk", at)}[kind])
        elif fault == "http":
            self.service.faults.arm("http_error", count=rng.randint(1, 4),
                                    interface=rng.choice(("fetch", "control", "download", "ticket", "token")),
                                    status=rng.choice((500, 502, 503, 429)), retry_after=1)
        elif fault == "printer":
            at = data_before + rng.randint(1, total)
            back = rng.uniform(1, 4)
            self.sim.printer.fault("paper_out", after_bytes=at - self.sim.printer.data_bytes)
            threading.Thread(target=self._clear_later, args=(at, back), daemon=True).start()
        return None

    def _clear_later(self, at, back):
        try:
            wait_for(lambda: "paper_out" in self.sim.printer.faults, 60, "paper out")
            time.sleep(back)
        except AssertionError:
            pass
        self.sim.printer.clear("paper_out")

    def _kill_when(self, agent, moment, timeout):
        try:
            wait_for(moment, timeout, "the moment to cut the power", 0.005)
        except AssertionError:
            return False
        agent.kill()
        return True

    def _finish(self, jobs, agent, broken):
        outcomes = []
        end = time.monotonic() + JOB_BOUND_S
        for job in jobs:
            state = None
            while time.monotonic() < end:
                state = self._state(job["id"])
                if state["type"] in FINAL:
                    break
                time.sleep(0.2)
            kind = state["type"] if state else "none"
            cause = [v for k, v in state.items() if k.endswith("_cause")] if state else []
            job["final"] = kind
            if kind not in FINAL:
                broken.append("job %s stuck in %s" % (job["id"], kind))
                outcomes.append("lost")
                self.service.api.cancel(job["id"])  # so that no later run prints it
            elif kind == "ABORTED" and not cause:
                broken.append("job %s ABORTED without a cause" % job["id"])
                outcomes.append("ABORTED:?")
            else:
                code = cause and (cause[0].get("error_code") or cause[0].get("action_code"))
                outcomes.append(kind + (":" + code if code else ""))
        return outcomes

    def _serving(self, agent, n, broken):
        probe = b"^XA^FDprobe %d^FS^XZ" % n
        job = self.owner.submit(self.printer_id, probe, "application/x-zpl", "probe")
        end = time.monotonic() + SERVING_BOUND_S
        while time.monotonic() < end:
            if self._state(job["id"])["type"] == "DONE":
                return
            time.sleep(0.2)
        broken.append("not serving: a new job not DONE within %d s" % SERVING_BOUND_S)

    def _state(self, job_id):
        return json.loads(self.service.store.get("jobs", id=job_id)["state"])["state"]

    def _check_prints(self, jobs, printed_before, broken):
        broken += check_prints(jobs, self.sim.printer.printed[printed_before:])

    def _check_credentials(self, flash, broken):
        try:
            with open(os.path.join(flash, "credentials.json")) as f:
                creds = json.load(f)
            if creds.get("printer_id") != self.printer_id or not creds.get("refresh_token"):
                broken.append("credentials are not the printer's")
        except (OSError, ValueError) as e:
            broken.append("credentials unreadable: %s" % e)


def check_prints(jobs, printed):
    """What the printer's record breaks: a label printed more often than its job's copies,
    or a DONE job whose labels were not each printed exactly that often, in order."""
    broken = []
    counts = collections.Counter(printed)
    for job in jobs:
        for doc in job["docs"]:
            if counts[doc] > job["copies"]:
                broken.append("printed twice: a label of job %s printed %d times for %d copies"
                              % (job["id"], counts[doc], job["copies"]))
                break
        if job["final"] == "DONE":
            mine = [d for d in printed if d in set(job["docs"])]
            if mine != job["docs"] * job["copies"]:
                broken.append("job %s DONE but its labels were printed as %d of %d, or out of order"
                              % (job["id"], len(mine), len(job["docs"]) * job["copies"]))
    return broken


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.campaign", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--first", type=int, default=0, help="the number of the first run (to replay one)")
    ap.add_argument("--verbose", action="store_true", help="print each failing run's agent output")
    args = ap.parse_args(argv)
    summary = campaign(args.runs, args.seed, args.first, print if args.verbose else (lambda m: None))
    return 0 if summary["failed"] == 0 else 1


def campaign(runs, seed, first=0, log=lambda m: None, say=print):
    root = tempfile.mkdtemp(prefix="campaign-")
    c = Campaign(root, log)
    histogram, faults = collections.Counter(), collections.Counter()
    failed, kinds = [], collections.Counter()
    t0 = time.time()
    try:
        for n in range(first, first + runs):
            fault, outcomes, broken = c.run(seed, n)
            faults[fault] += 1
            histogram.update(outcomes)
            for b in broken:
                kinds[b.split(":")[0].split(" job")[0]] += 1
            if broken:
                failed.append((n, fault, broken))
                say("run %d (%s): FAILED: %s" % (n, fault, "; ".join(broken)))
    finally:
        c.close()
        shutil.rmtree(root, ignore_errors=True)
    lost = histogram["lost"]
    twice = sum(v for k, v in kinds.items() if k.startswith("printed twice"))
    stuck = sum(v for k, v in kinds.items() if k.startswith("not serving"))
    say("%d runs in %.0f s (seed %d, runs %d-%d): %d lost, %d printed twice, %d stuck, %d runs failed"
        % (runs, time.time() - t0, seed, first, first + runs - 1, lost, twice, stuck, len(failed)))
    say("faults drawn: " + ", ".join("%s %d" % kv for kv in sorted(faults.items()))
        + "; power cuts made %d, connections broken %d, broker restarts %d"
        % (c.kills, len(c.proxy.taken), c.broker_restarts))
    say("outcomes: " + ", ".join("%s %d" % kv for kv in sorted(histogram.items())))
    if failed:
        os.makedirs(os.path.dirname(FAILURES), exist_ok=True)
        with open(FAILURES, "a") as f:
            for n, fault, broken in failed:
                f.write("--seed %d --first %d --runs 1   # %s: %s\n" % (seed, n, fault, "; ".join(broken)))
        say("replay each with: python -m tests.campaign, the arguments in %s" % FAILURES)
    return {"runs": runs, "lost": lost, "twice": twice, "stuck": stuck, "failed": len(failed),
            "outcomes": dict(histogram), "kills": c.kills, "faults": dict(faults),
            "broker_restarts": c.broker_restarts}


if __name__ == "__main__":
    sys.exit(main())
