"""A short seeded sample of the fleet benchmark (tests/bench/fleet.py; the full one is
`python -m tests.bench.fleet`, 10,000 printers): both set-ups, a hundred simulated printers
and a real agent each, one load step; nothing lost, nothing printed twice, every session
held, the agent's labels byte for byte."""
import json

import pytest

from tests.bench import fleet
from tests.postgres import binaries
from tests.rabbitmq import installed

pytestmark = pytest.mark.skipif(not (binaries() and installed()),
                                reason="needs PostgreSQL and RabbitMQ (tools/test_packages.sh)")


def test_a_seeded_sample_of_the_fleet_benchmark_loses_nothing(tmp_path):
    out = tmp_path / "fleet.json"
    code = fleet.main(["--printers", "100", "--agents", "1", "--rates", "10", "--step-s", "4", "--hold-s", "2",
                       "--drain-s", "30", "--connect-s", "60", "--seed", "2026", "--json", str(out)])
    results = json.loads(out.read_text())
    assert set(results) == {"single", "replicated"}
    for name, r in results.items():
        assert r["held"] == r["held_at_end"] == 100 and r["drops"] == 0, name
        (step,) = r["steps"]
        f = step["figures"]
        assert f["submitted"] == 40 and f["done"] == 40 and f["lost"] == f["printed_twice"] == 0, (name, f)
        assert f["first_byte_p50_s"] is not None and f["first_byte_p50_s"] <= f["done_p50_s"]
        assert r["real_agents"]["labels"] > 0 and r["real_agents"]["printers_byte_for_byte"] == 1, name
        assert step["resources"], name  # CPU and RSS were sampled
    assert code == 0
