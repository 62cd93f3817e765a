"""The composition root's start-up: bad settings are reported, never a crash."""
import json
import sys

from firmware import agent, app
from firmware.store import Flash


def read_settings(flash):
    from firmware import config
    return config.read_settings(flash, agent.SETTINGS)


def test_settings_problems_are_named(tmp_path):
    flash = Flash(str(tmp_path))
    assert read_settings(flash) == (None, "settings.json is missing from flash")
    (tmp_path / "settings.json").write_text('{"service_url": ')
    assert read_settings(flash) == (None, "settings.json is not valid JSON")
    (tmp_path / "settings.json").write_text(json.dumps(
        {"service_url": "https://svc/cloudprint", "oauth_client_id": "id", "baud": 1}))
    assert read_settings(flash) == (None, "settings.json: baud: unknown key")
    (tmp_path / "settings.json").write_text(json.dumps(
        {"service_url": "https://svc/cloudprint", "oauth_client_id": "id"}))
    assert read_settings(flash) == (None, "CA certificate ca.der is missing (needed for https)")
    (tmp_path / "ca.der").write_bytes(b"0\x82")
    settings, problem = read_settings(flash)
    assert problem is None and settings["token_url"] == "https://svc/cloudprint/oauth2/token"


def test_boot_only_modules_are_unloaded():
    app.check_board({"board": "b", "printer_language": "zpl"})
    assert "firmware.config" not in sys.modules
