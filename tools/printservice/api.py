"""The GCP 2.0 interfaces of the print service, independent of the HTTP server.

Each handler takes a Request and returns a Reply. API errors are HTTP 200 with
success:false and an errorCode (reference §1.1); a missing or bad access token is
HTTP 403. Numbers that GCP sent as strings are sent as strings here too."""
import base64
import binascii
import io
import json
import re
import urllib.parse

from tools.printservice import fetch, raster, status
from tools.printservice.accounts import Accounts
from tools.printservice.push import NoPush
from tools.printservice.store import TERMINAL, Conflict, new_claim_code, new_id, new_secret, normal_claim_code, now_ms
from tools.printservice.webhooks import Webhooks

ERR_MISSING = 2
ERR_XSRF = 9
ERR_NO_JOBS = 413
ERR_NOT_CLAIMED = 502
ERR_NO_CODE = 505
ERR_TOKEN_EXPIRED = 506
ERR_UNKNOWN_PRINTER = 1001
ERR_UNKNOWN_JOB = 1002
ERR_JOB_FINISHED = 1003
ERR_NOT_AUTHORIZED = 1004
ERR_UNSUPPORTED_TYPE = 1005

DEVICE_STATES = ("IN_PROGRESS", "STOPPED", "DONE", "ABORTED")
CAUSES = {
    "user_action_cause": ("action_code", ("CANCELLED", "PAUSED", "OTHER")),
    "device_state_cause": ("error_code", ("INPUT_TRAY", "MARKER", "MEDIA_PATH", "MEDIA_SIZE",
                                          "MEDIA_TYPE", "OTHER")),
    "device_action_cause": ("error_code", ("DOWNLOAD_FAILURE", "INVALID_TICKET", "PRINT_FAILURE",
                                           "OTHER")),
}
# [P] /fetch hands out at most this many QUEUED jobs, oldest first, so a printer's reply
# stays small; the rest come with the next fetch, which the agent makes at once.
FETCH_LIMIT = 8
MAX_TITLE = 200
MAX_JSON_DEPTH = 32  # capabilities, states and tickets nest a few levels; a bomb nests hundreds
MAX_CAPABILITIES = 256 * 1024
RANGE_DIGITS = 15  # a byte offset beyond this is no file we hold
# Limits on anonymous and guessing traffic: (hits, window ms). Counted in the database.
REGISTER_LIMIT = (30, 60000)  # registrations per client address
UNCLAIMED_MAX = 2000  # registrations waiting to be claimed, over all clients
CLAIM_FAILURE_LIMIT = (10, 60000)  # wrong claim codes per account
CLAIM_CODE_LIMIT = (5, 60000)  # claim attempts on one code
ACCESS_PRECISION_MS = 10000  # a printer's last contact is kept this precisely
ANONYMOUS = {"register": "register", "getauthcode": "getauthcode"}
# The printer-side calls that write need an XSRF token or the proxy header (reference:
# /register, /update, /control, /delete). A call carrying an owner's OAuth token or API key
# needs none: no browser sends those by itself, so there is no cross-site request to forge.
XSRF_INTERFACES = ("register", "update", "control", "delete")
JOB_SORTS = {"CREATE_TIME": ("num", False), "CREATE_TIME_DESC": ("num", True),
             "STATUS": ("state_type", False), "STATUS_DESC": ("state_type", True),
             "TITLE": ("title", False), "TITLE_DESC": ("title", True)}
JOBS_LIMIT_MAX = 1000
EXPIRE_DEFAULT_S = 14 * 24 * 3600  # a job not printed in 14 days is not printed (PrintNode's default)
EXPIRE_MAX_S = 366 * 24 * 3600
IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000  # a retried submit with the same key makes no new job
IDEMPOTENCY_KEY_MAX = 255
DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)?(?:;[\w-]+=[^;,]*)*(;base64)?,(.*)", re.DOTALL | re.ASCII)
RAW_TYPE = "application/vnd.cups-raw"


def byte_range(header, length):
    """The start offset a single "bytes=N-" range asks for; None to send the whole body
    (no header, or a form we do not serve); "unsatisfiable" when N is past the end."""
    m = re.fullmatch(r"bytes=(\d{1,%d})-(\d{0,%d})" % (RANGE_DIGITS, RANGE_DIGITS), (header or "").strip(),
                     re.ASCII)
    if not m:
        return None
    if m.group(2) and int(m.group(2)) != length - 1:
        return None  # only ranges that run to the end: all a resuming client asks for
    start = int(m.group(1))
    return "unsatisfiable" if start >= length else start


class BrokenStream(Exception):
    """A streamed reply's source failed part way: the connection is cut, so the client
    knows its body is short even without a Content-Length."""


