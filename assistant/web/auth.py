"""Who is using the app: the database and accounts the web app is built with, the browser login
(a page of our own, sessions in the database so they expire and survive restarts), and the user
behind each Gradio handler call.

Cookies are HttpOnly and SameSite=Strict, and Secure whenever the request came over https (directly,
or through a proxy listed in `trusted_proxies`). Logging in and out are POSTs that the guard
(guard.py) only lets through from this server's own pages, so another site can neither sign a
visitor in as someone else nor log her out. A browser that logged in also gets a device cookie
(accounts.py): failed logins by strangers never lock its owner out of it.

Gradio is told who is logged in through `auth_dependency` (its hook for external logins): it maps a
request to a user name, or None, and then refuses every event, file and config route. Handlers never
trust the browser: each one resolves its user from that name server-side (`WebContext.user`).
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from assistant.store import (
    AccountError,
    Accounts,
    AuthError,
    ConversationStore,
    Database,
    Throttled,
    auth_enabled,
    cannot_start,
    open_database,
)
from assistant.store.accounts import is_loopback
from assistant.store.models import User
from assistant.web.guard import request_id
from assistant.web.metrics import Metrics
from assistant.web.sessions import Owners

COOKIE = "assistant_session"
DEVICE_COOKIE = "assistant_device"
DEVICE_DAYS = 365
log = logging.getLogger(__name__)


class NotAllowed(Exception):
    """The caller may not do this (not logged in, or not an admin): the message is safe to show."""


@dataclass
class WebContext:
    """The database and accounts, built once (`web_context`) and handed to every part of the app."""

    db: Database
    accounts: Accounts
    conversations: ConversationStore
    auth: bool  # logins and API keys required
    open_access: bool = False  # no login although the app listens beyond loopback (--no-auth)
    owners: Owners = field(default_factory=Owners)  # whose browser tab and files are whose (sessions.py)
    metrics: Metrics = field(default_factory=Metrics)  # what /metrics exports (metrics.py)
    _local: User | None = field(default=None, repr=False)

    def user(self, request: Any) -> User:
        """The user behind a handler call: the logged-in account, or the local user when logins are
        off. With logins on, a call that carries no known user is refused."""
        if not self.auth:
            if self._local is None:
                self._local = self.accounts.local_user()
            return self._local
        name = getattr(request, "username", None)
        if not name:
            raise NotAllowed("Log in first.")
        try:
            return self.accounts.get(name)
        except AccountError:
            raise NotAllowed("Your account no longer exists; log in again.") from None

    def admin(self, request: Any) -> User:
        user = self.user(request)
        if not user.is_admin:
            raise NotAllowed("Only an administrator may do this.")
        return user

    # --- the browser login -----------------------------------------------------------------------
    def session_user(self, request: Request) -> str | None:
        """Gradio's `auth_dependency`: the name of the session's user, or None."""
        token = request.cookies.get(COOKIE, "")
        if not token:
            return None
        try:
            return self.accounts.validate_session(token).name
        except AuthError:
            return None

    def login_router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/login", self.login_page, methods=["GET"], response_class=HTMLResponse)
        router.add_api_route("/login", self.login, methods=["POST"])
        router.add_api_route("/logout", self.logout, methods=["POST"])
        # not Gradio's GET /logout either: a GET is what an <img> on any page makes the browser send
        router.add_api_route("/logout", post_only, methods=["GET"])
        return router

    async def login_page(self, request: Request, next: str = "/") -> HTMLResponse:  # noqa: A002
        return HTMLResponse(login_html("", local_path(next)))

    def login(
        self,
        request: Request,
        username: str = Form(""),  # noqa: B008 (FastAPI's way of declaring form fields)
        password: str = Form(""),  # noqa: B008
        next: str = Form("/"),  # noqa: A002, B008
    ) -> Response:
        client = request.client.host if request.client else ""
        device = request.cookies.get(DEVICE_COOKIE, "")
        back = local_path(next)
        try:
            user = self.accounts.authenticate_password(
                username.strip(), password, client=client, device=device
            )
            token = self.accounts.create_session(user)
            device = (
                device if self.accounts.device_ok(device, user.name) else self.accounts.device_token(user)
            )
        except Throttled as exc:
            headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
            return HTMLResponse(login_html(str(exc), back), status_code=429, headers=headers)
        except AuthError as exc:
            return HTMLResponse(login_html(str(exc), back), status_code=401)
        except Exception:  # the database is down or full: said plainly, the details go to the log
            rid = request_id(request.scope)
            log.exception("request %s: login failed", rid)
            why = f"The server cannot log you in right now (request {rid}). Try again in a moment."
            return HTMLResponse(login_html(why, back), status_code=503)
        response = RedirectResponse(back, status_code=303)
        secure = request.url.scheme == "https"
        max_age = int(self.accounts.settings.session_ttl_hours * 3600)
        cookie = {"httponly": True, "samesite": "strict", "secure": secure, "path": "/"}
        response.set_cookie(COOKIE, token, max_age=max_age, **cookie)
        response.set_cookie(DEVICE_COOKIE, device, max_age=DEVICE_DAYS * 86400, **cookie)
        return response

    def logout(self, request: Request) -> Response:
        token = request.cookies.get(COOKIE, "")
        if token:
            self.accounts.end_session(token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def login_redirect(self, request: Request, call_next: Any) -> Response:
        """Middleware: the page itself sends a visitor who is not logged in to the login form (Gradio
        would answer 401); everything else is refused by Gradio or the API on its own."""
        if request.method == "GET" and request.url.path == "/" and self.session_user(request) is None:
            back = "/" + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(back, safe='')}", status_code=303)
        return await call_next(request)


def web_context(settings: Any, host: str, *, db: Database | None = None, no_auth: bool = False) -> WebContext:
    """Open the database (unless given) and decide whether logins are on; raises RuntimeError with
    `cannot_start`'s message when logins are required and nobody could log in."""
    db = db or open_database(settings)
    accounts = Accounts(db, settings)
    why = cannot_start(settings, host, accounts, no_auth)
    if why:
        raise RuntimeError(why)
    auth = auth_enabled(settings, host, accounts) and not no_auth
    return WebContext(
        db=db,
        accounts=accounts,
        conversations=ConversationStore(db),
        auth=auth,
        open_access=not auth and not is_loopback(host),
    )


