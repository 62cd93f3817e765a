"""SQLite storage for the print service: printers, pending registrations,
OAuth tokens, users and jobs. One connection guarded by a lock; every write commits,
so a restarted service loses nothing."""
import json
import os
import secrets
import sqlite3
import threading
import time
import uuid

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (email TEXT PRIMARY KEY, api_key TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS printers (
  id TEXT PRIMARY KEY, proxy TEXT NOT NULL, name TEXT NOT NULL, default_display_name TEXT,
  uuid TEXT, manufacturer TEXT, model TEXT, firmware TEXT, gcp_version TEXT,
  setup_url TEXT, support_url TEXT, update_url TEXT,
  capabilities TEXT NOT NULL, caps_hash TEXT, semantic_state TEXT NOT NULL,
  local_settings TEXT NOT NULL, owner TEXT, created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL, accessed_ms INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS registrations (
  token TEXT PRIMARY KEY, printer_id TEXT NOT NULL, expires_ms INTEGER NOT NULL,
  claimed_by TEXT, auth_code TEXT, poll_secret TEXT, code_given INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS rate (
  bucket TEXT NOT NULL, ends_ms INTEGER NOT NULL, hits INTEGER NOT NULL, PRIMARY KEY (bucket, ends_ms));
CREATE TABLE IF NOT EXISTS tokens (
  token TEXT PRIMARY KEY, kind TEXT NOT NULL, printer_id TEXT NOT NULL, client_id TEXT NOT NULL,
  expires_ms INTEGER, used INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, printer_id TEXT NOT NULL, title TEXT NOT NULL, owner TEXT NOT NULL,
  content_type TEXT NOT NULL, content BLOB NOT NULL, ticket TEXT NOT NULL,
  state TEXT NOT NULL, create_ms INTEGER NOT NULL, update_ms INTEGER NOT NULL,
  delivery_attempts INTEGER NOT NULL DEFAULT 0, pages_printed INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS jobs_by_printer ON jobs (printer_id, create_ms);
"""

TERMINAL = ("DONE", "ABORTED")
# Columns added after the first release: (table, column, declaration) for databases made before
COLUMNS_ADDED = (("registrations", "poll_secret", "TEXT"),
                 ("registrations", "code_given", "INTEGER NOT NULL DEFAULT 0"))
# Claim codes: Crockford's base32 (no I, L, O, U: nothing to misread), 10 symbols = 50 bits
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10


def now_ms():
    return int(time.time() * 1000)


def new_id():
    return str(uuid.uuid4())


def new_secret(n=32):
    return secrets.token_urlsafe(n)


def new_claim_code():
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normal_claim_code(text):
    """A typed claim code as stored: upper case, no spaces or dashes, O read as 0, I and L as 1."""
    text = (text or "").strip().upper().replace("-", "").replace(" ", "")
    return text.replace("O", "0").replace("I", "1").replace("L", "1")


def private_file(path):
    """The file at path exists and only its owner may read it (0600)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)


def adopt_database(old, new):
    """A database under an old name moves to its new one (a data directory from before a
    rename keeps its data). Checkpointed first (the last connection to close folds the WAL
    into the file), so one atomic rename moves all of it."""
    if os.path.exists(old) and not os.path.exists(new):
        db = sqlite3.connect(old)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        os.replace(old, new)


class Store:
    def __init__(self, path):
        # SQLite gives the -wal and -shm files the database file's mode: make that 0600
        # before the first connect, and keep the data directory to its owner.
        os.chmod(os.path.dirname(os.path.abspath(path)), 0o700)
        private_file(path)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        for table, column, decl in COLUMNS_ADDED:
            names = [r[1] for r in self._db.execute("PRAGMA table_info(%s)" % table)]
            if column not in names:
                self._db.execute("ALTER TABLE %s ADD COLUMN %s %s" % (table, column, decl))
        self.lock = threading.RLock()

    def close(self):
        with self.lock:
            self._db.close()

    def q(self, sql, args=()):
        with self.lock:
            return self._db.execute(sql, args).fetchall()

    def one(self, sql, args=()):
        rows = self.q(sql, args)
        return rows[0] if rows else None

    def x(self, sql, args=()):
        with self.lock:
            return self._db.execute(sql, args).rowcount

    def tx(self):
        """A transaction: `with store.tx():` groups writes atomically."""
        return _Tx(self)

    def blob(self, job_id):
        with self.lock:
            row = self._db.execute("SELECT rowid FROM jobs WHERE id=?", (job_id,)).fetchone()
            return self._db.blobopen("jobs", "content", row[0], readonly=True)

    def allow(self, bucket, limit, window_ms):
        """Count one hit in bucket; False when it is over limit hits in this window. Kept
        in the database, so every replica sees the same counts."""
        now = now_ms()
        ends = (now // window_ms + 1) * window_ms
        with self.tx() as s:
            s.x("DELETE FROM rate WHERE ends_ms <= ?", (now,))
            s.x("INSERT INTO rate VALUES (?, ?, 1) ON CONFLICT (bucket, ends_ms) DO UPDATE SET hits = hits + 1",
                (bucket, ends))
            hits = s.one("SELECT hits FROM rate WHERE bucket=? AND ends_ms=?", (bucket, ends))["hits"]
        return hits <= limit

    def hits(self, bucket, window_ms):
        """The hits counted in bucket in this window (see allow)."""
        row = self.one("SELECT hits FROM rate WHERE bucket=? AND ends_ms=?",
                       (bucket, (now_ms() // window_ms + 1) * window_ms))
        return row["hits"] if row else 0

    # users
    def ensure_user(self, email):
        row = self.one("SELECT api_key FROM users WHERE email=?", (email,))
        if row:
            return row["api_key"]
        key = new_secret()
        self.x("INSERT INTO users VALUES (?, ?)", (email, key))
        return key

    def user_for_key(self, key):
        row = self.one("SELECT email FROM users WHERE api_key=?", (key,))
        return row["email"] if row else None

    # printers
    def printer(self, printer_id, include_deleted=False):
        row = self.one("SELECT * FROM printers WHERE id=?", (printer_id,))
        if row is None or (row["deleted"] and not include_deleted):
            return None
        return row

    def set_job_state(self, job_id, state, pages=None):
        with self.lock:
            if pages is None:
                self.x("UPDATE jobs SET state=?, update_ms=? WHERE id=?",
                       (json.dumps(state), now_ms(), job_id))
            else:
                self.x("UPDATE jobs SET state=?, pages_printed=?, update_ms=? WHERE id=?",
                       (json.dumps(state), pages, now_ms(), job_id))


class _Tx:
    def __init__(self, store):
        self._s = store

    def __enter__(self):
        self._s.lock.acquire()
        self._s._db.execute("BEGIN IMMEDIATE")
        return self._s

    def __exit__(self, exc_type, *_):
        try:
            self._s._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._s.lock.release()
