import pytest

from tests.service_faults import FaultyService


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request):
    """The service's own tests run on both engines."""
    return request.param


@pytest.fixture
def svc(tmp_path, database_url):
    """A running service (with its test-only fault switches, none armed)."""
    s = FaultyService(str(tmp_path / "svc"), log=lambda m: None, database_url=database_url).start()
    yield s
    s.stop()
