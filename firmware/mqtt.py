# A small MQTT 3.1.1 client for push hints: CONNECT (clean session, will, user and
# password, keepalive), _SUBSCRIBE at QoS 1, _PUBLISH at QoS 0 or 1 (retained or not),
# _PINGREQ, and a receive call that never waits longer than it is told. Packets are read
# into one preallocated buffer. Why not umqtt.simple: see the README ("Push").
#
# The connection comes from the same connector as HTTPS (ports/netsock.py): TLS with
# our CA and host name verification, and a non-blocking socket behind
# readinto(mv, wait_ms) / write(data, wait_ms).
from micropython import const
from firmware.clock import Deadline
from firmware.wire import IO_SLICE_MS, WireError, bounded_io

CONNECT = 0x10
CONNACK = 0x20
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_SUBSCRIBE = const(0x82)
SUBACK = 0x90
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
DISCONNECT = 0xE0
_PACKET_MAX = const(256)  # our hints (topic and payload) are under 128 B; a longer packet is skipped
_HELD_MAX = const(4)  # messages that came while we waited for an ack, kept for poll()


class MqttError(WireError):
    pass


def _field(data):
    """A length-prefixed UTF-8 field."""
    if isinstance(data, str):
        data = data.encode()
    return bytes((len(data) >> 8, len(data) & 0xFF)) + data


