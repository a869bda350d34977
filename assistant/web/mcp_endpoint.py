"""The MCP server over streamable HTTP at `/mcp` on the web app's own port.

With logins on, every request needs `Authorization: Bearer <API key>`: the same keys, the same
throttle and the same 401/429 answers as `/v1` (web/api.py checks it); the key's role decides what
the caller may do (mcp/server.py: a non-admin does not get `list_documents`). With logins off (a
loopback app with no account) the caller is the local user, and the Host and Origin headers must be
loopback ones, so a web page reached through DNS rebinding cannot drive the tools.

The app's guard (web/guard.py) still applies: a browser page of another origin is refused; clients
that are not browsers send no Origin and are judged by their key alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request

from assistant.mcp.server import ADMIN_STATE, build_server
from assistant.store.accounts import is_loopback
from assistant.web.api import ApiError, ChatAPI

PATH = "/mcp"
LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


class McpEndpoint:
    """An ASGI app: checks the caller, then hands the request to the MCP session manager. Its
    `lifespan` must run for as long as the app serves (the manager's task group)."""

    def __init__(self, assistant: Any, accounts: Any = None, *, auth: bool = False) -> None:
        settings = assistant.settings
        security = None
        if not auth and is_loopback(settings.host):
            security = TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=LOOPBACK_HOSTS,
                allowed_origins=[*LOOPBACK_ORIGINS, *settings.allowed_origins],
            )
        self.server = build_server(assistant, local=False, transport_security=security)
        self.server.streamable_http_app()  # creates the session manager
        self.keys = ChatAPI(assistant, accounts, auth=auth)

    @asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        async with self.server.session_manager.run():
            yield

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            try:
                user = await self.keys.user(Request(scope))
            except ApiError as exc:
                await exc.response()(scope, receive, send)
                return
            scope.setdefault("state", {})[ADMIN_STATE] = user is None or bool(user.is_admin)
        await self.server.session_manager.handle_request(scope, receive, send)
