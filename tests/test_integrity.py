"""The index never loses or mixes documents: ids per document, upload names, atomic replacement."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.web.documents_tab import DocumentsTab

PROJECT_DIR = Path(__file__).resolve().parents[1]


def _units_of(a, source: str) -> list[dict]:
    return [u for u in a.retriever.units() if u["source"] == source]


def test_a_copy_of_a_corpus_file_is_its_own_document(settings, make_assistant, corpus_copy, tmp_path):
    a = make_assistant(settings)
    a.ingest([corpus_copy])
    other = tmp_path / "elsewhere"
    other.mkdir()
    copy = other / "deep-learning-projects-faq.md"
    shutil.copyfile(corpus_copy / copy.name, copy)
    a.ingest([copy])
    assert a.stats()["files"] == 5
    assert a.remove(copy) > 0
    assert a.stats()["files"] == 4 and a.stats()["units"] == 36, "the corpus file keeps its units"
    assert a.search("alternatives to pytorch", k=1)[0].source == copy.name


def test_uploads_with_names_that_sanitise_alike_never_replace_each_other(settings, make_assistant, tmp_path):
    a = make_assistant(settings)
    tab = DocumentsTab(a)
    files = []
    for folder, name, topic in [("x", "笔记.md", "zorblax"), ("y", "训练.md", "quuxnorm")]:
        (tmp_path / folder).mkdir()
        f = tmp_path / folder / name
        f.write_text(f"# Notes\n\n### What is {topic}?\n\n{topic.title()} rescales every activation.\n")
        files.append(str(f))
    tab.upload(files)
    shown = [row[0] for row in tab.table()]
    assert sorted(shown) == ["笔记.md", "训练.md"], shown
    assert a.search("what is zorblax", k=1)[0].source == "笔记.md"
    assert a.search("what is quuxnorm", k=1)[0].source == "训练.md"


def test_a_changed_file_failing_mid_write_stays_whole_and_is_repaired(
    settings, make_assistant, corpus_copy, monkeypatch
):
    a = make_assistant(settings)
    a.ingest([corpus_copy])
    faq = corpus_copy / "deep-learning-projects-faq.md"
    before = {u["title"]: u["unit_text"] for u in _units_of(a, faq.name)}
    faq.write_text(faq.read_text().replace("Pytorch", "PyTorch (v2)"))
    real_upsert = a.store.collection.upsert

    def failing_upsert(**kw):
        half = len(kw["ids"]) // 2
        real_upsert(**{k: v[:half] for k, v in kw.items()})  # half written, then the disk "fails"
        raise OSError("disk full")

    monkeypatch.setattr(a.store.collection, "upsert", failing_upsert)
    report = a.ingest([corpus_copy])
    assert [name for name, _ in report.skipped] == [faq.name] and "disk full" in report.skipped[0][1]
    after = {u["title"]: u["unit_text"] for u in _units_of(a, faq.name)}
    assert after == before, "search still sees the whole old version"
    monkeypatch.setattr(a.store.collection, "upsert", real_upsert)
    retry = a.ingest([corpus_copy])
    assert retry.updated == [faq.name], "a half-written file never counts as indexed"
    assert any("PyTorch (v2)" in u["title"] + u["unit_text"] for u in _units_of(a, faq.name))
    assert a.stats()["units"] == 36 and len({u["title"] for u in a.retriever.units()}) == 36


NOTES = [  # made-up terms: only the new file can match them, by words or by meaning
    ("zorblax", "What is zorblax normalization?", "Zorblax rescales activations."),
    ("quenfit", "How does the quenfit optimizer work?", "Quenfit averages gradients over two steps."),
    ("mirrowdecay", "When should I use mirrowdecay?", "Mirrowdecay shrinks weights after warm-up."),
    ("plimsoll", "What is a plimsoll layer?", "A plimsoll layer clips activations at a learned level."),
    ("vantrope", "Why does vantrope pooling help?", "Vantrope pooling keeps the two largest values."),
    ("glimmerbatch", "What is glimmerbatch sampling?", "Glimmerbatch sampling draws hard examples twice."),
]


def _note(folder: Path, term: str, question: str, answer: str) -> Path:
    path = folder / f"{term}.md"
    path.write_text(f"# Notes on {term}\n\n### {question}\n\n{answer}\n")
    return path


def test_a_running_retriever_sees_another_writers_changes(settings, make_assistant, tmp_path):
    """Each file another writer adds is found at once by this retriever's vector side too (not only by
    BM25), and a removed one is gone. Chroma's HNSW left about one single-file addition in six
    unreachable on this corpus; the vector side is exact below `exact_search_max_records`."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()  # both open this store fresh, as two processes would
    reader, writer = make_assistant(settings), make_assistant(settings)
    reader.ingest()
    reader.search("warm up")  # its snapshot is built
    for term, question, answer in NOTES:
        note = _note(tmp_path, term, question, answer)
        writer.ingest([note])
        top = reader.search(question, k=1)[0]
        assert (top.source, top.title) == (note.name, question)
        assert top.vector_score is not None and top.vector_score > 0.6, (
            "found by its vector, not by words alone"
        )
    writer.remove(tmp_path / f"{NOTES[0][0]}.md")
    assert f"{NOTES[0][0]}.md" not in {u["source"] for u in reader.retriever.units()}
    assert all(r.source != f"{NOTES[0][0]}.md" for r in reader.search(NOTES[0][1], k=10))


