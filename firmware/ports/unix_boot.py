# Host start-up: the command line and the board config file. Unloaded once the ports
# are built (see app.main), so it costs no heap while the agent runs.
import json
import os

from firmware.ports.unix import HostPorts

USAGE = """usage: micropython main.py [--flash DIR] [--board FILE] [--printer ADDRESS]
                          [--safe-mode] [--watchdog SECONDS]
  --flash DIR        what the board's flash holds (settings.json, ca.der, ...); default ./flash
  --board FILE       the board config; default DIR/board.json
  --printer ADDRESS  tcp://HOST:PORT (raw port 9100) or a device path (/dev/ttyUSB0, /dev/usb/lp0);
                     default: the board config's host_printer
  --safe-mode        start the console only, as with the board's button held at power-on
  --watchdog S       end the process when the agent shows no sign of life for S seconds
Type console commands (help) on standard input. Stop with Ctrl-C or SIGINT."""


class UsageError(Exception):
    pass


def parse_args(argv):
    opts = {"flash": "flash", "board": None, "printer": None, "safe-mode": False, "watchdog": "0"}
    i = 0
    while i < len(argv):
        name = argv[i]
        if name in ("--help", "-h"):
            print(USAGE)
            raise SystemExit(0)
        if name == "--safe-mode":  # as if the board's button were held at power-on
            opts["safe-mode"] = True
            i += 1
        elif name in ("--flash", "--board", "--printer", "--watchdog") and i + 1 < len(argv):
            opts[name[2:]] = argv[i + 1]
            i += 2
        else:
            raise UsageError("unknown argument %s (micropython main.py --help)" % name)
    if not opts["watchdog"].isdigit():
        raise UsageError("--watchdog takes whole seconds")
    return opts


def read_board(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        raise UsageError("cannot read board config %s" % path)
    try:
        return json.loads(data)
    except ValueError:
        raise UsageError("board config %s is not valid JSON" % path)


def build(argv, check_board):
    """HostPorts from the command line; UsageError (or check_board's error) when it is wrong."""
    opts = parse_args(argv)
    try:
        os.stat(opts["flash"])
    except OSError:
        raise UsageError("flash directory %s does not exist" % opts["flash"])
    in_flash = opts["flash"].rstrip("/") + "/board.json"
    board = check_board(read_board(opts["board"] or in_flash))
    printer = opts["printer"] or board["host_printer"]
    if not printer:
        raise UsageError("no printer: pass --printer or set host_printer in the board config")
    return HostPorts(opts["flash"], board, printer, opts["safe-mode"],
                     None if opts["board"] in (None, in_flash) else opts["board"], int(opts["watchdog"]))
