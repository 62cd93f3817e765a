"""The real agent against a service that presents an operator's own certificate chain
(root, intermediate, leaf, as a public CA issues them): the printer holds only the root."""
import pytest

from tests.unit.test_operator_tls import pki  # noqa: F401  (a fixture)
from tools.hostrun import claimed_flash, wait_job
from tools.printservice.server import Service

LABEL = b"^XA^FO20,20^A0N,30,30^FDoperator cert^FS^XZ"


@pytest.fixture
def service(tmp_path, pki):  # noqa: F811
    svc = Service(str(tmp_path / "service"), log=lambda m: None, tls_cert=pki["chain"], tls_key=pki["key"],
                  tls_ca=pki["root"]).start()
    yield svc
    svc.stop()


def test_an_agent_holding_only_the_root_registers_and_prints(tmp_path, service, owner, zpl_printer, agents,
                                                              device_tree):
    flash, printer_id = claimed_flash(tmp_path, service, owner, zpl_printer, agents, device_tree)
    job = owner.submit(printer_id, LABEL, "application/x-zpl", "via the operator's certificate")
    agent = agents(flash, zpl_printer.address, tree=device_tree)
    assert wait_job(owner, job["id"], 30, agent=agent)["semanticState"]["state"]["type"] == "DONE"
    assert zpl_printer.printer.data().count(LABEL) == 1
