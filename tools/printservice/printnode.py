"""A PrintNode-compatible REST API (PrintNode API v3) under <base>/printnode/, a thin layer
over the one job and printer model: an app written for PrintNode switches by changing its
base URL. Each agent is a computer with one printer, both named by the printer's number.

HTTP Basic auth with one of the account's API keys as the user name (the password is
ignored). Bodies are JSON or urlencoded; replies are JSON, errors {"code", "message"}.
Lists take limit, offset, after (ids past it) and dir (asc, desc) and say what they
returned in the Records-* headers. Where PrintNode's document is silent the README's API
section says what is done."""
import base64
import binascii
import io
import json
import time
import urllib.parse
import uuid

import anyio.to_thread
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Route

from tools.printservice import fetch, numsets, raster, status
from tools.printservice.status import iso, printnode_state
from tools.printservice.api import MAX_TITLE, RAW_TYPE, TooDeep, content_types, loads_limited, submit_options
from tools.printservice.forms import FORM_FIELDS_MAX, BodyError, read_body
from tools.printservice.store import now_ms, state_cause
from tools.printservice.webhooks import WebhookError

API_VERSION = "3.0.0"
BODY_MAX = 10 * 1024 * 1024  # PrintNode's limit: bigger files go by raw_uri
LIMIT_DEFAULT = 500  # records in one reply, as PrintNode
LIMIT_MAX = 1000
QTY_MAX = 100
SOURCE_MAX_CHARS = 200
AUTH_FAILURE_LIMIT = (30, 60000)  # wrong keys per client address and minute
CORS = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS"),
        ("Access-Control-Allow-Headers", "Accept, Accept-Version, Authorization, Content-Type, Idempotency-Key, "
                                         "X-Pretty, X-Dont-Log"),
        ("Access-Control-Expose-Headers", "Api-Version, Records-Returned, Records-Returned-Limit, "
                                          "Records-Returned-Offset, Records-Total, Request-Id, Response-Time, X-Account")]
CONTENT_TYPES = ("raw_base64", "raw_uri", "pdf_base64", "pdf_uri")


class PnError(Exception):
    def __init__(self, status, code, message, headers=()):
        super().__init__(message)
        self.status, self.code, self.headers = status, code, list(headers)


