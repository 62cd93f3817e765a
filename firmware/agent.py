# The supervisor: an explicit state machine.
#
#   (safe mode    a boot loop, or asked for: only the console runs; safe_mode.py, before this)
#   unconfigured  the settings are missing or wrong: wait for the console to fix them
#   registering   no credentials: anonymous registration and the claim (registration.py)
#   syncing       registered: tell the service our CDD and firmware, take its local settings
#   serving       print what /fetch hands out, then wait for a push hint or the poll
#
# Each step returns the next state; every failure becomes a log line and a backoff, and a
# printer the service confirms deleted goes back to registering. It never exits on its own.
# Boot-only code (the config schemas, the wiring in parts.py) and registration-only code
# are imported when needed and unloaded afterwards, and the job runner and push are
# loaded only once registered: on a small heap, resident bytecode is what limits us.
from micropython import const
import gc

from firmware import oauth
from firmware.backoff import Backoff
from firmware.cloudprint import ApiError, ERR_NO_JOBS, ERR_UNKNOWN_PRINTER
from firmware.modules import unload
from firmware.printers.base import PrinterError
from firmware.version import VERSION
from firmware.wire import WireError

SETTINGS = "settings.json"
CREDENTIALS = "credentials.json"
BOOT = "boot.json"  # starts that ended before they got to work (safe_mode.py)
STABLE_MS = 60000  # a start that lasted this long got to work, whatever it did
_UNCONFIGURED_RECHECK_MS = const(5000)
_NAP_SLICE_MS = const(500)  # how soon a console request ends a wait

UNCONFIGURED, REGISTERING, SYNCING, SERVING = "unconfigured", "registering", "syncing", "serving"
SERVING_MODULES = ("firmware.jobs", "firmware.download", "firmware.journal", "firmware.monitor",
                   "firmware.notify", "firmware.mqtt")
TRANSIENT = (WireError, oauth.ClientRejected, ValueError, PrinterError, OSError)


class Parts:
    """What the agent runs with, wired by parts.py: from the start, what parts.start
    returns; once registered, what parts.serving returns (None until then)."""

    def __init__(self, start):
        self.connector, self.http, self.api, self.driver, self.buf = start
        self.journal = self.monitor = self.notifier = self.runner = None


