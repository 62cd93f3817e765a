"""Run a simulated printer:  python -m tools.printersim --language zpl --port 9100 --record DIR"""
import argparse
import signal
import threading

from tools.printersim.server import PrinterSim


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.printersim")
    ap.add_argument("--language", choices=("zpl", "escpos"), required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9100)
    ap.add_argument("--record", required=True, help="directory for received.bin and data.bin")
    ap.add_argument("--pty", action="store_true", help="also expose the printer on a raw pty")
    args = ap.parse_args(argv)
    sim = PrinterSim(args.language, args.record, args.host, args.port, args.pty).start()
    print("printersim: %s printer at %s%s" % (args.language, sim.address,
          " and " + sim.pty_path if sim.pty_path else ""), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    done.wait()
    sim.stop()


if __name__ == "__main__":
    main()
