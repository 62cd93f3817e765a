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
        self.write_bytes(name, json.dumps(obj).encode())

    def write_bytes(self, name, data):
        final = self.path(name)
        tmp = final + ".tmp"
        if self._make_private is not None and name in SECRET_FILES:
            open(tmp, "wb").close()  # private while still empty, before the secret goes in
            self._make_private(tmp)
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, final)

    def remove(self, name):
        try:
            os.remove(self.path(name))
        except OSError:
            pass
