"""Run a simulated printer:

  python -m tools.printersim --language zpl --port 9100 --record DIR [--baud 115200]
      [--buffer 4096] [--flow hardware|xonxoff|none] [--busy-free N] [--ready-free N]
      [--print-rate BYTES_PER_S]
      [--comm-halt] [--no-gs-r] [--pty] [--control-port 9200]

Faults over the control port:  echo "fault paper_out after 2000" | nc 127.0.0.1 9200"""
import argparse

from tools.hostrun import serve_until_signalled
from tools.printersim.server import PrinterSim


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.printersim", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--language", choices=("zpl", "escpos"), required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9100)
    ap.add_argument("--record", required=True, help="directory for what is received and printed")
    ap.add_argument("--pty", action="store_true", help="also expose the printer on a raw pty")
    ap.add_argument("--baud", type=int, help="pace the line at this baud rate (8N1)")
    ap.add_argument("--buffer", type=int, default=65536, help="receive buffer size in bytes")
    ap.add_argument("--flow", choices=("hardware", "xonxoff", "none"), default="hardware")
    ap.add_argument("--busy-free", type=int, default=128, help="busy (XOFF) at this many bytes free")
    ap.add_argument("--ready-free", type=int, default=1024, help="ready (XON) again at this many bytes free")
    ap.add_argument("--print-rate", type=int, help="bytes a second the engine prints (default: at once)")
    ap.add_argument("--comm-halt", action="store_true", help="ZPL comm.halt: silent while in error")
    ap.add_argument("--no-gs-r", action="store_true",
                    help="ESC/POS: answer DLE EOT status but ignore GS r, as many modules do")
    ap.add_argument("--control-port", type=int, help="TCP port for fault commands")
    args = ap.parse_args(argv)
    try:
        sim = PrinterSim(args.language, args.record, args.host, args.port, args.pty, args.baud,
                         args.control_port, buffer_size=args.buffer, flow=args.flow,
                         busy_free=args.busy_free, ready_free=args.ready_free,
                         print_rate=args.print_rate, comm_halt=args.comm_halt,
                         **({"gs_r": False} if args.no_gs_r else {})).start()
    except OSError as e:  # a port in use, a record directory that cannot be made
        raise SystemExit("printersim: cannot start: %s (ports %d%s on %s)" % (
            e.strerror or e, args.port, "" if args.control_port is None else ", %d" % args.control_port,
            args.host))
    print("printersim: %s printer at %s%s%s" % (
        args.language, sim.address, " and " + sim.pty_path if sim.pty_path else "",
        "; control at " + sim.control_address if sim.control_address else ""), flush=True)
    serve_until_signalled(sim.stop)


if __name__ == "__main__":
    main()
