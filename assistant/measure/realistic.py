"""Quality on what nobody here wrote, per half (tune / held-out), for `assistant eval answers` and
`assistant eval checker`:

- tests/goldsets/realistic: questions practitioners asked in forums and issue trackers, each mapped to
  the units that answer it (or marked near-miss: close to the documents, not answered by them) by two
  readers independently; retrieval hit@1/3 as the chain searches (with the problem vocabulary), and
  which questions it declines;
- tests/goldsets/entailment: (sentence, passage) pairs from real answers, labelled supported / partial
  / unsupported / contradicted by two readers; the check's precision and recall there;
- the answers themselves: of the sentences the model wrote, the share the check let through.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from assistant.measure.evaluation import GOLDSET_DIR, is_gold, load_jsonl

REALISTIC = GOLDSET_DIR / "realistic" / "questions.jsonl"
PAIRS = GOLDSET_DIR / "entailment" / "pairs.jsonl"
FAULTY = ("unsupported", "contradicted")  # what the check must catch


def realistic_questions(half: str, kind: str | None = None) -> list[dict[str, Any]]:
    return [q for q in load_jsonl(REALISTIC) if q["half"] == half and (kind is None or q["kind"] == kind)]


def eval_realistic_retrieval(assistant: Any, half: str) -> dict[str, Any]:
    """hit@1/3 of the chain's search on the answerable questions; declined answerable and near-miss."""
    chain = assistant.chain
    ranks: list[int | None] = []
    misses, declined, answered = [], [], []
    for q in realistic_questions(half):
        results, covered = chain.search_covered([q["question"]])
        if q["kind"] != "answerable":
            if covered:
                answered.append(q["id"])
            continue
        rank = next((i + 1 for i, r in enumerate(results) if is_gold(r, q["gold"])), None)
        ranks.append(rank)
        if not covered:
            declined.append(q["id"])
        if not rank or rank > 3:
            misses.append({"id": q["id"], "rank": rank, "question": q["question"][:120]})
    near = len(realistic_questions(half, "near-miss"))
    return {
        "answerable": len(ranks),
        "hit@1": sum(1 for r in ranks if r == 1) / max(len(ranks), 1),
        "hit@3": sum(1 for r in ranks if r and r <= 3) / max(len(ranks), 1),
        "answerable_declined": declined,
        "near_miss": near,
        "near_miss_declined": near - len(answered),
        "near_miss_answered": answered,
        "misses": misses,
    }


def labelled_pairs(half: str | None = None) -> list[dict[str, Any]]:
    """The pairs both readers labelled alike (`label`), of one half or all."""
    return [p for p in load_jsonl(PAIRS) if p.get("label") and (half is None or p["half"] == half)]


def pair_features(assistant: Any, pairs: list[dict[str, Any]]) -> list[dict[str, float]]:
    """The check's features for each pair (the LLM reads them in batches)."""
    checker = assistant.chain.entailment
    out: list[dict[str, float]] = []
    for i in range(0, len(pairs), 16):
        chunk = pairs[i : i + 16]
        out += [v.features for v in checker.score([(p["sentence"], p["passage"]) for p in chunk])]
    return out


def confusion(labels: list[str], stated: list[bool]) -> dict[str, Any]:
    """Rejected = not stated. Recall: faulty (unsupported, contradicted) pairs rejected; precision:
    rejected pairs that are not supported (partial counts as rightly rejected: it adds something)."""
    rejected = [lab for lab, ok in zip(labels, stated, strict=True) if not ok]
    faulty = [lab for lab in labels if lab in FAULTY]
    return {
        "pairs": len(labels),
        "by_label": {lab: labels.count(lab) for lab in sorted(set(labels))},
        "rejected": len(rejected),
        "recall_faulty": sum(lab in FAULTY for lab in rejected) / max(len(faulty), 1),
        "precision": sum(lab != "supported" for lab in rejected) / max(len(rejected), 1),
        "partial_rejected": sum(lab == "partial" for lab in rejected),
        "supported_rejected": sum(lab == "supported" for lab in rejected),
    }


