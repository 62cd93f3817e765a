"""The PrintNode-compatible API as an app written for PrintNode calls it, over real HTTP:
Basic auth with an API key, integer ids and sets, pages and Records-* headers, print jobs
from raw_base64 and from a raw_uri the service streams from the app's own server, qty and
copies, expiry, idempotent submits, the state history and cancelling by DELETE."""
import base64
import http.server
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from firmware import cdd
from tests.unit.test_service_api import call, claimed_printer
from tools.printservice import numsets

ZPL_CDD = json.dumps(cdd.capabilities("zpl", "application/x-zpl"))
LABEL = b"^XA^FO20,20^A0N,30,30^FDPrintNode^FS^XZ"


def pn(svc, method, path, body=None, key=None, form=False, headers=None, password=""):
    """(status, JSON reply, headers) of a PrintNode call; key=False sends no credentials."""
    h = dict(headers or {})
    if key is not False:
        pair = "%s:%s" % (key or svc.owner_key, password)
        h["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    data = None
    if body is not None and form:
        data = urllib.parse.urlencode(body).encode()
        h["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(svc.http_url + "/printnode" + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read()), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers


def printer(svc):
    """A claimed agent-like printer: (its GCP id, its PrintNode number, its access token)."""
    pid, tok, _, _ = claimed_printer(svc, capabilities=ZPL_CDD)
    num = svc.store.get("printers", id=pid)["num"]
    return pid, num, {"Authorization": "Bearer " + tok["access_token"]}


def raw_job(num, data=LABEL, **extra):
    job = {"printerId": num, "title": "label", "contentType": "raw_base64",
           "content": base64.b64encode(data).decode(), "source": "a test"}
    job.update(extra)
    return job


def fetch(svc, pid, auth):
    return call(svc, "/cloudprint/fetch", {"printerid": pid}, headers=auth)[1].get("jobs", [])


def control(svc, job_id, auth, state, pages=None):
    diff = {"state": state}
    if pages is not None:
        diff["pages_printed"] = pages
    return call(svc, "/cloudprint/control", {"jobid": job_id, "semantic_state_diff": json.dumps(diff)},
                headers=auth)[1]


def download(svc, job, auth, start=None):
    h = dict(auth)
    if start is not None:
        h["Range"] = "bytes=%d-" % start
    req = urllib.request.Request(job["fileUrl"], headers=h)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read(), r.headers


def test_basic_auth_with_an_api_key_and_printnode_errors(svc):
    status, body, headers = pn(svc, "GET", "/whoami", key=False)
    assert status == 401 and body["code"] == "InvalidCredentials"
    assert headers["WWW-Authenticate"] == 'Basic realm="Api"'
    status, body, _ = pn(svc, "GET", "/whoami", key="psk_wrong")
    assert status == 401 and body["code"] == "Unauthorized" and "psk_wrong" not in body["message"]
    status, me, headers = pn(svc, "GET", "/whoami")
    assert status == 200 and me["email"] == "owner@example.com" and isinstance(me["id"], int)
    assert headers["X-Account"] == str(me["id"]) and headers["Api-Version"].startswith("3.")
    assert pn(svc, "GET", "/whoami", password="anything")[0] == 200  # the password is not looked at
    assert pn(svc, "GET", "/nothing/here")[:2] == (404, {"code": "NotFound",
                                                         "message": "no such resource: /printnode/nothing/here"})
    status, body, headers = pn(svc, "POST", "/computers", {})
    assert status == 405 and headers["Allow"] == "GET"


def test_computers_and_printers_by_sets_with_pages(svc):
    (_, na, _), (b, nb, _), (_, nc, _) = printer(svc), printer(svc), printer(svc)
    assert [na, nb, nc] == [na, na + 1, na + 2]
    status, computers, headers = pn(svc, "GET", "/computers")
    assert [x["id"] for x in computers] == [na, nb, nc]
    assert computers[0]["state"] == "connected" and computers[0]["hostname"] == "px"
    assert (headers["Records-Returned"], headers["Records-Total"], headers["Records-Returned-Limit"]) == ("3", "3", "500")
    ids = lambda path: [x["id"] for x in pn(svc, "GET", path)[1]]
    assert ids("/printers/%d" % nb) == [nb]
    assert ids("/printers/%d-" % nb) == [nb, nc]
    assert ids("/printers/-%d,%d" % (na, nc)) == [na, nc]
    assert ids("/computers/%d-%d/printers" % (na, nb)) == [na, nb]
    assert ids("/computers/%d/printers/%d" % (na, nb)) == []
    assert ids("/printers?limit=2&dir=desc") == [nc, nb]
    assert ids("/printers?after=%d" % na) == [nb, nc]
    assert ids("/printers?limit=1&offset=1") == [nb]
    status, body, _ = pn(svc, "GET", "/printers/1,%202")
    assert status == 400 and body["code"] == "BadRequest"
    assert pn(svc, "GET", "/printers?limit=0")[0] == 400
    assert pn(svc, "GET", "/printers?dir=up")[0] == 400
    p = pn(svc, "GET", "/printers/%d" % na)[1][0]
    assert p["computer"]["id"] == na and p["state"] == "online"
    caps = p["capabilities"]
    assert caps["copies"] == 999 and caps["dpis"] == ["203x203"] and caps["papers"]["NA_INDEX_4X6"] == [1016, 1524]
    assert caps["raw_content_types"] == ["application/x-zpl", "application/vnd.cups-raw"]
    svc.store.update("printers", {"id": b}, accessed_ms=0)
    assert pn(svc, "GET", "/computers/%d" % nb)[1][0]["state"] == "disconnected"
    assert pn(svc, "GET", "/whoami")[1]["connected"] == [na, nc]


def test_a_raw_job_with_qty_and_copies_prints_each_and_tells_its_states(svc):
    pid, num, auth = printer(svc)
    status, job_num, _ = pn(svc, "POST", "/printjobs", raw_job(num, qty=2, options={"copies": 3}))
    assert status == 201 and isinstance(job_num, int)
    [job] = fetch(svc, pid, auth)
    ticket = call(svc, "/cloudprint/ticket", {"jobid": job["id"]}, headers=auth)[1]
    assert ticket["print"]["copies"] == {"copies": 6}  # the agent sends the file 6 times
    assert download(svc, job, auth)[1] == LABEL
    assert pn(svc, "GET", "/printjobs/%d" % job_num)[1][0]["state"] == "sent_to_client"
    control(svc, job["id"], auth, {"type": "IN_PROGRESS"})
    control(svc, job["id"], auth, {"type": "STOPPED", "device_state_cause": {"error_code": "INPUT_TRAY"}})
    control(svc, job["id"], auth, {"type": "IN_PROGRESS"})
    control(svc, job["id"], auth, {"type": "DONE"}, pages=6)
    [pj] = pn(svc, "GET", "/printjobs/%d" % job_num)[1]
    assert (pj["state"], pj["contentType"], pj["source"], pj["printer"]["id"]) == ("done", "raw_base64", "a test", num)
    [states] = pn(svc, "GET", "/printjobs/%d/states" % job_num)[1]
    assert [s["state"] for s in states] == ["new", "sent_to_client", "in_progress", "in_progress", "in_progress",
                                            "done"]
    assert states[3]["message"] == "stopped: paper out"
    assert states[-1]["data"] == {"pagesPrinted": 6, "qty": 2, "copies": 3}
    assert states[0]["age"] == 0 and all(s["printJobId"] == job_num for s in states)
    assert [s["clientVersion"] for s in states][:2] == [None, None]
    gcp = call(svc, "/cloudprint/jobs", {}, headers={"Authorization": "Bearer " + svc.owner_key})[1]["jobs"]
    assert [(j["id"], j["semanticState"]["pages_printed"]) for j in gcp] == [(job["id"], 6)]


def test_printjobs_lists_sets_and_pages_and_states_newest_first(svc):
    pid, num, auth = printer(svc)
    nums = [pn(svc, "POST", "/printjobs", raw_job(num, title="job %d" % i))[1] for i in range(4)]
    status, jobs, headers = pn(svc, "GET", "/printjobs?limit=2")
    assert [j["id"] for j in jobs] == nums[:2] and headers["Records-Total"] == "4"
    assert [j["id"] for j in pn(svc, "GET", "/printjobs?after=%d&limit=10" % nums[1])[1]] == nums[2:]
    assert [j["id"] for j in pn(svc, "GET", "/printers/%d/printjobs/%d,%d" % (num, nums[0], nums[3]))[1]] == \
        [nums[0], nums[3]]
    assert pn(svc, "GET", "/printers/%d/printjobs" % (num + 1))[1] == []
    assert [s[0]["printJobId"] for s in pn(svc, "GET", "/printjobs/states")[1]] == nums[::-1]
    assert [s[0]["printJobId"] for s in pn(svc, "GET", "/printjobs/states?limit=1")[1]] == [nums[3]]


def test_delete_cancels_what_has_not_printed(svc):
    pid, num, auth = printer(svc)
    first = pn(svc, "POST", "/printjobs", raw_job(num))[1]
    second = pn(svc, "POST", "/printjobs", raw_job(num))[1]
    [started, _] = fetch(svc, pid, auth)
    control(svc, started["id"], auth, {"type": "IN_PROGRESS"})
    assert pn(svc, "DELETE", "/printjobs/%d,%d" % (first, second))[:2] == (200, [second])
    assert pn(svc, "DELETE", "/printjobs/%d" % second)[1] == []
    states = {j["id"]: j["state"] for j in pn(svc, "GET", "/printjobs")[1]}
    assert states == {first: "in_progress", second: "deleted"}
    assert fetch(svc, pid, auth) == []


def test_expiry_and_idempotent_submits(svc):
    pid, num, auth = printer(svc)
    late = pn(svc, "POST", "/printjobs", raw_job(num, expireAfter=1))[1]
    time.sleep(1.2)
    assert fetch(svc, pid, auth) == []
    assert pn(svc, "GET", "/printjobs/%d" % late)[1][0]["state"] == "expired"
    assert pn(svc, "GET", "/printjobs/%d/states" % late)[1][0][-1]["message"] == "expired: not printed in time"
    status, first, _ = pn(svc, "POST", "/printjobs", raw_job(num), headers={"Idempotency-Key": "order-9"})
    status2, again, headers = pn(svc, "POST", "/printjobs", raw_job(num), headers={"Idempotency-Key": "order-9"})
    assert (status, status2, again, headers["Idempotent-Replayed"]) == (201, 201, first, "true")
    assert pn(svc, "POST", "/printjobs", raw_job(num, idempotencyKey="order-9"))[1] == first  # the field too
    assert len(fetch(svc, pid, auth)) == 1


def test_a_urlencoded_submit_with_bracketed_options(svc):
    pid, num, auth = printer(svc)
    body = {"printerId": str(num), "title": "form", "contentType": "raw_base64", "source": "curl -d",
            "content": base64.b64encode(LABEL).decode(), "options[copies]": "2", "qty": "1"}
    status, job_num, _ = pn(svc, "POST", "/printjobs", body, form=True)
    assert status == 201
    [job] = fetch(svc, pid, auth)
    assert call(svc, "/cloudprint/ticket", {"jobid": job["id"]}, headers=auth)[1]["print"]["copies"]["copies"] == 2


@pytest.mark.parametrize("change, code", [
    ({"printerId": 99999}, "NotFound"),
    ({"title": None}, "MissingParameter"),
    ({"source": ""}, "MissingParameter"),
    ({"content": "not base64!"}, "InvalidContent"),
    ({"contentType": "postscript"}, "InvalidArgument"),
    ({"qty": 0}, "InvalidArgument"),
    ({"qty": True}, "InvalidArgument"),
    ({"qty": 10, "options": {"copies": 100}}, "InvalidArgument"),
    ({"expireAfter": -5}, "InvalidArgument"),
    ({"contentType": "raw_uri", "content": "file:///etc/passwd"}, "InvalidArgument"),
    ({"contentType": "raw_uri", "content": "http://u:p@example.com/x"}, "InvalidArgument"),
    ({"contentType": "raw_uri", "content": "http://example.com/x", "authentication": {"type": "Kerberos"}},
     "InvalidArgument"),
])
def test_bad_print_jobs_get_a_clear_error_and_make_no_job(svc, change, code):
    pid, num, auth = printer(svc)
    job = raw_job(num)
    job.update(change)
    job = {k: v for k, v in job.items() if v is not None}
    status, body, _ = pn(svc, "POST", "/printjobs", job)
    assert status in (400, 404) and body["code"] == code, body
    assert pn(svc, "GET", "/printjobs")[1] == []


def test_hostile_bodies_are_refused_before_work(svc):
    status, body, _ = pn(svc, "POST", "/printjobs", b"[" * 100 + b"]" * 100)
    assert status == 400 and body["code"] == "InvalidContent" and "deeper" in body["message"]
    status, body, _ = pn(svc, "POST", "/printjobs", b"{not json")
    assert status == 400 and body["code"] == "InvalidContent"
    status, body, _ = pn(svc, "POST", "/printjobs", b"[1, 2]")
    assert status == 400
    big = urllib.request.Request(svc.http_url + "/printnode/printjobs", method="POST", data=b"x",
                                 headers={"Content-Length": str(11 * 1024 * 1024), "Content-Type": "application/json",
                                          "Authorization": "Basic " + base64.b64encode(
                                              (svc.owner_key + ":").encode()).decode()})
    with pytest.raises(urllib.error.HTTPError) as e:  # answered from the header: no body is read
        urllib.request.urlopen(big, timeout=10)
    assert e.value.code == 413 and json.loads(e.value.read())["code"] == "RequestEntityTooLarge"
    status, body, _ = pn(svc, "POST", "/printjobs", b"{}", key=False)
    assert status == 401  # credentials are checked before the body is read


class Origin:
    """The app's own file server for raw_uri jobs: Basic auth, Range, and a switch for a
    server that sends no Content-Length and ignores Range."""

    def __init__(self, data, user="app", password="s3cret-pass"):
        """user=None: a server that asks for no credentials."""
        origin = self
        self.data, self.plain, self.requests = data, False, []
        expected = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                origin.requests.append(dict(self.headers))
                if user is not None and self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body, start = origin.data, 0
                rng = self.headers.get("Range")
                if rng and not origin.plain:
                    start = int(rng.split("=")[1].rstrip("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(body) - 1, len(body)))
                else:
                    self.send_response(200)
                if origin.plain:
                    self.send_header("Connection", "close")
                else:
                    self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])
                if origin.plain:
                    self.close_connection = True

            def log_message(self, *args):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/labels/1.zpl" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_raw_uri_job_is_streamed_from_the_apps_server_and_never_stored(svc):
    pid, num, auth = printer(svc)
    data = LABEL * 5000  # 190 KB: several chunks
    origin = Origin(data)
    try:
        creds = {"type": "BasicAuth", "credentials": {"user": "app", "pass": "s3cret-pass"}}
        job_num = pn(svc, "POST", "/printjobs", raw_job(num, contentType="raw_uri", content=origin.url,
                                                        authentication=creds))[1]
        assert svc.store.count("job_content") == 0
        [job] = fetch(svc, pid, auth)
        status, got, headers = download(svc, job, auth)
        assert (status, got, headers["Content-Length"]) == (200, data, str(len(data)))
        status, tail, headers = download(svc, job, auth, start=1000)
        assert (status, tail, headers["Content-Range"]) == (206, data[1000:], "bytes 1000-%d/%d" % (len(data) - 1,
                                                                                                 len(data)))
        origin.plain = True  # no length, no ranges: the whole file again, which the printer skips into
        status, whole, headers = download(svc, job, auth, start=1000)
        assert (status, whole, headers.get("Transfer-Encoding")) == (200, data, "chunked")
        assert origin.requests[-1].get("Range") is None
        everything = json.dumps([pn(svc, "GET", p)[1] for p in ("/printjobs", "/printjobs/states")])
        everything += json.dumps(call(svc, "/cloudprint/jobs", {}, headers={"Authorization": "Bearer " + svc.owner_key}))
        assert "s3cret-pass" not in everything
        origin.close()
        with pytest.raises(urllib.error.HTTPError) as e:  # the app's server is gone: the printer retries later
            download(svc, job, auth)
        assert e.value.code == 502 and b"could not be reached" in e.value.read()
    finally:
        origin.close()
    assert job_num > 0


def test_number_sets_parse_as_printnode_describes_them():
    assert numsets.parse("11") == [(11, 11)]
    assert numsets.parse("1-5") == [(1, 5)]
    assert numsets.parse("5-") == [(5, None)]
    assert numsets.parse("-5") == [(None, 5)]
    assert numsets.parse("-") == [(None, None)]
    assert numsets.parse("5,1,3") == [(5, 5), (1, 1), (3, 3)]
    assert numsets.parse("-2,4-") == [(None, 2), (4, None)]
    for bad in ("", "1, 3", "a", "1--3", "0", "1,,2", "1-2-3", ",".join(["1"] * 101), "9" * 16):
        with pytest.raises(numsets.BadSet):
            numsets.parse(bad)
