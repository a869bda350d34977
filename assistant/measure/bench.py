"""Speed benchmarks: figures printed by `assistant bench …`, never asserted by timed tests."""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from assistant.measure.evaluation import GOLDSET_DIR, load_jsonl
from assistant.settings import PROJECT_DIR


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def time_queries(assistant: Any, queries: list[str], repeat: int = 3) -> dict[str, float]:
    assistant.search(queries[0])  # warm-up: BM25 build, first-call overheads
    times = []
    for _ in range(repeat):
        for q in queries:
            t = time.perf_counter()
            assistant.search(q)
            times.append((time.perf_counter() - t) * 1000)
    return {
        "queries": len(times),
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "mean_ms": statistics.fmean(times),
        "stages_p50_ms": profile_query(assistant, queries),
    }


def profile_query(assistant: Any, queries: list[str]) -> dict[str, float]:
    """Median ms of each stage of a search: query embedding, Chroma top-n (distances only), BM25,
    and the rest (fusion, result assembly) as the whole search minus those."""
    r, s = assistant.retriever, assistant.settings
    n = min(max(s.candidates, 4 * s.retrieval_k), assistant.store.count())
    stages: dict[str, list[float]] = {"embed": [], "vector": [], "bm25": [], "search": []}
    for q in queries:
        t0 = time.perf_counter()
        vec = assistant.embedder.embed_query(q)
        t1 = time.perf_counter()
        snap = r._current()
        r._vector_scores(snap, vec, n)
        t2 = time.perf_counter()
        r._bm25_scores(snap, q, n)
        t3 = time.perf_counter()
        assistant.search(q)
        t4 = time.perf_counter()
        for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[key].append(dt * 1000)
    med = {k: round(statistics.median(v), 2) for k, v in stages.items()}
    med["fusion_and_assembly"] = round(
        max(0.0, med["search"] - med["embed"] - med["vector"] - med["bm25"]), 2
    )
    return med


def synthetic_corpus(folder: Path, units: int, seed: int = 0, per_file: int = 500) -> int:
    """Write `units` Q&A pairs in the corpus' markdown FAQ format, recombined from real corpus sentences."""
    import re

    from assistant.knowledge.corpus import clean_text

    rng = random.Random(seed)
    text = " ".join(p.read_text(encoding="utf-8") for p in (PROJECT_DIR / "corpus").iterdir())
    sentences = [" ".join(s.split()) for s in re.split(r"(?<=[.?!])\s+", text)]
    sentences = [
        s
        for s in sentences
        if 40 < len(s) < 300 and "#" not in s and not s.endswith("?") and clean_text(s) == s
    ]
    words = sorted({w for w in re.findall(r"[a-zA-Z]{4,}", text)})
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for f in range(0, units, per_file):
        lines = [f"# Synthetic FAQ {f // per_file}\n"]
        for i in range(f, min(f + per_file, units)):
            q = " ".join(rng.sample(words, 6))
            answer = " ".join(rng.sample(sentences, 3))
            lines.append(f"### {i + 1}. How do I {q}?\n\n{answer}\n")
            n += 1
        (folder / f"synthetic-{f // per_file:03d}.md").write_text("\n".join(lines), encoding="utf-8")
    return n


def bench_retrieval(settings: Any, synthetic_units: int = 10_000, repeat: int = 3) -> dict[str, Any]:
    """Ingest throughput and query latency on the real corpus and on a synthetic corpus."""
    from assistant.core import Assistant
    from assistant.knowledge.embedder import Embedder

    embedder = Embedder(
        settings.embedder, settings.embedder_device, settings.embed_batch_size, stamp_dir=settings.cache_dir
    )
    queries = [g["question"] for g in load_jsonl(GOLDSET_DIR / "retrieval.jsonl")]
    out: dict[str, Any] = {"device": embedder.device}
    with tempfile.TemporaryDirectory() as tmp:
        s = settings.model_copy(
            update={"data_dir": Path(tmp) / "corpus", "chroma_url": None, "chroma_mode": "embedded"}
        )
        a = Assistant(s, embedder=embedder)
        report = a.ingest(rebuild=True)
        out["corpus"] = {
            "units": report.units,
            "vectors": report.vectors,
            "ingest_units_per_s": report.units / report.seconds,
            "ingest_s": report.seconds,
            **time_queries(a, queries, repeat),
        }
        if synthetic_units:
            cache = settings.data_dir / "bench" / f"synthetic-{synthetic_units}"
            docs = cache / "docs"
            if not docs.exists():
                synthetic_corpus(docs, synthetic_units)
            s = settings.model_copy(update={"data_dir": cache, "chroma_url": None, "chroma_mode": "embedded"})
            a = Assistant(s, embedder=embedder)
            report = a.ingest([docs], progress=True)  # incremental: a rerun reuses the stored vectors
            out["synthetic"] = {
                "units": a.retriever.unit_count(),
                "vectors": a.store.count(),
                **(
                    {"ingest_units_per_s": report.units / report.seconds, "ingest_s": report.seconds}
                    if report.units
                    else {}
                ),
                **time_queries(a, queries, repeat),
            }
    return out


