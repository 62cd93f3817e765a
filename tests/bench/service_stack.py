"""The print service's HTTP stack under load, with figures from one run, against the stack
it replaced (the standard library's threaded http.server, checked out from git at --old):

  .venv/bin/python -m tests.bench.service_stack [--old REV] [--idle N] [--seconds S]

Each stack runs as its own process pinned to one core (plain HTTP on loopback, no push),
the load from this process on the other core:
- requests per second for /fetch (with a job queued, and the common empty poll) and
  /control (a printer's hot calls), from 16 keep-alive clients, for S seconds each;
- idle keep-alive connections held, in steps up to N, and the time a fresh request then
  takes (goal: 10,000 held with a fresh request answered within 100 ms), and the
  service's RSS per idle connection;
- the service's extra peak memory (VmHWM) for one 64 MiB urlencoded body POSTed to an
  unknown path and to /register (goal: under 1 MiB)."""
import argparse
import asyncio
import io
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request

from tools.hostrun import ROOT
from tools.printservice.client import Client

CDD = {"version": "1.0", "printer": {"supported_content_type": [{"content_type": "application/x-zpl"}]}}
OLD_REV = "cc90242"  # the last commit on the threaded http.server stack
CLIENTS = 16
IDLE_STEPS = (1000, 2000, 5000, 10000, 15000)
HOSTILE = 64 * 1024 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """One service process: `module` run from `tree` with a fresh data directory."""

    def __init__(self, name, tree, module, work, fresh=""):
        self.name = name
        self.port = free_port()
        self.data = data = os.path.join(work, name + fresh + "-data")
        self.log = os.path.join(work, name + fresh + ".log")  # a file: a pipe nobody drains would stall it
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                ["taskset", "-c", "0", sys.executable, "-m", module, "--data", data, "--no-push",
                 "--http-port", str(self.port), "--https-port", str(free_port())],
                cwd=tree, env=dict(os.environ, PYTHONPATH=tree), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while "owner API key" not in open(self.log).read():  # its last start-up line
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("%s stack did not start: %s" % (name, open(self.log).read()))
            time.sleep(0.1)
        with open(os.path.join(data, "owner.key")) as f:
            self.owner_key = f.read().strip()
        self.base = "http://127.0.0.1:%d/cloudprint" % self.port

    def call(self, interface, fields, token=None, proxy=True):
        headers = {"X-CloudPrint-Proxy": "bench"} if proxy else {}
        if token:
            headers["Authorization"] = "Bearer " + token
        req = urllib.request.Request(self.base + "/" + interface, urllib.parse.urlencode(fields).encode(),
                                     headers)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def provision(self, with_job=True):
        """A claimed printer with one queued job: (printer id, access token, job id or None)."""
        reg = self.call("register", {"name": "bench", "proxy": "bench", "capabilities": json.dumps(CDD)})
        owner = Client(self.base, self.owner_key)
        owner.claim(reg["registration_token"])
        with urllib.request.urlopen(reg["polling_url"] + "cloudprint-agent", timeout=30) as r:
            code = json.loads(r.read())["authorization_code"]
        with open(os.path.join(self.data, "oauth_client.json")) as f:
            secret = json.load(f)["client_secret"]
        tok = self.call("oauth2/token", {"grant_type": "authorization_code", "code": code,
                                            "client_id": "cloudprint-agent", "client_secret": secret,
                                            "redirect_uri": "oob"}, proxy=False)
        if not with_job:
            return reg["printers"][0]["id"], tok["access_token"], None
        job = owner.submit(reg["printers"][0]["id"], b"^XA^FDbench^FS^XZ", "application/x-zpl", "bench")
        return reg["printers"][0]["id"], tok["access_token"], job["id"]

    def status(self, field):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def _request(reader, writer, head):
    writer.write(head)
    await writer.drain()
    status = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status.split()[1])


def requests_per_second(stack, head, seconds):
    async def client(until, counts):
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.port)
        try:
            while time.monotonic() < until:
                if await _request(reader, writer, head) == 200:
                    counts[0] += 1
                else:
                    counts[1] += 1
        finally:
            writer.close()

    async def run():
        counts = [0, 0]
        t0 = time.monotonic()
        await asyncio.gather(*(client(t0 + seconds, counts) for _ in range(CLIENTS)))
        return counts[0] / (time.monotonic() - t0), counts[1]
    return asyncio.run(run())


