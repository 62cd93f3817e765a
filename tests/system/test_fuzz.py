"""A short seeded sample of the MicroPython fuzz run (python -m tests.fuzz does 100,000
inputs per parser): every parser under the real interpreter, with a capped heap."""
from tests.fuzz import __main__ as fuzz


def test_every_parser_takes_hostile_input_under_micropython():
    lines = []
    failures = fuzz.run(400, 20261201, say=lines.append)
    assert failures == [], "\n".join(lines)
    assert len([line for line in lines if "inputs/s" in line]) == len(fuzz.TARGETS)