# --------------------------------------------------------------------------------------------------
# Fusion: how the retrieval method was chosen, recomputed on the shipped index (`assistant bench fusion`)
# --------------------------------------------------------------------------------------------------


def bench_fusion(assistant: Any, rrf_k: int = 60) -> dict[str, dict[str, float]]:
    """hit@1 on each retrieval goldset for the fusion variants of docs/benchmarks.md.

    Every vector of the (small) index is scored, so each variant's per-unit best cosine is exact:
    `pieces` uses only the answer pieces, `+question key` adds the question-only vector, `shipped`
    adds the per-sentence keys too (what search uses)."""
    from assistant.measure.evaluation import is_gold

    r, s = assistant.retriever, assistant.settings
    r._current()  # build the snapshot (BM25) before timing anything
    units = {u["unit_id"]: u for u in r.units()}
    total = assistant.store.count()

    def vector_best(query: str, roles: tuple[str, ...]) -> dict[str, float]:
        got = assistant.store.collection.query(
            query_embeddings=[assistant.embedder.embed_query(query).tolist()],
            n_results=total,
            include=["distances"],
        )
        best: dict[str, float] = {}
        for rid, dist in zip(got["ids"][0], got["distances"][0], strict=True):
            uid, _generation, role = rid.rsplit(":", 2)  # <unit>:<generation>:<role><i>
            if role in roles or role[0] in roles:
                best[uid] = max(best.get(uid, -1.0), 1.0 - float(dist))
        return best

    def weighted(vec: dict[str, float], bm: dict[str, float], wv: float, wb: float) -> list[str]:
        top = max(bm.values(), default=0.0) or 1.0
        return sorted(vec, key=lambda u: -(wv * vec[u] + wb * bm.get(u, 0.0) / top))

    def rrf(vec: dict[str, float], bm: dict[str, float]) -> list[str]:
        score: dict[str, float] = {}
        for ranking in (sorted(vec, key=lambda u: -vec[u]), sorted(bm, key=lambda u: -bm[u])):
            for i, u in enumerate(ranking):
                score[u] = score.get(u, 0.0) + 1 / (rrf_k + i + 1)
        return sorted(score, key=lambda u: -score[u])

    wv, wb = s.vector_weight, s.bm25_weight
    variants = {
        "pieces, vector only": lambda v, b: sorted(v["p"], key=lambda u: -v["p"][u]),
        f"pieces, RRF (k={rrf_k}) of vector and BM25": lambda v, b: rrf(v["p"], b),
        f"pieces, {wv} x cosine + {wb} x BM25/max": lambda v, b: weighted(v["p"], b, wv, wb),
        "+ question key (weighted)": lambda v, b: weighted(v["pq"], b, wv, wb),
        "+ question and sentence keys (shipped)": lambda v, b: weighted(v["all"], b, wv, wb),
        "shipped keys, vector only": lambda v, b: sorted(v["all"], key=lambda u: -v["all"][u]),
        f"shipped keys, RRF (k={rrf_k})": lambda v, b: rrf(v["all"], b),
        "shipped keys, 0.7 x cosine + 0.3 x BM25/max": lambda v, b: weighted(v["all"], b, 0.7, 0.3),
        "shipped keys, 0.9 x cosine + 0.1 x BM25/max": lambda v, b: weighted(v["all"], b, 0.9, 0.1),
        "BM25 only": lambda v, b: sorted(b, key=lambda u: -b[u]),
    }
    out: dict[str, dict[str, float]] = {name: {} for name in variants}
    for goldset in ("retrieval.jsonl", "retrieval_heldout.jsonl"):
        items = load_jsonl(GOLDSET_DIR / goldset)
        hits = dict.fromkeys(variants, 0)
        for item in items:
            q = item["question"]
            vec = {
                "p": vector_best(q, ("p",)),
                "pq": vector_best(q, ("p", "k0")),
                "all": vector_best(q, ("p", "k")),
            }
            snap = r._current()
            bm = {u: v[0] for u, v in r._bm25_scores(snap, q, len(snap.pieces)).items()}
            for name, rank in variants.items():
                ranking = [u for u in rank(vec, bm) if u in units]
                hits[name] += bool(ranking) and is_gold(SimpleNamespace(**units[ranking[0]]), item["gold"])
        for name in variants:
            out[name][goldset] = round(hits[name] / len(items), 3)
    return out
