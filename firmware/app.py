# Composition root: read the board config and device settings, build the ports and
# the parts, and run the agent forever. It never exits on its own: every failure
# becomes a log line and a backoff.
import gc
import sys

from firmware import config, oauth
from firmware.backoff import Backoff
from firmware.cloudprint import ApiError, AuthRejected, CloudPrint, ServiceError, ERR_UNKNOWN_PRINTER
from firmware.http import Http, HttpError
from firmware.jobs import JobRunner
from firmware.log import Log
from firmware.printers.base import PrinterError
from firmware.registration import CREDENTIALS, Registration, RegistrationError
from firmware.store import CorruptFile

VERSION = "0.1.0"
SETTINGS = "settings.json"
IDENTITY = "identity.json"
UNCONFIGURED_RECHECK_MS = 5000

TRANSIENT = (HttpError, ServiceError, oauth.OAuthError, oauth.ClientRejected, AuthRejected,
             RegistrationError, PrinterError, OSError)


def make_driver(board, uart, clock):
    if board["printer_language"] == "zpl":
        from firmware.printers.zpl import ZplDriver as D
    else:
        from firmware.printers.escpos import EscPosDriver as D
    return D(uart, clock, board["stall_timeout_s"] * 1000, board["status_timeout_ms"])


class Agent:
    def __init__(self, ports, log):
        self.ports = ports
        self.log = log
        self.clock = ports.clock
        self.flash = ports.flash
        self.backoff = Backoff(ports.rand)

    def load_settings(self):
        """Valid settings, or None after saying on the console what is wrong."""
        try:
            raw = self.flash.read_json(SETTINGS)
            if raw is None:
                self.log.error("not configured: %s is missing from flash", SETTINGS)
                return None
            settings = config.validate(config.SETTINGS, raw, SETTINGS)
            if settings["service_url"].startswith("https://") and not self.flash.exists(settings["ca_file"]):
                self.log.error("not configured: CA certificate %s is missing (needed for https)",
                               settings["ca_file"])
                return None
            return settings
        except (CorruptFile, config.ConfigError) as e:
            self.log.error("not configured: %s", e)
            return None

    def wait_for_settings(self):
        settings = self.load_settings()
        while settings is None:
            self.clock.sleep_ms(UNCONFIGURED_RECHECK_MS)
            settings = self.load_settings()
        return settings

    def identity(self):
        try:
            ident = self.flash.read_json(IDENTITY)
        except CorruptFile:
            ident = None
        if not ident or not ident.get("proxy") or not ident.get("uuid"):
            serial = self.ports.serial()
            ident = {"proxy": "cpa-" + serial, "uuid": serial}
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

    def forget_registration(self, why):
        self.log.warn("printer is no longer registered (%s); wiping credentials", why)
        self.flash.remove(CREDENTIALS)

    def run(self):
        log = self.log
        settings = self.wait_for_settings()
        log.set_level(settings["log_level"])
        log.add_secret(settings["oauth_client_secret"])
        log.add_secret(settings["wifi_password"])
        ca = None
        if settings["service_url"].startswith("https://"):
            ca = self.flash.read_bytes(settings["ca_file"])
        http = Http(self.ports.connector(ca), self.clock, settings["http_timeout_s"],
                    settings["http_deadline_s"] * 1000)
        board = self.ports.board
        driver = make_driver(board, self.ports.uart, self.clock)
        ident = self.identity()
        api = CloudPrint(http, settings["service_url"], ident["proxy"])
        token_url = config.token_url(settings)
        runner = JobRunner(api, driver, self.clock, log, Backoff(self.ports.rand),
                           board["stream_buffer"], settings["download_deadline_s"] * 1000)
        creds = self.credentials()
        seed = None
        log.info("agent %s up: %s printer, service %s, %s", VERSION, driver.language,
                 settings["service_url"], "registered" if creds else "unregistered")
        while True:
            delay_ms = 0
            try:
                self.ports.network_up(settings)
                if creds is None:
                    api.tokens = None
                    done = Registration(api, http, self.flash, driver, self.clock, log, settings,
                                        token_url, ident, VERSION).run()
                    if done:
                        creds, access, expires = done
                        seed = (access, expires)
                    continue
                if api.tokens is None:
                    api.tokens = oauth.Tokens(http, self.clock, log, token_url, settings["oauth_client_id"],
                                              settings["oauth_client_secret"], creds["refresh_token"])
                    if seed:
                        api.tokens.seed(seed[0], seed[1])
                        seed = None
                runner.run_pending(creds["printer_id"])
                self.backoff.reset()
                delay_ms = settings["poll_interval_s"] * 1000
            except oauth.Revoked as e:
                self.forget_registration(e)
                creds = None
            except ApiError as e:
                if e.code == ERR_UNKNOWN_PRINTER:
                    self.forget_registration(e)
                    creds = None
                else:
                    delay_ms = self._retry_delay(e, 0)
            except TRANSIENT as e:
                delay_ms = self._retry_delay(e, getattr(e, "retry_after_s", 0))
            except MemoryError:
                gc.collect()
                delay_ms = self._retry_delay("out of memory", 0)
            except Exception as e:  # never exit: say it and back off
                delay_ms = self._retry_delay("unexpected %s: %s" % (type(e).__name__, e), 0)
            if delay_ms:
                self.clock.sleep_ms(delay_ms)

    def _retry_delay(self, err, retry_after_s):
        ms = max(self.backoff.next_ms(), retry_after_s * 1000)
        self.log.warn("%s; retrying in %d ms", err, ms)
        return ms


def main(argv):
    log = Log()
    if sys.platform == "esp32":
        from firmware.ports import esp32 as port
    else:
        from firmware.ports import unix as port
    try:
        ports = port.build(argv)
    except Exception as e:  # bad command line or board config: nothing can run
        log.error("cannot start: %s", e)
        if sys.platform != "esp32":
            sys.exit(2)
        return
    Agent(ports, log).run()
