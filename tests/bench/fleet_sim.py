"""The load generator of the fleet benchmark (tests/bench/fleet.py runs it as its own process,
so its event loop has a core's worth of GIL to itself): simulated printers at the protocol
level and the apps that print to them.

  python -m tests.bench.fleet_sim PLAN.json RESULT.json

Each simulated printer holds an MQTT session as the agent does (client id and user name its
printer id, its broker credential, clean session, a retained "offline" will, subscribed to
its own topic, "online" published retained, a ping every half keepalive) and polls /fetch
every safety-poll interval. On a hint, or the poll, it does what the agent's job runner
does over one keep-alive HTTP connection: /fetch, then per job /control IN_PROGRESS,
/ticket, the download, /control DONE, and /fetch again; a job it already handled is
skipped, as the agent's journal does. Jobs are submitted open-loop at a fixed rate per
step through the GCP /submit interface; latencies count from the moment a submit was due,
so a service that falls behind cannot hide it by slowing the submitter down."""
import asyncio
import json
import random
import statistics
import sys
import time
import urllib.parse

CONNECT_CONCURRENCY = 200  # MQTT sessions being opened at once
SUBMIT_CONCURRENCY = 256  # submits in flight at most (more wait: their latency counts)
SUBMIT_POOL = 32  # keep-alive connections per service URL for submits
HTTP_TIMEOUT_S = 30
MQTT_TIMEOUT_S = 30
RECONNECT_S = 2
SATURATED = 0.8  # a step that ends fewer jobs a second than this share of its rate is the last
KNOWN_MAX = 16  # job ids a printer remembers (the agent's journal keeps a few)
CDD_TYPE = "application/x-zpl"


def label(seq):
    """The bytes of job seq: a ZPL label of about 1 KiB that names its job."""
    head = b"^XA^FO20,20^A0N,30,30^FDfleet job %d^FS^FO20,60^GFA,800,800,20," % seq
    return head + (b"%08X" % seq) * 100 + b"^FS^XZ"


class PeerError(Exception):
    """A reply the service or the broker should not have given."""


