"""Fuzz the firmware's parsers under the real micropython interpreter, with a capped heap:

  python -m tests.fuzz [--inputs 100000] [--seed 1] [--targets http,mqtt,...]

Targets: the HTTP client (status line, headers, chunked framing), jsonpick (and the
replies built on it), the MQTT client's packets, ZPL and ESC/POS status replies,
console lines, settings and board JSON. A failure is an exception other than the
target's documented error, a MemoryError, an input slower than its budget, heap held
after an input, or a hang (no progress within the time limit). Each failure prints its
seed and input index: `micropython tests/fuzz/mp_fuzz.py TREE DIR TARGET SEED 1 INDEX`
replays it alone. Prints inputs per second per target; exit status 1 on any failure."""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

from tools import build
from tools.hostrun import MICROPYTHON, ROOT

TARGETS = ("http", "jsonpick", "mqtt", "zpl_status", "escpos_status", "console", "config")
HEAP = "512K"  # 64-bit objects: a parser that keeps what it reads runs out here
SCRIPT = os.path.join(ROOT, "tests", "fuzz", "mp_fuzz.py")


def fuzz(target, inputs, seed, tree, flash, say=print):
    """(failure lines, inputs per second) for one target."""
    limit = 120 + inputs * 0.05  # far above the slowest target's pace: only a hang reaches it
    t0 = time.monotonic()
    try:
        proc = subprocess.run([MICROPYTHON, "-X", "heapsize=" + HEAP, SCRIPT, tree, flash, target,
                               str(seed), str(inputs)], capture_output=True, text=True, timeout=limit)
        out = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        done = re.findall(r"progress (\d+)", out)
        return (["HANG after input %s (seed %d): no end within %.0f s" % (done[-1] if done else 0, seed,
                                                                       limit)], 0.0)
    took = time.monotonic() - t0
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    summary = re.search(r"done \S+ inputs=(\d+) failures=(\d+) slowest_ms=(\d+)", out)
    if summary is None:
        fails.append("CRASH (seed %d): %s" % (seed, out.strip()[-500:]))
    elif int(summary.group(2)) > len(fails):
        fails.append("%s more failures" % (int(summary.group(2)) - len(fails)))
    rate = inputs / took if took else 0.0
    say("%-14s %7d inputs  %8.0f inputs/s  slowest %5s ms  failures %d"
        % (target, inputs, rate, summary.group(3) if summary else "?", len(fails)))
    for line in fails:
        say("  " + line)
    return fails, rate


def run(inputs, seed, targets=TARGETS, say=print):
    """Every failure line over all targets (empty when all passed)."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        tree = os.path.join(tmp, "device")
        build.build(tree)  # the firmware as deployed: .mpy
        flash = os.path.join(tmp, "flash")
        os.makedirs(flash)
        failures = []
        for target in targets:
            failures += fuzz(target, inputs, seed, tree, flash, say)[0]
        return failures


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", type=int, default=100000, help="inputs per target")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--targets", default=",".join(TARGETS))
    args = ap.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    unknown = set(targets) - set(TARGETS)
    if unknown:
        ap.error("unknown targets: %s (choose from %s)" % (", ".join(sorted(unknown)), ", ".join(TARGETS)))
    print("fuzzing under %s with a %s heap, seed %d" % (os.path.basename(MICROPYTHON), HEAP, args.seed))
    failures = run(args.inputs, args.seed, targets)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
