"""Crash safety: the app's process is killed with SIGKILL in the middle of an answer and in the middle
of an upload's ingest, then started again over the same data directory. Every conversation is
intact up to its last finished turn; every file's units are whole or absent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.settings import PROJECT_DIR, Settings
from assistant.store import Accounts, ConversationStore, open_database

Q1 = "How can I ensure the reproducibility of my deep learning project?"
Q2 = "And how do I choose the right loss function for my project?"

# The app's own handlers in a process of their own; each step is announced on stdout, and the slow
# part (a token every 50 ms; an ingest that pauses after its first write) is where it gets killed.
CHILD = r"""
import sys, time
from types import SimpleNamespace
from assistant.offline import apply_offline_env
apply_offline_env()
from assistant.core import Assistant
from assistant.llm.engine import LLMEngine
from assistant.settings import Settings
from assistant.web.auth import web_context
from assistant.web.chat_tab import ChatTab
from assistant.web.documents_tab import DocumentsTab

mode, data, model = sys.argv[1:4]
settings = Settings(data_dir=data)
web = web_context(settings, "127.0.0.1")
request = SimpleNamespace(session_hash="s", username=None, query_params={})
if mode == "answer":
    engine = LLMEngine(Settings(data_dir=data, llm_model=model, llm_dtype="float32", llm_batching="off"))
    assistant = Assistant(settings, llm=engine)
    tab = ChatTab(assistant, web)
    last = list(tab.respond(sys.argv[4], [], [], 2, 0.0, 24, None, request))[-1]
    print("SAVED", last[6], flush=True)
    from transformers import LogitsProcessor, LogitsProcessorList

    class Slow(LogitsProcessor):
        def __call__(self, input_ids, scores):
            time.sleep(0.05)
            return scores

    params = engine.generation_params
    engine.generation_params = lambda *a, **kw: {
        **params(*a, **kw), "logits_processor": LogitsProcessorList([Slow()])
    }
    for out in tab.respond(sys.argv[5], [], last[2], 2, 0.0, 1024, last[6], request):
        if out[1] and out[1][-1]["content"]:
            print("STREAMING", flush=True)
else:
    assistant = Assistant(settings)
    store = assistant.store
    real = store.collection.upsert

    def upsert(**kw):
        real(**kw)
        print("WROTE", flush=True)
        time.sleep(120)

    store.collection.upsert = upsert
    DocumentsTab(assistant, web).upload([sys.argv[4]], request=request)
print("DONE", flush=True)
"""


def run_until(args: list[str], marker: str, timeout: float = 300) -> list[str]:
    """Run the child until it prints `marker`, then SIGKILL it; its output lines."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE, text=True, env=env, cwd=PROJECT_DIR
    )
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith(marker):
                time.sleep(0.3)  # well inside the slow part
                proc.send_signal(signal.SIGKILL)
                break
            assert time.monotonic() < deadline, f"no {marker} in time: {lines}"
    finally:
        proc.kill()
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL and "DONE" not in lines, lines
    return lines


@pytest.fixture()
def data(tmp_path, embedder):
    """A data directory with the corpus indexed (by this process: the child only reads it)."""
    from assistant.core import Assistant

    Assistant(Settings(data_dir=tmp_path), embedder=embedder).ingest()
    return tmp_path


def test_killed_mid_answer_keeps_every_finished_turn(data, tiny_model_dir):
    lines = run_until(["answer", str(data), str(tiny_model_dir), Q1, Q2], "STREAMING")
    conv_id = next(line.split()[1] for line in lines if line.startswith("SAVED"))
    db = open_database(Settings(data_dir=data))  # "restart": the same database, opened afresh
    try:
        local = Accounts(db, Settings(data_dir=data)).local_user()
        store = ConversationStore(db)
        assert [c.id for c in store.list(local)] == [conv_id]
        saved = store.get(local, conv_id)
        assert [t.question for t in saved.turns] == [Q1]  # the answer being written is lost, alone
        answer = saved.turns[0].answer
        assert answer["answer"] and answer["sources"] and not saved.turns[0].stopped
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    finally:
        db.dispose()


def test_killed_mid_upload_leaves_each_file_whole_or_absent(data, tmp_path_factory, embedder):
    from assistant.core import Assistant

    doc = tmp_path_factory.mktemp("upload") / "team-notes.md"
    doc.write_text(
        "# Team notes\n\n"
        + "".join(
            f"### What does setting {i} of the zorblax optimiser do?\n\n"
            f"Setting {i} scales the zorblax step by {i} tenths, which changes convergence.\n\n"
            for i in range(150)
        )
    )
    settings = Settings(data_dir=data)
    before = Assistant(settings, embedder=embedder).store.own_files()
    run_until(["upload", str(data), "", str(doc)], "WROTE")
    # The restart: the app opens the index and ingests what changed, as `assistant serve` does.
    assistant = Assistant(settings, embedder=embedder)
    report = assistant.ingest()
    store = assistant.store
    files = store.own_files()
    assert {p: f["units"] for p, f in before.items()} == {p: files[p]["units"] for p in before}
    assert all(not m.get("dirty") for m in store.markers().values())  # no write left half-done
    for path, info in files.items():  # each document: exactly its current generation, all of it
        records = list(store.records(include=("metadatas",), where={"doc": store.doc_id(path)}))
        assert len(records) == info["vectors"], path
        assert {r["metadata"]["gen"] for r in records} == {info["gen"]}, path
    uploaded = [p for p in files if p.endswith("team-notes.md")]
    if uploaded:  # whole: every unit of the file, searchable
        assert files[uploaded[0]]["units"] == len(assistant.chunker.load(Path(uploaded[0])))
    else:  # absent: not one of its units answers, and the half-written vectors are gone
        assert report.repaired == 1
        hits = assistant.search("what does setting 7 of the zorblax optimiser do?", k=5)
        assert all(h.source != "team-notes.md" for h in hits)
