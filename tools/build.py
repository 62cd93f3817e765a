"""Compile the firmware for a device: every firmware/**/*.py to .mpy with mpy-cross
(bytecode only, so the same files load on the ESP32 and the unix port; -O3 leaves out
line numbers, a few percent of resident bytecode, and the firmware has no asserts to lose),
plus boot.py and main.py as source, which is what MicroPython runs at boot.

  python -m tools.build --out build/device

Importing .mpy skips compiling on the device, which would otherwise cost about
20 KiB of peak heap per module (see the platform reference)."""
import argparse
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = os.path.join("firmware", "manifest.py")  # for freezing the firmware into an image: not deployed


class BuildError(Exception):
    pass


def mpy_cross():
    exe = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    return exe if os.path.exists(exe) else shutil.which("mpy-cross") or "mpy-cross"


def firmware_sources(root=ROOT):
    """Paths, relative to root, of every firmware .py file."""
    out = []
    for folder, _dirs, files in os.walk(os.path.join(root, "firmware")):
        for name in sorted(files):
            if name.endswith(".py") and os.path.join(folder, name) != os.path.join(root, MANIFEST):
                out.append(os.path.relpath(os.path.join(folder, name), root))
    return sorted(out)


def compile_one(src, dst, name):
    proc = subprocess.run([mpy_cross(), "-O3", "-s", name, "-o", dst, src], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError("%s: %s" % (src, (proc.stderr or proc.stdout).strip()))


def build(out_dir, root=ROOT):
    """Write the device tree to out_dir; the list of files written, relative to out_dir."""
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    written = []
    for rel in firmware_sources(root):
        dst = os.path.join(out_dir, rel[:-3] + ".mpy")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        compile_one(os.path.join(root, rel), dst, rel)
        written.append(os.path.relpath(dst, out_dir))
    for name in ("boot.py", "main.py"):
        shutil.copy(os.path.join(root, name), os.path.join(out_dir, name))
        written.append(name)
    return written


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.build", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "device"))
    args = ap.parse_args(argv)
    try:
        files = build(args.out)
    except BuildError as e:
        print("build failed: %s" % e, file=sys.stderr)
        return 1
    print("built %d files into %s" % (len(files), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
