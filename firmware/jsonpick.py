# Take single members out of a JSON reply as it streams by, without holding the rest. A
# /register, /update or /printer reply carries the whole printer, CDD included: read
# whole, it is the largest allocation the agent makes outside a job, and a fragmented
# heap may have no block that large, all for a few small fields.
from micropython import const
import json

_WS = b" \t\r\n"
_KEY_MAX = const(32)  # longer member names are none we want
_VALUE_MAX = const(1024)  # a wanted member longer than this is left out


def loads(raw):
    """json.loads for text from outside; ValueError for anything it cannot take, also
    nesting that would exhaust the heap (MicroPython: MemoryError; CPython: RecursionError)."""
    try:
        return json.loads(raw)
    except (MemoryError, RuntimeError):
        raise ValueError("JSON nested too deep or too large to parse")


def stream_pick(read, wanted, window, inner=None, inner_wanted=(), inner_max=1):
    """{name: value} of the wanted members of the top-level object of a body read in
    pieces (read(memoryview) -> n, 0 at its end) through window, a small bytearray; and
    when inner names a member that is an array, out[inner] = [{the inner_wanted members}
    of each of its first inner_max elements that are objects]. A member over _VALUE_MAX
    bytes is left out; the rest streams by. Names are matched as written (protocol
    names, plain ASCII). ValueError if the body is not one JSON object; the caller's
    deadline bounds how long it may stream."""
    mv = memoryview(window)
    key = bytearray(_KEY_MAX)
    out = {}  # type: dict
    dest, names = out, wanted  # where members at the picking depth go, and which
    depth = key_n = 0  # depth 1: inside the top-level object
    level = 1  # the depth whose members are picked: 3 inside one of inner's elements
    inner_at = 0  # 1: inner's value starts; 2: inside its array
    items = []  # type: list  # out[inner], once it is seen
    started = in_str = esc = in_value = False
    name = value = None  # the wanted member being captured, and its bytes so far
    while True:
        n = read(mv)
        if not n:
            break
        for i in range(n):
            c = window[i]
            if in_str:
                if esc:
                    esc = False
                elif c == 0x5C:  # backslash: the next byte is escaped
                    esc = True
                elif c == 0x22:
                    in_str = False
                elif depth == level and not in_value and key_n < _KEY_MAX:
                    key[key_n] = c
                    key_n += 1
            elif c in _WS:
                continue
            elif not started:
                if c != 0x7B:
                    raise ValueError("not a JSON object")
                started, depth = True, 1
                continue
            elif depth == 0:
                raise ValueError("bytes after the JSON object")
            elif depth == level and (c == 0x2C or c == 0x7D):  # , or }: a member ends
                if value is not None:
                    dest[name] = loads(bytes(value))
                    value = None
                in_value, key_n = False, 0
                if c == 0x7D:
                    depth -= 1
                    if level == 3:  # one of inner's elements is read: back in its array
                        level, dest, names, in_value = 1, out, wanted, True
                continue
            elif depth == level and c == 0x3A and not in_value:  # : after a member's name
                in_value = True
                found = bytes(memoryview(key)[:key_n])
                if found in names:
                    name, value = found.decode(), bytearray()
                elif level == 1 and found == inner:
                    inner_at = 1
                continue
            else:
                if inner_at == 1:  # inner's value: an array, or nothing to pick
                    inner_at = 0
                    if c == 0x5B:
                        inner_at, items = 2, []
                        out[inner.decode()] = items
                elif inner_at == 2 and depth == 2:  # between inner's elements
                    if c == 0x5D:
                        inner_at = 0
                    elif c == 0x7B and len(items) < inner_max:
                        dest, names, level, in_value = {}, inner_wanted, 3, False
                        items.append(dest)
                        depth = 3
                        continue
                if c == 0x22:
                    in_str = True
                    if depth == level and not in_value:
                        key_n = 0  # a member's name begins
                elif c == 0x7B or c == 0x5B:
                    depth += 1
                elif c == 0x7D or c == 0x5D:
                    depth -= 1
                    if depth < level or depth < 1:
                        raise ValueError("unbalanced JSON")
            if value is not None:
                if len(value) < _VALUE_MAX:
                    value.append(c)
                else:  # too long to be what we want: left out
                    value = None
    if not started or depth != 0:
        raise ValueError("not a whole JSON object")
    return out
