"""Token lifecycle, service faults and capability updates, against the real interpreter."""
import json
import os

from tools.hostrun import claim, claimed_flash, provision, wait_for, wait_job

LABEL = b"^XA^FO20,20^A0N,30,30^FDlife^FS^XZ"


def creds(flash):
    with open(os.path.join(flash, "credentials.json")) as f:
        return json.load(f)


def test_a_revoked_grant_wipes_the_credentials_and_prints_a_new_claim_ticket(
        tmp_path, service, owner, zpl_printer, agents, device_tree):
    flash, pid = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"access token refreshed")
    tickets = zpl_printer.printer.data().count(b"Claim this printer")
    service.api.revoke_tokens(pid)
    agent.wait_line(r"no longer registered \(refresh token revoked \(invalid_grant\)\); wiping")
    claim(agent, owner)  # a new ticket, a new claim
    wait_for(lambda: os.path.exists(os.path.join(flash, "credentials.json")), 10, "new credentials")
    assert creds(flash)["printer_id"] != pid
    assert zpl_printer.printer.data().count(b"Claim this printer") == tickets + 1
    job = owner.submit(creds(flash)["printer_id"], LABEL, "application/x-zpl", "after re-registering")
    assert wait_job(owner, job["id"], 30, agent=agent)["semanticState"]["state"]["type"] == "DONE"


def test_a_deleted_printer_registers_anew(tmp_path, service, owner, zpl_printer, agents, device_tree):
    flash, pid = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"access token refreshed")
    owner.call("delete", [("printerid", pid)])
    agent.wait_line(r"no longer registered .*; wiping credentials and journal")
    agent.wait_line(r"registering anonymously")
    agent.wait_line(r"^Code:  \w+$")
    assert not os.path.exists(os.path.join(flash, "credentials.json"))


def test_a_token_endpoint_outage_is_not_a_revocation(tmp_path, service, owner, zpl_printer, agents,
                                                     device_tree):
    flash, pid = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    before = creds(flash)
    service.faults.arm("http_error", count=3, interface="token", status=503, retry_after=1)
    job = owner.submit(pid, LABEL, "application/x-zpl", "after the outage")
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"token endpoint: HTTP 503.*retrying in \d+ ms")
    assert wait_job(owner, job["id"], 30, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    assert creds(flash) == before  # the refresh token is kept
    assert "no longer registered" not in agent.output


def test_retry_after_is_honoured(tmp_path, service, owner, zpl_printer, agents, device_tree):
    flash, pid = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    service.faults.arm("http_error", count=1, interface="fetch", status=429, retry_after=4)
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    delay = int(agent.wait_line(r"fetch: HTTP 429; retrying in (\d+) ms").group(1))
    assert delay >= 4000


def test_a_dripping_reply_cannot_hold_the_agent(tmp_path, service, owner, zpl_printer, agents,
                                                device_tree):
    flash, pid = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    provision(flash, service, http_deadline_s=5)
    service.faults.arm("drip", interface="fetch", interval=0.5)
    job = owner.submit(pid, LABEL, "application/x-zpl", "after the drip")
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"deadline passed; retrying", timeout=20)
    assert wait_job(owner, job["id"], 30, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    assert zpl_printer.printer.data().count(LABEL) == 1


def test_jobs_handed_out_twice_print_once(tmp_path, service, owner, zpl_printer, agents, device_tree):
    flash, pid = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    service.faults.arm("duplicate_delivery", count=20)
    labels = [b"^XA^FDdup %d^FS^XZ" % i for i in range(4)]
    jobs = [owner.submit(pid, label, "application/x-zpl", "dup") for label in labels]
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    for job in jobs:
        assert wait_job(owner, job["id"], 30, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    data = zpl_printer.printer.data()
    assert [data.count(label) for label in labels] == [1] * 4
    agent.wait_line(r"handed out again; already handled, ignored")


def test_capabilities_and_firmware_are_resent_only_when_they_changed(tmp_path, service, owner,
                                                                     zpl_printer, agents, device_tree):
    flash, pid = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    c = creds(flash)
    assert c["caps_hash"] and c["firmware"]

    def cdd_updates():
        return [r for r in service.api.seen if r["interface"] == "update" and "capabilities" in r["params"]]
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"access token refreshed")
    agent.wait_line(r"printer state: ready")
    agent.stop()
    assert cdd_updates() == []  # nothing changed since /register
    c.update(caps_hash="an older board config", firmware="0.0.1")
    with open(os.path.join(flash, "credentials.json"), "w") as f:
        json.dump(c, f)
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"told the service of new capabilities or firmware")
    assert len(cdd_updates()) == 1
    printer = owner.call("printer", [("printerid", pid)])["printers"][0]
    assert printer["capsHash"] == creds(flash)["caps_hash"] != "an older board config"
    assert printer["firmware"] == creds(flash)["firmware"] != "0.0.1"


def test_the_agent_boots_with_the_service_down_and_catches_up(tmp_path, service, owner, zpl_printer,
                                                              agents, device_tree):
    from tools.printservice.client import Client
    from tests.service_faults import FaultyService as Service
    flash, pid = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    job = owner.submit(pid, LABEL, "application/x-zpl", "while the service was down")
    ports = [int(u.rsplit(":", 1)[1]) for u in (service.http_url, service.https_url)]
    service.stop()
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"connect to 127.0.0.1:%d failed.*; retrying in \d+ ms" % ports[1])
    agent.wait_line(r"connect to .*; retrying in \d+ ms", timeout=10)
    with Service(service.data_dir, http_port=ports[0], https_port=ports[1], log=lambda m: None) as back:
        again = Client(back.http_url + "/cloudprint", back.owner_key)
        assert wait_job(again, job["id"], 60, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    assert zpl_printer.printer.data().count(LABEL) == 1
