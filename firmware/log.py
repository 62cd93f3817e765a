# Bounded, redacting console logger. Every line is cut to _MAX_LINE characters and
# every registered secret is masked, so a token can never reach the console even
# if a message or an exception text happens to contain it.

from micropython import const
LEVELS = ("debug", "info", "warn", "error")
_MAX_LINE = const(240)
_MAX_SECRETS = const(8)  # rotating secrets (tokens, codes): the agent holds at most four at once
_MIN_SECRET_LEN = const(4)
MASK = "***"


class Log:
    def __init__(self, write=print, level="info"):
        self._write = write
        self._min = LEVELS.index(level)
        self._secrets = []  # rotating: the oldest gives way
        self._pinned = []  # from the settings (client secret, Wi-Fi password): never dropped

    def set_level(self, level):
        self._min = LEVELS.index(level)

    def add_secret(self, value, pinned=False):
        # Short values would mask innocent text; the bound keeps memory flat.
        if not value or len(value) < _MIN_SECRET_LEN or value in self._pinned:
            return
        if pinned:
            self.forget_secret(value)
            self._pinned.append(value)
            return
        if value in self._secrets:
            return
        if len(self._secrets) >= _MAX_SECRETS:
            self._secrets.pop(0)
        self._secrets.append(value)

    def forget_secret(self, value):
        if value in self._secrets:
            self._secrets.remove(value)

    def redact(self, text):
        for s in self._pinned:
            if s in text:
                text = text.replace(s, MASK)
        for s in self._secrets:
            if s in text:
                text = text.replace(s, MASK)
        return text

    def _emit(self, level, msg, args):
        if LEVELS.index(level) < self._min:
            return
        if args:
            try:
                msg = msg % args
            except (TypeError, ValueError):
                msg = msg + " " + repr(args)
        text = self.redact(msg)
        if len(text) > _MAX_LINE:
            text = text[:_MAX_LINE] + "..."
        self._write("[%s] %s" % (level, text))

    def debug(self, msg, *args):
        self._emit("debug", msg, args)

    def info(self, msg, *args):
        self._emit("info", msg, args)

    def warn(self, msg, *args):
        self._emit("warn", msg, args)

    def error(self, msg, *args):
        self._emit("error", msg, args)

    def say(self, text):
        # Unprefixed console text for people (the claim ticket); still redacted.
        self._write(self.redact(text))
