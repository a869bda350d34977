"""The web app: a chat tab (with the user's saved conversations) and a documents tab, served offline
by Gradio (analytics and SSR off), mounted on one FastAPI app with the OpenAI-compatible API and the
login pages, all on one port."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import gradio as gr
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from gradio.utils import get_upload_folder

from assistant.settings import Settings
from assistant.web.api import api_router
from assistant.web.auth import COOKIE, WebContext, web_context
from assistant.web.chat_tab import ChatTab
from assistant.web.document_route import documents_router
from assistant.web.documents_tab import DocumentsTab, clean_staging
from assistant.web.errors import guard_handlers
from assistant.web.guard import Guard
from assistant.web.mcp_endpoint import PATH, McpEndpoint
from assistant.web.ops import ops_router, serve_metrics
from assistant.web.render import CSS
from assistant.web.requestlog import RequestLog
from assistant.web.sessions import SessionGuard

log = logging.getLogger(__name__)

OPEN_ACCESS_BANNER = (
    '<div id="open-access" style="background:#b91c1c;color:white;padding:8px 12px;border-radius:6px;'
    'font-weight:600">⚠️ No login (started with --no-auth): anyone who can reach this server has '
    "full access, including removing documents.</div>"
)


class WebApp:
    """The Gradio UI and what it is built with; `launch` serves it with the API on one port."""

    def __init__(self, assistant: Any, web: WebContext) -> None:
        self.assistant = assistant
        self.web = web
        self.server: Any = None
        self._thread: threading.Thread | None = None
        self.demo = self._build()

    def _build(self) -> gr.Blocks:
        web = self.web
        with gr.Blocks(title="Deep-learning training assistant") as demo:
            if web.open_access:
                gr.HTML(OPEN_ACCESS_BANNER)
            with gr.Row():
                gr.Markdown(
                    "## Deep-learning training assistant\n"
                    "Answers from the indexed Q&A documents, every claim cited. Runs offline."
                )
                who = gr.HTML(elem_id="who")
            chat = ChatTab(self.assistant, web)
            documents = DocumentsTab(self.assistant, web)
            side = chat.panel.build()
            with gr.Tab("Chat"):
                chat.build(demo, side)
            # Hidden until the page's load event says the visitor is an admin (shown, not hidden,
            # on load: Gradio hides a tab at build time but not through an update).
            with gr.Tab("Documents", elem_id="documents-tab", visible=False) as docs_tab:
                documents.build(demo)
            # Per visitor: who is signed in, and the documents tab only for admins (the handlers
            # check the role again: hiding a tab protects nothing).
            demo.load(chat.whoami, None, [who, docs_tab], api_visibility="private")
        guard_handlers(demo)  # unexpected errors: a plain message with the request id, details logged
        return demo

    def fastapi(self) -> FastAPI:
        """One FastAPI app: /v1 (the API), /mcp (MCP), /login and /logout (with logins on), Gradio at /; every
        request passes the guard (origin, body caps, headers) and, for Gradio's routes, the check
        that a tab's session and files are the caller's."""
        web, settings = self.web, self.assistant.settings
        self.demo.queue(default_concurrency_limit=16)
        # MCP over streamable HTTP, with the /v1 keys; its session manager lives as long as the app
        mcp = McpEndpoint(self.assistant, web.accounts, auth=web.auth)
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=mcp.lifespan)
        metrics = web.metrics.watch(self.assistant, web.db)
        app.include_router(
            ops_router(  # /healthz, /readyz, /metrics (web/ops.py)
                self.assistant,
                db=web.db,
                accounts=web.accounts,
                auth=web.auth,
                open_access=web.open_access,
                metrics=metrics,
            )
        )
        app.include_router(api_router(self.assistant, web.accounts, auth=web.auth, metrics=metrics))
        app.include_router(documents_router(self.assistant, web))  # a source's whole document
        app.add_route(PATH, mcp)  # before Gradio's "/" mount, which would take every path
        if web.auth:
            app.include_router(web.login_router())
            app.middleware("http")(web.login_redirect)
        mounted = gr.mount_gradio_app(
            app,
            self.demo,
            "/",
            server_name=settings.host,
            server_port=settings.port,
            footer_links=["api"],
            auth_dependency=web.session_user if web.auth else None,
            ssr_mode=False,
            show_error=False,  # a handler's own gr.Error is shown; anything else is logged (errors.py)
            css=CSS,
            # uploads (a document, a training log) larger than either limit are refused while they
            # arrive, before they fill the disk; the handlers then apply the limit that is theirs
            max_file_size=int(max(settings.max_file_mb, settings.run_max_mb) * 2**20),
        )
        # Gradio checks that a file a request names was uploaded (not any path on the server) only in
        # an app started by launch(); a mounted one copies whatever readable file a client names into
        # its cache and hands it to the handler. Marked launched, the check runs for every event
        # (tests/test_ui_runs.py sends /etc/passwd and the database as an attacker would).
        self.demo.has_launched = True
        if web.auth:
            mounted.add_middleware(
                SessionGuard,
                owners=web.owners,
                user_of=web.session_user,
                cookie=COOKIE,
                upload_folder=get_upload_folder,
            )
        # Only the configured origins get CORS headers (and Gradio's own policy, which reflects any
        # origin with credentials, stands down when the parent app configures CORS).
        mounted.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
        # A message travels JSON-escaped (up to 6 bytes a character): room for the largest one
        message_cap = 6 * settings.message_max_kb * 1024 + 256 * 1024
        caps = [(f"/gradio_api/{route}", message_cap) for route in ("queue/join", "call/", "run/", "api/")]
        mounted.add_middleware(Guard, allowed_origins=settings.allowed_origins, body_caps=caps)
        # outermost: one log line per request (refusals included) with its id, and its count in /metrics
        mounted.add_middleware(RequestLog, metrics=metrics, log_requests=settings.log_requests)
        return mounted

    def launch(self, host: str, port: int, *, block: bool = True) -> WebApp:
        import uvicorn

        settings = self.assistant.settings
        trusted = settings.trusted_proxies
        config = uvicorn.Config(
            self.fastapi(),
            host=host,
            port=port,
            log_level="warning",
            ws_max_size=16 * 1024 * 1024,
            # X-Forwarded-For/-Proto are believed from the configured proxies only (uvicorn's default
            # believes them from 127.0.0.1, i.e. from anyone on the machine)
            proxy_headers=bool(trusted),
            forwarded_allow_ips=trusted or None,
            log_config=None,  # our handlers (text or JSON lines, cli/common.py), not uvicorn's own
            # SIGTERM: an open tab keeps an event stream open, which uvicorn would wait on forever
            timeout_graceful_shutdown=settings.shutdown_grace_s,
        )
        self.server = uvicorn.Server(config)
        if block:
            self.server.run()
            return self
        self._thread = threading.Thread(target=self.server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the web app could not start on {host}:{port} (port in use?)")
            time.sleep(0.01)
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.demo.close(verbose=False)


def build_app(assistant: Any, web: WebContext | None = None) -> WebApp:
    """The app over `web` (the database and accounts); without one, the database from settings with
    logins as settings and the configured host say."""
    if web is None:
        web = web_context(assistant.settings, assistant.settings.host)
    return WebApp(assistant, web)


def launch(app: WebApp, host: str, port: int, *, block: bool = True) -> WebApp:
    return app.launch(host, port, block=block)


def serve(settings: Settings, *, block: bool = True, no_auth: bool = False) -> tuple[Any, WebApp]:
    """Check that someone can log in, index what changed, load and warm the model (so the first
    answer is not slow), then serve."""
    from assistant.core import Assistant

    web = web_context(settings, settings.host, no_auth=no_auth)  # refuses before the slow part
    if web.open_access:
        log.warning(
            "no login (--no-auth): anyone who can reach %s:%s has full access", settings.host, settings.port
        )
    assistant = Assistant(settings)
    clean_staging(settings.uploads_dir)
    report = assistant.ingest()  # the corpus, and uploads a crash left unindexed
    web.metrics.ingest(report)
    log.warning("index: %s", report.summary())
    engine = assistant.llm
    engine.warmup()
    log.warning("model ready: %s on %s", engine.name, engine.device)
    app = build_app(assistant, web)
    if settings.metrics_port:
        serve_metrics(web.metrics.watch(assistant, web.db), settings.metrics_host, settings.metrics_port)
    launch(app, settings.host, settings.port, block=block)
    return assistant, app
