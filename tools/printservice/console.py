"""The web console under /console: sign-up (by invitation, or open where the operator
allows it), log-in and log-out; an account's printers, each with its capabilities, local
settings and delete; its jobs with a picture of each label or receipt, cancel and upload;
claiming a printer from its ticket's QR code; API keys and invitations.

Pages are rendered on the server (Jinja2, autoescaped). The printers and jobs pages
refresh their live part every few seconds (static/console.js asks for ?part=live).
Every POST needs the session's CSRF token (the log-in and sign-up forms, which come
before a session, a same-origin request instead), every page is no-store, and the pages allow only their own scripts and styles.
Database work and password hashing run in worker threads, never on the event loop."""
import collections
import json
import os
import secrets
import threading
import time
import urllib.parse

import anyio.to_thread
import jinja2
from starlette.requests import ClientDisconnect
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tools import preview
from tools.printservice import forms, raster, status
from tools.printservice.accounts import AccountError
from tools.printservice.api import EXPIRE_DEFAULT_S, IDEMPOTENCY_KEY_MAX, content_types
from tools.printservice.forms import BodyError, FORM_BODY_MAX, JOB_BODY_MAX
from tools.printservice.logins import LoginError
from tools.printservice.store import now_ms
from tools.printservice.webhooks import WebhookError

HERE = os.path.dirname(os.path.abspath(__file__))
# what the print form offers for "not printed after" (seconds, words); 14 days is the default
EXPIRIES = ((3600, "an hour"), (8 * 3600, "8 hours"), (86400, "a day"), (7 * 86400, "a week"),
            (EXPIRE_DEFAULT_S, "14 days"), (90 * 86400, "90 days"))
COOKIE = "ps_session"
JOBS_SHOWN = 100
PREVIEW_BYTES_MAX = 2 * 1024 * 1024  # a job's first bytes drawn; enough for a few labels with graphics
PREVIEW_PAGES = 4
PREVIEWS_KEPT = 200  # pictures kept drawn, about 40 KB each
LANGUAGES = {"application/x-zpl": "zpl", "application/x-escpos": "escpos"}
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # a claim code in a URL goes nowhere else (no-referrer would
    # make browsers send "Origin: null" with every form)
    "X-Frame-Options": "DENY",
}

_templates = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
                                autoescape=True, undefined=jinja2.StrictUndefined)


def _when(ms):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else ""


_templates.filters["when"] = _when


class Ctx:
    """One request as a page function sees it."""

    def __init__(self, request, params, files, session):
        self.request = request
        self.params = params
        self.files = files
        self.email, self.csrf = session or (None, None)

    @property
    def client(self):
        """The client's address, for rate limits."""
        return self.request.client.host if self.request.client else "?"

    def value(self, name, default=""):
        v = self.params.get(name) or self.request.query_params.getlist(name)
        return v[-1] if v else default


