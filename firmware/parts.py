# What the agent runs with, wired from its settings in two steps. The agent imports this
# module for each step and unloads it after (agent.py), so wiring code is never resident,
# and the job runner and push are not loaded while the agent registers.
#   start    HTTP, the service API and the printer driver: all that registration needs,
#            and the identity and credentials in flash
#   serving  once registered: the journal, the monitor, push and the job runner
import binascii
import os

from firmware.cloudprint import CloudPrint
from firmware.http import Http
from firmware.store import CorruptFile

IDENTITY = "identity.json"
CREDENTIALS = "credentials.json"


def identity(flash, serial):
    """The proxy id (random, made once: a guessable one would let other printers'
    tokens list this one) and the uuid (the board's serial)."""
    try:
        ident = flash.read_json(IDENTITY)
    except CorruptFile:
        ident = None
    if not ident or not ident.get("proxy") or not ident.get("uuid") or (
            ident["proxy"] == "cpa-" + serial and not flash.exists(CREDENTIALS)):
        ident = {"proxy": "cpa-" + binascii.hexlify(os.urandom(10)).decode(), "uuid": serial}
        flash.write_json(IDENTITY, ident)
    return ident


def credentials(flash, log):
    """The credentials in flash; None when there are none (or they are unreadable)."""
    try:
        creds = flash.read_json(CREDENTIALS)
    except CorruptFile as e:
        log.error("%s; registering anew", e)
        return None
    if creds and creds.get("printer_id") and creds.get("refresh_token"):
        return creds
    return None


def make_driver(board, uart, clock):
    args = (uart, clock, board["stall_timeout_s"] * 1000, board["status_timeout_ms"],
            board["flow_control"] == "xonxoff", board["flow_window"], (board["media_width_mm"], board["dpi"]))
    if board["printer_language"] == "zpl":
        from firmware.printers.zpl import ZplDriver
        return ZplDriver(*args)
    from firmware.printers.escpos import EscPosDriver
    return EscPosDriver(*args, status_back=board["status_back"], completion=board["completion_check"])


def start(ports, settings, proxy):
    """(connector, http, api, driver, buf): what the agent needs from the start,
    and the job runner's stream buffer, taken now while the heap still has the block
    (registration and the code loaded after it leave the heap in pieces)."""
    ca = None
    if settings["service_url"].startswith("https://") or settings["mqtt_url"].startswith("mqtts://"):
        ca = ports.flash.read_bytes(settings["ca_file"])
    connector = ports.connector(ca)  # one TLS context for HTTP and push alike
    http = Http(connector, ports.clock, settings["http_timeout_s"], settings["http_deadline_s"] * 1000)
    board, ports.board = ports.board, None  # all it configures is built here: not kept
    driver = make_driver(board, ports.uart, ports.clock)
    buf = bytearray(board["stream_buffer"])
    return connector, http, CloudPrint(http, settings["service_url"], proxy), driver, buf


def serving(p, ports, log, status, settings):
    """(journal, monitor, notifier, runner): what a registered agent prints with, from
    p (agent.Parts); the notifier is None without a broker."""
    from firmware.backoff import Backoff
    from firmware.jobs import JobRunner
    from firmware.journal import Journal
    from firmware.monitor import Monitor
    clock = ports.clock
    journal = Journal(ports.flash, log)
    monitor = Monitor(p.api, log, p.driver, ports.indicator, status)
    notifier = None
    if settings["mqtt_url"]:
        from firmware.mqtt import Mqtt
        from firmware.notify import Notifier, parse_broker
        tls, host, port = parse_broker(settings["mqtt_url"])
        mqtt = Mqtt(p.connector, clock, host, port, tls, settings["http_timeout_s"] * 1000)
        notifier = Notifier(mqtt, clock, log, Backoff(ports.rand), settings["mqtt_keepalive_s"])
    runner = JobRunner(p.api, p.driver, clock, log, Backoff(ports.rand), p.buf,
                       settings["download_deadline_s"] * 1000, monitor, settings["fault_wait_s"] * 1000,
                       journal, status, notifier)
    return journal, monitor, notifier, runner
