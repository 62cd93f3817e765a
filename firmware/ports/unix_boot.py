# Host start-up: the command line and the board config file. Unloaded once the ports
# are built (see app.main), so it costs no heap while the agent runs.
import json
import os

from firmware.ports.unix import HostPorts

USAGE = ("usage: micropython main.py [--flash DIR] [--board FILE] "
         "[--printer tcp://HOST:PORT | DEVICE] [--safe-mode]")


class UsageError(Exception):
    pass


def parse_args(argv):
    opts = {"flash": "flash", "board": None, "printer": None, "safe-mode": False}
    i = 0
    while i < len(argv):
        name = argv[i]
        if name == "--safe-mode":  # as if the board's button were held at power-on
            opts["safe-mode"] = True
            i += 1
        elif name in ("--flash", "--board", "--printer") and i + 1 < len(argv):
            opts[name[2:]] = argv[i + 1]
            i += 2
        else:
            raise UsageError("unknown argument %s\n%s" % (name, USAGE))
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
                     opts["board"] in (None, in_flash))
