"""A TCP relay between the agent and the service that breaks connections the way networks
do, below TLS (the bytes it moves are TLS records it cannot read). Each new connection
takes the next plan from `plans` (none left: it relays faithfully):

  ("drop", n)           close both sides after n bytes towards the agent
  ("reset", n)          the same with a TCP reset (SO_LINGER 0) instead of a close
  ("stall", n, s)       stop relaying towards the agent for s seconds after n bytes
  ("truncate", n)       relay n bytes towards the agent, then never again (the agent's
                        read times out; the service's side is closed)
  ("rechunk", seed)     relay in pieces of 1 to 300 bytes with short pauses"""
import collections
import random
import socket
import struct
import threading
import time

from tests.peers.listener import Listener

PIECE = 16384


class FaultProxy(Listener):
    def __init__(self, upstream_host, upstream_port):
        super().__init__()
        self._upstream = (upstream_host, upstream_port)
        self.plans = collections.deque()
        self.taken = []  # the plans connections took, in order

    def _accepted(self, agent):
        plan = self.plans.popleft() if self.plans else None
        if plan is not None:
            self.taken.append(plan)
        return agent, plan

    def _serve(self, agent, plan):
        try:
            service = socket.create_connection(self._upstream, 10)
        except OSError:
            agent.close()
            return
        done = threading.Event()
        threading.Thread(target=self._pump, args=(agent, service, None, done), daemon=True).start()
        self._pump(service, agent, plan, done)

    def _pump(self, src, dst, plan, done):
        """Bytes from src to dst until either side ends; plan breaks the stream to the agent."""
        sent = 0
        rng = random.Random(plan[1]) if plan and plan[0] == "rechunk" else None
        src.settimeout(1)
        try:
            while not done.is_set() and not self._stop.is_set():
                try:
                    data = src.recv(PIECE)
                except socket.timeout:
                    continue
                if not data:
                    break
                if plan and plan[0] in ("drop", "reset", "truncate") and sent + len(data) >= plan[1]:
                    dst.sendall(data[:max(0, plan[1] - sent)])
                    if plan[0] == "reset":
                        dst.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    if plan[0] == "truncate":
                        src.close()
                        done.wait(60)  # hold the agent's side open and silent
                    break
                if plan and plan[0] == "stall" and sent <= plan[1] < sent + len(data):
                    cut = plan[1] - sent
                    dst.sendall(data[:cut])
                    time.sleep(plan[2])
                    data = data[cut:]
                    sent += cut
                if rng is not None:
                    pos = 0
                    while pos < len(data):
                        n = rng.randint(1, 300)
                        dst.sendall(data[pos:pos + n])
                        pos += n
                        time.sleep(rng.choice((0, 0, 0, 0.001)))
                else:
                    dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            done.set()
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass
