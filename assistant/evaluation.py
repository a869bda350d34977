"""Retrieval evaluation on a goldset and retrieval benchmarks (figures printed, never asserted on time)."""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.settings import PROJECT_DIR

GOLDSET_DIR = PROJECT_DIR / "tests" / "goldsets"


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def is_gold(result: Any, gold: list[dict[str, str]]) -> bool:
    """A gold unit is named by its file and the start of its question (robust to re-chunking)."""
    return any(
        result.source == g["source"] and result.title.lower().startswith(g["title"].lower()) for g in gold
    )


@dataclass
class RetrievalEval:
    n: int = 0
    ranks: list[int | None] = field(default_factory=list)  # 1-based rank of the first gold hit
    misses: list[dict[str, Any]] = field(default_factory=list)

    def hit_at(self, k: int) -> float:
        return sum(1 for r in self.ranks if r is not None and r <= k) / max(self.n, 1)

    @property
    def mrr(self) -> float:
        return sum(1 / r for r in self.ranks if r) / max(self.n, 1)

    def metrics(self) -> dict[str, float]:
        return {
            "n": self.n,
            "hit@1": self.hit_at(1),
            "hit@3": self.hit_at(3),
            "hit@5": self.hit_at(5),
            "mrr": self.mrr,
        }


def eval_retrieval(assistant: Any, goldset: list[dict[str, Any]], k: int = 5) -> RetrievalEval:
    ev = RetrievalEval()
    for item in goldset:
        results = assistant.search(item["question"], k=k)
        rank = next((i + 1 for i, r in enumerate(results) if is_gold(r, item["gold"])), None)
        ev.n += 1
        ev.ranks.append(rank)
        if rank != 1:
            ev.misses.append(
                {
                    "question": item["question"],
                    "rank": rank,
                    "gold": [g["title"] for g in item["gold"]],
                    "got": [r.title for r in results[:3]],
                }
            )
    return ev


# --------------------------------------------------------------------------------------------------
# Benchmarks
# --------------------------------------------------------------------------------------------------


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
    }


def synthetic_corpus(folder: Path, units: int, seed: int = 0, per_file: int = 500) -> int:
    """Write `units` Q&A pairs in the corpus' markdown FAQ format, recombined from real corpus sentences."""
    import re

    from assistant.corpus import clean_text

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
    from assistant.embedder import Embedder

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
