"""What an operator and a load balancer ask of the server: `GET /healthz` (the process answers),
`GET /readyz` (it can serve: index open, database reachable, model loaded or the remote model
answering) and `GET /metrics` (Prometheus text, see metrics.py).

/healthz and /readyz need no login and say nothing secret: a status, and for /readyz each check's
verdict and, when one fails, a reason without URLs, paths or credentials. /readyz runs its checks at
most once per `ready_cache_s` (a balancer polling every second costs one database round trip per
interval), off the event loop. /metrics needs an admin's API key (the /v1 keys), or lives on a port
of its own (`metrics_port`, see `serve_metrics`): it is never open on the app's port.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from assistant.web.guard import request_id
from assistant.web.metrics import Metrics

log = logging.getLogger(__name__)


def _why(exc: BaseException) -> str:
    """A failed check's reason for a public body: the kind of failure, never its message (a database
    URL, a host name or a file path can be in it); the message goes to the log."""
    return type(exc).__name__


class Readiness:
    """The /readyz checks, cached for `cache_s` seconds."""

    def __init__(self, assistant: Any, db: Any, cache_s: float) -> None:
        self.assistant, self.db, self.cache_s = assistant, db, cache_s
        self._lock = threading.Lock()
        self._at = -float("inf")
        self._result: tuple[bool, dict[str, str]] = (False, {})

    def check(self) -> tuple[bool, dict[str, str]]:
        with self._lock:  # concurrent probes wait for one run of the checks
            if time.monotonic() - self._at >= self.cache_s:
                self._result = self._run()
                self._at = time.monotonic()
            return self._result

    def _run(self) -> tuple[bool, dict[str, str]]:
        checks = {"index": self._index, "database": self._database, "model": self._model}
        out: dict[str, str] = {}
        for name, fn in checks.items():
            try:
                out[name] = fn()
            except Exception as exc:  # noqa: BLE001 - a failed check is the answer, not an error
                log.warning("readiness: %s check failed: %s", name, exc)
                out[name] = f"failed: {_why(exc)}"
        return all(v == "ok" for v in out.values()), out

    def _index(self) -> str:
        store = self.assistant.store
        if why := store.mismatch():
            log.warning("readiness: index mismatch: %s", why)
            return "failed: the index was built with other settings (assistant ingest --rebuild)"
        store.count()  # the collection answers
        return "ok"

    def _database(self) -> str:
        if self.db is None:
            return "ok"  # an app without accounts (tests, a bare API)
        from sqlalchemy import text

        with self.db.session() as s:
            s.execute(text("SELECT 1"))
        return "ok"

    def _model(self) -> str:
        llm = self.assistant.loaded_llm()
        if self.assistant.settings.llm_url:
            engine = llm or self.assistant.llm  # a remote engine loads nothing: building it is cheap
            engine.client.models.list()  # the model server answers
            return "ok"
        if llm is None:
            return "not loaded"
        if getattr(llm, "closed", False):
            return "unloaded"
        batcher = getattr(llm, "batcher", None)
        if batcher is not None and batcher.dead:
            return "failed: the generation loop stopped"
        return "ok"


class Ops:
    """The router with /healthz, /readyz and (unless on its own port) /metrics."""

    def __init__(
        self,
        assistant: Any,
        *,
        db: Any = None,
        accounts: Any = None,
        auth: bool = True,
        open_access: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        settings = assistant.settings
        self.assistant, self.accounts, self.auth = assistant, accounts, auth
        self.open_access = open_access  # --no-auth off loopback: everything else is open, not metrics
        self.metrics = metrics
        self.readiness = Readiness(assistant, db, settings.ready_cache_s)
        self.metrics_here = metrics is not None and settings.metrics_port is None
        if self.metrics_here and auth and accounts is None:
            raise ValueError("/metrics on the app's port needs the accounts to check admin keys")

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/healthz", self.healthz, methods=["GET", "HEAD"], include_in_schema=False)
        router.add_api_route("/readyz", self.readyz, methods=["GET", "HEAD"], include_in_schema=False)
        if self.metrics_here:
            router.add_api_route("/metrics", self.scrape, methods=["GET"], include_in_schema=False)
        return router

    async def healthz(self) -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def readyz(self) -> JSONResponse:
        ready, checks = await run_in_threadpool(self.readiness.check)
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})

    async def scrape(self, request: Request) -> Response:
        assert self.metrics is not None
        if why := await self._refused(request):
            status, message = why
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            body = {"error": {"message": message, "request_id": request_id(request.scope)}}
            return JSONResponse(body, status_code=status, headers=headers)
        body, content_type = await run_in_threadpool(self.metrics.render)
        return Response(body, media_type=content_type)

    async def _refused(self, request: Request) -> tuple[int, str] | None:
        """(status, reason) unless the request carries an admin's API key. With logins off on loopback
        (one local user) there are no keys: the metrics are the local user's, like the rest; with
        logins off beyond loopback (--no-auth) they are refused here."""
        if not self.auth:
            if self.open_access:
                return 403, "without logins, /metrics is served only on metrics_port"
            return None
        from assistant.store import AuthError, Throttled

        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return 401, "an admin's API key is required (Authorization: Bearer KEY)"
        client = request.client.host if request.client else ""
        try:
            user = await run_in_threadpool(self.accounts.authenticate_key, key.strip(), client)
        except Throttled:
            return 429, "too many failed API keys from this client; try again later"
        except AuthError:
            return 401, "invalid API key"
        if not user.is_admin:
            return 403, "the metrics are for admins"
        return None


def ops_router(
    assistant: Any,
    *,
    db: Any = None,
    accounts: Any = None,
    auth: bool = True,
    open_access: bool = False,
    metrics: Metrics | None = None,
) -> APIRouter:
    """/healthz, /readyz, and /metrics behind an admin key unless `metrics_port` moves it."""
    ops = Ops(assistant, db=db, accounts=accounts, auth=auth, open_access=open_access, metrics=metrics)
    return ops.router()


def serve_metrics(metrics: Metrics, host: str, port: int) -> Any:
    """/metrics alone, without a key, on `metrics_host:metrics_port` (a private scrape network), in a
    daemon thread; returns the server (`.shutdown()` stops it)."""
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from prometheus_client import make_wsgi_app

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's signature
            pass

    class Threaded(WSGIServer):
        daemon_threads = True

    server = make_server(host, port, make_wsgi_app(metrics.registry), Threaded, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    log.warning("metrics on http://%s:%s/metrics", host, port)
    return server
