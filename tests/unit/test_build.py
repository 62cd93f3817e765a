"""Every firmware file compiles for MicroPython, and the device tree is complete."""
import os

from tools import build


def test_every_firmware_file_compiles_with_mpy_cross(tmp_path):
    files = build.build(str(tmp_path / "device"))
    sources = build.firmware_sources()
    assert len(sources) >= 15
    assert sorted(files) == sorted([s[:-3] + ".mpy" for s in sources] + ["boot.py", "main.py"])
    for f in files:
        assert os.path.getsize(tmp_path / "device" / f) > 0
    for name in ("boot.py", "main.py"):  # what runs at boot stays source, and compiles too
        build.compile_one(os.path.join(build.ROOT, name), str(tmp_path / (name + ".mpy")), name)


def test_a_syntax_micropython_lacks_fails_the_build(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("match x:\n    case 1:\n        pass\n")
    try:
        build.compile_one(str(bad), str(tmp_path / "bad.mpy"), "bad.py")
    except build.BuildError as e:
        assert "bad.py" in str(e)
    else:
        raise AssertionError("mpy-cross accepted a match statement")
