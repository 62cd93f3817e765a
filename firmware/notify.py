# Push hints over MQTT, with polling as the safety net (DESIGN §1.4): a hint only means
# "ask the service now". The agent waits on Notifier.wait() where it would sleep and gets
# one hint back; the job runner calls tick() while it prints, so pings keep going during
# a long job, and what came meanwhile is handed out by the next waits, one at a time.
from micropython import const
from firmware.mqtt import MqttError

TOPIC = "cloudprint/printers/"
_DRAIN_MS = const(10)  # quiet time that ends a burst of hints
_DRAIN_MAX = const(64)
# The hints, most urgent first: the printer may be deleted, its local settings changed,
# jobs may be queued (also after a (re)connect: hints may have been missed meanwhile).
_BITS = ((1, "deleted"), (2, "settings"), (4, "fetch"))


def parse_broker(url):
    """(use_tls, host, port) from mqtt://HOST[:PORT] or mqtts://HOST[:PORT]."""
    for scheme, tls, port in (("mqtts://", True, 8883), ("mqtt://", False, 1883)):
        if url.startswith(scheme):
            rest = url[len(scheme):].split("/", 1)[0]
            i = rest.rfind(":")
            if i > 0:
                return tls, rest[:i], int(rest[i + 1:])
            return tls, rest, port
    raise ValueError("broker URL must start with mqtt:// or mqtts://")


class Notifier:
    DELETED, SETTINGS, FETCH = (hint for _, hint in _BITS)

    def __init__(self, mqtt, clock, log, backoff, keepalive_s):
        self._mqtt = mqtt
        self._clock = clock
        self._log = log
        self._backoff = backoff
        self._keepalive_ms = keepalive_s * 1000
        self._next_try = clock.ticks_ms()
        self._last_ping = 0
        self._due = 0  # hints not handed out yet (_BITS)
        self.printer_id = None
        self._password = None  # callable: the broker credential from the token endpoint

    def serve(self, printer_id, password):
        """Push for this printer, logging in with password() (the token endpoint's broker
        credential)."""
        if printer_id != self.printer_id:
            self.forget()
            self.printer_id = printer_id
        self._password = password

    @property
    def connected(self):
        return self._mqtt.connected

    def set_keepalive(self, keepalive_s):
        """The owner's xmpp_timeout_value: the broker learns it at the next CONNECT."""
        if keepalive_s * 1000 != self._keepalive_ms:
            self._keepalive_ms = keepalive_s * 1000
            if self._mqtt.connected:
                self._log.info("push: keepalive now %d s; reconnecting", keepalive_s)
                self.forget()

    def forget(self):
        """Drop the session and its hints (the printer registers anew under another id)."""
        self._mqtt.close()
        self._due = 0
        self._next_try = self._clock.ticks_ms()

    def _take(self):
        for bit, hint in _BITS:
            if self._due & bit:
                self._due &= ~bit
                return hint
        return None

    def _connect(self):
        pid = self.printer_id
        topic = TOPIC + pid
        password = self._password()
        if not password:
            raise MqttError("the service hands out no broker credential")
        self._mqtt.connect(pid, pid, password, self._keepalive_ms // 1000, topic + "/status",
                           "offline")
        self._mqtt.subscribe(topic)
        self._mqtt.publish(topic + "/status", "online", retain=True, qos=1)
        self._last_ping = self._clock.ticks_ms()
        self._mqtt.last_rx = self._last_ping

    def wait(self, ms):
        """Wait up to ms for a hint: the most urgent one (DELETED, SETTINGS, FETCH), or
        None when none came."""
        clock = self._clock
        end = clock.ticks_add(clock.ticks_ms(), ms)
        while not self._due:
            now = clock.ticks_ms()
            left = clock.ticks_diff(end, now)
            if not self._mqtt.connected:
                if clock.ticks_diff(now, self._next_try) >= 0:
                    try:
                        self._connect()
                        self._backoff.reset()
                        self._log.info("push: subscribed to %s%s", TOPIC, self.printer_id)
                        self._due |= 4
                    except (MqttError, OSError) as e:
                        self._mqtt.close()
                        delay = self._backoff.next_ms()
                        self._log.warn("push: %s; polling, next try in %d ms", e, delay)
                        self._next_try = clock.ticks_add(clock.ticks_ms(), delay)
                    continue
                if left <= 0:
                    break
                clock.sleep_ms(min(left, max(1, clock.ticks_diff(self._next_try, now))))
            elif left <= 0:
                break
            else:
                self._service(left)
        return self._take()

    def tick(self):
        """During a job: keep the session alive and keep hints, without waiting."""
        if self._mqtt.connected:
            self._service(0)

    def _service(self, wait_ms):
        clock = self._clock
        now = clock.ticks_ms()
        try:
            if clock.ticks_diff(now, self._mqtt.last_rx) > self._keepalive_ms * 3 // 2:
                raise MqttError("no word from the broker for %d s" % (self._keepalive_ms * 3 // 2000))
            due = clock.ticks_diff(clock.ticks_add(self._last_ping, self._keepalive_ms // 2), now)
            if due <= 0:
                self._mqtt.ping()
                self._last_ping = now
                due = self._keepalive_ms // 2
            got = self._mqtt.poll(min(wait_ms, due))
        except MqttError as e:
            self._log.warn("push: connection lost (%s); polling until it is back", e)
            self._mqtt.close()
            self._next_try = clock.ticks_ms()
            self._due |= 4  # fetch now: hints may have been lost, and the poll gets faster
            return
        if got is None:
            if self._mqtt.missed:
                self._mqtt.missed = False
                self._due |= 4
            return
        self._note(got[1])
        # a burst of hints is one fetch: take what else is already on its way
        try:
            for _ in range(_DRAIN_MAX):
                got = self._mqtt.poll(_DRAIN_MS)
                if got is None:
                    break
                self._note(got[1])
        except MqttError:
            pass  # the next wait() notices the dead session

    def _note(self, msg):
        # compared as bytes: a payload that is not UTF-8 is just not one of ours
        pid = self.printer_id.encode()
        if msg == pid + b"/delete":
            self._due |= 1
        elif msg == pid + b"/update_settings":
            self._due |= 2
        else:
            self._due |= 4
