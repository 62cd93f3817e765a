"""jsonpick: single members out of a JSON object's text, the rest never parsed."""
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from firmware import cloudprint as CP
from firmware import jsonpick
from tests.fakes import Body, FakeConn, http_reply

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


names = st.text("abcdefghijklmnopqrstuvwxyz_ABC0123456789", min_size=1, max_size=10)


def pick(raw, wanted, piece=7, inner=None, inner_wanted=(), inner_max=1):
    return jsonpick.stream_pick(Body(raw, piece).readinto, wanted, bytearray(16), inner, inner_wanted,
                                inner_max)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # recursive data is slow to draw
@given(st.dictionaries(names, values, max_size=8), st.booleans(), st.integers(1, 70))
def test_members_come_out_as_json_loads_would_give_them(obj, indent, piece):
    raw = json.dumps(obj, indent=2 if indent else None).encode()
    wanted = tuple(k.encode() for k in list(obj)[::2])
    expected = {k.decode(): obj[k.decode()] for k in wanted
                if len(json.dumps(obj[k.decode()]).encode()) <= 1000}  # a longer one may be left out
    got = pick(raw, wanted, piece)
    assert {k: v for k, v in got.items() if k in expected} == expected
    assert set(got) <= {k.decode() for k in wanted}


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(names, values, max_size=5) | scalars, max_size=5), st.lists(names, max_size=4),
       st.integers(1, 70), st.integers(1, 3))
def test_the_first_objects_of_an_inner_array_come_out_and_only_they(items, keys, piece, most):
    raw = json.dumps({"success": True, "jobs": items, "id": "top"}).encode()
    wanted = tuple(k.encode() for k in keys)
    got = pick(raw, (b"success",), piece, b"jobs", wanted, most)
    assert got.pop("success") is True
    objects = [o for o in items if isinstance(o, dict)][:most]
    assert got == {"jobs": [{k: o[k] for k in keys if k in o and len(json.dumps(o[k]).encode()) <= 1000}
                            for o in objects]}
    assert pick(json.dumps({"jobs": None}).encode(), (), piece, b"jobs", wanted) == {}


def test_a_streamed_reply_never_holds_the_members_it_skips():
    printer = {"id": "p1", "capabilities": {"x": "y" * 20000}, "name": 'a "success": false }'}
    body = json.dumps({"printer": printer, "success": True, "message": "Printer updated."}).encode()
    assert pick(body, CP.ENVELOPE, 64) == {"success": True, "message": "Printer updated."}
    long_message = json.dumps({"success": False, "message": "m" * 2000}).encode()
    assert pick(long_message, CP.ENVELOPE) == {"success": False}  # over _VALUE_MAX: left out


def test_tricky_strings_and_nesting_do_not_confuse_it():
    raw = (b'{"printer": {"name": "a \\"success\\": false }", "success": "nested"},'
           b' "x": [1, {"y": "]"}], "success" :true , "message":"ok"}')
    assert pick(raw, (b"success", b"message")) == {"success": True, "message": "ok"}
    for bad in (b"[1]", b'{"a": 1', b'{"a": 1}}', b'{"a": 1} x', b'{"a": "x}', b"not json", b"",
                b'{"a": [1}', b'{"a": 1]', b'{"a": tru}'):
        with pytest.raises(ValueError):
            pick(bad, (b"a",))


def test_printer_replies_are_read_for_the_envelope_and_local_settings_only():
    printer = {"id": "p1", "capabilities": {"printer": {"copies": {"max": 999}}},
               "local_settings": {"current": {"xmpp_timeout_value": 60}, "pending": {"xmpp_timeout_value": 90}}}
    body = json.dumps({"success": True, "printers": [printer]}).encode()
    obj = CP.pick(CP.LOCAL_SETTINGS_REPLY, Body(body))
    assert obj == {"success": True, "printers": [{"id": "p1", "local_settings": printer["local_settings"]}]}
    assert CP.pick(CP.ENVELOPE_ONLY, Body(json.dumps({"success": False, "errorCode": 1001, "message": "Unknown printer.",
                                             "printer": printer}).encode())) == {
        "success": False, "errorCode": 1001, "message": "Unknown printer."}


def test_a_cut_off_reply_is_not_json():
    from firmware.http import Http
    from tests.fakes import Connector, FakeClock
    body = b'{"success": true, "printer": {"id": "p1"'
    conn = FakeConn(http_reply(200, body, [("Content-Length", str(len(body)))]))
    resp = Http(Connector(conn), FakeClock()).request("POST", "http://svc/cloudprint/update")
    with pytest.raises(CP.ServiceError, match="not JSON"):
        CP.parse_reply("update", resp, CP.ENVELOPE_ONLY)
