# Composition root: read the board config, build the ports, the console and the parts
# the agent runs with, and hand them to the agent (agent.py). Nothing else happens here.
import sys

from firmware.agent import BOOT, Agent
from firmware.cloudprint import CloudPrint
from firmware.console import Status
from firmware.http import Http
from firmware.log import Log
from firmware.modules import unload


def check_board(raw):
    from firmware import config
    try:
        return config.validate(config.BOARD, raw, "board config")
    finally:
        unload("firmware.config")


def make_driver(board, uart, clock):
    args = (uart, clock, board["stall_timeout_s"] * 1000, board["status_timeout_ms"],
            board["flow_control"] == "xonxoff", board["flow_window"], (board["media_width_mm"], board["dpi"]))
    if board["printer_language"] == "zpl":
        from firmware.printers.zpl import ZplDriver
        return ZplDriver(*args)
    from firmware.printers.escpos import EscPosDriver
    return EscPosDriver(*args, status_back=board["status_back"], completion=board["completion_check"])


class Parts:
    """What the agent runs with once its settings are known, wired once."""

    def __init__(self, ports, log, status, settings, proxy):
        from firmware.backoff import Backoff
        from firmware.jobs import JobRunner
        from firmware.journal import Journal
        from firmware.monitor import Monitor
        clock = ports.clock
        ca = None
        if settings["service_url"].startswith("https://") or settings["mqtt_url"].startswith("mqtts://"):
            ca = ports.flash.read_bytes(settings["ca_file"])
        self.http = Http(ports.connector(ca), clock, settings["http_timeout_s"], settings["http_deadline_s"] * 1000)
        board = ports.board
        self.driver = make_driver(board, ports.uart, clock)
        self.api = CloudPrint(self.http, settings["service_url"], proxy)
        self.monitor = Monitor(self.api, log, self.driver, ports.indicator, status)
        self.journal = Journal(ports.flash, log)
        self.notifier = None  # push hints when a broker is configured, else polling only
        if settings["mqtt_url"]:
            from firmware.mqtt import Mqtt
            from firmware.notify import Notifier, parse_broker
            tls, host, port = parse_broker(settings["mqtt_url"])
            mqtt = Mqtt(ports.connector(ca), clock, host, port, tls, settings["http_timeout_s"] * 1000)
            self.notifier = Notifier(mqtt, clock, log, Backoff(ports.rand), settings["mqtt_keepalive_s"])
        self.runner = JobRunner(self.api, self.driver, clock, log, Backoff(ports.rand), board["stream_buffer"],
                                settings["download_deadline_s"] * 1000, self.monitor,
                                settings["fault_wait_s"] * 1000, self.journal, status, self.notifier)
        ports.board = None  # everything it configures is built now


def main(argv):
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
        return
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
    try:
        from firmware import safe_mode
        reason = safe_mode.reason(ports, ports.flash, BOOT)
        if reason:
            safe_mode.hold(reason, ports, log, status, console, BOOT)
        unload("firmware.safe_mode")
        Agent(ports, log, status, console, lambda settings, proxy: Parts(ports, log, status, settings, proxy)).run()
    except KeyboardInterrupt:  # Ctrl-C, SIGINT: a deliberate stop is not a crash
        ports.flash.write_json(BOOT, {"unstable": 0})
        log.info("stopped")
    except Exception as e:  # a bug outside the loop's own handling: restart, counted
        log.error("agent crashed: %s: %s; restarting", type(e).__name__, e)
        ports.reboot()
