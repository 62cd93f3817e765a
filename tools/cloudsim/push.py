"""Push notifications from the service: the GCP notification strings (`<printerid>`,
`<printerid>/delete`, `<printerid>/update_settings`) published at QoS 1 to
`cloudprint/printers/<printerid>` on an MQTT broker (reference §8.4, DESIGN §3 "MQTT").
A hint only: printers still ask /fetch. Publishing never blocks an API call."""
import ssl
import urllib.parse

import paho.mqtt.client as paho

TOPIC = "cloudprint/printers/%s"


class Push:
    """Publishes to the broker at url (mqtt://host:port or mqtts://host:port); with
    mqtts the broker is verified against ca_file."""

    def __init__(self, url, ca_file=None, username=None, password=None, log=print):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
            raise ValueError("broker URL must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT], not %r" % url)
        self.log = log
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="cloudsim-push")
        if username:
            self._client.username_pw_set(username, password)
        if u.scheme == "mqtts":
            self._client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
        self._client.reconnect_delay_set(1, 30)
        # paho queues QoS 1 messages while disconnected and sends them on reconnect
        self._client.connect_async(u.hostname, u.port or (8883 if u.scheme == "mqtts" else 1883),
                                   keepalive=30)
        self._client.loop_start()

    def _publish(self, printer_id, text):
        self._client.publish(TOPIC % printer_id, text, qos=1)

    def new_job(self, printer_id):
        self._publish(printer_id, printer_id)

    def deleted(self, printer_id):
        self._publish(printer_id, printer_id + "/delete")

    def settings_changed(self, printer_id):
        self._publish(printer_id, printer_id + "/update_settings")

    def close(self):
        self._client.loop_stop()
        self._client.disconnect()


class NoPush:
    """No broker configured: printers rely on polling."""

    def new_job(self, printer_id):
        pass

    def deleted(self, printer_id):
        pass

    def settings_changed(self, printer_id):
        pass

    def close(self):
        pass
