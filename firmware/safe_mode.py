# Safe mode: the console and nothing else, so a bad setting can always be fixed over
# serial. Loaded at boot only.
from firmware.store import CorruptFile

CRASH_LIMIT = 3  # starts in a row that did not last (app.STABLE_MS) before safe mode


def reason(ports, flash, boot_file):
    """Why this start is in safe mode, or None. Counts the start in boot_file."""
    if getattr(ports, "button_held", False):
        return "the button was held at power-on"
    try:
        boot = flash.read_json(boot_file) or {}
    except CorruptFile:
        boot = {}
    n = boot.get("unstable")
    n = n + 1 if isinstance(n, int) and n >= 0 else 1
    flash.write_json(boot_file, {"unstable": n})
    if n > CRASH_LIMIT:
        return "the agent stopped %d times in a row within a minute of starting" % (n - 1)
    return None
