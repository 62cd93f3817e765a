# OAuth2 for the printer: the authorization-code exchange, refresh before expiry, and
# telling a revoked grant (the owner deleted the printer) from a passing failure.
from micropython import const
from firmware import http as H
from firmware import jsonpick
from firmware.wire import WireError

_REFRESH_AT_PERCENT = const(80)
MAX_REPLY = 8192


class Revoked(Exception):
    """The registration is gone: the token endpoint says invalid_grant (the refresh
    token is dead), or the service confirms the printer deleted; it registers anew."""


class ClientRejected(Exception):
    """invalid_client: the configured OAuth client id or secret is wrong."""


class OAuthError(WireError):
    """A transient failure of the token endpoint (5xx, timeout, malformed reply)."""


def token_request(http, url, fields):
    body = H.urlencode(fields)
    resp = http.request("POST", url, [("Content-Type", "application/x-www-form-urlencoded")], body)
    try:
        status = resp.status
        raw = resp.read_all(MAX_REPLY)
    finally:
        resp.close()
    try:
        obj = jsonpick.loads(raw)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        raise OAuthError("token endpoint: HTTP %d, reply is not a JSON object" % status)
    if status == 200:
        if not isinstance(obj.get("access_token"), str) or not obj["access_token"]:
            raise OAuthError("token endpoint: reply has no access_token")
        return obj
    err = obj.get("error")
    if status in (400, 401) and err == "invalid_grant":
        raise Revoked("refresh token revoked (invalid_grant)")
    if status in (400, 401) and err == "invalid_client":
        raise ClientRejected("OAuth client id or secret refused (invalid_client)")
    raise OAuthError("token endpoint: HTTP %d %s" % (status, err if isinstance(err, str) else ""))


def expires_in(obj):
    try:
        n = int(obj.get("expires_in", 3600))
    except (TypeError, ValueError):
        n = 3600
    return n if n > 0 else 3600


class Tokens:
    """The access token and the push broker credential (the token reply's extra
    mqtt_password field), kept in RAM only; refreshed at 80 % of the token's lifetime."""

    def __init__(self, http, clock, log, url, client_id, client_secret, refresh_token):
        self._http = http
        self._clock = clock
        self._log = log
        self._url = url
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh = refresh_token
        self._access = None
        self._broker = None
        self._renew_at = 0
        log.add_secret(refresh_token)
        log.add_secret(client_secret, True)

    def seed(self, reply):
        """The token reply of the code exchange: no refresh needed right after claiming."""
        self._take(reply)

    def _take(self, reply):
        if self._access:
            self._log.forget_secret(self._access)
        self._access = reply["access_token"]
        self._log.add_secret(self._access)
        life_ms = expires_in(reply) * 1000 * _REFRESH_AT_PERCENT // 100
        self._renew_at = self._clock.ticks_add(self._clock.ticks_ms(), life_ms)
        broker = reply.get("mqtt_password")
        if isinstance(broker, str) and broker and broker != self._broker:
            if self._broker:
                self._log.forget_secret(self._broker)
            self._log.add_secret(broker)
            self._broker = broker

    def invalidate(self):
        self._access = None

    def access_token(self):
        if self._access is None or self._clock.ticks_diff(self._renew_at, self._clock.ticks_ms()) <= 0:
            self._take(token_request(self._http, self._url, [
                ("grant_type", "refresh_token"), ("refresh_token", self._refresh),
                ("client_id", self._client_id), ("client_secret", self._client_secret)]))
            self._log.info("access token refreshed")
        return self._access

    def broker_password(self):
        """The push broker password, or None when the service hands out none."""
        self.access_token()
        return self._broker
