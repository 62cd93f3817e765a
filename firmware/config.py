# Device settings (settings.json in flash) and board configs (board_configs/*.json):
# one schema each, defaults, and a clear one-line error for every bad key.
#
# Schema entry: key -> (kind, default, extra). default REQUIRED means the key must be
# given. Kinds: str, secret (a str never shown), url (http/https), mqtturl, int (extra = (lo, hi)),
# choice (extra = options), pin (GPIO number or null), baud, bool.

REQUIRED = "<required>"
BAUDS = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
MAX_STR = 256

SETTINGS = {
    "service_url": ("url", REQUIRED, None),
    "oauth_url": ("url", "", None),  # "" means <service_url>/oauth2/token
    "oauth_client_id": ("str", REQUIRED, None),
    "oauth_client_secret": ("secret", "", None),
    "ca_file": ("str", "ca.der", None),
    "printer_name": ("str", "", None),  # "": "Label printer" (ZPL) or "Receipt printer" (ESC/POS)
    "wifi_ssid": ("str", "", None),
    "wifi_password": ("secret", "", None),
    "poll_interval_s": ("int", 60, (1, 3600)),
    "claim_poll_s": ("int", 6, (5, 60)),
    "http_timeout_s": ("int", 15, (1, 120)),
    "http_deadline_s": ("int", 120, (5, 900)),
    "download_deadline_s": ("int", 1800, (10, 86400)),
    "fault_wait_s": ("int", 3600, (10, 604800)),  # how long a job waits for paper, head...
    "mqtt_url": ("mqtturl", "", None),  # "" = no push; mqtt://HOST:PORT or mqtts://HOST:PORT
    "mqtt_keepalive_s": ("int", 60, (10, 1200)),
    "safety_poll_s": ("int", 300, (5, 86400)),  # /fetch anyway this often while push is up
    "fast_poll_s": ("int", 30, (1, 3600)),  # and this often while the broker is unreachable
    "log_level": ("choice", "info", ("debug", "info", "warn", "error")),
}

BOARD = {
    "board": ("str", REQUIRED, None),
    "description": ("str", "", None),
    "printer_language": ("choice", REQUIRED, ("zpl", "escpos")),
    "uart_id": ("int", 1, (0, 2)),
    "uart_tx": ("pin", None, None),
    "uart_rx": ("pin", None, None),
    "uart_rts": ("pin", None, None),
    "uart_cts": ("pin", None, None),
    "baudrate": ("baud", 115200, None),
    "flow_control": ("choice", "none", ("none", "rtscts", "xonxoff")),
    # XON/XOFF: bytes written at a time, so no more than this is in flight when XOFF
    # comes: keep it below the printer's buffer margin (16 B for a 45 B buffer).
    "flow_window": ("int", 64, (1, 4096)),
    "uart_txbuf": ("int", 1024, (256, 65536)),
    "uart_rxbuf": ("int", 512, (256, 65536)),
    "stream_buffer": ("int", 1024, (64, 16384)),
    "stall_timeout_s": ("int", 30, (1, 3600)),
    "status_timeout_ms": ("int", 1000, (50, 10000)),
    # the media the printer holds, for the CDD (the service draws PDF and PNG jobs to it):
    # width in mm (0: 4 in labels for ZPL, an 80 mm roll for ESC/POS) and dots per inch
    "media_width_mm": ("int", 0, (0, 300)),
    "dpi": ("int", 203, (100, 600)),
    # ESC/POS: ask for automatic status back (GS a), so paper out is known even while
    # the line is blocked. Off for printers that would print the command as text.
    "status_back": ("bool", False, None),
    # ESC/POS: how the end of a job is known: a GS r reply, or (for printers without GS r)
    # the status alone; auto asks the printer once
    "completion_check": ("choice", "auto", ("auto", "gs_r", "dle_eot")),
    "led_pin": ("pin", None, None),
    # the hardware watchdog: longer than the slowest step that cannot beat (a TLS
    # handshake, a DNS lookup, a flash write); 0 turns it off
    "watchdog_s": ("int", 90, (0, 3600)),
    "button_pin": ("pin", None, None),
    "host_printer": ("str", "", None),  # host runs only: tcp://HOST:PORT or a device path
}


class ConfigError(Exception):
    pass


def _is_url(v, schemes):
    for scheme in schemes:
        if v.startswith(scheme):
            host = v[len(scheme):].split("/", 1)[0]
            return len(host) > 0 and " " not in v
    return False


def check_value(key, spec, value):
    """The value coerced to its kind; ConfigError with a one-line reason otherwise."""
    kind, _default, extra = spec
    if kind in ("str", "secret", "url", "mqtturl"):
        if not isinstance(value, str):
            raise ConfigError("%s: expected text" % key)
        if len(value) > MAX_STR:
            raise ConfigError("%s: longer than %d characters" % (key, MAX_STR))
        if kind == "url" and value and not _is_url(value, ("http://", "https://")):
            raise ConfigError("%s: not an http:// or https:// URL" % key)
        if kind == "mqtturl" and value and not _is_url(value, ("mqtt://", "mqtts://")):
            raise ConfigError("%s: not an mqtt:// or mqtts:// URL" % key)
        return value
    if kind == "choice":
        if value not in extra:
            raise ConfigError("%s: must be one of %s" % (key, ", ".join(extra)))
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError("%s: expected true or false" % key)
        return value
    if kind == "pin" and value is None:
        return None
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ConfigError("%s: expected a whole number" % key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError("%s: expected a whole number" % key)
    if kind == "int" and not extra[0] <= value <= extra[1]:
        raise ConfigError("%s: must be between %d and %d" % (key, extra[0], extra[1]))
    if kind == "pin" and not 0 <= value <= 48:
        raise ConfigError("%s: not a GPIO number (0-48)" % key)
    if kind == "baud" and value not in BAUDS:
        raise ConfigError("%s: unsupported baud rate %d" % (key, value))
    return value


def validate(schema, raw, what):
    """Defaults filled in; ConfigError naming every bad or missing key."""
    if not isinstance(raw, dict):
        raise ConfigError("%s: expected a JSON object" % what)
    errors = []
    out = {}
    for key in raw:
        if key not in schema:
            errors.append("%s: unknown key" % key)
    for key in schema:
        spec = schema[key]
        if key in raw:
            try:
                out[key] = check_value(key, spec, raw[key])
            except ConfigError as e:
                errors.append(str(e))
        elif spec[1] == REQUIRED:
            errors.append("%s: missing" % key)
        else:
            out[key] = spec[1]
    if out.get("flow_control") == "rtscts" and (out.get("uart_rts") is None or out.get("uart_cts") is None):
        errors.append("flow_control: rtscts needs uart_rts and uart_cts")
    if errors:
        raise ConfigError("%s: %s" % (what, "; ".join(errors)))
    return out


def token_url(settings):
    return settings["oauth_url"] or settings["service_url"].rstrip("/") + "/oauth2/token"


def read_settings(flash, name):
    """(settings, None) when the device settings in flash are valid, else (None, what is wrong)."""
    from firmware.store import CorruptFile
    try:
        raw = flash.read_json(name)
        if raw is None:
            return None, "%s is missing from flash" % name
        s = validate(SETTINGS, raw, name)
        s["token_url"] = token_url(s)
        if s["service_url"].startswith("https://") and not flash.exists(s["ca_file"]):
            return None, "CA certificate %s is missing (needed for https)" % s["ca_file"]
        return s, None
    except (CorruptFile, ConfigError) as e:
        return None, str(e)
