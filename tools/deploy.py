"""Deploy the agent to a board with mpremote: the firmware compiled to .mpy by mpy-cross
(tools/build.py), boot.py, main.py, and the chosen board config as board.json. The board
config is checked against its schema first; --dry-run lists what would be copied (no
--port needed). Only what the board runs is copied: an ESP32 gets no host ports, a host
board (one with host_printer, such as the simulated device) no ESP32 port. Files under
firmware/ on the board that this deploy does not bring (left by an older one) are removed.

  python -m tools.deploy --port /dev/ttyUSB0 --board board_configs/esp32-devkitc-rs232.json
  python -m tools.deploy --port /dev/pts/7 --board ... --resume --no-reset   (the simulated device)
  python -m tools.deploy --port /dev/ttyUSB0 --board ... --frozen   (a firmware with the agent frozen in)

lib/ packages: the agent needs none today (its HTTP and MQTT clients are its own); a
package it needs later is installed here with `mpremote mip install`, from its registry."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from tools import build

LIB_PACKAGES = ()  # mip package names, pinned as NAME@VERSION
HOST_ONLY = ("firmware/ports/unix.mpy", "firmware/ports/unix_boot.mpy", "firmware/ports/unix_watchdog.mpy",
             "firmware/ports/hostdev.mpy")
ESP32_ONLY = ("firmware/ports/esp32.mpy",)
# Run on the board before copying: remove what an earlier deploy left under firmware/,
# and folders left empty (a firmware/ folder on the filesystem would hide a frozen agent).
PRUNE = """import os
keep = set(%r)
def prune(d):
    for e in os.ilistdir(d):
        p = d + '/' + e[0]
        if e[1] == 0x4000:
            prune(p)
        elif p not in keep:
            os.remove(p)
            print('removed stale', p)
    if not any(k.startswith(d + '/') for k in keep):
        os.rmdir(d)
try:
    prune('firmware')
except OSError:
    pass
"""


class DeployError(Exception):
    pass


def mpremote():
    exe = os.path.join(os.path.dirname(sys.executable), "mpremote")
    return exe if os.path.exists(exe) else shutil.which("mpremote") or "mpremote"


def check_board(path):
    from firmware import config
    try:
        with open(path) as f:
            raw = json.load(f)
    except (OSError, ValueError) as e:
        raise DeployError("cannot read board config %s: %s" % (path, e))
    try:
        config.validate(config.BOARD, raw, os.path.basename(path))
    except config.ConfigError as e:
        raise DeployError(str(e))
    return raw


def stage(board_path, out_dir, frozen=False):
    """The device tree in out_dir; the files, relative to it, in copy order. frozen: the
    board's MicroPython has the agent frozen in (firmware/manifest.py): no firmware/."""
    raw = check_board(board_path)
    unused = ESP32_ONLY if raw.get("host_printer") else HOST_ONLY
    if frozen:
        os.makedirs(out_dir, exist_ok=True)
        for name in ("boot.py", "main.py"):
            shutil.copy(os.path.join(build.ROOT, name), os.path.join(out_dir, name))
        files = ["boot.py", "main.py"]
    else:
        files = [f for f in build.build(out_dir) if f not in unused]
    with open(os.path.join(out_dir, "board.json"), "w") as f:
        json.dump(raw, f, indent=1)
    # main.py last: a board reset mid-copy must not start a half-copied agent
    return sorted(f for f in files if f != "main.py") + ["board.json", "main.py"]


def commands(port, tree, files, resume, reset):
    """One mpremote invocation: make the folders, copy every file, then reset."""
    cmd = [mpremote(), "connect", port]
    if resume:
        cmd.append("resume")
    cmd += ["exec", PRUNE % sorted(f for f in files if f.startswith("firmware/")), "+"]
    folders = sorted({os.path.dirname(f) for f in files if os.path.dirname(f)})
    for folder in folders:
        # mkdir fails on a folder that exists: check first (on the device)
        cmd += ["exec", "import os\ntry:\n os.mkdir(%r)\nexcept OSError:\n pass" % folder, "+"]
    for rel in files:
        cmd += ["fs", "cp", os.path.join(tree, rel), ":" + rel, "+"]
    for pkg in LIB_PACKAGES:
        cmd += ["mip", "install", pkg, "+"]
    if reset:
        cmd += ["reset"]
    elif cmd[-1] == "+":
        cmd.pop()
    return cmd


def main(argv=None, say=print):
    ap = argparse.ArgumentParser(prog="python -m tools.deploy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", help="the board's serial port (not needed with --dry-run)")
    ap.add_argument("--board", required=True, help="board config (board_configs/*.json)")
    ap.add_argument("--dry-run", action="store_true", help="list what would be copied, copy nothing")
    ap.add_argument("--resume", action="store_true", help="no soft reset when connecting (the "
                    "simulated device on a pty needs it)")
    ap.add_argument("--no-reset", action="store_true", help="do not reset the board afterwards")
    ap.add_argument("--frozen", action="store_true", help="the board runs a MicroPython with the agent "
                    "frozen in (firmware/manifest.py): copy only boot.py, main.py and the board config, "
                    "and remove any firmware/ folder")
    args = ap.parse_args(argv)
    if not args.port and not args.dry_run:
        ap.error("--port is needed, except with --dry-run")
    tree = tempfile.mkdtemp(prefix="deploy-")
    try:
        try:
            files = stage(args.board, tree, args.frozen)
        except build.BuildError as e:
            raise DeployError("mpy-cross: %s" % e)
        total = sum(os.path.getsize(os.path.join(tree, f)) for f in files)
        say("%d files, %d bytes, for %s:" % (len(files), total, os.path.basename(args.board)))
        for rel in files:
            say("  %-40s %6d" % (rel, os.path.getsize(os.path.join(tree, rel))))
        if args.dry_run:
            say("dry run: nothing copied")
            return 0
        cmd = commands(args.port, tree, files, args.resume, not args.no_reset)
        say("copying over %s with mpremote ..." % args.port)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=600)
        for line in proc.stdout.splitlines():
            say("  " + line)
        if proc.returncode != 0:
            raise DeployError("mpremote failed (exit %d); see its output above" % proc.returncode)
        say("deployed %d files%s" % (len(files), "" if args.no_reset else "; the board is resetting"))
        return 0
    except (DeployError, subprocess.TimeoutExpired) as e:
        print("deploy: %s" % e, file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tree, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
