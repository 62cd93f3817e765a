# Run by tests/system/test_mqtt_client.py under the real micropython: our MQTT client
# against a real broker. Prints one line per event for the test to check.
import sys
import time

sys.path.insert(0, sys.argv[1])
from firmware.clock import SystemClock  # noqa: E402
from firmware.mqtt import Mqtt, MqttError  # noqa: E402
from firmware.ports.netsock import Connector  # noqa: E402

host, port, use_tls, ca_path, client, topic, seconds = sys.argv[2:9]
ca = open(ca_path, "rb").read() if use_tls == "1" else None
m = Mqtt(Connector(ca), SystemClock(), host, int(port), use_tls == "1", 3000)
try:
    m.connect(client, None, None, 4, topic + "/status", "offline")
except MqttError as e:
    print("refused:", e)
    sys.exit(0)
m.subscribe(topic)
m.publish(topic + "/status", "online", retain=True, qos=1)
print("subscribed")
end = time.ticks_add(time.ticks_ms(), int(seconds) * 1000)
last_ping = time.ticks_ms()
while time.ticks_diff(end, time.ticks_ms()) > 0:
    got = m.poll(500)
    if got:
        print("message", got[0], got[1].decode())
    if time.ticks_diff(time.ticks_ms(), last_ping) > 2000:
        m.ping()
        last_ping = time.ticks_ms()
print("done")
