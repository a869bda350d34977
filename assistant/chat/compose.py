"""How an answer is put together from its sources.

A small model asked to write an answer from passages adds causes and fixes of its own and cites a
passage for them (issue 19: 6 wrong diagnoses in 16 symptom questions with the packaged 0.5B model).
So by default (`answer_style = "quoted"`) the sources speak for themselves:

1. the passage sentences closest in meaning to the question are quoted, verbatim, under the question
   their passage answers ("From “How can I handle overfitting…?” [1]:"), each cited: they are
   shown as soon as the sources are found, before the model has read anything;
2. the model then writes one sentence that relates them to the user's case (prompts/answer_quoted.txt);
   it is shown only if the entailment check finds it stated by the source it cites (chat/entailment.py).

With `answer_style = "free"` (a larger model) the model writes the whole answer, and every sentence is
checked the same way before it is shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from assistant.chat.chain import Source

# a list marker or heading hashes at the start of a passage sentence: "- ", "* ", "3. ", "### "
_LEAD = re.compile(r"^\s*(?:-(?=\s|\*\*)\s*|[*•]\s+|\d{1,2}[.)]\s+|#+\s*)")
# a sentence ends at . ! or ? before a space and a capital (or the line's end); not after "e.g."
_END = re.compile(r"[.!?](?=\s+[A-Z\"“(]|\s*$)")
_ABBREVIATION = re.compile(r"\b(?:e\.g|i\.e|etc|vs|cf|approx|incl|Dr|Mr|Ms|No)\.$", re.IGNORECASE)


def statements(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of a passage, line by line: a list item or a heading line is a
    sentence of its own, "e.g." and "i.e." end none."""
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text):
        start = line.start()
        for m in _END.finditer(line.group(0)):
            end = line.start() + m.end()
            if _ABBREVIATION.search(text[start:end]):
                continue
            if text[start:end].strip():
                spans.append((start, end))
            start = end
        if text[start : line.end()].strip():
            spans.append((start, line.end()))
    return [(a + len(text[a:b]) - len(text[a:b].lstrip()), b) for a, b in spans]


@dataclass
class Quote:
    k: int  # index of the source it comes from
    text: str  # as shown
    start: int  # character offsets in the source's text
    end: int
    score: float  # cosine with the question, less how far its source trails the first in relevance


def clean(sentence: str) -> str:
    """A passage sentence as a bullet: without its own list marker, on one line."""
    return " ".join(_LEAD.sub("", sentence.strip()).split())


def pick_quotes(
    question_vecs: np.ndarray,
    sources: list[Source],
    embed: Callable[[list[str]], Any],
    *,
    count: int,
    margin: float,
    max_sources: int = 2,
    first_bonus: float = 0.05,
    min_words: int = 4,
) -> list[Quote]:
    """Up to `count` passage sentences closest to the question (the best cosine over `question_vecs`,
    the question and its wording in the documents' terms), within `margin` of the best; from at most
    `max_sources` sources, the first one always; no two sentences saying nearly the same thing.
    Returned in reading order: by source, then by place in the passage."""
    candidates: list[Quote] = []
    vectors: list[np.ndarray] = []
    for k, src in enumerate(sources):
        spans = [
            (a, b)
            for a, b in statements(src.text)
            # a heading or an introduction ("Here are some steps:") says nothing by itself
            if len(clean(src.text[a:b]).split()) >= min_words and not src.text[a:b].rstrip().endswith(":")
        ]
        if not spans:
            continue
        vecs = np.asarray(embed([clean(src.text[a:b]) for a, b in spans]))
        sims = (vecs @ question_vecs.T).max(axis=1)
        for (a, b), sim, vec in zip(spans, sims, vecs, strict=True):
            # a less relevant source's sentences count for less; the first source's come first
            # among equals: it is the unit the question is about
            score = float(sim) + (src.score - sources[0].score) + (first_bonus if k == 0 else 0.0)
            candidates.append(Quote(k, clean(src.text[a:b]), a, b, score))
            vectors.append(vec)
    if not candidates:
        return []
    order = sorted(range(len(candidates)), key=lambda i: -candidates[i].score)
    if candidates[order[0]].k != 0:  # the best source always speaks, with its closest sentence
        first = next((i for i in order if candidates[i].k == 0), None)
        if first is not None:
            order.remove(first)
            order.insert(0, first)
    floor = max(c.score for c in candidates) - margin
    chosen: list[int] = []
    for i in order:
        q = candidates[i]
        if len(chosen) == count:
            break
        if chosen and q.score < floor:
            continue
        if len({candidates[j].k for j in chosen} | {q.k}) > max_sources:
            continue
        if any(float(vectors[i] @ vectors[j]) > 0.9 for j in chosen):  # says the same again
            continue
        chosen.append(i)
    return sorted((candidates[i] for i in chosen), key=lambda q: (q.k, q.start))


def quoted_text(quotes: list[Quote], sources: list[Source], heading: Any, number: dict[int, int]) -> str:
    """The quotes as Markdown bullets grouped under their passage's question; `number` maps a source's
    index to the number it is shown with (filled in first-use order)."""
    blocks: list[str] = []
    for k in dict.fromkeys(q.k for q in quotes):
        n = number.setdefault(k, len(number) + 1)
        lines = [heading.format(title=" ".join(sources[k].title.split()), n=n)]
        lines += [f"- {q.text} [{n}]" for q in quotes if q.k == k]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
