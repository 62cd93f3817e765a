"""Broker security, on every broker the service supports: the embedded one (amqtt, which
asks the service's database), mosquitto with its dynamic-security plugin (which the
service fills) and a RabbitMQ cluster (which asks the service's broker-auth endpoints). A printer logs in with the credential from the token endpoint, reads only its
own topic and writes only its own status; a deleted printer cannot log in any more."""
import json
import time

import paho.mqtt.client as paho
import pytest

from tests.system.conftest import DYNSEC_ADMIN, rabbit_service, start_secured_mosquitto
from tools.printservice.server import Service
from tools.hostrun import wait_for
from tests.unit.test_service_api import claimed_printer


@pytest.fixture(params=["embedded", "mosquitto", "rabbitmq"])
def service(request, tmp_path):
    proc = None
    if request.param == "embedded":
        svc = Service(str(tmp_path / "svc"), log=lambda m: None, broker_port=0)
    elif request.param == "rabbitmq":
        svc = rabbit_service(str(tmp_path / "svc"), request.getfixturevalue("rabbitmq"), node=1)
    else:
        proc, port = start_secured_mosquitto(tmp_path)
        svc = Service(str(tmp_path / "svc"), log=lambda m: None, mqtt_url="mqtt://127.0.0.1:%d" % port,
                      mqtt_user=DYNSEC_ADMIN[0], mqtt_password=DYNSEC_ADMIN[1], mqtt_dynsec=True)
    svc.start()
    yield svc
    svc.stop()
    if proc is not None:
        proc.terminate()
        proc.wait(5)


class Session:
    """A paho client logged in as a printer, recording what it receives."""

    def __init__(self, url, user, password, will=None):
        host, port = url.split("//")[1].rsplit(":", 1)
        self.got, self.subacks, self.result = [], [], []
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=user)  # as the agent does
        self.c.username_pw_set(user, password)
        if will:
            self.c.will_set(will[0], will[1], qos=1, retain=True)
        self.c.on_connect = lambda c, u, f, rc, p: self.result.append(rc)
        self.c.on_message = lambda c, u, m: self.got.append((m.topic, m.payload.decode()))
        self.c.on_subscribe = lambda c, u, mid, codes, p: self.subacks.append(codes[0])
        self.dropped = False  # the broker closed the session (RabbitMQ's answer to a forbidden act)
        self.c.on_disconnect = lambda c, u, f, rc, p: setattr(self, "dropped", True)
        self.c.connect(host, int(port))
        self.c.loop_start()
        wait_for(lambda: self.result, 10, "the broker's CONNACK")

    @property
    def accepted(self):
        return not self.result[0].is_failure

    def subscribe(self, topic):
        """Whether the broker granted it: a failure SUBACK (mosquitto, amqtt) or a closed
        session (RabbitMQ) is a refusal."""
        n = len(self.subacks)
        self.c.subscribe(topic, qos=1)
        wait_for(lambda: len(self.subacks) > n or self.dropped, 10, "the SUBACK for " + topic)
        return not self.dropped and not self.subacks[-1].is_failure

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def broker_login(svc, tok, printer_id, will=None):
    """Wait until the broker knows the printer (mosquitto learns it over MQTT from the service)."""
    holder = []

    def try_login():
        s = Session(svc.mqtt_url, printer_id, tok["mqtt_password"], will)
        if s.accepted:
            holder.append(s)
            return True
        s.close()
        return False
    wait_for(try_login, 10, "the broker to accept printer " + printer_id)
    return holder[0]


def again_if_dropped(service, session, tok, printer_id, will=None):
    """The session, or a new one where the broker closed it for a forbidden act (RabbitMQ;
    the old session's will is said)."""
    if not session.dropped:
        return session
    session.close()
    return broker_login(service, tok, printer_id, will)


