"""The embedded MQTT broker (amqtt, from PyPI) the service starts when no external broker is
given: enough for the demo and a small site. It runs in the service's event loop, beside
the HTTP servers, and decides logins and topic access from the service's database
(mqtt_access.py), so a printer's credential works the moment the token endpoint has
handed it out, and dies with the printer."""
import asyncio
import logging
from dataclasses import dataclass

from amqtt.broker import Broker
from amqtt.errors import NoDataError
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
