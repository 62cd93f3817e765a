# Baseline for the heap benchmark (runs under micropython): the least any agent needs to
# stream one job: our HTTP client over verified TLS into the printer's TCP port.
# usage: micropython mp_stream.py TREE CA_DER URL TOKEN PRINTER_HOST PRINTER_PORT
import sys

sys.path.insert(0, sys.argv[1])
import socket

from firmware.clock import SystemClock
from firmware.http import Http
from firmware.ports.netsock import Connector

ca = open(sys.argv[2], "rb").read()
http = Http(Connector(ca), SystemClock(), 10, 600000)
resp = http.request("GET", sys.argv[3], [("Authorization", "Bearer " + sys.argv[4]),
                                         ("X-CloudPrint-Proxy", "bench")])
out = socket.socket()
out.connect(socket.getaddrinfo(sys.argv[5], int(sys.argv[6]))[0][-1])
buf = bytearray(1024)
mv = memoryview(buf)
total = 0
while True:
    n = resp.readinto(mv)
    if not n:
        break
    out.write(mv[:n])
    total += n
resp.close()
out.close()
print("streamed", total)
