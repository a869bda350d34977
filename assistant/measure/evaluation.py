"""Quality on the goldsets: retrieval hit@k and MRR (answer quality joins with the chain)."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
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
# Answers: follow-ups, citations, abstention, latency (runs the real LLM)
# --------------------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def citation_precision(cited_gold: list[tuple[int, int]]) -> float:
    """Mean over answers that cite something of (cited sources that are gold) / (cited sources).

    The one definition: `eval answers` prints it and writes it to JSON under this name."""
    shares = [gold / cited for gold, cited in cited_gold if cited]
    return statistics.fmean(shares) if shares else 0.0


DEFINITIONS = {
    "cite_gold": "share of answers citing at least one gold unit (an answer of source numbers alone "
    "counts as not citing)",
    "no_text": "answers with no text besides source numbers, after the one retry",
    "retried": "answers whose first reply was source numbers alone, so the model was asked once more",
    "citation_precision": "mean, over answers citing something, of (cited sources that are gold) / "
    "(cited sources)",
    "support": "best of: cosine of the sentence with one source sentence; for 5+ content words, the share "
    "of them found in one source sentence",
    "unsupported": "a cited sentence whose best source support is below support_threshold",
    "abstain": "the best source's relevance is below min_relevance (no LLM call)",
}


# --------------------------------------------------------------------------------------------------
# Abstention: where `min_relevance` sits between answerable and unanswerable questions (no LLM)
# --------------------------------------------------------------------------------------------------

# Each split pairs answerable questions with off-topic ones: far off ("kind": "far": recipes, sport)
# and near-domain questions the documents do not answer ("kind": "near": CUDA installs, RLHF, …).
# The threshold is read off the tuning split; the held-out split only reports.
ABSTENTION_SPLITS = {
    "tuning": ("retrieval.jsonl", "offtopic.jsonl"),
    "held-out": ("retrieval_heldout.jsonl", "offtopic_heldout.jsonl"),
}


def distribution(values: list[float]) -> dict[str, float]:
    """n, min, 10/25/50/75/90% quantiles, max."""
    if not values:
        return {"n": 0}
    qs = statistics.quantiles(values, n=20, method="inclusive") if len(values) > 1 else [values[0]] * 19
    return {
        "n": len(values),
        "min": round(min(values), 3),
        "q10": round(qs[1], 3),
        "q25": round(qs[4], 3),
        "median": round(qs[9], 3),
        "q75": round(qs[14], 3),
        "q90": round(qs[17], 3),
        "max": round(max(values), 3),
    }


def suggest_min_relevance(answerable: list[float], unanswerable: list[float]) -> float:
    """The rule `min_relevance` was set by: the midpoint between the lowest answerable question's
    best relevance and the highest unanswerable one below it, so that no answerable (tuning)
    question is declined and as many unanswerable ones as that allows are."""
    low = min(answerable)
    below = [x for x in unanswerable if x < low]
    return round((low + max(below)) / 2, 3) if below else round(low, 3)


def eval_abstention(assistant: Any, threshold: float | None = None) -> dict[str, Any]:
    """Best-source relevance of every goldset question, per split and kind, against the threshold."""
    chain = assistant.chain
    threshold = assistant.settings.min_relevance if threshold is None else threshold

    def best(question: str) -> float:
        results = chain.retrieve([question])
        return results[0].relevance if results else 0.0

    out: dict[str, Any] = {"min_relevance": threshold}
    for split, (answerable_file, offtopic_file) in ABSTENTION_SPLITS.items():
        groups: dict[str, list[tuple[str, float]]] = {"answerable": [], "far": [], "near": []}
        for g in load_jsonl(GOLDSET_DIR / answerable_file):
            groups["answerable"].append((g["question"], best(g["question"])))
        for g in load_jsonl(GOLDSET_DIR / offtopic_file):
            groups[g.get("kind", "far")].append((g["question"], best(g["question"])))
        res: dict[str, Any] = {}
        for kind, rows in groups.items():
            wrong = [(q, x) for q, x in rows if (x < threshold) == (kind == "answerable")]
            res[kind] = {
                **distribution([x for _, x in rows]),
                "wrong_side": len(wrong),  # answerable declined, or off-topic answered
                "wrong": [
                    {"question": q, "relevance": round(x, 3)} for q, x in sorted(wrong, key=lambda r: r[1])
                ],
            }
        res["suggested_min_relevance"] = suggest_min_relevance(
            [x for _, x in groups["answerable"]], [x for k in ("far", "near") for _, x in groups[k]]
        )
        out[split] = res
    return out


def eval_answers(assistant: Any, limit: int | None = None, progress: Any = None) -> dict[str, Any]:
    """The issue-4 evaluation on the goldsets in tests/goldsets (see README, Answers)."""
    import random

    from assistant.chat.citations import cited_numbers, split_sentences, strip_markers

    chain = assistant.chain
    out: dict[str, Any] = {"model": assistant.llm.name, "device": assistant.llm.device}
    tick = progress or (lambda *_: None)

    # 1. Follow-ups: is the standalone question (and the chain's retrieval) on the gold unit? Three
    # sets: follow-ups with pronouns, implicit ones (no pronoun), and standalone topic switches
    # (which must cost no rewrite).
    def hits(ranks: list[int | None], k: int) -> float:
        return sum(1 for r in ranks if r and r <= k) / max(len(ranks), 1)

    implicit = load_jsonl(GOLDSET_DIR / "implicit_followups.jsonl")
    sets = {
        "follow_ups": load_jsonl(GOLDSET_DIR / "conversations.jsonl"),
        "implicit_follow_ups": [c for c in implicit if c["kind"] == "implicit"],
        "standalone_switches": [c for c in implicit if c["kind"] == "standalone"],
    }
    for name, convs in sets.items():
        conv_rows, chain_ranks, alone_ranks, naive_ranks, rewrite_ms = [], [], [], [], []
        for c in convs:
            history, question = c["turns"][:-1], c["turns"][-1]["content"]
            t = time.perf_counter()
            standalone, queries, rewritten = chain.standalone_queries(question, history)
            if rewritten:
                rewrite_ms.append((time.perf_counter() - t) * 1000)
            merged = chain.retrieve(queries)

            def rank(results: list[Any], gold: list[dict[str, str]] = c["gold"]) -> int | None:
                return next((i + 1 for i, r in enumerate(results) if is_gold(r, gold)), None)

            chain_ranks.append(rank(merged[:5]))
            alone_ranks.append(rank(assistant.search(standalone, k=5)))
            naive_ranks.append(rank(assistant.search(question, k=5)))
            conv_rows.append(
                {
                    "question": question,
                    "standalone": standalone,
                    "rewritten": rewritten,
                    "rank": chain_ranks[-1],
                }
            )
            tick(name.replace("_", " "), len(conv_rows), len(convs))
        out[name] = {
            "n": len(convs),
            "hit@1": hits(chain_ranks, 1),
            "hit@3": hits(chain_ranks, 3),
            "standalone_only_hit@1": hits(alone_ranks, 1),
            "standalone_only_hit@3": hits(alone_ranks, 3),
            "without_rewrite_hit@3": hits(naive_ranks, 3),
            "rewritten": sum(r["rewritten"] for r in conv_rows),
            "rewrite_ms_median": _median(rewrite_ms),
            "rows": conv_rows,
        }

    # 2. Single questions: do the answers cite a gold unit, and are their citations right?
    singles = load_jsonl(GOLDSET_DIR / "retrieval.jsonl")
    singles = singles[:: max(1, len(singles) // limit)][:limit] if limit else singles
    rows, cited_gold, precision, stage = (
        [],
        0,
        [],
        {"retrieve_ms": [], "first_token_ms": [], "total_ms": [], "tokens_per_s": []},
    )
    calibration = {"own": [], "other": []}
    rng = random.Random(0)
    all_units = [SimpleNamespace(**u) for u in assistant.retriever.units()]
    for item in singles:
        ans = assistant.ask(item["question"])
        # An answer of source numbers alone says nothing, whatever passage it is credited to.
        gold_hits = [] if ans.no_text else [s for s in ans.sources if is_gold(s, item["gold"])]
        cited_gold += bool(gold_hits)
        precision.append((len(gold_hits), len(ans.sources)))
        for key in stage:
            if key in ans.timings:
                stage[key].append(ans.timings[key])
        gold_text = next((s.text for s in ans.sources + ans.consulted if is_gold(s, item["gold"])), None)
        other = rng.choice([u for u in all_units if not is_gold(u, item["gold"])])
        for sentence in (strip_markers(x) for x in split_sentences(ans.answer)):
            if len(sentence.split()) >= 4 and gold_text:
                calibration["own"].append(chain.checker.check(sentence, gold_text)[0])
                calibration["other"].append(chain.checker.check(sentence, other.unit_text)[0])
        rows.append(
            {
                "question": item["question"],
                "answer": ans.answer,
                "abstained": ans.abstained,
                "cited": [s.title for s in ans.sources],
                "gold_cited": bool(gold_hits),
                "no_text": ans.no_text,
                "retried": ans.retried,
                "unsupported": len(ans.unsupported),
                "cited_sentences": sum(bool(cited_numbers(x)) for x in split_sentences(ans.answer)),
                "added": ans.citations_added,
                "corrected": ans.corrected,
            }
        )
        tick("question", len(rows), len(singles))
    out["answers"] = {
        "n": len(singles),
        "cite_gold": cited_gold / max(len(singles), 1),
        "citation_precision": citation_precision(precision),
        "no_text": sum(r["no_text"] for r in rows),
        "retried": sum(r["retried"] for r in rows),
        "unsupported": sum(r["unsupported"] for r in rows),
        "cited_sentences": sum(r["cited_sentences"] for r in rows),
        "rows": rows,
    }
    tau = assistant.settings.support_threshold
    out["support_calibration"] = {
        "support_threshold": tau,
        # support of answer sentences against their question's gold unit, and against a random other unit
        "own": distribution(calibration["own"]),
        "other": distribution(calibration["other"]),
        "own_below_threshold": sum(x < tau for x in calibration["own"]),
        "other_at_or_above_threshold": sum(x >= tau for x in calibration["other"]),
        "values": {k: [round(float(x), 3) for x in sorted(v)] for k, v in calibration.items()},
    }
    out["definitions"] = DEFINITIONS

    # 3. Abstention (retrieval only: no LLM call either way), with the distributions it is read from.
    out["abstention"] = eval_abstention(assistant)
    out["latency_ms"] = {k: _median(v) for k, v in stage.items()} | {"rewrite_ms": _median(rewrite_ms)}
    return out
