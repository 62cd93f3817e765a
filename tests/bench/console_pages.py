"""The web console's pages, timed in one run against the service's cheapest request:

  .venv/bin/python -m tests.bench.console_pages [--jobs N] [--repeat R]

One service in this process (SQLite, plain HTTP on loopback), one account with one claimed
printer and N ZPL jobs (default 100, a full jobs page). Each figure is the median of R
requests on one keep-alive connection, and its ratio to GET / (the banner: routing and
HTTP only). The log-in is argon2id's cost; a preview is drawn once, then served from memory."""
import argparse
import http.client
import json
import re
import statistics
import tempfile
import time
import urllib.parse

from tests.unit.test_service_api import call, register
from tools.printservice.server import Service

PASSWORD = "a bench password"
LABEL = (b"^XA^FO40,40^A0N,60,60^FDBench label^FS^FO40,230^BCN,120^FD1Z999AA1^FS"
         b"^FO40,420^BQN,2,8^FDQA,https://example.com/track/1Z999AA1^FS^XZ")


class Conn:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        self.cookie = ""

    def request(self, method, path, fields=None):
        body = urllib.parse.urlencode(fields).encode() if fields is not None else None
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        t = time.perf_counter()
        self.c.request(method, path, body, headers)
        r = self.c.getresponse()
        data = r.read()
        took = time.perf_counter() - t
        if r.getheader("Set-Cookie"):
            self.cookie = r.getheader("Set-Cookie").split(";", 1)[0]
        return r.status, data, took


def median_ms(conn, method, path, repeat, fields=None, expect=200):
    times = []
    for _ in range(repeat):
        status, _, took = conn.request(method, path, fields)
        assert status == expect, (path, status)
        times.append(took)
    return statistics.median(times) * 1000


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.bench.console_pages", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d, Service(d, log=lambda m: None) as svc:
        svc.logins.set_password("owner@example.com", PASSWORD)
        reg = register(svc)
        pid = reg["printers"][0]["id"]
        svc.api.claim(reg["registration_token"], "owner@example.com")
        key = {"Authorization": "Bearer " + svc.owner_key}
        for i in range(args.jobs):
            call(svc, "/cloudprint/submit", {"printerid": pid, "contentType": "application/x-zpl",
                                             "title": "label %d" % i, "content": LABEL.decode()}, headers=key)
        conn = Conn(svc.http_url)
        login = {"email": "owner@example.com", "password": PASSWORD}
        rows = [("GET / (baseline)", median_ms(conn, "GET", "/", args.repeat))]
        rows.append(("GET /console/login (a page, no session)", median_ms(conn, "GET", "/console/login", args.repeat)))
        rows.append(("POST /console/login (argon2id verify, new session)",
                     median_ms(conn, "POST", "/console/login", max(5, args.repeat // 3), login, expect=303)))
        rows.append(("GET /console/ (printers)", median_ms(conn, "GET", "/console/", args.repeat)))
        rows.append(("GET /console/jobs (%d jobs)" % args.jobs, median_ms(conn, "GET", "/console/jobs", args.repeat)))
        rows.append(("GET /console/jobs?part=live (the 2 s refresh)",
                     median_ms(conn, "GET", "/console/jobs?part=live", args.repeat)))
        jobs = re.findall(rb"/console/jobs/([0-9a-f-]+)/preview.png", conn.request("GET", "/console/jobs")[1])
        cold = [conn.request("GET", "/console/jobs/%s/preview.png" % j.decode())[2] for j in jobs[:args.repeat]]
        rows.append(("preview.png, first time (drawn)", statistics.median(cold) * 1000))
        path = "/console/jobs/%s/preview.png" % jobs[0].decode()
        rows.append(("preview.png, again (kept drawn)", median_ms(conn, "GET", path, args.repeat)))
    base = rows[0][1]
    print("%-52s %10s %8s" % ("request", "median ms", "x GET /"))
    for name, ms in rows:
        print("%-52s %10.2f %8.1f" % (name, ms, ms / base))
    print(json.dumps({name: round(ms, 2) for name, ms in rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
