# Safe mode: the console and nothing else, so a bad setting can always be fixed over
# serial. Loaded at boot only.
#
# boot_file counts starts that ended before they got to work (app.Agent.mark_stable:
# a round of fetching done, or a minute up). A deliberate stop (Ctrl-C, SIGINT, the
# console's reboot) clears it; so does a power-on on the ESP32 (ports.start_counts).
from firmware.store import CorruptFile

CRASH_LIMIT = 3  # starts in a row that did not get to work before safe mode


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
    if n > CRASH_LIMIT:
        return "the agent stopped %d times in a row soon after starting" % (n - 1)
    return None
