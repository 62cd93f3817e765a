"""The service's HTTP front as an ASGI application (Starlette): routes, request limits,
and the translation between HTTP and the API's Request and Reply.

Paths: <base>/cloudprint/<interface> for the GCP interfaces (and the claim page),
<base>/oauth2/token for OAuth. GET (query string) and POST (urlencoded or multipart)
are both accepted everywhere. Every limit applies before the work it guards: an unknown
path is answered before its body is read, a body's declared size is checked before a byte
of it is read, a form's fields and parts are counted while it is parsed, and a body must
arrive within its deadline."""
import asyncio
import time
import urllib.parse

import anyio.to_thread
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from tools.printservice.api import Reply, Request

FORM_BODY_MAX = 1024 * 1024  # every form but a job's: capabilities are at most 256 KiB
JOB_BODY_MAX = 64 * 1024 * 1024  # a job submitted by an authenticated owner
FORM_FIELDS_MAX = 200  # fields (and parts) in one form
FORM_FILES_MAX = 4  # file parts in one multipart form
BODY_DEADLINE_S = 30  # for a whole form body ...
BODY_MIN_RATE = 64 * 1024  # ... plus a second per this many bytes of a large one
STREAM_CHUNK = 64 * 1024


class BodyError(Exception):
    """The request body broke a limit: answered with this status and message, and the
    connection ends (what is left of the body is never read)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def make_app(api):
    """The ASGI application serving one Api (one per listener: the URLs it hands out
    name the listener's scheme and port)."""

    async def gcp(request):
        interface = request.path_params["interface"].rstrip("/")
        return await _serve(api, request, interface)

    async def token(request):
        return await _serve(api, request, "token")

    async def banner(request):
        return _plain(200, "printservice: GCP 2.0 compatible print service\n")

    async def not_found(request, exc):
        return _plain(404, "not found", close=_has_body(request.headers))

    methods = ["GET", "POST"]
    routes = [Route("/", banner, methods=methods),
              Route("/oauth2/token", token, methods=methods),
              Route("/cloudprint/oauth2/token", token, methods=methods),
              Route("/cloudprint/{interface:path}", gcp, methods=methods)]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})


async def _serve(api, request, interface):
    headers = request.headers
    if not api.knows(interface):
        return _plain(404, "no such interface", close=_has_body(headers))
    principal = None
    if interface == "submit":  # only an owner may send a job's size: asked before the body is read
        principal = await anyio.to_thread.run_sync(api.principal, headers)
    limit = JOB_BODY_MAX if principal is not None and principal[0] == "user" else FORM_BODY_MAX
    form = None
    try:
        params, files, form = await _read_form(request, limit)
        query = urllib.parse.parse_qs(request.url.query, keep_blank_values=True,
                                      max_num_fields=FORM_FIELDS_MAX)
        for k, v in params.items():
            query.setdefault(k, []).extend(v)
        req = Request(request.method, interface, query, files, headers,
                      request.client.host if request.client else None, principal)
        reply = await anyio.to_thread.run_sync(api.handle, req)
    except BodyError as e:
        return _plain(e.status, str(e), close=True)
    except ClientDisconnect:
        return _plain(400, "client went away", close=True)
    except Exception as e:  # a bug in the service must not look like a network fault
        api.log("internal error in /%s: %s: %s" % (interface, type(e).__name__, e))
        reply = Reply(status=500, body=b"internal error", content_type="text/plain")
    finally:
        if form is not None:
            await form.close()  # the spooled file parts, once the API is done with them
    return _Send(reply, close=headers.get("connection", "").lower() == "close")


def _has_body(headers):
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


async def _read_form(request, limit):
    """(params, files, the multipart form to close or None) of a form body that may be at
    most limit bytes. files: name -> (binary file, content type), spooled to disk when large."""
    headers = request.headers
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit() or len(declared) > 12:
            raise BodyError(400, "bad Content-Length")
        if int(declared) > limit:
            raise BodyError(413, "body too large: at most %d bytes here" % limit)
    elif "transfer-encoding" not in headers:
        return {}, {}, None
    deadline = time.monotonic() + BODY_DEADLINE_S + (limit // BODY_MIN_RATE if limit > FORM_BODY_MAX else 0)
    ctype = headers.get("content-type", "")
    stream = _bounded(request.stream(), limit, deadline)
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


def _plain(status, text, close=False):
    reply = Reply(status=status, body=text.encode(), content_type="text/plain")
    return _Send(reply, close)


class _Send:
    """An ASGI response from a Reply: a body, or a stream of chunks each read in a worker
    thread (job files come from the database)."""

    def __init__(self, reply, close=False):
        self.reply = reply
        self.close = close or reply.close

    async def __call__(self, scope, receive, send):
        r = self.reply
        length = r.length if r.stream else len(r.body)
        headers = [(b"content-type", r.content_type.encode()), (b"content-length", b"%d" % length)]
        headers += [(k.lower().encode(), str(v).encode()) for k, v in r.headers]
        if self.close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": r.status, "headers": headers})
        if r.stream:
            chunks = r.stream()
            sent = 0
            try:
                while True:
                    chunk = await anyio.to_thread.run_sync(next, chunks, None)
                    if chunk is None:
                        break
                    sent += len(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            finally:
                await anyio.to_thread.run_sync(chunks.close)
            if sent == length:
                await send({"type": "http.response.body", "body": b""})
            # else the body stopped short: returning unfinished makes the server end the connection
        else:
            await send({"type": "http.response.body", "body": r.body})