class Http:
    """One keep-alive HTTP/1.1 connection: Content-Length and chunked replies."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), HTTP_TIMEOUT_S)
        return self

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    async def request(self, method, target, headers, body=b"", first_byte=None):
        """(status, body); first_byte() is called when the first byte of the body arrives."""
        head = ["%s %s HTTP/1.1" % (method, target), "Host: %s:%d" % (self.host, self.port)]
        head += ["%s: %s" % kv for kv in headers]
        if body or method == "POST":
            head.append("Content-Length: %d" % len(body))
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        return await asyncio.wait_for(self._reply(first_byte), HTTP_TIMEOUT_S)

    async def _reply(self, first_byte):
        r = self.reader
        line = await r.readline()
        if not line:
            raise PeerError("connection closed")
        status = int(line.split()[1])
        length, chunked = 0, False
        while True:
            line = await r.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        body = bytearray()
        if chunked:
            while True:
                size = int((await r.readline()).split(b";")[0], 16)
                if size == 0:
                    await r.readline()
                    break
                body += await r.readexactly(size)
                if first_byte is not None:
                    first_byte()
                    first_byte = None
                await r.readline()
        elif length:
            body += await r.readexactly(1)
            if first_byte is not None:
                first_byte()
            body += await r.readexactly(length - 1)
        return status, bytes(body)


def form(fields):
    return urllib.parse.urlencode(fields).encode()


class Stats:
    def __init__(self):
        self.due = {}  # seq -> when its submit was due (monotonic)
        self.first_byte = {}  # seq -> first byte of its download
        self.done = {}  # seq -> its DONE acknowledged
        self.printed = {}  # seq -> downloads that completed and matched its bytes
        self.bad_bytes = 0
        self.submit_errors = 0
        self.http_errors = 0
        self.connected = 0
        self.drops = 0
        self.refused = 0
        self.subscribe_refused = 0
        self.hints = 0
        self.polls = 0


class SimPrinter:
    def __init__(self, fleet, spec, broker, http):
        self.fleet = fleet
        self.id = spec["id"]
        self.token = spec["access_token"]
        self.password = spec["mqtt_password"]
        self.broker = broker
        self.http = http  # (host, port) of its service replica
        self.base = spec["base_path"]
        self.topic = "cloudprint/printers/" + self.id
        self.wanted = asyncio.Event()
        self.known = []
        self.online = False

    # ---- MQTT
    async def session(self, opened):
        """Holds the broker session for ever, reconnecting as the agent does."""
        stats = self.fleet.stats
        first = True
        while True:
            try:
                async with self.fleet.connecting:
                    reader, writer = await asyncio.wait_for(self._connect(), MQTT_TIMEOUT_S)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, PeerError):
                stats.refused += 1
                if first:
                    opened()
                    first = False
                await asyncio.sleep(RECONNECT_S * (1 + random.random()))
                continue
            self.online = True
            stats.connected += 1
            if first:
                opened()
                first = False
            else:
                self.wanted.set()  # after a reconnect: fetch what may have been missed
            pinger = asyncio.ensure_future(self._ping(writer))
            try:
                await self._receive(reader, writer)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                pass
            finally:
                pinger.cancel()
                writer.close()
                self.online = False
                stats.connected -= 1
                stats.drops += 1
            await asyncio.sleep(RECONNECT_S * (1 + random.random()))

    async def _connect(self):
        reader, writer = await asyncio.open_connection(*self.broker)
        will = self.topic + "/status"
        body = (b"\x00\x04MQTT\x04" + bytes((0x02 | 0x04 | 0x08 | 0x20 | 0x80 | 0x40,
                                             self.fleet.keepalive >> 8, self.fleet.keepalive & 0xFF))
                + _str(self.id) + _str(will) + _str("offline") + _str(self.id) + _str(self.password))
        writer.write(_packet(0x10, body))
        head = await reader.readexactly(4)
        if head[0] != 0x20 or head[3] != 0:
            writer.close()
            raise PeerError("CONNACK refused (%d)" % head[3])
        writer.write(_packet(0x82, b"\x00\x01" + _str(self.topic) + b"\x01"))
        suback = await reader.readexactly(5)  # as the agent, serving only once subscribed
        if suback[0] != 0x90 or suback[4] not in (0, 1):
            writer.close()
            self.fleet.stats.subscribe_refused += 1
            raise PeerError("SUBACK refused (%d)" % suback[4])
        writer.write(_packet(0x33, _str(will) + b"\x00\x02" + b"online"))
        return reader, writer

    async def _ping(self, writer):
        while True:
            await asyncio.sleep(self.fleet.keepalive / 2)
            writer.write(b"\xc0\x00")

    async def _receive(self, reader, writer):
        while True:
            kind = (await reader.readexactly(1))[0]
            length, shift = 0, 0
            while True:
                b = (await reader.readexactly(1))[0]
                length |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            data = await reader.readexactly(length) if length else b""
            if kind >> 4 == 3:  # PUBLISH
                n = int.from_bytes(data[:2], "big")
                topic = data[2:2 + n].decode()
                at = 2 + n
                if kind & 0x06:  # QoS 1: acknowledged
                    writer.write(b"\x40\x02" + data[at:at + 2])
                    at += 2
                if topic == self.topic and data[at:] == self.id.encode():
                    self.fleet.stats.hints += 1
                    self.wanted.set()

    # ---- the job runner
    async def runner(self):
        """One round at a time, as the agent's main loop: on a hint, or the safety poll."""
        fleet = self.fleet
        poll = random.uniform(0, fleet.safety_poll_s)  # a fleet does not poll in step
        while True:
            try:
                await asyncio.wait_for(self.wanted.wait(), poll)
            except asyncio.TimeoutError:
                fleet.stats.polls += 1
            self.wanted.clear()
            poll = fleet.safety_poll_s * random.uniform(0.9, 1.0)
            try:
                await self._round()
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, PeerError, ValueError):
                fleet.stats.http_errors += 1
                self.wanted.set()
                await asyncio.sleep(1)

    async def _round(self):
        conn = await Http(*self.http).open()
        try:
            while await self._fetch_and_print(conn):
                pass  # after jobs, fetch again at once: more may be queued
        finally:
            conn.close()

    def _headers(self):
        return [("Authorization", "Bearer " + self.token), ("X-CloudPrint-Proxy", "fleet-bench"),
                ("Content-Type", "application/x-www-form-urlencoded")]

    async def _call(self, conn, interface, fields):
        status, body = await conn.request("POST", self.base + "/" + interface, self._headers(), form(fields))
        if status != 200:
            raise PeerError("/%s: HTTP %d" % (interface, status))
        return json.loads(body)

    async def _fetch_and_print(self, conn):
        reply = await self._call(conn, "fetch", [("printerid", self.id)])
        if not reply.get("success"):
            return False
        handled = 0
        for job in reply["jobs"]:
            if job["id"] in self.known:
                continue
            await self._print(conn, job)
            self.known.append(job["id"])
            del self.known[:-KNOWN_MAX]
            handled += 1
        return handled > 0

    async def _print(self, conn, job):
        stats = self.fleet.stats
        seq = int(job["title"].split()[1])
        diff = json.dumps({"state": {"type": "IN_PROGRESS"}})
        await self._call(conn, "control", [("jobid", job["id"]), ("semantic_state_diff", diff)])
        await self._call(conn, "ticket", [("jobid", job["id"]), ("use_cjt", "true")])
        url = urllib.parse.urlsplit(job["fileUrl"])

        def first_byte():
            stats.first_byte.setdefault(seq, time.monotonic())
        status, data = await conn.request("GET", url.path + "?" + url.query, [
            ("Authorization", "Bearer " + self.token), ("X-CloudPrint-Proxy", "fleet-bench"),
            ("Accept", CDD_TYPE)], first_byte=first_byte)
        if status != 200:
            raise PeerError("download: HTTP %d" % status)
        if data == label(seq):
            stats.printed[seq] = stats.printed.get(seq, 0) + 1
            end = {"state": {"type": "DONE"}, "pages_printed": 1}
        else:
            stats.bad_bytes += 1
            end = {"state": {"type": "ABORTED", "device_action_cause": {"error_code": "DOWNLOAD_FAILURE"}}}
        await self._call(conn, "control", [("jobid", job["id"]), ("semantic_state_diff", json.dumps(end))])
        if end["state"]["type"] == "DONE":
            stats.done.setdefault(seq, time.monotonic())


