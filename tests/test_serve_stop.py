"""`assistant serve` stops on SIGTERM (docker stop, a rolling update) while a browser tab holds an
event stream open: uvicorn used to wait on that stream forever, so the stop ended in SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from assistant.settings import PROJECT_DIR
from tests.test_api import free_port

CORPUS = PROJECT_DIR / "corpus"


@pytest.mark.slow
def test_sigterm_with_an_open_event_stream_exits_cleanly(tiny_model_dir, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        ASSISTANT_DATA_DIR=str(tmp_path / "data"),
        ASSISTANT_CORPUS_PATHS=json.dumps([str(CORPUS)]),
        ASSISTANT_LLM_MODEL=str(tiny_model_dir),
        ASSISTANT_LLM_DTYPE="float32",
        ASSISTANT_PORT=str(port),
        ASSISTANT_SHUTDOWN_GRACE_S="2",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve", "--no-auth"],
        env=env,
        cwd=PROJECT_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=5) as client:
            for _ in range(600):  # the model loads and the corpus is indexed first
                try:
                    if client.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.5)
            else:
                pytest.fail("the app never answered /healthz")
            # what an open tab holds: Gradio's heartbeat event stream, which never ends by itself
            # (a long read timeout: heartbeats are 15 s apart, and a busy machine may shut down slowly)
            url = f"{base}/gradio_api/heartbeat/tab-one"
            with client.stream("GET", url, timeout=httpx.Timeout(5, read=120)) as stream:
                assert stream.status_code == 200
                assert "text/event-stream" in stream.headers["content-type"]
                proc.send_signal(signal.SIGTERM)
                # the stream is closed by the server, not by us
                for _ in stream.iter_bytes():
                    pass
        # generous: the grace is 2 s; before, the process was still running after 90 s
        code = proc.wait(timeout=120)
        # uvicorn re-raises the signal it caught once it has shut down: "terminated by SIGTERM" (143 in
        # a shell, what `docker stop` expects), never SIGKILL after a hang, nor a crash
        assert code in (0, -signal.SIGTERM), proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