class Agent:
    """ports: the hardware; status: what the console sees (console.Status); console: the
    Console or None."""

    def __init__(self, ports, log, status, console):
        self.ports = ports
        self.log = log
        self.status = status
        self.console = console
        self.clock = ports.clock
        self.flash = ports.flash
        self.backoff = Backoff(ports.rand)
        self._started = self.clock.ticks_ms()
        self._stable = False
        self.settings = None
        self.ident = None  # the proxy id and uuid (parts.identity)
        self.parts = None
        self.creds = None
        self._seed = None  # the code exchange's token reply: no refresh right after a claim
        self._suspect = None  # an "unknown printer" to confirm with /printer before believing it

    # ---- the machine
    def run(self):
        """The machine, until Ctrl-C (a deliberate stop); a bug outside its own handling
        restarts the board, and the start is counted towards safe mode."""
        try:
            self._machine()
        except KeyboardInterrupt:
            self.flash.write_json(BOOT, {"unstable": 0})
            self.log.info("stopped")
        except Exception as e:
            self.log.error("agent crashed: %s: %s; restarting", type(e).__name__, e)
            self.ports.reboot()

    def _machine(self):
        state = UNCONFIGURED
        while True:
            self.clock.breathe()  # the main loop's own proof of life (watchdog, LED)
            self.mark_stable()
            delay_ms = 0
            try:
                if state == UNCONFIGURED:
                    state = self.configure()
                    continue
                if self.status.wanted == "unregister":
                    self.status.wanted = None
                    if self.creds is not None:
                        self.forget_registration("unregistered on the console")
                        state = REGISTERING
                self.ports.network_up(self.settings)
                if self._suspect and state != REGISTERING:
                    hint, self._suspect = self._suspect, None
                    self._tokens()
                    self.confirm_registered(hint)
                if state == REGISTERING:
                    state = self.register()
                elif state == SYNCING:
                    state = self.sync()
                else:
                    delay_ms = self.serve()
            except oauth.Revoked as e:  # the refresh token is dead, or the printer deleted
                self.forget_registration(e)
                state = REGISTERING
            except ApiError as e:
                if e.code == ERR_UNKNOWN_PRINTER:
                    self._suspect = str(e)  # asked of /printer at the start of the next round
                delay_ms = self._retry_delay(e, 0)
            except PrinterError as e:
                delay_ms = self._retry_delay(e, 0)
            except TRANSIENT as e:  # the network, the service or the token endpoint
                self.ports.indicator.show("offline")
                delay_ms = self._retry_delay(e, getattr(e, "retry_after_s", 0))
            except MemoryError:
                gc.collect()
                delay_ms = self._retry_delay("out of memory", 0)
            except Exception as e:  # never exit: say it and back off
                delay_ms = self._retry_delay("unexpected %s: %s" % (type(e).__name__, e), 0)
            if delay_ms:
                self.nap(delay_ms)

    def configure(self):
        """Unconfigured: wait for valid settings, then build the parts."""
        while True:
            from firmware import config
            try:
                settings, problem = config.read_settings(self.flash, SETTINGS)
            finally:
                unload("firmware.config")
            if settings:
                break
            self.ports.indicator.show("safe")
            self.status.state = "not configured: " + problem
            self.log.error("not configured: %s; set it on the console (type help)", problem)
            self.clock.sleep_ms(_UNCONFIGURED_RECHECK_MS)
            self.mark_stable()
        log = self.log
        log.set_level(settings["log_level"])
        log.add_secret(settings["oauth_client_secret"], True)
        log.add_secret(settings["wifi_password"], True)
        self.settings = settings
        from firmware import parts
        try:
            self.ident = parts.identity(self.flash, self.ports.serial())
            self.parts = p = Parts(parts.start(self.ports, settings, self.ident["proxy"]))
            self.creds = parts.credentials(self.flash, log)
        finally:
            unload("firmware.parts")
        self.status.driver = p.driver
        log.info("agent %s up: %s printer, service %s, %s", VERSION, p.driver.language,
                 settings["service_url"], "registered" if self.creds else "unregistered")
        if self.creds is None:
            return REGISTERING
        self.status.printer_id = self.creds["printer_id"]
        return SYNCING

    def register(self):
        """Registering: a claim ticket, then the claim; SYNCING once claimed."""
        self.status.state = "registering"
        self.status.printer_id = None
        p = self.parts
        if self.settings["mqtt_url"]:
            self.status.push = "not registered yet"
        p.api.tokens = None
        from firmware.registration import Registration
        try:
            reg = Registration(p.api, p.http, self.flash, p.driver, self.clock, self.log, self.settings,
                               self.settings["token_url"], self.ident, VERSION, self.status)
            done = reg.run()
        finally:
            unload("firmware.registration")
            unload("firmware.cdd")
        if not done:
            return REGISTERING
        self.creds, self._seed = done
        self.status.printer_id = self.creds["printer_id"]
        return SYNCING

    def sync(self):
        """Syncing: CDD and firmware checked against what the service has, and the owner's
        pending local settings taken."""
        self.status.state = "registered (syncing)"
        self._tokens()
        p = self.parts
        from firmware import cdd, local_settings
        try:
            keepalive = local_settings.keepalive_s(self.creds, self.settings)
            if cdd.sync(p.api, self.creds, p.driver, VERSION, local_settings.field(keepalive)):
                self.flash.write_json(CREDENTIALS, self.creds)
                self.log.info("told the service of new capabilities or firmware %s", VERSION)
        finally:
            unload("firmware.cdd")
            unload("firmware.local_settings")
        if p.runner is None:  # loaded after the CDD's code is gone: the two never share the heap
            from firmware import parts
            try:
                p.journal, p.monitor, p.notifier, p.runner = parts.serving(p, self.ports, self.log, self.status,
                                                                           self.settings)
            finally:
                unload("firmware.parts")
        if p.notifier is not None:  # the one local setting we have is push's keepalive
            self.apply_local_settings()
        return SERVING

    def serve(self):
        """Serving: one round of printing, then a wait; the delay before the next round."""
        self.status.state = "registered"
        p = self.parts
        api = self._tokens()
        printer_id = self.creds["printer_id"]
        notifier = p.notifier
        if notifier is not None:
            notifier.serve(printer_id, api.tokens.broker_password)
            self.status.push = "connected" if notifier.connected else "broker unreachable (polling)"
        try:
            handled = p.runner.run_pending(printer_id)
        except ApiError as e:
            if e.code != ERR_NO_JOBS:
                raise
            handled = 0  # nothing queued, or (reference §3.7) no such printer
            self.confirm_registered("no jobs")
        gc.collect()
        self.log.debug("heap: %d used, %d free", gc.mem_alloc(), gc.mem_free())
        self.backoff.reset()
        self.mark_stable(True)
        p.monitor.show_online()
        if handled:
            return 0  # after finished jobs, fetch again at once: more may be queued
        if notifier is None:
            return self.settings["poll_interval_s"] * 1000
        hint = self.nap(self._poll_ms(), notifier)
        self.status.push = "connected" if notifier.connected else "broker unreachable (polling)"
        if hint == notifier.DELETED:  # (named on the notifier: polling alone never loads push)
            self.confirm_registered("a push hint says deleted")
        elif hint == notifier.SETTINGS:
            self.apply_local_settings()
        return 0

    # ---- waiting
    def nap(self, ms, notifier=None):
        """Sleep ms, or wait that long for the notifier's next hint (returned), but not
        past a console request; None when no hint came."""
        if self.parts is not None:
            self.parts.http.close_idle()
        clock = self.clock
        end = clock.ticks_add(clock.ticks_ms(), ms)
        while self.status.wanted is None:
            left = clock.ticks_diff(end, clock.ticks_ms())
            if left <= 0:
                return None
            if notifier is None:
                clock.sleep_ms(min(left, _NAP_SLICE_MS))
            else:
                hint = notifier.wait(min(left, _NAP_SLICE_MS))
                if hint is not None:
                    return hint
        return None

    def _poll_ms(self):
        """The safety poll while push works, the fast poll while it does not; jittered
        by up to 10 % so a fleet does not poll in step."""
        s = self.settings
        slow = s["safety_poll_s"] if self.parts.notifier.connected else s["fast_poll_s"]
        return int(slow * 1000 * (0.9 + 0.1 * self.ports.rand()))

    # ---- boot accounting
    def mark_stable(self, worked=False):
        """This start got to work (a round done, or a minute up): it does not count
        towards safe mode (safe_mode.py)."""
        if not self._stable and (worked or self.clock.ticks_diff(self.clock.ticks_ms(), self._started)
                                 >= STABLE_MS):
            self.flash.write_json(BOOT, {"unstable": 0})
            self._stable = True

    # ---- registration
    def _tokens(self):
        """The API with its tokens (made once per registration)."""
        api = self.parts.api
        if api.tokens is None:
            s = self.settings
            api.tokens = oauth.Tokens(self.parts.http, self.clock, self.log, s["token_url"],
                                      s["oauth_client_id"], s["oauth_client_secret"],
                                      self.creds["refresh_token"])
            if self._seed:
                api.tokens.seed(self._seed)
                self._seed = None
        return api

    def confirm_registered(self, hint):
        """A hint, a 413 from /fetch or an "unknown printer" says the printer may be gone:
        only the service's own word (/printer, or invalid_grant) wipes it (DESIGN §1.4)."""
        try:
            exists = self.parts.api.printer_exists(self.creds["printer_id"])
        except oauth.Revoked as e:
            raise oauth.Revoked("the service deleted this printer: %s, and %s" % (hint, e))
        if not exists:
            raise oauth.Revoked("the service deleted this printer: %s, and /printer says unknown" % hint)
        if hint != "no jobs":
            self.log.warn("%s, but the service still has this printer: ignored", hint)

    def forget_registration(self, why):
        """Wipe what belonged to the old registration, and drop the serving parts and
        their code: registration runs without them."""
        self.log.warn("printer is no longer registered (%s); wiping credentials and journal", why)
        self.flash.remove(CREDENTIALS)
        p = self.parts
        journal = p.journal
        if journal is None:  # not serving yet in this start: the file may still be there
            from firmware.journal import Journal
            journal = Journal(self.flash, self.log)
        journal.wipe()
        p.api.tokens = None
        if p.notifier is not None:
            p.notifier.forget()
        p.journal = p.monitor = p.notifier = p.runner = None
        for name in SERVING_MODULES:
            unload(name)
        self.creds = None
        self.status.printer_id = None

    def apply_local_settings(self):
        """After syncing and on an update_settings hint: take the owner's pending settings."""
        from firmware import local_settings
        try:
            keepalive, changed = local_settings.apply_pending(self.parts.api, self.creds, self.settings,
                                                              self.log)
        finally:
            unload("firmware.local_settings")
        if changed:
            self.flash.write_json(CREDENTIALS, self.creds)
        if self.parts.notifier is not None:
            self.parts.notifier.set_keepalive(keepalive)

    def _retry_delay(self, err, retry_after_s):
        ms = max(self.backoff.next_ms(), retry_after_s * 1000)
        self.log.warn("%s; retrying in %d ms", err, ms)
        return ms
