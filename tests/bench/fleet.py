"""How many printers one service holds and how fast it prints for them, single machine
against fleet, figures from one run:

  .venv/bin/python -m tests.bench.fleet [--printers 10000] [--rates 10,25,50,100]
                                       [--step-s 20] [--setups single,replicated]

Everything on loopback, one set-up after the other, each from scratch:
- single: one `python -m tools.printservice` process with SQLite and its embedded broker;
- replicated: two replica processes on one PostgreSQL (Debian's, its durable defaults)
  and a two-node RabbitMQ cluster (MQTT plugin, logins and topics asked of the replica
  beside each node over HTTP).

In each, the printers are provisioned through the service's own registration, claim and
token handlers (called in-process on its database: the same rows, none of the HTTP), then
the load generator (tests/bench/fleet_sim.py, its own process) opens a broker session for
every one, holds them, and submits jobs open-loop in steps of increasing rate until a step
ends fewer than 80 % of the jobs it offered a second (the knee, where the submit -> first
byte p95 passes 1 s, is reported). Beside the simulated ones, real agents under
`micropython` print to printer simulators all through the steps; their labels are checked
byte for byte at the end. Per step: jobs per second sustained, submit -> first byte and
submit -> DONE p50/p95/p99, jobs lost and printed twice, CPU and peak RSS of the service,
the broker and the database. Needs `tools/test_packages.sh` (PostgreSQL, RabbitMQ) for the
replicated set-up; bounded in time (each step drains for at most --drain-s)."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from tests.bench.fleet_sim import label
from tests.replicas import Replica, copy_data_dir, first_data_dir
from tests.system.conftest import BROKER_AUTH_KEY, free_port
from tools.hostrun import ROOT, Agent, claim, provision, wait_for
from tools.printersim.server import PrinterSim
from tools.printservice.api import Api, Request
from tools.printservice.client import Client
from tools.printservice.server import OWNER
from tools.printservice.store import Store, data_dir_url

CDD = json.dumps({"version": "1.0", "printer": {"supported_content_type": [{"content_type": "application/x-zpl"}]}})
AGENT_JOB_EVERY_S = 2.0
SERVICE_MQTT_USER, SERVICE_MQTT_PASSWORD = "printservice", "fleet-bench-service-password"
SAMPLE_S = 1.0


# ---- the set-ups
class Single:
    """One service process: SQLite and the embedded broker."""
    name = "single"

    def __init__(self, work):
        self.broker_port = free_port()
        self.replicas = [Replica(os.path.join(work, "single-data"), free_port(), free_port(),
                                 ["--broker-port", str(self.broker_port)])]
        self.brokers = [("127.0.0.1", self.broker_port)]
        self.database_url = data_dir_url(self.replicas[0].data_dir)
        self.groups = {"service and broker": lambda: [self.replicas[0].proc.pid]}

    def stop(self):
        for r in self.replicas:
            r.stop()


class Replicated:
    """Two replicas on one PostgreSQL, a two-node RabbitMQ cluster."""
    name = "replicated"

    def __init__(self, work):
        from tests.postgres import Postgres
        from tests.rabbitmq import Cluster
        self.pg = Postgres(durable=True)
        self.pg.sql("CREATE DATABASE fleet")
        self.database_url = self.pg.url("fleet")
        ports = [(free_port(), free_port()) for _ in range(2)]
        key_file = os.path.join(work, "broker-auth.key")
        with open(key_file, "w") as f:
            f.write(BROKER_AUTH_KEY)
        self.cluster = Cluster(["http://127.0.0.1:%d/broker/%s/rabbitmq" % (http, BROKER_AUTH_KEY)
                                for http, _ in ports]).start()
        pw_file = os.path.join(work, "mqtt-password")
        with open(pw_file, "w") as f:
            f.write(SERVICE_MQTT_PASSWORD)
        self.replicas = []
        first = first_data_dir(os.path.join(work, "replica-1"), self.database_url)
        for i, (http, https) in enumerate(ports):
            data = first if i == 0 else copy_data_dir(first, os.path.join(work, "replica-%d" % (i + 1)))
            node = self.cluster.nodes[i]
            self.replicas.append(Replica(data, http, https, [
                "--mqtt", node.mqtt_url, "--mqtt-user", SERVICE_MQTT_USER, "--mqtt-password-file", pw_file,
                "--broker-auth-key-file", key_file]))
        self.brokers = [("127.0.0.1", n.mqtt_port) for n in self.cluster.nodes]
        self.groups = {"service (2 replicas)": lambda: [r.proc.pid for r in self.replicas],
                       "broker (2 RabbitMQ nodes)": lambda: [n.proc.pid for n in self.cluster.nodes],
                       "PostgreSQL": lambda: [self.pg.pid()]}

    def stop(self):
        for r in self.replicas:
            r.stop()
        self.cluster.stop()
        self.pg.stop()


SETUPS = {"single": Single, "replicated": Replicated}


# ---- provisioning
def bulk_provision(setup, n):
    """n printers registered, claimed by the owner and holding tokens, through the API's own
    handlers on the set-up's database (each from its own address: registration is rate-limited
    per address, as a fleet's sites are)."""
    replica = setup.replicas[0]
    client = replica.client
    store = Store(setup.database_url, migrate_schema=False)
    api = Api(store, replica.http_url + "/cloudprint", client["client_id"], client["client_secret"],
              899, 24 * 3600, lambda m: None)
    headers = {"X-CloudPrint-Proxy": "fleet-bench"}

    def call(interface, params, address=None, principal=None):
        reply = api.handle(Request("POST", interface, {k: [v] for k, v in params.items()}, {}, headers,
                                   address, principal))
        obj = json.loads(reply.body)
        if reply.status != 200 or obj.get("success") is False or "error" in obj:
            raise SystemExit("provisioning: /%s failed: %s" % (interface, reply.body[:200]))
        return obj
    printers = []
    try:
        for i in range(n):
            reg = call("register", {"name": "fleet-%05d" % i, "proxy": "fleet-%05d" % i, "capabilities": CDD},
                       "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255))
            pid = reg["printers"][0]["id"]
            call("confirm", {"token": reg["registration_token"]}, principal=("user", OWNER))
            secret = reg["polling_url"].split("secret=")[1].split("&")[0]
            code = call("getauthcode", {"printerid": pid, "secret": secret,
                                        "oauth_client_id": client["client_id"]})["authorization_code"]
            tok = call("token", {"grant_type": "authorization_code", "code": code, "client_id": client["client_id"],
                                 "client_secret": client["client_secret"], "redirect_uri": "oob"})
            printers.append({"id": pid, "access_token": tok["access_token"], "mqtt_password": tok["mqtt_password"],
                             "base_path": "/cloudprint"})
    finally:
        store.close()
    return printers


# ---- real agents
class RealAgents:
    """Agents under micropython, each on its own printer simulator and its own replica and
    broker node; a thread gives each a job every AGENT_JOB_EVERY_S while the load runs."""

    def __init__(self, setup, count, work):
        self.sims, self.agents, self.pids, self.labels, self.before = [], [], [], [], []
        self.owner = Client(setup.replicas[0].http_url + "/cloudprint", setup.replicas[0].owner_key)
        for i in range(count):
            replica = setup.replicas[i % len(setup.replicas)]
            host, port = setup.brokers[i % len(setup.brokers)]
            sim = PrinterSim("zpl", os.path.join(work, "agent-printer-%d" % i)).__enter__()
            flash = os.path.join(work, "agent-flash-%d" % i)
            provision(flash, replica, mqtt_url="mqtt://%s:%d" % (host, port))
            agent = Agent(flash, sim.address)
            claim(agent, self.owner)
            agent.wait_line(r"push: subscribed", 60)
            with open(os.path.join(flash, "credentials.json")) as f:
                self.pids.append(json.load(f)["printer_id"])
            self.before.append(len(sim.printer.data()))  # its claim ticket
            self.sims.append(sim)
            self.agents.append(agent)
            self.labels.append([])
        self._stop = threading.Event()
        self._thread = None
        self.errors = 0

    def start(self):
        self._thread = threading.Thread(target=self._submit, daemon=True)
        self._thread.start()

    def _submit(self):
        n = 0
        while not self._stop.wait(AGENT_JOB_EVERY_S):
            for i, pid in enumerate(self.pids):
                data = label(1000000 + n)
                try:
                    self.owner.submit(pid, data, "application/x-zpl", "agent job %d" % n)
                    self.labels[i].append(data)
                except Exception:
                    self.errors += 1
                n += 1

    def finish(self, timeout=120):
        """Stops submitting; (labels submitted, printed exactly once in order, wrong)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        want = [b"".join(labels) for labels in self.labels]

        def exact():
            return sum(1 for s, w, n in zip(self.sims, want, self.before) if s.printer.data()[n:] == w)
        try:
            wait_for(lambda: exact() == len(want), timeout, "the real agents' labels")
        except AssertionError:
            pass
        good = exact()
        return {"agents": len(self.agents), "labels": sum(len(x) for x in self.labels),
                "printers_byte_for_byte": good, "submit_errors": self.errors}

    def stop(self):
        for agent in self.agents:
            agent.stop()
        for sim in self.sims:
            sim.__exit__(None, None, None)


# ---- resource figures
def _tree(pids):
    """pids and all their descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def usage(pids):
    """(CPU seconds, RSS bytes) of these processes and their children, the children that
    ended too (PostgreSQL's backends come and go: their time is in their parent's)."""
    cpu, rss = 0.0, 0
    tick = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    for pid in _tree(pids):
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu += sum(int(x) for x in fields[11:15]) / tick  # utime, stime, cutime, cstime
            rss += int(fields[21]) * page
        except (OSError, IndexError, ValueError):
            pass
    return cpu, rss


class Sampler(threading.Thread):
    def __init__(self, groups):
        super().__init__(daemon=True)
        self.groups = groups
        self.samples = []  # (monotonic, {group: (cpu s, rss)})
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            self.samples.append((time.monotonic(), {g: usage(pids()) for g, pids in self.groups.items()}))
            self._done.wait(SAMPLE_S)

    def stop(self):
        self._done.set()
        self.join()

    def between(self, start, end):
        """{group: (CPU in % of one core, peak RSS)} from start to end."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return {}
        (t0, a), (t1, b) = inside[0], inside[-1]
        return {g: (100 * (b[g][0] - a[g][0]) / (t1 - t0), max(s[1][g][1] for s in inside)) for g in self.groups}


# ---- one set-up
def run_setup(name, args, work):
    print("fleet: %s: starting" % name, flush=True)
    t0 = time.monotonic()
    os.makedirs(os.path.join(work, name))
    setup = SETUPS[name](os.path.join(work, name))
    agents = None
    try:
        started = time.monotonic() - t0
        t1 = time.monotonic()
        printers = bulk_provision(setup, args.printers)
        provision_s = time.monotonic() - t1
        print("fleet: %s: %d printers provisioned in %.0f s" % (name, len(printers), provision_s), flush=True)
        agents = RealAgents(setup, args.agents, os.path.join(work, name))
        plan = {"name": name, "printers": printers, "brokers": setup.brokers,
                "printer_http": [("127.0.0.1", int(r.http_url.rsplit(":", 1)[1])) for r in setup.replicas],
                "submit_http": [("127.0.0.1", int(r.http_url.rsplit(":", 1)[1]), "/cloudprint")
                                for r in setup.replicas],
                "owner_key": setup.replicas[0].owner_key, "keepalive_s": 60, "safety_poll_s": 300,
                "hold_s": args.hold_s, "connect_s": args.connect_s, "rates": args.rates, "step_s": args.step_s, "drain_s": args.drain_s,
                "seed": args.seed}
        plan_file, result_file = os.path.join(work, name + "-plan.json"), os.path.join(work, name + "-result.json")
        with open(plan_file, "w") as f:
            json.dump(plan, f)
        groups = dict(setup.groups)
        sim = subprocess.Popen([sys.executable, "-m", "tests.bench.fleet_sim", plan_file, result_file],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONPATH=ROOT))
        groups["load generator"] = lambda: [sim.pid]
        sampler = Sampler(groups)
        sampler.start()
        for line in sim.stdout:
            print(line, end="", flush=True)
            if "load steps" in line:
                agents.start()
        if sim.wait() != 0:
            raise SystemExit("fleet: the load generator failed")
        sampler.stop()
        real = agents.finish()
        with open(result_file) as f:
            result = json.load(f)
        os.unlink(plan_file)  # it holds the printers' tokens
        result.update(started_s=started, provision_s=provision_s, real_agents=real)
        for step in result["steps"]:
            step["resources"] = sampler.between(step["start"], step["drained"])
        return result
    finally:
        if agents is not None:
            agents.stop()
        setup.stop()


# ---- the report
def fmt_s(v):
    return "-" if v is None else ("%.0f ms" % (v * 1000) if v < 10 else "%.1f s" % v)


def report(results, args):
    names = list(results)
    print("\nfleet: %d simulated printers, %d real agents, steps of %d s; 2 cores, loopback\n"
          % (args.printers, args.agents, args.step_s))
    print("| | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))

    def row(title, f):
        print("| %s | %s |" % (title, " | ".join(f(results[n]) for n in names)))
    row("set-up start", lambda r: "%.0f s" % r["started_s"])
    row("printers provisioned (register, claim, token in-process)", lambda r: "%d in %.0f s" % (r["printers"], r["provision_s"]))
    row("broker sessions opened", lambda r: "%d in %.0f s (%d refused, retried)" % (
        r["connected_at_first"], r["connect_s"], r["refused_at_first"]))
    row("held after %d s / at the end" % args.hold_s, lambda r: "%d / %d (%d drops)" % (r["held"], r["held_at_end"], r["drops"]))
    row("real agents: labels byte for byte", lambda r: "%d labels, %d of %d printers exact" % (
        r["real_agents"]["labels"], r["real_agents"]["printers_byte_for_byte"], r["real_agents"]["agents"]))
    rates = sorted({s["rate"] for r in results.values() for s in r["steps"]})
    for rate in rates:
        def step(r, f, rate=rate):
            found = [s for s in r["steps"] if s["rate"] == rate]
            return f(found[0]) if found else "(saturated before)"
        print("| **%d jobs/s offered** |%s" % (rate, " |" * len(names)))
        row("jobs/s sustained", lambda r: step(r, lambda s: "%.1f" % s["figures"]["jobs_per_s"]))
        row("submit -> first byte p50 / p95 / p99", lambda r: step(r, lambda s: " / ".join(
            fmt_s(s["figures"]["first_byte_p%d_s" % p]) for p in (50, 95, 99))))
        row("submit -> DONE p50 / p95 / p99", lambda r: step(r, lambda s: " / ".join(
            fmt_s(s["figures"]["done_p%d_s" % p]) for p in (50, 95, 99))))
        row("jobs lost / printed twice", lambda r: step(r, lambda s: "%d / %d" % (
            s["figures"]["lost"], s["figures"]["printed_twice"])))
        for group in sorted({g for r in results.values() for s in r["steps"] for g in s["resources"]}):
            row("%s: CPU, peak RSS" % group, lambda r, g=group: step(r, lambda s: (
                "%.0f %%, %.0f MiB" % (s["resources"][g][0], s["resources"][g][1] / 2 ** 20))
                if g in s["resources"] else "-"))
    row("knee (first step with first-byte p95 over 1 s)", lambda r: next(
        ("%d jobs/s" % s["rate"] for s in r["steps"]
         if (s["figures"]["first_byte_p95_s"] or 99) > 1.0), "not reached"))
    if len(names) == 2:
        a, b = (results[n] for n in names)
        common = [s["rate"] for s in a["steps"] if s["rate"] in {t["rate"] for t in b["steps"]}]
        for rate in common:
            sa = next(s for s in a["steps"] if s["rate"] == rate)["figures"]
            sb = next(s for s in b["steps"] if s["rate"] == rate)["figures"]
            if sa["first_byte_p95_s"] and sb["first_byte_p95_s"]:
                print("%d jobs/s: first-byte p95 %s / %s = %.2f" % (
                    rate, names[1], names[0], sb["first_byte_p95_s"] / sa["first_byte_p95_s"]))
    lost = sum(s["figures"]["lost"] for r in results.values() for s in r["steps"])
    twice = sum(s["figures"]["printed_twice"] for r in results.values() for s in r["steps"])
    print("jobs lost: %d, printed twice: %d (goal 0 and 0)" % (lost, twice))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.bench.fleet")
    ap.add_argument("--printers", type=int, default=10000)
    ap.add_argument("--agents", type=int, default=2, help="real agents under micropython beside them")
    ap.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], default=[10, 25, 50, 100])
    ap.add_argument("--step-s", type=int, default=20)
    ap.add_argument("--connect-s", type=int, default=300, help="the most the sessions may take to open")
    ap.add_argument("--hold-s", type=int, default=30, help="sessions held this long before the load")
    ap.add_argument("--drain-s", type=int, default=60, help="the most a step waits for its jobs to end")
    ap.add_argument("--setups", default="single,replicated")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="fleet-")
    results = {}
    try:
        for name in args.setups.split(","):
            results[name] = run_setup(name, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f)
    lost = sum(s["figures"]["lost"] + s["figures"]["printed_twice"] for r in results.values() for s in r["steps"])
    bad = sum(r["real_agents"]["agents"] - r["real_agents"]["printers_byte_for_byte"] for r in results.values())
    return 1 if lost or bad else 0


if __name__ == "__main__":
    sys.exit(main())
