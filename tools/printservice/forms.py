"""Request bodies read under limits: a form (urlencoded or multipart) is judged by its
declared size before a byte of it is read, its fields and parts are counted while it is
parsed, it must arrive within its deadline, and file parts stay spooled (never read whole)."""
import asyncio
import time
import urllib.parse

from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser

FORM_BODY_MAX = 1024 * 1024  # every form but a job's: capabilities are at most 256 KiB
JOB_BODY_MAX = 64 * 1024 * 1024  # a job submitted by an authenticated owner
FORM_FIELDS_MAX = 200  # fields (and parts) in one form
FORM_FILES_MAX = 4  # file parts in one multipart form
BODY_DEADLINE_S = 30  # for a whole form body ...
BODY_MIN_RATE = 64 * 1024  # ... plus a second per this many bytes of a large one


class BodyError(Exception):
    """The request body broke a limit: answered with this status and message, and the
    connection ends (what is left of the body is never read)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _deadline(limit):
    return time.monotonic() + BODY_DEADLINE_S + (limit // BODY_MIN_RATE if limit > FORM_BODY_MAX else 0)


def _check_declared(headers, limit):
    """Whether a body comes (a Content-Length or chunked); BodyError when it declares too much."""
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit() or len(declared) > 12:
            raise BodyError(400, "bad Content-Length")
        if int(declared) > limit:
            raise BodyError(413, "body too large: at most %d bytes here" % limit)
    return declared is not None or "transfer-encoding" in headers


async def read_body(request, limit):
    """The whole body as bytes, under the same limits as a form (for a JSON body)."""
    if not _check_declared(request.headers, limit):
        return b""
    body = bytearray()
    async for chunk in _bounded(request.stream(), limit, _deadline(limit)):
        body += chunk
    return bytes(body)


async def read_form(request, limit):
    """(params, files, the multipart form to close or None) of a form body that may be at
    most limit bytes. files: name -> (binary file, content type), spooled to disk when large."""
    headers = request.headers
    if not _check_declared(headers, limit):
        return {}, {}, None
    ctype = headers.get("content-type", "")
    stream = _bounded(request.stream(), limit, _deadline(limit))
    if ctype.startswith("multipart/form-data"):
        return await _multipart(headers, stream)
    body = bytearray()
    async for chunk in stream:
        body += chunk
    if not body:
        return {}, {}, None
    try:
        return urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True,
                                     max_num_fields=FORM_FIELDS_MAX, strict_parsing=False), {}, None
    except UnicodeDecodeError:
        raise BodyError(400, "malformed body: not UTF-8")
    except ValueError:
        raise BodyError(413, "too many form fields: at most %d" % FORM_FIELDS_MAX)


async def _bounded(stream, limit, deadline):
    """The body's chunks, ending it with a BodyError past limit bytes or the deadline."""
    got = 0
    it = stream.__aiter__()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BodyError(408, "body not received in time")
        try:
            chunk = await asyncio.wait_for(it.__anext__(), left)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise BodyError(408, "body not received in time")
        got += len(chunk)
        if got > limit:
            raise BodyError(413, "body too large: at most %d bytes here" % limit)
        if chunk:
            yield chunk


async def _multipart(headers, stream):
    parser = MultiPartParser(Headers(raw=headers.raw), stream, max_files=FORM_FILES_MAX,
                             max_fields=FORM_FIELDS_MAX, max_part_size=FORM_BODY_MAX)
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise BodyError(400, "malformed multipart body: %s" % e)
    params, files = {}, {}
    for name, value in form.multi_items():
        if isinstance(value, str):
            params.setdefault(name, []).append(value)
        else:  # a part with a file name: kept as Starlette spooled it, never read whole here
            files[name] = (value.file, value.content_type or "application/octet-stream")
    return params, files, form