def test_a_printer_reads_only_its_own_topic_and_writes_only_its_status(service):
    a_id, a_tok, owner, _ = claimed_printer(service)
    b_id, b_tok, _, _ = claimed_printer(service)
    assert a_tok["mqtt_password"] != b_tok["mqtt_password"] != b_tok["refresh_token"]
    a = broker_login(service, a_tok, a_id)
    b = broker_login(service, b_tok, b_id)
    try:
        assert a.subscribe("cloudprint/printers/" + a_id)
        for forbidden in (b_id, "#", "+"):  # printer A cannot read B's hints
            assert not a.subscribe("cloudprint/printers/" + forbidden)
            a = again_if_dropped(service, a, a_tok, a_id)
        assert b.subscribe("cloudprint/printers/" + b_id)
        # A may not speak for the service or for B: the broker drops both
        for topic, text in (("cloudprint/printers/" + b_id, b_id), ("cloudprint/printers/%s/status" % b_id, "offline")):
            a.c.publish(topic, text, qos=1)
            time.sleep(0.3)
            a = again_if_dropped(service, a, a_tok, a_id)
        assert a.subscribe("cloudprint/printers/" + a_id)
        a.c.publish("cloudprint/printers/" + a_id + "/status", "online", qos=1).wait_for_publish(5)
        assert not b.dropped
        owner.submit(b_id, b"^XA^XZ", "application/x-zpl")
        wait_for(lambda: b.got, 10, "the service's hint to B")
        owner.submit(a_id, b"^XA^XZ", "application/x-zpl")
        wait_for(lambda: ("cloudprint/printers/" + a_id, a_id) in a.got, 10, "the service's hint to A")
        assert b.got == [("cloudprint/printers/" + b_id, b_id)]
    finally:
        a.close()
        b.close()


def test_the_service_learns_each_printers_presence_from_its_status_and_last_will(service):
    a_id, a_tok, _, _ = claimed_printer(service)
    b_id, b_tok, _, _ = claimed_printer(service)
    status = "cloudprint/printers/%s/status"

    def presence(pid):
        return service.store.printer(pid)["presence"]
    a = broker_login(service, a_tok, a_id, will=(status % a_id, "offline"))  # as the agent connects
    b = broker_login(service, b_tok, b_id)
    try:
        b.c.publish(status % b_id, "online", qos=1, retain=True).wait_for_publish(5)
        a.c.publish(status % a_id, "online", qos=1, retain=True).wait_for_publish(5)
        wait_for(lambda: presence(a_id) == presence(b_id) == "online", 10, "both printers online")
        before = service.store.printer(a_id)["presence_ms"]  # read first: the status may be in at once
        a.c.publish(status % b_id, "offline", qos=1)  # not A's to say: dropped
        time.sleep(0.3)
        a = again_if_dropped(service, a, a_tok, a_id, will=(status % a_id, "offline"))
        a.c.publish(status % a_id, "online", qos=1, retain=True).wait_for_publish(5)
        wait_for(lambda: service.store.printer(a_id)["presence_ms"] > before, 10, "A's second status")
        assert presence(b_id) == "online"
        a.c.loop_stop()
        a.c.socket().close()  # the power goes: the broker sends A's last will
        wait_for(lambda: presence(a_id) == "offline", 20, "A's last will")
        assert presence(b_id) == "online"
    finally:
        b.close()


def test_wrong_or_stolen_credentials_are_refused(service):
    a_id, a_tok, owner, _ = claimed_printer(service)
    b_id, _, _, _ = claimed_printer(service)
    broker_login(service, a_tok, a_id).close()
    for user, password in ((a_id, "mq.guess"), (b_id, a_tok["mqtt_password"]),
                           (a_id, a_tok["access_token"]), (a_id, a_tok["refresh_token"])):
        s = Session(service.mqtt_url, user, password)
        s.close()
        assert not s.accepted, (user, password[:4])


