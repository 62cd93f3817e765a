"""The serial console (firmware/console.py, console_commands.py) with a real flash
directory and the Status the agent fills in: validation, atomic writes, masked secrets, confirmations."""
import base64
import json
import os

import pytest

from firmware.console import LINE_MAX, Console, Status
from firmware.store import Flash
from tests.fakes import FakeClock


class StubDriver:
    def __init__(self):
        self.written = b""

    def test_page(self, version):
        return b"^XAtest " + version.encode() + b"^XZ"

    def write(self, data):
        self.written += data

    def status(self):
        return "ready"


def status():
    """The console's view of a registered, idle agent (console.Status, as the agent fills it)."""
    from firmware.indicator import Indicator
    st = Status(Indicator(), lambda: "the host's network", lambda: None)
    st.rebooted = 0

    def reboot():
        st.rebooted += 1
    st.reboot = reboot
    st.state = "registered"
    st.printer_id = "p-1"
    st.last_job = "j-1 DONE"
    st.driver = StubDriver()
    return st


@pytest.fixture
def con(tmp_path):
    out = []
    c = Console(lambda ms: None, out.append, Flash(str(tmp_path)), status(), FakeClock().pause_ms)
    c.out, c.dir = out, tmp_path

    def say(line):
        del out[:]
        c.feed(line.encode() + b"\r\n")
        return list(out)
    c.say = say
    return c


def files(tmp_path):
    return {name: (tmp_path / name).read_bytes() for name in sorted(os.listdir(tmp_path))}


def test_lines_arrive_in_pieces_and_blank_lines_do_nothing(con):
    con.feed(b"ge")
    con.feed(b"t log_l")
    assert con.out == []
    con.feed(b"evel\r\n\r\n\n")
    assert con.out == ["log_level = info (default)"]


def test_settings_are_checked_before_anything_is_written(con):
    assert con.say("set service_url https://print.example.com/cloudprint") == [
        "ok: service_url = https://print.example.com/cloudprint (applies after reboot)"]
    before = files(con.dir)
    for line, error in [
            ("set nosuch 1", "error: nosuch: unknown setting; type show for the list"),
            ("set poll_interval_s soon", "error: poll_interval_s: expected a whole number"),
            ("set poll_interval_s 0", "error: poll_interval_s: must be between 1 and 3600"),
            ("set baudrate 12345", "error: baudrate: unsupported baud rate 12345"),
            ("set service_url ftp://x", "error: service_url: not an http:// or https:// URL"),
            ("set mqtt_url https://broker", "error: mqtt_url: not an mqtt:// or mqtts:// URL"),
            ("set log_level loud", "error: log_level: must be one of debug, info, warn, error"),
            ("set status_back maybe", "error: status_back: expected true or false"),
            ("set ca_cert bm90IGEgY2VydA==", "error: ca_cert: not an X.509 certificate in DER "
                                             "(unexpected tag 0x6e)"),
            ("set poll_interval_s", "error: usage: set KEY VALUE"),
            ("frobnicate", "error: unknown command frobnicate; type help")]:
        assert con.say(line) == [error], line
    assert files(con.dir) == before  # nothing written on error
    assert not any(n.endswith(".tmp") for n in os.listdir(con.dir))


def test_rtscts_needs_its_pins_in_the_board_file(con):
    (con.dir / "board.json").write_text(json.dumps({"board": "b", "printer_language": "zpl"}))
    assert con.say("set flow_control rtscts")[0].startswith(
        "error: board config: flow_control: rtscts needs uart_rts and uart_cts")
    con.say("set uart_rts 18")
    con.say("set uart_cts 19")
    assert con.say("set flow_control rtscts")[0].startswith("ok: flow_control = rtscts")
    assert json.loads((con.dir / "board.json").read_text())["uart_cts"] == 19


def test_secrets_are_never_echoed(con):
    secret = "correct horse battery"
    lines = con.say("set wifi_password " + secret)
    lines += con.say("get wifi_password") + con.say("show") + con.say("set oauth_client_secret s3cr3t-value")
    assert secret not in "\n".join(lines) and "s3cr3t-value" not in "\n".join(lines)
    assert "wifi_password = ******** (set)" in lines
    assert json.loads((con.dir / "settings.json").read_text())["wifi_password"] == secret  # spaces kept