def post_head(path, fields, token):
    body = urllib.parse.urlencode(fields).encode()
    return (b"POST /cloudprint/%s HTTP/1.1\r\nHost: bench\r\nX-CloudPrint-Proxy: bench\r\n"
            b"Authorization: Bearer %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (path.encode(), token.encode(), len(body), body))


def idle_connections(stack, steps):
    """[(held, fresh request ms or None, RSS bytes)] as idle keep-alive connections pile up."""
    async def run():
        held, out = [], []
        base_rss = stack.status("VmRSS")
        for target in steps:
            try:
                while len(held) < target:
                    batch = [asyncio.open_connection("127.0.0.1", stack.port)
                             for _ in range(min(500, target - len(held)))]
                    for reader, writer in await asyncio.wait_for(asyncio.gather(*batch), 30):
                        held.append((reader, writer))
                        await asyncio.wait_for(_request(reader, writer, b"GET / HTTP/1.1\r\nHost: b\r\n\r\n"), 30)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
                out.append((len(held), None, stack.status("VmRSS"), "stopped: %s" % (type(e).__name__)))
                break
            t0 = time.monotonic()
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", stack.port), 5)
                await asyncio.wait_for(_request(r, w, b"GET / HTTP/1.1\r\nHost: b\r\n\r\n"), 5)
                w.close()
                fresh = (time.monotonic() - t0) * 1000
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                fresh = None
            out.append((len(held), fresh, stack.status("VmRSS"), ""))
        for _, w in held:
            w.close()
        return base_rss, out
    return asyncio.run(run())


def hostile_body(stack, path):
    """The service's extra peak memory while it is sent a 64 MiB urlencoded body."""
    before = stack.status("VmHWM")
    rss = stack.status("VmRSS")
    with socket.create_connection(("127.0.0.1", stack.port), timeout=60) as s:
        s.sendall(b"POST %s HTTP/1.1\r\nHost: b\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  b"X-CloudPrint-Proxy: bench\r\nContent-Length: %d\r\n\r\n" % (path.encode(), HOSTILE))
        chunk = b"a=" + b"b" * (1024 * 1024 - 3) + b"&"
        try:
            for _ in range(HOSTILE // len(chunk)):
                s.sendall(chunk)
            s.sendall(b"c" * (HOSTILE - HOSTILE // len(chunk) * len(chunk)))
            s.settimeout(120)
            s.recv(100)
        except OSError:
            pass  # the service answered early and closed
    time.sleep(0.5)
    return max(0, stack.status("VmHWM") - max(before, rss))


def old_tree(rev, work):
    """The repository as it was at rev, unpacked into work/old."""
    out = os.path.join(work, "old")
    os.makedirs(out)
    archive = subprocess.run(["git", "-C", ROOT, "archive", "--format=tar", rev], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as t:
        t.extractall(out, filter="data")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.bench.service_stack", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", default=OLD_REV, help="git revision of the old stack (default %(default)s)")
    ap.add_argument("--idle", type=int, default=10000, help="idle connections to reach")
    ap.add_argument("--seconds", type=float, default=5, help="seconds per throughput figure")
    args = ap.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # for this load generator
    steps = [s for s in IDLE_STEPS if s < args.idle] + [args.idle]
    work = tempfile.mkdtemp(prefix="stack-bench-")
    results = {}
    try:
        trees = (("old", old_tree(args.old, work), "tools.cloudsim"), ("new", ROOT, "tools.printservice"))
        for name, tree, module in trees:
            r = results[name] = {}
            say = lambda what: print("  %s stack: %s" % (name, what), file=sys.stderr, flush=True)
            stack = Stack(name, tree, module, work)
            try:
                pid, token, job = stack.provision()
                say("throughput")
                fetch = post_head("fetch", {"printerid": pid}, token)
                control = post_head("control", {"jobid": job, "semantic_state_diff": json.dumps(
                    {"state": {"type": "IN_PROGRESS"}})}, token)
                r["fetch"] = requests_per_second(stack, fetch, args.seconds)
                idle_pid, idle_token, _ = stack.provision(with_job=False)
                r["fetch_empty"] = requests_per_second(
                    stack, post_head("fetch", {"printerid": idle_pid}, idle_token), args.seconds)
                r["control"] = requests_per_second(stack, control, args.seconds)
                say("idle connections")
                r["idle"] = idle_connections(stack, steps)
            finally:
                stack.stop()
            say("hostile bodies")
            for key, path in (("hostile_unknown", "/no/such/path"), ("hostile_register", "/cloudprint/register")):
                stack = Stack(name, tree, module, work, fresh=key)  # a fresh process: its own peak
                try:
                    r[key] = hostile_body(stack, path)
                finally:
                    stack.stop()
        report(results, soft)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(results, soft):
    old, new = results["old"], results["new"]
    print("service HTTP stack: old = http.server, a thread per connection; new = Starlette on uvicorn")
    print("(each pinned to one core, plain HTTP on loopback; this process's open-files limit was %d)" % soft)
    for what, label in (("fetch", "/fetch, a job queued"), ("fetch_empty", "/fetch, queue empty"),
                        ("control", "/control")):
        print("  %-21s requests/s: old %6.0f  new %6.0f  ratio new/old %.2f   (non-200: old %d, new %d)"
              % (label, old[what][0], new[what][0], new[what][0] / old[what][0], old[what][1], new[what][1]))
    for name in ("old", "new"):
        base, rows = results[name]["idle"]
        print("  idle keep-alive connections, %s stack (RSS at 0: %.1f MiB):" % (name, base / 2 ** 20))
        for held, fresh, rss, note in rows:
            per = (rss - base) / held if held else 0
            print("    %6d held: fresh request %s, RSS %.1f MiB (%.1f KiB per connection) %s"
                  % (held, "%.1f ms" % fresh if fresh is not None else "NOT ANSWERED", rss / 2 ** 20,
                     per / 1024, note))
    for key, label in (("hostile_unknown", "unknown path"), ("hostile_register", "/register")):
        print("  64 MiB urlencoded body to %-12s extra peak memory: old %8.1f MiB  new %6.2f MiB"
              % (label, old[key] / 2 ** 20, new[key] / 2 ** 20))


if __name__ == "__main__":
    main()