def test_a_deleted_printer_can_no_longer_log_in(service):
    a_id, a_tok, owner, _ = claimed_printer(service)
    s = broker_login(service, a_tok, a_id)
    assert s.subscribe("cloudprint/printers/" + a_id)
    owner.call("delete", [("printerid", a_id)])
    wait_for(lambda: ("cloudprint/printers/" + a_id, a_id + "/delete") in s.got, 10, "the deletion hint")
    s.close()

    def refused():
        again = Session(service.mqtt_url, a_id, a_tok["mqtt_password"])
        again.close()
        return not again.accepted
    wait_for(refused, 10, "the broker to refuse the deleted printer")


def test_the_credential_is_stable_across_refreshes(service):
    from tests.unit.test_service_api import call
    a_id, a_tok, _, _ = claimed_printer(service)
    status, again = call(service, "/oauth2/token", {
        "grant_type": "refresh_token", "refresh_token": a_tok["refresh_token"],
        "client_id": service.client["client_id"], "client_secret": service.client["client_secret"]})
    assert status == 200 and again["mqtt_password"] == a_tok["mqtt_password"]
    assert json.dumps(again).count("mq.") == 1


def test_the_embedded_broker_speaks_verified_tls(tmp_path):
    import ssl
    from tests.system.conftest import free_port
    svc = Service(str(tmp_path / "svc"), log=lambda m: None, broker_port=0, broker_tls_port=free_port())
    try:
        svc.start()
        assert svc.mqtt_url.startswith("mqtts://127.0.0.1:")
        pid, tok, _, _ = claimed_printer(svc)
        host, port = svc.mqtt_url.split("//")[1].rsplit(":", 1)
        for ca, ok in ((svc.certs["ca_pem"], True), (None, False)):  # None: the system's CAs
            c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="tls-" + str(ok))
            c.username_pw_set(pid, tok["mqtt_password"])
            c.tls_set(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED)
            if ok:
                assert c.connect(host, int(port)) == 0
                c.disconnect()
            else:
                with pytest.raises(ssl.SSLCertVerificationError):
                    c.connect(host, int(port))
    finally:
        svc.stop()


def test_the_embedded_broker_drops_a_socket_that_never_sends_connect(tmp_path):
    import socket
    import time
    from tools.printservice import broker
    svc = Service(str(tmp_path / "svc"), log=lambda m: None, broker_port=0).start()
    try:
        host, port = svc.mqtt_url[len("mqtt://"):].rsplit(":", 1)
        idle = [socket.create_connection((host, int(port)), 5) for _ in range(20)]
        t0 = time.monotonic()
        for s in idle:
            s.settimeout(broker.CONNECT_TIMEOUT_S + 10)
            assert s.recv(1) == b""  # closed by the broker
        assert time.monotonic() - t0 < broker.CONNECT_TIMEOUT_S + 5
        for s in idle:
            s.close()
        # and a real client still gets in afterwards
        pid, tok, _, _ = claimed_printer(svc)
        broker_login(svc, tok, pid).close()
    finally:
        svc.stop()


def test_a_retained_message_reaches_only_the_printer_whose_topic_it_is(service):
    # the embedded broker looks a retained message up by its topic instead of scanning all
    a_id, a_tok, _, _ = claimed_printer(service)
    b_id, b_tok, _, _ = claimed_printer(service)
    wait_for(service.push._client.is_connected, 10, "the service's own session")
    service.push._client.publish("cloudprint/printers/" + a_id, "kept for a", qos=1, retain=True).wait_for_publish(5)
    b = broker_login(service, b_tok, b_id)
    a = None
    try:
        assert b.subscribe("cloudprint/printers/" + b_id)
        a = broker_login(service, a_tok, a_id)
        assert a.subscribe("cloudprint/printers/" + a_id)
        wait_for(lambda: a.got, 10, "the retained message")
        time.sleep(0.5)
        assert a.got == [("cloudprint/printers/" + a_id, "kept for a")]
        assert b.got == []
    finally:
        b.close()
        if a is not None:
            a.close()
