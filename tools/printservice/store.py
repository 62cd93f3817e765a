"""The service's one data-access module: every table, every query, on SQLAlchemy Core.

SQLite in the data directory by default; any SQLAlchemy URL otherwise. Nothing above this
module writes SQL or knows the engine. The schema is under Alembic migrations
(`migrations/`), applied at start, so an upgrade keeps an operator's data. Job files are
kept in chunks, so a download streams a row at a time and never holds the whole file."""
import json
import os
import secrets
import time
import uuid

import alembic.command
import alembic.config
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite

TERMINAL = ("DONE", "ABORTED")
Conflict = sa.exc.IntegrityError  # a row that a unique key already has, on any engine
EXPIRED = {"version": "1.0", "state": {"type": "ABORTED", "service_action_cause": {"error_code": "EXPIRED"}}}
CHUNK = 64 * 1024  # bytes of a job file per row
# Claim codes: Crockford's base32 (no I, L, O, U: nothing to misread), 10 symbols = 50 bits
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10
MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")
ENGINES = ("sqlite", "postgresql")  # what the migrations and the upserts are written for
BASELINE = "0001"  # the schema every database made before migrations has

metadata = sa.MetaData()
Ms = sa.BigInteger  # milliseconds since the epoch do not fit 32 bits

users = sa.Table(
    "users", metadata,
    sa.Column("email", sa.Text, primary_key=True),
    sa.Column("created_ms", Ms, nullable=False, server_default="0"),
    sa.Column("password_hash", sa.Text),  # argon2; None: the account has no web login yet
    sa.Column("num", sa.BigInteger, unique=True))  # the account's number (PrintNode's id)
sessions = sa.Table(
    "sessions", metadata,
    sa.Column("id_hash", sa.Text, primary_key=True), sa.Column("email", sa.Text, nullable=False),
    sa.Column("csrf", sa.Text, nullable=False), sa.Column("created_ms", Ms, nullable=False),
    sa.Column("expires_ms", Ms, nullable=False), sa.Index("sessions_by_email", "email"))
invitations = sa.Table(
    "invitations", metadata,
    sa.Column("token_hash", sa.Text, primary_key=True), sa.Column("email", sa.Text, nullable=False),
    sa.Column("invited_by", sa.Text, nullable=False), sa.Column("created_ms", Ms, nullable=False),
    sa.Column("expires_ms", Ms, nullable=False), sa.Column("used_ms", Ms))
api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.Text, primary_key=True), sa.Column("email", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False), sa.Column("key_hash", sa.Text, nullable=False, unique=True),
    sa.Column("created_ms", Ms, nullable=False), sa.Column("revoked_ms", Ms))
printers = sa.Table(
    "printers", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("proxy", sa.Text, nullable=False), sa.Column("name", sa.Text, nullable=False),
    *(sa.Column(c, sa.Text) for c in ("default_display_name", "uuid", "manufacturer", "model", "firmware",
                                      "gcp_version", "setup_url", "support_url", "update_url")),
    sa.Column("capabilities", sa.Text, nullable=False), sa.Column("caps_hash", sa.Text),
    sa.Column("semantic_state", sa.Text, nullable=False), sa.Column("local_settings", sa.Text, nullable=False),
    sa.Column("owner", sa.Text), sa.Column("created_ms", Ms, nullable=False),
    sa.Column("updated_ms", Ms, nullable=False), sa.Column("accessed_ms", Ms, nullable=False),
    sa.Column("deleted", sa.Integer, nullable=False, server_default="0"),
    # the printer's retained status on the push broker ("online", or its last will "offline")
    sa.Column("presence", sa.Text), sa.Column("presence_ms", Ms),
    # a GCP 1.0 printer's PPD or XPS capabilities and XPS defaults, as given
    sa.Column("legacy_capabilities", sa.Text), sa.Column("legacy_defaults", sa.Text),
    sa.Column("num", sa.BigInteger, unique=True))  # its number: PrintNode's printer and computer id
