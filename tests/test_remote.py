"""The remote engine against a real OpenAI-compatible server: `transformers serve` on loopback with the
tiny test model, through the real `openai` client. Error statuses the tiny server cannot produce
(401, 404, 500) come from a minimal loopback HTTP server that answers only that status."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from assistant.llm.remote import RemoteEngine, RemoteLLMError
from assistant.settings import PROJECT_DIR, Settings

SERVE_START_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(model_dir: Path) -> tuple[subprocess.Popen, str]:
    exe = Path(sys.executable).parent / "transformers"
    if not exe.exists():
        pytest.skip("the `transformers` command is not installed next to this Python")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    proc = subprocess.Popen(
        [str(exe), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + SERVE_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"transformers serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("transformers serve did not answer /health in time")


def stop_serve(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def served(tiny_model_dir: Path) -> Iterator[str]:
    proc, url = start_serve(tiny_model_dir)
    try:
        yield url
    finally:
        stop_serve(proc)


def remote_settings(tmp_path: Path, url: str, model: str, **kw) -> Settings:
    return Settings(data_dir=tmp_path / "data", llm_url=url, llm_remote_model=model, **kw)


def test_streams_an_answer_with_the_models_own_token_counts(served, tiny_model_dir, tmp_path):
    engine = RemoteEngine(remote_settings(tmp_path, served, str(tiny_model_dir)))
    assert engine.token_counting == "the model's tokenizer"  # the model folder is on disk
    gen = engine.stream([{"role": "user", "content": "my loss plateaus"}], max_new_tokens=12, temperature=0.0)
    chunks = list(gen)
    assert len(chunks) >= 2 and "".join(chunks) == gen.text and gen.text.strip()
    assert gen.stats.new_tokens == len(chunks) and gen.stats.first_token_ms > 0
    # greedy is reproducible across requests
    assert engine.generate([{"role": "user", "content": "my loss plateaus"}], max_new_tokens=12) == gen.text


def test_estimate_when_the_tokenizer_is_not_on_disk(served, tmp_path):
    engine = RemoteEngine(remote_settings(tmp_path, served, "some-org/not-on-this-disk"))
    assert engine.tokenizer is None and "estimate" in engine.token_counting
    text = "Gradient clipping keeps exploding gradients in check. " * 4
    assert engine.count_tokens(text) >= len(text.split())  # never below one token a word
    assert engine.context_window == 4096


def test_stop_closes_the_stream_within_a_chunk(served, tiny_model_dir, tmp_path):
    engine = RemoteEngine(remote_settings(tmp_path, served, str(tiny_model_dir)))
    stop = threading.Event()
    gen = engine.stream(
        [{"role": "user", "content": "why does my loss spike"}], max_new_tokens=400, stop=stop
    )
    seen = 0
    for _ in gen:
        seen += 1
        if seen == 3:
            stop.set()
    assert seen == 3 and gen.stats.cancelled
    # the server keeps serving after a closed stream
    assert engine.generate([{"role": "user", "content": "hi"}], max_new_tokens=3)


def test_unreachable_server_is_a_clear_error(tmp_path):
    engine = RemoteEngine(
        remote_settings(tmp_path, f"http://127.0.0.1:{free_port()}/v1", "m", llm_remote_timeout=3)
    )
    with pytest.raises(RemoteLLMError, match="cannot be reached"):
        engine.generate([{"role": "user", "content": "hi"}])


def test_server_killed_mid_answer_is_a_clear_error(tiny_model_dir, tmp_path):
    proc, url = start_serve(tiny_model_dir)
    try:
        engine = RemoteEngine(remote_settings(tmp_path, url, str(tiny_model_dir)))
        gen = engine.stream([{"role": "user", "content": "explain overfitting"}], max_new_tokens=1000)
        with pytest.raises(RemoteLLMError, match="stopped answering|cannot be reached|failed"):
            for i, _ in enumerate(gen):
                if i == 2:
                    os.killpg(proc.pid, signal.SIGKILL)
        assert gen.text  # what arrived before the crash is kept
    finally:
        stop_serve(proc)


class _Status(BaseHTTPRequestHandler):
    status = 500
    body: dict = {}

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("content-length") or 0))
        payload = json.dumps(self.body or {"error": {"message": "boom"}}).encode()
        self.send_response(self.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (401, "Invalid API key", "refused the API key"),
        (404, "The model `x` does not exist", "has no model 'x'"),
        (400, "This model's maximum context length is 4096 tokens", "too long"),
        (500, "internal error", r"failed \(500\)"),
        (503, "overloaded", r"failed \(503\)"),
    ],
)
def test_http_errors_become_clear_messages(status, message, expected, tmp_path):
    handler = type("H", (_Status,), {"status": status, "body": {"error": {"message": message}}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        engine = RemoteEngine(remote_settings(tmp_path, url, "x", llm_api_key="secret-key"))
        with pytest.raises(RemoteLLMError, match=expected) as info:
            engine.generate([{"role": "user", "content": "hi"}])
        assert "secret-key" not in str(info.value) and "still running" in str(info.value)
    finally:
        server.shutdown()


def test_a_conversation_with_a_follow_up_through_the_chain_and_the_web_api(
    served, tiny_model_dir, tmp_path, embedder
):
    """The whole turn (rewrite, retrieval, answer, citations) with the remote engine, then /ask."""
    from gradio_client import Client

    from assistant.core import Assistant
    from assistant.web.app import build_app, launch

    s = Settings(
        data_dir=tmp_path / "data",
        corpus_paths=[PROJECT_DIR / "corpus"],
        llm_url=served,
        llm_remote_model=str(tiny_model_dir),
        llm_max_new_tokens=24,
        rewrite_follow_ups="always",
    )
    a = Assistant(s, embedder=embedder)
    a.ingest()
    assert a.llm.describe()["device"] == "remote"
    first = a.ask("How can I stop my model from overfitting?")
    assert first.sources and not first.abstained and first.timings["new_tokens"] > 0
    history = [
        {"role": "user", "content": "How can I stop my model from overfitting?"},
        {"role": "assistant", "content": first.answer},
    ]
    follow = a.ask("which of those is easiest?", history=history)
    # the rewrite ran on the remote model (the tiny model's rewrite is gibberish, so the turn may abstain)
    assert follow.rewritten and follow.standalone_question and follow.timings["rewrite_ms"] > 0
    assert follow.sources or follow.abstained
    stop = threading.Event()
    stop.set()  # pressed before the answer started: nothing is generated, the turn still ends cleanly
    stopped = a.ask("How do I choose a learning rate?", stop=stop)
    assert "Stopped." in stopped.notices

    demo = build_app(a)
    port = free_port()
    launch(demo, "127.0.0.1", port, block=False)
    try:
        client = Client(f"http://127.0.0.1:{port}", verbose=False)
        outs = list(
            client.submit("How can I ensure the reproducibility of my project?", "[]", api_name="/ask")
        )
        final = json.loads(outs[-1])
        assert not final["abstained"] and final["sources"]
    finally:
        demo.close()
