"""Accounts and their API keys. Every printer and job belongs to one account (its email).

An API key is `psk_` and 43 random URL-safe characters (256 bits). Only its SHA-256 is
stored, so the key is shown once, when it is made; a lost key is revoked and replaced."""
import hashlib
import re
import secrets

from tools.printservice.store import now_ms

KEY_PREFIX = "psk_"
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}")
MAX_KEY_NAME = 80
MAX_KEYS = 100  # live keys per account


class AccountError(ValueError):
    pass


def key_hash(key):
    return hashlib.sha256(key.encode()).hexdigest()


def normal_email(email):
    email = (email or "").strip().lower()
    if not EMAIL.fullmatch(email):
        raise AccountError("not an email address: %r" % email[:80])
    return email


class Accounts:
    def __init__(self, store):
        self.store = store

    def exists(self, email):
        return self.store.get("users", email=normal_email(email)) is not None

    def any(self):
        return self.store.count("users") > 0

    def create(self, email):
        email = normal_email(email)
        with self.store.tx() as s:
            if s.get("users", email=email) is not None:
                raise AccountError("the account %s exists already" % email)
            s.add_user(email, created_ms=now_ms())
        return email

    def emails(self):
        return [u["email"] for u in self.store.all("users", order=("email",))]

    def create_key(self, email, name):
        """A new key for the account: (key id, the key). The key is not stored: show it now."""
        email, name = normal_email(email), (name or "").strip()
        if not name or len(name) > MAX_KEY_NAME:
            raise AccountError("a key needs a name of 1 to %d characters" % MAX_KEY_NAME)
        key_id, key = "k" + secrets.token_hex(6), KEY_PREFIX + secrets.token_urlsafe(32)
        with self.store.tx() as s:
            if s.get("users", email=email) is None:
                raise AccountError("no account %s" % email)
            if s.count("api_keys", email=email, revoked_ms=None) >= MAX_KEYS:
                raise AccountError("%s has %d keys; revoke one first" % (email, MAX_KEYS))
            # strictly later than the account's last key, so two keys made in the same
            # millisecond still list in the order they were made (keys orders by it)
            last = max([r["created_ms"] for r in s.all("api_keys", email=email)] or [0])
            s.insert("api_keys", id=key_id, email=email, name=name, key_hash=key_hash(key),
                     created_ms=max(now_ms(), last + 1), revoked_ms=None)
        return key_id, key

    def keys(self, email):
        """The account's keys, without the keys themselves: dicts of id, name, created_ms, revoked_ms."""
        return [{k: r[k] for k in ("id", "name", "created_ms", "revoked_ms")}
                for r in self.store.all("api_keys", order=("created_ms", "id"), email=normal_email(email))]

    def revoke_key(self, email, key_id):
        with self.store.tx() as s:
            if not s.update("api_keys", {"id": key_id, "email": normal_email(email), "revoked_ms": None},
                            revoked_ms=now_ms()):
                raise AccountError("%s has no live key %s" % (email, key_id))

    def for_key(self, key):
        """The account the key belongs to, or None (unknown or revoked)."""
        if not key:
            return None
        row = self.store.get("api_keys", key_hash=key_hash(key), revoked_ms=None)
        return row["email"] if row else None
