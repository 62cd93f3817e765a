# Flash persistence: small JSON files written atomically (temp file, then rename,
# which littlefs and POSIX both make all-or-nothing).
import json
import os


# Files that hold secrets (tokens, client secret, Wi-Fi password, the proxy id)
SECRET_FILES = ("credentials.json", "settings.json", "identity.json")


class CorruptFile(Exception):
    pass


class Flash:
    def __init__(self, root, make_private=None):
        self.root = root.rstrip("/")
        # make_private(path): a host makes a new file readable by its owner only; on the
        # ESP32 flash encryption protects the flash instead (README, "Secrets")
        self._make_private = make_private

    def path(self, name):
        return self.root + "/" + name

    def exists(self, name):
        try:
            os.stat(self.path(name))
            return True
        except OSError:
            return False

    def read_bytes(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def read_json(self, name):
        """The parsed object, None when the file is absent; CorruptFile when unreadable."""
        try:
            f = open(self.path(name), "rb")
        except OSError:
            return None
        try:
            data = f.read()
        finally:
            f.close()
        try:
            obj = json.loads(data)
        except (ValueError, MemoryError, RuntimeError):  # not JSON, or nested past the heap
            raise CorruptFile("%s is not valid JSON" % name)
        if not isinstance(obj, dict):
            raise CorruptFile("%s does not hold a JSON object" % name)
        return obj

    def write_json(self, name, obj):
        with self._begin(name, "w") as f:  # streamed: no block holds the whole text
            json.dump(obj, f)
        self._commit(name)

    def write_bytes(self, name, data):
        with self._begin(name, "wb") as f:
            f.write(data)
        self._commit(name)

    def _begin(self, name, mode):
        """The temporary file that _commit puts in place; private before anything is in it
        when it holds secrets."""
        tmp = self.path(name) + ".tmp"
        if self._make_private is not None and name in SECRET_FILES:
            open(tmp, "wb").close()
            self._make_private(tmp)
        return open(tmp, mode)

    def _commit(self, name):
        final = self.path(name)
        os.rename(final + ".tmp", final)

    def remove(self, name):
        try:
            os.remove(self.path(name))
        except OSError:
            pass
