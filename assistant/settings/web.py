"""The web app: where it listens, the database, accounts and logins, the OpenAI-compatible API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class WebSettings(BaseModel):
    # --- web app -----------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address the web app listens on (0.0.0.0 inside a container).")
    port: int = Field(7860, ge=1, le=65535, description="Port of the web app.")
    example_questions: int = Field(6, ge=0, description="Example questions drawn from the corpus in the UI.")

    # --- saved conversations and accounts (issue 11) -------------------------------------------------
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the database holding accounts, conversations and feedback, e.g. "
        "postgresql+psycopg://user:pw@db/assistant for a shared deployment; unset = the SQLite file "
        "data_dir/assistant.db. The schema is upgraded to the current version at startup.",
    )
    auth: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Logins and API keys. `auto`: on when any account exists or the app listens on a "
        "non-loopback host; `on`: always; `off`: one local user, no login (only behind your own gate).",
    )
    session_ttl_hours: float = Field(
        168.0, gt=0, description="A browser login lasts this long, then asks for the password again."
    )
    login_free_failures: int = Field(
        5,
        ge=1,
        description="Failed logins for one account from one client (or from one browser that logged into "
        "it before) before each next attempt there is delayed.",
    )
    login_client_free_failures: int = Field(
        20,
        ge=1,
        description="Failed logins and API keys from one client address, whatever the account, before its "
        "attempts are delayed (one client trying many names).",
    )
    login_account_free_failures: int = Field(
        20,
        ge=1,
        description="Failed logins to one account from browsers that never logged into it before this many "
        "are delayed; a browser the account logged in from keeps its own count, so strangers cannot "
        "lock its owner out.",
    )
    login_global_free_failures: int = Field(
        200,
        ge=1,
        description="Failed logins across all accounts and clients (a distributed guess) before attempts "
        "from browsers no account logged in from are delayed; known browsers are never held by it.",
    )
    login_delay_s: float = Field(
        1.0,
        gt=0,
        description="First delay after the free failures; it doubles with each further failure "
        "(1, 2, 4, … s), up to login_max_delay_s. Attempts during a delay are refused unchecked.",
    )
    login_max_delay_s: float = Field(
        900.0, gt=0, description="Longest delay between login attempts for one throttled key."
    )
    login_failure_window_minutes: float = Field(
        15.0, gt=0, description="Failures older than this (counted from the last one) are forgotten."
    )
    api_max_body_kb: int = Field(
        1024, ge=1, description="Largest request body the OpenAI-compatible API accepts (413 beyond)."
    )

    # --- what a client may send, and from where ------------------------------------------------------
    message_max_kb: int = Field(
        256,
        ge=1,
        description="Largest chat message, in KB of UTF-8: typed or pasted in the UI (a pasted log included; "
        "attach a bigger log as a file), a question to /ask or /v1. Longer ones are refused with the limit.",
    )
    json_max_depth: int = Field(
        32,
        ge=2,
        le=1000,
        description="Deepest nesting of a JSON request body (/v1, /ask's history) or JSON training log; "
        "deeper is refused with a 400 or a clear message.",
    )
    max_new_tokens_limit: int = Field(
        1024,
        ge=1,
        description="Most new tokens a client may ask for in one answer (the UI's slider, /v1's max_tokens).",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Other web origins (`https://host:port`) whose pages may call this app with the user's "
        "cookies (CORS with credentials). Empty: same origin only; any other page's request that says "
        "where it comes from is refused.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (`10.0.0.5`, `10.0.0.0/8`) of reverse proxies whose "
        "X-Forwarded-For / -Proto / -Host headers are believed: the client address then comes from them "
        "(login throttles), and `https` makes the session cookie Secure. Empty: the headers are ignored.",
    )
    api_sources_footer: bool = Field(
        False,
        description='Append a Markdown "Sources" footer to API answers by default (for clients that show '
        "only text); a request's `sources_footer` overrides it. The sources are always in `sources`.",
    )

    # --- operations: health, metrics, request logs (issue 21) ----------------------------------------
    ready_cache_s: float = Field(
        2.0,
        ge=0,
        description="/readyz caches its checks (index, database, model) this many seconds, so a load "
        "balancer polling every second costs at most one database round trip per interval.",
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve /metrics (Prometheus) on this separate port, without a key, for a scraper on a "
        "private network; unset: /metrics is on the app's port and needs an admin's API key "
        "(Authorization: Bearer). Never open on the app's port.",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address the separate metrics port listens on (with metrics_port); 0.0.0.0 only on a "
        "network where every client may read the metrics.",
    )
    shutdown_grace_s: float = Field(
        10.0,
        ge=0,
        description="On SIGTERM (docker stop, a rolling update), seconds given to requests in flight before "
        "open connections (a browser tab's event stream) are closed and the process exits.",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Server log lines: `text` for a terminal, `json` for log collectors (one JSON object "
        "a line: time, level, logger, message, and for a request its id, method, route, status, ms). "
        "`assistant serve --log-format` overrides it.",
    )
    log_requests: bool = Field(
        True, description="One log line per HTTP request (its request id, method, route, status, time)."
    )