def eval_checker(assistant: Any, half: str) -> dict[str, Any]:
    from assistant.chat.entailment import probability

    pairs = labelled_pairs(half)
    feats = pair_features(assistant, pairs)
    weights = assistant.chain.entailment.weights
    tau = assistant.settings.entail_threshold
    probs = [probability(f, weights) for f in feats]
    out = confusion([p["label"] for p in pairs], [x >= tau for x in probs])
    no_llm = {**weights, "with_llm": weights["without_llm"]}
    out["without_llm"] = confusion(
        [p["label"] for p in pairs],
        [probability({**f, "yes": math.nan}, no_llm) >= tau for f in feats],
    )
    out["threshold"] = tau
    return out


def fit_checker(assistant: Any, out: Path) -> dict[str, Any]:
    """Fit the check's logistic regressions (with and without the LLM's reading) on the tuning half
    and write them to `out`; returns the weights and the threshold that keeps recall of faulty pairs
    ≥ 0.9 with the best precision on that half."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from assistant.chat.entailment import FEATURES

    pairs = labelled_pairs("tune")
    feats = pair_features(assistant, pairs)
    y = np.array([p["label"] == "supported" for p in pairs], dtype=int)
    weights: dict[str, Any] = {
        "fitted_on": f"{len(pairs)} labelled pairs, tuning half of tests/goldsets/entailment "
        f"({time.strftime('%Y-%m-%d')}; `assistant eval checker --fit`)"
    }
    for name, names in (("with_llm", FEATURES), ("without_llm", FEATURES[1:])):
        x = np.array([[f[n] for n in names] for f in feats])
        model = LogisticRegression(class_weight="balanced", C=1.0, max_iter=1000).fit(x, y)
        weights[name] = {
            "intercept": round(float(model.intercept_[0]), 4),
            "coef": {n: round(float(c), 4) for n, c in zip(names, model.coef_[0], strict=True)},
        }
    from assistant.chat.entailment import probability

    probs = [probability(f, weights) for f in feats]
    labels = [p["label"] for p in pairs]
    best = (0.0, 0.5)
    for tau in np.arange(0.05, 0.96, 0.01):
        c = confusion(labels, [x >= tau for x in probs])
        if c["recall_faulty"] >= 0.9 and c["precision"] > best[0]:
            best = (c["precision"], round(float(tau), 2))
    weights["threshold"] = best[1]
    out.write_text(json.dumps(weights, indent=2) + "\n", encoding="utf-8")
    return weights


def eval_written(assistant: Any, half: str, dump: Path | None = None) -> dict[str, Any]:
    """Answer the half's answerable questions; of the sentences the model wrote, how many the check let
    through. `dump` gets every answer (for an independent judge)."""
    from assistant.chat.answer import Answer

    shown = left = 0
    first_token: list[float] = []
    rows = []
    for q in realistic_questions(half, "answerable"):
        ans = None
        for item in assistant.chain.stream(q["question"]):
            if isinstance(item, Answer):
                ans = item
        assert ans is not None
        shown += ans.checked
        left += len(ans.left_out)
        first_token.append(ans.timings.get("first_token_ms", 0.0))
        rows.append(
            {
                "id": q["id"],
                "question": q["question"],
                "answer": ans.answer,
                "left_out": ans.left_out,
                "abstained": ans.abstained,
                "sources": [{"n": s.n, "title": s.title, "text": s.text} for s in ans.sources],
            }
        )
    if dump:
        dump.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    first_token.sort()
    return {
        "answers": len(rows),
        "written_shown": shown,
        "written_left_out": left,
        "accepted_share": shown / max(shown + left, 1),
        "first_token_ms_median": first_token[len(first_token) // 2] if first_token else 0.0,
    }
