"""Hybrid search: quality floor on the goldset, result shape, BM25 built once, bad queries."""

from __future__ import annotations

import pytest

from assistant.knowledge.retrieval import EmptyQueryError, tokenize
from assistant.measure.evaluation import GOLDSET_DIR, eval_retrieval, load_jsonl


def test_goldset_floor(indexed):
    goldset = load_jsonl(GOLDSET_DIR / "retrieval.jsonl")
    assert len(goldset) >= 50
    ev = eval_retrieval(indexed, goldset)
    assert ev.hit_at(1) >= 0.92, ev.misses
    assert ev.hit_at(3) >= 0.98, ev.misses


def test_results_are_one_per_unit_with_everything_a_citation_needs(indexed):
    results = indexed.search("how do I stop my model from overfitting", k=8)
    assert len(results) == 8
    assert len({r.unit_id for r in results}) == 8
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    top = results[0]
    assert "overfitting" in top.title.lower()
    assert top.source.endswith((".md", ".txt")) and top.doc_title and top.text
    assert top.passage in top.text or top.passage.split("\n")[0] in top.text
    assert 0 < top.score <= 1 and top.vector_score is not None
    assert set(top.to_dict()) >= {"unit_id", "source", "title", "text", "score"}


def test_long_unit_returns_the_piece_that_matched(indexed):
    hit = indexed.search("cosine annealing or exponential decay learning rate schedule", k=1)[0]
    assert hit.title.startswith("Describe an instance where you had to adjust learning rates")
    assert "cosine annealing" in hit.passage and len(hit.passage) < len(hit.text)


def test_bm25_is_built_once_not_per_query(indexed, monkeypatch, tmp_path):
    import assistant.knowledge.retrieval as retrieval

    builds = []
    real = retrieval.SparseBM25
    monkeypatch.setattr(retrieval, "SparseBM25", lambda corpus: builds.append(1) or real(corpus))
    indexed.retriever.invalidate()
    for q in ["batch size", "learning rate", "dropout", "transfer learning", "deploy"]:
        indexed.search(q)
    assert len(builds) == 1
    indexed.search("batch size")
    assert len(builds) == 1


def test_new_document_is_searchable_at_once(settings, make_assistant, tmp_path):
    a = make_assistant(settings)
    a.ingest()
    a.search("warm up")  # BM25 side built
    note = tmp_path / "extra.md"
    note.write_text(
        "# Extra\n\n### Why does my loss become NaN?\n\nUse gradient clipping and a lower learning rate; "
        "check for log of zero in the loss.\n\n### What is mixup?\n\nMixup blends pairs of images.\n"
    )
    a.ingest([note])
    hit = a.search("loss turns into nan", k=1)[0]
    assert hit.source == "extra.md" and hit.title == "Why does my loss become NaN?"
    assert a.remove(note) > 0
    assert all(r.source != "extra.md" for r in a.search("loss turns into nan"))


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_is_a_clear_error(indexed, query):
    with pytest.raises(EmptyQueryError, match="empty"):
        indexed.search(query)


def test_punctuation_only_query_still_answers(indexed):
    assert indexed.search("???")  # no BM25 terms: the vector side still ranks


def test_tokenizer_stems_and_drops_function_words():
    assert tokenize("How do I stop Overfitting models?") == ["stop", "overfit", "model"]


def test_sparse_bm25_matches_rank_bm25_exactly():
    import numpy as np
    from rank_bm25 import BM25Okapi

    from assistant.knowledge.retrieval import SparseBM25

    corpus = [
        tokenize(t)
        for t in [
            "Batch size trades memory for gradient noise.",
            "A learning rate too high makes the loss diverge; lower the learning rate.",
            "Dropout and weight decay fight overfitting.",
            "Mixed precision halves activation memory.",
            "Learning rate warmup stabilises early training.",
        ]
    ]
    for query in ["learning rate learning", "memory", "overfitting dropout", "unknown words"]:
        q = tokenize(query)
        np.testing.assert_allclose(
            SparseBM25(corpus).get_scores(q), BM25Okapi(corpus).get_scores(q), rtol=1e-9
        )


def test_a_fresh_assistant_indexes_the_corpus_on_first_search(settings, make_assistant):
    a = make_assistant(settings)
    assert a.store.count() == 0
    hits = a.search("alternatives to pytorch", k=1)
    assert hits[0].title == "Are there alternatives to Pytorch?" and a.stats()["units"] == 36


def test_bench_fusion_reproduces_the_shipped_search(indexed):
    """`assistant bench fusion` recomputes the method table of docs/benchmarks.md; its shipped row
    must be what search itself scores."""
    from assistant.measure.bench import bench_fusion

    res = bench_fusion(indexed)
    for name in ("retrieval.jsonl", "retrieval_heldout.jsonl"):
        ev = eval_retrieval(indexed, load_jsonl(GOLDSET_DIR / name))
        assert res["+ question and sentence keys (shipped)"][name] == round(ev.hit_at(1), 3)
