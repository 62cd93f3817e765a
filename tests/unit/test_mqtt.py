from firmware import mqtt


def test_remaining_length_is_the_mqtt_varint():
    assert [mqtt._remaining_length(n) for n in (0, 127, 128, 16383, 16384, 2097151)] == [
        b"\x00", b"\x7f", b"\x80\x01", b"\xff\x7f", b"\x80\x80\x01", b"\xff\xff\x7f"]


def test_connect_packet_bytes():
    p = mqtt.connect_packet("p1", "p1", "pw", 60, "t/status", "offline")
    body = (b"\x00\x04MQTT\x04" + bytes((0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80,)) + b"\x00\x3c"
            + b"\x00\x02p1" + b"\x00\x08t/status" + b"\x00\x07offline" + b"\x00\x02p1" + b"\x00\x02pw")
    assert p == b"\x10" + bytes((len(body),)) + body
    assert mqtt.connect_packet("c", None, None, 4, None, None) == b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x04\x00\x01c"


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
