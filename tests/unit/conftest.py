import pytest

from tests.service_faults import FaultyService


@pytest.fixture
def svc(tmp_path):
    """A running service (with its test-only fault switches, none armed)."""
    s = FaultyService(str(tmp_path / "svc"), log=lambda m: None).start()
    yield s
    s.stop()