registrations = sa.Table(
    "registrations", metadata,
    sa.Column("token", sa.Text, primary_key=True), sa.Column("printer_id", sa.Text, nullable=False),
    sa.Column("expires_ms", Ms, nullable=False), sa.Column("claimed_by", sa.Text),
    sa.Column("auth_code", sa.Text), sa.Column("poll_secret", sa.Text),
    sa.Column("code_given", sa.Integer, nullable=False, server_default="0"))
rate = sa.Table(
    "rate", metadata,
    sa.Column("bucket", sa.Text, primary_key=True), sa.Column("ends_ms", Ms, primary_key=True),
    sa.Column("hits", sa.Integer, nullable=False))
tokens = sa.Table(
    "tokens", metadata,
    sa.Column("token", sa.Text, primary_key=True), sa.Column("kind", sa.Text, nullable=False),
    sa.Column("printer_id", sa.Text, nullable=False), sa.Column("client_id", sa.Text, nullable=False),
    sa.Column("expires_ms", Ms), sa.Column("used", sa.Integer, nullable=False, server_default="0"),
    sa.Column("revoked", sa.Integer, nullable=False, server_default="0"))
jobs = sa.Table(
    "jobs", metadata,
    sa.Column("num", sa.Integer, primary_key=True, autoincrement=True),  # submission order
    sa.Column("id", sa.Text, nullable=False, unique=True),
    sa.Column("printer_id", sa.Text, nullable=False), sa.Column("title", sa.Text, nullable=False),
    sa.Column("owner", sa.Text, nullable=False), sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False), sa.Column("ticket", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False), sa.Column("state_type", sa.Text, nullable=False),
    sa.Column("create_ms", Ms, nullable=False), sa.Column("update_ms", Ms, nullable=False),
    sa.Column("delivery_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("pages_printed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("expires_ms", Ms),  # no printer is handed the job after this
    sa.Column("qty", sa.Integer, nullable=False, server_default="1"),  # deliveries asked for (folded into copies)
    sa.Column("source", sa.Text),  # where the app says the job came from (PrintNode's source)
    sa.Column("submitted_as", sa.Text),  # the content type as submitted: raw_base64, pdf_uri, application/pdf...
    # a raw_uri job: the file is fetched from here while the printer downloads, never stored;
    # source_auth is the JSON {"type", "user", "pass"} that fetch needs: a secret
    sa.Column("source_uri", sa.Text), sa.Column("source_auth", sa.Text),
    sa.Index("jobs_by_printer", "printer_id", "state_type", "num"))
job_events = sa.Table(  # a job's history, oldest first: QUEUED, SENT (handed to the printer), then its states
    "job_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.Text, nullable=False), sa.Column("what", sa.Text, nullable=False),
    sa.Column("cause", sa.Text), sa.Column("pages", sa.Integer), sa.Column("created_ms", Ms, nullable=False),
    sa.Index("job_events_by_job", "job_id", "id"))
webhooks = sa.Table(  # an account's webhook URLs; cursor: the last event sent (events go in order)
    "webhooks", metadata,
    sa.Column("id", sa.Text, primary_key=True), sa.Column("email", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False), sa.Column("secret", sa.Text, nullable=False),  # signs the bodies
    sa.Column("created_ms", Ms, nullable=False), sa.Column("deleted_ms", Ms),
    sa.Column("cursor", Ms, nullable=False, server_default="0"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),  # failed tries of the next event
    sa.Column("next_ms", Ms, nullable=False, server_default="0"),  # not tried again before this
    sa.Column("lease_ms", Ms, nullable=False, server_default="0"),  # a replica is sending until this
    sa.Index("webhooks_by_email", "email"))
events = sa.Table(  # what happened, for an account's webhooks: kind and facts as JSON
    "events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.Text, nullable=False), sa.Column("kind", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False), sa.Column("created_ms", Ms, nullable=False),
    sa.Index("events_by_email", "email", "id"))
