# The console's commands (see console.py), loaded for one line at a time.
#
# Settings are checked against the schemas in config.py before anything is written, and
# every write replaces the whole file atomically. Secrets are never printed, not by get.
# console.status (console.Status) is all they see of the agent; its `wanted` asks the
# agent's main loop to act.
import binascii
import gc
import hashlib

from firmware import config

SETTINGS = "settings.json"
BOARD = "board.json"
CA_KEY = "ca_cert"
HELP = (
    "commands:",
    "  help                  this list",
    "  status                registration, printer id, network, last job, printer, memory",
    "  show                  every setting (secrets masked)",
    "  get KEY               one setting",
    "  set KEY VALUE         change a setting (checked, then saved; applies after reboot)",
    "  set ca_cert BASE64    the service's CA certificate: DER, base64, on one line",
    "  test-print            print a test label or receipt",
    "  register              registration state, or start it now",
    "  unregister yes        forget the claim: wipe credentials and journal",
    "  reboot                restart the agent",
    "  factory-reset yes     wipe settings, claim, journal and identity, then reboot",
)
FACTORY_FILES = ("settings.json", "credentials.json", "journal.json", "identity.json", "boot.json")


def run(console, text):
    words = text.strip().split(None, 2)
    if not words:
        return
    handler = COMMANDS.get(words[0].lower())
    if handler is None:
        console.write("error: unknown command %s; type help" % words[0])
        return
    try:
        handler(console, words[1:])
    except config.ConfigError as e:
        console.write("error: %s" % e)
    except OSError as e:
        console.write("error: flash: %s" % e)


# ---- settings
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


# ---- actions
def do_help(console, args):
    for line in HELP:
        console.write(line)


def do_status(console, args):
    from firmware.version import VERSION
    a = console.status
    mem_free = getattr(gc, "mem_free", None)
    for name, value in (
            ("state", a.state),
            ("printer id", a.printer_id or "none (not registered)"),
            ("network", a.network()),
            ("push", a.push),
            ("last job", a.last_job or "none since start"),
            ("printer", a.printer),
            ("led", a.indicator.pattern),
            ("free memory", "%d bytes" % mem_free() if mem_free else "unknown"),
            ("firmware", VERSION)):
        console.write("%-13s %s" % (name + ":", value))


def do_test_print(console, args):
    from firmware.version import VERSION
    a = console.status
    if a.busy:
        console.write("error: a job is printing; try again when it is done")
    elif a.driver is None:
        console.write("error: not configured yet: no printer to print on")
    else:
        page = a.driver.test_page(VERSION)
        a.driver.write(page)
        console.write("ok: test page sent (%d bytes); printer: %s" % (len(page), a.driver.status()))


def do_register(console, args):
    printer_id = console.status.printer_id
    if printer_id is None:
        console.write("registration is under way: the claim code is on the console and the printer")
    else:
        console.write("already registered as %s; type unregister yes first" % printer_id)


def do_unregister(console, args):
    a = console.status
    if args != ["yes"]:
        console.write("this wipes the credentials: the printer must be claimed again. "
                      "Type: unregister yes")
    elif a.printer_id is None:
        console.write("not registered: nothing to forget")
    else:
        a.wanted = "unregister"  # the main loop does it between steps, never mid-job
        console.write("ok: unregistering once the current step is done")


def reboot(console):
    console.flash.write_json("boot.json", {"unstable": 0})  # asked for: not a crash
    console.status.reboot()


def do_reboot(console, args):
    console.write("rebooting")
    reboot(console)


def do_factory_reset(console, args):
    if args != ["yes"]:
        console.write("this wipes all settings and the claim. Type: factory-reset yes")
        return
    for name in FACTORY_FILES:
        console.flash.remove(name)
    console.write("factory reset done; rebooting")
    reboot(console)


COMMANDS = {
    "help": do_help, "?": do_help, "status": do_status, "show": do_show, "get": do_get,
    "set": do_set, "test-print": do_test_print, "register": do_register,
    "unregister": do_unregister, "reboot": do_reboot, "factory-reset": do_factory_reset,
}


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
