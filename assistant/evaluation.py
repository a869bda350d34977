"""Quality on the goldsets: retrieval hit@k and MRR (answer quality joins with the chain)."""

from __future__ import annotations

import json
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
