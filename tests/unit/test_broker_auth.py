"""The endpoints a clustered broker asks who may connect (broker_auth.py), over real HTTP,
in the request and reply shapes of RabbitMQ's rabbitmq_auth_backend_http (GET query or
POST form; "allow" / "deny") and of EMQX 5's HTTP authenticator and authorizer (JSON)."""
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.unit.test_service_api import claimed_printer
from tools.printservice.broker_auth import mqtt_topic
from tools.printservice.server import Service

KEY = "k3y-for-the-broker-only"


@pytest.fixture
def svc(tmp_path):
    s = Service(str(tmp_path / "svc"), log=lambda m: None, mqtt_user="svc-account",
                mqtt_password="svc-secret", broker_auth_key=KEY).start()
    yield s
    s.stop()


def ask(svc, path, fields, method="POST", json_body=False, key=KEY):
    url = "%s/broker/%s/%s" % (svc.http_url, key, path)
    data, headers = None, {}
    if method == "GET":
        url += "?" + urllib.parse.urlencode(fields)
    elif json_body:
        data, headers = json.dumps(fields).encode(), {"Content-Type": "application/json"}
    else:
        data = urllib.parse.urlencode(fields).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def rabbit(svc, what, method="POST", **fields):
    status, ctype, body = ask(svc, "rabbitmq/" + what, fields, method)
    assert status == 200 and ctype.startswith("text/plain"), (status, body)
    return body


def emqx(svc, what, **fields):
    status, ctype, body = ask(svc, "emqx/" + what, fields, json_body=True)
    assert status == 200 and ctype == "application/json", (status, body)
    return json.loads(body)


def test_rabbitmq_logins_are_the_printers_broker_credentials_and_the_service_account(svc):
    a, a_tok, owner, _ = claimed_printer(svc)
    b, b_tok, _, _ = claimed_printer(svc)
    for method in ("POST", "GET"):  # the plugin's two forms: a form body, or a query string
        assert rabbit(svc, "user", method, username=a, password=a_tok["mqtt_password"]) == "allow"
        assert rabbit(svc, "user", method, username=a, password=b_tok["mqtt_password"]) == "deny"
        assert rabbit(svc, "user", method, username=a, password=a_tok["access_token"]) == "deny"
        assert rabbit(svc, "user", method, username="svc-account", password="svc-secret") == "allow"
        assert rabbit(svc, "user", method, username="svc-account", password="svc-secre") == "deny"
        assert rabbit(svc, "user", method, username=a) == "deny"  # no password at all
    assert rabbit(svc, "vhost", username=a, vhost="/", ip="127.0.0.1") == "allow"
    assert rabbit(svc, "vhost", username=a, vhost="other", ip="127.0.0.1") == "deny"
    owner.delete_printer(a)  # a deleted printer can no longer log in
    assert rabbit(svc, "user", username=a, password=a_tok["mqtt_password"]) == "deny"
    assert rabbit(svc, "user", username=b, password=b_tok["mqtt_password"]) == "allow"


