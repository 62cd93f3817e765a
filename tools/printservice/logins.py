"""Web logins: passwords, sessions and invitations.

Passwords are stored as argon2id hashes (argon2-cffi's defaults, RFC 9106's low-memory
profile: 64 MiB, 3 passes), and at most HASHING_AT_ONCE are computed at a time, so a burst
of logins costs a bounded amount of memory. A session is a random cookie whose SHA-256 is
stored with the session's CSRF token; a lost database leaks no cookie. An invitation is a
link with a random token, also stored as its SHA-256, used once."""
import hashlib
import hmac
import secrets
import threading

import argon2

from tools.printservice.accounts import AccountError, normal_email
from tools.printservice.store import now_ms

PASSWORD_MIN, PASSWORD_MAX = 10, 256
SESSION_TTL_MS = 14 * 24 * 3600 * 1000
INVITATION_TTL_MS = 7 * 24 * 3600 * 1000
LOGIN_FAILURES_PER_ACCOUNT = (5, 60000)  # wrong passwords, then the account waits a minute
LOGINS_PER_CLIENT = (30, 60000)  # attempts from one address, right or wrong
SIGNUPS_PER_CLIENT = (10, 3600000)  # open sign-ups from one address an hour
HASHING_AT_ONCE = 2


class LoginError(ValueError):
    """Shown to the person as it is: it never says whether an account exists."""


def _digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


class Logins:
    def __init__(self, store, accounts, hasher=None):
        self.store = store
        self.accounts = accounts
        self._hasher = hasher or argon2.PasswordHasher()
        self._hashing = threading.BoundedSemaphore(HASHING_AT_ONCE)
        self._decoy = None  # checked for unknown accounts, so they cost the same time

    def _hash(self, password):
        with self._hashing:
            return self._hasher.hash(password)

    def _verify(self, stored, password):
        with self._hashing:
            try:
                return self._hasher.verify(stored, password)
            except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
                return False

    @staticmethod
    def _check_new(password):
        if not PASSWORD_MIN <= len(password or "") <= PASSWORD_MAX:
            raise LoginError("A password has %d to %d characters." % (PASSWORD_MIN, PASSWORD_MAX))

    def set_password(self, email, password):
        """A new password for an existing account; its other sessions end."""
        email = normal_email(email)
        self._check_new(password)
        digest = self._hash(password)
        with self.store.tx() as s:
            if not s.update("users", {"email": email}, password_hash=digest):
                raise AccountError("no account %s" % email)
            s.delete("sessions", email=email)

    def sign_up(self, email, password, client):
        """A new account with a password (where the operator allows open sign-up)."""
        self._check_new(password)
        if not self.store.allow("signups:%s" % client, *SIGNUPS_PER_CLIENT):
            raise LoginError("Too many new accounts from here; try again later.")
        email = self.accounts.create(email)
        self.set_password(email, password)
        return email

    def log_in(self, email, password, client):
        """The account's email when the password is right; else LoginError."""
        if not self.store.allow("logins:%s" % client, *LOGINS_PER_CLIENT):
            raise LoginError("Too many attempts from here; wait a minute.")
        try:
            email = normal_email(email)
        except AccountError:
            raise LoginError("Wrong email or password.")
        failures = "login-failures:" + email
        if self.store.hits(failures, LOGIN_FAILURES_PER_ACCOUNT[1]) >= LOGIN_FAILURES_PER_ACCOUNT[0]:
            raise LoginError("Too many wrong passwords for this account; wait a minute.")
        user = self.store.get("users", email=email)
        stored = user["password_hash"] if user and user["password_hash"] else None
        if stored is None and self._decoy is None:
            self._decoy = self._hash(secrets.token_urlsafe(16))
        if not self._verify(stored or self._decoy, password or "") or stored is None:
            self.store.allow(failures, *LOGIN_FAILURES_PER_ACCOUNT)
            raise LoginError("Wrong email or password.")
        if self._hasher.check_needs_rehash(stored):
            self.store.update("users", {"email": email}, password_hash=self._hash(password))
        return email

    # ---- sessions
    def start(self, email):
        """A new session: (the cookie's value, its CSRF token)."""
        cookie, csrf, t = secrets.token_urlsafe(32), secrets.token_urlsafe(24), now_ms()
        self.store.insert("sessions", id_hash=_digest(cookie), email=email, csrf=csrf, created_ms=t,
                          expires_ms=t + SESSION_TTL_MS)  # the ended ones go in Api.maintain
        return cookie, csrf

    def session(self, cookie):
        """(email, CSRF token) of a live session, or None."""
        if not cookie or len(cookie) > 100:
            return None
        row = self.store.get("sessions", id_hash=_digest(cookie))
        if row is None or row["expires_ms"] < now_ms():
            return None
        return row["email"], row["csrf"]

    def end(self, cookie):
        if cookie:
            self.store.delete("sessions", id_hash=_digest(cookie))

    @staticmethod
    def csrf_ok(expected, given):
        return bool(given) and hmac.compare_digest(expected.encode(), given.encode())

    # ---- invitations
    def invite(self, by, email):
        """A sign-up token for email (an existing account without a password may use it to
        set one): put it in the link sent to them."""
        email = normal_email(email)
        user = self.store.get("users", email=email)
        if user is not None and user["password_hash"]:
            raise AccountError("%s has an account and a password already" % email)
        token, t = secrets.token_urlsafe(24), now_ms()
        self.store.insert("invitations", token_hash=_digest(token), email=email, invited_by=by,
                          created_ms=t, expires_ms=t + INVITATION_TTL_MS, used_ms=None)
        return token

    def invitation(self, token):
        """The email a live invitation is for, or None."""
        if not token or len(token) > 100:
            return None
        row = self.store.get("invitations", token_hash=_digest(token), used_ms=None)
        return row["email"] if row and row["expires_ms"] >= now_ms() else None

    def accept(self, token, password):
        """Use an invitation: its account (made now, or one made without a password) gets
        the password. An account that has a password is never taken over by one."""
        self._check_new(password)
        digest = self._hash(password)
        with self.store.tx() as s:
            row = s.get("invitations", lock=True, token_hash=_digest(token or ""), used_ms=None)
            if row is None or row["expires_ms"] < now_ms():
                raise LoginError("This invitation is used or has expired; ask for a new one.")
            user = s.get("users", email=row["email"])
            if user is not None and user["password_hash"]:
                raise LoginError("%s has a password already: log in." % row["email"])
            s.update("invitations", {"token_hash": row["token_hash"]}, used_ms=now_ms())
            if user is None:
                s.add_user(row["email"], created_ms=now_ms(), password_hash=digest)
            else:
                s.update("users", {"email": row["email"]}, password_hash=digest)
        return row["email"]