deliveries = sa.Table(  # each attempt to send an event to a webhook, for the console
    "deliveries", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("webhook_id", sa.Text, nullable=False), sa.Column("event_id", Ms, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False), sa.Column("status", sa.Integer),
    sa.Column("error", sa.Text), sa.Column("took_ms", sa.Integer, nullable=False),
    sa.Column("created_ms", Ms, nullable=False),
    sa.Index("deliveries_by_webhook", "webhook_id", "id"))
counters = sa.Table(  # the last number handed out, per numbered table
    "counters", metadata,
    sa.Column("name", sa.Text, primary_key=True), sa.Column("value", sa.BigInteger, nullable=False))
idempotency_keys = sa.Table(
    "idempotency_keys", metadata,
    sa.Column("email", sa.Text, primary_key=True), sa.Column("key", sa.Text, primary_key=True),
    sa.Column("job_id", sa.Text, nullable=False), sa.Column("created_ms", Ms, nullable=False))
job_content = sa.Table(
    "job_content", metadata,
    sa.Column("job_id", sa.Text, primary_key=True), sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False))
TABLES = {t.name: t for t in metadata.sorted_tables}
READS = ("get", "all", "count", "printer", "jobs_visible_to", "last_jobs", "job_history", "numbered_jobs",
         "numbered_printers", "due_webhooks", "next_event", "recent_deliveries", "last_event_id")  # never write
CAUSE_KEYS = ("user_action_cause", "device_state_cause", "device_action_cause", "service_action_cause")


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


def state_cause(state):
    """The cause code of a job state ({"type": ..., "<kind>_cause": {...}}), or None."""
    for key in CAUSE_KEYS:
        cause = state.get(key)
        if isinstance(cause, dict):
            return cause.get("action_code") or cause.get("error_code") or "OTHER"
    return None


def numbered(column, ranges):
    """A condition: column falls in one of ranges, [(low or None, high or None)]."""
    parts = []
    for low, high in ranges:
        if low is not None and high is not None:
            parts.append(column.between(low, high))
        elif low is not None:
            parts.append(column >= low)
        elif high is not None:
            parts.append(column <= high)
        else:
            parts.append(sa.true())
    return sa.or_(*parts) if parts else sa.false()


def private_file(path):
    """The file at path exists and only its owner may read it (0600). An existing file is
    not opened: closing any descriptor of a SQLite file drops every POSIX lock this process
    holds on it, and another process would then take the database for unused and delete
    the WAL under the connections still open (a second Store in one process: the broker's)."""
    if not os.path.exists(path):
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
    os.chmod(path, 0o600)


DB_FILE = "service.db"  # in the data directory
URL_FILE = "database.url"  # in the data directory: the database is elsewhere, at this URL
OLD_DB_FILE = "cloudsim.db"  # its name before the service had one of its own


def sqlite_url(path):
    return "sqlite:///" + os.path.abspath(path)


def data_dir_url(data_dir):
    """The database of a data directory: the URL in its database.url (a fleet's shared
    PostgreSQL; the file may hold a password, so it is kept 0600), else SQLite in the
    directory (a database from before the rename is taken over)."""
    path = os.path.join(data_dir, URL_FILE)
    if os.path.exists(path):
        os.chmod(path, 0o600)
        with open(path) as f:
            url = f.read().strip()
        if not url.startswith(tuple(e + ":" for e in ENGINES) + tuple(e + "+" for e in ENGINES)):
            raise ValueError("%s must hold one database URL, postgresql+psycopg://USER@HOST/DB" % path)
        return url
    adopt_database(os.path.join(data_dir, OLD_DB_FILE), os.path.join(data_dir, DB_FILE))
    return sqlite_url(os.path.join(data_dir, DB_FILE))


def adopt_database(old, new):
    """A SQLite database under an old name moves to its new one (a data directory from
    before a rename keeps its data). Checkpointed first (the last connection to close
    folds the WAL into the file), so one atomic rename moves all of it."""
    if os.path.exists(old) and not os.path.exists(new):
        engine = sa.create_engine(sqlite_url(old), poolclass=sa.pool.NullPool)
        with engine.connect() as c:
            c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        os.replace(old, new)


