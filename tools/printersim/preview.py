"""PNG previews of what a simulated printer printed, drawn by the shared renderer
(tools/preview.py), which the service console's job previews use too.

  python -m tools.printersim.preview RECORD_DIR     # writes printed/NNNN.png for each"""
import argparse
import os
import sys

from tools.preview import render


def render_dir(record_dir):
    """Write a PNG beside every printed document in record_dir/printed; the PNG paths."""
    folder = os.path.join(record_dir, "printed")
    out = []
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext in (".zpl", ".escpos"):
            with open(os.path.join(folder, name), "rb") as f:
                img = render(f.read(), ext[1:])
            path = os.path.join(folder, stem + ".png")
            img.save(path)
            out.append(path)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.printersim.preview", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("record_dir", help="a simulated printer's --record directory")
    args = ap.parse_args(argv)
    if not os.path.isdir(os.path.join(args.record_dir, "printed")):
        print("preview: %s has no printed/ folder: not a printer simulator's --record directory"
              % args.record_dir, file=sys.stderr)
        return 2
    for p in render_dir(args.record_dir):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
