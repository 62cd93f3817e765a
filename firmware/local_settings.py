# The printer's local settings (reference §4.4): the owner may ask for new ones (`pending`,
# announced by an `<printerid>/update_settings` hint); the printer applies what it can and
# confirms what is in force (`current`). Ours: xmpp_timeout_value, the push channel's ping
# interval, is our MQTT keepalive; the Privet fields are meaningless here and stay false.
# Loaded only while it works.
import json

from firmware.cloudprint import as_int

KEY = "keepalive_s"  # in credentials.json: set by the owner, gone with the registration
KEEPALIVE_RANGE = (10, 1200)  # as mqtt_keepalive_s in config.py


def keepalive_s(creds, settings):
    return creds.get(KEY) or settings["mqtt_keepalive_s"]


def current(keepalive):
    return {"local_discovery": False, "access_token_enabled": False,
            "printer/local_printing_enabled": False,
            "printer/conversion_printing_enabled": False,
            "xmpp_timeout_value": keepalive}


def field(keepalive):
    return ("local_settings", json.dumps({"current": current(keepalive)}), "application/json")


def apply_pending(api, creds, settings, log):
    """Read /printer, take what is pending, confirm by /update. (keepalive now in force,
    True when creds changed and must be saved)."""
    keepalive = keepalive_s(creds, settings)
    stored = api.local_settings(creds["printer_id"])
    pending = stored.get("pending")
    changed = False
    if isinstance(pending, dict) and "xmpp_timeout_value" in pending:
        want = as_int(pending["xmpp_timeout_value"], 0)
        if KEEPALIVE_RANGE[0] <= want <= KEEPALIVE_RANGE[1]:
            changed = want != keepalive
            keepalive = creds[KEY] = want
        else:
            log.warn("local settings: xmpp_timeout_value %s is outside %d..%d s; keeping %d",
                     pending["xmpp_timeout_value"], KEEPALIVE_RANGE[0], KEEPALIVE_RANGE[1], keepalive)
    if pending is not None or stored.get("current") != current(keepalive):
        api.update(creds["printer_id"], [field(keepalive)])
        log.info("local settings confirmed: push keepalive %d s", keepalive)
    return keepalive, changed
