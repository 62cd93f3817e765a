"""Push notifications from the service: the GCP notification strings (`<printerid>`,
`<printerid>/delete`, `<printerid>/update_settings`) published at QoS 1 to
`cloudprint/printers/<printerid>` on an MQTT broker (reference §8.4, DESIGN §3 "MQTT").
A hint only: printers still ask /fetch. Publishing never blocks an API call.

With dynsec=True the broker is mosquitto with its dynamic-security plugin and the service's
account is that plugin's admin: the service then creates one broker client per printer (and
deletes it with the printer), and re-sends the whole list after every (re)connect, so a broker
that lost its state is repaired. The embedded broker (broker.py) reads the database instead."""
import itertools
import json
import secrets
import ssl
import threading
import urllib.parse

import paho.mqtt.client as paho

from tools.printservice import mqtt_access as access

TOPIC = access.TOPIC
PRESENCE_BATCH = 500  # statuses written in one transaction: API writes wait for it
CLIENT_PREFIX = "printservice-push-"  # and a random suffix (broker_auth.SERVICE_CLIENT is the prefix)


class Push:
    """Publishes to the broker at url (mqtt://host:port or mqtts://host:port); with
    mqtts the broker is verified against ca_file. grants() lists (printer_id, password)
    for every printer that may log in. presence([(printer_id, "online" | "offline")]) is told
    the printers' retained statuses and last wills, in batches from a thread of its own:
    writing them must not hold up the client's network loop, which also sends the hints."""

    def __init__(self, url, ca_file=None, username=None, password=None, log=print, dynsec=False,
                 grants=lambda: (), presence=None):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
            raise ValueError("broker URL must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT], not %r" % url)
        if dynsec and not username:
            raise ValueError("managing the broker's dynamic security needs its admin user name")
        self.log = log
        self._username = username
        self._dynsec = dynsec
        self._grants = grants
        self._presence = presence
        self._presences = {}  # printer id -> its latest status, not yet written
        self._presence_wanted = threading.Condition()
        self._closing = False
        if presence is not None:
            threading.Thread(target=self._write_presences, name="push-presence", daemon=True).start()
        # a client id of its own per replica: two sessions under one id throw each other off
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=CLIENT_PREFIX + secrets.token_hex(4))
        if username:
            self._client.username_pw_set(username, password)
        if u.scheme == "mqtts":
            self._client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(1, 30)
        # paho queues QoS 1 messages while disconnected and sends them on reconnect
        self._client.connect_async(u.hostname, u.port or (8883 if u.scheme == "mqtts" else 1883),
                                   keepalive=30)
        self._client.loop_start()

    def _on_connect(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            self.log("push: broker refused the service: %s" % reason)
            return
        if self._presence is not None:
            client.subscribe(access.STATUS_TOPICS, qos=1)
        if self._dynsec:
            client.subscribe(access.DYNSEC_RESPONSES, qos=1)
            commands = access.dynsec_service_setup(self._username)
            for printer_id, password in self._grants():
                commands += access.dynsec_grant(printer_id, password)
            self._control(commands)

    def _on_message(self, client, userdata, msg):
        printer_id = access.status_printer(msg.topic)
        if printer_id is not None:
            if self._presence is not None and msg.payload in (b"online", b"offline"):
                with self._presence_wanted:
                    self._presences[printer_id] = msg.payload.decode()  # the latest one counts
                    self._presence_wanted.notify()
            return
        try:
            responses = json.loads(msg.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            self.log("push: unreadable dynamic-security response")
            return
        for r in responses:
            err = r.get("error")
            if r.get("command") == "getClient" and not err:
                roles = [x.get("rolename") for x in r.get("data", {}).get("client", {}).get("roles", [])]
                if access.SERVICE_ROLE not in roles:
                    # the broker disconnects us to apply it; on_connect runs again
                    self._control([{"command": "addClientRole", "username": self._username,
                                    "rolename": access.SERVICE_ROLE}])
            elif err and "already exists" not in err and "not found" not in err:
                self.log("push: broker refused %s: %s" % (r.get("command"), err))

    def _write_presences(self):
        while True:
            with self._presence_wanted:
                while not self._presences and not self._closing:
                    self._presence_wanted.wait()
                if self._closing:
                    return
                batch = dict(itertools.islice(self._presences.items(), PRESENCE_BATCH))
                for printer_id in batch:
                    del self._presences[printer_id]
            try:
                self._presence(sorted(batch.items()))
            except Exception as e:  # the database is away: the next status tells again
                self.log("push: presence of %d printers not saved: %s" % (len(batch), e))

    def _control(self, commands):
        self._client.publish(access.DYNSEC_TOPIC, access.dynsec_payload(commands), qos=1)

    def _publish(self, printer_id, text):
        self._client.publish(TOPIC % printer_id, text, qos=1)

    def grant(self, printer_id, password):
        """A printer got its broker credential: let it log in."""
        if self._dynsec:
            self._control(access.dynsec_grant(printer_id, password))

    def new_job(self, printer_id):
        self._publish(printer_id, printer_id)

    def deleted(self, printer_id):
        self._publish(printer_id, printer_id + "/delete")
        if self._dynsec:
            self._control(access.dynsec_revoke(printer_id))

    def settings_changed(self, printer_id):
        self._publish(printer_id, printer_id + "/update_settings")

    def close(self):
        with self._presence_wanted:
            self._closing = True
            self._presence_wanted.notify()
        self._client.loop_stop()
        self._client.disconnect()


class NoPush:
    """No broker configured: printers rely on polling."""

    def grant(self, printer_id, password):
        pass

    def new_job(self, printer_id):
        pass

    def deleted(self, printer_id):
        pass

    def settings_changed(self, printer_id):
        pass

    def close(self):
        pass