async def post_only() -> Response:
    return Response("Log out with the page's button (a POST).", status_code=405, headers={"Allow": "POST"})


def local_path(target: str) -> str:
    """Where to go after logging in: a path on this server only (never `//elsewhere` or a URL)."""
    target = str(target or "/")
    if not target.startswith("/") or target.startswith("//") or "\\" in target or "\n" in target:
        return "/"
    return target


def login_html(error: str = "", back: str = "/") -> str:
    """The login form: self-contained (no external asset), the error and the return path escaped."""
    note = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    back_field = f'<input type="hidden" name="next" value="{html.escape(back, quote=True)}">'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Log in · Deep-learning training assistant</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f5f5f5; display: flex; justify-content: center;
  align-items: center; min-height: 100vh; margin: 0; }}
form {{ background: white; padding: 2em; border-radius: 8px; box-shadow: 0 1px 6px #0002; width: 20em; }}
label {{ display: block; margin-top: 1em; }} input {{ width: 100%; padding: .5em; box-sizing: border-box; }}
button {{ margin-top: 1.5em; width: 100%; padding: .6em; background: #f97316; color: white; border: 0;
  border-radius: 4px; font-size: 1em; cursor: pointer; }}
.error {{ color: #b91c1c; }}
</style></head><body>
<form method="post" action="/login">{back_field}
<h2>Deep-learning training assistant</h2>{note}
<label>Name <input id="username" name="username" autocomplete="username" required autofocus></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password"
required></label>
<button id="login" type="submit">Log in</button>
</form></body></html>"""


def logout_link(name: str) -> str:
    """Who is signed in, and a Log out button (a POST from this page: a link would be a GET that any
    other page could make the browser send)."""
    return (
        f'<form method="post" action="/logout" id="logout-form" style="text-align:right">'
        f"Signed in as <b>{html.escape(name)}</b> · "
        '<button type="submit" id="logout" style="text-decoration:underline;background:none;border:0;'
        'cursor:pointer;color:inherit;padding:0">Log out</button></form>'
    )
