"""The HTTP endpoints a clustered broker asks who may connect and what they may do, with
the rules of mqtt_access.py and the credentials in the service's database, so a printer's
broker credential works on every node the moment the token endpoint has handed it out,
and dies with the printer.

  <base>/broker/<key>/rabbitmq/{user,vhost,resource,topic}
      rabbitmq_auth_backend_http (GET query or POST form); answers "allow" or "deny"
  <base>/broker/<key>/emqx/{authn,authz}
      EMQX 5's HTTP authenticator and authorizer (a JSON body, or a query); answers
      {"result": "allow" | "deny"} (authn adds "is_superuser": false)

<key> is the service's --broker-auth-key: a broker is the only client that knows it (the
answers say whether a password is right). Without one, none of this is served."""
import hmac
import json
import urllib.parse

import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Route

from tools.printservice import mqtt_access as access
from tools.printservice.forms import BodyError, read_body

BODY_MAX = 4096  # a broker's question: names, a password and a topic
VHOST = "/"
EXCHANGE = "amq.topic"  # where RabbitMQ's MQTT plugin publishes
SERVICE_CLIENT = "printservice-push"  # the client id prefix of the service's own sessions


def mqtt_topic(routing_key):
    """The MQTT topic (filter) of a RabbitMQ routing key: its MQTT plugin turns "/" into "."
    and "+" into "*"."""
    return routing_key.replace(".", "/").replace("*", "+")


class BrokerRules(access.Rules):
    """mqtt_access.Rules, and what RabbitMQ asks besides: resources, and topics as routing keys."""

    def rabbit_resource(self, username, vhost, resource, name, permission):
        if vhost != VHOST:
            return False
        if resource == "exchange":  # which topics: asked of rabbit_topic
            return name == EXCHANGE and permission in ("read", "write")
        if resource == "queue":  # the plugin's subscription queue: mqtt-subscription-<client id>qos<n>
            service = self.is_service(username)
            prefix = "mqtt-subscription-" + (SERVICE_CLIENT if service else username)
            # the service's client ids are SERVICE_CLIENT and a suffix; a printer's is its id
            return name.startswith(prefix) and (service or name[len(prefix):] in ("qos0", "qos1"))
        return False

    def rabbit_topic(self, username, vhost, name, permission, routing_key):
        if vhost != VHOST or name != EXCHANGE or permission not in ("read", "write"):
            return False
        return self.may(username, "publish" if permission == "write" else "subscribe", mqtt_topic(routing_key))


def routes(rules, key):
    """Starlette routes for the endpoints above; none without a key."""
    if not key:
        return []

    async def rabbitmq(request):
        p = await _params(request)
        if p is None:
            return _rabbit(False, 400)
        what = request.path_params["what"]
        user = p.get("username", "")
        if what == "user":
            ok = await anyio.to_thread.run_sync(rules.login, user, p.get("password", ""))
        elif what == "vhost":
            ok = p.get("vhost") == VHOST
        elif what == "resource":
            ok = rules.rabbit_resource(user, p.get("vhost"), p.get("resource"), p.get("name", ""),
                                       p.get("permission"))
        else:
            ok = rules.rabbit_topic(user, p.get("vhost"), p.get("name"), p.get("permission"),
                                    p.get("routing_key", ""))
        return _rabbit(ok)

    async def emqx(request):
        p = await _params(request)
        if p is None:
            return _emqx({"result": "deny"}, 400)
        user = p.get("username", "")
        if request.path_params["what"] == "authn":
            ok = await anyio.to_thread.run_sync(rules.login, user, p.get("password", ""))
            return _emqx({"result": "allow" if ok else "deny", "is_superuser": False})
        ok = p.get("action") in ("publish", "subscribe") and rules.may(user, p["action"], p.get("topic", ""))
        return _emqx({"result": "allow" if ok else "deny"})

    async def checked(request):
        # before any of the body is read; the app's 404 closes a connection that sent one
        kind, what = request.path_params["kind"], request.path_params["what"]
        if hmac.compare_digest(request.path_params["key"].encode(), key.encode()):
            if kind == "rabbitmq" and what in ("user", "vhost", "resource", "topic"):
                return await rabbitmq(request)
            if kind == "emqx" and what in ("authn", "authz"):
                return await emqx(request)
        raise HTTPException(404)

    return [Route("/broker/{key}/{kind}/{what}", checked, methods=["GET", "POST"])]


async def _params(request):
    """The question's fields (all text), from the query and the body (a form or JSON);
    None when they cannot be read."""
    try:
        body = await read_body(request, BODY_MAX)
    except BodyError:
        return None
    out = dict(urllib.parse.parse_qsl(request.url.query, keep_blank_values=True, max_num_fields=32))
    if body:
        try:
            if request.headers.get("content-type", "").startswith("application/json"):
                found = json.loads(body)
                if not isinstance(found, dict):
                    return None
            else:
                found = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=32))
        except (ValueError, RecursionError):  # not JSON, not UTF-8, nested past the stack
            return None
        out.update(found)
    return {k: v for k, v in out.items() if isinstance(v, str)}  # EMQX may send numbers too: unused


def _rabbit(ok, status=200):
    return Response("allow" if ok else "deny", status, media_type="text/plain")


def _emqx(obj, status=200):
    return Response(json.dumps(obj), status, media_type="application/json")
