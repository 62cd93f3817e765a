"""Push through a two-node RabbitMQ cluster (its MQTT plugin, logins and topics checked by
the service's broker-auth endpoints): real agents under MicroPython on either node, the
service publishing through node 1, and a node stopped mid-run. (test_broker_access.py
holds the cluster to the topic rules.)"""
import time

import pytest

from tests.peers.round_robin import RoundRobin
from tests.system.conftest import rabbit_service
from tools.hostrun import claimed_flash, provision, wait_for, wait_job
from tools.printersim.server import PrinterSim
from tools.printservice.client import Client


@pytest.fixture
def service(tmp_path, rabbitmq):
    """The service publishing its hints through node 1 (the agents fixture checks their
    consoles against its secrets)."""
    svc = rabbit_service(str(tmp_path / "service"), rabbitmq, node=0).start()
    yield svc
    svc.stop()


def test_agents_on_both_nodes_get_hints_and_a_stopped_node_loses_no_job(
        tmp_path, service, rabbitmq, agents, device_tree):
    owner = Client(service.http_url + "/cloudprint", service.owner_key)
    node1, node2 = rabbitmq.nodes
    # each agent reaches the cluster through a balancer, as a fleet's boards do: the first
    # connection goes to the first node listed, a reconnect to the next one that answers
    balancers = [RoundRobin([("127.0.0.1", n.mqtt_port) for n in order], idle_s=120).start()
                 for order in ((node1, node2), (node2, node1))]
    printers, running = [], []
    try:
        for name, balancer in zip("ab", balancers):
            printer = PrinterSim("zpl", str(tmp_path / ("printer-" + name))).__enter__()
            printers.append(printer)
            home = tmp_path / name
            home.mkdir()
            flash, pid = claimed_flash(home, service, owner, printer, agents, device_tree)
            # polls far apart: a job prints at once only on a hint or the fetch after a reconnect
            provision(flash, service, mqtt_url="mqtt://127.0.0.1:%d" % balancer.port, mqtt_keepalive_s=10,
                      poll_interval_s=300, safety_poll_s=300, fast_poll_s=300)
            running.append((pid, agents(flash, printer.address, tree=device_tree), printer))
        for pid, agent, _ in running:
            agent.wait_line(r"push: subscribed to cloudprint/printers/" + pid, timeout=30)
        assert [set(b.served) for b in balancers] == [{("127.0.0.1", node1.mqtt_port)},
                                                      {("127.0.0.1", node2.mqtt_port)}]
        time.sleep(1)  # past the fetch that follows subscribing

        labels = {}
        t0 = time.monotonic()
        for pid, agent, _ in running:  # published through node 1, delivered on node 1 and node 2
            labels[pid] = [b"^XA^FDhint for %s^FS^XZ" % pid.encode()]
            job = owner.submit(pid, labels[pid][0], "application/x-zpl", "hinted")
            assert wait_job(owner, job["id"], 30, agent=agent)["semanticState"]["state"]["type"] == "DONE"
        assert time.monotonic() - t0 < 20  # the polls are 300 s away

        node2.stop()  # agent b's node: b reconnects through its balancer to node 1
        for pid, agent, _ in running:
            label = b"^XA^FDafter the stop %s^FS^XZ" % pid.encode()
            labels[pid].append(label)
            job = owner.submit(pid, label, "application/x-zpl", "after the stop")
            assert wait_job(owner, job["id"], 90, agent=agent)["semanticState"]["state"]["type"] == "DONE"
        b_agent = running[1][1]
        wait_for(lambda: b_agent.output.count("push: subscribed") >= 2, 60, "agent b to resubscribe on node 1")
        assert balancers[1].served.get(("127.0.0.1", node1.mqtt_port)) >= 1
        for pid, _, printer in running:
            printed = printer.printer.data()
            assert [printed.count(label) for label in labels[pid]] == [1, 1]
    finally:
        for printer in printers:
            printer.__exit__(None, None, None)
        for b in balancers:
            b.stop()
        if rabbitmq.nodes[1].proc.poll() is not None:  # back for the tests after this one
            rabbitmq.nodes[1].start()
            wait_for(rabbitmq.joined, 60, "node 2 to rejoin the cluster")
