"""config, store, log and backoff."""
import json
import os

import pytest

from firmware import config
from firmware.backoff import Backoff
from firmware.log import Log
from firmware.store import CorruptFile, Flash


def test_settings_defaults_and_coercion():
    s = config.validate(config.SETTINGS, {"service_url": "https://x.test/cloudprint",
                                          "oauth_client_id": "id", "poll_interval_s": "30"}, "s")
    assert s["poll_interval_s"] == 30 and s["claim_poll_s"] == 6 and s["ca_file"] == "ca.der"
    assert config.token_url(s) == "https://x.test/cloudprint/oauth2/token"


@pytest.mark.parametrize("raw, message", [
    ({"oauth_client_id": "id"}, "service_url: missing"),
    ({"service_url": "ftp://x", "oauth_client_id": "id"}, "service_url: not an http"),
    ({"service_url": "http://x", "oauth_client_id": "id", "colour": 1}, "colour: unknown key"),
    ({"service_url": "http://x", "oauth_client_id": "id", "claim_poll_s": 1}, "claim_poll_s: must be between 5"),
    ({"service_url": "http://x", "oauth_client_id": "id", "poll_interval_s": "soon"}, "expected a whole number"),
    ({"service_url": "http://x", "oauth_client_id": "id", "log_level": "loud"}, "log_level: must be one of"),
    ({"service_url": "http://x", "oauth_client_id": 5}, "oauth_client_id: expected text"),
])
def test_settings_errors_name_the_key(raw, message):
    with pytest.raises(config.ConfigError, match=message):
        config.validate(config.SETTINGS, raw, "settings.json")


def test_board_errors():
    with pytest.raises(config.ConfigError, match="baudrate: unsupported baud rate 12345"):
        config.validate(config.BOARD, {"board": "b", "printer_language": "zpl", "baudrate": 12345}, "b")
    with pytest.raises(config.ConfigError, match="uart_tx: not a GPIO"):
        config.validate(config.BOARD, {"board": "b", "printer_language": "zpl", "uart_tx": 99}, "b")
    with pytest.raises(config.ConfigError, match="rtscts needs uart_rts and uart_cts"):
        config.validate(config.BOARD, {"board": "b", "printer_language": "zpl",
                                       "flow_control": "rtscts", "uart_rts": 4}, "b")
    with pytest.raises(config.ConfigError, match="expected a JSON object"):
        config.validate(config.BOARD, [1], "b")


def test_every_board_config_validates():
    folder = os.path.join(os.path.dirname(__file__), "..", "..", "board_configs")
    names = sorted(f for f in os.listdir(folder) if f.endswith(".json"))
    assert names
    for name in names:
        with open(os.path.join(folder, name)) as f:
            board = config.validate(config.BOARD, json.load(f), name)
        assert board["board"] + ".json" == name


def test_flash_json_roundtrip_is_atomic(tmp_path):
    flash = Flash(str(tmp_path))
    assert flash.read_json("a.json") is None
    flash.write_json("a.json", {"k": "v"})
    assert flash.read_json("a.json") == {"k": "v"}
    assert sorted(os.listdir(tmp_path)) == ["a.json"]  # no temp file left behind


def test_flash_corrupt_file(tmp_path):
    (tmp_path / "a.json").write_bytes(b"{not json")
    with pytest.raises(CorruptFile, match="a.json is not valid JSON"):
        Flash(str(tmp_path)).read_json("a.json")
    (tmp_path / "b.json").write_bytes(b"[1, 2]")
    with pytest.raises(CorruptFile, match="not hold a JSON object"):
        Flash(str(tmp_path)).read_json("b.json")


def test_log_masks_secrets_and_bounds_lines():
    lines = []
    log = Log(lines.append, "info")
    log.add_secret("1/refresh-SECRET-token")
    log.add_secret("ab")  # too short to mask safely
    log.info("got %s from %s", "1/refresh-SECRET-token", "ab")
    log.debug("hidden")
    log.warn("x" * 1000)
    assert lines[0] == "[info] got *** from ab"
    assert len(lines) == 2 and lines[1].startswith("[warn] xxx") and len(lines[1]) < 260


