# Composition root: read the board config and device settings, build the ports and
# the parts, and run the agent forever. It never exits on its own: every failure
# becomes a log line and a backoff.
#
# Boot-only code (the config schemas) and registration-only code are imported when
# needed and unloaded afterwards: on a small heap, resident bytecode is what limits us.
import binascii
import gc
import os
import sys

from firmware import oauth
from firmware.backoff import Backoff
from firmware.cloudprint import ApiError, AuthRejected, CloudPrint, ServiceError, ERR_NO_JOBS, ERR_UNKNOWN_PRINTER
from firmware.http import Http, HttpError
from firmware.jobs import JobRunner
from firmware.journal import Journal
from firmware.log import Log
from firmware.modules import unload
from firmware.monitor import Monitor
from firmware.printers.base import PrinterError
from firmware.store import CorruptFile
from firmware.version import VERSION

SETTINGS = "settings.json"
CREDENTIALS = "credentials.json"
IDENTITY = "identity.json"
BOOT = "boot.json"  # starts that ended before they got to work (safe_mode.py)
STABLE_MS = 60000  # a start that lasted this long got to work, whatever it did
SAFE_BANNER_MS = 30000  # safe mode says so this often
SAFE_RETRY_MS = 600000  # a boot loop's safe mode, untouched this long, tries a normal start
UNCONFIGURED_RECHECK_MS = 5000
NAP_SLICE_MS = 500


class Deleted(Exception):
    """The service confirmed that this printer no longer exists."""


TRANSIENT = (HttpError, ServiceError, oauth.OAuthError, oauth.ClientRejected, AuthRejected,
             ValueError, PrinterError, OSError)


def check_board(raw):
    from firmware import config
    try:
        return config.validate(config.BOARD, raw, "board config")
    finally:
        unload("firmware.config")


def read_settings(flash):
    """(settings, None) when valid, else (None, what is wrong)."""
    from firmware import config
    try:
        raw = flash.read_json(SETTINGS)
        if raw is None:
            return None, "%s is missing from flash" % SETTINGS
        s = config.validate(config.SETTINGS, raw, SETTINGS)
        s["token_url"] = config.token_url(s)
        if s["service_url"].startswith("https://") and not flash.exists(s["ca_file"]):
            return None, "CA certificate %s is missing (needed for https)" % s["ca_file"]
        return s, None
    except (CorruptFile, config.ConfigError) as e:
        return None, str(e)
    finally:
        unload("firmware.config")


def make_driver(board, uart, clock, fault_wait_ms):
    args = (uart, clock, board["stall_timeout_s"] * 1000, board["status_timeout_ms"],
            board["flow_control"] == "xonxoff", board["flow_window"], fault_wait_ms,
            (board["media_width_mm"], board["dpi"]))
    if board["printer_language"] == "zpl":
        from firmware.printers.zpl import ZplDriver
        return ZplDriver(*args)
    from firmware.printers.escpos import EscPosDriver
    return EscPosDriver(*args, status_back=board["status_back"], completion=board["completion_check"])


