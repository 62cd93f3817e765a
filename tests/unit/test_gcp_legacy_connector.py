"""An older GCP 1.0 connector, its calls written out byte for byte as the GCP 1.0
interface documents describe them: an urlencoded /register with PPD capabilities, XPS-era
defaults and a legacy status; claimed by its owner; the polling URL; the code exchange;
/fetch, the download with an Accept header, /control with the legacy status; /update with
new PPD capabilities. Over a raw HTTP connection, as such connectors spoke it."""
import http.client
import json
import urllib.parse

from tools.printservice.client import Client

PPD = ("*PPD-Adobe: \"4.3\"\n*FormatVersion: \"4.3\"\n*Manufacturer: \"Zebra\"\n*ModelName: \"GK420d\"\n"
       "*DefaultPageSize: w288h432\n*PageSize w288h432/4.00x6.00\": \"<</PageSize[288 432]>>setpagedevice\"\n")
DEFAULTS = "<psf:PrintTicket xmlns:psf=\"http://schemas.microsoft.com/windows/2003/08/printing/printschemaframework\"/>"


class Wire:
    """One connection, requests as bytes."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)

    def send(self, method, path, body=b"", headers=()):
        self.conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in headers:
            self.conn.putheader(k, v)
        if method == "POST":
            self.conn.putheader("Content-Type", "application/x-www-form-urlencoded")
            self.conn.putheader("Content-Length", str(len(body)))
        self.conn.endheaders(body if method == "POST" else None)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data[:1] == b"{" else data)


def form(*pairs):
    return urllib.parse.urlencode(pairs).encode()


def test_a_gcp_1_0_connector_registers_is_claimed_and_prints(svc):
    wire = Wire(svc.http_url)
    proxy = [("X-CloudPrint-Proxy", "legacy-connector-1")]
    status, reg = wire.send("POST", "/cloudprint/register", form(
        ("printer", "GK420d"), ("proxy", "legacy-connector-1"), ("capabilities", PPD), ("defaults", DEFAULTS),
        ("status", "ONLINE"), ("description", "Zebra on the dock"), ("content_types", "application/x-zpl")), proxy)
    assert status == 200 and reg["success"], reg
    pid = reg["printers"][0]["id"]
    assert reg["printers"][0]["legacyCapabilities"] == PPD and reg["printers"][0]["legacyDefaults"] == DEFAULTS

    owner = Client(svc.http_url + "/cloudprint", svc.owner_key)
    owner.claim(reg["registration_token"])
    poll = urllib.parse.urlsplit(reg["polling_url"] + svc.client["client_id"])
    status, got = wire.send("GET", poll.path + "?" + poll.query)
    assert got["success"] and got["user_email"] == "owner@example.com"
    status, tok = wire.send("POST", "/oauth2/token", form(
        ("code", got["authorization_code"]), ("client_id", svc.client["client_id"]),
        ("client_secret", svc.client["client_secret"]), ("redirect_uri", "oob"), ("grant_type", "authorization_code")))
    assert status == 200, tok
    auth = [("Authorization", "OAuth " + tok["access_token"])]

    job = owner.submit(pid, b"^XA^FDlegacy^FS^XZ", "application/x-zpl", "from a 1.0 connector")
    status, fetched = wire.send("POST", "/cloudprint/fetch", form(("printerid", pid)), proxy + auth)
    assert [j["id"] for j in fetched["jobs"]] == [job["id"]] and fetched["jobs"][0]["status"] == "QUEUED"
    file_url = urllib.parse.urlsplit(fetched["jobs"][0]["fileUrl"])
    status, data = wire.send("GET", file_url.path + "?" + file_url.query, headers=auth + [("Accept", "application/x-zpl")])
    assert status == 200 and data == b"^XA^FDlegacy^FS^XZ"
    for legacy in ("IN_PROGRESS", "DONE"):
        status, done = wire.send("POST", "/cloudprint/control", form(("jobid", job["id"]), ("status", legacy)), proxy + auth)
        assert done["success"], done
    assert owner.job(job["id"])["status"] == "DONE"

    new_ppd = PPD.replace("GK420d", "GK420t")
    status, upd = wire.send("POST", "/cloudprint/update", form(
        ("printerid", pid), ("capabilities", new_ppd), ("status", "Paper low")), proxy + auth)
    assert upd["success"], upd
    assert upd["printer"]["legacyCapabilities"] == new_ppd and upd["printer"]["legacyDefaults"] == DEFAULTS
    printer = owner.call("printer", [("printerid", pid)])["printers"][0]
    assert printer["semanticState"]["printer"]["vendor_state"]["item"][0]["description"] == "Paper low"
    assert [c["content_type"] for c in printer["capabilities"]["printer"]["supported_content_type"]] == [
        "application/x-zpl"]


def test_a_1_0_printer_that_names_no_content_types_takes_pdf_and_raw(svc):
    wire = Wire(svc.http_url)
    status, reg = wire.send("POST", "/cloudprint/register", form(
        ("printer", "office"), ("proxy", "cups-1"), ("capabilities", "<?xml version=\"1.0\"?><psf:PrintCapabilities/>")),
        [("X-CloudPrint-Proxy", "cups-1")])
    cdd = reg["printers"][0]["capabilities"]
    assert [c["content_type"] for c in cdd["printer"]["supported_content_type"]] == [
        "application/pdf", "application/vnd.cups-raw"]
    status, bad = wire.send("POST", "/cloudprint/register", form(
        ("printer", "x"), ("proxy", "p"), ("capabilities", "neither a PPD nor a CDD")), [("X-CloudPrint-Proxy", "p")])
    assert bad["errorCode"] == 2
