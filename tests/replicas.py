"""Print service replicas as an operator runs them: `python -m tools.printservice` processes
sharing one database (DATA/database.url) and one broker, their data directories copies
of the first one's (its CA, server key and OAuth client are every replica's)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT_S = 30


class Replica:
    def __init__(self, data_dir, http_port, https_port, args=()):
        self.data_dir = data_dir
        self.http_url = "http://127.0.0.1:%d" % http_port
        self.https_port = https_port
        self.lines = []
        cmd = [sys.executable, "-m", "tools.printservice", "--data", data_dir, "--http-port", str(http_port),
               "--https-port", str(https_port)] + list(args)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1"))
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not any("web console" in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("replica did not start:\n" + "".join(self.lines))
            time.sleep(0.05)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def https_url(self):
        return "https://127.0.0.1:%d" % self.https_port

    @property
    def certs(self):
        return {"ca_der": os.path.join(self.data_dir, "ca.der")}

    @property
    def owner_key(self):
        with open(os.path.join(self.data_dir, "owner.key")) as f:
            return f.read().strip()

    @property
    def client(self):
        with open(os.path.join(self.data_dir, "oauth_client.json")) as f:
            return json.load(f)

    def kill(self):
        """Dies as a machine does: no goodbye."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def first_data_dir(path, database_url):
    """The first replica's data directory: it names the shared database."""
    os.makedirs(path, mode=0o700)
    fd = os.open(os.path.join(path, "database.url"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(database_url + "\n")
    return path


def copy_data_dir(src, dst):
    """Another replica's data directory: the first one's, copied once it has started."""
    shutil.copytree(src, dst)
    os.chmod(dst, 0o700)
    return dst
