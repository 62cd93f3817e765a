"""firmware/mqtt.py under the real micropython against a real mosquitto, with paho-mqtt
(the client the service uses) on the other side."""
import os
import subprocess
import threading

import paho.mqtt.client as paho

from tools.hostrun import MICROPYTHON, ROOT, wait_for

PROBE = os.path.join(os.path.dirname(__file__), "mp", "mqtt_probe.py")


class Probe:
    def __init__(self, broker, topic, seconds, tls=False, ca="-"):
        self.proc = subprocess.Popen(
            [MICROPYTHON, PROBE, ROOT, broker[0], str(broker[1]), "1" if tls else "0", ca,
             "probe-" + topic.replace("/", "-"), topic, str(seconds)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode().rstrip("\n"))


def peer(broker):
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="service-side")
    got = []
    c.on_message = lambda client, userdata, msg: got.append((msg.topic, msg.payload.decode(), msg.retain))
    c.connect(broker[0], broker[1])
    c.loop_start()
    return c, got


def test_subscribe_receive_qos1_ping_status_and_last_will(broker):
    topic = "cloudprint/printers/p1"
    probe = Probe(broker, topic, 12)
    wait_for(lambda: "subscribed" in probe.lines, 15, "the probe to subscribe")
    c, got = peer(broker)
    c.subscribe(topic + "/status", qos=1)
    wait_for(lambda: (topic + "/status", "online", True) in got, 10, "retained online status")
    c.publish(topic, "p1", qos=1).wait_for_publish(5)
    wait_for(lambda: "message %s p1" % topic in probe.lines, 10, "the hint at the probe")
    # 8 s with keepalive 4: mosquitto drops a client after 1.5 x keepalive without pings
    wait_for(lambda: "done" in probe.lines, 20, "the probe to finish")
    assert probe.proc.wait(5) == 0, probe.lines
    # the will, as the probe closed without DISCONNECT (the broker sends it after the close)
    wait_for(lambda: (topic + "/status", "offline", False) in got, 5, "the probe's last will")
    c.loop_stop()


def test_a_broker_that_is_not_there_is_a_clear_error(broker):
    probe = Probe(("127.0.0.1", broker[1] + 1 if broker[1] < 65535 else 1), "cloudprint/printers/x", 1)
    assert probe.proc.wait(15) == 0
    wait_for(lambda: any(line.startswith("refused: connect to") for line in probe.lines), 5, "refusal")


def test_mqtts_verifies_the_broker_against_our_ca(tls_broker, tmp_path):
    from tools.printservice import certs
    host, port, paths = tls_broker
    topic = "cloudprint/printers/tls"
    probe = Probe((host, port), topic, 2, tls=True, ca=paths["ca_der"])
    wait_for(lambda: "subscribed" in probe.lines, 15, "the probe to subscribe over TLS")
    assert probe.proc.wait(15) == 0, probe.lines
    other = certs.ensure(str(tmp_path / "another-ca"))  # a broker certificate from someone else's CA
    probe = Probe((host, port), topic, 1, tls=True, ca=other["ca_der"])
    assert probe.proc.wait(15) == 0, probe.lines
    wait_for(lambda: any(line.startswith("refused: TLS to") for line in probe.lines), 5, "the refusal")
