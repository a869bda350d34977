"""Gradio's per-tab state and files, tied to the user they belong to (with logins on).

Gradio keys a browser tab's state (its conversation, what Stop reaches, what an export writes) by a
*session hash* the page makes up and sends with every event, and it serves any file in its upload
folder to anyone logged in who names it. Both are capabilities a client presents, not checks of who
it is. This middleware makes them checks: the first logged-in user who uses a session hash owns it,
and any request presenting it for another user (or none) is refused; a file uploaded through
`/gradio_api/upload`, or registered by a handler (an export), is served to its owner only, and any
other file in the upload folder to nobody. State lives in this process, as Gradio's does.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.web.guard import ASGIApp, Message, Receive, Scope, Send, _replay, request_id, respond

API = "/gradio_api"
MAX_ENTRIES = 100_000
SESSION_BODY_MAX = 4 << 20  # JSON bodies read for their session hash (queue/join is capped lower)


class Owners:
    """session hash -> user, file path -> user; bounded (the oldest are forgotten first)."""

    def __init__(self) -> None:
        self._sessions: OrderedDict[str, str] = OrderedDict()
        self._files: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, session_hash: str, user: str) -> bool:
        """True when the session hash is `user`'s (now, or from before)."""
        with self._lock:
            owner = self._sessions.setdefault(session_hash, user)
            self._sessions.move_to_end(session_hash)
            while len(self._sessions) > MAX_ENTRIES:
                self._sessions.popitem(last=False)
            return owner == user

    def owner_of_session(self, session_hash: str) -> str | None:
        with self._lock:
            return self._sessions.get(session_hash)

    def own_file(self, path: str | Path, user: str) -> None:
        with self._lock:
            self._files[str(Path(path).resolve())] = user
            while len(self._files) > MAX_ENTRIES:
                self._files.popitem(last=False)

    def file_owner(self, path: str | Path) -> str | None:
        with self._lock:
            return self._files.get(str(Path(path).resolve()))


class _Users:
    """Who a request's session cookie belongs to, remembered for a few seconds (the page's event
    stream and heartbeats would otherwise ask the database several times a second)."""

    def __init__(self, lookup: Callable[[Any], str | None], ttl_s: float = 5.0) -> None:
        self.lookup, self.ttl_s = lookup, ttl_s
        self._cache: OrderedDict[str, tuple[str | None, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, request: Any, cookie: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(cookie)
            if hit is not None and hit[1] > now:
                return hit[0]
        user = self.lookup(request)
        with self._lock:
            self._cache[cookie] = (user, now + self.ttl_s)
            while len(self._cache) > 10_000:
                self._cache.popitem(last=False)
        return user


class SessionGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        owners: Owners,
        user_of: Callable[[Any], str | None],
        cookie: str,
        upload_folder: Callable[[], str],
    ) -> None:
        self.app = app
        self.owners = owners
        self.users = _Users(user_of)
        self.cookie = cookie
        self.upload_folder = upload_folder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(API + "/"):
            await self.app(scope, receive, send)
            return
        from starlette.requests import Request

        request = Request(scope)
        user = self.users(request, request.cookies.get(self.cookie, ""))
        rid = request_id(scope)
        sessions = [*request.query_params.getlist("session_hash"), *_path_sessions(path)]
        if scope["method"] == "POST" and "json" in request.headers.get("content-type", ""):
            body, receive = await _read(receive, SESSION_BODY_MAX)
            if body is None:
                await respond(send, 413, "the request body is too large", rid)
                return
            sessions += _body_sessions(body)
        for session_hash in sessions:
            if user is None:
                if self.owners.owner_of_session(session_hash) is not None:
                    await respond(send, 403, "this session belongs to someone else", rid)
                    return
            elif not self.owners.claim(session_hash, user):
                await respond(send, 403, "this session belongs to someone else", rid)
                return
        if (file := _file_path(path)) and not self._may_read(file, user):
            await respond(send, 404, "Not Found", rid)
            return
        if path.rstrip("/") == API + "/upload" and user is not None:
            send = self._registering_uploads(send, user)
        await self.app(scope, receive, send)

    def _may_read(self, file: str, user: str | None) -> bool:
        try:
            resolved = Path(file).resolve()
            root = Path(self.upload_folder()).resolve()
        except (OSError, RuntimeError, ValueError):
            return False
        if not resolved.is_relative_to(root):
            return True  # Gradio's own static files and allowed paths: its own checks apply
        return user is not None and self.owners.file_owner(resolved) == user

    def _registering_uploads(self, send: Send, user: str) -> Send:
        """Note the owner of each file an upload response names (the response is a JSON list)."""
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    try:
                        paths = json.loads(b"".join(chunks))
                    except ValueError:
                        paths = []
                    for p in paths if isinstance(paths, list) else []:
                        if isinstance(p, str):
                            self.owners.own_file(p, user)
            await send(message)

        return capture


def _path_sessions(path: str) -> list[str]:
    """Session hashes in a path: /gradio_api/heartbeat/<hash>, /gradio_api/stream/<hash>/…"""
    parts = path[len(API) + 1 :].split("/")
    if len(parts) >= 2 and parts[0] in ("heartbeat", "stream") and parts[1]:
        return [parts[1]]
    return []


def _body_sessions(body: bytes) -> list[str]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return []
    value = data.get("session_hash") if isinstance(data, dict) else None
    return [value] if isinstance(value, str) and value else []


def _file_path(path: str) -> str | None:
    """The file a Gradio file route names (/gradio_api/file=<path> or /gradio_api/file/<path>; the
    server has decoded the path already)."""
    rest = path[len(API) :]
    for prefix in ("/file=", "/file/"):
        if rest.startswith(prefix):
            return rest[len(prefix) :]
    return None


async def _read(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    body = bytearray()
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > limit:
            return None, receive
    return bytes(body), _replay(bytes(body), receive)
