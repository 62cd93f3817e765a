"""An app written for PrintNode prints through the real agent under MicroPython to the
printer simulator: a raw_base64 job with qty 2 is printed exactly twice and its states tell
it; a raw_uri job is streamed from the app's own server, byte for byte; a two-page PDF
shipping label is drawn for the printer and printed as two labels that look like its pages;
a webhook receiver that fails twice is told of every state of the job once, signed."""
import base64
import hashlib
import hmac
import json

from PIL import Image

from tests.unit.test_printnode import Origin, pn
from tests.unit.test_raster import label_page, mismatch, pdf_of
from tests.unit.test_webhooks import Receiver
from tools.hostrun import claimed_flash, wait_for, wait_job, zpl_labels
from tools.printersim.preview import render_dir

LABEL = b"^XA^FO20,20^A0N,30,30^FDorder 4711^FS^XZ"


def test_qty_2_prints_twice_and_the_states_say_so(tmp_path, service, owner, zpl_printer, agents, device_tree):
    flash, pid = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    num = service.store.get("printers", id=pid)["num"]
    assert pn(service, "GET", "/computers/%d" % num)[1][0]["id"] == num
    status, job_num, _ = pn(service, "POST", "/printjobs", {
        "printerId": num, "title": "order 4711", "contentType": "raw_base64", "qty": 2,
        "content": base64.b64encode(LABEL).decode(), "source": "shop backend"})
    assert status == 201
    job_id = service.store.get("jobs", num=job_num)["id"]
    assert wait_job(owner, job_id, 60, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    assert zpl_printer.printer.printed[1:] == [LABEL, LABEL]  # after the claim ticket: twice, no more
    [job] = pn(service, "GET", "/printjobs/%d" % job_num)[1]
    assert job["state"] == "done" and job["printer"]["computer"]["state"] == "connected"
    [states] = pn(service, "GET", "/printjobs/%d/states" % job_num)[1]
    names = [s["state"] for s in states]
    assert names[:2] == ["new", "sent_to_client"] and names[-1] == "done" and "in_progress" in names
    assert states[-1]["data"] == {"pagesPrinted": 2, "qty": 2, "copies": 1}
    assert states[-1]["clientVersion"]  # reported by the agent: its firmware version


def test_a_raw_uri_job_streams_from_the_apps_server(tmp_path, service, owner, zpl_printer, agents, device_tree):
    flash, pid = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    num = service.store.get("printers", id=pid)["num"]
    data, labels = zpl_labels(200 * 1024)
    origin = Origin(data)
    try:
        job_num = pn(service, "POST", "/printjobs", {
            "printerId": num, "title": "batch", "contentType": "raw_uri", "content": origin.url, "source": "erp",
            "authentication": {"type": "BasicAuth", "credentials": {"user": "app", "pass": "s3cret-pass"}}})[1]
        job_id = service.store.get("jobs", num=job_num)["id"]
        assert wait_job(owner, job_id, 90, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    finally:
        origin.close()
    assert b"".join(zpl_printer.printer.printed[1:]) == data.replace(b"\n", b"")
    assert len(zpl_printer.printer.printed) == 1 + labels
    assert "s3cret-pass" not in agent.output


def test_a_pdf_shipping_label_is_drawn_and_printed(tmp_path, service, owner, zpl_printer, agents, device_tree):
    flash, pid = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    agent = agents(flash, zpl_printer.address, tree=device_tree)  # its CDD: 4 x 6 in labels at 203 dpi
    num = service.store.get("printers", id=pid)["num"]
    pages = [label_page(text="SHIP TO: DOCK 7"), label_page(text="RETURN LABEL")]
    job_num = pn(service, "POST", "/printjobs", {
        "printerId": num, "title": "shipment 88", "contentType": "pdf_base64", "source": "carrier",
        "content": base64.b64encode(pdf_of(*pages)).decode()})[1]
    job_id = service.store.get("jobs", num=job_num)["id"]
    done = wait_job(owner, job_id, 90, agent=agent)
    assert done["semanticState"]["state"]["type"] == "DONE" and done["semanticState"]["pages_printed"] == 2
    pictures = render_dir(zpl_printer.printer.record_dir)[1:]  # the simulator's previews, after the claim ticket
    assert len(pictures) == 2
    for path, page in zip(pictures, pages):
        with Image.open(path) as shown:
            assert mismatch(shown, page) < 0.01


def test_a_webhook_that_fails_twice_gets_every_event_of_a_printed_job_once(tmp_path, service, owner, zpl_printer,
                                                                           agents, device_tree):
    flash, pid = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    receiver = Receiver(fail=2)
    try:
        hook = pn(service, "POST", "/webhooks", {"url": receiver.url})[1]
        agent = agents(flash, zpl_printer.address, tree=device_tree)
        num = service.store.get("printers", id=pid)["num"]
        job_num = pn(service, "POST", "/printjobs", {
            "printerId": num, "title": "order 5", "contentType": "raw_base64", "source": "shop",
            "content": base64.b64encode(LABEL).decode()})[1]
        job_id = service.store.get("jobs", num=job_num)["id"]
        wait_job(owner, job_id, 60, agent=agent)

        def job_events():
            return [e for e in receiver.accepted()[0] if e["type"] == "job.state"]
        wait_for(lambda: [e["data"]["state"] for e in job_events()][-1:] == ["DONE"], 30, "the DONE event")
        events, counts = receiver.accepted()
        assert [e["data"]["printnodeState"] for e in job_events()] == ["new", "sent_to_client", "in_progress", "done"]
        assert all(e["data"]["printjobId"] == job_num for e in job_events())
        assert set(counts.values()) == {1}
        for headers, body, _ in receiver.got:
            assert hmac.compare_digest(headers["X-Printservice-Signature"], "sha256=" + hmac.new(
                hook["secret"].encode(), body, hashlib.sha256).hexdigest())
        assert sum(1 for _, _, accepted in receiver.got if not accepted) == 2
        assert zpl_printer.printer.printed[1:] == [LABEL]
        assert json.dumps(events).count(hook["secret"]) == 0
    finally:
        receiver.close()
