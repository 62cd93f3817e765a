import glob
import shutil
import socket
import subprocess

import pytest

from tools.hostrun import Agent, wait_for
from tools import build
from tools.printservice.client import Client
from tests.service_faults import FaultyService as Service
from tools.printersim.server import PrinterSim


@pytest.fixture(scope="session")
def device_tree(tmp_path_factory):
    """The firmware as deployed: .mpy from mpy-cross, plus boot.py and main.py."""
    out = str(tmp_path_factory.mktemp("device"))
    build.build(out)
    return out


@pytest.fixture
def service(tmp_path, database_url):
    svc = Service(str(tmp_path / "service"), log=lambda m: None, database_url=database_url).start()
    yield svc
    svc.stop()


@pytest.fixture
def owner(service):
    return Client(service.http_url + "/cloudprint", service.owner_key)


@pytest.fixture
def zpl_printer(tmp_path):
    with PrinterSim("zpl", str(tmp_path / "zpl-printer")) as sim:
        yield sim


@pytest.fixture
def escpos_printer(tmp_path):
    with PrinterSim("escpos", str(tmp_path / "escpos-printer"), pty=True) as sim:
        yield sim


def service_secrets(service):
    """Every token, code and secret the service knows: none may reach the console."""
    with service.store.engine.connect() as c:
        tokens = [r[0] for r in c.exec_driver_sql("SELECT token FROM tokens")]
    return tokens + [service.client["client_secret"]]


@pytest.fixture
def agents(service):
    """Start agents with agents(...); each is stopped at the end, and its whole console
    output is checked for leaked secrets."""
    started = []

    def start(*args, **kwargs):
        a = Agent(*args, **kwargs)
        started.append(a)
        return a
    yield start
    for a in started:
        a.stop()
    secrets = service_secrets(service)
    for a in started:
        for s in secrets:
            assert s not in a.output, "a secret reached the console"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mosquitto(tmp_path, extra="", port=None, anonymous=True):
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = port or free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("per_listener_settings false\nallow_anonymous %s\npersistence false\n"
                    "listener %d 127.0.0.1\n%s" % ("true" if anonymous else "false", port, extra))
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            return proc.poll() is not None and _gone(proc)
    wait_for(up, 10, "mosquitto to listen on %d" % port)
    return proc, port


def _gone(proc):
    raise AssertionError("mosquitto exited with %s: check its configuration" % proc.returncode)


@pytest.fixture
def broker(tmp_path):
    """A real mosquitto on loopback (Debian's package; tools/test_packages.sh installs it)."""
    proc, port = start_mosquitto(tmp_path)
    yield "127.0.0.1", port
    proc.terminate()
    proc.wait(5)


@pytest.fixture
def tls_broker(tmp_path):
    """mosquitto with TLS only, its certificate from the service's CA (tools/printservice/certs.py)."""
    from tools.printservice import certs
    paths = certs.ensure(str(tmp_path / "broker-certs"))
    # "user root": as root, mosquitto would otherwise become user mosquitto, which cannot
    # read a key inside pytest's private temporary directory (ignored when not root)
    proc, port = start_mosquitto(tmp_path, "user root\ncertfile %s\nkeyfile %s\n"
                                 % (paths["cert"], paths["key"]))
    yield "127.0.0.1", port, paths
    proc.terminate()
    proc.wait(5)


DYNSEC_ADMIN = ("printservice", "admin-secret-for-tests")


def start_secured_mosquitto(tmp_path, port=None):
    """mosquitto with its dynamic-security plugin and no anonymous logins; the service
    holds the plugin's admin account (DYNSEC_ADMIN) and creates one client per printer.
    The plugin's state file survives a restart on the same tmp_path, like a real install."""
    state = tmp_path / "dynsec.json"
    if not state.exists():
        subprocess.run(["mosquitto_ctrl", "dynsec", "init", str(state)] + list(DYNSEC_ADMIN),
                       check=True, stdout=subprocess.DEVNULL)
    plugin = (glob.glob("/usr/lib/*/mosquitto_dynamic_security.so")
              + glob.glob("/usr/lib/mosquitto_dynamic_security.so"))[0]
    return start_mosquitto(tmp_path, "user root\nplugin %s\nplugin_opt_config_file %s\n"
                           % (plugin, state), port=port, anonymous=False)


BROKER_AUTH_KEY = "broker-auth-key-for-the-tests"


@pytest.fixture(scope="session")
def rabbitmq():
    """A two-node RabbitMQ cluster for the whole run. It asks a relay who may connect;
    rabbit_service() points the relay at each test's own service."""
    from tests.peers.round_robin import RoundRobin
    from tests.rabbitmq import Cluster
    relay = RoundRobin(idle_s=30).start()
    cluster = Cluster("http://127.0.0.1:%d/broker/%s/rabbitmq" % (relay.port, BROKER_AUTH_KEY))
    cluster.relay = relay
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        relay.stop()


def rabbit_service(data_dir, rabbitmq, node=0, **kwargs):
    """A service (not started) publishing through one node of the cluster and answering
    the cluster's questions; printers are told that node's address."""
    svc = Service(data_dir, log=lambda m: None, mqtt_url=rabbitmq.nodes[node].mqtt_url,
                  mqtt_user="printservice", mqtt_password="service-password-for-the-tests",
                  broker_auth_key=BROKER_AUTH_KEY, **kwargs)
    rabbitmq.relay.backends = [("127.0.0.1", int(svc.http_url.rsplit(":", 1)[1]))]
    return svc


@pytest.fixture
def secured_broker(tmp_path):
    proc, port = start_secured_mosquitto(tmp_path)
    yield "127.0.0.1", port
    proc.terminate()
    proc.wait(5)