def test_a_real_ca_certificate_is_accepted_and_stored_as_der(con, tmp_path_factory):
    from tools.printservice import certs
    paths = certs.ensure(str(tmp_path_factory.mktemp("ca")))
    der = open(paths["ca_der"], "rb").read()
    out = con.say("set ca_cert " + base64.b64encode(der).decode())
    assert out[0].startswith("ok: ca_cert = ca.der, %d bytes, sha256 " % len(der))
    assert (con.dir / "ca.der").read_bytes() == der
    assert con.say("set ca_cert " + base64.b64encode(der[:-5]).decode()) == [
        "error: ca_cert: not an X.509 certificate in DER (truncated)"]
    assert (con.dir / "ca.der").read_bytes() == der


def test_garbled_and_overlong_lines_are_refused(con):
    assert con.say("set log_level \x1b[Adebug") == ["error: control characters in the line; ignored"]
    con.out.clear()
    con.feed(b"get \xff\xfe\n")
    assert con.out == ["error: unreadable characters in the line; ignored"]
    con.out.clear()
    con.feed(b"x" * (LINE_MAX + 10) + b"\nget log_level\n")
    assert con.out == ["error: line longer than %d characters; ignored" % LINE_MAX,
                       "log_level = info (default)"]
    assert not (con.dir / "settings.json").exists()


def test_a_corrupt_settings_file_is_reported_and_replaced_by_the_next_good_write(con):
    (con.dir / "settings.json").write_bytes(b"{not json")
    out = con.say("set log_level debug")
    assert out[0].startswith("warning: settings.json is not valid JSON")
    assert json.loads((con.dir / "settings.json").read_text()) == {"log_level": "debug"}


def test_destructive_commands_ask_first(con):
    (con.dir / "settings.json").write_text("{}")
    assert "Type: unregister yes" in con.say("unregister")[0] and con.status.wanted is None
    assert con.say("unregister yes") == ["ok: unregistering once the current step is done"]
    assert con.status.wanted == "unregister"  # the main loop does it, between steps
    assert "Type: factory-reset yes" in con.say("factory-reset")[0]
    assert (con.dir / "settings.json").exists() and con.status.rebooted == 0
    con.say("factory-reset yes")
    assert not (con.dir / "settings.json").exists() and con.status.rebooted == 1
    assert json.loads((con.dir / "boot.json").read_text()) == {"unstable": 0}  # not a crash


def test_test_print_waits_for_the_printer_to_be_free(con):
    con.status.busy = True
    assert con.say("test-print") == ["error: a job is printing; try again when it is done"]
    assert con.status.driver.written == b""
    con.status.busy = False
    assert con.say("test-print") == ["ok: test page sent (16 bytes); printer: ready"]
    assert con.status.driver.written == b"^XAtest 0.1.0^XZ"


def test_status_and_register_say_where_the_agent_is(con):
    lines = con.say("status")
    assert lines[:3] == ["state:        registered", "printer id:   p-1", "network:      the host's network"]
    assert "last job:     j-1 DONE" in lines and lines[-1].startswith("firmware:")
    assert con.say("register") == ["already registered as p-1; type unregister yes first"]
    con.status.printer_id = None
    assert con.say("unregister yes") == ["not registered: nothing to forget"]


def test_show_reads_the_board_the_agent_runs_with_when_it_came_from_board(con, tmp_path):
    board = tmp_path / "elsewhere.json"
    board.write_text(json.dumps({"board": "dock-3", "printer_language": "escpos"}))
    con.status.board_file = str(board)
    out = con.say("show")
    assert "[board: %s, from --board]" % board in out
    assert "  board = dock-3" in out and "  printer_language = escpos" in out


def test_the_resident_command_names_are_exactly_the_commands():
    from firmware import console, console_commands
    assert sorted(console.NAMES) == sorted(console_commands.COMMANDS)
