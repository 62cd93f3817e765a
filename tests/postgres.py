"""A real PostgreSQL server for the tests: Debian's `postgresql` binaries, a throwaway
cluster on a loopback port, one template database with the service's migrations applied
and a fresh copy of it per test (CREATE DATABASE ... TEMPLATE takes milliseconds where
migrating takes a second).

PostgreSQL refuses to run as root, so under root (CI) the cluster belongs to the
`postgres` user the Debian package makes."""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid

import sqlalchemy as sa

from tests.system.conftest import free_port

START_TIMEOUT_S = 30
TEMPLATE = "printservice_template"


def binaries():
    """The directory of initdb and pg_ctl (the newest installed), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return os.path.dirname(found[-1]) if found else None


class Postgres:
    """A running cluster: url(db) for SQLAlchemy, fresh_database() for a test's own copy
    of the migrated template."""

    def __init__(self, durable=False):
        """durable: PostgreSQL's own defaults (every commit synced), as a benchmark must
        compare; by default a test cluster trades durability for speed."""
        self.bin = binaries()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="pg-")  # not under pytest's tmp: that is 0700 to root
        self._as = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.data = os.path.join(self.dir, "data")
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = ("-c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c max_connections=400 "
                "-c shared_buffers=64MB" % self.dir)
        if not durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w",
                  "-t", str(START_TIMEOUT_S), "-o", "-p %d %s" % (self.port, opts), "start")
        self._admin = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT",
                                       poolclass=sa.pool.NullPool)
        self._template_ready = False

    def _run(self, tool, *args):
        out = subprocess.run(self._as + [os.path.join(self.bin, tool)] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.dir)
        if out.returncode:
            raise RuntimeError("%s failed: %s" % (tool, out.stdout[-2000:]))

    def url(self, db):
        return "postgresql+psycopg://postgres@127.0.0.1:%d/%s" % (self.port, db)

    def sql(self, statement):
        with self._admin.connect() as c:
            c.exec_driver_sql(statement)

    def fresh_database(self):
        """The URL of a new database holding the service's schema and nothing else."""
        if not self._template_ready:
            from tools.printservice.store import Store
            self.sql("CREATE DATABASE %s" % TEMPLATE)
            Store(self.url(TEMPLATE)).close()
            self._template_ready = True
        name = "t_" + uuid.uuid4().hex[:16]
        for attempt in range(50):  # the template must have no session open while it is copied
            try:
                self.sql("CREATE DATABASE %s TEMPLATE %s" % (name, TEMPLATE))
                break
            except sa.exc.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.1)
        return self.url(name)

    def pid(self):
        """The server's main process."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def stop(self):
        self._admin.dispose()
        self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