def test_a_running_retriever_sees_an_ingest_made_by_another_process(settings, make_assistant, tmp_path):
    """`assistant ingest` in another process while the app runs: the app's next search finds the new
    file and keeps serving. Its vectors stay invisible to this process's embedded Chroma (which keeps
    them in an HNSW segment loaded before), so it is found by words: what the README says about
    sharing one index between processes (run Chroma as a server)."""
    reader = make_assistant(settings)
    reader.ingest()
    reader.search("warm up")
    term, question, answer = NOTES[1]
    note = _note(tmp_path, term, question, answer)
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(settings.data_dir), "PYTHONPATH": str(PROJECT_DIR)}
    subprocess.run(
        [sys.executable, "-m", "assistant", "ingest", str(note)],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=300,
    )
    top = reader.search(question, k=1)[0]
    assert (top.source, top.title) == (note.name, question) and top.bm25_score
    assert reader.search("what is dropout", k=1)[0].source != note.name  # the rest is searched as before


def test_exact_vector_search_agrees_with_chroma_where_hnsw_has_every_vector(settings, make_assistant):
    """The two vector paths give the same neighbours on the shipped corpus (HNSW being complete there
    after one batch ingest), so switching at `exact_search_max_records` changes no ranking."""
    exact = make_assistant(settings)
    exact.ingest()
    hnsw = make_assistant(settings.model_copy(update={"exact_search_max_records": 0}))
    for query in ["my loss plateaus", "out of GPU memory", "what is dropout", "learning rate warmup"]:
        a, b = exact.search(query, k=5), hnsw.search(query, k=5)
        assert [r.unit_id for r in a] == [r.unit_id for r in b]
        assert [r.vector_score for r in a] == pytest.approx([r.vector_score for r in b], abs=1e-4)
    assert exact.retriever._current().vectors is not None and hnsw.retriever._current().vectors is None


def test_ctrl_c_mid_write_keeps_the_old_version(settings, make_assistant, corpus_copy, monkeypatch):
    a = make_assistant(settings)
    a.ingest([corpus_copy])
    faq = corpus_copy / "deep-learning-projects-faq.md"
    before = {u["title"]: u["unit_text"] for u in _units_of(a, faq.name)}
    faq.write_text(faq.read_text().replace("Pytorch", "PyTorch (v2)"))
    real_upsert = a.store.collection.upsert

    def interrupted_upsert(**kw):
        real_upsert(**{k: v[: len(kw["ids"]) // 2] for k, v in kw.items()})
        raise KeyboardInterrupt

    monkeypatch.setattr(a.store.collection, "upsert", interrupted_upsert)
    with pytest.raises(KeyboardInterrupt):
        a.ingest([corpus_copy])
    assert {u["title"]: u["unit_text"] for u in _units_of(a, faq.name)} == before
    assert len(a.store.ids_for(str(faq.resolve()))) == a.store.own_files()[str(faq.resolve())]["vectors"]
    monkeypatch.setattr(a.store.collection, "upsert", real_upsert)
    assert a.ingest([corpus_copy]).updated == [faq.name]


def test_an_index_from_the_previous_version_asks_for_a_rebuild_and_keeps_uploads(
    settings, make_assistant, monkeypatch, tmp_path
):
    """An index written before markers and generations existed (chunker 4): refused with the rebuild
    hint, and the rebuild brings back the files it held, uploads included (read from its chunks)."""
    import assistant.knowledge.corpus as corpus

    upload = tmp_path / "uploads" / "mine.md"
    upload.parent.mkdir()
    upload.write_text("# Notes\n\n### What is zorblax?\n\nZorblax rescales every activation.\n")
    monkeypatch.setattr(corpus, "CHUNKER_VERSION", "4")
    old = make_assistant(settings)
    old.store.collection.add(  # the shape the previous version wrote: unit:p0 ids, path in metadata
        ids=["0123456789abcdef:p0"],
        documents=["What is zorblax?\n\nZorblax rescales every activation."],
        embeddings=[[0.1] * old.embedder.dim],
        metadatas=[{"unit_id": "0123456789abcdef", "source": upload.name, "path": str(upload.resolve())}],
    )
    monkeypatch.undo()
    new = make_assistant(settings)
    with pytest.raises(Exception, match=r"chunker: index has '4'.*assistant ingest --rebuild"):
        new.search("what is zorblax")
    report = new.ingest(rebuild=True)
    assert "mine.md" in report.added and len(report.added) == 5
    assert new.search("what is zorblax", k=1)[0].source == "mine.md"


def test_uploading_the_same_file_twice_keeps_one_copy(settings, make_assistant, tmp_path):
    a = make_assistant(settings)
    tab = DocumentsTab(a)
    f = tmp_path / "notes.md"
    f.write_text("# Notes\n\n### What is zorblax?\n\nZorblax rescales every activation.\n")
    first, _, _, _ = tab.upload([str(f)])
    again, _, _, _ = tab.upload([str(f)])
    assert "units indexed" in first and "already indexed, unchanged" in again
    assert [row[0] for row in tab.table()] == ["notes.md"]
    doc_id = tab.table()[0][3]  # documents are named by index id, never by server path
    path = a.store.files()[doc_id]["path"]
    status, _, _ = tab.remove(doc_id)
    assert "Removed **notes.md**" in status and not Path(path).parent.exists()
    assert tab.table() == []


def test_a_rebuild_of_a_missing_path_drops_nothing(settings, make_assistant, corpus_copy, tmp_path):
    a = make_assistant(settings)
    a.ingest([corpus_copy])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        a.ingest([tmp_path / "nope"], rebuild=True)
    assert a.stats()["files"] == 4 and a.search("alternatives to pytorch", k=1)
