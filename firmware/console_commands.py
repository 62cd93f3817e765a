# The console's commands (see console.py), loaded for one line at a time; the settings
# commands (show, get, set) are in console_settings.py, loaded only for them with the
# config schemas, so that status or help costs little heap.
# console.status (console.Status) is all they see of the agent; its `wanted` asks the
# agent's main loop to act.
import gc

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
    name = words[0].lower()
    if name not in COMMANDS:
        console.write("error: unknown command %s; type help" % words[0])
        return
    handler = COMMANDS[name]
    try:
        if handler is None:  # show, get, set: loaded with the schemas they check against
            from firmware import console_settings
            console_settings.run(console, name, words[1:])
        else:
            handler(console, words[1:])
    except OSError as e:
        console.write("error: flash: %s" % e)


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


COMMANDS = {  # None: a settings command (console_settings.py)
    "help": do_help, "?": do_help, "status": do_status, "show": None, "get": None,
    "set": None, "test-print": do_test_print, "register": do_register,
    "unregister": do_unregister, "reboot": do_reboot, "factory-reset": do_factory_reset,
}