def basic_key(header):
    """The user name of an HTTP Basic Authorization header (the API key), or None."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic" or not value.strip() or len(value) > 1024:
        return None
    try:
        pair = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return pair.partition(":")[0] or None


def nested(fields):
    """An urlencoded form as PrintNode's JSON: `options[copies]=2` -> {"options": {"copies": "2"}};
    `options` or `authentication` may also be JSON text."""
    out = {}
    for name, values in fields.items():
        keys = name.replace("]", "").split("[")
        node = out
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise PnError(400, "BadRequest", "field %s mixes a value and an object" % name)
        node[keys[-1]] = values[-1]
    for name in ("options", "authentication"):
        if isinstance(out.get(name), str):
            out[name] = _json(out[name])
    return out


def _json(text):
    try:
        return loads_limited(text)
    except TooDeep as e:
        raise PnError(400, "InvalidContent", str(e))
    except ValueError as e:
        raise PnError(400, "InvalidContent", "Invalid JSON: %s" % e)


def _whole(value, name, low, high):
    """A whole number from JSON or a form field, low..high; PnError otherwise."""
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
        raise PnError(400, "InvalidArgument", "%s is a whole number from %d to %d" % (name, low, high))
    n = int(value)
    if not low <= n <= high:
        raise PnError(400, "InvalidArgument", "%s is a whole number from %d to %d" % (name, low, high))
    return n


class Page:
    """limit, offset, after and dir of a list request."""

    def __init__(self, query, desc=False):
        self.limit = _whole(query.get("limit", LIMIT_DEFAULT), "limit", 1, LIMIT_MAX)
        self.offset = _whole(query.get("offset", 0), "offset", 0, 10 ** 12)
        self.after = _whole(query["after"], "after", 0, 10 ** 15) if "after" in query else None
        direction = query.get("dir", "desc" if desc else "asc")
        if direction not in ("asc", "desc"):
            raise PnError(400, "InvalidArgument", "dir is asc or desc")
        self.desc = direction == "desc"

    def kwargs(self):
        return {"after": self.after, "desc": self.desc, "offset": self.offset, "limit": self.limit}

    def headers(self, returned, total):
        return [("Records-Returned", returned), ("Records-Returned-Offset", self.offset),
                ("Records-Returned-Limit", self.limit), ("Records-Total", total)]


def _sets(*texts):
    try:
        return [numsets.parse(t) for t in texts if t is not None]
    except numsets.BadSet as e:
        raise PnError(400, "BadRequest", str(e))


class PrintNode:
    def __init__(self, api):
        self.api = api
        self.store = api.store

    def routes(self):
        return [Route("/printnode/{path:path}", self.serve, methods=["GET", "POST", "DELETE", "OPTIONS"])]

    # ---- HTTP
    async def serve(self, request):
        started = time.monotonic()
        headers = [("Api-Version", API_VERSION), ("Request-Id", str(uuid.uuid4()))] + CORS
        pretty = "x-pretty" in request.headers
        if request.method == "OPTIONS":  # a browser's preflight: no credentials in it
            return Response(status_code=204, headers=dict(headers))
        unread = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
        try:
            handler, args = self._route(request.method, [p for p in request.path_params["path"].split("/") if p])
            account = await anyio.to_thread.run_sync(self._account, request.headers.get("authorization"),
                                                     request.client.host if request.client else None)
            headers.append(("X-Account", account["num"]))
            body = await self._body(request) if request.method == "POST" else None
            unread = False
            query = {k: v for k, v in request.query_params.items()}
            status_code, result, more = await anyio.to_thread.run_sync(
                lambda: handler(account["email"], query, body, request.headers, *args))
            headers += more
        except PnError as e:
            status_code, result = e.status, {"code": e.code, "message": str(e)}
            headers += e.headers
        except BodyError as e:
            codes = {413: "RequestEntityTooLarge", 408: "RequestTimeout"}
            status_code, result = e.status, {"code": codes.get(e.status, "BadRequest"), "message": str(e)}
        except ClientDisconnect:
            status_code, result = 400, {"code": "BadRequest", "message": "client went away"}
        except Exception as e:  # a bug here must not look like a network fault
            self.api.log("internal error in /printnode/%s: %s: %s" % (request.path_params["path"][:80],
                                                                     type(e).__name__, e))
            status_code, result = 500, {"code": "InternalServer", "message": "internal error"}
        if unread:  # refused before its body was read: the rest of it is never read
            headers.append(("Connection", "close"))
        headers.append(("Response-Time", int((time.monotonic() - started) * 1000)))
        text = json.dumps(result, indent=2 if pretty else None)
        return Response(text, status_code=status_code, media_type="application/json",
                        headers={k: str(v) for k, v in headers})

    def _route(self, method, parts):
        """(handler, its path arguments) for a method and path; PnError 404 or 405."""
        n = len(parts)
        head = parts[0] if parts else ""
        table = None
        if n == 1 and head in ("whoami", "credits"):
            table = {"GET": (getattr(self, head), ())}
        elif head == "computers" and n in (1, 2):
            table = {"GET": (self.computers, tuple(parts[1:2]) or (None,))}
        elif head == "computers" and n in (3, 4) and parts[2] == "printers":
            table = {"GET": (self.printers, (parts[1], parts[3] if n == 4 else None))}
        elif head == "printers" and n in (1, 2):
            table = {"GET": (self.printers, (None, parts[1] if n == 2 else None))}
        elif head == "printers" and n in (3, 4) and parts[2] == "printjobs":
            args = (parts[1], parts[3] if n == 4 else None)
            table = {"GET": (self.printjobs, args), "DELETE": (self.delete_printjobs, args)}
        elif head == "printjobs" and n in (2, 3) and parts[-1] == "states":
            table = {"GET": (self.states, (parts[1] if n == 3 else None,))}
        elif head == "printjobs" and n in (1, 2):
            args = (None, parts[1] if n == 2 else None)
            table = {"GET": (self.printjobs, args), "DELETE": (self.delete_printjobs, args)}
            if n == 1:
                table["POST"] = (self.create_printjob, ())
        elif head == "webhooks" and n == 1:  # ours, not PrintNode's
            table = {"GET": (self.list_webhooks, ()), "POST": (self.add_webhook, ())}
        elif head == "webhooks" and n == 2:
            table = {"DELETE": (self.remove_webhook, (parts[1],))}
        elif head == "webhooks" and n == 3 and parts[2] == "deliveries":
            table = {"GET": (self.webhook_deliveries, (parts[1],))}
        if table is None:
            raise PnError(404, "NotFound", "no such resource: /printnode/%s" % "/".join(parts)[:200])
        if method not in table:
            raise PnError(405, "MethodNotAllowed", "%s is not allowed here" % method,
                          [("Allow", ", ".join(sorted(table)))])
        return table[method]

    def _account(self, authorization, client):
        """The users row of the key in the Basic Authorization header; PnError 401 otherwise
        (429 for an address that keeps trying wrong keys)."""
        bucket = "printnode-auth:%s" % client
        if self.store.hits(bucket, AUTH_FAILURE_LIMIT[1]) >= AUTH_FAILURE_LIMIT[0]:
            raise PnError(429, "TooManyRequests", "Too many wrong API keys; wait a minute.")
        key = basic_key(authorization)
        email = self.api.accounts.for_key(key) if key else None
        if email is None:
            self.store.allow(bucket, *AUTH_FAILURE_LIMIT)
            why = "API key not found" if key else "Expects HTTP Basic authentication."
            raise PnError(401, "InvalidCredentials" if not key else "Unauthorized", why,
                          [("WWW-Authenticate", 'Basic realm="Api"')])
        return self.store.get("users", email=email)

    async def _body(self, request):
        raw = await read_body(request, BODY_MAX)
        ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if ctype == "application/x-www-form-urlencoded":
            try:
                fields = urllib.parse.parse_qs(raw.decode("utf-8"), keep_blank_values=True,
                                               max_num_fields=FORM_FIELDS_MAX)
            except UnicodeDecodeError:
                raise PnError(400, "InvalidContent", "the body is not UTF-8")
            except ValueError:
                raise PnError(413, "RequestEntityTooLarge", "at most %d form fields" % FORM_FIELDS_MAX)
            return nested(fields)
        if ctype not in ("application/json", ""):
            raise PnError(415, "InvalidContent", "send application/json or application/x-www-form-urlencoded")
        try:
            body = _json(raw.decode("utf-8")) if raw else {}
        except UnicodeDecodeError:
            raise PnError(400, "InvalidContent", "the body is not UTF-8")
        if not isinstance(body, dict):
            raise PnError(400, "InvalidContent", "the body is a JSON object")
        return body

    # ---- shapes
    def computer_json(self, p, now):
        return {"id": p["num"], "name": p["name"], "inet": None, "inet6": None, "hostname": p["proxy"],
                "version": p["firmware"], "jre": None, "createTimestamp": iso(p["created_ms"]),
                "state": "connected" if status.online(p, now)[0] else "disconnected"}

    def printer_json(self, p, now):
        online = status.online(p, now)[0]
        state = status.printer_state(p["semantic_state"])[0]
        return {"id": p["num"], "computer": self.computer_json(p, now), "name": p["name"],
                "description": p["default_display_name"] or p["name"], "capabilities": capabilities(p),
                "default": True, "createTimestamp": iso(p["created_ms"]),
                "state": ("offline" if not online else
                          {"PROCESSING": "printing", "STOPPED": "stopped"}.get(state, "online"))}

    def job_json(self, j, printer, now):
        what = "SENT" if j["state_type"] == "QUEUED" and j["delivery_attempts"] else j["state_type"]
        submitted = j["submitted_as"] if j["submitted_as"] in CONTENT_TYPES else (
            "pdf_base64" if "application/pdf" in (j["submitted_as"], j["content_type"]) else "raw_base64")
        return {"id": j["num"], "printer": self.printer_json(printer, now), "title": j["title"],
                "contentType": submitted, "source": j["source"] or "", "expireAt": iso(j["expires_ms"]),
                "createTimestamp": iso(j["create_ms"]),
                "state": printnode_state(what, state_cause(json.loads(j["state"])["state"]))}

    def _printers_of(self, email, printer_ids):
        rows = self.store.all("printers", owner=email, id=tuple(set(printer_ids)))
        return {p["id"]: p for p in rows}

    # ---- account
    def whoami(self, email, query, body, headers):
        user = self.store.get("users", email=email)
        now = now_ms()
        printers = self.store.all("printers", order=("num",), owner=email, deleted=0)
        return 200, {"id": user["num"], "firstname": "", "lastname": "", "email": email,
                     "canCreateSubAccounts": False, "creatorEmail": None, "creatorRef": None,
                     "childAccounts": [], "credits": None, "numComputers": len(printers),
                     "totalPrints": self.store.count("jobs", owner=email, state_type="DONE"), "versions": [],
                     "connected": [p["num"] for p in printers if status.online(p, now)[0]],
                     "Tags": [], "state": "active", "permissions": ["Unrestricted"]}, []

    def credits(self, email, query, body, headers):
        return 200, None, []  # unlimited

    # ---- computers and printers
    def computers(self, email, query, body, headers, computer_set):
        page = Page(query)
        rows, total = self.store.numbered_printers(email, _sets(computer_set), **page.kwargs())
        now = now_ms()
        return 200, [self.computer_json(p, now) for p in rows], page.headers(len(rows), total)

    def printers(self, email, query, body, headers, computer_set, printer_set):
        page = Page(query)
        rows, total = self.store.numbered_printers(email, _sets(computer_set, printer_set), **page.kwargs())
        now = now_ms()
        return 200, [self.printer_json(p, now) for p in rows], page.headers(len(rows), total)

    # ---- print jobs
    def printjobs(self, email, query, body, headers, printer_set, job_set):
        page = Page(query)
        rows, total = self.store.numbered_jobs(email, _sets(job_set), _sets(printer_set), **page.kwargs())
        printers = self._printers_of(email, [j["printer_id"] for j in rows])
        now = now_ms()
        out = [self.job_json(j, printers[j["printer_id"]], now) for j in rows if j["printer_id"] in printers]
        return 200, out, page.headers(len(out), total)

    def states(self, email, query, body, headers, job_set):
        """PrintNode's state history: per job (newest job first unless dir=asc), its states
        oldest first, each with its age from the first."""
        page = Page(query, desc=True)
        rows, total = self.store.numbered_jobs(email, _sets(job_set), (), **page.kwargs())
        history = self.store.job_history([j["id"] for j in rows])
        firmware = {p["id"]: p["firmware"] for p in self._printers_of(email, [j["printer_id"] for j in rows]).values()}
        out = []
        for j in rows:
            events = history[j["id"]]
            first = events[0]["created_ms"] if events else j["create_ms"]
            out.append([state_json(e, j, first, firmware.get(j["printer_id"])) for e in events])
        return 200, out, page.headers(len(out), total)

    def delete_printjobs(self, email, query, body, headers, printer_set, job_set):
        """Cancels the jobs of the sets that no printer has started; their ids."""
        rows, _ = self.store.numbered_jobs(email, _sets(job_set), _sets(printer_set), desc=False)
        cancelled = [j["num"] for j in rows if j["state_type"] == "QUEUED" and self.api.cancel(j["id"])]
        return 200, cancelled, []

    def create_printjob(self, email, query, body, headers):
        printer = self._printer(email, body.get("printerId", body.get("printer")))
        title = body.get("title")
        source = body.get("source")
        ctype = body.get("contentType")
        content = body.get("content")
        for name, value in (("title", title), ("source", source), ("contentType", ctype), ("content", content)):
            if not isinstance(value, str) or not value:
                raise PnError(400, "MissingParameter", "%s is required (a string)" % name)
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise PnError(400, "InvalidArgument", "options is an object")
        most = copies_max(printer)
        copies = _whole(options.get("copies", 1), "options.copies", 1, most)
        qty = _whole(body.get("qty", 1), "qty", 1, QTY_MAX)
        if copies * qty > most:
            raise PnError(400, "InvalidArgument", "qty times copies is at most %d on this printer" % most)
        expire = body.get("expireAfter")
        expire_after, key, why = submit_options(None if expire is None else str(expire),
                                                headers.get("idempotency-key") or body.get("idempotencyKey"))
        if why:
            raise PnError(400, "InvalidArgument", why)
        if ctype not in CONTENT_TYPES:
            raise PnError(400, "InvalidArgument", "contentType is one of " + ", ".join(CONTENT_TYPES))
        stored = RAW_TYPE if RAW_TYPE in content_types(printer) else content_types(printer)[0]
        extra = {"qty": qty, "source": source[:SOURCE_MAX_CHARS], "submitted_as": ctype}
        auth = None
        if ctype.endswith("_uri"):
            why = fetch.check_uri(content)
            auth, auth_why = fetch.check_auth(body.get("authentication"))
            if why or auth_why:
                raise PnError(400, "InvalidArgument", why or auth_why)
        if ctype == "raw_uri":  # fetched while the printer downloads
            extra.update(source_uri=content, source_auth=json.dumps(auth) if auth else None)
            file = io.BytesIO(b"")
        elif ctype == "raw_base64":
            file = io.BytesIO(_base64(content))
        else:  # a PDF, drawn now for this printer
            data = _base64(content) if ctype == "pdf_base64" else _fetched(content, auth)
            try:
                file, stored = self.api.printable(printer, io.BytesIO(data), "application/pdf")
            except raster.CannotDraw as e:
                raise PnError(400, "InvalidContent", str(e))
        ticket = {"version": "1.0", "print": {"copies": {"copies": copies * qty}}}
        job, made = self.api.submit(email, printer, file, stored, title[:MAX_TITLE], ticket, expire_after, key,
                                    **extra)
        return 201, job["num"], [] if made else [("Idempotent-Replayed", "true")]

    # ---- webhooks (ours: PrintNode has none)
    def list_webhooks(self, email, query, body, headers):
        return 200, [_webhook_json(w) for w in self.api.webhooks.list(email)], []

    def add_webhook(self, email, query, body, headers):
        try:
            webhook_id, secret = self.api.webhooks.add(email, body.get("url"))
        except WebhookError as e:
            raise PnError(400, "InvalidArgument", str(e))
        return 201, {"id": webhook_id, "url": body["url"], "secret": secret}, []

    def remove_webhook(self, email, query, body, headers, webhook_id):
        try:
            self.api.webhooks.remove(email, webhook_id)
        except WebhookError as e:
            raise PnError(404, "NotFound", str(e))
        return 200, [webhook_id], []

    def webhook_deliveries(self, email, query, body, headers, webhook_id):
        try:
            rows = self.api.webhooks.deliveries(email, webhook_id)
        except WebhookError as e:
            raise PnError(404, "NotFound", str(e))
        return 200, [_delivery_json(d) for d in rows], []

    def _printer(self, email, number):
        if number is None:
            raise PnError(400, "MissingParameter", "printerId is required")
        num = _whole(number, "printerId", 1, 10 ** 15)
        printer = self.store.get("printers", owner=email, num=num, deleted=0)
        if printer is None:
            raise PnError(404, "NotFound", "no printer %d in this account" % num)
        return printer


def _delivery_json(d):
    return {"eventId": d["event_id"], "attempt": d["attempt"], "status": d["status"], "error": d["error"],
            "tookMs": d["took_ms"], "createTimestamp": iso(d["created_ms"])}


def _webhook_json(w):
    return {"id": w["id"], "url": w["url"], "createTimestamp": iso(w["created_ms"]),
            "failedAttempts": w["attempts"], "nextAttempt": iso(w["next_ms"]) if w["attempts"] else None,
            "lastDelivery": _delivery_json(w["last"]) if w["last"] else None}


def _base64(content):
    try:
        data = base64.b64decode("".join(content.split()), validate=True)
    except (binascii.Error, ValueError):
        raise PnError(400, "InvalidContent", "content is not valid base64")
    if not data:
        raise PnError(400, "InvalidContent", "content is empty")
    return data


def _fetched(uri, auth):
    """A pdf_uri's file, fetched at submit (it is drawn once, then kept as the printer's data)."""
    try:
        return fetch.read_all(uri, auth, raster.SOURCE_MAX)
    except fetch.FetchFailed as e:
        raise PnError(400, "InvalidArgument", "the pdf_uri could not be fetched: %s" % e)


def state_json(e, job, first_ms, firmware):
    """One state of a job's PrintNode history; clientVersion on the states its printer reported."""
    by_printer = e["what"] not in ("QUEUED", "SENT") and not (
        e["what"] == "ABORTED" and e["cause"] in ("CANCELLED", "EXPIRED", "PRINTER_DELETED"))
    return {"printJobId": job["num"], "state": printnode_state(e["what"], e["cause"]),
            "message": event_message(e, job), "data": event_data(e, job),
            "clientVersion": firmware if by_printer else None,
            "createTimestamp": iso(e["created_ms"]), "age": e["created_ms"] - first_ms}


