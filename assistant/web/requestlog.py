"""One log line per HTTP request, and the request counts of /metrics, from one pure-ASGI middleware
that wraps the whole app (outside the guard, so refused requests are counted too).

The line carries the request id the guard gave the request (guard.py): the same id is in the
response's X-Request-Id header, in every error a user is shown ("… (request 3f2a…)") and in /v1's
answers (`request_id`), so a user's report leads to the server's line. With `log_format = "json"`
(`assistant serve --log-format json`) every server log line is one JSON object for log collectors.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime, timezone
from typing import Any

from assistant.web.guard import REQUEST_ID, ASGIApp, Message, Receive, Scope, Send, request_id

log = logging.getLogger("assistant.requests")

# attributes every LogRecord has; anything else on a record came through `extra=` and is logged too
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def route_of(scope: Scope) -> str:
    """A bounded label for the request: the matched route's template (Starlette and FastAPI leave the
    innermost matched route in the scope), `unmatched` otherwise. Never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str) or getattr(route, "routes", None) is not None:  # a Mount: no leaf matched
        return "unmatched"
    return (scope.get("root_path") or "").rstrip("/") + path  # a mount's prefix, then its route


class RequestLog:
    """Logs each request (id, method, path, route, status, ms, client) when it ends, and counts it in
    `metrics` (web/metrics.py) by route template."""

    def __init__(self, app: ASGIApp, *, metrics: Any = None, log_requests: bool = True) -> None:
        self.app, self.metrics, self.log_requests = app, metrics, log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status, rid = 500, ""

        async def observe(message: Message) -> None:
            nonlocal status, rid
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for k, v in message.get("headers", []):
                    if k.lower() == REQUEST_ID.encode():
                        rid = v.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            seconds = time.perf_counter() - start
            route, method = route_of(scope), scope.get("method", "")
            if self.metrics is not None:
                self.metrics.request(route, method, status, seconds)
            if self.log_requests:
                rid = rid or request_id(scope)
                client = (scope.get("client") or ("", 0))[0]
                log.info(
                    "%s %s %s %s %.1f ms",
                    rid,
                    method,
                    scope.get("path", ""),
                    status,
                    seconds * 1000,
                    extra={
                        "request_id": rid,
                        "method": method,
                        "path": scope.get("path", ""),  # never the query string: it may carry a secret
                        "route": route,
                        "status": status,
                        "ms": round(seconds * 1000, 1),
                        "client": client,
                    },
                )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the record's `extra`
    fields (a request's id, method, route, status, ms) and, for an exception, its traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(log_format: str = "text", *, requests: bool = True, stream: Any = None) -> None:
    """The server's logging: request lines at INFO (the rest stays at the CLI's level); with `json`,
    every handler of the root logger is replaced by one writing JSON lines to `stream` (stderr)."""
    if requests:
        log.setLevel(logging.INFO)
    if log_format != "json":
        return
    root = logging.getLogger()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # uvicorn's own loggers write through their handlers, not the root's: send them here too
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
