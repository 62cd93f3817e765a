# Safe mode: the console and nothing else, so a bad setting can always be fixed over
# serial. Loaded at boot only (and kept in safe mode).
#
# boot_file counts starts that ended before they got to work (agent.Agent.mark_stable:
# a round of fetching done, or a minute up). A deliberate stop (Ctrl-C, SIGINT, the
# console's reboot) clears it; so does a power-on on the ESP32 (ports.start_counts).
from micropython import const
from firmware.store import CorruptFile

_CRASH_LIMIT = const(3)  # starts in a row that did not get to work before safe mode
_BANNER_MS = const(30000)  # safe mode says so this often
STABLE_MS = 60000  # as agent.STABLE_MS
_RETRY_MS = const(600000)  # a boot loop's safe mode, untouched this long, tries a normal start


def reason(ports, flash, boot_file):
    """Why this start is in safe mode, or None. Counts the start in boot_file."""
    if ports.safe_mode_asked:
        return ports.safe_mode_asked
    try:
        boot = flash.read_json(boot_file) or {}
    except CorruptFile:
        boot = {}
    n = boot.get("unstable")
    n = n if isinstance(n, int) and n >= 0 else 0
    n = n + 1 if ports.start_counts else 0
    flash.write_json(boot_file, {"unstable": n})
    if n > _CRASH_LIMIT:
        return "the agent stopped %d times in a row soon after starting" % (n - 1)
    return None


def hold(why, ports, log, status, console, boot_file):
    """The console only, saying so every _BANNER_MS; never returns. A boot loop's safe
    mode that nobody uses for _RETRY_MS tries a normal start: nobody need power-cycle it."""
    status.state = "safe mode: " + why
    ports.indicator.show("safe")
    asked = why == ports.safe_mode_asked
    waited = up = 0
    typed = console.lines if console else 0
    while True:
        log.error("SAFE MODE (%s): only the console runs; fix the settings, then type reboot", why)
        ports.clock.sleep_ms(_BANNER_MS)
        waited += _BANNER_MS
        up += _BANNER_MS
        if up == STABLE_MS:  # a minute up: the next start is a normal one
            ports.flash.write_json(boot_file, {"unstable": 0})
        if console and console.lines != typed:
            typed, waited = console.lines, 0
        if not asked and waited >= _RETRY_MS:
            log.warn("safe mode unused for %d min: trying a normal start", waited // 60000)
            ports.reboot()
