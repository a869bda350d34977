"""Sessions never disturb each other: shared tokenizers, the embedder, the model and the index used by
many threads at once (real MiniLM, real Chroma, the tiny random Llama)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from assistant.settings import PROJECT_DIR, Settings

CORPUS_TEXT = "\n".join(p.read_text(encoding="utf-8") for p in sorted((PROJECT_DIR / "corpus").iterdir()))


def run_threads(work: Callable[[int], Any], n: int = 8) -> tuple[dict[int, Any], dict[int, BaseException]]:
    """Run work(i) on n threads released at once; (results, errors) by thread index."""
    barrier = threading.Barrier(n)
    results: dict[int, Any] = {}
    errors: dict[int, BaseException] = {}

    def target(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors[i] = exc

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results, errors


# -- tokenizers and the embedder ---------------------------------------------------------------------


def test_embedding_reads_at_most_the_models_window(embedder):
    """A text past 512 word pieces used to crash MiniLM (its window had been lifted to count long
    texts); it is embedded from its first `max_tokens` pieces, like any sentence-transformers model."""
    words = CORPUS_TEXT.split()
    long_text = " ".join(words[:1500])
    assert embedder.count_tokens(long_text) > 1500
    vec = embedder.embed([long_text])[0]
    assert vec.shape == (embedder.dim,) and abs(float(np.linalg.norm(vec)) - 1) < 1e-4
    head = embedder.embed(
        [
            embedder.model.tokenizer.convert_tokens_to_string(
                embedder.model.tokenizer.tokenize(long_text)[: embedder.max_tokens - 2]
            )
        ]
    )[0]
    assert float(vec @ head) > 0.99


def test_token_counting_and_embedding_are_exact_from_many_threads(embedder):
    """Counting (no truncation) and embedding (truncation to the window) used one shared fast
    tokenizer whose truncation setting each call flips: from many threads that raised "Already
    borrowed" (tokenizers < 0.23.1) or silently counted a truncated text."""
    words = CORPUS_TEXT.split()
    texts = [" ".join(words[i * 300 : i * 300 + 200 + 150 * (i % 5)]) for i in range(24)]
    expected_counts = [embedder.count_tokens(t) for t in texts]
    assert max(expected_counts) > embedder.max_tokens  # some are longer than the window
    fresh = [f"{t} (thread copy)" for t in texts]  # not in the test embedder's memo
    expected_vecs = embedder.embed(fresh)
    embedder.memo.clear()

    def work(i: int) -> Any:
        if i % 2:
            return [embedder.count_tokens(t) for t in texts for _ in range(3)][::3]
        return embedder.embed(fresh[i::2])

    results, errors = run_threads(work)
    assert not errors, errors
    for i, got in results.items():
        if i % 2:
            assert got == expected_counts
        else:
            assert np.allclose(got, expected_vecs[i::2], atol=1e-5)


# -- the model switch --------------------------------------------------------------------------------


def test_a_model_switch_lets_answers_finish_frees_the_old_model_and_never_blocks_search(
    tmp_path, make_assistant, tiny_model_dir, monkeypatch
):
    import gc
    import shutil
    import time
    import weakref

    from assistant.chat.chain import Answer
    from assistant.llm import engine as engine_module
    from assistant.llm.engine import LLMEngine

    s = Settings(data_dir=tmp_path / "data", llm_model=str(tiny_model_dir), llm_dtype="float32")
    a = make_assistant(s, llm=LLMEngine(s))  # its own engine: the switch unloads it
    a.ingest()
    other = shutil.copytree(tiny_model_dir, tmp_path / "other-model")
    old_model = weakref.ref(a.llm.model)

    loading, release = threading.Event(), threading.Event()
    old_alive_at_load: list[bool] = []
    real_load = engine_module.load_model

    def slow_load(*args: Any, **kwargs: Any) -> Any:
        gc.collect()
        old_alive_at_load.append(old_model() is not None)
        loading.set()
        release.wait(30)  # a big model takes a while to load
        return real_load(*args, **kwargs)

    monkeypatch.setattr(engine_module, "load_model", slow_load)

    in_flight = a.ask_stream(
        "How do I choose the right loss function for my project?", max_new_tokens=120, min_new_tokens=120
    )
    first = next(in_flight)  # an answer is being written on the old model
    switch_errors: list[BaseException] = []

    def switch() -> None:
        try:
            a.set_model(str(other))
        except BaseException as exc:  # noqa: BLE001 - reported below
            switch_errors.append(exc)

    switcher = threading.Thread(target=switch, daemon=True)
    switcher.start()
    time.sleep(0.3)
    t = time.perf_counter()
    assert a.search("my gpu runs out of memory", k=3)  # the switch blocks no search
    assert time.perf_counter() - t < 5
    rest = list(in_flight)  # ...and the answer in flight finishes on the old model
    final = rest[-1]
    # nothing but the check's own note (the tiny model's sentence is left out): no error, not stopped
    assert isinstance(final, Answer) and all("left out" in n for n in final.notices), final.notices
    assert len(first + "".join(x for x in rest if isinstance(x, str))) > 20
    assert loading.wait(10), "the switch did not start loading once the answer was done"
    t = time.perf_counter()
    assert a.search("how big should a batch be", k=3)  # still no waiting while the new one loads
    assert time.perf_counter() - t < 5
    release.set()
    switcher.join(30)
    assert not switcher.is_alive() and not switch_errors
    assert old_alive_at_load == [False], "the old model was still in memory when the new one loaded"
    assert a.llm.name == "other-model" and a.settings.llm_model == str(other)
    assert a.ask("How can I ensure the reproducibility of my deep learning project?", max_new_tokens=8)


