"""The print service with fault switches, for tests only: a production start never loads
this module. Arm a named fault for the next N matching requests:

    service.faults.arm("http_error", count=3, interface="fetch", status=503, retry_after=1)

`service.api.seen` lists what arrived (interfaces, parameter names and headers present,
never their values, except the job states reported to /control)."""
import collections
import json
import threading
import time

from tools.printservice.api import Api, Reply, loads_limited
from tools.printservice.server import Service

KNOWN = {
    # name: what it does when taken
    "register_drop_field": "the next /register reply lacks the field given as `field`",
    "non_json": "the next reply of `interface` is not JSON",
    "http_error": "the next call of `interface` answers HTTP `status` (5xx, 429 + Retry-After)",
    "truncate_download": "the next download sends `keep` bytes of its body (or stops at byte "
                         "`at` of the file), then closes",
    "drip": "the next reply of `interface` trickles out one byte every `interval` seconds",
    "duplicate_delivery": "the next /fetch lists every job twice, IN_PROGRESS ones included",
    "intercept": "calls `then()` while handling the next call of `interface` (for /control, "
                 "the one moving a job to `state`): after it took effect if `apply`, else "
                 "instead of it (the call is dropped); tests use it to cut the power there",
}


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._armed = {}

    def arm(self, name, count=1, **params):
        if name not in KNOWN:
            raise ValueError("unknown fault %r; known: %s" % (name, ", ".join(sorted(KNOWN))))
        with self._lock:
            self._armed[name] = [count, params]

    def clear(self):
        with self._lock:
            self._armed.clear()

    def take(self, name, **match):
        """The fault's params if it is armed (and its params match), consuming one use."""
        with self._lock:
            entry = self._armed.get(name)
            if not entry:
                return None
            count, params = entry
            if any(params.get(k) != v for k, v in match.items()):
                return None
            if count <= 1:
                del self._armed[name]
            else:
                entry[0] = count - 1
            return params


class FaultyApi(Api):
    """The service's API with the fault switches and a record of what arrived."""

    faults = None  # set by FaultyService: one Faults and one record for every listener's Api
    seen = None

    def handle(self, req):
        self.seen.append({"interface": req.interface, "method": req.method,
                          "content_type": req.headers.get("Content-Type", ""),
                          "authorization": "Authorization" in req.headers,
                          "proxy_header": "X-CloudPrint-Proxy" in req.headers,
                          "params": sorted(set(req.params) | set(req.files)),
                          "range": req.headers.get("Range"),
                          "job": req.value("jobid") if req.interface == "control" else None,
                          "diff": req.value("semantic_state_diff") if req.interface == "control" else None})
        state = None
        if req.interface == "control":
            try:
                state = loads_limited(req.value("semantic_state_diff") or "{}")["state"]["type"]
            except (ValueError, KeyError, TypeError):
                pass
        hook = self.faults.take("intercept", interface=req.interface, state=state)
        if hook and not hook.get("apply"):
            hook["then"]()
            return Reply(status=503, body=b"dropped", content_type="text/plain")
        reply = self._faulty_route(req)
        if hook:
            hook["then"]()
        drip = self.faults.take("drip", interface=req.interface)
        if drip:
            _drip(reply, drip.get("interval", 1.0))
        return reply

    def _faulty_route(self, req):
        fault = self.faults.take("http_error", interface=req.interface)
        if fault:
            return Reply(status=fault.get("status", 503), body=b"unavailable",
                         headers=[("Retry-After", str(fault.get("retry_after", 1)))])
        if self.faults.take("non_json", interface=req.interface):
            return Reply(body=b"<html>Service temporarily confused</html>", content_type="text/html")
        return super().handle(req)

    def register(self, req):
        reply = super().register(req)
        dropped = self.faults.take("register_drop_field")
        if dropped and reply.status == 200:
            fields = json.loads(reply.body)
            fields.pop(dropped["field"], None)
            reply.body = json.dumps(fields).encode()
        return reply

    def i_fetch(self, req):
        req.duplicate = self.faults.take("duplicate_delivery") is not None
        return super().i_fetch(req)

    def fetchable_states(self, req):
        return ("QUEUED", "IN_PROGRESS") if req.duplicate else super().fetchable_states(req)

    def fetch_reply(self, req, jobs):
        return super().fetch_reply(req, jobs + jobs if req.duplicate else jobs)

    def i_download(self, req):
        reply = super().i_download(req)
        cut = self.faults.take("truncate_download") if reply.stream else None
        if cut is not None:
            start = 0
            for name, value in reply.headers:
                if name == "Content-Range":
                    start = int(value.split()[1].split("-")[0])
            send = max(0, cut["at"] - start) if "at" in cut else cut.get("keep", reply.length // 2)
            _cut(reply, min(send, reply.length))
        return reply


def _cut(reply, send):
    """The reply's body stops after send bytes (its Content-Length still says all of it)."""
    whole = reply.stream

    def chunks():
        left, source = send, whole()
        try:
            for chunk in source:
                if left <= 0:
                    break
                yield chunk[:left]
                left -= len(chunk)
        finally:
            source.close()
    reply.stream = chunks


def _drip(reply, interval):
    body = reply.body

    def chunks():
        for i in range(len(body)):
            yield body[i:i + 1]
            time.sleep(interval)  # in a worker thread of the server, one per drip
    reply.stream, reply.length, reply.close = chunks, len(body), True


class FaultyService(Service):
    """The service with fault switches: service.faults, and service.seen (service.api.seen)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, api_class=FaultyApi, **kwargs)
        self.faults = Faults()
        self.seen = collections.deque(maxlen=1000)
        for api in self._apis.values():
            api.faults, api.seen = self.faults, self.seen

    def advertise(self, base_url):
        """Hand out URLs under base_url (a proxy in front of the service) instead of its own."""
        for api in self._apis.values():
            api.base = base_url.rstrip("/") + "/cloudprint"
