"""Webhooks over real HTTP: every job and printer event reaches a receiver that fails at
first, once accepted, in order, signed with the webhook's secret; two replicas sending at
once send each event once; a redirect is a failure; the delivery log and the limits."""
import hashlib
import hmac
import http.server
import json
import threading
import time

import pytest

from tests.unit.test_printnode import control, fetch, pn, printer, raw_job
from tests.unit.test_service_api import call
from tools.hostrun import wait_for
from tools.printservice import webhooks
from tools.printservice.webhooks import Webhooks


class Receiver:
    """An app's webhook endpoint: answers the first `fail` requests with 500 (or a given
    status), then 200; keeps every request it got."""

    def __init__(self, fail=0, status=500, location=None):
        receiver = self
        self.fail, self.status, self.got, self.lock = fail, status, [], threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    failing = len(receiver.got) < receiver.fail
                    receiver.got.append((dict(self.headers), body, not failing))
                self.send_response(receiver.status if failing else 200)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self):
        """(event id -> body) of the events it answered 2xx, and how often each was accepted."""
        with self.lock:
            ok = [(json.loads(b), h) for h, b, accepted in self.got if accepted]
        counts = {}
        for event, _ in ok:
            counts[event["id"]] = counts.get(event["id"], 0) + 1
        return [e for e, _ in ok], counts

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(**kw):
        r = Receiver(**kw)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()


def add_webhook(svc, url):
    status, hook, _ = pn(svc, "POST", "/webhooks", {"url": url})
    assert status == 201, hook
    return hook


