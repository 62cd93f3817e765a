"""Bad input from the service: a clear error, nothing lost, nothing printed twice."""
from tools.hostrun import claimed_flash, wait_job

LABEL = b"^XA^FO20,20^A0N,30,30^FDok^FS^XZ"


def test_non_json_reply_is_retried_and_nothing_is_lost(tmp_path, service, owner, zpl_printer, agents,
                                                       device_tree):
    flash, printer_id = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    service.faults.arm("non_json", count=2, interface="fetch")
    job = owner.submit(printer_id, LABEL, "application/x-zpl", "after garbage")
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"fetch: reply is not JSON; retrying in \d+ ms")
    assert wait_job(owner, job["id"], 30, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    assert zpl_printer.printer.data().count(LABEL) == 1


def test_a_broken_download_resumes_where_it_broke(tmp_path, service, owner, zpl_printer, agents,
                                                   device_tree):
    flash, printer_id = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    service.faults.arm("truncate_download", count=2, keep=3000)
    body = b"^XA^FDlong^FS" + b"^FO10,10^GB100,100,3^FS" * 400 + b"^XZ"
    job = owner.submit(printer_id, body, "application/x-zpl", "broken twice")
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    done = wait_job(owner, job["id"], 30, agent=agent)
    assert done["semanticState"]["state"]["type"] == "DONE"
    ranges = [r["range"] for r in service.api.seen if r["interface"] == "download"]
    assert ranges == [None, "bytes=3000-", "bytes=6000-"]
    assert zpl_printer.printer.data().count(body) == 1 and b"~JX" not in zpl_printer.printer.received()


def test_a_download_that_keeps_breaking_is_aborted_never_done(tmp_path, service, owner, zpl_printer,
                                                              agents, device_tree):
    flash, printer_id = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    service.faults.arm("truncate_download", count=10, at=2000)  # every try dies at byte 2000
    cut = b"^XA^FDcut^FS" + b"^FO10,10^GB100,100,3^FS" * 400 + b"^XZ"
    first = owner.submit(printer_id, cut, "application/x-zpl", "will be cut")
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    done = wait_job(owner, first["id"], 30, agent=agent)
    assert done["semanticState"]["state"] == {
        "type": "ABORTED", "device_action_cause": {"error_code": "DOWNLOAD_FAILURE"}}
    agent.wait_line(r"download broke after 2000 bytes: .*body ended after 2000 of %d bytes" % len(cut))
    agent.wait_line(r"download broke after 2000 bytes: .*body ended after 0 of %d bytes" % (len(cut) - 2000))
    received = zpl_printer.printer.received()
    assert cut[:2000] + b"~JX" in received  # the cut-off format is cancelled on the printer
    service.faults.clear()
    second = owner.submit(printer_id, LABEL, "application/x-zpl", "next one")
    assert wait_job(owner, second["id"], 30, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    assert zpl_printer.printer.data().endswith(LABEL)


def test_service_outage_is_survived(tmp_path, service, owner, zpl_printer, agents, device_tree):
    flash, printer_id = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    service.faults.arm("http_error", count=3, interface="fetch", status=503, retry_after=1)
    job = owner.submit(printer_id, LABEL, "application/x-zpl", "after outage")
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    agent.wait_line(r"fetch: HTTP 503; retrying in \d+ ms")
    assert wait_job(owner, job["id"], 30, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    assert zpl_printer.printer.data().count(LABEL) == 1


def test_a_burst_of_queued_jobs_all_print_exactly_once(tmp_path, service, owner, zpl_printer, agents,
                                                        device_tree):
    flash, printer_id = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    labels = [b"^XA^FDburst %02d^FS^XZ" % i for i in range(20)]
    jobs = [owner.submit(printer_id, label, "application/x-zpl", "burst %d" % i)
            for i, label in enumerate(labels)]
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    for job in jobs:
        assert wait_job(owner, job["id"], 60, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    data = zpl_printer.printer.data()
    assert [data.count(label) for label in labels] == [1] * 20
    positions = [data.index(label) for label in labels]
    assert positions == sorted(positions)  # oldest first
