import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# The firmware's `from micropython import const` under CPython (the unit tests import its
# modules): const() is the identity there, as it is at run time on the device.
if "micropython" not in sys.modules:
    import types
    _mp = types.ModuleType("micropython")
    _mp.const = lambda value: value
    sys.modules["micropython"] = _mp

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL server for the whole run, started when a test first asks."""
    from tests.postgres import Postgres
    server = Postgres()
    yield server
    server.stop()


@pytest.fixture
def database(request):
    """Which engine a service under test keeps its data in: "sqlite" (its data directory)
    unless a test or a module parametrizes it ("postgresql")."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def database_url(request, database):
    """The SQLAlchemy URL of the service's database: None (SQLite in its data directory)
    or a fresh, migrated PostgreSQL database."""
    if database == "sqlite":
        return None
    return request.getfixturevalue("postgres").fresh_database()
