"""Does a passage state what an answer sentence says? A check of meaning, not of topic.

The older check (citations.SupportChecker: the best of cosine and word overlap with one passage
sentence) measures whether a sentence is *about* the passage: a sentence that contradicts its passage
but shares its words passes. This one combines:

- the model's own reading: the LLM is asked "does the passage state this?" (prompts/entail.txt) and its
  probability of "yes" against "no" is read from one batched forward pass, no generation (a remote
  server through `logprobs`, where it gives them);
- what the sentence adds: the share of its content words the passage lacks, numbers it does not
  contain, a negation one has and the other not, and the closeness in meaning of the nearest passage
  sentence.

A logistic regression over those features was fitted on the tuning half of labelled (sentence,
passage) pairs from real answers (tests/goldsets/entailment, `assistant eval checker --fit`); its
weights are data, in entailment_weights.json next to this file. A sentence is *stated* when the
probability reaches `entail_threshold`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.knowledge.retrieval import tokenize

WEIGHTS = Path(__file__).with_name("entailment_weights.json")

_NEGATION = re.compile(r"\b(?:not|no|never|none|nothing|without|cannot|neither|nor)\b|n't\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")

# The feature names, in the order the weights file lists their coefficients.
FEATURES = ("yes", "closest", "missing", "missing_count", "numbers", "negation")


@dataclass
class Verdict:
    probability: float  # that the passage states the sentence
    stated: bool
    features: dict[str, float]


def features(sentence: str, passage: str, closest: float, p_yes: float | None) -> dict[str, float]:
    """What the check reads from one pair; `closest` is the best cosine with a passage sentence."""
    words = set(tokenize(sentence))
    passage_words = set(tokenize(passage))
    missing = words - passage_words
    numbers = set(_NUMBER.findall(sentence)) - set(_NUMBER.findall(passage))
    negated = bool(_NEGATION.search(sentence))
    return {
        "yes": float("nan") if p_yes is None else _logit(p_yes),
        "closest": closest,
        "missing": len(missing) / len(words) if words else 0.0,
        "missing_count": float(min(len(missing), 8)),
        "numbers": float(len(numbers)),
        "negation": float(negated and not _NEGATION.search(passage)),
    }


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


class EntailmentChecker:
    """Scores (sentence, passage) pairs. `yes_probabilities` is the LLM's reader (or None: features alone);
    `embed` is the embedder's, for the closest passage sentence."""

    def __init__(
        self,
        embed: Callable[[list[str]], Any],
        passage_sentences: Callable[[str], tuple[list[tuple[int, int]], np.ndarray, Any]],
        ask: Callable[[list[tuple[str, str]]], list[float] | None] | None,
        settings: Any,
        weights: dict[str, Any] | None = None,
    ):
        self.embed = embed
        self.passage_sentences = passage_sentences
        self.ask = ask
        self.settings = settings  # entail_threshold, read at each check
        self.weights = weights if weights is not None else load_weights()

    def excerpt(self, sentence_vec: np.ndarray, passage: str, keep: int = 3) -> tuple[str, float]:
        """The `keep` passage sentences closest to the sentence, in passage order (what the model reads:
        a few sentences, not a page), and the best cosine."""
        spans, vecs, _ = self.passage_sentences(passage)
        sims = vecs @ sentence_vec
        top = sorted(int(i) for i in np.argsort(-sims)[:keep])
        return " ".join(passage[spans[i][0] : spans[i][1]].strip() for i in top), float(sims.max())

    def score(self, pairs: list[tuple[str, str]]) -> list[Verdict]:
        """A verdict per (sentence, passage) pair; the LLM reads all of them in one batch."""
        if not pairs:
            return []
        vecs = np.asarray(self.embed([s for s, _ in pairs]))
        excerpts = [self.excerpt(v, p) for v, (_, p) in zip(vecs, pairs, strict=True)]
        closest = [c for _, c in excerpts]
        asked = None
        if self.ask is not None:
            asked = self.ask([(s, e) for (s, _), (e, _) in zip(pairs, excerpts, strict=True)])
        verdicts = []
        for i, (sentence, passage) in enumerate(pairs):
            f = features(sentence, passage, closest[i], asked[i] if asked is not None else None)
            p = probability(f, self.weights)
            verdicts.append(Verdict(p, p >= self.settings.entail_threshold, f))
        return verdicts


def probability(f: dict[str, float], weights: dict[str, Any]) -> float:
    """The fitted model for the features at hand: with the LLM's reading, or without it."""
    model = weights["without_llm"] if math.isnan(f["yes"]) else weights["with_llm"]
    z = model["intercept"] + sum(model["coef"][name] * f[name] for name in model["coef"])
    return 1 / (1 + math.exp(-z))


def load_weights(path: Path = WEIGHTS) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