def _engine(url):
    if not url.startswith("sqlite"):
        # as many connections as SQLite's pool below: each request thread may hold one
        return sa.create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=32)
    path = url.split("///", 1)[1]
    # SQLite gives the -wal and -shm files the database file's mode: make that 0600
    # before the first connect, and keep the data directory to its owner.
    os.chmod(os.path.dirname(path), 0o700)
    private_file(path)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                              pool_size=8, max_overflow=32, pool_reset_on_return=None)

    @event.listens_for(engine, "connect")
    def _connect(dbapi, _record):
        dbapi.isolation_level = None  # transactions are begun below, not by the driver
        dbapi.execute("PRAGMA journal_mode=WAL")
        dbapi.execute("PRAGMA secure_delete=ON")  # a revoked token or a deleted job is zeroed, not left in a free page

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # a transaction that may write takes the write lock at its start: two that read and
        # then write would otherwise deadlock, which SQLite answers with "database is locked"
        conn.connection.driver_connection.execute(
            "BEGIN" if conn.get_execution_options().get("readonly") else "BEGIN IMMEDIATE")
    return engine


def migrate(engine):
    """Bring the schema to the newest revision. A database from before migrations (its
    tables, no alembic_version) is first completed to the baseline and stamped as it."""
    cfg = alembic.config.Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        names = sa.inspect(conn).get_table_names()
        if "printers" in names and "alembic_version" not in names:
            columns = [c["name"] for c in sa.inspect(conn).get_columns("registrations")]
            for column, decl in (("poll_secret", "TEXT"), ("code_given", "INTEGER NOT NULL DEFAULT 0")):
                if column not in columns:  # added to the pre-migration schema in place
                    conn.exec_driver_sql("ALTER TABLE registrations ADD COLUMN %s %s" % (column, decl))
            alembic.command.stamp(cfg, BASELINE)
        alembic.command.upgrade(cfg, "head")


_STATEMENTS = {}  # (what, table, condition shape, ...) -> a statement with bind parameters


def _shape(where):
    """The shape of a condition: which columns, compared how; the values are parameters."""
    return tuple(sorted((name, "null" if v is None else "in" if isinstance(v, (tuple, list)) else "eq")
                        for name, v in where.items()))


def _condition(table, shape):
    out = []
    for name, kind in shape:
        col = table.c[name]
        if kind == "null":
            out.append(col.is_(None))
        elif kind == "in":
            out.append(col.in_(sa.bindparam("w_" + name, expanding=True)))
        else:
            out.append(col == sa.bindparam("w_" + name))
    return out


def _params(where, values=None):
    out = {"w_" + k: list(v) if isinstance(v, (tuple, list)) else v for k, v in where.items() if v is not None}
    out.update(("v_" + k, v) for k, v in (values or {}).items())
    return out


def _statement(key, build):
    """Built once per shape: building SQLAlchemy expressions costs more than running them."""
    q = _STATEMENTS.get(key)
    if q is None:
        q = _STATEMENTS[key] = build()
    return q


