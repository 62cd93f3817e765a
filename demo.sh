#!/usr/bin/env bash
# The end-to-end demo: service, two simulated printers, two agents under MicroPython.
set -euo pipefail
cd "$(dirname "$0")"
tools/setup.sh
exec .venv/bin/python -m tools.demo "$@"
