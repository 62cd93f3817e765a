#!/usr/bin/env bash
# Run every test: CPython unit tests, then the real MicroPython firmware against the
# print service and simulated printers. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
tools/setup.sh
tools/test_packages.sh
exec .venv/bin/python -m pytest -q tests/unit tests/system "$@"
