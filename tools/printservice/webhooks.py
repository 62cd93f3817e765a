"""Webhooks: an account's URLs told of every change of its jobs and printers.

Each event is a JSON body {"id", "type", "created", "data"} POSTed with the header
X-Printservice-Signature: sha256=<hex HMAC-SHA256 of the body with the webhook's secret>.
Events are written in the same transaction as the change they tell of and sent in order,
one at a time per webhook, until the URL answers 2xx: a failure is retried after 1 s, 2 s,
4 s ... up to 10 min between tries, for up to 3 days. So every event arrives at least once
and a job's events arrive in order (an event is sent again only when its 2xx was lost).
A redirect is a failure: the secret's signature is for the URL the owner gave.

Any number of replicas may run deliver_due at once: a webhook is sent by one of them at a
time (a lease in the database)."""
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request

from tools.printservice import status
from tools.printservice.fetch import check_uri
from tools.printservice.status import iso
from tools.printservice.store import now_ms

WEBHOOKS_MAX = 10  # per account
TIMEOUT_S = 10  # for each POST
LEASE_MS = 60 * 1000  # a replica sends a webhook's events for at most this long at a time
BACKOFF_MS = (1000, 10 * 60 * 1000)  # first wait, longest wait
EVENTS_KEPT_MS = 3 * 24 * 3600 * 1000
DELIVERIES_KEPT = 200  # per webhook, for the console
ERROR_MAX = 200  # characters of a failure kept


class WebhookError(ValueError):
    pass