class Console:
    def __init__(self, api, logins, open_signup=False):
        self.api = api
        self.store = api.store
        self.logins = logins
        self.open_signup = open_signup
        self._previews = collections.OrderedDict()  # job id -> PNG, the newest last
        self._previews_lock = threading.Lock()

    def routes(self):
        page = self._page
        return [
            Route("/console", lambda r: RedirectResponse("/console/", 303)),
            Route("/console/", page(self.printers), methods=["GET"]),
            Route("/console/login", page(self.login, login=False), methods=["GET", "POST"]),
            Route("/console/signup", page(self.signup, login=False), methods=["GET", "POST"]),
            Route("/console/logout", page(self.logout), methods=["POST"]),
            Route("/console/claim", page(self.claim), methods=["GET", "POST"]),
            Route("/console/printers/{id}", page(self.printer), methods=["GET", "POST"]),
            Route("/console/jobs", page(self.jobs), methods=["GET"]),
            Route("/console/jobs/{id}/cancel", page(self.cancel), methods=["POST"]),
            Route("/console/jobs/{id}/preview.png", page(self.preview), methods=["GET"]),
            Route("/console/print", page(self.print_file, upload=True), methods=["GET", "POST"]),
            Route("/console/account", page(self.account), methods=["GET", "POST"]),
            Route("/console/webhooks", page(self.webhooks), methods=["GET", "POST"]),
            Route("/console/webhooks/{id}", page(self.webhook), methods=["GET"]),
            Mount("/console/static", StaticFiles(directory=os.path.join(HERE, "static")), name="static"),
        ]

    # ---- the frame every page runs in
    def _page(self, fn, login=True, upload=False):
        async def endpoint(request):
            cookie = request.cookies.get(COOKIE)
            session = await anyio.to_thread.run_sync(self.logins.session, cookie) if cookie else None
            if login and session is None:
                if request.method == "GET":
                    here = request.url.path + ("?" + request.url.query if request.url.query else "")
                    return _redirect("/console/login?" + urllib.parse.urlencode({"next": here}))
                return _error(403, "Your session has ended: log in again.", close=True)  # body unread
            params, files, form = {}, {}, None
            try:
                if request.method == "POST":
                    # the log-in and sign-up forms come before any session: their origin is checked
                    if not login and not _same_origin(request):
                        return _error(403, "This form must be sent from this site.", close=True)
                    limit = JOB_BODY_MAX if upload and session else FORM_BODY_MAX
                    params, files, form = await forms.read_form(request, limit)
                    if login and not self.logins.csrf_ok(session[1], (params.get("csrf") or [""])[-1]):
                        return _error(403, "This form has expired: reload the page and try again.")
                return await anyio.to_thread.run_sync(fn, Ctx(request, params, files, session))
            except BodyError as e:
                return _error(e.status, str(e), close=True)
            except ClientDisconnect:
                return _error(400, "client went away", close=True)
            except Exception as e:  # a bug or a database away: said once in the log, not to the browser
                self.api.log("internal error in %s: %s: %s" % (request.url.path, type(e).__name__, e))
                return _error(500, "Something went wrong here; try again in a moment.")
            finally:
                if form is not None:
                    await form.close()
        return endpoint

    def _render(self, ctx, template, status_code=200, live=None, **values):
        """The page, or with ?part=live only its live part (the template live)."""
        if live and ctx.value("part") == "live":
            template = live
        html = _templates.get_template(template).render(email=ctx.email, csrf=ctx.csrf, **values)
        return HTMLResponse(html, status_code, headers=HEADERS)

    def _start_session(self, email, next_url):
        cookie, _ = self.logins.start(email)
        r = _redirect(_safe_next(next_url))
        r.set_cookie(COOKIE, cookie, max_age=14 * 24 * 3600, httponly=True, samesite="lax",
                     secure=self.api.base.startswith("https:"), path="/")
        return r

    # ---- logging in and out
    def login(self, ctx):
        message = ""
        if ctx.request.method == "POST":
            try:
                email = self.logins.log_in(ctx.value("email"), ctx.value("password"), ctx.client)
                return self._start_session(email, ctx.value("next"))
            except LoginError as e:
                message = str(e)
        return self._render(ctx, "login.html", 200 if not message else 401, message=message,
                            next=ctx.value("next"), open_signup=self.open_signup, login_email=ctx.value("email"))

    def signup(self, ctx):
        token = ctx.value("invite")
        invited = self.logins.invitation(token) if token else None
        message = ""
        if token and invited is None:
            message = "This invitation is used or has expired; ask for a new one."
        elif not token and not self.open_signup:
            message = "Sign-up here is by invitation: ask the person who runs this service for a link."
        elif ctx.request.method == "POST":
            password = ctx.value("password")
            try:
                if password != ctx.value("password2"):
                    raise LoginError("The two passwords differ.")
                email = (self.logins.accept(token, password) if token
                         else self.logins.sign_up(ctx.value("email"), password, ctx.client))
                self.api.log("account %s signed up" % email)
                return self._start_session(email, ctx.value("next"))
            except (LoginError, AccountError) as e:
                message = str(e)
        closed = bool(message) and ctx.request.method == "GET"
        return self._render(ctx, "signup.html", 200 if not message else 400, message=message, closed=closed,
                            invite=token, invited=invited, next=ctx.value("next"),
                            signup_email=invited or ctx.value("email"))

    def logout(self, ctx):
        self.logins.end(ctx.request.cookies.get(COOKIE))
        r = _redirect("/console/login")
        r.delete_cookie(COOKIE, path="/")
        return r

    # ---- printers
    def _own_printers(self, ctx):
        return self.store.all("printers", order=("created_ms",), owner=ctx.email, deleted=0)

    def _owned_printer(self, ctx, printer_id):
        p = self.store.printer(printer_id)
        return p if p is not None and p["owner"] == ctx.email else None

    def _printer_view(self, p, last, now):
        up, how = status.online(p, now)
        state, reasons = status.printer_state(p["semantic_state"])
        view = {"id": p["id"], "name": p["default_display_name"] or p["name"], "online": up, "how": how,
                "state": state, "reasons": reasons, "firmware": p["firmware"] or "",
                "contact_ms": p["accessed_ms"], "last_job": None}
        if last is not None:
            view["last_job"] = dict(self._job_view(last, {p["id"]: p}), when=last["update_ms"])
        return view

    def printers(self, ctx):
        rows = self._own_printers(ctx)
        last = self.store.last_jobs([p["id"] for p in rows]) if rows else {}
        now = now_ms()
        views = [self._printer_view(p, last.get(p["id"]), now) for p in rows]
        return self._render(ctx, "printers.html", live="printers_live.html", printers=views)

    def printer(self, ctx):
        p = self._owned_printer(ctx, ctx.request.path_params["id"])
        if p is None:
            return _error(404, "No such printer in your account.")
        message, bad = "", False
        if ctx.request.method == "POST":
            if ctx.value("action") == "delete":
                self.api.delete_printer(p["id"])
                return _redirect("/console/")
            try:
                keepalive = int(ctx.value("keepalive"))
                if not 10 <= keepalive <= 1200:
                    raise ValueError
            except ValueError:
                message, bad = "The push keepalive is a whole number of seconds, 10 to 1200.", True
            else:
                self.api.set_pending_settings(p, {"xmpp_timeout_value": keepalive})
                message = "Sent to the printer: it confirms on its next contact."
                p = self.store.printer(p["id"])
        last = self.store.last_jobs([p["id"]]).get(p["id"])
        settings = json.loads(p["local_settings"])
        caps = json.loads(p["capabilities"]).get("printer", {})
        return self._render(ctx, "printer.html", 400 if bad else 200, live="printer_live.html",
                            p=self._printer_view(p, last, now_ms()), message=message,
                            current=settings.get("current", {}), pending=settings.get("pending"),
                            capabilities=json.dumps(caps, indent=2, sort_keys=True),
                            types=content_types(p), model=p["model"] or "", maker=p["manufacturer"] or "")

    # ---- jobs
    def _job_view(self, j, printers):
        state, cause = status.job_state(j["state"])
        p = printers.get(j["printer_id"])
        return {"id": j["id"], "title": j["title"], "state": state, "cause": cause,
                "printer": (p["default_display_name"] or p["name"]) if p else j["printer_id"],
                "printer_id": j["printer_id"], "pages": j["pages_printed"], "copies": status.copies(j["ticket"]),
                "created": j["create_ms"], "updated": j["update_ms"], "size": j["size"],
                "previewable": j["content_type"] in LANGUAGES or j["content_type"] == "application/vnd.cups-raw"}

    def jobs(self, ctx):
        rows = self.store.jobs_visible_to(ctx.email, newest=JOBS_SHOWN)
        ids = {j["printer_id"] for j in rows}
        printers = {i: self.store.printer(i, include_deleted=True) for i in ids}
        return self._render(ctx, "jobs.html", live="jobs_live.html", jobs=[self._job_view(j, printers) for j in rows])

    def _visible_job(self, ctx, job_id):
        job = self.store.get("jobs", id=job_id)
        if job is None:
            return None, None
        p = self.store.printer(job["printer_id"], include_deleted=True)
        if job["owner"] != ctx.email and (p is None or p["owner"] != ctx.email):
            return None, None
        return job, p

    def cancel(self, ctx):
        job, _ = self._visible_job(ctx, ctx.request.path_params["id"])
        if job is None:
            return _error(404, "No such job in your account.")
        if not self.api.cancel(job["id"]):
            return _error(409, "This job has started or finished: it can no longer be cancelled.")
        return _redirect("/console/jobs")

    def preview(self, ctx):
        job, printer = self._visible_job(ctx, ctx.request.path_params["id"])
        if job is None:
            return _error(404, "No such job in your account.")
        language = LANGUAGES.get(job["content_type"])
        if language is None and printer is not None:  # raw: the printer's own language
            language = next((LANGUAGES[t] for t in content_types(printer) if t in LANGUAGES), None)
        if language is None:
            return _error(415, "No preview for %s." % job["content_type"])
        png = self._sheet(job["id"], language)
        if png is None:
            return _error(422, "Nothing in this job draws as a label or receipt.")
        return Response(png, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})

    def _sheet(self, job_id, language):
        """The job's picture, drawn once: a job's bytes never change, and a jobs page shows
        up to JOBS_SHOWN of them."""
        with self._previews_lock:
            if job_id in self._previews:
                self._previews.move_to_end(job_id)
                return self._previews[job_id]
        data = bytearray()
        chunks = self.store.job_chunks(job_id)
        for chunk in chunks:
            data += chunk
            if len(data) >= PREVIEW_BYTES_MAX:
                break
        chunks.close()
        png = preview.sheet(bytes(data[:PREVIEW_BYTES_MAX]), language, PREVIEW_PAGES)
        with self._previews_lock:
            self._previews[job_id] = png
            while len(self._previews) > PREVIEWS_KEPT:
                self._previews.popitem(last=False)
        return png

    def print_file(self, ctx):
        printers = self._own_printers(ctx)
        message = ""
        if ctx.request.method == "POST":
            p = self._owned_printer(ctx, ctx.value("printer"))
            upload = ctx.files.get("file")
            if p is None:
                message = "Choose one of your printers."
            elif upload is None:
                message = "Choose a file to print."
            else:
                try:
                    copies = int(ctx.value("copies") or 1)
                    if not 1 <= copies <= 999:
                        raise ValueError
                    expire = int(ctx.value("expire") or EXPIRE_DEFAULT_S)
                    if expire not in dict(EXPIRIES):
                        raise ValueError
                except ValueError:
                    message = "Copies are 1 to 999, and the expiry one of the choices."
                else:
                    types = content_types(p)
                    upload[0].seek(0)
                    drawn = raster.sniff(upload[0].read(16))  # a PDF or picture is drawn for the printer
                    ctype = drawn or next((t for t in types if t in LANGUAGES), types[0])
                    ticket = {"version": "1.0", "print": {"copies": {"copies": copies}}}
                    title = ctx.value("title") or "upload"
                    # the form's own key: a second click or a resubmitted page prints nothing twice
                    key = ctx.value("idempotency")[:IDEMPOTENCY_KEY_MAX - 8] or None
                    try:
                        content, stored = self.api.printable(p, upload[0], ctype)
                    except raster.CannotDraw as e:
                        message = str(e)
                    else:
                        self.api.submit(ctx.email, p, content, stored, title, ticket, expire,
                                        idempotency_key=key and "console:" + key, source="console",
                                        submitted_as=ctype)
                        return _redirect("/console/jobs")
        return self._render(ctx, "print.html", 200 if not message else 400, message=message,
                            printers=[{"id": p["id"], "name": p["default_display_name"] or p["name"]}
                                      for p in printers], chosen=ctx.value("printer"),
                            expiries=EXPIRIES, expire_default=EXPIRE_DEFAULT_S,
                            idempotency=secrets.token_urlsafe(16))

    # ---- claiming
    def claim(self, ctx):
        code = ctx.value("token")
        message = ""
        if ctx.request.method == "POST":
            printer_id, message = self.api.claim(code, ctx.email)
            if printer_id is not None:
                return _redirect("/console/printers/" + printer_id)
        printer = self.api.unclaimed_printer(code, ctx.email) if code and not message else None
        if code and printer is None and not message:
            message = "This claim code is unknown, used or expired: the printer prints a new one when it expires."
        return self._render(ctx, "claim.html", 200 if not message else 400, code=code, message=message,
                            printer=printer and {"name": printer["default_display_name"] or printer["name"],
                                                 "model": printer["model"] or ""})

    # ---- account: keys, invitations, password
    def account(self, ctx):
        message, new_key, invite_url = "", None, None
        if ctx.request.method == "POST":
            action = ctx.value("action")
            try:
                if action == "new-key":
                    _, new_key = self.api.accounts.create_key(ctx.email, ctx.value("name"))
                elif action == "revoke-key":
                    self.api.accounts.revoke_key(ctx.email, ctx.value("key"))
                    message = "Key revoked."
                elif action == "invite":
                    token = self.logins.invite(ctx.email, ctx.value("invitee"))
                    invite_url = "%s/console/signup?invite=%s" % (self.api.base.rsplit("/cloudprint", 1)[0], token)
                elif action == "password":
                    if ctx.value("new") != ctx.value("new2"):
                        raise LoginError("The two passwords differ.")
                    self.logins.log_in(ctx.email, ctx.value("old"), ctx.client)
                    self.logins.set_password(ctx.email, ctx.value("new"))
                    return self._start_session(ctx.email, "/console/account")
            except (AccountError, LoginError) as e:
                message = str(e)
        return self._render(ctx, "account.html", message=message, new_key=new_key, invite_url=invite_url,
                            keys=self.api.accounts.keys(ctx.email))

    # ---- webhooks
    def webhooks(self, ctx):
        message, added, code = "", None, 200
        hooks = self.api.webhooks
        if ctx.request.method == "POST":
            try:
                if ctx.value("action") == "add":
                    webhook_id, secret = hooks.add(ctx.email, (ctx.value("url") or "").strip())
                    added = {"id": webhook_id, "secret": secret}
                elif ctx.value("action") == "delete":
                    hooks.remove(ctx.email, ctx.value("webhook"))
                    message = "Webhook deleted."
            except WebhookError as e:
                message, code = str(e), 400
        return self._render(ctx, "webhooks.html", code, message=message, added=added, webhooks=hooks.list(ctx.email))

    def webhook(self, ctx):
        webhook_id = ctx.request.path_params["id"]
        try:
            deliveries = self.api.webhooks.deliveries(ctx.email, webhook_id)
        except WebhookError as e:
            return _error(404, str(e))
        hook = next((w for w in self.api.webhooks.list(ctx.email) if w["id"] == webhook_id), None)  # None: deleted
        return self._render(ctx, "webhook.html", webhook=hook, webhook_id=webhook_id, deliveries=deliveries)


def _same_origin(request):
    origin = request.headers.get("origin")
    if origin is None:  # browsers send it on POST; a client that sends none is no browser's forged form
        return True
    host = request.headers.get("host", "")
    return urllib.parse.urlsplit(origin).netloc == host


def _safe_next(url):
    """Only a path on this site: an open redirect would send a fresh session elsewhere."""
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return "/console/"


def _redirect(url):
    return RedirectResponse(url, 303, headers={"Cache-Control": "no-store"})


def _error(code, message, close=False):
    html = _templates.get_template("error.html").render(message=message, code=code)
    headers = dict(HEADERS, **({"Connection": "close"} if close else {}))
    return HTMLResponse(html, code, headers=headers)
