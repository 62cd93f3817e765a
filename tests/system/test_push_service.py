"""The service publishes the GCP notification strings to a real broker (mosquitto)."""
import paho.mqtt.client as paho

from tools.printservice.server import Service
from tools.hostrun import wait_for
from tests.unit.test_service_api import claimed_printer


def test_job_settings_and_deletion_hints_reach_the_printers_topic(tmp_path, broker):
    host, port = broker
    with Service(str(tmp_path / "svc"), log=lambda m: None, mqtt_url="mqtt://%s:%d" % (host, port)) as svc:
        pid, _, owner, _ = claimed_printer(svc)
        got = []
        sub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="listener")
        sub.on_message = lambda c, u, m: got.append((m.topic, m.payload.decode(), m.qos))
        subscribed = []
        sub.on_connect = lambda c, u, f, rc, p: c.subscribe("cloudprint/printers/#", qos=1)
        sub.on_subscribe = lambda c, u, mid, codes, p: subscribed.append(mid)
        sub.connect(host, port)
        sub.loop_start()
        wait_for(lambda: subscribed, 10, "the listener's subscription")
        topic = "cloudprint/printers/" + pid
        owner.submit(pid, b"^XA^XZ", "application/x-zpl")
        wait_for(lambda: (topic, pid, 1) in got, 10, "the job hint")
        owner.call("update", [("printerid", pid), ("local_settings", '{"pending": {"xmpp_timeout_value": 60}}')])
        wait_for(lambda: (topic, pid + "/update_settings", 1) in got, 10, "the settings hint")
        owner.call("delete", [("printerid", pid)])
        wait_for(lambda: (topic, pid + "/delete", 1) in got, 10, "the deletion hint")
        sub.loop_stop()