def event_message(e, job):
    """A state's message: why it stopped or failed, what a finished job printed."""
    if e["what"] == "DONE":
        copies = status.copies(job["ticket"]) // max(job["qty"], 1)
        return "printed %d pages (qty %d, %d copies each)" % (e["pages"] or 0, job["qty"], copies)
    if e["what"] == "STOPPED":
        return "stopped: " + (status.cause_words(e["cause"]) or "waiting")
    if e["what"] == "SENT":
        return "handed to the printer"
    return status.cause_words(e["cause"]) or None


def event_data(e, job):
    if e["what"] != "DONE":
        return None
    return {"pagesPrinted": e["pages"] or 0, "qty": job["qty"],
            "copies": status.copies(job["ticket"]) // max(job["qty"], 1)}


def copies_max(printer):
    """The most copies the printer's CDD says it prints (1 without a copies capability)."""
    try:
        return int(json.loads(printer["capabilities"])["printer"]["copies"]["max"])
    except (ValueError, KeyError, TypeError):
        return 1


def capabilities(printer):
    """PrintNode's capabilities object from the printer's CDD, plus the raw content types."""
    try:
        cdd = json.loads(printer["capabilities"])["printer"]
    except (ValueError, KeyError, TypeError):
        cdd = {}
    dpis = ["%sx%s" % (o.get("horizontal_dpi"), o.get("vertical_dpi")) for o in cdd.get("dpi", {}).get("option", [])]
    papers = {}
    for o in cdd.get("media_size", {}).get("option", []):
        name = o.get("custom_display_name") or o.get("name") or "media"
        papers[name] = [_tenth_mm(o.get("width_microns")), _tenth_mm(o.get("height_microns"))]
    return {"bins": [], "collate": False, "color": False, "copies": copies_max(printer), "dpis": dpis,
            "duplex": False, "extent": [], "medias": [], "nup": [], "papers": papers, "printrate": None,
            "supports_custom_paper_size": False,
            "raw_content_types": [t for t in content_types(printer) if t]}


def _tenth_mm(microns):
    return microns // 100 if isinstance(microns, int) else None
