"""Fetching a job's file from the app's own server (PrintNode's raw_uri and pdf_uri),
with HTTP Basic or Digest credentials, under timeouts and a size limit. A raw_uri file
is streamed to the printer as it arrives and never stored."""
import base64
import urllib.error
import urllib.parse
import urllib.request

CONNECT_TIMEOUT_S = 10  # also the longest wait for any read of the reply
CHUNK = 64 * 1024
SOURCE_MAX = 512 * 1024 * 1024  # bytes a fetched file may have
URI_MAX = 2048
AUTH_TYPES = ("BasicAuth", "DigestAuth")


class FetchFailed(Exception):
    """The app's server could not be reached or refused the file: a message without the
    credentials."""


def check_uri(uri):
    """None when the service can fetch uri, else why not."""
    if not isinstance(uri, str) or not 1 <= len(uri) <= URI_MAX:
        return "a URI has 1 to %d characters" % URI_MAX
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "the URI must be http:// or https:// with a host"
    if parts.username or parts.password:
        return "credentials go in authentication, not in the URI"
    return None


def check_auth(auth):
    """(auth as stored: {"type", "user", "pass"} or None, None) or (None, why not)."""
    if auth in (None, {}):
        return None, None
    if not isinstance(auth, dict) or auth.get("type") not in AUTH_TYPES:
        return None, "authentication.type is BasicAuth or DigestAuth"
    cred = auth.get("credentials")
    if not isinstance(cred, dict) or not all(isinstance(cred.get(k), str) and len(cred[k]) <= 1024
                                             for k in ("user", "pass")):
        return None, "authentication.credentials has a user and a pass (strings)"
    return {"type": auth["type"], "user": cred["user"], "pass": cred["pass"]}, None


def open_source(uri, auth=None, start=0):
    """(the file's length from start or None when the server does not say, an iterator of
    its chunks from byte start); FetchFailed when it cannot be had. The iterator raises
    FetchFailed if the file runs past SOURCE_MAX."""
    handlers = []
    if auth and auth["type"] == "DigestAuth":
        passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        passwords.add_password(None, uri, auth["user"], auth["pass"])
        handlers.append(urllib.request.HTTPDigestAuthHandler(passwords))
    opener = urllib.request.build_opener(*handlers)
    req = urllib.request.Request(uri, headers={"User-Agent": "printservice"})
    if auth and auth["type"] == "BasicAuth":
        pair = ("%s:%s" % (auth["user"], auth["pass"])).encode()
        req.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
    if start:
        req.add_header("Range", "bytes=%d-" % start)
    host = urllib.parse.urlsplit(uri).hostname
    try:
        resp = opener.open(req, timeout=CONNECT_TIMEOUT_S)
    except urllib.error.HTTPError as e:
        e.close()
        raise FetchFailed("%s answered %d %s" % (host, e.code, e.reason))
    except (OSError, ValueError) as e:
        raise FetchFailed("%s could not be reached: %s" % (host, getattr(e, "reason", e)))
    skip = start if start and resp.status != 206 else 0  # a server that ignores Range sends it all
    declared = resp.headers.get("Content-Length")
    length = int(declared) - skip if declared and declared.isdigit() else None
    if length is not None and length + start > SOURCE_MAX:
        resp.close()
        raise FetchFailed("%s has a file over %d bytes" % (host, SOURCE_MAX))
    return length, _chunks(resp, skip, start, host)


def read_all(uri, auth=None, most=SOURCE_MAX):
    """A whole file of at most `most` bytes, for a job drawn or kept at submit (FetchFailed)."""
    _, chunks = open_source(uri, auth)
    data = bytearray()
    try:
        for chunk in chunks:
            data += chunk
            if len(data) > most:
                raise FetchFailed("%s has a file over %d bytes" % (urllib.parse.urlsplit(uri).hostname, most))
    finally:
        chunks.close()
    return bytes(data)


def _chunks(resp, skip, start, host):
    got = start
    try:
        while True:
            try:
                data = resp.read(CHUNK)
            except OSError as e:
                raise FetchFailed("%s stopped sending: %s" % (host, e))
            if not data:
                return
            if skip:
                cut = min(skip, len(data))
                data, skip = data[cut:], skip - cut
                if not data:
                    continue
            got += len(data)
            if got > SOURCE_MAX:
                raise FetchFailed("%s has a file over %d bytes" % (host, SOURCE_MAX))
            yield data
    finally:
        resp.close()