class Tx:
    """Queries inside one transaction. Conditions are keyword arguments: a value (equal),
    None (IS NULL) or a tuple (IN)."""

    def __init__(self, conn):
        self.c = conn

    def get(self, table, lock=False, **where):
        """One row or None; lock: held until the transaction ends (FOR UPDATE where the
        engine has it; SQLite's transactions already hold the write lock)."""
        t, shape = TABLES[table], _shape(where)

        def build():
            q = sa.select(t).where(*_condition(t, shape)).limit(1)
            return q.with_for_update() if lock else q
        return self.c.execute(_statement(("get", table, shape, lock), build), _params(where)).mappings().first()

    def all(self, table, order=(), **where):
        t, shape = TABLES[table], _shape(where)
        q = _statement(("all", table, shape, order), lambda: sa.select(t).where(*_condition(t, shape))
                       .order_by(*(t.c[o] for o in order)))
        return self.c.execute(q, _params(where)).mappings().all()

    def count(self, table, **where):
        t, shape = TABLES[table], _shape(where)
        q = _statement(("count", table, shape), lambda: sa.select(sa.func.count()).select_from(t)
                       .where(*_condition(t, shape)))
        return self.c.execute(q, _params(where)).scalar()

    def insert(self, table, **values):
        self.c.execute(TABLES[table].insert(), values)

    def update(self, table, where, **values):
        """Rows changed."""
        t, shape, names = TABLES[table], _shape(where), tuple(sorted(values))
        q = _statement(("update", table, shape, names), lambda: t.update().where(*_condition(t, shape))
                       .values({n: sa.bindparam("v_" + n) for n in names}))
        return self.c.execute(q, _params(where, values)).rowcount

    def delete(self, table, **where):
        t, shape = TABLES[table], _shape(where)
        q = _statement(("delete", table, shape), lambda: t.delete().where(*_condition(t, shape)))
        return self.c.execute(q, _params(where)).rowcount

    # the queries equality cannot say
    def printer(self, printer_id, include_deleted=False):
        row = self.get("printers", id=printer_id)
        if row is None or (row["deleted"] and not include_deleted):
            return None
        return row

    def next_number(self, name):
        """The next number of a numbered table: one counter row, held until the
        transaction ends, so two transactions never draw the same number."""
        return self.c.execute(counters.update().where(counters.c.name == name)
                              .values(value=counters.c.value + 1).returning(counters.c.value)).scalar_one()

    def add_user(self, email, **values):
        self.insert("users", email=email, num=self.next_number("users"), **values)

    def add_printer(self, **values):
        self.insert("printers", num=self.next_number("printers"), **values)

    def set_job_state(self, job_id, state, pages=None):
        t = now_ms()
        values = {"state": json.dumps(state), "state_type": state["state"]["type"], "update_ms": t}
        if pages is not None:
            values["pages_printed"] = pages
        self.update("jobs", {"id": job_id}, **values)
        what, cause = state["state"]["type"], state_cause(state["state"])
        last = self.c.execute(sa.select(job_events.c.what, job_events.c.cause).where(job_events.c.job_id == job_id)
                              .order_by(job_events.c.id.desc()).limit(1)).first()
        if last is None or tuple(last) != (what, cause):  # a report that changes nothing is no event
            self._event(job_id, what, cause, pages, t)

    def _event(self, job_id, what, cause=None, pages=None, t=None):
        t = t or now_ms()
        self.insert("job_events", job_id=job_id, what=what, cause=cause, pages=pages, created_ms=t)
        owner = self.c.execute(sa.select(jobs.c.owner).where(jobs.c.id == job_id)).scalar()
        if owner is not None:
            self.emit(owner, "job.state", {"job": job_id, "what": what, "cause": cause, "pages": pages}, t)

    def emit(self, email, kind, facts, t=None):
        """An event for the account's webhooks, if it has any: sent after this transaction
        commits, never without it."""
        hooked = self.c.execute(sa.select(webhooks.c.id).where(
            webhooks.c.email == email, webhooks.c.deleted_ms.is_(None)).limit(1)).first()
        if hooked is not None:
            self.insert("events", email=email, kind=kind, body=json.dumps(facts), created_ms=t or now_ms())

    def due_webhooks(self, now):
        """Live webhooks with an event after their cursor, not waiting out a failure or
        being sent by another replica."""
        newer = sa.select(events.c.id).where(events.c.email == webhooks.c.email,
                                             events.c.id > webhooks.c.cursor).exists()
        return self.c.execute(sa.select(webhooks).where(
            webhooks.c.deleted_ms.is_(None), webhooks.c.next_ms <= now, webhooks.c.lease_ms <= now, newer)
            .order_by(webhooks.c.id)).mappings().all()

    def lease_webhook(self, webhook_id, now, until):
        """Whether this replica now sends the webhook's events (until then)."""
        return self.c.execute(webhooks.update().where(
            webhooks.c.id == webhook_id, webhooks.c.lease_ms <= now, webhooks.c.deleted_ms.is_(None))
            .values(lease_ms=until)).rowcount == 1

    def last_event_id(self):
        return self.c.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0

    def next_event(self, email, after):
        return self.c.execute(sa.select(events).where(events.c.email == email, events.c.id > after)
                              .order_by(events.c.id).limit(1)).mappings().first()

    def recent_deliveries(self, webhook_id, most):
        return self.c.execute(sa.select(deliveries).where(deliveries.c.webhook_id == webhook_id)
                              .order_by(deliveries.c.id.desc()).limit(most)).mappings().all()

    def purge_events(self, before, deliveries_kept):
        """Events every live webhook of their account was sent go, and those older than
        before (a webhook failing that long loses them); each webhook's delivery log keeps
        its newest deliveries_kept rows."""
        sent = (sa.select(sa.func.min(webhooks.c.cursor))
                .where(webhooks.c.email == events.c.email, webhooks.c.deleted_ms.is_(None)).scalar_subquery())
        self.c.execute(events.delete().where(sa.or_(events.c.created_ms < before,
                                                    events.c.id <= sa.func.coalesce(sent, 2 ** 62))))
        for (webhook_id,) in self.c.execute(sa.select(webhooks.c.id)).all():
            oldest_kept = self.c.execute(sa.select(deliveries.c.id).where(deliveries.c.webhook_id == webhook_id)
                                         .order_by(deliveries.c.id.desc()).offset(deliveries_kept - 1)
                                         .limit(1)).scalar()
            if oldest_kept is not None:
                self.c.execute(deliveries.delete().where(deliveries.c.webhook_id == webhook_id,
                                                         deliveries.c.id < oldest_kept))

    def count_delivery(self, job_id):
        self.c.execute(jobs.update().where(jobs.c.id == job_id)
                       .values(delivery_attempts=jobs.c.delivery_attempts + 1))
        self._event(job_id, "SENT")

    def job_history(self, job_ids):
        """job id -> its events (dicts of what, cause, pages, created_ms), oldest first."""
        out = {j: [] for j in job_ids}
        rows = self.c.execute(sa.select(job_events).where(job_events.c.job_id.in_(list(job_ids)))
                              .order_by(job_events.c.id)).mappings().all()
        for r in rows:
            out[r["job_id"]].append(r)
        return out

    def numbered_jobs(self, email, job_sets=(), printer_sets=(), after=None, desc=False, offset=0, limit=None):
        """(page of rows, total) of the jobs an account may see (its own and those sent to
        its printers), by number. job_sets, printer_sets: number sets the job's and its
        printer's numbers must each fall in ([(low or None, high or None)], see numbered());
        after: only numbers past it in the order asked for."""
        q = (sa.select(jobs).join(printers, printers.c.id == jobs.c.printer_id)
             .where(sa.or_(jobs.c.owner == email, printers.c.owner == email)))
        where = [numbered(jobs.c.num, s) for s in job_sets] + [numbered(printers.c.num, s) for s in printer_sets]
        return self._page(q, jobs.c.num, where, after, desc, offset, limit)

    def numbered_printers(self, email, sets=(), after=None, desc=False, offset=0, limit=None):
        """(page of rows, total) of an account's printers (not deleted), by number, in every set."""
        q = sa.select(printers).where(printers.c.owner == email, printers.c.deleted == 0)
        return self._page(q, printers.c.num, [numbered(printers.c.num, s) for s in sets], after, desc, offset, limit)

    def _page(self, q, key, where, after, desc, offset, limit):
        where = list(where)
        if after is not None:
            where.append(key < after if desc else key > after)
        q = q.where(*where)
        total = self.c.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar()
        q = q.order_by(key.desc() if desc else key).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        return self.c.execute(q).mappings().all(), total

    def purge_expired(self, now):
        """Registrations nobody claimed before now go, with their printers."""
        stale = sa.select(registrations.c.printer_id).where(
            registrations.c.claimed_by.is_(None), registrations.c.expires_ms < now)
        self.c.execute(printers.delete().where(printers.c.owner.is_(None), printers.c.id.in_(stale)))
        self.c.execute(registrations.delete().where(
            registrations.c.claimed_by.is_(None), registrations.c.expires_ms < now))

    def expire_jobs(self, now, printer_id=None):
        """Jobs still QUEUED past their expiry become ABORTED (cause EXPIRED); their ids."""
        where = [jobs.c.state_type == "QUEUED", jobs.c.expires_ms < now]
        if printer_id is not None:
            where.append(jobs.c.printer_id == printer_id)
        # one statement that checks and changes: a job a printer started meanwhile, or that
        # another replica expired, is left alone (PostgreSQL re-checks the condition on a
        # row another transaction changed before it commits this one)
        ids = self.c.execute(jobs.update().where(*where).values(
            state=json.dumps(EXPIRED), state_type="ABORTED", update_ms=now).returning(jobs.c.id)).scalars().all()
        for job_id in ids:
            self._event(job_id, "ABORTED", "EXPIRED", t=now)
        return ids

    def purge_idempotency_keys(self, before):
        self.c.execute(idempotency_keys.delete().where(idempotency_keys.c.created_ms < before))

    def purge_rate(self, now):
        """Rate-limit counts of windows that have ended."""
        self.c.execute(rate.delete().where(rate.c.ends_ms <= now))

    def purge_sessions(self, now):
        self.c.execute(sessions.delete().where(sessions.c.expires_ms < now))

    def set_presence(self, printer_id, presence):
        self.update("printers", {"id": printer_id}, presence=presence, presence_ms=now_ms())

    def claim_registration(self, token, email):
        """Whether the registration is now email's: it was nobody's, or already theirs."""
        r = registrations.c
        return self.c.execute(registrations.update().where(
            r.token == token, sa.or_(r.claimed_by.is_(None), r.claimed_by == email))
            .values(claimed_by=email)).rowcount == 1

    def jobs_visible_to(self, email, newest=None):
        """Jobs the user submitted or that went to the user's printers, oldest first; with
        newest=N, the N newest, newest first."""
        q = (sa.select(jobs).join(printers, printers.c.id == jobs.c.printer_id)
             .where(sa.or_(jobs.c.owner == email, printers.c.owner == email)))
        q = q.order_by(jobs.c.num) if newest is None else q.order_by(jobs.c.num.desc()).limit(newest)
        return self.c.execute(q).mappings().all()

    def last_jobs(self, printer_ids):
        """printer id -> its newest job, for the given printers."""
        newest = (sa.select(sa.func.max(jobs.c.num)).where(jobs.c.printer_id.in_(list(printer_ids)))
                  .group_by(jobs.c.printer_id))
        rows = self.c.execute(sa.select(jobs).where(jobs.c.num.in_(newest))).mappings().all()
        return {r["printer_id"]: r for r in rows}

    def add_job(self, content, **values):
        """A job whose file is read from the binary file content a chunk at a time; its size."""
        size, seq = 0, 0
        content.seek(0)
        while True:
            data = content.read(CHUNK)
            if not data:
                break
            self.insert("job_content", job_id=values["id"], seq=seq, data=data)
            size, seq = size + len(data), seq + 1
        self.insert("jobs", size=size, **values)
        self._event(values["id"], "QUEUED", t=values.get("create_ms"))
        return size

    def delete_job(self, job_id):
        self.delete("job_content", job_id=job_id)
        self.delete("job_events", job_id=job_id)
        return self.delete("jobs", id=job_id)


