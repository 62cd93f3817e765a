"""Who may do what on the push broker (DESIGN §3 "MQTT"): one rule set, applied by the
embedded broker directly and handed to mosquitto as dynamic-security commands.

A printer logs in with username = its printer id and password = its broker credential: a
secret the token endpoint hands out with every token (kind 'mqtt' in the tokens table). It is
not an API token, so a broker that leaks it exposes nothing but one printer's hints. The
printer may subscribe to its own topic only and publish only to its own status topic."""
import hmac
import json

TOPIC = "cloudprint/printers/%s"
STATUS_TOPICS = TOPIC % "+" + "/status"  # the service watches every printer's presence here
SERVICE_ROLE = "cloudprint-service"
DYNSEC_TOPIC = "$CONTROL/dynamic-security/v1"
DYNSEC_RESPONSES = DYNSEC_TOPIC + "/response"


def printer_may(printer_id, action, topic):
    """action: 'subscribe', 'publish' or 'receive'."""
    own = TOPIC % printer_id
    if action == "subscribe":
        return topic == own
    if action == "publish":
        return topic == own + "/status"
    return topic in (own, own + "/status")


def service_may(action, topic):
    """The service publishes hints to any printer and watches their status topics."""
    if action == "subscribe":
        return topic == STATUS_TOPICS
    if action == "receive":
        return status_printer(topic) is not None
    return action == "publish" and topic.startswith(TOPIC % "") and "#" not in topic and "+" not in topic


def status_printer(topic):
    """The printer id whose status topic this is, or None."""
    head, tail = TOPIC % "", "/status"
    if topic.startswith(head) and topic.endswith(tail):
        printer_id = topic[len(head):-len(tail)]
        if printer_id and "/" not in printer_id and "+" not in printer_id and "#" not in printer_id:
            return printer_id
    return None


class Rules:
    """Logins and topic access for a broker that asks (the embedded one, or a cluster over
    HTTP: broker_auth.py): printers by password_ok(printer_id, password), which asks the
    database, and the service's own account by its password."""

    def __init__(self, password_ok, service_user, service_password):
        self._password_ok = password_ok
        self._service = (service_user or "", service_password or "")

    def is_service(self, username):
        return bool(self._service[0]) and username == self._service[0]

    def login(self, username, password):
        if self.is_service(username):
            return hmac.compare_digest(password.encode(), self._service[1].encode())
        return self._password_ok(username, password)

    def may(self, username, action, topic):
        """action: 'subscribe', 'publish' or 'receive'."""
        if self.is_service(username):
            return service_may(action, topic)
        return printer_may(username, action, topic)


def _role(printer_id):
    return "printer-" + printer_id


def dynsec_grant(printer_id, password):
    own = TOPIC % printer_id
    return [
        {"command": "createRole", "rolename": _role(printer_id), "acls": [
            {"acltype": "subscribeLiteral", "topic": own, "allow": True},
            {"acltype": "publishClientSend", "topic": own + "/status", "allow": True}]},
        {"command": "createClient", "username": printer_id, "password": password,
         "roles": [{"rolename": _role(printer_id)}]},
    ]


def dynsec_revoke(printer_id):
    # deleting the client also disconnects a printer that is still logged in
    return [{"command": "deleteClient", "username": printer_id},
            {"command": "deleteRole", "rolename": _role(printer_id)}]


def dynsec_service_setup(username):
    """The service's own account may publish hints and watch presence; getClient tells
    whether it has the role. (addRoleACL brings a role made by an older service up to date.)"""
    watch = {"acltype": "subscribePattern", "topic": STATUS_TOPICS, "allow": True}
    return [{"command": "createRole", "rolename": SERVICE_ROLE, "acls": [
                {"acltype": "publishClientSend", "topic": TOPIC % "#", "allow": True}, watch]},
            dict(watch, command="addRoleACL", rolename=SERVICE_ROLE),
            {"command": "getClient", "username": username}]


def dynsec_payload(commands):
    return json.dumps({"commands": commands})
