# Anonymous registration (reference §3): /register, print the claim ticket, poll
# getauthcode until the owner claims the printer, exchange the code, and store the
# credentials in flash atomically. Loaded only while the printer is unregistered.
from micropython import const
import json

from firmware import cdd, local_settings, oauth
from firmware.clock import Deadline
from firmware.cloudprint import ApiError, ServiceError, ERR_NOT_CLAIMED, as_int
from firmware.http import HttpError, quote

CREDENTIALS = "credentials.json"
REGISTER_REPLY = ((b"registration_token", b"polling_url", b"invite_url", b"complete_invite_url",
                   b"token_duration"), b"printers", (b"id",), 1)  # cloudprint.pick
_EXCHANGE_TRIES = const(3)


class RegistrationError(ValueError):
    """/register answered, but not with what registration needs."""


def _text(obj, key):
    v = obj.get(key)
    if not isinstance(v, str) or not v:
        raise RegistrationError("register reply has no %s" % key)
    return v


def parse_register_reply(obj):
    printers = obj.get("printers")
    if not isinstance(printers, list) or not printers or not isinstance(printers[0], dict):
        raise RegistrationError("register reply has no printers[0]")
    ticket = {"printer_id": _text(printers[0], "id")}
    for key in ("registration_token", "polling_url", "invite_url", "complete_invite_url"):
        ticket[key] = _text(obj, key)
    if not ticket["polling_url"].startswith("http"):
        raise RegistrationError("register reply has a bad polling_url")
    duration = as_int(obj.get("token_duration"), 0)
    if duration <= 0:
        raise RegistrationError("register reply has no token_duration")
    ticket["token_duration"] = duration
    return ticket


def exchange_code(http, url, client_id, client_secret, code):
    """(refresh_token, token reply) for a fresh authorization code."""
    obj = oauth.token_request(http, url, [
        ("grant_type", "authorization_code"), ("code", code),
        ("client_id", client_id), ("client_secret", client_secret),
        ("redirect_uri", "oob"), ("scope", "https://www.googleapis.com/auth/cloudprint")])
    refresh = obj.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        raise oauth.OAuthError("token endpoint: code exchange returned no refresh_token")
    return refresh, obj


def register_fields(settings, identity, driver, version):
    language = driver.language
    caps, caps_hash = cdd.document(driver)
    name = settings["printer_name"] or driver.default_name
    return [
        ("name", name, None),
        ("default_display_name", name, None),
        ("proxy", identity["proxy"], None),
        ("uuid", identity["uuid"], None),
        ("manufacturer", "cloudprint-agent", None),
        ("model", "MicroPython " + language.upper() + " bridge", None),
        ("gcp_version", "2.0", None),
        ("firmware", version, None),
        ("setup_url", settings["service_url"], None),
        ("support_url", settings["service_url"], None),
        ("update_url", settings["service_url"], None),
        ("use_cdd", "true", None),
        ("capabilities", caps, "application/json"),
        ("capsHash", caps_hash, None),
        ("semantic_state", json.dumps(cdd.state()), "application/json"),
        local_settings.field(settings["mqtt_keepalive_s"]),
    ]


class Registration:
    def __init__(self, api, http, flash, driver, clock, log, settings, token_url,
                 identity, version, status):
        self._api = api
        self._http = http
        self._flash = flash
        self._driver = driver
        self._clock = clock
        self._log = log
        self._settings = settings
        self._token_url = token_url
        self._identity = identity
        self._version = version
        self._status = status  # the console's view: it shows the claim code (console.Status)

    def run(self):
        """(credentials, token reply) once claimed; None if the ticket expired
        or the service refused the claim (the caller registers anew)."""
        log = self._log
        log.info("registering anonymously with %s", self._settings["service_url"])
        # the reply repeats the whole printer, CDD included: only what is used is read
        reply = self._api.call("register", register_fields(
            self._settings, self._identity, self._driver, self._version),
            auth=False, multipart=True, spec=REGISTER_REPLY)
        ticket = parse_register_reply(reply)
        self._show_ticket(ticket)
        deadline = Deadline(self._clock, ticket["token_duration"] * 1000)
        poll_ms = self._settings["claim_poll_s"] * 1000
        while True:
            self._clock.sleep_ms(min(poll_ms, max(0, deadline.remaining_ms())))
            if deadline.expired():
                log.warn("claim ticket expired unclaimed; registering anew")
                return None
            try:
                claim = self._api.call("getauthcode", [], auth=False, url=ticket["polling_url"]
                                       + quote(self._settings["oauth_client_id"]).decode())
            except ApiError as e:
                if e.code == ERR_NOT_CLAIMED:
                    continue
                log.warn("registration refused (%s); registering anew", e)
                return None
            except (ServiceError, HttpError) as e:
                log.warn("claim poll failed: %s", e)
                continue
            code = claim.get("authorization_code")
            if not isinstance(code, str) or not code:
                log.warn("claimed, but the reply has no authorization_code; registering anew")
                return None
            log.add_secret(code)
            return self._exchange(ticket, claim, code)

    def _show_ticket(self, ticket):
        say = self._log.say
        say("==== Claim this printer ====")
        say("Code:  " + ticket["registration_token"])
        say("Visit: " + ticket["invite_url"])
        say("Or:    " + ticket["complete_invite_url"])
        say("Valid for %d s" % ticket["token_duration"])
        self._status.claiming(ticket["registration_token"], ticket["invite_url"])
        try:
            self._driver.write(self._driver.claim_ticket(
                ticket["registration_token"], ticket["invite_url"], ticket["complete_invite_url"]))
        except Exception as e:  # the console copy is enough to claim the printer
            self._log.warn("could not print the claim ticket: %s", e)

    def _exchange(self, ticket, claim, code):
        s = self._settings
        for attempt in range(_EXCHANGE_TRIES):
            try:
                refresh, reply = exchange_code(
                    self._http, self._token_url, s["oauth_client_id"], s["oauth_client_secret"], code)
                break
            except (oauth.OAuthError, HttpError) as e:
                self._log.warn("code exchange failed: %s", e)
                if attempt == _EXCHANGE_TRIES - 1:
                    return None
                self._clock.sleep_ms(2000)
        self._log.add_secret(refresh)
        self._log.add_secret(reply["access_token"])
        creds = {"printer_id": ticket["printer_id"], "refresh_token": refresh,
                 "xmpp_jid": claim.get("xmpp_jid") or "", "user_email": claim.get("user_email") or "",
                 # what the service was told at /register: resent by /update only on change
                 "caps_hash": cdd.document(self._driver)[1], "firmware": self._version}
        self._flash.write_json(CREDENTIALS, creds)
        self._log.info("claimed by %s; printer id %s", creds["user_email"], creds["printer_id"])
        return creds, reply
