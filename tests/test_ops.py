"""/healthz, /readyz, /metrics and the request log, on a live server (uvicorn on a loopback port) over
the real index, the tiny model, accounts in a SQLite file, the guard and the request-log middleware
wrapped as the app wraps them; scraped and called with real HTTP clients."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time

import httpx
import pytest
from fastapi import FastAPI

from assistant.settings import Settings
from assistant.store import Accounts, open_database
from assistant.web.api import api_router
from assistant.web.guard import Guard
from assistant.web.metrics import Metrics
from assistant.web.ops import ops_router, serve_metrics
from assistant.web.requestlog import JsonFormatter, RequestLog, configure_logging

QUESTION = "How can I make my deep learning experiments reproducible?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(app: FastAPI) -> tuple[str, object, threading.Thread]:
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", srv, thread


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder, tiny_engine):
    from assistant.core import Assistant

    settings = Settings(data_dir=tmp_path_factory.mktemp("ops"), llm_max_new_tokens=16)
    assistant = Assistant(settings, embedder=embedder, llm=tiny_engine)
    assistant.ingest()
    db = open_database(settings)
    accounts = Accounts(db, settings)
    accounts.add("root", "pw", admin=True)
    accounts.add("bob", "pw")
    keys = {"root": accounts.new_api_key("root"), "bob": accounts.new_api_key("bob")}
    metrics = Metrics().watch(assistant, db)

    app = FastAPI()
    app.include_router(ops_router(assistant, db=db, accounts=accounts, auth=True, metrics=metrics))
    app.include_router(api_router(assistant, accounts, auth=True, metrics=metrics))
    # the same model, a database nobody can reach (the password must never show) and no index check
    unready = FastAPI()
    bad_db = open_database(url="postgresql+psycopg://ops:s3cret-pw@127.0.0.1:1/nowhere", migrate=False)
    idle = Assistant(settings, embedder=embedder, client=assistant.store.client)  # no model loaded
    unready.include_router(ops_router(idle, db=bad_db, auth=False))
    app.mount("/unready", unready)
    no_logins = FastAPI()  # `serve --no-auth` beyond loopback: /metrics stays closed on the app's port
    no_logins.include_router(ops_router(assistant, auth=False, open_access=True, metrics=metrics))
    app.mount("/open", no_logins)
    guarded = Guard(app)
    outer = RequestLog(guarded, metrics=metrics)

    log_text = io.StringIO()
    handler = logging.StreamHandler(log_text)
    handler.setFormatter(JsonFormatter())
    configure_logging("text")  # request lines at INFO
    logging.getLogger("assistant.requests").addHandler(handler)
    url, srv, thread = start(outer)
    yield {"url": url, "keys": keys, "log": log_text, "metrics": metrics, "assistant": assistant}
    logging.getLogger("assistant.requests").removeHandler(handler)
    srv.should_exit = True
    thread.join(timeout=30)
    db.dispose()


def scrape(server, key: str | None = "root") -> httpx.Response:
    headers = {"Authorization": f"Bearer {server['keys'][key]}"} if key else {}
    return httpx.get(server["url"] + "/metrics", headers=headers, timeout=60)


def sample(body: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text body (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_healthz_needs_nothing(server):
    r = httpx.get(server["url"] + "/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["x-request-id"]


def test_readyz_says_ready_with_each_check(server):
    r = httpx.get(server["url"] + "/readyz", timeout=60)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "checks": {"index": "ok", "database": "ok", "model": "ok"}}


def test_readyz_is_503_with_the_reason_and_no_secret(server):
    r = httpx.get(server["url"] + "/unready/readyz", timeout=60)
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["status"] == "not ready"
    assert body["checks"]["index"] == "ok"
    assert body["checks"]["model"] == "not loaded"
    assert body["checks"]["database"].startswith("failed: ")
    assert "s3cret" not in r.text and "127.0.0.1" not in r.text and "postgresql" not in r.text


def test_metrics_need_an_admin_key(server):
    assert scrape(server, None).status_code == 401
    assert scrape(server, "bob").status_code == 403
    bad = httpx.get(server["url"] + "/metrics", headers={"Authorization": "Bearer sk-nope"})
    assert bad.status_code == 401
    ok = scrape(server)
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
    assert httpx.get(server["url"] + "/open/metrics").status_code == 403


def test_an_answer_moves_the_counters(server):
    before = scrape(server).text
    r = httpx.post(
        server["url"] + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {server['keys']['bob']}"},
        json={"model": "dl-assistant", "messages": [{"role": "user", "content": QUESTION}]},
        timeout=300,
    )
    assert r.status_code == 200, r.text
    httpx.get(server["url"] + "/no/such/page-7f3e9a")
    after = scrape(server).text

    def moved(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    outcome = "abstained" if r.json()["abstained"] else "answered"
    assert moved("assistant_answers_total", channel="api", outcome=outcome) == 1
    if outcome == "answered":
        assert moved("assistant_answer_seconds_count", channel="api") == 1
        assert moved("assistant_answer_first_token_seconds_count", channel="api") == 1
    route = {"route": "/v1/chat/completions", "method": "POST", "status": "200"}
    assert moved("assistant_http_requests_total", **route) == 1
    assert moved("assistant_http_requests_total", route="unmatched", status="404") == 1
    assert "page-7f3e9a" not in after  # labels are route templates, never raw paths
    assert sample(after, "assistant_index_chunks") > 0
    assert sample(after, "assistant_index_files") > 0
    assert "assistant_active_sessions" in after and "assistant_llm_batch_occupancy" in after
    # the answer carries the request id of the server's log line for it
    assert r.json()["request_id"] == r.headers["x-request-id"]


def test_one_json_log_line_per_request_with_its_id(server):
    ok = httpx.get(server["url"] + "/healthz")
    refused = httpx.post(server["url"] + "/v1/chat/completions", headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403
    shown_id = refused.json()["error"]["request_id"]  # the id a user is shown with the error
    time.sleep(0.2)  # the line is written when the response has ended
    lines = [json.loads(line) for line in server["log"].getvalue().splitlines()]
    by_id = {line["request_id"]: line for line in lines}
    assert by_id[ok.headers["x-request-id"]]["route"] == "/healthz"
    assert by_id[ok.headers["x-request-id"]]["status"] == 200
    line = by_id[shown_id]
    assert shown_id == refused.headers["x-request-id"]
    assert line["status"] == 403 and line["method"] == "POST" and line["path"] == "/v1/chat/completions"
    assert line["level"] == "info" and line["logger"] == "assistant.requests" and "time" in line


def test_metrics_on_their_own_port_need_no_key(tmp_path, embedder):
    from assistant.core import Assistant

    port = free_port()
    settings = Settings(data_dir=tmp_path / "data", metrics_port=port)
    assistant = Assistant(settings, embedder=embedder)
    metrics = Metrics().watch(assistant)
    app = FastAPI()
    app.include_router(ops_router(assistant, auth=True, metrics=metrics))  # no /metrics on this port
    metrics.answer("ui", None)
    srv = serve_metrics(metrics, settings.metrics_host, port)
    try:
        url, app_srv, thread = start(app)
        assert httpx.get(url + "/metrics").status_code == 404
        app_srv.should_exit = True
        thread.join(timeout=30)
        r = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert r.status_code == 200
        assert sample(r.text, "assistant_answers_total", channel="ui", outcome="failed") == 1
    finally:
        srv.shutdown()


def test_serve_refuses_an_unknown_log_format(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from assistant.cli import app

    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["serve", "--log-format", "xml"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "text or json" in result.output, result.output


def test_json_lines_carry_extra_fields_and_exceptions():
    stream = io.StringIO()
    logger = logging.getLogger("assistant.test-json")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    try:
        logger.warning("plain %s", "words", extra={"request_id": "abc123", "status": 500})
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "plain words" and first["request_id"] == "abc123" and first["status"] == 500
    assert second["level"] == "error" and "RuntimeError: boom" in second["exception"]
