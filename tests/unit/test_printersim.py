"""The simulated printers' wire behaviour, without the network."""
import socket

from tools.printersim.printer import XOFF, XON, make
from tools.printersim.server import PrinterSim


def test_control_port_commands(tmp_path):
    with PrinterSim("zpl", str(tmp_path), control_port=0) as sim:
        host, port = sim.control_address.split(":")
        f = socket.create_connection((host, int(port))).makefile("rwb", buffering=0)

        def ask(line):
            f.write(line.encode() + b"\n")
            return f.readline().decode().strip()
        assert ask("fault head_open") == "ok"
        assert '"faults": ["head_open"]' in ask("status")
        assert b"\x02001,0,1," in sim.printer.host_status()
        assert ask("fault ink").startswith("error: unknown fault")
        assert ask("clear") == "ok" and sim.printer.faults == set()
        assert ask("what").startswith("error: commands are")


def test_fault_after_n_bytes_and_extended_status(tmp_path):
    p = make("zpl", str(tmp_path))
    p.fault("paper_out", after_bytes=12)
    p.feed(b"^XA^FD12345")
    assert p.faults == set()
    p.feed(b"6^FS^XZ")
    assert p.faults == {"paper_out"}
    assert b"ERRORS:         1 00000000 00000001" in p.feed(b"~HQES")
    p.clear("paper_out")
    assert b"ERRORS:         0 00000000 00000000" in p.feed(b"~HQES")


def test_hardware_flow_never_reads_more_than_fits(tmp_path):
    p = make("zpl", str(tmp_path), buffer_size=45, busy_free=16, ready_free=26)
    assert p.window(4096) == 45
    p.feed(b"x" * 30)
    assert p.busy and not p.can_receive() and p.window(4096) == 15


def test_overflow_without_flow_control_is_counted_and_xoff_sent(tmp_path):
    p = make("escpos", str(tmp_path), buffer_size=100, flow="xonxoff", busy_free=20, ready_free=60)
    out = p.feed(b"a" * 90)
    assert out == bytes((XOFF,))
    p.feed(b"b" * 30)  # a sender that ignores XOFF
    assert p.lost == 20 and len(p.buffer) == 100
    p.engine_step()  # the engine prints everything at once
    assert p.take_outbox() == bytes((XON,))


def test_escpos_asb_reports_changes(tmp_path):
    p = make("escpos", str(tmp_path))
    p.feed(b"\x1da\x0f")
    p.engine_step()
    assert p.take_outbox() == bytes((0x10, 0, 0, 0))
    p.fault("paper_out")
    assert p.take_outbox() == bytes((0x18, 0, 0x0C, 0))


def test_realtime_command_split_across_reads(tmp_path):
    p = make("escpos", str(tmp_path))
    assert p.feed(b"text\x10") == b""
    assert p.feed(b"\x04") == b""
    assert p.feed(b"\x04") == b"\x12"
    assert p.data() == b"text"