# -- many sessions at once ---------------------------------------------------------------------------

QUESTIONS = [
    "How do I choose the right loss function for my project?",
    "How can I ensure the reproducibility of my deep learning project?",
    "Are there alternatives to Pytorch?",
    "How can I keep up with the latest developments in deep learning?",
    "My model training takes too much RAM, what can I do?",
    "How do I determine the appropriate batch size?",
    "What is a vanishing gradient?",
    "What is transfer learning?",
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory, embedder, tiny_engine):
    """One Assistant and one Documents tab shared by every thread, as the web app shares them."""
    from assistant.core import Assistant
    from assistant.web.documents_tab import DocumentsTab

    s = Settings(data_dir=tmp_path_factory.mktemp("shared"), corpus_paths=[PROJECT_DIR / "corpus"])
    assistant = Assistant(s, embedder=embedder, llm=tiny_engine)
    assistant.ingest()
    # The unit each question is about: its own answer must come from it, never from another thread's.
    own = {q: assistant.search(q, k=1)[0].unit_id for q in QUESTIONS}
    return assistant, DocumentsTab(assistant), own


@pytest.mark.repeatable
def test_eight_sessions_search_ask_upload_and_remove_at_once(shared, tmp_path):
    """8 threads, each a session: search, ask, upload its own document, find it, and (half of them)
    remove it again. Every call succeeds, answers never mix, the index ends consistent."""
    assistant, documents, own = shared
    run = uuid.uuid4().hex[:8]
    words = [f"zorb{run}{chr(97 + i)}x" for i in range(8)]  # a word only thread i's document has

    def session(i: int) -> dict[str, Any]:
        question, word = QUESTIONS[i], words[i]
        hits = assistant.search(question, k=3)
        assert hits[0].unit_id == own[question]
        # A pasted training log, longer than the embedder's window, then the question.
        log = "\n".join(f"epoch {e} step {e * 50} loss {2.5 - e / 400:.4f} lr 0.001" for e in range(150))
        assert assistant.embedder.count_tokens(log) > 512
        assert assistant.search(f"{log}\n{question}", k=3)
        answer = assistant.ask(question, max_new_tokens=12)
        given = [s.unit_id for s in answer.sources + answer.consulted]
        assert answer.standalone_question == question
        assert own[question] in given, "an answer built from another session's sources"
        doc = tmp_path / f"notes-{run}-{i}.md"
        doc.write_text(
            f"# Notes {i}\n\n### What is {word} normalization?\n\nThe {word} normalization "
            f"rescales each activation of layer {i} by a running median, thread {i}.\n"
        )
        status, *_ = documents.upload([str(doc)])
        assert "units indexed" in status, status
        assert any(word in h.text for h in assistant.search(f"what is {word} normalization", k=3))
        removed = False
        if i % 2 == 0:
            path = next(row[-1] for row in documents.table() if f"notes-{run}-{i}" in str(row[0]))
            status, *_ = documents.remove(path)
            assert status.startswith("Removed"), status
            removed = True
        return {"word": word, "removed": removed}

    results, errors = run_threads(session)
    assert not errors, {i: repr(e) for i, e in errors.items()}
    # The index is consistent: what was removed is gone, what was kept is found.
    for r in results.values():
        hits = assistant.search(f"what is {r['word']} normalization", k=5)
        found = any(r["word"] in h.text for h in hits)
        assert found is not r["removed"], r
    names = " ".join(str(row[0]) for row in documents.table())
    assert all((f"notes-{run}-{i}" in names) is (i % 2 == 1) for i in range(8)), names


def test_first_searches_of_a_fresh_store_wait_for_one_ingest(settings, make_assistant):
    """A fresh data directory indexes the corpus on first use. Users who search at that moment get
    results from the whole corpus (not an empty store, which would abstain), from one ingest."""
    a = make_assistant(settings)
    results, errors = run_threads(lambda i: a.search("my GPU runs out of memory while training", k=3), 6)
    assert not errors, errors
    titles = {i: [r.title for r in hits] for i, hits in results.items()}
    assert len(titles) == 6 and all(t == titles[0] and t for t in titles.values())
    assert "My model training takes too much RAM, how do I solve this?" in titles[0]
    fresh = make_assistant(settings.model_copy(update={"data_dir": settings.data_dir.parent / "other"}))
    fresh.ingest()
    assert a.store.count() == fresh.store.count()  # one ingest's worth, nothing twice