def _str(text):
    b = text.encode() if isinstance(text, str) else text
    return len(b).to_bytes(2, "big") + b


def _packet(kind, body):
    n, length = len(body), bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        length.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes((kind,)) + bytes(length) + body


class Submitter:
    """The apps: GCP /submit with the owner's key, round-robin over the service URLs."""

    def __init__(self, fleet, services, key):
        self.fleet = fleet
        self.key = key
        self.pools = [asyncio.Queue() for _ in services]
        for pool, (host, port, base) in zip(self.pools, services):
            for _ in range(SUBMIT_POOL):
                pool.put_nowait((host, port, base, None))
        self.turn = 0
        self.in_flight = asyncio.Semaphore(SUBMIT_CONCURRENCY)

    async def submit(self, seq, printer_id):
        pool = self.pools[self.turn % len(self.pools)]
        self.turn += 1
        async with self.in_flight:
            host, port, base, conn = await pool.get()
            try:
                if conn is None:
                    conn = await Http(host, port).open()
                boundary = "fleetbench%d" % seq
                parts = [("printerid", None, printer_id), ("title", None, "fleet %d" % seq),
                         ("contentType", None, CDD_TYPE),
                         ("ticket", None, '{"version":"1.0","print":{"copies":{"copies":1}}}'),
                         ("content", "label.zpl", label(seq))]
                body = bytearray()
                for name, filename, value in parts:
                    body += b"--%s\r\nContent-Disposition: form-data; name=\"%s\"" % (boundary.encode(), name.encode())
                    if filename:
                        body += b"; filename=\"%s\"\r\nContent-Type: %s" % (filename.encode(), CDD_TYPE.encode())
                    body += b"\r\n\r\n" + (value if isinstance(value, bytes) else value.encode()) + b"\r\n"
                body += b"--%s--\r\n" % boundary.encode()
                status, reply = await conn.request("POST", base + "/submit", [
                    ("Authorization", "Bearer " + self.key), ("X-CloudPrint-Proxy", "fleet-bench"),
                    ("Content-Type", "multipart/form-data; boundary=" + boundary)], bytes(body))
                obj = json.loads(reply) if status == 200 else {}
                if not obj.get("success"):
                    raise PeerError("submit: HTTP %d %s" % (status, reply[:100]))
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, PeerError, ValueError):
                self.fleet.stats.submit_errors += 1
                self.fleet.stats.due.pop(seq, None)
                if conn is not None:
                    conn.close()
                conn = None
            finally:
                pool.put_nowait((host, port, base, conn))


