"""Nothing prints by surprise and nothing prints twice, with the real agent under
MicroPython printing to the printer simulator: a job past its expiry is never printed,
even when its printer comes back; a submit retried with the same idempotency key prints once."""
import time

from tools.hostrun import claimed_flash, wait_job

LABEL = b"^XA^FO20,20^A0N,30,30^FD%s^FS^XZ"


def submit(owner, pid, text, **extra):
    fields = [("printerid", pid), ("title", text), ("contentType", "application/x-zpl")]
    fields += list(extra.items())
    return owner.call("submit", fields, [("content", text, LABEL % text.encode(), "application/x-zpl")])


def test_a_printer_back_after_its_jobs_expired_prints_only_the_live_ones(tmp_path, service, owner, zpl_printer,
                                                                         agents, device_tree):
    flash, pid = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)  # then off
    stale = submit(owner, pid, "stale", expireAfter="1")["job"]["id"]
    time.sleep(1.5)
    live = submit(owner, pid, "live")["job"]["id"]
    agent = agents(flash, zpl_printer.address, tree=device_tree)  # the printer comes back
    assert wait_job(owner, live, 60, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    state = owner.job(stale)["semanticState"]["state"]
    assert state == {"type": "ABORTED", "service_action_cause": {"error_code": "EXPIRED"}}
    assert zpl_printer.printer.printed[1:] == [LABEL % b"live"]  # after the claim ticket


def test_a_retried_submit_prints_once(tmp_path, service, owner, zpl_printer, agents, device_tree):
    flash, pid = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    first = submit(owner, pid, "order 17", idempotencyKey="order-17")["job"]["id"]
    again = submit(owner, pid, "order 17", idempotencyKey="order-17")  # the app timed out and retried
    assert again["job"]["id"] == first
    wait_job(owner, first, 60, agent=agent)
    after = submit(owner, pid, "after")["job"]["id"]  # everything queued before it has printed
    wait_job(owner, after, 60, agent=agent)
    assert zpl_printer.printer.printed[1:] == [LABEL % b"order 17", LABEL % b"after"]