class Store:
    def __init__(self, url, migrate_schema=True):
        """url: an SQLAlchemy database URL (sqlite_url(path) for a file, or
        postgresql+psycopg://user@host/db for a fleet's shared database). A second Store on
        the same database (the embedded broker's) leaves the schema to the first."""
        self.engine = _engine(url)
        if self.engine.dialect.name not in ENGINES:
            self.engine.dispose()
            raise ValueError("the database must be one of %s, not %s" % (", ".join(ENGINES), self.engine.dialect.name))
        if migrate_schema:
            migrate(self.engine)

    def close(self):
        self.engine.dispose()

    def tx(self, readonly=False):
        """A transaction: `with store.tx() as s:` groups queries atomically (Tx). A readonly
        one never waits for writers (nor, on SQLite, makes them wait)."""
        return _Begin(self.engine, readonly)

    def __getattr__(self, name):
        """Any Tx query, in a transaction of its own."""
        query = getattr(Tx, name)

        def run(*args, **kwargs):
            with self.tx(readonly=name in READS) as s:
                return query(s, *args, **kwargs)
        return run

    def job_chunks(self, job_id, start=0):
        """The job file from byte start, a chunk at a time, each read in a short transaction
        of its own (a slow printer holds no lock)."""
        seq, skip = divmod(start, CHUNK)
        while True:
            with self.tx(readonly=True) as s:
                row = s.c.execute(sa.select(job_content.c.data).where(
                    job_content.c.job_id == job_id, job_content.c.seq == seq)).first()
            if row is None:
                return
            yield bytes(row[0][skip:])
            seq, skip = seq + 1, 0

    def allow(self, bucket, limit, window_ms):
        """Count one hit in bucket; False when it is over limit hits in this window. Kept
        in the database, so every replica sees the same counts: one upsert, so two first
        hits at once (on any replica) both count and neither fails on the key."""
        ends = (now_ms() // window_ms + 1) * window_ms
        q = _statement(("allow", self.engine.dialect.name), self._upsert_hit)
        with self.tx() as s:
            hits = s.c.execute(q, {"bucket": bucket, "ends_ms": ends, "hits": 1}).scalar_one()
        return hits <= limit

    def _upsert_hit(self):
        insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[self.engine.dialect.name]
        q = insert(rate)
        return q.on_conflict_do_update(index_elements=[rate.c.bucket, rate.c.ends_ms],
                                       set_={"hits": rate.c.hits + 1}).returning(rate.c.hits)

    def hits(self, bucket, window_ms):
        """The hits counted in bucket in this window (see allow)."""
        row = self.get("rate", bucket=bucket, ends_ms=(now_ms() // window_ms + 1) * window_ms)
        return row["hits"] if row else 0

    # the push broker
    def broker_grants(self):
        """(printer id, broker password) of every printer that may log in to the broker."""
        q = (sa.select(tokens.c.printer_id, tokens.c.token).join(printers, printers.c.id == tokens.c.printer_id)
             .where(tokens.c.kind == "mqtt", tokens.c.revoked == 0, printers.c.deleted == 0))
        with self.tx(readonly=True) as s:
            return [tuple(r) for r in s.c.execute(q)]

    def broker_password_ok(self, printer_id, password):
        if not printer_id or not password:
            return False
        q = (sa.select(tokens.c.token).join(printers, printers.c.id == tokens.c.printer_id)
             .where(tokens.c.kind == "mqtt", tokens.c.token == password, tokens.c.printer_id == printer_id,
                    tokens.c.revoked == 0, printers.c.deleted == 0))
        with self.tx(readonly=True) as s:
            return s.c.execute(q).first() is not None


class _Begin:
    def __init__(self, engine, readonly):
        self._conn = engine.connect()
        if readonly:
            self._conn.execution_options(readonly=True)
        self._tx = None

    def __enter__(self):
        self._tx = self._conn.begin()
        return Tx(self._conn)

    def __exit__(self, exc_type, *_):
        try:
            if exc_type is None:
                self._tx.commit()
            else:
                self._tx.rollback()
        finally:
            self._conn.close()
