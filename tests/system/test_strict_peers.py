"""The agent against peers it was not written against: every service reply re-chunked
by an h11 reverse proxy, a GCP-style service that says only "413" for a deleted
printer, an ESC/POS printer that answers DLE EOT but not GS r, and a broker anyone
can publish to."""
import json
import os

import pytest

from tests.peers.rechunk_proxy import RechunkProxy
from tests.system.conftest import start_mosquitto
from tools.hostrun import claim, provision, wait_for, wait_job
from tools.printersim.server import PrinterSim

LABEL = b"^XA^FO20,20^A0N,30,30^FDchunked^FS^XZ"


@pytest.fixture
def proxy(service):
    with RechunkProxy(service.http_url, service.certs["cert"], service.certs["key"]) as p:
        yield p


def creds(flash):
    with open(os.path.join(flash, "credentials.json")) as f:
        return json.load(f)


def claimed_through(proxy, tmp_path, service, owner, printer, start, tree):
    """(agent, printer id, flash) of an agent that registered and was claimed through the proxy."""
    flash = str(tmp_path / "flash")
    provision(flash, service, service_url=proxy.url + "/cloudprint")
    agent = start(flash, printer.address, tree=tree)
    claim(agent, owner)
    wait_for(lambda: os.path.exists(os.path.join(flash, "credentials.json")), 10, "credentials")
    return agent, creds(flash)["printer_id"], flash


def test_the_whole_chain_works_when_every_reply_is_chunked_unevenly(tmp_path, service, owner, proxy,
                                                                    zpl_printer, agents, device_tree):
    agent, printer_id, _ = claimed_through(proxy, tmp_path, service, owner, zpl_printer, agents, device_tree)
    job = owner.submit(printer_id, LABEL, "application/x-zpl", "chunked")
    done = wait_job(owner, job["id"], 30, agent=agent)
    assert done["semanticState"]["state"] == {"type": "DONE"} and done["semanticState"]["pages_printed"] == 1
    assert zpl_printer.printer.data().endswith(LABEL)
    seen = {path.split("?")[0].rsplit("/", 1)[-1] for path, _status, _n in proxy.replies}
    assert {"register", "getauthcode", "token", "fetch", "control", "download", "ticket"} <= seen, seen
    assert all(n > 1 for path, status, n in proxy.replies if "register" in path or "token" in path)
    assert len([r for r in service.seen if r["interface"] == "register"]) == 1  # no retry loop


def test_a_printer_deleted_on_a_gcp_style_service_is_noticed_at_the_next_fetch(
        tmp_path, service, owner, proxy, zpl_printer, agents, device_tree):
    agent, printer_id, flash = claimed_through(proxy, tmp_path, service, owner, zpl_printer, agents,
                                               device_tree)
    proxy.gcp_deleted(printer_id)  # its tokens still work; /fetch says only "no jobs" (413)
    agent.wait_line(r"no longer registered \(the service deleted this printer: no jobs, and /printer "
                    r"says unknown", 15)
    agent.wait_line(r"^Code:  \w+$", 15)  # registered anew: a new claim ticket
    assert not os.path.exists(os.path.join(flash, "credentials.json"))


def test_an_escpos_printer_without_gs_r_ends_its_jobs_done_sent_not_confirmed(
        tmp_path, service, owner, agents, device_tree):
    with PrinterSim("escpos", str(tmp_path / "plain-escpos"), pty=True, gs_r=False) as sim:
        flash = str(tmp_path / "flash")
        provision(flash, service)
        agent = agents(flash, sim.pty_path, board="host-escpos", tree=device_tree)
        claim(agent, owner)
        wait_for(lambda: os.path.exists(os.path.join(flash, "credentials.json")), 10, "credentials")
        printer_id = creds(flash)["printer_id"]
        receipt = b"\x1b@Tea  1.80\nTotal 1.80\n\n\n\x1dVB\x00"
        job = owner.submit(printer_id, receipt, "application/x-escpos", "tea")
        done = wait_job(owner, job["id"], 30, agent=agent)
        assert done["semanticState"]["state"] == {"type": "DONE"}, agent.output
        assert done["semanticState"]["pages_printed"] == 1
        assert sim.printer.printed[-1] == receipt
        printer = [p for p in owner.call("printer", [("printerid", printer_id)])["printers"]][0]
        items = printer["semanticState"]["printer"]["vendor_state"]["item"]
        assert any("sent, not confirmed" in i["description"] for i in items), items


def test_a_forged_delete_hint_wipes_nothing_a_real_deletion_does(tmp_path, zpl_printer, agents,
                                                                  device_tree):
    # a broker anyone may publish to, as the default plaintext mqtt:// one can be
    import paho.mqtt.publish
    from tools.printservice.client import Client
    from tests.service_faults import FaultyService as Service
    proc, port = start_mosquitto(tmp_path)
    svc = Service(str(tmp_path / "service"), log=lambda m: None,
                  mqtt_url="mqtt://127.0.0.1:%d" % port).start()
    try:
        owner = Client(svc.http_url + "/cloudprint", svc.owner_key)
        flash = str(tmp_path / "flash")
        provision(flash, svc, mqtt_url="mqtt://127.0.0.1:%d" % port, poll_interval_s=120,
                  safety_poll_s=120, fast_poll_s=2)
        agent = agents(flash, zpl_printer.address, tree=device_tree)
        claim(agent, owner)
        printer_id = wait_for(lambda: os.path.exists(os.path.join(flash, "credentials.json"))
                              and creds(flash)["printer_id"], 10, "credentials")
        agent.wait_line(r"push: subscribed", 20)
        paho.mqtt.publish.single("cloudprint/printers/" + printer_id, printer_id + "/delete", qos=1,
                                 hostname="127.0.0.1", port=port)
        agent.wait_line(r"a push hint says deleted, but the service still has this printer: ignored", 15)
        assert creds(flash)["printer_id"] == printer_id
        job = owner.submit(printer_id, LABEL, "application/x-zpl", "still here")
        assert wait_job(owner, job["id"], 30, agent=agent)["semanticState"]["state"]["type"] == "DONE"
        owner.call("delete", [("printerid", printer_id)])  # the service's own hint, then confirmed
        agent.wait_line(r"no longer registered", 30)
        agent.wait_line(r"^Code:  \w+$", 20)
    finally:
        svc.stop()
        proc.terminate()
        proc.wait(5)
