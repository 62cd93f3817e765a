"""The embedded MQTT broker (amqtt, from PyPI) the service starts when no external broker is
given: enough for the demo and a small site. It runs in the service's event loop, beside
the HTTP servers, and decides logins and topic access from the service's database
(mqtt_access.py), so a printer's credential works the moment the token endpoint has
handed it out, and dies with the printer."""
import asyncio
import logging
from dataclasses import dataclass

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import NoDataError
from amqtt.mqtt.constants import QOS_1, QOS_2
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin

from tools.printservice import mqtt_access as access
from tools.printservice.store import Store


class ServiceAccess(BaseAuthPlugin, BaseTopicPlugin):
    """amqtt plugin: the service account by its password, printers by the database."""

    @dataclass
    class Config:
        db_url: str = ""
        service_user: str = ""
        service_password: str = ""

    def __init__(self, context):
        super().__init__(context)
        cfg = context.config
        self._store = Store(cfg.db_url, migrate_schema=False)
        self._rules = access.Rules(self._store.broker_password_ok, cfg.service_user, cfg.service_password)

    async def authenticate(self, *, session):
        password = session.password or ""
        if isinstance(password, bytes):
            password = password.decode("utf-8", "replace")
        return self._rules.login(session.username or "", password)

    async def topic_filtering(self, *, session=None, topic=None, action=None):
        if session is None or topic is None:
            return False
        return self._rules.may(session.username, str(action), topic)

    async def close(self):
        self._store.close()


CONNECT_TIMEOUT_S = 5  # a socket that sends no CONNECT within this is dropped


class GuardedBroker(Broker):
    """amqtt waits for a client's first packet for ever, so bare TCP connections would
    pile up until the service runs out of file descriptors: the CONNECT has a deadline."""

    async def _initialize_client_session(self, reader, writer, remote_address, remote_port):
        try:
            return await asyncio.wait_for(
                super()._initialize_client_session(reader, writer, remote_address, remote_port),
                CONNECT_TIMEOUT_S)
        except asyncio.TimeoutError:
            await writer.close()
            raise NoDataError("no CONNECT within %d s from %s:%s" % (CONNECT_TIMEOUT_S, remote_address,
                                                                     remote_port))

    # amqtt matches every message against every filter any session holds, which for a
    # fleet is a scan of thousands per hint. Only a message's own topic and the filters with
    # wildcards can match it, so the wildcard filters are kept aside and only those and the
    # topic itself are looked at; what is done for each match is amqtt's rule.
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._wildcards = set()

    async def add_subscription(self, subscription, session):
        code = await super().add_subscription(subscription, session)
        if "+" in subscription[0] or "#" in subscription[0]:
            self._wildcards.add(subscription[0])
        return code

    def _filters_for(self, topic):
        self._wildcards.intersection_update(self._subscriptions)  # filters nobody holds any more
        return [topic, *self._wildcards]

    async def _run_broadcast(self, running_tasks):
        broadcast = await self._broadcast_queue.get()
        topic = broadcast["topic"]
        for topic_filter in self._filters_for(topic):
            subscriptions = self._subscriptions.get(topic_filter)
            if not subscriptions or not self._matches(topic, topic_filter):
                continue
            for target, sub_qos in list(subscriptions):
                qos = broadcast.get("qos", sub_qos)
                if not await self._topic_filtering(target, topic=topic, action=Action.RECEIVE):
                    continue
                if target.transitions.state != "connected":
                    # kept only for a persistent session, at QoS 1 or 2 [MQTT 3.1.2.4]
                    if not target.clean_session and qos in (QOS_1, QOS_2) and not target.is_anonymous:
                        await self._retain_broadcast_message(broadcast, qos, target)
                    continue
                handler = self._get_handler(target)
                if handler:
                    running_tasks.append(asyncio.ensure_future(
                        handler.mqtt_publish(topic, broadcast["data"], qos, retain=False)))

    async def _publish_retained_messages_for_subscription(self, subscription, session):
        """amqtt calls this on every connect for every filter any session holds, and scans
        every retained message for each: a fleet's connects would cost the square of its
        size. Only the session's own filters can match, and an exact filter matches at
        most the one message retained under its own name."""
        topic_filter, qos = subscription
        if all(s is not session for s, _ in self._subscriptions.get(topic_filter, ())):
            return
        if "+" in topic_filter or "#" in topic_filter:
            await super()._publish_retained_messages_for_subscription(subscription, session)
            return
        retained = self._retained_messages.get(topic_filter)
        handler = self._get_handler(session)
        if retained is not None and handler is not None:
            await handler.mqtt_publish(retained.topic, retained.data, min(qos, retained.qos or qos), retain=True)


class EmbeddedBroker:
    """Listens on host:port (plain MQTT) and, with certfile/keyfile, on tls_port (mqtts);
    started and stopped in the service's event loop."""

    def __init__(self, db_url, service_user, service_password, host="127.0.0.1", port=1883,
                 tls_port=None, certfile=None, keyfile=None):
        listeners = {"default": {"type": "tcp", "bind": "%s:%d" % (host, port)}}
        if tls_port:
            listeners["tls"] = {"type": "tcp", "bind": "%s:%d" % (host, tls_port), "ssl": True,
                                "certfile": certfile, "keyfile": keyfile}
        self._config = {
            "listeners": listeners,
            "plugins": {"tools.printservice.broker.ServiceAccess": {
                "db_url": db_url, "service_user": service_user,
                "service_password": service_password}},
        }
        self._broker = None
        logging.getLogger("transitions").setLevel(logging.WARNING)

    async def start(self):
        quiet = logging.getLogger("amqtt")
        quiet.setLevel(logging.CRITICAL)  # a failed start is reported once, by the exception
        try:
            broker = GuardedBroker(self._config)
            await broker.start()
        except Exception as e:  # port taken, bad certificate
            raise RuntimeError("the embedded MQTT broker cannot start: %s" % (e.__cause__ or e))
        finally:
            quiet.setLevel(logging.WARNING)
        self._broker = broker

    async def stop(self):
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
