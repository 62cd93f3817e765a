"""The whole print chain on the real MicroPython interpreter, over real sockets."""
import json
import os
import time

import pytest

from tools.hostrun import claim, claimed_flash, provision, wait_for, wait_job, zpl_labels
from tools.printservice import certs


def registers(service):
    return [r for r in service.seen if r["interface"] == "register"]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)
def test_zpl_chain_over_verified_https_from_source(tmp_path, service, owner, zpl_printer, agents):
    flash = str(tmp_path / "flash")
    provision(flash, service)
    agent = agents(flash, zpl_printer.address)  # the source tree, default heap
    code = claim(agent, owner)

    reg = registers(service)[0]
    assert reg["method"] == "POST" and reg["content_type"].startswith("multipart/form-data")
    assert reg["proxy_header"] and not reg["authorization"]
    for field in ("name", "proxy", "uuid", "gcp_version", "firmware", "use_cdd", "capabilities",
                  "capsHash", "semantic_state", "local_settings"):
        assert field in reg["params"], field
    polls = [r for r in service.seen if r["interface"] == "getauthcode"]
    assert polls and not any(r["authorization"] for r in polls)

    ticket = zpl_printer.printer.data()
    assert b"Code: " + code.encode() in ticket
    assert b"^BQN,2,6^FDQA," + (service.https_url + "/cloudprint/claim?token=" + code).encode() in ticket

    agent.wait_line(r"claimed by")
    wait_for(lambda: os.path.exists(os.path.join(flash, "credentials.json")), 10, "credentials")
    assert sorted(os.listdir(flash)) == ["boot.json", "ca.der", "credentials.json", "identity.json",
                                        "settings.json"]
    with open(os.path.join(flash, "credentials.json")) as f:
        creds = json.load(f)
    assert set(creds) == {"printer_id", "refresh_token", "xmpp_jid", "user_email", "caps_hash", "firmware"}
    assert creds["refresh_token"].startswith("1/") and creds["user_email"] == "owner@example.com"
    printer_id = creds["printer_id"]

    label = b"^XA^FO50,50^A0N,50,50^FDHello dock 3^FS^XZ"
    job = owner.submit(printer_id, label, "application/x-zpl", "hello")
    done = wait_job(owner, job["id"], 30)
    assert done["semanticState"]["state"] == {"type": "DONE"}
    assert done["semanticState"]["pages_printed"] == 1
    assert zpl_printer.printer.data().endswith(label)
    downloads = [r for r in service.seen if r["interface"] == "download"]
    assert downloads and all(r["authorization"] and r["proxy_header"] for r in downloads)

    # Access tokens live in RAM only.
    flash_bytes = b"".join(open(os.path.join(flash, n), "rb").read() for n in os.listdir(flash))
    with service.store.engine.connect() as c:
        access = [r[0] for r in c.exec_driver_sql("SELECT token FROM tokens WHERE kind='access'")]
    assert access and not any(a.encode() in flash_bytes for a in access)

    # After a reboot it goes straight to work: no new registration.
    agent.stop()
    agent = agents(flash, zpl_printer.address)
    agent.wait_line(r"agent .* up: zpl printer, .* registered")
    second = b"^XA^FDafter reboot^FS^XZ"
    job = owner.submit(printer_id, second, "application/x-zpl", "second")
    assert wait_job(owner, job["id"], 30)["semanticState"]["state"]["type"] == "DONE"
    assert len(registers(service)) == 1
    assert zpl_printer.printer.data().endswith(second)


def test_escpos_receipt_on_a_serial_device_path(tmp_path, service, owner, escpos_printer, agents,
                                                 device_tree):
    flash = str(tmp_path / "flash")
    provision(flash, service)
    agent = agents(flash, escpos_printer.pty_path, board="host-escpos", tree=device_tree)
    code = claim(agent, owner)
    ticket = escpos_printer.printer.data()
    assert ticket.startswith(b"\x1b@") and b"Code: " + code.encode() in ticket
    assert b"\x1d(k" in ticket and b"\x1dVB\x00" in ticket  # a QR symbol, then a cut
    # after the cut, nothing but (once) the driver asking whether the printer answers GS r
    assert ticket[ticket.rindex(b"\x1dVB\x00") + 4:] in (b"", b"\x1dr\x01")
    printer_id = owner.printers()[0]["id"]
    receipt = b"\x1b@Coffee  2.50\nTotal   2.50\n\n\n\x1dVB\x00"
    job = owner.submit(printer_id, receipt, "application/x-escpos", "receipt")
    done = wait_job(owner, job["id"], 30)
    assert done["semanticState"]["state"]["type"] == "DONE"
    assert done["semanticState"]["pages_printed"] == 1
    assert escpos_printer.printer.printed[-1] == receipt
    assert escpos_printer.printer.data().endswith(receipt + b"\x1dr\x01")  # then the drain marker
    # the driver asked for real-time status before printing
    assert b"\x10\x04\x01" in escpos_printer.printer.received()


