#!/usr/bin/env bash
# Create .venv with the pinned host tools unless it is already up to date. Needs no
# system package: the demo runs on this alone (tools/test_packages.sh adds the tests').
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-stubs.txt | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "setup: creating .venv and installing the pinned packages of requirements.txt (first run: about a minute) ..."
"$PY" -m venv .venv
.venv/bin/python -m pip install --disable-pip-version-check --progress-bar off -r requirements.txt \
  | grep -E '^(Collecting|Successfully installed)' | sed 's/^/  /' || true
.venv/bin/python -c "import pytest, amqtt, PIL" 2>/dev/null || {
  echo "setup: pip could not install requirements.txt; run: .venv/bin/python -m pip install -r requirements.txt" >&2
  exit 1
}
echo "setup: MicroPython API stubs for the type check ..."
rm -rf .venv/typings
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --target .venv/typings \
  -r requirements-stubs.txt
echo "$want" > "$stamp"
echo "setup: .venv ready"
