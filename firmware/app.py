# Composition root: read the board config, build the ports, the console and its Status,
# run safe mode when it is due, and hand back the agent (agent.py) for main.py to run.
# Nothing else happens here, and main.py unloads this module before the agent runs.
import sys

from firmware.agent import BOOT, Agent
from firmware.console import Status
from firmware.log import Log
from firmware.modules import unload


def check_board(raw):
    from firmware import config
    try:
        return config.validate(config.BOARD, raw, "board config")
    finally:
        unload("firmware.config")


def main(argv):
    """The agent, ready to run; None when nothing can run (a bad board config)."""
    log = Log()
    if sys.platform == "esp32":
        from firmware.ports import esp32 as port
    else:
        from firmware.ports import unix_boot as port
    try:
        ports = port.build(argv, check_board)
    except Exception as e:  # bad command line or board config: nothing can run
        log.error("cannot start: %s", e)
        if sys.platform != "esp32":
            sys.exit(2)
        return None
    finally:
        if sys.platform != "esp32":
            unload("firmware.ports.unix_boot")
    status = Status(ports.indicator, ports.network_status, ports.reboot, ports.board_file)
    console = None
    read = getattr(ports, "console_read", None)
    if read is not None:
        from firmware.console import Console
        console = Console(read, log.say, ports.flash, status, ports.clock.pause_ms)
        ports.clock.idle = console.poll  # the console runs whenever the agent waits
    from firmware import safe_mode
    try:
        reason = safe_mode.reason(ports, ports.flash, BOOT)
        if reason:
            safe_mode.hold(reason, ports, log, status, console, BOOT)  # never returns
    except KeyboardInterrupt:  # Ctrl-C in safe mode: a deliberate stop, as in Agent.run
        ports.flash.write_json(BOOT, {"unstable": 0})
        log.info("stopped")
        return None
    except Exception as e:  # a bug in safe mode itself: restart, counted
        log.error("safe mode crashed: %s: %s; restarting", type(e).__name__, e)
        ports.reboot()
    finally:
        unload("firmware.safe_mode")
    return Agent(ports, log, status, console)
