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


def test_the_firmware_has_no_asserts_for_o3_to_drop():
    """build.py compiles with -O3, which leaves asserts out: the firmware must not rely on one."""
    import ast
    for rel in build.firmware_sources():
        with open(os.path.join(build.ROOT, rel)) as f:
            tree = ast.parse(f.read())
        assert not any(isinstance(n, ast.Assert) for n in ast.walk(tree)), rel


def test_the_firmware_loads_in_phases(tmp_path):
    """Under the real micropython, starting the agent loads neither the wiring that builds
    its parts nor the job runner, push or registration: each is imported for its phase
    (agent.py, parts.py), so their bytecode is not resident before it is needed."""
    import subprocess
    from tools.hostrun import MICROPYTHON
    build.build(str(tmp_path / "device"))
    script = tmp_path / "device" / "probe.py"
    script.write_text("import sys\nsys.path.insert(0, '.')\nfrom firmware import app, agent\n"
                      "print(' '.join(sorted(sys.modules)))\n")
    out = subprocess.run([MICROPYTHON, str(script)], cwd=str(tmp_path / "device"), capture_output=True,
                         text=True, timeout=30)
    loaded = out.stdout.split()
    assert "firmware.agent" in loaded, out.stdout + out.stderr
    for name in ("firmware.parts", "firmware.jobs", "firmware.download", "firmware.journal", "firmware.mqtt",
                 "firmware.notify", "firmware.registration", "firmware.cdd", "firmware.config",
                 "firmware.console_commands", "firmware.safe_mode"):
        assert name not in loaded, name