def test_rabbitmq_topics_follow_the_broker_rules(svc):
    a, b = "p-a", "p-b"

    def topic(user, permission, key):
        return rabbit(svc, "topic", username=user, vhost="/", resource="topic", name="amq.topic",
                      permission=permission, routing_key=key)
    # MQTT's cloudprint/printers/<id> is the routing key cloudprint.printers.<id>
    assert topic(a, "read", "cloudprint.printers.p-a") == "allow"  # subscribe to its own hints
    assert topic(a, "read", "cloudprint.printers.p-b") == "deny"
    assert topic(a, "read", "cloudprint.printers.*") == "deny"
    assert topic(a, "read", "cloudprint.#") == "deny"
    assert topic(a, "write", "cloudprint.printers.p-a.status") == "allow"  # its status, its will
    assert topic(a, "write", "cloudprint.printers.p-b.status") == "deny"  # never as another
    assert topic(a, "write", "cloudprint.printers.p-a") == "deny"  # no hints of its own
    assert topic(b, "read", "cloudprint.printers.p-b") == "allow"
    assert topic("svc-account", "write", "cloudprint.printers.p-a") == "allow"  # the service's hints
    assert topic("svc-account", "read", "cloudprint.printers.*.status") == "allow"  # presence
    assert topic("svc-account", "write", "cloudprint.printers.#") == "deny"
    assert rabbit(svc, "topic", username=a, vhost="/", resource="topic", name="other",
                  permission="read", routing_key="cloudprint.printers.p-a") == "deny"

    def resource(user, kind, name, permission):
        return rabbit(svc, "resource", username=user, vhost="/", resource=kind, name=name, permission=permission)
    assert resource(a, "exchange", "amq.topic", "write") == "allow"
    assert resource(a, "exchange", "amq.topic", "configure") == "deny"
    assert resource(a, "exchange", "amq.direct", "write") == "deny"
    for permission in ("configure", "write", "read"):  # its own subscription queue only
        assert resource(a, "queue", "mqtt-subscription-p-aqos1", permission) == "allow"
        assert resource(a, "queue", "mqtt-subscription-p-bqos1", permission) == "deny"
    assert resource(a, "queue", "mqtt-subscription-p-aqos1-x", "read") == "deny"
    assert resource("svc-account", "queue", "mqtt-subscription-printservice-push-1qos1", "configure") == "allow"
    assert resource(a, "exchange", "amq.topic", "write") == "allow"
    assert rabbit(svc, "resource", username=a, vhost="x", resource="exchange", name="amq.topic",
                  permission="write") == "deny"


def test_emqx_authn_and_authz_shapes(svc):
    a, a_tok, _, _ = claimed_printer(svc)
    assert emqx(svc, "authn", username=a, password=a_tok["mqtt_password"], clientid=a) == {
        "result": "allow", "is_superuser": False}
    assert emqx(svc, "authn", username=a, password="guess", clientid=a) == {"result": "deny", "is_superuser": False}
    own = "cloudprint/printers/%s" % a
    assert emqx(svc, "authz", username=a, topic=own, action="subscribe") == {"result": "allow"}
    assert emqx(svc, "authz", username=a, topic=own + "/status", action="publish", qos=1) == {"result": "allow"}
    assert emqx(svc, "authz", username=a, topic="cloudprint/printers/other", action="subscribe") == {
        "result": "deny"}
    assert emqx(svc, "authz", username=a, topic=own, action="all") == {"result": "deny"}
    assert emqx(svc, "authz", username="svc-account", topic=own, action="publish") == {"result": "allow"}
    status, _, body = ask(svc, "emqx/authn", {"username": a, "password": a_tok["mqtt_password"]}, "GET")
    assert status == 200 and json.loads(body)["result"] == "allow"  # GET with a query works too


def test_bad_questions_are_denied_and_the_key_guards_everything(svc):
    a, a_tok, _, _ = claimed_printer(svc)
    good = {"username": a, "password": a_tok["mqtt_password"]}
    assert ask(svc, "rabbitmq/user", good, key="wrong-key")[0] == 404
    assert ask(svc, "rabbitmq/nothing", good)[0] == 404
    assert ask(svc, "emqx/user", good)[0] == 404
    status, _, body = ask(svc, "rabbitmq/user", dict(good, padding="x" * 5000))
    assert (status, body) == (400, "deny")  # over the body limit: refused before it is read
    for raw in (b"[1, 2]", b"{not json", b"[" * 3000):
        req = urllib.request.Request("%s/broker/%s/emqx/authn" % (svc.http_url, KEY), data=raw,
                                     method="POST", headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 400 and json.loads(e.value.read()) == {"result": "deny"}


def test_without_a_key_nothing_is_served(tmp_path):
    s = Service(str(tmp_path / "svc"), log=lambda m: None).start()
    try:
        assert ask(s, "rabbitmq/user", {"username": "x", "password": "y"}, key="")[0] == 404
        assert ask(s, "rabbitmq/user", {"username": "x", "password": "y"}, key="anything")[0] == 404
    finally:
        s.stop()


def test_routing_keys_become_mqtt_topics():
    assert mqtt_topic("cloudprint.printers.*.status") == "cloudprint/printers/+/status"
    assert mqtt_topic("cloudprint.#") == "cloudprint/#"