class Fleet:
    def __init__(self, plan):
        self.plan = plan
        self.stats = Stats()
        self.keepalive = plan["keepalive_s"]
        self.safety_poll_s = plan["safety_poll_s"]
        self.connecting = asyncio.Semaphore(CONNECT_CONCURRENCY)
        self.printers = []
        for i, spec in enumerate(plan["printers"]):
            broker = tuple(plan["brokers"][i % len(plan["brokers"])])
            http = tuple(plan["printer_http"][i % len(plan["printer_http"])])
            self.printers.append(SimPrinter(self, spec, broker, http))
        self.submitter = Submitter(self, plan["submit_http"], plan["owner_key"])
        self.rng = random.Random(plan["seed"])

    async def run(self):
        stats = self.stats
        out = {"printers": len(self.printers)}
        t0 = time.monotonic()
        opened = [0]
        all_open = asyncio.Event()

        def one_opened():
            opened[0] += 1
            if opened[0] == len(self.printers):
                all_open.set()
        tasks = [asyncio.ensure_future(p.session(one_opened)) for p in self.printers]
        end = t0 + self.plan["connect_s"]
        while not all_open.is_set() and time.monotonic() < end:
            try:
                await asyncio.wait_for(all_open.wait(), min(15, max(0.1, end - time.monotonic())))
            except asyncio.TimeoutError:
                progress(self.plan, "%d sessions open after %.0f s" % (stats.connected, time.monotonic() - t0))
        out["connect_s"] = time.monotonic() - t0
        out["connected_at_first"] = stats.connected
        out["refused_at_first"] = stats.refused
        await asyncio.sleep(self.plan["hold_s"])
        out["held"] = stats.connected
        out["drops_while_holding"] = stats.drops
        tasks += [asyncio.ensure_future(p.runner()) for p in self.printers]
        progress(self.plan, "%d printers held; load steps" % stats.connected)
        out["steps"] = []
        seq = 0
        for rate in self.plan["rates"]:
            step = {"rate": rate, "start": time.monotonic()}
            first_seq = seq
            seconds = self.plan["step_s"]
            start = step["start"]
            n = int(rate * seconds)
            for k in range(n):
                due = start + k / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                printer = self.printers[self.rng.randrange(len(self.printers))]
                for _ in range(20):  # a printer the broker holds (past --connect-s, not all are)
                    if printer.online:
                        break
                    printer = self.printers[self.rng.randrange(len(self.printers))]
                stats.due[seq] = due
                asyncio.ensure_future(self.submitter.submit(seq, printer.id))
                seq += 1
            step["end"] = time.monotonic()
            step["seqs"] = [first_seq, seq]
            # the next step starts once this one's jobs are done (or the drain times out)
            await self._drain(first_seq, seq, self.plan["drain_s"])
            step["drained"] = time.monotonic()
            out["steps"].append(step)
            figures = step_figures(stats, step)
            progress(self.plan, "%d jobs/s: %s" % (rate, json.dumps(figures)))
            if figures["jobs_per_s"] < SATURATED * rate:
                break  # it no longer keeps up: more load only makes the queue longer
        await self._drain(0, seq, self.plan["drain_s"])  # late jobs are late, not lost
        for step in out["steps"]:
            step["figures"] = step_figures(stats, step)
        out["held_at_end"] = stats.connected
        out["drops"] = stats.drops
        for t in tasks:
            t.cancel()
        out["stats"] = {k: v for k, v in vars(stats).items() if isinstance(v, int)}
        return out

    async def _drain(self, first, last, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if all(s in self.stats.done or s not in self.stats.due for s in range(first, last)):
                return
            await asyncio.sleep(0.2)


def percentiles(values):
    """p50, p95 and p99 of values, None for each when there are none."""
    if not values:
        return None, None, None
    if len(values) == 1:
        return values * 3
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[94], q[98]


def step_figures(stats, step):
    due, first_byte, done, printed = stats.due, stats.first_byte, stats.done, stats.printed
    seqs = [s for s in range(*step["seqs"]) if s in due]
    fb = [first_byte[s] - due[s] for s in seqs if s in first_byte]
    dn = [done[s] - due[s] for s in seqs if s in done]
    finished = [done[s] for s in seqs if s in done]
    out = {"submitted": len(seqs), "done": len(dn),
           "lost": sum(1 for s in seqs if s not in done),
           "printed_twice": sum(1 for s in seqs if printed.get(s, 0) > 1),
           "jobs_per_s": (len(finished) / (max(finished) - step["start"])) if finished else 0.0}
    for name, values in (("first_byte", fb), ("done", dn)):
        for p, v in zip((50, 95, 99), percentiles(values)):
            out["%s_p%d_s" % (name, p)] = None if v is None else round(v, 4)
    return out


def progress(plan, text):
    print("fleet[%s]: %s" % (plan["name"], text), flush=True)


def main():
    plan_file, result_file = sys.argv[1:3]
    with open(plan_file) as f:
        plan = json.load(f)
    random.seed(plan["seed"])
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def run():
        return await Fleet(plan).run()
    out = asyncio.run(run())
    with open(result_file, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
