"""The Chroma store: idempotent incremental ingest, atomic per-file writes, manifest, server mode."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from assistant.knowledge.index import IndexMismatchError
from assistant.settings import Settings


def test_ingest_twice_adds_nothing(settings, make_assistant, corpus_copy):
    a = make_assistant(settings)
    first = a.ingest([corpus_copy])
    assert len(first.added) == 4 and first.units == 36 and not first.skipped
    count = a.store.count()
    second = a.ingest([corpus_copy])
    assert second.added == second.updated == second.removed == [] and len(second.unchanged) == 4
    assert second.units == 0 and a.store.count() == count
    # A fresh process over the same data dir sees the same index and still adds nothing.
    again = make_assistant(settings)
    assert again.ingest([corpus_copy]).units == 0 and again.store.count() == count


def test_changed_file_is_replaced_and_removed_file_deleted(settings, make_assistant, corpus_copy):
    a = make_assistant(settings)
    a.ingest([corpus_copy])
    faq = corpus_copy / "deep-learning-projects-faq.md"
    old = "**Caffe**: A deep learning framework with a focus on speed and modularity."
    assert old in faq.read_text()
    faq.write_text(
        faq.read_text().replace(old, "**JAX**: A numerical library with automatic differentiation.")
    )
    report = a.ingest([corpus_copy])
    assert report.updated == [faq.name] and report.units == 15
    hits = a.search("JAX numerical library alternative to pytorch", k=1)
    assert "JAX" in hits[0].text
    texts = [r["document"] for r in a.store.records()]
    assert not any("Caffe" in t for t in texts), "the old version of the unit is gone"
    assert a.stats()["units"] == 36

    (corpus_copy / "common-practices-in-deep-learning.txt").unlink()
    report = a.ingest([corpus_copy])
    assert report.removed == ["common-practices-in-deep-learning.txt"]
    assert a.stats()["files"] == 3 and a.stats()["units"] == 31
    assert all(
        r.source != "common-practices-in-deep-learning.txt" for r in a.search("transfer learning", k=10)
    )


def test_a_file_failing_mid_write_leaves_no_partial_chunks(
    settings, make_assistant, corpus_copy, monkeypatch
):
    a = make_assistant(settings)
    real_upsert = a.store.collection.upsert
    calls = {"n": 0}

    def failing_upsert(**kw):
        if any(m["source"] == "deep-learning-basics-qa.txt" for m in kw["metadatas"]):
            half = len(kw["ids"]) // 2
            real_upsert(**{k: v[:half] for k, v in kw.items()})  # half written, then the disk "fails"
            calls["n"] += 1
            raise OSError("disk full")
        return real_upsert(**kw)

    monkeypatch.setattr(a.store.collection, "upsert", failing_upsert)
    report = a.ingest([corpus_copy])
    assert calls["n"] == 1
    assert [name for name, _ in report.skipped] == ["deep-learning-basics-qa.txt"]
    assert "disk full" in report.skipped[0][1]
    basics = str((corpus_copy / "deep-learning-basics-qa.txt").resolve())
    assert a.store.ids_for(basics) == set()
    assert a.stats()["files"] == 3
    monkeypatch.setattr(a.store.collection, "upsert", real_upsert)
    retry = a.ingest([corpus_copy])
    assert retry.added == ["deep-learning-basics-qa.txt"] and a.stats()["units"] == 36


def test_index_built_differently_is_refused_then_rebuilt(settings, make_assistant, corpus_copy):
    make_assistant(settings).ingest([corpus_copy])
    other = make_assistant(settings.model_copy(update={"chunk_max_tokens": 128}))
    assert "max_tokens" in other.store.mismatch()
    with pytest.raises(IndexMismatchError, match="assistant ingest --rebuild"):
        other.search("batch size")
    with pytest.raises(IndexMismatchError):
        other.ingest([corpus_copy])
    report = other.ingest([corpus_copy], rebuild=True)
    assert report.units == 36 and report.vectors > 330  # same units, cut into more pieces
    assert other.store.mismatch() is None and other.search("batch size")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def chroma_server(tmp_path):
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    assert chroma, "the chroma CLI ships with chromadb"
    port = _free_port()
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [chroma, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1)
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("chroma server did not start")
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_server_mode_ingests_and_searches_a_real_chroma_server(tmp_path, make_assistant, chroma_server):
    s = Settings(data_dir=tmp_path / "data", chroma_url=chroma_server)
    a = make_assistant(s)
    assert a.stats()["mode"] == "server"
    report = a.ingest()
    assert report.units == 36
    assert a.search("my gpu runs out of memory", k=1)[0].title.startswith(
        "My model training takes too much RAM"
    )
    assert a.ingest().units == 0
    assert not (tmp_path / "data" / "chroma").exists(), "server mode keeps nothing in the embedded store"


def _note(folder: Path, name: str, topic: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(
        f"# Notes\n\n### What is {topic}?\n\n{topic.title()} rescales every activation by its median.\n"
    )
    return path


def test_two_hosts_on_one_server_never_delete_each_others_documents(tmp_path, make_assistant, chroma_server):
    """Two "hosts" (own data dirs and corpus folders) share one Chroma server."""
    hosts = []
    for name, topic in [("one", "zorblax"), ("two", "quuxnorm")]:
        corpus = tmp_path / name / "corpus"
        _note(corpus, "notes.md", topic)  # the same relative layout on both hosts
        s = Settings(data_dir=tmp_path / name / "data", chroma_url=chroma_server, corpus_paths=[corpus])
        hosts.append((make_assistant(s), corpus))
    (one, corpus_one), (two, corpus_two) = hosts
    assert one.ingest().added == ["notes.md"]
    one.search("what is zorblax")  # its BM25 side is built before the other host writes
    assert two.ingest().added == ["notes.md"], "host two's file is its own document"
    assert one.stats()["files"] == 2
    # Host one's corpus loses a file: only that file leaves. Host two's files are not on host one's
    # disk (moved away while host one ingests), yet host two's documents stay.
    (corpus_one / "notes.md").unlink()
    _note(corpus_one, "other.md", "blorptimizer")
    away = corpus_two.rename(corpus_two.with_name("elsewhere"))
    report = one.ingest()
    away.rename(corpus_two)
    assert report.removed == ["notes.md"] and report.added == ["other.md"]
    assert two.search("what is quuxnorm", k=1)[0].title == "What is quuxnorm?"
    assert one.search("what is quuxnorm", k=1)[0].title == "What is quuxnorm?", "host one sees host two's"
    assert all(r.title != "What is zorblax?" for r in two.search("what is zorblax", k=10)), (
        "host two's running retriever no longer returns the unit host one deleted"
    )
    assert two.ingest().unchanged == ["notes.md"] and two.stats()["files"] == 2
    # A rebuild on host two drops host one's documents and says so; host one keeps answering.
    rebuilt = two.ingest(rebuild=True)
    assert rebuilt.dropped == [("other.md", f"indexed by another host (owner {one.store.owner})")]
    assert one.search("what is quuxnorm", k=1)[0].title == "What is quuxnorm?"
    assert one.ingest().added == ["other.md"] and one.stats()["files"] == 2


def test_rebuild_brings_uploads_back_and_names_what_it_dropped(tmp_path, make_assistant, chroma_server):
    corpus = tmp_path / "corpus"
    _note(corpus, "notes.md", "zorblax")
    s = Settings(data_dir=tmp_path / "data", chroma_url=chroma_server, corpus_paths=[corpus])
    a = make_assistant(s)
    a.ingest()
    upload = _note(s.uploads_dir / "0123abcd", "mine.md", "quuxnorm")
    gone = _note(tmp_path / "scratch", "gone.md", "blorptimizer")
    a.ingest([upload])
    a.ingest([gone])
    other = make_assistant(Settings(data_dir=tmp_path / "other", chroma_url=chroma_server))
    other.ingest([_note(tmp_path / "other-corpus", "theirs.md", "flumpnet")])
    gone.unlink()
    report = a.ingest(rebuild=True)
    assert sorted(report.added) == ["mine.md", "notes.md"], "the upload came back"
    assert sorted(report.dropped) == [
        ("gone.md", f"no longer on disk ({gone.resolve()})"),
        ("theirs.md", f"indexed by another host (owner {other.store.owner})"),
    ]
    assert "2 dropped" in report.summary()
    assert a.search("what is quuxnorm", k=1)[0].source == "mine.md"
