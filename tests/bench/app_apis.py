"""The app-facing interfaces timed in one run against the GCP /submit they sit beside:

  .venv/bin/python -m tests.bench.app_apis [--jobs N] [--repeat R]

One service in this process (SQLite, plain HTTP on loopback), one account with one claimed
label printer (the agent's CDD: 4 x 6 in at 203 dpi) and N jobs (default 500, a full
PrintNode page). Each figure is the median of R requests on one keep-alive connection and
its ratio to a raw GCP /submit of the same label; the webhook figure is from a submit to
the event arriving at a local receiver (the service looks for events every 0.5 s, so about
a quarter of a second is the expected wait)."""
import argparse
import base64
import http.client
import json
import random
import statistics
import tempfile
import time
import urllib.parse

from tests.unit.test_raster import label_page, pdf_of, png_of
from tests.unit.test_service_api import register
from tests.unit.test_webhooks import Receiver
from firmware import cdd
from tools.printservice.server import Service

LABEL = b"^XA^FO40,40^A0N,60,60^FDBench label^FS^FO40,230^BCN,120^FD1Z999AA1^FS^XZ"


class Conn:
    def __init__(self, url, headers):
        u = urllib.parse.urlsplit(url)
        self.c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        self.headers = headers

    def time(self, method, path, body=None, content_type=None, expect=200):
        headers = dict(self.headers)
        if content_type:
            headers["Content-Type"] = content_type
        t = time.perf_counter()
        self.c.request(method, path, body, headers)
        r = self.c.getresponse()
        data = r.read()
        took = time.perf_counter() - t
        assert r.status == expect, (path, r.status, data[:200])
        return took, data


def median_ms(conn, repeat, *args, **kwargs):
    return statistics.median(conn.time(*args, **kwargs)[0] for _ in range(repeat)) * 1000


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.bench.app_apis", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d, Service(d, log=lambda m: None) as svc:
        reg = register(svc, capabilities=json.dumps(cdd.capabilities("zpl", "application/x-zpl")))
        pid = reg["printers"][0]["id"]
        svc.api.claim(reg["registration_token"], "owner@example.com")
        num = svc.store.get("printers", id=pid)["num"]
        gcp = Conn(svc.http_url, {"Authorization": "Bearer " + svc.owner_key})
        pn = Conn(svc.http_url, {"Authorization": "Basic " + base64.b64encode((svc.owner_key + ":").encode()).decode()})
        form = urllib.parse.urlencode({"printerid": pid, "contentType": "application/x-zpl", "title": "bench",
                                       "content": LABEL.decode()})
        raw = json.dumps({"printerId": num, "title": "bench", "contentType": "raw_base64", "source": "bench",
                          "content": base64.b64encode(LABEL).decode()})
        pdf = json.dumps({"printerId": num, "title": "bench", "contentType": "pdf_base64", "source": "bench",
                          "content": base64.b64encode(pdf_of(label_page())).decode()})
        png = urllib.parse.urlencode({"printerid": pid, "contentType": "dataUrl", "title": "bench",
                                      "content": "data:image/png;base64," + base64.b64encode(
                                          png_of(label_page())).decode()})
        for _ in range(args.jobs):
            pn.time("POST", "/printnode/printjobs", raw, "application/json", expect=201)
        base = median_ms(gcp, args.repeat, "POST", "/cloudprint/submit", form, "application/x-www-form-urlencoded")
        rows = [("GCP POST /submit, a ZPL label (baseline)", base)]
        rows.append(("PrintNode POST /printjobs raw_base64", median_ms(
            pn, args.repeat, "POST", "/printnode/printjobs", raw, "application/json", expect=201)))
        rows.append(("PrintNode POST /printjobs pdf_base64 (4 x 6 in page drawn)", median_ms(
            pn, max(3, args.repeat // 4), "POST", "/printnode/printjobs", pdf, "application/json", expect=201)))
        rows.append(("GCP POST /submit dataUrl PNG (drawn)", median_ms(
            gcp, max(3, args.repeat // 4), "POST", "/cloudprint/submit", png, "application/x-www-form-urlencoded")))
        rows.append(("PrintNode GET /printjobs (a page of 500)", median_ms(pn, args.repeat, "GET", "/printnode/printjobs")))
        rows.append(("PrintNode GET /printjobs/states?limit=100", median_ms(
            pn, args.repeat, "GET", "/printnode/printjobs/states?limit=100")))
        rows.append(("PrintNode GET /computers", median_ms(pn, args.repeat, "GET", "/printnode/computers")))
        receiver = Receiver()
        try:
            pn.time("POST", "/printnode/webhooks", json.dumps({"url": receiver.url}), "application/json", expect=201)
            waits = []
            for _ in range(max(5, args.repeat)):
                time.sleep(random.uniform(0, 0.5))  # at any moment of the service's 0.5 s round
                seen = len(receiver.got)
                t = time.perf_counter()
                pn.time("POST", "/printnode/printjobs", raw, "application/json", expect=201)
                while len(receiver.got) == seen:
                    time.sleep(0.002)
                waits.append(time.perf_counter() - t)
            rows.append(("submit -> webhook event at the receiver", statistics.median(waits) * 1000))
        finally:
            receiver.close()
    print("%-62s %10s %8s" % ("request (%d jobs in the account)" % args.jobs, "median ms", "ratio"))
    for name, ms in rows:
        print("%-62s %10.2f %8.2f" % (name, ms, ms / base))


if __name__ == "__main__":
    main()
