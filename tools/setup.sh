#!/usr/bin/env bash
# Create .venv with the pinned host tools unless it is already up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# The push tests need a real MQTT broker: mosquitto, from Debian's packages.
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing mosquitto ..."
    (apt-get install -y -qq mosquitto >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq mosquitto; }) >/dev/null
  else
    echo "note: install mosquitto (Debian/Ubuntu: sudo apt-get install mosquitto) for the push tests" >&2
  fi
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-stubs.txt | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "setting up .venv (first run) ..."
"$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
rm -rf .venv/typings
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --target .venv/typings \
  -r requirements-stubs.txt
echo "$want" > "$stamp"