class Reply:
    def __init__(self, status=200, body=b"", content_type="application/json", headers=(),
                 stream=None, length=None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = list(headers)
        self.stream = stream  # for large bodies: a callable giving an iterator of byte chunks,
        self.length = length  # and their length (None: not known, sent chunked)
        self.close = False  # the connection ends after this reply


class Request:
    def __init__(self, method, interface, params, files, headers, client=None, principal=None):
        self.client = client  # the client's address, for rate limits
        self.method = method
        self.interface = interface
        self.params = params  # name -> [str]
        self.files = files  # name -> (binary file, content_type)
        self.headers = headers
        self.principal = principal  # ("printer", id) | ("user", email); found once, by whoever asks first

    def get(self, name, default=None):
        v = self.params.get(name)
        return v[0] if v else default

    def value(self, name):
        """A parameter from the query, the form, or a multipart part (as text)."""
        v = self.get(name)
        if v is None and name in self.files:
            f = self.files[name][0]
            f.seek(0)
            v = f.read().decode("utf-8", "replace")
        return v


def envelope(**fields):
    out = {"success": True, "request": {"time": "0"}, "xsrf_token": "simulated"}
    out.update(fields)
    return Reply(body=json.dumps(out).encode())


def failure(code, message):
    return Reply(body=json.dumps({"success": False, "errorCode": code, "message": message,
                                  "request": {"time": "0"}}).encode())


def forbidden(message):
    return Reply(status=403, body=json.dumps({"success": False, "message": message}).encode())


def oauth_error(status, error, description):
    return Reply(status=status, body=json.dumps({"error": error,
                                                 "error_description": description}).encode())


class TooDeep(ValueError):
    pass


def json_depth_ok(text, limit=MAX_JSON_DEPTH):
    """False when brackets outside strings nest deeper than limit: checked before parsing."""
    depth = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > limit:
                return False
        elif c in "]}":
            depth -= 1
    return True


def loads_limited(text):
    """json.loads of a client's text, refused (TooDeep) when it nests past MAX_JSON_DEPTH."""
    if not json_depth_ok(text):
        raise TooDeep("JSON nested deeper than %d levels" % MAX_JSON_DEPTH)
    return json.loads(text)


def _json_param(req, name):
    raw = req.value(name)
    if raw is None:
        return None
    return loads_limited(raw)


def too_deep():
    return Reply(status=400, body=json.dumps({"success": False, "errorCode": ERR_MISSING,
                                              "message": "JSON nested deeper than %d levels; nothing stored."
                                              % MAX_JSON_DEPTH}).encode())


def content_types(printer):
    try:
        cdd = json.loads(printer["capabilities"])
        return [c.get("content_type") for c in cdd["printer"]["supported_content_type"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []


def check_diff(diff):
    """None if a device's Print Job State Diff is acceptable (§5.5), else why not."""
    if not isinstance(diff, dict):
        return "semantic_state_diff is not an object"
    state = diff.get("state")
    if state is not None:
        if not isinstance(state, dict) or state.get("type") not in DEVICE_STATES:
            return "state.type must be one of " + ", ".join(DEVICE_STATES)
        if "service_action_cause" in state:
            return "service_action_cause is set by the service only"
        causes = [k for k in state if k.endswith("_cause")]
        needs = state["type"] in ("STOPPED", "ABORTED")
        if needs != (len(causes) == 1):
            return "STOPPED and ABORTED need exactly one cause; other states none"
        for k in causes:
            if k not in CAUSES:
                return "unknown cause " + k
            field, values = CAUSES[k]
            if not isinstance(state[k], dict) or state[k].get(field) not in values:
                return "%s.%s must be one of %s" % (k, field, ", ".join(values))
    pages = diff.get("pages_printed")
    if pages is not None:
        try:
            if int(pages) < 0:
                return "pages_printed is negative"
        except (TypeError, ValueError):
            return "pages_printed is not a number"
    return None


ALLOWED = {  # from -> states a device may move a job to (§5.5)
    "QUEUED": ("IN_PROGRESS", "DONE", "ABORTED"),
    "IN_PROGRESS": ("IN_PROGRESS", "STOPPED", "DONE", "ABORTED"),
    "STOPPED": ("IN_PROGRESS", "STOPPED", "DONE", "ABORTED"),
}


class Api:
    def __init__(self, store, base_url, client_id, client_secret,
                 token_duration_s=899, access_ttl_s=3600, log=print, push=None):
        self.store = store
        self.accounts = Accounts(store)
        self.webhooks = Webhooks(store, log)
        self.push = push or NoPush()
        self.base = base_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_duration_s = token_duration_s
        self.access_ttl_s = access_ttl_s
        self.log = log

    # ---- authentication
    def knows(self, interface):
        return interface in ANONYMOUS or interface == "token" or hasattr(self, "i_" + interface)

    def principal(self, headers):
        """Who the Authorization header names: ("printer", id), ("user", email) or None."""
        auth = headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not token.strip():
            return None
        token = token.strip().strip('"')
        with self.store.tx(readonly=True) as s:
            row = s.get("tokens", token=token, kind="access")
            if row and not row["revoked"] and row["expires_ms"] > now_ms():
                return ("printer", row["printer_id"]) if s.printer(row["printer_id"]) else None
        email = self.accounts.for_key(token)
        return ("user", email) if email else None

    def _may_use_printer(self, req, printer):
        kind, who = req.principal
        return (kind == "printer" and who == printer["id"]) or (kind == "user" and who == printer["owner"])

    def _printer_for(self, req, printer_id):
        """(printer row, None) or (None, failure reply)."""
        if not printer_id:
            return None, failure(ERR_MISSING, "Missing required parameters.")
        printer = self.store.printer(printer_id)
        if printer is None:
            return None, failure(ERR_UNKNOWN_PRINTER, "Unknown printer.")
        if not self._may_use_printer(req, printer):
            return None, failure(ERR_NOT_AUTHORIZED, "User is not authorized.")
        return printer, None

    # ---- dispatch
    def handle(self, req):
        if req.interface in XSRF_INTERFACES and not (
                "X-CloudPrint-Proxy" in req.headers or req.get("xsrf") or req.get("xsrf_token")):
            if req.interface == "register" or self._caller(req)[0] != "user":
                return failure(ERR_XSRF, "XSRF token validation failed.")
        if req.interface in ANONYMOUS:
            return getattr(self, ANONYMOUS[req.interface])(req)
        if req.interface == "token":
            return self.token(req)
        handler = getattr(self, "i_" + req.interface, None)
        if handler is None:
            return Reply(status=404, body=b"no such interface", content_type="text/plain")
        if self._caller(req)[0] is None:
            return forbidden("Missing or invalid access token.")
        return handler(req)

    def _caller(self, req):
        """The request's principal, looked up once; (None,) when it names nobody."""
        if req.principal is None:
            req.principal = self.principal(req.headers)
        return req.principal or (None,)

    def revoke_tokens(self, printer_id):
        """The owner revoked the printer's grant: its refresh token answers invalid_grant."""
        self.store.update("tokens", {"printer_id": printer_id}, revoked=1)

    # ---- anonymous registration (§3)
    def register(self, req):
        name = req.value("printer") or req.value("name")
        proxy = req.value("proxy")
        caps = req.value("capabilities")
        if not name or not proxy or not caps:
            return failure(ERR_MISSING, "Missing required parameters.")
        if len(caps) > MAX_CAPABILITIES:
            return Reply(status=413, body=json.dumps({"success": False, "errorCode": ERR_MISSING, "message":
                         "capabilities over %d bytes" % MAX_CAPABILITIES}).encode())
        if not self.store.allow("register:%s" % req.client, *REGISTER_LIMIT):
            return self._too_many_registrations()
        self.purge_expired()  # after the limit: a flood must not buy a purge per request
        if self.store.count("registrations", claimed_by=None) >= UNCLAIMED_MAX:
            return self._too_many_registrations()
        legacy = is_legacy(req, caps)
        try:
            cdd = legacy_cdd(req.value("content_types")) if legacy else loads_limited(caps)
            state = (legacy_state(req.value("status")) if legacy else
                     loads_limited(req.value("semantic_state") or '{"version":"1.0","printer":{"state":"IDLE"}}'))
            local = loads_limited(req.value("local_settings") or '{"current":{}}')
            types = [c["content_type"] for c in cdd["printer"]["supported_content_type"]]
        except TooDeep:
            return too_deep()
        except (ValueError, KeyError, TypeError):
            return failure(ERR_MISSING, "capabilities, semantic_state or local_settings is not valid.")
        if not types:
            return failure(ERR_MISSING, "capabilities lists no supported_content_type.")
        pid, t, secret = new_id(), now_ms(), new_secret(24)
        with self.store.tx() as s:
            while True:  # 50 random bits; a code still in use is drawn again, never reused
                token = new_claim_code()
                if s.get("registrations", token=token) is None:
                    break
            s.add_printer(id=pid, proxy=proxy, name=name,
                     default_display_name=req.value("default_display_name") or name,
                     uuid=req.value("uuid"), manufacturer=req.value("manufacturer"), model=req.value("model"),
                     firmware=req.value("firmware"), gcp_version=req.value("gcp_version") or "1.0",
                     setup_url=req.value("setup_url"), support_url=req.value("support_url"),
                     update_url=req.value("update_url"), capabilities=json.dumps(cdd),
                     caps_hash=req.value("capsHash") or "", semantic_state=json.dumps(state),
                     local_settings=json.dumps(local), owner=None, created_ms=t, updated_ms=t, accessed_ms=t,
                     legacy_capabilities=caps if legacy else None,
                     legacy_defaults=req.value("defaults") if legacy else None)
            s.insert("registrations", token=token, printer_id=pid, expires_ms=t + self.token_duration_s * 1000,
                     poll_secret=secret)
        self.log("registered printer %s (%s), claim code issued" % (pid, name))
        fields = {
            "printers": [self.printer_json(self.store.printer(pid))],
            "registration_token": token,
            "token_duration": str(self.token_duration_s),
            "invite_url": self.base + "/claim",
            "complete_invite_url": self.base + "/claim?token=" + token,
            "invite_page_url": self.base + "/claim?token=" + token,
            "automated_invite_url": self.base + "/confirm?token=" + token,
            "oauth_scope": "https://www.googleapis.com/auth/cloudprint",
            # the secret: only the printer that registered may collect its code
            "polling_url": self.base + "/getauthcode?printerid=" + pid + "&secret=" + secret
                           + "&oauth_client_id=",
        }
        return envelope(**fields)

    def _too_many_registrations(self):
        return Reply(status=429, body=json.dumps({"success": False, "errorCode": ERR_MISSING, "message":
                     "Too many registrations; try again later."}).encode(),
                     headers=[("Retry-After", str(REGISTER_LIMIT[1] // 1000))])

    def purge_expired(self):
        """Registrations nobody claimed in time go, with their printers (reference §3.3)."""
        self.store.purge_expired(now_ms())

    def claim(self, token, email):
        """email claims the printer of a claim code: (its printer id, None), else (None, why)."""
        token = normal_claim_code(token)
        if self._claims_barred(email):
            return None, "Too many wrong claim codes; wait a minute."
        if not self.store.allow("claim-code:" + token, *CLAIM_CODE_LIMIT):
            return None, "Too many attempts on this code; wait a minute."
        reg = self._registration(token, email)
        if reg is None:
            return None, "Unknown claim code."
        if reg["expires_ms"] < now_ms():
            return None, "This claim code has expired; the printer will print a new one."
        with self.store.tx() as s:
            if not s.claim_registration(reg["token"], email):
                return None, "This printer was claimed by someone else."
            s.update("printers", {"id": reg["printer_id"]}, owner=email, updated_ms=now_ms())
        self.log("printer %s claimed by %s" % (reg["printer_id"], email))
        return reg["printer_id"], None

    def unclaimed_printer(self, token, email):
        """The printer a live, unclaimed claim code names, or None. A look counts as a
        claim attempt: an unknown code is a wrong one, so codes cannot be probed freely."""
        if self._claims_barred(email):
            return None
        reg = self._registration(normal_claim_code(token), email)
        if reg is None or reg["claimed_by"] or reg["expires_ms"] < now_ms():
            return None
        return self.store.printer(reg["printer_id"])

    def _claims_barred(self, email):
        return self.store.hits("claim-failures:" + email, CLAIM_FAILURE_LIMIT[1]) >= CLAIM_FAILURE_LIMIT[0]

    def _registration(self, token, email):
        """The registration of a claim code; an unknown code counts as the account's failure."""
        reg = self.store.get("registrations", token=token)
        if reg is None:
            self.store.allow("claim-failures:" + email, *CLAIM_FAILURE_LIMIT)
        return reg

    def getauthcode(self, req):
        printer_id, client_id = req.get("printerid"), req.get("oauth_client_id")
        if not printer_id or not client_id:
            return failure(ERR_MISSING, "Missing required parameters.")
        reg = self.store.get("registrations", printer_id=printer_id)
        if reg is None or not reg["poll_secret"] or req.get("secret") != reg["poll_secret"]:
            return failure(ERR_NO_CODE, "Unable to get the authorization code.")
        if reg["expires_ms"] < now_ms() and not reg["claimed_by"]:
            with self.store.tx() as s:  # the pending printer is discarded (§3.3)
                s.delete("registrations", token=reg["token"])
                s.delete("printers", id=printer_id, owner=None)
            return failure(ERR_TOKEN_EXPIRED, "Registration token expired.")
        if not reg["claimed_by"]:
            return failure(ERR_NOT_CLAIMED, "Token not registered yet.")
        if client_id != self.client_id:
            return failure(ERR_NO_CODE, "Unable to get the authorization code.")
        code = "4/" + new_secret()
        with self.store.tx() as s:
            # handed out once: a second poll, even with the secret, gets nothing
            if s.update("registrations", {"token": reg["token"], "code_given": 0},
                        auth_code=code, code_given=1) != 1:
                return failure(ERR_NO_CODE, "The authorization code was already handed out.")
            s.insert("tokens", token=code, kind="code", printer_id=printer_id, client_id=client_id,
                     expires_ms=now_ms() + 600000)
        return envelope(authorization_code=code,
                        xmpp_jid=printer_id.replace("-", "") + "@cloudprint.simulated",
                        user_email=reg["claimed_by"],
                        confirmation_page_url=self.base + "/claim")

    def confirm(self, req):
        token = req.value("token")
        err = self.claim(token, req.principal[1])[1] if req.principal[0] == "user" else "Not a user."
        return failure(ERR_NOT_AUTHORIZED, err) if err else envelope(message="Printer claimed.")

    # ---- OAuth token endpoint (§3.5, §3.6)
    def token(self, req):
        if req.get("client_id") != self.client_id or req.get("client_secret") != self.client_secret:
            return oauth_error(401, "invalid_client", "Unknown client or wrong secret.")
        grant = req.get("grant_type")
        if grant == "authorization_code":
            if req.get("redirect_uri") not in ("oob", "urn:ietf:wg:oauth:2.0:oob"):
                return oauth_error(400, "invalid_request", "redirect_uri must be oob.")
            with self.store.tx() as s:
                row = s.get("tokens", token=req.get("code") or "", kind="code")
                if (row is None or row["used"] or row["expires_ms"] < now_ms()
                        or row["client_id"] != self.client_id or not s.printer(row["printer_id"])):
                    return oauth_error(400, "invalid_grant", "Code is unknown, used or expired.")
                if s.update("tokens", {"token": row["token"], "used": 0}, used=1) != 1:
                    return oauth_error(400, "invalid_grant", "Code is unknown, used or expired.")
                refresh = "1/" + new_secret()
                s.insert("tokens", token=refresh, kind="refresh", printer_id=row["printer_id"],
                         client_id=self.client_id)
                access = self._issue_access(s, row["printer_id"])
                broker = self._broker_credential(s, row["printer_id"])
            return Reply(body=json.dumps({"access_token": access, "token_type": "Bearer",
                                          "expires_in": self.access_ttl_s,
                                          "refresh_token": refresh,
                                          "mqtt_password": broker}).encode())
        if grant == "refresh_token":
            row = self.store.get("tokens", token=req.get("refresh_token") or "", kind="refresh")
            if row is None or row["revoked"] or not self.store.printer(row["printer_id"]):
                return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
            with self.store.tx() as s:
                access = self._issue_access(s, row["printer_id"])
                broker = self._broker_credential(s, row["printer_id"])
            return Reply(body=json.dumps({"access_token": access, "token_type": "Bearer",
                                          "expires_in": self.access_ttl_s,
                                          "mqtt_password": broker}).encode())
        return oauth_error(400, "unsupported_grant_type", "Unsupported grant_type.")

    def _broker_credential(self, s, printer_id):
        """The printer's push broker password (an extra field of the token reply, RFC 6749
        §5.1): made once per printer, revoked with it, never an API token (mqtt_access.py)."""
        row = s.get("tokens", kind="mqtt", printer_id=printer_id, revoked=0)
        if row is not None:
            return row["token"]
        password = "mq." + new_secret()
        s.insert("tokens", token=password, kind="mqtt", printer_id=printer_id, client_id=self.client_id)
        self.push.grant(printer_id, password)
        return password

    def _issue_access(self, s, printer_id):
        access = "ya29." + new_secret()
        s.insert("tokens", token=access, kind="access", printer_id=printer_id, client_id=self.client_id,
                 expires_ms=now_ms() + self.access_ttl_s * 1000)
        return access

    # ---- printers (§4)
    def printer_json(self, p, extras=()):
        out = {"id": p["id"], "name": p["name"], "defaultDisplayName": p["default_display_name"],
               "proxy": p["proxy"], "type": "GOOGLE", "gcpVersion": p["gcp_version"],
               "uuid": p["uuid"], "manufacturer": p["manufacturer"], "model": p["model"],
               "firmware": p["firmware"], "setupUrl": p["setup_url"], "supportUrl": p["support_url"],
               "updateUrl": p["update_url"], "ownerId": p["owner"] or "",
               "capabilities": json.loads(p["capabilities"]), "capsHash": p["caps_hash"],
               "local_settings": json.loads(p["local_settings"]), "tags": [],
               "notificationChannel": "MQTT", "isTosAccepted": False,
               "createTime": str(p["created_ms"]), "updateTime": str(p["updated_ms"]),
               "accessTime": str(p["accessed_ms"])}
        if p["legacy_capabilities"] is not None:  # a GCP 1.0 printer's own description, as it gave it
            out["legacyCapabilities"] = p["legacy_capabilities"]
            out["legacyDefaults"] = p["legacy_defaults"] or ""
        online = status.online(p, now_ms())[0]
        if "semanticState" in extras:
            state = json.loads(p["semantic_state"])
            state["cloud_connection_state"] = "ONLINE" if online else "OFFLINE"
            out["semanticState"] = state
        if "queuedJobsCount" in extras:
            out["queuedJobsCount"] = str(self.store.count("jobs", printer_id=p["id"], state_type="QUEUED"))
        if "connectionStatus" in extras:
            out["connectionStatus"] = "ONLINE" if online else "OFFLINE"
        return out

    def i_confirm(self, req):
        return self.confirm(req)

    def i_list(self, req):
        kind, who = req.principal
        if kind == "printer":
            proxy = req.get("proxy")
            if not proxy:
                return failure(ERR_MISSING, "Missing required parameters.")
            # a printer's token sees its own printer only, whatever proxy it names
            rows = [p for p in self.store.all("printers", id=who, proxy=proxy, deleted=0) if p["owner"]]
        else:
            rows = self.store.all("printers", owner=who, deleted=0)
        return envelope(printers=[self.printer_json(r) for r in rows])

    def i_printer(self, req):
        printer, err = self._printer_for(req, req.get("printerid"))
        if err:
            return err
        extras = (req.get("extra_fields") or "connectionStatus,semanticState,queuedJobsCount").split(",")
        return envelope(printers=[self.printer_json(printer, extras)])

    def i_update(self, req):
        printer, err = self._printer_for(req, req.value("printerid"))
        if err:
            return err
        sets = {}
        try:
            for param, column in (("printer", "name"), ("name", "name"),
                                  ("default_display_name", "default_display_name"),
                                  ("firmware", "firmware"), ("setup_url", "setup_url"),
                                  ("support_url", "support_url"), ("update_url", "update_url"),
                                  ("gcp_version", "gcp_version"), ("uuid", "uuid"),
                                  ("manufacturer", "manufacturer"), ("model", "model")):
                if req.value(param) is not None:
                    sets[column] = req.value(param)
            caps = req.value("capabilities")
            if caps is not None and is_legacy(req, caps):
                if len(caps) > MAX_CAPABILITIES:
                    return failure(ERR_MISSING, "capabilities over %d bytes" % MAX_CAPABILITIES)
                sets["legacy_capabilities"] = caps
                sets["caps_hash"] = req.value("capsHash") or ""
            elif caps is not None:
                sets["capabilities"] = json.dumps(_json_param(req, "capabilities"))
                sets["caps_hash"] = req.value("capsHash") or ""
                sets["legacy_capabilities"] = sets["legacy_defaults"] = None
            if req.value("defaults") is not None:
                sets["legacy_defaults"] = req.value("defaults")
            legacy = printer["legacy_capabilities"] is not None or "legacy_capabilities" in sets
            if legacy and req.value("content_types") is not None:  # deprecated; what a 1.0 connector says
                sets["capabilities"] = json.dumps(legacy_cdd(req.value("content_types")))
            if req.value("status") is not None and req.value("semantic_state") is None:
                sets["semantic_state"] = json.dumps(legacy_state(req.value("status")))
            full, diff = _json_param(req, "semantic_state"), _json_param(req, "semantic_state_diff")
            if full is not None and diff is not None:
                return failure(ERR_MISSING, "Send semantic_state or semantic_state_diff, not both.")
            if full is not None:
                sets["semantic_state"] = json.dumps(full)
            elif diff is not None:
                state = json.loads(printer["semantic_state"])
                state.update(diff)  # top-level fields replace wholesale (§7)
                sets["semantic_state"] = json.dumps(state)
            local = _json_param(req, "local_settings")
            if local is not None:
                stored = json.loads(printer["local_settings"])
                if isinstance(local, dict) and "current" in local and req.principal[0] == "printer":
                    stored["current"] = local["current"]
                    stored.pop("pending", None)
                    sets["local_settings"] = json.dumps(stored)
                elif isinstance(local, dict) and "pending" in local and req.principal[0] == "user":
                    self.set_pending_settings(printer, local["pending"])
        except TooDeep:
            return too_deep()
        except (ValueError, TypeError, AttributeError):
            return failure(ERR_MISSING, "A JSON parameter is not valid.")
        if sets:
            sets["updated_ms"] = now_ms()
            with self.store.tx() as s:
                s.update("printers", {"id": printer["id"]}, **sets)
                if "semantic_state" in sets:
                    self._printer_event(s, printer, dict(printer, **sets))
        return envelope(message="Printer updated successfully.",
                        printer=self.printer_json(self.store.printer(printer["id"])))

    def set_presence(self, printer_id, presence):
        """The broker's retained status of a printer ("online", or its last will "offline")."""
        self.set_presences([(printer_id, presence)])

    def set_presences(self, changes):
        """Several printers' statuses, [(printer id, presence)], in one transaction (a fleet
        reconnecting after a broker restart sends thousands at once)."""
        with self.store.tx() as s:
            for printer_id, presence in changes:
                before = s.printer(printer_id)
                s.set_presence(printer_id, presence)
                if before is not None:
                    self._printer_event(s, before, s.printer(printer_id))

    def _printer_event(self, s, before, after):
        """A printer.state event for the owner's webhooks when what a person is told of the
        printer (its state, the reasons, whether it is online) changed."""
        now = now_ms()
        told = [(status.printer_state(p["semantic_state"]), status.online(p, now)[0]) for p in (before, after)]
        if after["owner"] and told[0] != told[1]:
            (state, reasons), online = told[1]
            s.emit(after["owner"], "printer.state", {"printer": after["id"], "state": state, "reasons": reasons,
                                                     "connection": "online" if online else "offline"})

    def i_delete(self, req):
        printer, err = self._printer_for(req, req.value("printerid"))
        if err:
            return err
        self.delete_printer(printer["id"])
        return envelope(message="Printer deleted successfully.")

    def delete_printer(self, printer_id):
        cause = {"state": {"type": "ABORTED", "service_action_cause": {"error_code": "PRINTER_DELETED"}}}
        with self.store.tx() as s:
            s.update("printers", {"id": printer_id}, deleted=1, updated_ms=now_ms())
            s.update("tokens", {"printer_id": printer_id}, revoked=1)
            for row in s.all("jobs", printer_id=printer_id):
                if row["state_type"] not in TERMINAL:
                    s.set_job_state(row["id"], dict(cause, version="1.0"))
        self.log("printer %s deleted" % printer_id)
        self.push.deleted(printer_id)

    # ---- jobs (§5)
    def job_json(self, j):
        state = json.loads(j["state"])
        state["delivery_attempts"] = j["delivery_attempts"]
        state["pages_printed"] = j["pages_printed"]
        return {"id": j["id"], "printerid": j["printer_id"], "title": j["title"], "ownerId": j["owner"],
                "status": _legacy_status(state["state"]["type"]), "contentType": j["content_type"],
                "numberOfPages": 1, "createTime": str(j["create_ms"]), "updateTime": str(j["update_ms"]),
                "fileUrl": self.base + "/download?id=" + j["id"],
                "ticketUrl": self.base + "/ticket?jobid=" + j["id"] + "&use_cjt=true",
                "semanticState": state, "tags": [], "errorCode": "", "message": ""}

    def i_fetch(self, req):
        kind, who = req.principal
        printer_id = req.value("printerid")
        if kind != "printer" or who != printer_id:
            return failure(ERR_NO_JOBS, "No print job available on specified printer.")
        now = now_ms()
        with self.store.tx(readonly=True) as s:
            printer = s.printer(printer_id)
            rows = s.all("jobs", order=("num",), printer_id=printer_id, state_type=self.fetchable_states(req))
        if printer is None:  # deleted since its token was checked
            return failure(ERR_NO_JOBS, "No print job available on specified printer.")
        accepted = content_types(printer)
        expired = any(r["expires_ms"] is not None and r["expires_ms"] < now for r in rows)
        rows = [r for r in rows if r["content_type"] in accepted
                and (r["expires_ms"] is None or r["expires_ms"] >= now)][:FETCH_LIMIT]
        if rows or expired or now - printer["accessed_ms"] >= ACCESS_PRECISION_MS:
            # an empty poll writes (and syncs the disk) only when the last contact is stale
            with self.store.tx() as s:
                s.update("printers", {"id": printer_id}, accessed_ms=now)
                if expired:  # never handed out; their owner sees why
                    s.expire_jobs(now, printer_id)
                for r in rows:
                    s.count_delivery(r["id"])
        if not rows:
            return failure(ERR_NO_JOBS, "No print job available on specified printer.")
        jobs = [self.job_json(dict(r, delivery_attempts=r["delivery_attempts"] + 1)) for r in rows]
        return self.fetch_reply(req, jobs)

    def fetchable_states(self, req):
        """The job states /fetch hands out (the test layer widens it to redeliver)."""
        return ("QUEUED",)

    def fetch_reply(self, req, jobs):
        return envelope(jobs=jobs)

    def _job_for(self, req, job_id):
        """(job, its printer (deleted ones too), None) or (None, None, failure reply)."""
        if not job_id:
            return None, None, failure(ERR_MISSING, "Missing required parameters.")
        with self.store.tx(readonly=True) as s:
            job = s.get("jobs", id=job_id)
            printer = job and s.printer(job["printer_id"], include_deleted=True)
        if job is None:
            return None, None, failure(ERR_UNKNOWN_JOB, "Unknown job id.")
        kind, who = req.principal
        if not ((kind == "printer" and who == job["printer_id"])
                or (kind == "user" and (who == job["owner"] or who == printer["owner"]))):
            return None, None, failure(ERR_UNKNOWN_JOB, "Unknown job id.")
        return job, printer, None

    def i_control(self, req):
        job, _, err = self._job_for(req, req.value("jobid"))
        if err:
            return err
        if req.principal[0] != "printer":
            return failure(ERR_NOT_AUTHORIZED, "User is not authorized.")
        raw = req.value("semantic_state_diff")
        if raw is None and req.value("status"):  # legacy 1.0 form
            legacy = {"IN_PROGRESS": {"type": "IN_PROGRESS"}, "DONE": {"type": "DONE"},
                      "ERROR": {"type": "ABORTED", "device_action_cause": {"error_code": "OTHER"}}}
            if req.value("status") not in legacy:
                return failure(ERR_MISSING, "Unknown status.")
            raw = json.dumps({"state": legacy[req.value("status")]})
        if raw is None:
            return failure(ERR_MISSING, "Missing required parameters.")
        try:
            diff = loads_limited(raw)
        except TooDeep:
            return too_deep()
        except ValueError:
            return failure(ERR_MISSING, "semantic_state_diff is not valid JSON.")
        why = check_diff(diff)
        if why:
            return failure(ERR_MISSING, "Invalid semantic_state_diff: " + why)
        with self.store.tx() as s:
            job = s.get("jobs", lock=True, id=job["id"])  # one report at a time moves a job
            state = json.loads(job["state"])
            current = state["state"]["type"]
            new = diff.get("state", state["state"])
            if current in TERMINAL:
                if new == state["state"]:
                    return envelope(message="Job updated successfully.", job=self.job_json(job))
                return failure(ERR_JOB_FINISHED, "Can't modify the finished job.")
            if new["type"] not in ALLOWED.get(current, ()):
                return failure(ERR_MISSING, "Illegal transition %s -> %s." % (current, new["type"]))
            state["state"] = new
            pages = diff.get("pages_printed")
            s.set_job_state(job["id"], state, None if pages is None else int(pages))
            job = s.get("jobs", id=job["id"])
        self.log("job %s: %s -> %s" % (job["id"], current, new["type"]))
        return envelope(message="Job updated successfully.", job=self.job_json(job))

    def i_ticket(self, req):
        job, _, err = self._job_for(req, req.value("jobid"))
        if err:
            return err
        return Reply(body=job["ticket"].encode())

    def i_download(self, req):
        job, printer, err = self._job_for(req, req.value("id"))
        if err:
            return Reply(status=404, body=b"job not found", content_type="text/plain")
        if printer is None or printer["deleted"] or job["content_type"] not in content_types(printer):
            return Reply(status=415, body=b"cannot convert", content_type="text/plain")
        if job["source_uri"]:
            return self._relay(job, req.headers.get("Range"))
        length = job["size"]
        start, status, headers = 0, 200, [("Accept-Ranges", "bytes")]
        wanted = byte_range(req.headers.get("Range"), length)
        if wanted == "unsatisfiable":
            return Reply(status=416, body=b"range not satisfiable", content_type="text/plain",
                         headers=[("Content-Range", "bytes */%d" % length)])
        if wanted is not None:  # resuming a broken download (RFC 9110 section 14)
            start, status = wanted, 206
            headers.append(("Content-Range", "bytes %d-%d/%d" % (start, length - 1, length)))
        job_id = job["id"]
        return Reply(status=status, content_type=job["content_type"],
                     stream=lambda: self.store.job_chunks(job_id, start),
                     length=length - start, headers=headers)

    def _relay(self, job, range_header):
        """A raw_uri job's file, fetched from the app's server as the printer downloads it
        and passed through, never stored. A resumed download asks the server for the rest;
        a server that gives no length is asked for the whole file, which the printer skips
        into (it skips what it has whenever a reply starts at byte 0)."""
        m = re.fullmatch(r"bytes=(\d{1,%d})-" % RANGE_DIGITS, (range_header or "").strip(), re.ASCII)
        start = int(m.group(1)) if m else 0
        auth = json.loads(job["source_auth"]) if job["source_auth"] else None
        try:
            length, chunks = fetch.open_source(job["source_uri"], auth, start)
            if start and length is None:
                chunks.close()
                start = 0
                length, chunks = fetch.open_source(job["source_uri"], auth)
        except fetch.FetchFailed as e:
            self.log("job %s: its source failed: %s" % (job["id"], e))
            return Reply(status=502, body=("the job's source failed: %s" % e).encode(), content_type="text/plain")
        status, headers = 200, []
        if length is not None:
            headers.append(("Accept-Ranges", "bytes"))
        if start:
            status = 206
            headers.append(("Content-Range", "bytes %d-%d/%d" % (start, start + length - 1, start + length)))
        job_id = job["id"]

        def relayed():
            try:
                yield from chunks
            except fetch.FetchFailed as e:
                self.log("job %s: its source failed while the printer downloaded: %s" % (job_id, e))
                raise BrokenStream() from None
        return Reply(status=status, content_type=job["content_type"], stream=relayed, length=length,
                     headers=headers)

    def i_submit(self, req):
        if req.principal[0] != "user":
            return failure(ERR_NOT_AUTHORIZED, "User is not authorized.")
        printer, err = self._printer_for(req, req.value("printerid"))
        if err:
            return err
        ctype = req.value("contentType")
        content = req.files.get("content", (None,))[0]  # a file, read a chunk at a time when stored
        if content is None and req.get("content") is not None:
            content = io.BytesIO(req.get("content").encode())
        if not ctype or content is None:
            return failure(ERR_MISSING, "Missing required parameters.")
        submitted_as = ctype
        try:
            if ctype in ("dataUrl", "url"):  # the file is in the text: a data URL, or a URL to fetch
                content, ctype = self._file_of(printer, ctype, _text(content))
            content, stored_type = self.printable(printer, content, ctype)
        except (raster.CannotDraw, fetch.FetchFailed) as e:
            return failure(ERR_UNSUPPORTED_TYPE, str(e))
        try:
            ticket = loads_limited(req.value("ticket") or '{"version":"1.0","print":{}}')
        except TooDeep:
            return too_deep()
        except ValueError:
            return failure(ERR_MISSING, "ticket is not valid JSON.")
        expire_after, key, why = submit_options(req.value("expireAfter"),
                                                req.headers.get("Idempotency-Key") or req.value("idempotencyKey"))
        if why:
            return failure(ERR_MISSING, why)
        job, made = self.submit(req.principal[1], printer, content, stored_type, req.value("title"), ticket,
                                expire_after, key, source="cloudprint", submitted_as=submitted_as)
        return envelope(message="Print job added." if made else "Print job already added with this idempotency key.",
                        job=self.job_json(job))

    def _file_of(self, printer, ctype, text):
        """(binary file, its content type) of a dataUrl (data:<type>;base64,<data>, as the GCP
        samples send a PDF) or of a url the service fetches now; a file whose type its bytes
        do not tell is taken to be in the printer's own language."""
        if ctype == "dataUrl":
            m = DATA_URL.fullmatch(text.strip())
            if not m:
                raise raster.CannotDraw("content is not a data URL (data:<type>;base64,<data>).")
            try:
                data = base64.b64decode(m.group(3), validate=True) if m.group(2) else \
                    urllib.parse.unquote_to_bytes(m.group(3))
            except (binascii.Error, ValueError):
                raise raster.CannotDraw("the data URL's base64 is not valid.")
            kind = m.group(1) or "application/octet-stream"
        else:
            why = fetch.check_uri(text.strip())
            if why:
                raise raster.CannotDraw("content: " + why)
            data, kind = fetch.read_all(text.strip(), most=raster.SOURCE_MAX), None
        if kind not in content_types(printer):
            kind = raster.sniff(data[:16]) or next((t for t in content_types(printer) if t != RAW_TYPE), kind)
        return io.BytesIO(data), kind

    def printable(self, printer, content, ctype):
        """(binary file, content type) of a job as the printer takes it: as given when it
        prints ctype; drawn to its dots when ctype is a PDF or an image and it is a label or
        receipt printer (raster.py); raster.CannotDraw saying why when neither."""
        types = content_types(printer)
        if ctype in types:
            return content, ctype
        language = raster.printer_language(types)
        if ctype not in raster.DRAWABLE or language is None:
            raise raster.CannotDraw("Printer does not accept %s." % ctype)
        content.seek(0)
        data = content.read(raster.SOURCE_MAX + 1)
        return io.BytesIO(raster.draw(data, ctype, language, printer["capabilities"])), language

    def submit(self, email, printer, content, ctype, title, ticket, expire_after_s=EXPIRE_DEFAULT_S,
               idempotency_key=None, **extra):
        """A new QUEUED job from a binary file (read a chunk at a time): (its row, True). With
        an idempotency key this account used in the last 24 h: (that submit's job, False).
        extra: more of the job's columns (qty, source, submitted_as, source_uri, source_auth)."""
        title = (title or "untitled")[:MAX_TITLE]
        job_id, t = new_id(), now_ms()
        state = {"version": "1.0", "state": {"type": "QUEUED"}}
        try:
            with self.store.tx() as s:
                if idempotency_key is not None:
                    first = s.get("idempotency_keys", email=email, key=idempotency_key)
                    if first is not None and first["created_ms"] >= t - IDEMPOTENCY_WINDOW_MS:
                        job = s.get("jobs", id=first["job_id"])
                        if job is not None:
                            return job, False
                    if first is not None:  # an old use of the key, or its job deleted since
                        s.delete("idempotency_keys", email=email, key=idempotency_key)
                    s.insert("idempotency_keys", email=email, key=idempotency_key, job_id=job_id, created_ms=t)
                size = s.add_job(content, id=job_id, printer_id=printer["id"], title=title, owner=email,
                                 content_type=ctype, ticket=json.dumps(ticket), state=json.dumps(state),
                                 state_type="QUEUED", create_ms=t, update_ms=t,
                                 expires_ms=t + expire_after_s * 1000, **extra)
        except Conflict:  # the same key in a submit running beside this one
            if idempotency_key is None:
                raise
            first = self.store.get("idempotency_keys", email=email, key=idempotency_key)
            if first is None:
                raise
            return self.store.get("jobs", id=first["job_id"]), False
        self.log("job %s submitted to %s (%d bytes)" % (job_id, printer["id"], size))
        self.push.new_job(printer["id"])
        return self.store.get("jobs", id=job_id), True

    def maintain(self):
        """What no request does in time: queued jobs past their expiry are marked expired
        (so their owner sees it while the printer is away), stale sessions and idempotency
        keys go. Safe to run on every replica at once."""
        now = now_ms()
        with self.store.tx() as s:
            expired = s.expire_jobs(now)
            s.purge_sessions(now)
            s.purge_rate(now)
            s.purge_idempotency_keys(now - IDEMPOTENCY_WINDOW_MS)
        self.webhooks.maintain()
        if expired:
            self.log("%d queued jobs expired" % len(expired))

    def cancel(self, job_id):
        """A job not yet started is ABORTED as cancelled; False when it had started or ended.
        A printer that fetched it meanwhile is refused its IN_PROGRESS and drops it."""
        cause = {"version": "1.0", "state": {"type": "ABORTED", "user_action_cause": {"action_code": "CANCELLED"}}}
        with self.store.tx() as s:
            job = s.get("jobs", lock=True, id=job_id)
            if job is None or job["state_type"] != "QUEUED":
                return False
            s.set_job_state(job_id, cause)
        self.log("job %s cancelled" % job_id)
        return True

    def set_pending_settings(self, printer, pending):
        """The owner changes the printer's local settings: it takes them on its next contact
        (told at once through push)."""
        stored = json.loads(printer["local_settings"])
        stored["pending"] = pending
        self.store.update("printers", {"id": printer["id"]}, local_settings=json.dumps(stored), updated_ms=now_ms())
        self.push.settings_changed(printer["id"])

    def i_jobs(self, req):
        """Jobs, filtered by printerid, owner, status and q (in the title), sorted by
        sortorder, a page of them by offset and limit (GCP /jobs); range tells the total."""
        kind, who = req.principal
        if kind == "printer":
            rows = self.store.all("jobs", order=("num",), printer_id=who)
        else:
            rows = self.store.jobs_visible_to(who)
        wanted = {"printer_id": req.get("printerid"), "owner": req.get("owner"), "state_type": req.get("status")}
        rows = [r for r in rows if all(v is None or r[k] == v for k, v in wanted.items())]
        q = (req.get("q") or "").lower()
        if q:
            rows = [r for r in rows if q in r["title"].lower()]
        sort = JOB_SORTS.get(req.get("sortorder") or "CREATE_TIME")
        if sort is None:
            return failure(ERR_MISSING, "sortorder is one of %s." % ", ".join(JOB_SORTS))
        rows.sort(key=lambda r: (r[sort[0]], r["num"]), reverse=sort[1])
        try:
            offset = int(req.get("offset") or 0)
            limit = int(req.get("limit") or JOBS_LIMIT_MAX)
        except ValueError:
            return failure(ERR_MISSING, "offset and limit are whole numbers.")
        offset, limit = max(0, offset), min(max(0, limit), JOBS_LIMIT_MAX)
        page = rows[offset:offset + limit]
        return envelope(jobs=[self.job_json(r) for r in page],
                        range={"jobsTotal": str(len(rows)), "jobsCount": str(len(page)), "offset": str(offset)})

    def i_search(self, req):
        """An owner's printers (GCP /search): q in the name, display name or description;
        connection_status ONLINE, OFFLINE or ALL (the default)."""
        kind, who = req.principal
        if kind != "user":
            return failure(ERR_NOT_AUTHORIZED, "User is not authorized.")
        rows = self.store.all("printers", order=("created_ms",), owner=who, deleted=0)
        q = (req.get("q") or "").lower()
        if q:
            rows = [p for p in rows if q in " ".join((p["name"], p["default_display_name"] or "")).lower()]
        wanted = (req.get("connection_status") or "ALL").upper()
        if wanted not in ("ALL", "ONLINE", "OFFLINE", "DORMANT", "DONT_SHOW"):
            return failure(ERR_MISSING, "connection_status is ALL, ONLINE, OFFLINE, DORMANT or DONT_SHOW.")
        now = now_ms()
        out = []
        for p in rows:
            online = status.online(p, now)[0]
            if wanted == "ALL" or (wanted == "ONLINE") == online:
                out.append(self.printer_json(p, ("connectionStatus", "semanticState")))
        return envelope(printers=out)

    def i_canceljob(self, req):
        """Ours, not GCP's: an owner cancels a job its printer has not started (ABORTED,
        user_action_cause CANCELLED); a started or finished one is left as it is."""
        job, _, err = self._job_for(req, req.value("jobid"))
        if err:
            return err
        if req.principal[0] != "user":
            return failure(ERR_NOT_AUTHORIZED, "User is not authorized.")
        if not self.cancel(job["id"]):
            return failure(ERR_JOB_FINISHED, "The job has started or finished: it can no longer be cancelled.")
        return envelope(message="Print job cancelled.", job=self.job_json(self.store.get("jobs", id=job["id"])))

    def i_deletejob(self, req):
        job, _, err = self._job_for(req, req.value("jobid"))
        if err:
            return err
        self.store.delete_job(job["id"])
        return envelope(message="Print job deleted successfully.")


LEGACY_TYPES = ("application/pdf", "application/vnd.cups-raw")  # what a CUPS-backed 1.0 connector prints


def is_legacy(req, caps):
    """A GCP 1.0 printer or connector: capabilities in PPD (`*PPD-Adobe: ...`) or XPS (XML),
    not CDD, and no use_cdd=true. Anything else must be a CDD."""
    head = caps.lstrip()[:16]
    return (req.value("use_cdd") or "").lower() != "true" and (head.startswith("*PPD-Adobe") or head.startswith("<"))


def legacy_cdd(content_types):
    """The CDD the service keeps for a 1.0 printer: its content types (the deprecated
    content_types parameter, or what such connectors print), nothing more."""
    types = [t.strip() for t in (content_types or "").split(",") if t.strip()] or list(LEGACY_TYPES)
    return {"version": "1.0", "printer": {"supported_content_type": [{"content_type": t} for t in types[:20]]}}


def legacy_state(status_text):
    """A CDS document from a 1.0 printer's free-form status."""
    word = (status_text or "").strip()
    if word.upper() in ("IDLE", "PROCESSING", "STOPPED"):
        return {"version": "1.0", "printer": {"state": word.upper()}}
    printer = {"state": "IDLE"}
    if word and word.upper() not in ("ONLINE", "OK", "READY", "0"):
        printer["vendor_state"] = {"item": [{"state": "INFO", "description": word[:200]}]}
    return {"version": "1.0", "printer": printer}


def _text(content):
    content.seek(0)
    return content.read().decode("utf-8", "replace")


def submit_options(expire_after, idempotency_key):
    """(expiry in seconds, idempotency key or None, None) or (None, None, why not)."""
    seconds = EXPIRE_DEFAULT_S
    if expire_after not in (None, ""):
        if not str(expire_after).isdigit() or not 1 <= int(expire_after) <= EXPIRE_MAX_S:
            return None, None, "expireAfter is a number of seconds from 1 to %d." % EXPIRE_MAX_S
        seconds = int(expire_after)
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_MAX:
        return None, None, "An idempotency key has 1 to %d characters." % IDEMPOTENCY_KEY_MAX
    return seconds, idempotency_key, None


def _legacy_status(state_type):
    return {"IN_PROGRESS": "IN_PROGRESS", "DONE": "DONE", "ABORTED": "ERROR",
            "STOPPED": "IN_PROGRESS"}.get(state_type, "QUEUED")

