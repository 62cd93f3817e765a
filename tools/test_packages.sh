#!/usr/bin/env bash
# The Debian packages the tests start as real peers: mosquitto (push; it brings
# mosquitto_ctrl for dynamic security), chromium and chromium-driver (the web console's
# browser tests), postgresql (the service on a fleet's database; the tests start their
# own throwaway cluster, never the package's), rabbitmq-server (a two-node cluster on
# loopback with its MQTT plugin, started by the tests). Installed when run as root; otherwise it says what to install. Waits for another apt or dpkg (an unattended upgrade) to finish.
set -euo pipefail
need=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "note: the push, browser, PostgreSQL and RabbitMQ tests need: ${need[*]} (Debian/Ubuntu: sudo apt-get install ${need[*]})" >&2
  exit 0
fi
echo "test packages: installing ${need[*]} with apt-get (waits up to 10 min for the dpkg lock) ..."
apt=(apt-get -o DPkg::Lock::Timeout=600 -y -q)
"${apt[@]}" install "${need[@]}" >/dev/null 2>&1 || { "${apt[@]}" update >/dev/null && "${apt[@]}" install "${need[@]}" >/dev/null; }
echo "test packages: installed ${need[*]}"
