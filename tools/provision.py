"""Provision a board over its USB serial console (firmware/console.py): apply settings from
flags or a JSON file, optionally the service's CA certificate, reboot, and show `status`.
Secrets are masked in everything it prints. Exits non-zero with a clear message when the
port cannot be opened, the console does not answer, or the device refuses a setting.

  python -m tools.provision --port /dev/ttyUSB0 --settings site.json --ca ca.pem \\
      --set wifi_ssid="Dock WiFi" --set wifi_password=... --reboot"""
import argparse
import base64
import json
import re
import sys
import time

import serial

SECRET_WORDS = ("password", "secret")
ANSWER_S = 5.0
REBOOT_S = 30.0


class ProvisionError(Exception):
    pass


def is_secret(key):
    return any(w in key for w in SECRET_WORDS)


def console_text(value):
    """A JSON value as the console's `set` expects it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ca_base64(path):
    """The certificate at path (PEM or DER) as base64 DER on one line."""
    with open(path, "rb") as f:
        data = f.read()
    if b"-----BEGIN CERTIFICATE-----" in data:
        body = data.split(b"-----BEGIN CERTIFICATE-----", 1)[1].split(b"-----END CERTIFICATE-----", 1)[0]
        return b"".join(body.split()).decode()
    return base64.b64encode(data).decode()


class Console:
    """Lines to and from the device's console; log lines in between are skipped."""

    def __init__(self, port, baud, answer_s=ANSWER_S):
        try:
            self.ser = serial.serial_for_url(port, baudrate=baud, timeout=0.1)
        except (serial.SerialException, OSError, ValueError) as e:
            raise ProvisionError("cannot open %s: %s" % (port, e))
        self.port = port
        self.answer_s = answer_s
        self._pending = b""
        self.ser.reset_input_buffer()

    def send(self, line):
        self.ser.write(line.encode() + b"\r\n")
        self.ser.flush()

    def lines(self, seconds):
        """Lines the device prints within seconds."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            chunk = self.ser.read(4096)
            if not chunk:
                continue
            self._pending += chunk
            while b"\n" in self._pending:
                raw, self._pending = self._pending.split(b"\n", 1)
                yield raw.decode("utf-8", "replace").rstrip("\r")
        if b">>>" in self._pending or b"raw REPL" in self._pending:
            yield self._pending.decode("utf-8", "replace")

    def ask(self, line, done, what, seconds=None):
        """Send line; the device's lines up to and including the one done() accepts."""
        self.send(line)
        got = []
        for text in self.lines(seconds or self.answer_s):
            if text.startswith(">>>") or "raw REPL" in text:
                raise ProvisionError("%s is at the MicroPython prompt, not running the agent: "
                                     "press the board's reset button (or deploy the firmware first)"
                                     % self.port)
            got.append(text)
            if done(text):
                return got
        raise ProvisionError("no answer from the agent's console on %s within %.0f s (%s): is the "
                             "agent running, and is this its port?" % (self.port, seconds or self.answer_s,
                                                                     what))


def apply(con, settings, ca_path, say):
    con.ask("help", lambda t: t.startswith("  factory-reset"), "help")
    items = list(settings.items()) + ([("ca_cert", None)] if ca_path else [])
    for i, (key, value) in enumerate(items, 1):
        if key == "ca_cert":
            text, shown = ca_base64(ca_path), ca_path
        else:
            text = console_text(value)
            shown = "********" if is_secret(key) else text
        if not re.match(r"^[a-z_]+$", key):
            raise ProvisionError("%s: not a setting name" % key)
        got = con.ask("set %s %s" % (key, text),
                      lambda t: t.startswith("ok: " + key) or t.startswith("error:"), "set " + key)
        if got[-1].startswith("error:"):
            raise ProvisionError("the device refused %s: %s (settings before it were saved)"
                                 % (key, got[-1][len("error: "):]))
        say("[%d/%d] %s = %s ... ok" % (i, len(items), key, shown))


def wait_back(con):
    """Ask until the console answers again: what is typed while a board resets is lost."""
    end = time.monotonic() + REBOOT_S
    while True:
        try:
            con.ask("help", lambda t: t.startswith("  factory-reset"), "help", 2)
            return
        except ProvisionError:
            if time.monotonic() > end:
                raise ProvisionError("the console did not come back within %.0f s of the reboot"
                                     % REBOOT_S)


def status(con):
    return [t for t in con.ask("status", lambda t: t.startswith("firmware:"), "status")
            if re.match(r"^[a-z ]+: ", t)]


def main(argv=None, say=print):
    ap = argparse.ArgumentParser(prog="python -m tools.provision", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", required=True, help="serial port: /dev/ttyUSB0, COM3, socket://HOST:PORT")
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--settings", help="JSON file of settings (keys as in the README)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="one setting; repeatable, applied after --settings")
    ap.add_argument("--ca", help="the service's CA certificate, PEM or DER")
    ap.add_argument("--reboot", action="store_true", help="reboot afterwards so the settings apply")
    ap.add_argument("--timeout", type=float, default=ANSWER_S, help="seconds to wait for each answer")
    args = ap.parse_args(argv)
    settings = {}
    try:
        if args.settings:
            try:
                with open(args.settings) as f:
                    settings = json.load(f)
            except (OSError, ValueError) as e:
                raise ProvisionError("cannot read %s: %s" % (args.settings, e))
            if not isinstance(settings, dict):
                raise ProvisionError("%s: expected a JSON object" % args.settings)
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                raise ProvisionError("--set %s: expected KEY=VALUE" % item)
            settings[key.strip()] = value
        con = Console(args.port, args.baud, args.timeout)
        say("provisioning over %s" % args.port)
        apply(con, settings, args.ca, say)
        if args.reboot:
            con.ask("reboot", lambda t: t == "rebooting", "reboot")
            say("rebooting ...")
            wait_back(con)
        for line in status(con):
            say("  " + line)
        return 0
    except ProvisionError as e:
        print("provision: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
