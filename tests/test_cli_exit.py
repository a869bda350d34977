"""`assistant ask` and `assistant diagnose` as a script or CI job runs them: a real process with the
real (tiny) model, which exits 0 after a successful answer; the model's threads are stopped by the
command, not left to interpreter shutdown (which aborted with exit status 134)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.cli import common as cli_common
from assistant.measure.runs_eval import RUNS_DIR
from assistant.settings import PROJECT_DIR

CORPUS = PROJECT_DIR / "corpus"
QUESTION = "My training loss becomes NaN after a few hundred steps. How do I fix it?"


@pytest.fixture(scope="module")
def cli_env(tiny_model_dir, tmp_path_factory) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        ASSISTANT_DATA_DIR=str(tmp_path_factory.mktemp("cli-exit") / "data"),
        ASSISTANT_CORPUS_PATHS=json.dumps([str(CORPUS)]),
        ASSISTANT_LLM_MODEL=str(tiny_model_dir),
        ASSISTANT_LLM_DTYPE="float32",
        ASSISTANT_LLM_MAX_NEW_TOKENS="12",
        COLUMNS="200",
    )
    return env


def run_cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=PROJECT_DIR,
    )


@pytest.mark.slow
def test_ask_exits_zero_with_the_answer_printed(cli_env):
    done = run_cli(cli_env, "ask", "--json", QUESTION)
    assert "terminate called" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout[done.stdout.index("{\n") :])  # after the first ingest's report
    assert not answer["abstained"] and answer["answer"].strip() and answer["sources"], answer

    # a real error is still an error: non-zero, one clear line
    bad = run_cli({**cli_env, "ASSISTANT_LLM_MODEL": "/nonexistent/model"}, "ask", QUESTION)
    assert bad.returncode == 2 and "error:" in bad.stderr, (bad.returncode, bad.stderr)


@pytest.mark.slow
def test_diagnose_exits_zero_with_findings_and_answer(cli_env):
    log = (RUNS_DIR / "logs/diverged_blobs_nan.console.log").read_text()
    done = run_cli(cli_env, "diagnose", "-", stdin=log)
    assert "terminate called" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    assert "diverged (high): the training loss became NaN or infinite at epoch 1" in done.stdout
    assert "asking: The training loss explodes or becomes NaN" in done.stdout


@pytest.mark.slow
def test_the_command_closes_the_model_it_loaded(cli_env, monkeypatch):
    """In-process, the cause itself: when `ask` returns, the batching loop and its dispatcher have
    stopped (before, nothing closed them and they died under interpreter shutdown)."""
    for k, v in cli_env.items():
        monkeypatch.setenv(k, v)
    closed = []
    monkeypatch.setattr("assistant.core.Assistant.close", _recording_close(closed))
    before = set(threading.enumerate())  # other tests' engines may be running in this process
    result = CliRunner().invoke(app, ["ask", QUESTION], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert len(closed) == 1 and closed[0] is not None  # the model that answered was closed
    assert cli_common._opened == []
    # the command's own threads (the batching loop and its dispatcher) have ended
    left = {t.name for t in set(threading.enumerate()) - before if t.name.startswith(("llm", "Thread"))}
    assert not any("batch" in n or "generation" in n for n in left), left
    assert closed[0].closed and closed[0].batcher is None


def _recording_close(closed: list):
    from assistant.core import Assistant

    original = Assistant.close

    def close(self: Assistant) -> None:
        closed.append(self._llm)
        original(self)

    return close


def test_a_failed_command_still_closes_what_it_opened(tmp_path, monkeypatch):
    """An error exit (typer.Exit from friendly_errors) goes through the same close."""
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ASSISTANT_CONFIG", raising=False)
    closed: list = []
    monkeypatch.setattr("assistant.core.Assistant.close", _recording_close(closed))
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "missing.txt")], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert len(closed) == 1 and cli_common._opened == []


@pytest.mark.slow
def test_a_script_that_never_closes_the_engine_still_exits_zero(tiny_model_dir, tmp_path):
    """A library user who streams an answer and exits without close(): the batching loop is asked
    to stop as the interpreter exits (not collected from a daemon thread), and the process ends 0."""
    script = (
        "from assistant.settings import Settings\n"
        "from assistant.llm.engine import LLMEngine\n"
        f"s = Settings(data_dir={str(tmp_path)!r}, llm_model={str(tiny_model_dir)!r}, llm_dtype='float32',"
        " llm_batching='on')\n"
        "e = LLMEngine(s)\n"
        "print('batching', e.batching, 'text', repr(e.generate([{'role': 'user', 'content': 'Hi'}],"
        " max_new_tokens=6)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300, cwd=PROJECT_DIR
    )
    assert "terminate called" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("batching on text "), done.stdout
