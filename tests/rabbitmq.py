"""A real RabbitMQ cluster for the tests: Debian's `rabbitmq-server`, nodes on loopback
with its MQTT plugin and rabbitmq_auth_backend_http asking the print service who may
connect, joined by classic-config peer discovery. Each node has its own directories
under a throwaway base; the nodes share an Erlang cookie there, never the system's."""
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time

from tests.system.conftest import free_port

BIN = "/usr/lib/rabbitmq/bin"
START_TIMEOUT_S = 90
PLUGINS = "[rabbitmq_mqtt,rabbitmq_auth_backend_http]."


def installed():
    return os.path.exists(os.path.join(BIN, "rabbitmq-server"))


class Node:
    def __init__(self, cluster, name):
        self.name = name + "@localhost"
        self.dir = os.path.join(cluster.base, name)
        self.mqtt_port, self.amqp_port, self.dist_port = free_port(), free_port(), free_port()
        self.proc = None
        self.env = dict(os.environ, HOME=cluster.base, RABBITMQ_NODENAME=self.name,
                        RABBITMQ_CONFIG_FILE=os.path.join(self.dir, "rabbitmq.conf"),
                        RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.dir, "enabled_plugins"),
                        RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"),
                        RABBITMQ_LOG_BASE=os.path.join(self.dir, "log"),
                        RABBITMQ_DIST_PORT=str(self.dist_port))

    @property
    def mqtt_url(self):
        return "mqtt://127.0.0.1:%d" % self.mqtt_port

    def configure(self, auth_base, peers):
        os.makedirs(self.dir)
        conf = ["listeners.tcp.default = 127.0.0.1:%d" % self.amqp_port,
                "mqtt.listeners.tcp.default = 127.0.0.1:%d" % self.mqtt_port,
                "mqtt.allow_anonymous = false", "loopback_users = none",
                "auth_backends.1 = http", "auth_http.http_method = post",
                "cluster_formation.peer_discovery_backend = classic_config"]
        conf += ["auth_http.%s_path = %s/%s" % (what, auth_base, what) for what in ("user", "vhost", "resource", "topic")]
        conf += ["cluster_formation.classic_config.nodes.%d = %s" % (i + 1, p) for i, p in enumerate(peers)]
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write(PLUGINS + "\n")

    def start(self):
        self.proc = subprocess.Popen([os.path.join(BIN, "rabbitmq-server")], env=self.env, cwd=self.dir,
                                     stdout=open(os.path.join(self.dir, "out"), "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.mqtt_port), 0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("RabbitMQ node %s did not start: see %s" % (self.name, self.dir))
                time.sleep(0.2)

    def ctl(self, *args, timeout=60):
        return subprocess.run([os.path.join(BIN, "rabbitmqctl"), "-n", self.name] + list(args), env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def stop(self):
        """Stops the node (its clients lose their connections) and waits for it to end."""
        if self.proc is not None and self.proc.poll() is None:
            self.ctl("shutdown")
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Cluster:
    """nodes RabbitMQ nodes in one cluster; auth_base: the URL the endpoint names follow
    (the service's <base>/broker/<key>/rabbitmq), or a list of them, one per node (each node
    asking the replica beside it)."""

    def __init__(self, auth_base, nodes=2):
        if not installed():
            raise RuntimeError("RabbitMQ is not installed (Debian: apt-get install rabbitmq-server)")
        self.base = tempfile.mkdtemp(prefix="rabbitmq-")
        cookie = os.path.join(self.base, ".erlang.cookie")
        with open(cookie, "w") as f:
            f.write(secrets.token_hex(16))
        os.chmod(cookie, 0o400)
        self.nodes = [Node(self, "rmq%d_%s" % (i + 1, os.path.basename(self.base)[-6:])) for i in range(nodes)]
        bases = auth_base if isinstance(auth_base, list) else [auth_base] * nodes
        for node, base in zip(self.nodes, bases):
            node.configure(base, [n.name for n in self.nodes])

    def start(self):
        try:
            for node in self.nodes:
                node.start()
            deadline = time.monotonic() + START_TIMEOUT_S
            while not self.joined():
                if time.monotonic() > deadline:
                    raise RuntimeError("the RabbitMQ nodes did not form one cluster")
                time.sleep(0.5)
        except Exception:
            self.stop()
            raise
        return self

    def joined(self):
        status = self.nodes[0].ctl("cluster_status", "--formatter", "json")
        return status.returncode == 0 and set(json.loads(status.stdout)["running_nodes"]) == {n.name for n in self.nodes}

    def stop(self):
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.base, ignore_errors=True)