def test_a_receiver_that_fails_twice_gets_every_event_once_in_order_and_signed(svc, receiver):
    r = receiver(fail=2)
    hook = add_webhook(svc, r.url)
    pid, num, auth = printer(svc)
    job_num = pn(svc, "POST", "/printjobs", raw_job(num))[1]
    [job] = fetch(svc, pid, auth)
    control(svc, job["id"], auth, {"type": "IN_PROGRESS"})
    control(svc, job["id"], auth, {"type": "DONE"}, pages=1)
    wait_for(lambda: len(r.accepted()[0]) >= 4, 30, "four job events accepted")
    time.sleep(1)  # nothing more comes
    events, counts = r.accepted()
    assert [(e["type"], e["data"]["state"]) for e in events] == [
        ("job.state", "QUEUED"), ("job.state", "QUEUED"), ("job.state", "IN_PROGRESS"), ("job.state", "DONE")]
    assert [e["data"]["printnodeState"] for e in events] == ["new", "sent_to_client", "in_progress", "done"]
    assert set(counts.values()) == {1} and [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert events[-1]["data"]["printjobId"] == job_num and events[-1]["data"]["computerId"] == num
    assert events[-1]["data"]["pagesPrinted"] == 1 and events[0]["created"].endswith("Z")
    assert len(r.got) == 6  # two refused tries of the first event, then one each
    for headers, body, _ in r.got:
        want = "sha256=" + hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Printservice-Signature"] == want
        assert headers["X-Printservice-Event-Id"] == str(json.loads(body)["id"])
    listed = pn(svc, "GET", "/webhooks")[1]
    assert [w["url"] for w in listed] == [r.url] and "secret" not in json.dumps(listed)
    log = pn(svc, "GET", "/webhooks/%s/deliveries" % hook["id"])[1]
    assert [d["status"] for d in log][::-1] == [500, 500, 200, 200, 200, 200]
    assert log[-1]["error"] == "answered 500 Internal Server Error"


def test_printer_state_changes_are_events(svc, receiver):
    r = receiver()
    add_webhook(svc, r.url)
    pid, num, auth = printer(svc)
    stopped = {"version": "1.0", "printer": {"state": "STOPPED", "input_tray_state": {
        "item": [{"vendor_id": "roll", "state": "EMPTY"}]}}}
    call(svc, "/cloudprint/update", {"printerid": pid, "semantic_state": json.dumps(stopped)}, headers=auth)
    call(svc, "/cloudprint/update", {"printerid": pid, "semantic_state": json.dumps(stopped)}, headers=auth)
    call(svc, "/cloudprint/update", {"printerid": pid, "firmware": "2.0"}, headers=auth)  # no state change
    svc.api.set_presence(pid, "offline")
    wait_for(lambda: len(r.accepted()[0]) >= 2, 20, "two printer events")
    time.sleep(1)
    events = [e for e in r.accepted()[0] if e["type"] == "printer.state"]
    assert [e["data"] for e in events] == [
        {"printerId": pid, "computerId": num, "name": "p", "state": "STOPPED", "reasons": ["paper out"],
         "connection": "online"},
        {"printerId": pid, "computerId": num, "name": "p", "state": "STOPPED", "reasons": ["paper out"],
         "connection": "offline"}]


def test_two_replicas_send_each_event_once(svc, receiver):
    r = receiver()
    add_webhook(svc, r.url)
    pid, num, auth = printer(svc)
    replicas = [Webhooks(svc.store, log=lambda m: None) for _ in range(2)]
    for _ in range(20):
        pn(svc, "POST", "/printjobs", raw_job(num))
    threads = [threading.Thread(target=w.deliver_due) for w in replicas * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for(lambda: len(r.accepted()[0]) >= 20, 20, "20 events")
    time.sleep(1)
    events, counts = r.accepted()
    assert len(events) == 20 and set(counts.values()) == {1}
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)


def test_a_redirect_is_a_failure_and_retries_back_off(svc, receiver):
    r = receiver(fail=10 ** 6, status=302, location="http://127.0.0.1:1/elsewhere")
    hook = add_webhook(svc, r.url)
    pid, num, auth = printer(svc)
    pn(svc, "POST", "/printjobs", raw_job(num))
    wait_for(lambda: len(r.got) >= 2, 20, "two tries")
    time.sleep(1.5)
    assert len(r.got) <= 3  # 1 s, then 2 s between tries: not a hammering loop
    [w] = pn(svc, "GET", "/webhooks")[1]
    assert w["failedAttempts"] >= 2 and w["lastDelivery"]["status"] == 302
    assert webhooks.backoff_ms(1) == 1000 and webhooks.backoff_ms(5) == 16000
    assert webhooks.backoff_ms(60) == 600000
    assert pn(svc, "DELETE", "/webhooks/%s" % hook["id"])[1] == [hook["id"]]
    tries = len(r.got)
    time.sleep(2.5)
    assert len(r.got) == tries  # deleted: nothing more is sent


def test_webhook_urls_and_counts_are_limited(svc):
    assert pn(svc, "POST", "/webhooks", {"url": "ftp://example.com/x"})[0] == 400
    assert pn(svc, "POST", "/webhooks", {})[0] == 400
    for i in range(webhooks.WEBHOOKS_MAX):
        add_webhook(svc, "http://127.0.0.1:9/hook%d" % i)
    status, body, _ = pn(svc, "POST", "/webhooks", {"url": "http://127.0.0.1:9/more"})
    assert status == 400 and "at most" in body["message"]
    assert pn(svc, "DELETE", "/webhooks/wh_nope")[0] == 404


def test_sent_events_are_purged(svc, receiver):
    r = receiver()
    add_webhook(svc, r.url)
    pid, num, auth = printer(svc)
    pn(svc, "POST", "/printjobs", raw_job(num))
    wait_for(lambda: len(r.accepted()[0]) >= 1, 20, "an event")
    svc.api.maintain()
    assert svc.store.count("events") == 0  # sent to every webhook of the account: gone
    assert svc.store.count("deliveries") == 1


def test_a_replica_that_listed_a_webhook_before_another_sent_its_events_does_not_send_them_again(
        svc, receiver, monkeypatch):
    r = receiver()
    add_webhook(svc, r.url)
    pid, num, auth = printer(svc)
    for _ in range(3):
        pn(svc, "POST", "/printjobs", raw_job(num))
    first, second = Webhooks(svc.store, log=lambda m: None), Webhooks(svc.store, log=lambda m: None)
    listed = list(svc.store.due_webhooks(webhooks.now_ms()))  # the second replica's listing...
    first.deliver_due()  # ...then the first sends everything
    wait_for(lambda: len(r.accepted()[0]) >= 3, 20, "3 events")
    monkeypatch.setattr(svc.store, "due_webhooks", lambda now: listed)
    second.deliver_due()  # it leases the webhook from its old listing
    time.sleep(0.5)
    events, counts = r.accepted()
    assert len(events) == 3 and set(counts.values()) == {1}
