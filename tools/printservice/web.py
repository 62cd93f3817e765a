"""The service's HTTP front as an ASGI application (Starlette): routes, request limits,
and the translation between HTTP and the API's Request and Reply.

Paths: <base>/cloudprint/<interface> for the GCP interfaces, <base>/console/ for the web
console (console.py; the claim ticket's <base>/cloudprint/claim link leads there),
<base>/oauth2/token for OAuth, <base>/printnode/ for the PrintNode-compatible API
(printnode.py). GET (query string) and POST (urlencoded or multipart)
are both accepted everywhere. Every limit applies before the work it guards: an unknown
path is answered before its body is read, a body's declared size is checked before a byte
of it is read, a form's fields and parts are counted while it is parsed, and a body must
arrive within its deadline."""
import urllib.parse

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.responses import RedirectResponse
from starlette.routing import Route

from tools.printservice.api import BrokenStream, Reply, Request
from tools.printservice.forms import BodyError, FORM_BODY_MAX, FORM_FIELDS_MAX, JOB_BODY_MAX, read_form
from tools.printservice.printnode import PrintNode


def make_app(api, console=None, extra_routes=()):
    """The ASGI application serving one Api (one per listener: the URLs it hands out
    name the listener's scheme and port), the web console, and extra_routes (the broker's
    questions, broker_auth.py)."""

    async def gcp(request):
        interface = request.path_params["interface"].rstrip("/")
        return await _serve(api, request, interface)

    async def token(request):
        return await _serve(api, request, "token")

    async def banner(request):  # also the cheap probe of monitoring and tests
        return _plain(200, "printservice: GCP 2.0 compatible print service; web console at /console/\n")

    async def claim_link(request):  # what a claim ticket's QR code and link open
        query = urllib.parse.urlencode({"token": request.query_params.get("token", "")})
        return RedirectResponse("/console/claim?" + query, 303)

    async def not_found(request, exc):
        return _plain(404, "not found", close=_has_body(request.headers))

    methods = ["GET", "POST"]
    routes = [Route("/", banner, methods=methods),
              Route("/oauth2/token", token, methods=methods),
              Route("/cloudprint/oauth2/token", token, methods=methods),
              Route("/cloudprint/claim", claim_link, methods=["GET"]),
              Route("/cloudprint/{interface:path}", gcp, methods=methods)]
    routes = list(extra_routes) + PrintNode(api).routes() + routes
    if console is not None:
        routes = console.routes() + routes
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
        params, files, form = await read_form(request, limit)
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
        headers = [(b"content-type", r.content_type.encode())]
        if length is not None:  # else uvicorn sends the body chunked
            headers.append((b"content-length", b"%d" % length))
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
            except BrokenStream:
                return  # unfinished: the server ends the connection, so the body is seen short
            finally:
                await anyio.to_thread.run_sync(chunks.close)
            if length is None or sent == length:
                await send({"type": "http.response.body", "body": b""})
            # else the body stopped short: returning unfinished makes the server end the connection
        else:
            await send({"type": "http.response.body", "body": r.body})
