# GCP 2.0 printer interfaces as calls over our HTTP client. No retries here: callers
# decide. Errors are classified by what the caller must do:
#   ApiError      success:false; .code is the reply's errorCode (a number)
#   ServiceError  transient (5xx, 429, transport, malformed reply): back off, retry
#   AuthRejected  HTTP 403 even after one token refresh
import json

from firmware import http as H
from firmware import jsonpick
from firmware.wire import WireError

PROXY_HEADER = "X-CloudPrint-Proxy"
MAX_REPLY = 16384
FORM = "application/x-www-form-urlencoded"

ERR_NO_JOBS = 413
ERR_NOT_CLAIMED = 502
ERR_UNKNOWN_PRINTER = 1001
ERR_UNKNOWN_JOB = 1002
ERR_JOB_FINISHED = 1003


class ApiError(Exception):
    def __init__(self, interface, code, message):
        super().__init__("%s failed: %s (code %d)" % (interface, message, code))
        self.code = code


class ServiceError(WireError):
    def __init__(self, message, retry_after_s=0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class AuthRejected(WireError):
    pass


def as_int(value, default=0):
    """Numbers arrive as JSON numbers or as strings ("899")."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return default


def _retry_after(resp):
    return as_int(resp.headers.get("retry-after", "0"))


ENVELOPE = (b"success", b"errorCode", b"message")
# What of a reply is read (pick): (top members besides the envelope, the array whose
# first objects are looked into, their members, how many of them). Literal tuples, so a
# frozen build keeps them in flash rather than in the heap.
ENVELOPE_ONLY = ((), None, (), 1)
LOCAL_SETTINGS_REPLY = ((), b"printers", (b"id", b"local_settings"), 1)
# at most 16 jobs are taken from one /fetch reply; the rest come with the next
FETCH_REPLY = ((), b"jobs", (b"id", b"title", b"contentType", b"fileUrl"), 16)


def pick(spec, resp):
    """The members of the reply that spec names, read as the body streams by (replies
    repeat whole printers and jobs: none is ever held)."""
    top, inner, inner_wanted, inner_max = spec
    return jsonpick.stream_pick(resp.readinto, ENVELOPE + top, bytearray(64), inner, inner_wanted, inner_max)


def parse_reply(interface, resp, spec=None):
    """The JSON object of an API reply, with HTTP status checked: only what spec names
    when it is given (see pick), the whole of it otherwise."""
    if resp.status == 403:
        raise AuthRejected("%s: access token refused (HTTP 403)" % interface)
    if resp.status == 429 or resp.status >= 500:
        raise ServiceError("%s: HTTP %d" % (interface, resp.status), _retry_after(resp))
    if resp.status != 200:
        raise ServiceError("%s: unexpected HTTP %d" % (interface, resp.status))
    try:
        obj = jsonpick.loads(resp.read_all(MAX_REPLY)) if spec is None else pick(spec, resp)
    except ValueError:
        raise ServiceError("%s: reply is not JSON" % interface)
    if not isinstance(obj, dict):
        raise ServiceError("%s: reply is not a JSON object" % interface)
    return obj


def check_success(interface, obj):
    if obj.get("success") is not True:
        msg = obj.get("message")
        raise ApiError(interface, as_int(obj.get("errorCode"), -1),
                       msg if isinstance(msg, str) else "no message")
    return obj


class CloudPrint:
    def __init__(self, http, base_url, proxy, tokens=None, boundary="----cloudprintagent0"):
        self._http = http
        self._base = base_url.rstrip("/")
        self._proxy = proxy
        self.tokens = tokens
        self._boundary = boundary

    def _headers(self, auth, content_type=None):
        hdrs = [(PROXY_HEADER, self._proxy)]
        if auth:
            hdrs.append(("Authorization", "Bearer " + self.tokens.access_token()))
        if content_type:
            hdrs.append(("Content-Type", content_type))
        return hdrs

    def _post(self, interface, url, fields, auth, multipart, spec=None):
        if multipart:
            body = H.multipart(fields, self._boundary)
            ctype = "multipart/form-data; boundary=" + self._boundary
        else:
            body = H.urlencode(fields)
            ctype = FORM
        resp = self._http.request("POST", url, self._headers(auth, ctype), body)
        body = None  # sent: not held while the reply is read (a /register body is KiBs)
        try:
            return parse_reply(interface, resp, spec)
        finally:
            resp.close()

    def call(self, interface, fields, auth=True, multipart=False, url=None, spec=None):
        """POST /interface (or url); on a 403 refresh the access token once, try again."""
        url = url or self._base + "/" + interface
        try:
            obj = self._post(interface, url, fields, auth, multipart, spec)
        except AuthRejected:
            if not auth:
                raise
            self.tokens.invalidate()
            obj = self._post(interface, url, fields, auth, multipart, spec)
        return check_success(interface, obj)

    # Printer and jobs (§4, §5)
    def fetch(self, printer_id):
        """The QUEUED jobs, oldest first. ApiError ERR_NO_JOBS when there are none, which
        a service also answers for a printer it no longer has (see printer_exists)."""
        obj = self.call("fetch", [("printerid", printer_id, None)], spec=FETCH_REPLY)
        jobs = obj.get("jobs")
        if not isinstance(jobs, list):
            raise ServiceError("fetch: reply has no job list")
        return jobs

    def ticket(self, job_id):
        """The job's CJT (reference §5.2): a bare JSON object on success, no envelope."""
        url = self._base + "/ticket"
        fields = [("jobid", job_id, None), ("use_cjt", "true", None)]
        try:
            obj = self._post("ticket", url, fields, True, False)
        except AuthRejected:
            self.tokens.invalidate()
            obj = self._post("ticket", url, fields, True, False)
        if obj.get("success") is False:
            check_success("ticket", obj)
        return obj

    def control(self, job_id, diff):
        # the reply repeats the job: only the envelope is read
        self.call("control", [("jobid", job_id, None), ("semantic_state_diff", json.dumps(diff), None)],
                  spec=ENVELOPE_ONLY)

    def update(self, printer_id, fields):
        # the reply repeats the whole printer: only the envelope is read
        self.call("update", [("printerid", printer_id, None)] + fields, multipart=True,
                  spec=ENVELOPE_ONLY)

    def printer_exists(self, printer_id):
        """False when /printer says the printer is gone (success:false, reference
        §3.7); oauth.Revoked when the token endpoint says so first."""
        try:
            self.call("printer", [("printerid", printer_id, None)], spec=ENVELOPE_ONLY)
            return True
        except ApiError:
            return False

    def local_settings(self, printer_id):
        """The printer's local_settings object from /printer ({} when it has none)."""
        obj = self.call("printer", [("printerid", printer_id, None), ("use_cdd", "true", None)],
                        spec=LOCAL_SETTINGS_REPLY)
        printers = obj.get("printers")
        if not isinstance(printers, list) or not printers or not isinstance(printers[0], dict):
            raise ServiceError("printer: reply has no printers[0]")
        found = printers[0].get("local_settings")
        return found if isinstance(found, dict) else {}

    def download(self, url, accept, deadline_ms, offset=0):
        """The open response for a job's fileUrl, from byte offset on when the server
        honours the Range (206); the caller streams and closes it."""
        hdrs = self._headers(True)
        hdrs.append(("Accept", accept))
        if offset:
            hdrs.append(("Range", "bytes=%d-" % offset))
        resp = self._http.request("GET", url, hdrs, None, deadline_ms)
        if resp.status == 403:
            resp.close()
            self.tokens.invalidate()
            hdrs[1] = ("Authorization", "Bearer " + self.tokens.access_token())
            resp = self._http.request("GET", url, hdrs, None, deadline_ms)
        return resp