def test_log_keeps_a_bounded_number_of_secrets():
    log = Log(lambda s: None)
    for i in range(20):
        log.add_secret("secret-%02d" % i)
    assert len(log._secrets) == 8 and "secret-19" in log._secrets


def test_settings_secrets_stay_masked_however_often_the_agent_registers_anew():
    lines = []
    log = Log(lines.append)
    log.add_secret("client-secret-xyz", True)
    log.add_secret("wifi-password-xyz", True)
    for n in range(10):  # each registration: a code, a refresh, an access token, a broker credential
        for kind in ("code", "refresh", "access", "broker"):
            log.add_secret("%s-%d-secret" % (kind, n))
    log.info("client-secret-xyz wifi-password-xyz code-9-secret refresh-9-secret access-9-secret "
             "broker-9-secret")
    assert lines[-1] == "[info] *** *** *** *** *** ***"


def test_backoff_grows_jittered_and_capped():
    b = Backoff(lambda: 0.5, start_ms=500, factor=1.5, cap_ms=2000)
    assert [b.next_ms() for _ in range(6)] == [500, 750, 1125, 1687, 2000, 2000]
    b.reset()
    assert b.next_ms() == 500
    low, high = Backoff(lambda: 0.0), Backoff(lambda: 0.999)
    assert low.next_ms() == 250 and high.next_ms() == 749


@pytest.mark.parametrize("cut_at", ["write", "rename"])
def test_a_power_cut_mid_write_leaves_the_old_file(tmp_path, monkeypatch, cut_at):
    flash = Flash(str(tmp_path))
    flash.write_json("credentials.json", {"refresh_token": "old"})

    class PowerCut(Exception):
        pass
    if cut_at == "write":  # half the new file is on flash when the power goes
        real_open = open

        def half_open(path, mode="r", *a):
            f = real_open(path, mode, *a)
            if "w" in mode:
                real_write = f.write
                f.write = lambda data: (real_write(data[:len(data) // 2]), f.flush(),
                                        (_ for _ in ()).throw(PowerCut()))
            return f
        monkeypatch.setattr("builtins.open", half_open)
    else:
        monkeypatch.setattr(os, "rename", lambda a, b: (_ for _ in ()).throw(PowerCut()))
    with pytest.raises(PowerCut):
        flash.write_json("credentials.json", {"refresh_token": "new"})
    monkeypatch.undo()
    assert flash.read_json("credentials.json") == {"refresh_token": "old"}
    flash.write_json("credentials.json", {"refresh_token": "new"})  # the leftover is overwritten
    assert flash.read_json("credentials.json") == {"refresh_token": "new"}


def test_the_led_blinks_each_pattern_and_switches_the_pin_only_on_change():
    from firmware.indicator import Indicator, SLOT_MS
    pin = []
    led = Indicator(pin.append)
    led.show("claim")
    for slot in range(16):
        led.tick(slot * SLOT_MS + 10)
    assert pin == [1, 0, 1, 0]  # slow blink: 1 s on, 1 s off, twice
    del pin[:]
    led.show("attention")
    for slot in range(8):
        led.tick(slot * SLOT_MS)
    assert pin == [1, 0, 1, 0]  # double blink in one 2 s cycle
    Indicator().tick(0)  # no LED: nothing to drive


def test_every_wait_beats_at_least_every_beat_interval(monkeypatch):
    from firmware import clock as C
    beats = []
    t = [0]
    monkeypatch.setattr(C.time, "ticks_ms", lambda: t[0], raising=False)
    monkeypatch.setattr(C.time, "ticks_add", lambda a, b: a + b, raising=False)
    monkeypatch.setattr(C.time, "ticks_diff", lambda a, b: a - b, raising=False)

    def sleep_ms(ms):
        t[0] += ms
    monkeypatch.setattr(C.time, "sleep_ms", sleep_ms, raising=False)
    c = C.SystemClock(beats.append)
    c.sleep_ms(2000)
    assert len(beats) >= 2000 // C.BEAT_MS and max(b - a for a, b in zip(beats, beats[1:])) <= C.BEAT_MS
    c.idle = lambda ms: sleep_ms(ms)  # the console waits on its port
    n = len(beats)
    c.sleep_ms(1000)
    c.breathe()
    assert len(beats) - n >= 1000 // C.BEAT_MS + 1
