"""The firmware type-checks against the pinned ESP32 and MicroPython stdlib stubs
(mypy.ini), so a call that does not exist on the ESP32 fails the build."""
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mypy(target, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", os.path.join(ROOT, "mypy.ini"),
                           target], cwd=cwd, capture_output=True, text=True)


def test_the_firmware_uses_only_what_the_esp32_has():
    assert os.path.exists(os.path.join(ROOT, ".venv", "typings", "machine.pyi")), "run tools/setup.sh"
    proc = mypy("firmware")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_api_the_esp32_lacks_fails_the_check(tmp_path):
    shutil.copytree(os.path.join(ROOT, "firmware"), tmp_path / "firmware")
    os.symlink(os.path.join(ROOT, ".venv"), tmp_path / ".venv")
    esp = tmp_path / "firmware" / "ports" / "esp32.py"
    esp.write_text(esp.read_text().replace("return self._u.readinto(buf)",
                                           "return self._u.readinto(buf, timeout_ms=5)"))
    proc = mypy("firmware", cwd=str(tmp_path))
    assert proc.returncode == 1 and 'esp32.py:' in proc.stdout, proc.stdout
    assert 'No overload variant of "readinto" of "UART"' in proc.stdout
