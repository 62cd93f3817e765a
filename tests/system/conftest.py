import os
import sqlite3

import pytest

from tools.hostrun import Agent
from tools import build
from tools.cloudsim.client import Client
from tools.cloudsim.server import Service
from tools.printersim.server import PrinterSim


@pytest.fixture(scope="session")
def device_tree(tmp_path_factory):
    """The firmware as deployed: .mpy from mpy-cross, plus boot.py and main.py."""
    out = str(tmp_path_factory.mktemp("device"))
    build.build(out)
    return out


@pytest.fixture
def service(tmp_path):
    svc = Service(str(tmp_path / "service"), log=lambda m: None).start()
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
    db = sqlite3.connect(os.path.join(service.data_dir, "cloudsim.db"))
    tokens = [r[0] for r in db.execute("SELECT token FROM tokens")]
    db.close()
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