def _remaining_length(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def packet(buf, kind, pieces):
    """The packet of type kind with pieces (bytes) as its body, laid out in buf when it
    fits (the packet buffer, idle while a packet goes out), else in a new bytearray; a
    memoryview of it. Joining the pieces instead would take a block per step."""
    size = 0
    for p in pieces:
        size += len(p)
    head = bytes((kind,)) + _remaining_length(size)
    n = len(head) + size
    out = buf if n <= len(buf) else bytearray(n)
    out[:len(head)] = head
    i = len(head)
    for p in pieces:
        out[i:i + len(p)] = p
        i += len(p)
    return memoryview(out)[:n]


def connect_packet(buf, client_id, user, password, keepalive_s, will_topic, will_msg):
    flags = 0x02  # clean session: we resubscribe after every connect
    if will_topic:
        flags |= 0x04 | 0x20 | 0x08  # will, retained, QoS 1
    if user:
        flags |= 0x80
    if password:
        flags |= 0x40
    pieces = [b"\x00\x04MQTT\x04" + bytes((flags, keepalive_s >> 8, keepalive_s & 0xFF)), _field(client_id)]
    if will_topic:
        pieces += (_field(will_topic), _field(will_msg))
    if user:
        pieces.append(_field(user))
    if password:
        pieces.append(_field(password))
    return packet(buf, CONNECT, pieces)


class Mqtt:
    def __init__(self, connector, clock, host, port, use_tls, timeout_ms):
        self._connector = connector
        self._clock = clock
        self._host = host
        self._port = port
        self._tls = use_tls
        self._timeout_ms = timeout_ms
        self._conn = None
        self._buf = bytearray(_PACKET_MAX)
        self._mv = memoryview(self._buf)
        self._head = bytearray(1)
        self._head_mv = memoryview(self._head)
        self._pid = 0
        self.last_rx = 0  # ticks_ms of the last packet from the broker
        self._held = []  # messages that came while we waited for an ack (at most _HELD_MAX)
        self.missed = False  # more came than could be held: fetch to be sure

    @property
    def connected(self):
        return self._conn is not None

    def _next_pid(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    # ---- the wire
    def _io(self, op, mv, deadline, what):
        """One bounded read or write: the same deadline and silence rules as HTTP."""
        return bounded_io(op, mv, deadline, self._timeout_ms, self._clock, what, MqttError)

    def _send(self, data):
        deadline = Deadline(self._clock, self._timeout_ms)
        mv = memoryview(data)
        off = 0
        while off < len(mv):
            off += self._io(self._conn.write, mv[off:], deadline, "send")

    def _read_exact(self, mv, deadline):
        got = 0
        while got < len(mv):
            n = self._io(self._conn.readinto, mv[got:], deadline, "read")
            if n == 0:
                raise MqttError("connection closed by the broker")
            got += n

    def _read_packet(self, wait_ms):
        """(packet type byte, body length) with the body in self._buf (None if it was
        too long and skipped); None if no packet began within wait_ms. The wait goes in
        slices with the clock's idle work between them (the console)."""
        clock = self._clock
        end = clock.ticks_add(clock.ticks_ms(), wait_ms)
        while True:
            left = clock.ticks_diff(end, clock.ticks_ms())
            try:
                n = self._conn.readinto(self._head, max(0, min(left, IO_SLICE_MS)))
            except OSError as e:
                raise MqttError("read failed: %s" % e)
            if n is not None:
                break
            if left <= IO_SLICE_MS:
                return None
            clock.breathe()
        if n == 0:
            raise MqttError("connection closed by the broker")
        kind = self._head[0]
        deadline = Deadline(self._clock, self._timeout_ms)  # for the rest of the packet
        size = 0
        shift = 0
        while True:
            self._read_exact(self._head_mv, deadline)
            size |= (self._head[0] & 0x7F) << shift
            if not self._head[0] & 0x80:
                break
            shift += 7
            if shift > 21:
                raise MqttError("malformed packet length")
        if size > _PACKET_MAX:
            left = size
            while left:
                chunk = min(left, _PACKET_MAX)
                self._read_exact(self._mv[:chunk], deadline)
                left -= chunk
            return kind, None
        self._read_exact(self._mv[:size], deadline)
        self.last_rx = self._clock.ticks_ms()
        return kind, size

    def _expect(self, kind, what):
        end = self._clock.ticks_add(self._clock.ticks_ms(), self._timeout_ms)
        while True:
            left = self._clock.ticks_diff(end, self._clock.ticks_ms())
            if left <= 0:
                raise MqttError("no %s from the broker" % what)
            got = self._read_packet(left)
            if got is None:
                continue
            if got[0] & 0xF0 == kind & 0xF0:
                return got[1]
            msg = self._handle(got)
            if msg is not None:  # a message before our ack: acknowledged, kept for poll()
                if len(self._held) < _HELD_MAX:
                    self._held.append(msg)
                else:
                    self.missed = True

    # ---- the session
    def connect(self, client_id, user, password, keepalive_s, will_topic=None, will_msg=None):
        self.close()
        try:
            self._conn = self._connector(self._host, self._port, self._tls, self._timeout_ms // 1000)
        except ValueError as e:  # TLS verification
            raise MqttError("TLS to %s:%d refused: %s" % (self._host, self._port, e))
        except OSError as e:
            raise MqttError("connect to %s:%d failed: %s" % (self._host, self._port, e))
        try:
            self._send(connect_packet(self._buf, client_id, user, password, keepalive_s, will_topic, will_msg))
            size = self._expect(CONNACK, "CONNACK")
            if size != 2 or self._buf[1] != 0:
                raise MqttError("broker refused the connection (code %d)" % (self._buf[1] if size == 2 else -1))
        except Exception:
            self.close()
            raise

    def subscribe(self, topic):
        pid = self._next_pid()
        self._send(packet(self._buf, _SUBSCRIBE, (bytes((pid >> 8, pid & 0xFF)), _field(topic), b"\x01")))
        size = self._expect(SUBACK, "SUBACK")
        if size != 3 or self._buf[2] == 0x80:
            raise MqttError("broker refused the subscription to %s" % topic)

    def publish(self, topic, msg, retain=False, qos=0):
        t = _field(topic)
        if isinstance(msg, str):
            msg = msg.encode()
        head = _PUBLISH | (0x01 if retain else 0) | (qos << 1)
        pid = b""
        if qos:
            n = self._next_pid()
            pid = bytes((n >> 8, n & 0xFF))
        self._send(packet(self._buf, head, (t, pid, msg)))
        if qos:
            self._expect(_PUBACK, "_PUBACK")

    def ping(self):
        self._send(bytes((_PINGREQ, 0)))

    def poll(self, wait_ms):
        """Read what the broker sent within wait_ms: the (topic, message) of a _PUBLISH
        (acknowledged at QoS 1), or None. MqttError for a malformed packet."""
        if self._held:
            return self._held.pop(0)
        got = self._read_packet(wait_ms)
        return None if got is None else self._handle(got)

    def _handle(self, got):
        kind, size = got
        if kind & 0xF0 != _PUBLISH or size is None:
            return None  # _PINGRESP, or a message too long to be one of ours
        buf = self._buf
        qos = (kind >> 1) & 0x03
        tlen = (buf[0] << 8) | buf[1] if size >= 2 else size
        pos = 2 + tlen + (2 if qos else 0)
        if qos == 3 or pos > size:
            raise MqttError("malformed _PUBLISH")
        try:
            topic = bytes(buf[2:2 + tlen]).decode()
        except UnicodeError:
            raise MqttError("_PUBLISH topic is not UTF-8")
        if qos:
            self._send(bytes((_PUBACK, 2, buf[pos - 2], buf[pos - 1])))
        return topic, bytes(buf[pos:size])

    def close(self):
        # what is held stays: those hints are as true after a reconnect
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None
