"""What every HTTP request goes through first (pure ASGI middleware, outermost): a request id, the
same-origin rule, a cap on the bodies of the routes that carry a chat message, security headers, and
routes that must not answer at all.

The same-origin rule is what stops another site (another port of the same host included: browsers
count it as the *same site*, so SameSite cookies do not stop it) from reading a user's conversations
or acting as her: a request whose `Origin` is neither this server's own origin nor one of
`allowed_origins` is refused with 403 before any route sees it, and so is a request the browser marks
as coming from another site (`Sec-Fetch-Site`) unless it is a plain navigation to a page (a link to
the app from elsewhere still opens it). Clients that are not browsers send neither header and are
judged by their credentials alone. CORS headers are only ever added for `allowed_origins`
(Starlette's CORSMiddleware, which also makes Gradio's own, reflect-any-origin, policy stand down).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID = "x-request-id"
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'self'; form-action 'self'; base-uri 'self'; object-src 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),  # no image or request leaves for another host
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"SAMEORIGIN"),
]
# FastAPI's own schema and docs pages of the mounted Gradio app: nothing of ours, and they answer
# without a login
HIDDEN = {"/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"}


def request_id(scope: Scope) -> str:
    """The id the guard gave this request (in logs, error messages and the X-Request-Id header)."""
    return str(scope.get("state", {}).get("request_id") or "-")


def origin_of(scheme: str, host: str) -> str:
    """`scheme://host[:port]`, the default port left out (as browsers write an Origin)."""
    host = host.lower()
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    if default and host.endswith(default):
        host = host[: -len(default)]
    return f"{scheme}://{host}"


def _normal(origin: str) -> str:
    parts = urlsplit(origin.strip())
    return origin_of(parts.scheme.lower(), parts.netloc) if parts.scheme and parts.netloc else origin.strip()


async def respond(send: Send, status: int, message: str, rid: str, json_body: bool = True) -> None:
    body = (
        json.dumps({"error": {"message": message, "type": "forbidden", "request_id": rid}})
        if json_body
        else message
    ).encode()
    headers = [
        (b"content-type", b"application/json" if json_body else b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (REQUEST_ID.encode(), rid.encode()),
        *SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_origins: Iterable[str] = (),
        body_caps: Iterable[tuple[str, int]] = (),
    ) -> None:
        """`body_caps`: (path prefix, most bytes a request body under it may have): 413 beyond,
        before the route reads any of it."""
        self.app = app
        self.allowed = {_normal(o) for o in allowed_origins}
        self.body_caps = list(body_caps)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = secrets.token_hex(6)
        scope.setdefault("state", {})["request_id"] = rid
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k != REQUEST_ID.encode()]
        scope["headers"].append((REQUEST_ID.encode(), rid.encode()))
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        path, method = scope["path"], scope["method"]
        if path.rstrip("/") in HIDDEN or path in HIDDEN:
            await respond(send, 404, "Not Found", rid)
            return
        if why := self.refused(scope, headers):
            await respond(send, 403, why, rid)
            return
        cap = next((limit for prefix, limit in self.body_caps if path.startswith(prefix)), None)
        if cap is not None and method in ("POST", "PUT", "PATCH"):
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                await respond(send, 413, f"the request body is over {cap} bytes", rid)
                return
            body = bytearray()
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > cap:
                    await respond(send, 413, f"the request body is over {cap} bytes", rid)
                    return
            receive = _replay(bytes(body), receive)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message["headers"] = [
                    *message.get("headers", []),
                    *extra,
                    (REQUEST_ID.encode(), rid.encode()),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)

    def refused(self, scope: Scope, headers: dict[str, str]) -> str | None:
        """Why a request from another origin is refused, or None."""
        own = origin_of(scope.get("scheme", "http"), headers.get("host", ""))
        origin = headers.get("origin")
        if origin is not None:
            if origin == "null" or (_normal(origin) != own and _normal(origin) not in self.allowed):
                return "cross-origin request refused: this server answers its own pages only"
            return None
        site = headers.get("sec-fetch-site", "")
        if site in ("cross-site", "same-site"):
            navigation = scope["method"] in ("GET", "HEAD") and headers.get("sec-fetch-mode") == "navigate"
            if not navigation:
                return "cross-site request refused: this server answers its own pages only"
        return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read already, then the connection's own messages (a disconnect, when it comes)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
