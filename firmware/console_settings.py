# The console's settings commands (show, get, set): loaded by console_commands.py for one
# line, with the schemas in config.py they check against. Settings are checked before
# anything is written, and every write replaces the whole file atomically. Secrets are
# never printed, not by get.
import binascii
import hashlib

from firmware import config

SETTINGS = "settings.json"
BOARD = "board.json"
CA_KEY = "ca_cert"


def run(console, name, args):
    try:
        {"show": do_show, "get": do_get, "set": do_set}[name](console, args)
    except config.ConfigError as e:
        console.write("error: %s" % e)


def _where(key):
    if key in config.SETTINGS:
        return SETTINGS, config.SETTINGS
    if key in config.BOARD:
        return BOARD, config.BOARD
    raise config.ConfigError("%s: unknown setting; type show for the list" % key)


def _read(console, name):
    try:
        raw = console.flash.read_json(name)
    except Exception as e:  # a corrupt file: the next good write replaces it
        console.write("warning: %s" % e)
        raw = None
    return raw if raw is not None else {}


def _shown(spec, raw, key):
    if key not in raw:
        return "(not set)" if spec[1] == config.REQUIRED else text_of(spec[1]) + " (default)"
    if spec[0] == "secret":
        return "******** (set)" if raw[key] else "(empty)"
    return text_of(raw[key])


def _ca_name(console):
    return _read(console, SETTINGS).get("ca_file") or config.SETTINGS["ca_file"][1]


def _ca_summary(console):
    name = _ca_name(console)
    try:
        der = console.flash.read_bytes(name)
    except OSError:
        return "(no %s)" % name
    digest = binascii.hexlify(hashlib.sha256(der).digest()[:8]).decode()
    return "%s, %d bytes, sha256 %s..." % (name, len(der), digest)


def do_get(console, args):
    if len(args) != 1:
        raise config.ConfigError("usage: get KEY")
    key = args[0]
    if key == CA_KEY:
        console.write("%s = %s" % (key, _ca_summary(console)))
        return
    name, schema = _where(key)
    console.write("%s = %s" % (key, _shown(schema[key], _read(console, name), key)))


def _board_in_use(console):
    """(heading, raw board config) of the board this agent runs with."""
    path = console.status.board_file
    if path is None:
        return "[%s]" % BOARD, _read(console, BOARD)
    import json
    try:
        with open(path, "rb") as f:
            return "[board: %s, from --board]" % path, json.loads(f.read())
    except (OSError, ValueError) as e:
        console.write("warning: %s: %s" % (path, e))
        return "[board: %s, from --board]" % path, {}


def do_show(console, args):
    for name, schema in ((SETTINGS, config.SETTINGS), (BOARD, config.BOARD)):
        if name == BOARD:
            heading, raw = _board_in_use(console)
        else:
            heading, raw = "[%s]" % name, _read(console, name)
        console.write(heading)
        for key in sorted(schema):
            console.write("  %s = %s" % (key, _shown(schema[key], raw, key)))
    console.write("  %s = %s" % (CA_KEY, _ca_summary(console)))


def do_set(console, args):
    if len(args) < 2:
        raise config.ConfigError("usage: set KEY VALUE")
    key, text = args[0], args[1].strip()
    if key == CA_KEY:
        _set_ca(console, text)
        return
    name, schema = _where(key)
    spec = schema[key]
    value = parse_value(key, spec, text)
    new = dict(_read(console, name))
    new[key] = value
    if name == BOARD:  # the board file is whole: check it whole (rtscts needs its pins)
        config.validate(config.BOARD, new, "board config")
    console.flash.write_json(name, new)
    shown = "********" if spec[0] == "secret" else text_of(value)
    console.write("ok: %s = %s (applies after reboot)" % (key, shown))
    if name == BOARD and console.status.board_file is not None:
        console.write("note: this host run reads its board config from --board; start it "
                      "without --board to use board.json in the flash directory")


def _set_ca(console, text):
    try:
        der = binascii.a2b_base64(text)
    except ValueError:
        raise config.ConfigError("ca_cert: not base64")
    problem = der_certificate_problem(der)
    if problem:
        raise config.ConfigError("ca_cert: not an X.509 certificate in DER (%s)" % problem)
    console.flash.write_bytes(_ca_name(console), der)
    console.write("ok: %s = %s" % (CA_KEY, _ca_summary(console)))


def text_of(value):
    if value is None:
        return "none"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value == "":
        return '""'
    return str(value)


def parse_value(key, spec, text):
    """The typed value of a console word for a schema entry; ConfigError if it is wrong."""
    kind = spec[0]
    if kind == "bool":
        low = text.lower()
        if low in ("true", "on", "yes", "1"):
            return True
        if low in ("false", "off", "no", "0"):
            return False
        raise config.ConfigError("%s: expected true or false" % key)
    if kind == "pin" and text.lower() in ("none", "null", "-"):
        return None
    if kind in ("int", "pin", "baud"):
        digits = text[1:] if text[:1] == "-" else text
        if not digits.isdigit():
            raise config.ConfigError("%s: expected a whole number" % key)
        return config.check_value(key, spec, int(text))
    return config.check_value(key, spec, text)


def der_certificate_problem(der):
    """None when der is shaped as an X.509 certificate (a SEQUENCE of the signed part, the
    algorithm and the signature), else what is wrong. The TLS layer checks the rest."""
    pos, end, problem = _der_item(der, 0, 0x30)
    if problem:
        return problem
    if end != len(der):
        return "bytes after the certificate"
    for tag in (0x30, 0x30, 0x03):  # tbsCertificate, signatureAlgorithm, signatureValue
        pos, nxt, problem = _der_item(der, pos, tag)
        if problem:
            return problem
        pos = nxt
    return None if pos == end else "unexpected fields"


def _der_item(der, pos, tag):
    """(content start, content end, problem) of the DER item at pos."""
    if pos + 2 > len(der):
        return 0, 0, "truncated"
    if der[pos] != tag:
        return 0, 0, "unexpected tag 0x%02x" % der[pos]
    n = der[pos + 1]
    pos += 2
    if n & 0x80:
        count = n & 0x7F
        if count == 0 or count > 3 or pos + count > len(der):
            return 0, 0, "bad length"
        n = 0
        for i in range(count):
            n = (n << 8) | der[pos + i]
        pos += count
    if pos + n > len(der):
        return 0, 0, "truncated"
    return pos, pos + n, None