def signature(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff_ms(attempts):
    return min(BACKOFF_MS[0] * 2 ** min(attempts - 1, 20), BACKOFF_MS[1])


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 3xx is the answer: a failure


_opener = urllib.request.build_opener(_NoRedirects)


class Webhooks:
    def __init__(self, store, log=print):
        self.store = store
        self.log = log

    # ---- an account's webhooks
    def add(self, email, url):
        """A new webhook: (its id, its secret). The secret is shown to the owner now only."""
        why = check_uri(url)
        if why:
            raise WebhookError("Webhook URL: " + why)
        webhook_id, secret = "wh_" + secrets.token_hex(8), "whsec_" + secrets.token_urlsafe(32)
        with self.store.tx() as s:
            if s.count("webhooks", email=email, deleted_ms=None) >= WEBHOOKS_MAX:
                raise WebhookError("An account has at most %d webhooks; delete one first." % WEBHOOKS_MAX)
            s.insert("webhooks", id=webhook_id, email=email, url=url, secret=secret, created_ms=now_ms(),
                     cursor=s.last_event_id())  # told of what happens from now on
        self.log("webhook %s added for %s" % (webhook_id, email))
        return webhook_id, secret

    def list(self, email):
        """The account's live webhooks, without their secrets: dicts of id, url, created_ms,
        attempts (failures of the event it waits to send), next_ms, last (its last delivery)."""
        out = []
        for w in self.store.all("webhooks", order=("created_ms", "id"), email=email, deleted_ms=None):
            recent = self.store.recent_deliveries(w["id"], 1)
            out.append({"id": w["id"], "url": w["url"], "created_ms": w["created_ms"], "attempts": w["attempts"],
                        "next_ms": w["next_ms"], "last": dict(recent[0]) if recent else None})
        return out

    def remove(self, email, webhook_id):
        if not self.store.update("webhooks", {"id": webhook_id, "email": email, "deleted_ms": None},
                                 deleted_ms=now_ms()):
            raise WebhookError("No webhook %s." % webhook_id)

    def deliveries(self, email, webhook_id, most=50):
        """The webhook's newest delivery attempts, newest first; WebhookError if not the account's."""
        if self.store.get("webhooks", id=webhook_id, email=email) is None:
            raise WebhookError("No webhook %s." % webhook_id)
        return [dict(d) for d in self.store.recent_deliveries(webhook_id, most)]

    # ---- sending
    def deliver_due(self):
        """One round: every webhook with events waiting sends them, in order, until one
        fails or its lease runs short. The events sent."""
        sent = 0
        now = now_ms()
        for hook in self.store.due_webhooks(now):
            if not self.store.lease_webhook(hook["id"], now, now + LEASE_MS):
                continue  # another replica is on it
            # its cursor as the last holder of the lease left it, not as it was when listed:
            # a replica that listed it before another sent its events would send them again
            hook = self.store.get("webhooks", id=hook["id"])
            try:
                sent += self._drain(hook, now + LEASE_MS // 2)
            finally:
                self.store.update("webhooks", {"id": hook["id"]}, lease_ms=0)
        return sent

    def _drain(self, hook, stop_ms):
        cursor, attempts, sent = hook["cursor"], hook["attempts"], 0
        while now_ms() < stop_ms:
            event = self.store.next_event(hook["email"], cursor)
            if event is None:
                break
            code, error, took = self._post(hook, event)
            ok = code is not None and 200 <= code < 300
            with self.store.tx() as s:
                s.insert("deliveries", webhook_id=hook["id"], event_id=event["id"], attempt=attempts + 1,
                         status=code, error=error, took_ms=took, created_ms=now_ms())
                if ok:
                    cursor, attempts = event["id"], 0
                    s.update("webhooks", {"id": hook["id"]}, cursor=cursor, attempts=0, next_ms=0)
                else:
                    attempts += 1
                    s.update("webhooks", {"id": hook["id"]}, attempts=attempts,
                             next_ms=now_ms() + backoff_ms(attempts))
            if not ok:
                self.log("webhook %s: event %d not delivered (try %d): %s"
                         % (hook["id"], event["id"], attempts, error or code))
                break
            sent += 1
        return sent

    def _post(self, hook, event):
        """(HTTP status or None, what failed or None, milliseconds taken)."""
        body = self.body(event)
        req = urllib.request.Request(hook["url"], data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "printservice-webhooks",
            "X-Printservice-Event": event["kind"], "X-Printservice-Event-Id": str(event["id"]),
            "X-Printservice-Signature": signature(hook["secret"], body)})
        started = time.monotonic()
        code, error = None, None
        try:
            with _opener.open(req, timeout=TIMEOUT_S) as resp:
                code = resp.status
                resp.read(64 * 1024)
        except urllib.error.HTTPError as e:
            code = e.code
            error = "answered %d %s" % (e.code, e.reason)
            e.close()
        except (OSError, ValueError) as e:
            error = "%s: %s" % (type(e).__name__, getattr(e, "reason", e))
        took = int((time.monotonic() - started) * 1000)
        return code, error and error[:ERROR_MAX], took

    def body(self, event):
        facts = json.loads(event["body"])
        data = self._job_data(facts) if event["kind"] == "job.state" else self._printer_data(facts)
        return json.dumps({"id": event["id"], "type": event["kind"], "created": iso(event["created_ms"]),
                           "data": data}).encode()

    def _job_data(self, facts):
        with self.store.tx(readonly=True) as s:
            job = s.get("jobs", id=facts["job"])
            printer = job and s.printer(job["printer_id"], include_deleted=True)
        what, cause = facts["what"], facts["cause"]
        data = {"jobId": facts["job"], "state": "QUEUED" if what == "SENT" else what,
                "printnodeState": status.printnode_state(what, cause), "cause": cause,
                "message": "handed to the printer" if what == "SENT" else status.cause_words(cause),
                "pagesPrinted": facts["pages"]}
        if job is not None:  # deleted since: the event still tells what happened
            data.update(printjobId=job["num"], title=job["title"], printerId=job["printer_id"],
                        computerId=printer["num"] if printer else None)
        return data

    def _printer_data(self, facts):
        p = self.store.printer(facts["printer"], include_deleted=True)
        return {"printerId": facts["printer"], "computerId": p["num"] if p else None,
                "name": p["name"] if p else None, "state": facts["state"], "reasons": facts["reasons"],
                "connection": facts["connection"]}

    def maintain(self):
        self.store.purge_events(now_ms() - EVENTS_KEPT_MS, DELIVERIES_KEPT)
