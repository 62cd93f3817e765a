from firmware import mqtt


def test_remaining_length_is_the_mqtt_varint():
    assert [mqtt._remaining_length(n) for n in (0, 127, 128, 16383, 16384, 2097151)] == [
        b"\x00", b"\x7f", b"\x80\x01", b"\xff\x7f", b"\x80\x80\x01", b"\xff\xff\x7f"]


def test_connect_packet_bytes():
    p = bytes(mqtt.connect_packet(bytearray(256), "p1", "p1", "pw", 60, "t/status", "offline"))
    body = (b"\x00\x04MQTT\x04" + bytes((0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80,)) + b"\x00\x3c"
            + b"\x00\x02p1" + b"\x00\x08t/status" + b"\x00\x07offline" + b"\x00\x02p1" + b"\x00\x02pw")
    assert p == b"\x10" + bytes((len(body),)) + body
    assert bytes(mqtt.connect_packet(bytearray(256), "c", None, None, 4, None, None)) == (
        b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x04\x00\x01c")
    small = bytearray(8)  # a packet longer than the buffer is laid out in one of its own
    assert bytes(mqtt.connect_packet(small, "p1", "p1", "pw", 60, "t/status", "offline")) == p
    assert small == bytearray(8)


def test_broker_urls():
    import pytest
    from firmware import config
    from firmware.notify import parse_broker
    assert parse_broker("mqtt://10.0.0.5") == (False, "10.0.0.5", 1883)
    assert parse_broker("mqtts://broker.example.com:8884/x") == (True, "broker.example.com", 8884)
    with pytest.raises(ValueError):
        parse_broker("http://broker")
    base = {"service_url": "https://s/cloudprint", "oauth_client_id": "c"}
    assert config.validate(config.SETTINGS, dict(base, mqtt_url="mqtts://b:8883"), "s")["safety_poll_s"] == 300
    with pytest.raises(config.ConfigError, match="mqtt_url: not an mqtt:// or mqtts:// URL"):
        config.validate(config.SETTINGS, dict(base, mqtt_url="tcp://b"), "s")


import pytest

from tests.fakes import FakeClock


class BrokerConn:
    """The broker's side, scripted: bytes to deliver, or None for "nothing came within
    the wait" (the clock moves by the wait). Counts how often the idle work ran."""

    def __init__(self, clock, steps):
        self.clock = clock
        self.steps = list(steps)
        self.written = bytearray()

    def write(self, data, ms=None):
        self.written += bytes(data)
        return len(data)

    def readinto(self, mv, ms=None):
        if not self.steps:
            self.clock.advance(ms or 0)
            return None
        head = self.steps[0]
        if head is None:
            self.steps.pop(0)
            self.clock.advance(ms or 0)
            return None
        n = min(len(mv), len(head))
        mv[:n] = head[:n]
        self.steps[0] = head[n:]
        if not self.steps[0]:
            self.steps.pop(0)
        return n

    def close(self):
        pass


class BreathCounter(FakeClock):
    breaths = 0

    def breathe(self):
        self.breaths += 1


def publish(topic, payload, qos=1, pid=b"\x00\x07"):
    t = bytes((len(topic) >> 8, len(topic) & 0xFF)) + topic
    body = t + (pid if qos else b"") + payload
    return bytes((0x30 | (qos << 1),)) + mqtt._remaining_length(len(body)) + body


def client(steps, clock=None):
    clock = clock or BreathCounter()
    conn = BrokerConn(clock, steps)
    m = mqtt.Mqtt(lambda h, p, t, s: conn, clock, "b", 1883, False, 5000)
    return m, conn, clock


def test_a_delete_hint_that_comes_before_the_suback_is_kept_for_poll():
    hint = publish(b"cloudprint/printers/p1", b"p1/delete")
    m, conn, clock = client([b"\x20\x02\x00\x00", hint, b"\x90\x03\x00\x01\x01"])
    m.connect("p1", "p1", "pw", 60)
    m.subscribe("cloudprint/printers/p1")
    assert m.poll(0) == ("cloudprint/printers/p1", b"p1/delete")
    assert b"\x40\x02\x00\x07" in conn.written  # it was acknowledged
    assert m.poll(0) is None and not m.missed


@pytest.mark.parametrize("packet", [
    b"\x32\x00",                                   # no topic length at all
    b"\x32\x01\x00",                               # half a topic length
    b"\x30\x05\x00\x09abc",                        # topic longer than the packet
    b"\x32\x05\x00\x03abc",                        # QoS 1 without a packet id
    b"\x36\x07\x00\x03abc\x00\x01",                # QoS 3
    b"\x30\x06\x00\x03\xff\xfe\xfdx",              # topic not UTF-8
])
def test_a_malformed_publish_is_an_mqtt_error(packet):
    m, conn, clock = client([b"\x20\x02\x00\x00", packet])
    m.connect("p1", "p1", "pw", 60)
    with pytest.raises(mqtt.MqttError):
        m.poll(1000)


def test_a_payload_that_is_not_utf8_is_delivered_as_bytes():
    m, conn, clock = client([b"\x20\x02\x00\x00", publish(b"t", b"\xff\xfe", qos=0)])
    m.connect("p1", "p1", "pw", 60)
    assert m.poll(1000) == ("t", b"\xff\xfe")


def test_a_long_wait_serves_the_idle_work_between_slices():
    m, conn, clock = client([b"\x20\x02\x00\x00"])
    m.connect("p1", "p1", "pw", 60)
    start, before = clock.now, clock.breaths
    assert m.poll(3000) is None
    assert clock.now - start >= 3000
    assert clock.breaths - before >= 3000 // mqtt.IO_SLICE_MS - 1
