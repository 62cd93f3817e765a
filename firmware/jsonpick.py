# Take single members out of a JSON object's text without parsing the rest. A /update or
# /printer reply carries the whole printer, CDD included; parsed whole, it is the largest
# transient allocation the agent makes outside a job, for one or two small fields.
import json

_WS = b" \t\r\n"


def loads(raw):
    """json.loads for text from outside; ValueError for anything it cannot take, also
    nesting that would exhaust the heap (MicroPython: MemoryError; CPython: RecursionError)."""
    try:
        return json.loads(raw)
    except (MemoryError, RuntimeError):
        raise ValueError("JSON nested too deep or too large to parse")


def _ws(raw, i):
    n = len(raw)
    while i < n and raw[i] in _WS:
        i += 1
    return i


def _string_end(raw, i):
    n = len(raw)
    i += 1
    while i < n:
        c = raw[i]
        if c == 0x5C:  # backslash: the next byte is escaped
            i += 2
        elif c == 0x22:
            return i + 1
        else:
            i += 1
    raise ValueError("unterminated string")


def _value_end(raw, i):
    n = len(raw)
    if i >= n:
        raise ValueError("value missing")
    c = raw[i]
    if c == 0x22:
        return _string_end(raw, i)
    if c == 0x7B or c == 0x5B:  # { or [
        depth = 0
        while i < n:
            c = raw[i]
            if c == 0x22:
                i = _string_end(raw, i)
                continue
            if c == 0x7B or c == 0x5B:
                depth += 1
            elif c == 0x7D or c == 0x5D:
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        raise ValueError("unterminated object")
    while i < n and raw[i] not in b",}] \t\r\n":  # number, true, false, null
        i += 1
    return i


def spans(raw, wanted, at=0):
    """{key: (start, end)} of the wanted members of the object at raw[at]. Keys are
    matched as written: protocol names (plain ASCII), not escaped ones."""
    out = {}  # type: dict
    i = _ws(raw, at)
    if i >= len(raw) or raw[i] != 0x7B:
        raise ValueError("not a JSON object")
    i = _ws(raw, i + 1)
    if i < len(raw) and raw[i] == 0x7D:
        return out
    while True:
        if i >= len(raw) or raw[i] != 0x22:
            raise ValueError("key expected")
        end = _string_end(raw, i)
        key = bytes(raw[i + 1:end - 1])
        i = _ws(raw, end)
        if i >= len(raw) or raw[i] != 0x3A:
            raise ValueError("colon expected")
        i = _ws(raw, i + 1)
        end = _value_end(raw, i)
        if key in wanted:
            out[key] = (i, end)
        i = _ws(raw, end)
        if i < len(raw) and raw[i] == 0x2C:
            i = _ws(raw, i + 1)
        elif i < len(raw) and raw[i] == 0x7D:
            return out
        else:
            raise ValueError("comma or } expected")


def first_item(raw, at):
    """Where the first element of the array at raw[at] starts; None if it is empty."""
    if raw[at] != 0x5B:
        raise ValueError("not a JSON array")
    i = _ws(raw, at + 1)
    return None if i >= len(raw) or raw[i] == 0x5D else i


def pick(raw, wanted, at=0):
    """{key (str): parsed value} of the wanted members; ValueError if raw is not JSON."""
    out = {}
    for key, (start, end) in spans(raw, wanted, at).items():
        out[key.decode()] = loads(raw[start:end])  # a copy of this member only
    return out