class Agent:
    def __init__(self, ports, log):
        self.ports = ports
        self.log = log
        self.clock = ports.clock
        self.flash = ports.flash
        self.backoff = Backoff(ports.rand)
        self._started = self.clock.ticks_ms()
        self._stable = False
        # what the console reports and acts on (console_commands.py)
        self.state = "starting"
        self.creds = None
        self.driver = None
        self.runner = None
        self.monitor = None
        self.notifier = None
        self.wanted = None  # "unregister": asked on the console, done by the main loop
        self.board_file = ports.board_file  # a host run's --board FILE, else None
        self.indicator = ports.indicator
        self.console = None
        read = getattr(ports, "console_read", None)
        if read is not None:
            from firmware.console import Console
            self.console = Console(read, log.say, self.flash, self, self.clock.pause_ms)
            self.clock.idle = self.console.poll

    def wait_for_settings(self):
        while True:
            settings, problem = read_settings(self.flash)
            if settings:
                return settings
            self.indicator.show("safe")
            self.state = "not configured: " + problem
            self.log.error("not configured: %s; set it on the console (type help)", problem)
            self.clock.sleep_ms(UNCONFIGURED_RECHECK_MS)
            self.mark_stable()

    def mark_stable(self, worked=False):
        """This start got to work (a round done, or a minute up): it does not count
        towards safe mode (safe_mode.py)."""
        if not self._stable and (worked or self.clock.ticks_diff(self.clock.ticks_ms(), self._started)
                                 >= STABLE_MS):
            self.flash.write_json(BOOT, {"unstable": 0})
            self._stable = True

    def safe_mode(self, reason):
        """The console only, saying so every SAFE_BANNER_MS. A boot loop's safe mode that
        nobody uses for SAFE_RETRY_MS tries a normal start: nobody need power-cycle it."""
        self.state = "safe mode: " + reason
        self.indicator.show("safe")
        asked = reason == self.ports.safe_mode_asked
        waited = 0
        typed = self.console.lines if self.console else 0
        while True:
            self.log.error("SAFE MODE (%s): only the console runs; fix the settings, then type reboot",
                           reason)
            self.clock.sleep_ms(SAFE_BANNER_MS)
            waited += SAFE_BANNER_MS
            self.mark_stable()  # the next start is a normal one
            if self.console and self.console.lines != typed:
                typed, waited = self.console.lines, 0
            if not asked and waited >= SAFE_RETRY_MS:
                self.log.warn("safe mode unused for %d min: trying a normal start", waited // 60000)
                self.ports.reboot()

    def waiting_for_claim(self, code, url):
        self.state = "waiting to be claimed: code %s at %s" % (code, url)
        self.indicator.show("claim")

    def nap(self, ms):
        """Sleep, but not past a console request."""
        end = self.clock.ticks_add(self.clock.ticks_ms(), ms)
        while self.wanted is None:
            left = self.clock.ticks_diff(end, self.clock.ticks_ms())
            if left <= 0:
                return
            self.clock.sleep_ms(min(left, NAP_SLICE_MS))

    def tick_during_job(self):
        if self.notifier is not None:
            self.notifier.tick()
        self.clock.breathe()

    def identity(self):
        """The proxy id (random, made once: a guessable one would let other printers'
        tokens list this one) and the uuid (the board's serial)."""
        try:
            ident = self.flash.read_json(IDENTITY)
        except CorruptFile:
            ident = None
        serial = self.ports.serial()
        if not ident or not ident.get("proxy") or not ident.get("uuid") or (
                ident["proxy"] == "cpa-" + serial and not self.flash.exists(CREDENTIALS)):
            ident = {"proxy": "cpa-" + binascii.hexlify(os.urandom(10)).decode(), "uuid": serial}
            self.flash.write_json(IDENTITY, ident)
        return ident

    def credentials(self):
        try:
            creds = self.flash.read_json(CREDENTIALS)
        except CorruptFile as e:
            self.log.error("%s; registering anew", e)
            return None
        if creds and creds.get("printer_id") and creds.get("refresh_token"):
            return creds
        return None

    def confirm_registered(self, api, printer_id, hint):
        """A hint, a 413 from /fetch or an "unknown printer" says the printer may be gone:
        only the service's own word (/printer, or invalid_grant) wipes it (DESIGN §1.4)."""
        try:
            exists = api.printer_exists(printer_id)
        except oauth.Revoked as e:
            raise Deleted("the service deleted this printer: %s, and %s" % (hint, e))
        if not exists:
            raise Deleted("the service deleted this printer: %s, and /printer says unknown" % hint)
        if hint != "no jobs":
            self.log.warn("%s, but the service still has this printer: ignored", hint)

    def forget_registration(self, why, journal, notifier):
        self.log.warn("printer is no longer registered (%s); wiping credentials and journal", why)
        self.flash.remove(CREDENTIALS)
        journal.wipe()
        if notifier is not None:
            notifier.forget()
            notifier.deleted = False

    def make_notifier(self, settings, ca):
        """Push hints over MQTT when a broker is configured, else None (polling only)."""
        if not settings["mqtt_url"]:
            return None
        from firmware.mqtt import Mqtt
        from firmware.notify import Notifier, parse_broker
        tls, host, port = parse_broker(settings["mqtt_url"])
        mqtt = Mqtt(self.ports.connector(ca), self.clock, host, port, tls, settings["http_timeout_s"] * 1000)
        return Notifier(mqtt, self.clock, self.log, Backoff(self.ports.rand), settings["mqtt_keepalive_s"])

    def _poll_ms(self, settings, notifier):
        """The safety poll while push works, the fast poll while it does not; jittered
        by up to 10 % so a fleet does not poll in step."""
        s = settings["safety_poll_s"] if notifier.connected else settings["fast_poll_s"]
        return int(s * 1000 * (0.9 + 0.1 * self.ports.rand()))

    def sync_printer(self, api, creds, driver, settings):
        from firmware import cdd, local_settings
        try:
            keepalive = local_settings.keepalive_s(creds, settings)
            if cdd.sync(api, creds, driver, VERSION, local_settings.field(keepalive)):
                self.flash.write_json(CREDENTIALS, creds)
                self.log.info("told the service of new capabilities or firmware %s", VERSION)
        finally:
            unload("firmware.cdd")
            unload("firmware.local_settings")

    def apply_local_settings(self, api, creds, settings, notifier):
        """At boot and on an update_settings hint: take the owner's pending settings."""
        from firmware import local_settings
        try:
            keepalive, changed = local_settings.apply_pending(api, creds, settings, self.log)
        finally:
            unload("firmware.local_settings")
        if changed:
            self.flash.write_json(CREDENTIALS, creds)
        if notifier is not None:
            notifier.set_keepalive(keepalive)

    def register(self, api, http, driver, settings, ident):
        """(credentials, token reply) or None; see registration.py."""
        from firmware.registration import Registration
        try:
            reg = Registration(api, http, self.flash, driver, self.clock, self.log, settings,
                               settings["token_url"], ident, VERSION)
            reg.on_ticket = self.waiting_for_claim
            return reg.run()
        finally:
            unload("firmware.registration")
            unload("firmware.cdd")

    def run(self):
        log = self.log
        from firmware import safe_mode
        reason = safe_mode.reason(self.ports, self.flash, BOOT)
        unload("firmware.safe_mode")
        if reason:
            self.safe_mode(reason)
        settings = self.wait_for_settings()
        log.set_level(settings["log_level"])
        log.add_secret(settings["oauth_client_secret"], True)
        log.add_secret(settings["wifi_password"], True)
        ca = None
        if settings["service_url"].startswith("https://") or settings["mqtt_url"].startswith("mqtts://"):
            ca = self.flash.read_bytes(settings["ca_file"])
        http = Http(self.ports.connector(ca), self.clock, settings["http_timeout_s"],
                    settings["http_deadline_s"] * 1000)
        board = self.ports.board
        driver = make_driver(board, self.ports.uart, self.clock, settings["fault_wait_s"] * 1000)
        ident = self.identity()
        api = CloudPrint(http, settings["service_url"], ident["proxy"])
        monitor = Monitor(api, log, driver, self.indicator)
        journal = Journal(self.flash, log)
        runner = JobRunner(api, driver, self.clock, log, Backoff(self.ports.rand),
                           board["stream_buffer"], settings["download_deadline_s"] * 1000,
                           monitor, settings["fault_wait_s"] * 1000, journal)
        notifier = self.make_notifier(settings, ca)
        runner.tick = self.tick_during_job
        self.driver, self.runner, self.monitor, self.notifier = driver, runner, monitor, notifier
        self.ports.board = board = None  # everything it configures is built now
        self.creds = self.credentials()
        seed = None
        synced = False  # CDD and firmware checked against what the service has
        suspect = None  # an "unknown printer" to confirm with /printer before believing it
        log.info("agent %s up: %s printer, service %s, %s", VERSION, driver.language,
                 settings["service_url"], "registered" if self.creds else "unregistered")
        while True:
            delay_ms = 0
            self.clock.breathe()  # the main loop's own proof of life (watchdog, LED)
            self.mark_stable()
            try:
                if self.wanted == "unregister":
                    self.wanted = None
                    if self.creds is not None:
                        self.forget_registration("unregistered on the console", journal, notifier)
                        self.creds = None
                self.state = "registered" if self.creds else "registering"
                self.ports.network_up(settings)
                if self.creds is None:
                    api.tokens = None
                    done = self.register(api, http, driver, settings, ident)
                    if done:
                        self.creds, seed = done
                        monitor.forget()
                        synced = False  # the new registration's local settings
                    continue
                if api.tokens is None:
                    api.tokens = oauth.Tokens(http, self.clock, log, settings["token_url"],
                                              settings["oauth_client_id"],
                                              settings["oauth_client_secret"], self.creds["refresh_token"])
                    if seed:
                        api.tokens.seed(seed)
                        seed = None
                if suspect:
                    hint, suspect = suspect, None
                    self.confirm_registered(api, self.creds["printer_id"], hint)
                if not synced:
                    self.sync_printer(api, self.creds, driver, settings)
                    if notifier is not None:  # the one local setting we have is push's keepalive
                        self.apply_local_settings(api, self.creds, settings, notifier)
                    synced = True
                if notifier is not None:
                    notifier.printer_id = self.creds["printer_id"]
                    notifier.password = api.tokens.broker_password
                    if notifier.deleted:  # cleared once the service has answered
                        self.confirm_registered(api, self.creds["printer_id"], "a push hint says deleted")
                        notifier.deleted = False
                    if notifier.settings_changed:
                        self.apply_local_settings(api, self.creds, settings, notifier)
                        notifier.settings_changed = False
                try:
                    handled = runner.run_pending(self.creds["printer_id"])
                except ApiError as e:
                    if e.code != ERR_NO_JOBS:
                        raise
                    handled = 0  # nothing queued, or (reference §3.7) no such printer
                    self.confirm_registered(api, self.creds["printer_id"], "no jobs")
                gc.collect()
                log.debug("heap: %d used, %d free", gc.mem_alloc(), gc.mem_free())
                self.backoff.reset()
                self.mark_stable(True)
                monitor.show_online()
                # after finished jobs, fetch again at once: more may be queued
                delay_ms = 0 if handled else settings["poll_interval_s"] * 1000
                if not handled and notifier is not None:
                    notifier.wait(self._poll_ms(settings, notifier))
                    delay_ms = 0
            except (oauth.Revoked, Deleted) as e:
                self.forget_registration(e, journal, notifier)
                self.creds = None
            except ApiError as e:
                if e.code == ERR_UNKNOWN_PRINTER:
                    suspect = str(e)  # asked of /printer at the top of the next round
                delay_ms = self._retry_delay(e, 0)
            except PrinterError as e:
                delay_ms = self._retry_delay(e, 0)
            except TRANSIENT as e:  # the network, the service or the token endpoint
                self.indicator.show("offline")
                delay_ms = self._retry_delay(e, getattr(e, "retry_after_s", 0))
            except MemoryError:
                gc.collect()
                delay_ms = self._retry_delay("out of memory", 0)
            except Exception as e:  # never exit: say it and back off
                delay_ms = self._retry_delay("unexpected %s: %s" % (type(e).__name__, e), 0)
            if delay_ms:
                self.nap(delay_ms)

    def _retry_delay(self, err, retry_after_s):
        ms = max(self.backoff.next_ms(), retry_after_s * 1000)
        self.log.warn("%s; retrying in %d ms", err, ms)
        return ms


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
    try:
        Agent(ports, log).run()
    except KeyboardInterrupt:  # Ctrl-C, SIGINT: a deliberate stop is not a crash
        ports.flash.write_json(BOOT, {"unstable": 0})
        log.info("stopped")
    except Exception as e:  # a bug outside the loop's own handling: restart, counted
        log.error("agent crashed: %s: %s; restarting", type(e).__name__, e)
        ports.reboot()
