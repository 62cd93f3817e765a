"""Command-line client of the print service, for owners:

  python -m tools.printservice.client --url URL --key KEY printers
  python -m tools.printservice.client --url URL --key KEY claim CODE
  python -m tools.printservice.client --url URL --key KEY submit PRINTER FILE [--type T] [--copies N]
                                                         [--expire-after S] [--idempotency-key K]
  python -m tools.printservice.client --url URL --key KEY jobs [--printer ID]
  python -m tools.printservice.client --url URL --key KEY cancel JOB
  python -m tools.printservice.client --url URL --key KEY delete-job JOB
  python -m tools.printservice.client --url URL --key KEY delete-printer PRINTER

URL is the service's base (https://127.0.0.1:8443/cloudprint); KEY is the owner's API
key (or --key-file DATA/owner.key). HTTPS is verified against --ca (PEM). Tables show
local times; errors are one line."""
import argparse
import json
import mimetypes
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from tools.printservice import status

TYPES = {".zpl": "application/x-zpl", ".escpos": "application/x-escpos", ".bin": "application/vnd.cups-raw"}


class ClientError(Exception):
    pass


class Client:
    def __init__(self, base_url, key, ca_file=None, timeout=30):
        self.base = base_url.rstrip("/")
        self.key = key
        self.timeout = timeout
        self.ctx = ssl.create_default_context(cafile=ca_file) if ca_file else None

    def call(self, interface, fields=(), files=()):
        boundary = uuid.uuid4().hex
        body = bytearray()
        for name, value in fields:
            body += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                     % (boundary, name, value)).encode()
        for name, filename, data, ctype in files:
            body += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                     "Content-Type: %s\r\n\r\n" % (boundary, name, filename, ctype)).encode()
            body += data + b"\r\n"
        body += ("--%s--\r\n" % boundary).encode()
        req = urllib.request.Request(self.base + "/" + interface, data=bytes(body), method="POST", headers={
            "Authorization": "Bearer " + self.key, "X-CloudPrint-Proxy": "printservice-client",
            "Content-Type": "multipart/form-data; boundary=" + boundary})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.ctx) as resp:
                obj = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise ClientError("/%s: HTTP %d" % (interface, e.code))
        except (urllib.error.URLError, OSError) as e:
            raise ClientError("/%s: %s" % (interface, e))
        if not obj.get("success", True):
            raise ClientError("/%s: %s (code %s)" % (interface, obj.get("message"), obj.get("errorCode")))
        return obj

    def printers(self):
        return self.call("list")["printers"]

    def search(self):
        """The account's printers, each with connectionStatus and semanticState."""
        return self.call("search")["printers"]

    def claim(self, code):
        return self.call("confirm", [("token", code)])

    def submit(self, printer_id, data, content_type, title="job", copies=1, expire_after=None,
               idempotency_key=None):
        ticket = json.dumps({"version": "1.0", "print": {"copies": {"copies": copies}}})
        fields = [("printerid", printer_id), ("title", title), ("contentType", content_type), ("ticket", ticket)]
        if expire_after is not None:
            fields.append(("expireAfter", str(expire_after)))
        if idempotency_key is not None:
            fields.append(("idempotencyKey", idempotency_key))
        return self.call("submit", fields, [("content", title, data, content_type)])["job"]

    def cancel(self, job_id):
        return self.call("canceljob", [("jobid", job_id)])["job"]

    def delete_job(self, job_id):
        return self.call("deletejob", [("jobid", job_id)])

    def delete_printer(self, printer_id):
        return self.call("delete", [("printerid", printer_id)])

    def jobs(self, printer_id=None):
        return self.call("jobs", [("printerid", printer_id)] if printer_id else [])["jobs"]

    def job(self, job_id):
        for j in self.jobs():
            if j["id"] == job_id:
                return j
        return None


def local_time(ms_text):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(ms_text) / 1000))


def table(headers, rows):
    """Columns as wide as their widest cell; the last one as it comes."""
    widths = [max(len(str(r[i])) for r in list(rows) + [headers]) for i in range(len(headers) - 1)]
    for r in [headers] + list(rows):
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)) + "  " + str(r[-1]))


def guess_type(path):
    ext = os.path.splitext(path)[1].lower()
    return TYPES.get(ext) or mimetypes.guess_type(path)[0] or "application/vnd.cups-raw"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.printservice.client", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="https://127.0.0.1:8443/cloudprint")
    ap.add_argument("--key", default=os.environ.get("PRINTSERVICE_KEY"))
    ap.add_argument("--key-file")
    ap.add_argument("--ca", help="CA certificate (PEM) to verify an https:// service")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("printers")
    p = sub.add_parser("claim")
    p.add_argument("code")
    p = sub.add_parser("submit")
    p.add_argument("printer")
    p.add_argument("file")
    p.add_argument("--type")
    p.add_argument("--title")
    p.add_argument("--copies", type=int, default=1)
    p.add_argument("--expire-after", type=int, metavar="S", help="not printed after S seconds (default 14 days)")
    p.add_argument("--idempotency-key", metavar="K", help="a retry with the same K makes no second job")
    p = sub.add_parser("jobs")
    p.add_argument("--printer")
    for name, what in (("cancel", "job"), ("delete-job", "job"), ("delete-printer", "printer")):
        sub.add_parser(name).add_argument(what)
    args = ap.parse_args(argv)
    key = args.key
    try:
        if args.key_file:
            with open(args.key_file) as f:
                key = f.read().strip()
        if not key:
            ap.error("an API key is needed: --key, --key-file or PRINTSERVICE_KEY")
        c = Client(args.url, key, args.ca)
        if args.cmd == "printers":
            rows = []
            for p in c.search():
                state, reasons = status.printer_state(p.get("semanticState"))
                rows.append((p["id"], p["defaultDisplayName"] or p["name"], p["connectionStatus"].lower(), state,
                             ", ".join(reasons), p.get("firmware") or ""))
            table(("PRINTER", "NAME", "CONNECTION", "STATE", "WHY", "FIRMWARE"), rows)
        elif args.cmd == "claim":
            print(c.claim(args.code)["message"])
        elif args.cmd == "submit":
            with open(args.file, "rb") as f:
                data = f.read()
            job = c.submit(args.printer, data, args.type or guess_type(args.file),
                           args.title or os.path.basename(args.file), args.copies, args.expire_after,
                           args.idempotency_key)
            print("%s  %s" % (job["id"], job["semanticState"]["state"]["type"]))
        elif args.cmd == "jobs":
            rows = []
            for j in c.jobs(args.printer):
                state, cause = status.job_state(j["semanticState"])
                rows.append((j["id"], state, cause, str(j["semanticState"].get("pages_printed", 0)),
                             local_time(j["createTime"]), j["title"]))
            table(("JOB", "STATE", "WHY", "PAGES", "SUBMITTED", "TITLE"), rows)
        elif args.cmd == "cancel":
            print("%s  %s" % (args.job, c.cancel(args.job)["semanticState"]["state"]["type"]))
        elif args.cmd == "delete-job":
            print(c.delete_job(args.job)["message"])
        elif args.cmd == "delete-printer":
            print(c.delete_printer(args.printer)["message"])
    except ClientError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    except OSError as e:  # a missing file, key file or CA: one line, no traceback
        print("error: %s: %s" % (e.filename or "", e.strerror or e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