def test_5mb_job_streams_byte_identical_with_a_capped_heap(tmp_path, service, owner, zpl_printer,
                                                            agents, device_tree):
    flash, printer_id = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    payload, labels = zpl_labels(5 * 1024 * 1024)
    job = owner.submit(printer_id, payload, "application/x-zpl", "5 MB of labels")
    before = len(zpl_printer.printer.received())
    agent = agents(flash, zpl_printer.address, heap=JOB_HEAP, tree=device_tree)
    done = wait_job(owner, job["id"], 120, agent=agent)
    assert done["semanticState"]["state"]["type"] == "DONE", agent.output
    assert done["semanticState"]["pages_printed"] == labels
    received = zpl_printer.printer.received()[before:]
    start = received.index(payload[:64])
    assert received[start:start + len(payload)] == payload
    assert agent.alive()


# A 64 KiB heap in 32-bit words (the .mpy budget), scaled by the `w` suffix to this host's
# 64-bit objects (131,072 bytes). tests/bench/heap_floor.py prints the exact floors:
# 125,696 bytes for this job on the 64-bit build when last measured (2026-12-03).
JOB_HEAP = "64wK"


def test_refuses_a_server_not_signed_by_its_ca(tmp_path, service, zpl_printer, agents):
    flash = str(tmp_path / "flash")
    provision(flash, service)
    _key, other_ca = certs.make_ca("someone else's CA")
    from cryptography.hazmat.primitives import serialization
    with open(os.path.join(flash, "ca.der"), "wb") as f:
        f.write(other_ca.public_bytes(serialization.Encoding.DER))
    agent = agents(flash, zpl_printer.address)
    agent.wait_line(r"TLS to 127\.0\.0\.1:\d+ refused: .*not correctly signed")
    time.sleep(1)
    assert agent.alive()
    assert registers(service) == []


def test_register_reply_without_polling_url(tmp_path, service, owner, zpl_printer, agents):
    service.faults.arm("register_drop_field", field="polling_url")
    flash = str(tmp_path / "flash")
    provision(flash, service)
    agent = agents(flash, zpl_printer.address)
    agent.wait_line(r"register reply has no polling_url; retrying in \d+ ms")
    claim(agent, owner)  # the next attempt registers properly
    assert len(registers(service)) == 2


def test_expired_claim_code_registers_anew(tmp_path, service, owner, zpl_printer, agents):
    service.set_token_duration(6)
    flash = str(tmp_path / "flash")
    provision(flash, service)
    agent = agents(flash, zpl_printer.address)
    first = agent.wait_line(r"^Code:  (\w+)$").group(1)
    agent.wait_line(r"claim ticket expired unclaimed; registering anew", 20)
    wait_for(lambda: len([l for l in agent.lines if l.startswith("Code:  ")]) == 2, 10, "a second code")
    second = [l for l in agent.lines if l.startswith("Code:  ")][1][7:]
    assert second != first
    # the console shows the code a moment before the ticket reaches the printer
    wait_for(lambda: b"Code: " + second.encode() in zpl_printer.printer.data(), 10, "the second ticket")
    assert b"Code: " + first.encode() in zpl_printer.printer.data()
    service.set_token_duration(899)


def test_corrupt_settings_file_is_reported_and_the_agent_waits(tmp_path, service, owner, zpl_printer,
                                                               agents):
    flash = str(tmp_path / "flash")
    provision(flash, service)
    with open(os.path.join(flash, "settings.json"), "w") as f:
        f.write('{"service_url": "https://x", ')
    agent = agents(flash, zpl_printer.address)
    agent.wait_line(r"not configured: settings.json is not valid JSON")
    time.sleep(1)
    assert agent.alive() and registers(service) == []
    provision(flash, service)  # fixed over the console or by re-provisioning
    claim(agent, owner, timeout=30)
