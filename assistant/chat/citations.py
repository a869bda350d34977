"""Citation text handling: [n] markers (while streaming and after), sentences, and how well a
passage supports a claim. Deciding which marker stands is the chain's (`RagChain.finalize`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from assistant.knowledge.retrieval import tokenize

if TYPE_CHECKING:
    from assistant.knowledge.embedder import Embedder

MARKER = re.compile(  # [1], [1, 2], [Source 1]
    r"[ \t]?\[(?:(?:source|src|doc|ref)\s*)?(\d{1,3}(?:\s*[,;]\s*(?:(?:source|src|doc)\s*)?\d{1,3})*)\]",
    re.IGNORECASE,
)
LEADING_MARKER = re.compile(r"(?m)^\[(\d{1,3})\]\s*(.+?)([.!?])(\s|$)")  # "[1] Claim." -> "Claim. [1]"
_OPEN_MARKER = re.compile(r"[ \t]?\[[\w\s,;]{0,14}$")
_SENTENCE_END = re.compile(r"(?<=[.!?])(?:\s*\[\d+\])*(?:\s+|$)|\n+")


class CitationRewriter:
    """Rewrites [n] markers while text streams: numbers with no source are dropped, the rest are
    renumbered by first use. Holds back only a possibly unfinished "[…" at the end of the buffer."""

    def __init__(self, n_sources: int):
        self.n_sources = n_sources
        self.order: dict[int, int] = {}  # model's number -> number shown
        self.buffer = ""

    def _replace(self, match: re.Match[str]) -> str:
        nums = [int(x) for x in re.findall(r"\d+", match.group(1))]
        shown = []
        for n in nums:
            if 1 <= n <= self.n_sources:
                shown.append(self.order.setdefault(n, len(self.order) + 1))
        lead = " " if match.group(0).startswith(" ") else ""
        return lead + "".join(f"[{k}]" for k in dict.fromkeys(shown)) if shown else ""

    def feed(self, chunk: str) -> str:
        self.buffer += chunk
        hold = _OPEN_MARKER.search(self.buffer)
        cut = hold.start() if hold else len(self.buffer)
        ready, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return MARKER.sub(self._replace, ready)

    def flush(self) -> str:
        out, self.buffer = MARKER.sub(self._replace, self.buffer), ""
        return out


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, its trailing [n] markers included."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        end = m.start() + len(m.group(0).rstrip())
        if text[start:end].strip():
            spans.append((start, end))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return spans


def split_sentences(text: str) -> list[str]:
    return [text[a:b].strip() for a, b in sentence_spans(text)]


def cited_numbers(sentence: str) -> list[int]:
    return [int(n) for m in re.finditer(r"\[(\d+)\]", sentence) for n in [m.group(1)]]


def has_words(text: str) -> bool:
    """Whether `text` says anything besides [n] markers (an unfinished "[2" at the end included)."""
    return bool(re.search(r"\w", _OPEN_MARKER.sub("", MARKER.sub("", text))))


def strip_markers(sentence: str) -> str:
    return re.sub(r"\s?\[\d+\]", "", sentence).strip()


class SupportChecker:
    """How well a claim is supported by a passage, and where.

    Support is the best of: the cosine between the claim and a passage sentence, and (for claims of
    five or more content words, where word overlap means something) the share of the claim's content
    words found in one passage sentence. The span is the passage sentence with the highest cosine +
    overlap."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self._cache: dict[str, tuple[list[tuple[int, int]], np.ndarray, list[set[str]]]] = {}

    def passage(self, text: str) -> tuple[list[tuple[int, int]], np.ndarray, list[set[str]]]:
        if text not in self._cache:
            spans = [
                (m.start(), m.end()) for m in re.finditer(r"[^.!?\n]+[.!?]?", text) if m.group(0).strip()
            ]
            merged: list[tuple[int, int]] = []
            for a, b in spans:  # a sub-heading ("Start Small:") belongs to the sentence after it
                if merged and text[merged[-1][0] : merged[-1][1]].rstrip().endswith(":"):
                    merged[-1] = (merged[-1][0], b)
                else:
                    merged.append((a, b))
            spans = [s for s in merged if len(text[s[0] : s[1]].split()) >= 2] or [(0, len(text))]
            vecs = self.embedder.embed([text[a:b] for a, b in spans])
            if len(self._cache) > 512:
                self._cache.clear()
            self._cache[text] = (spans, vecs, [set(tokenize(text[a:b])) for a, b in spans])
        return self._cache[text]

    def check(
        self, sentence: str, passage: str, sentence_vec: np.ndarray | None = None
    ) -> tuple[float, tuple[int, int]]:
        """(support 0-1, (start, end) of the passage sentence that supports it best)."""
        spans, vecs, words = self.passage(passage)
        if sentence_vec is None:
            sentence_vec = self.embedder.embed([sentence])[0]
        scores = vecs @ sentence_vec
        content = set(tokenize(sentence))
        if len(content) >= 5:  # word overlap means something only for claims with enough content words
            overlap = np.array([len(content & w) / len(content) for w in words])
            best = int(np.argmax(scores + overlap))  # the span: close in meaning and in words
            return max(float(scores.max()), float(overlap.max())), spans[best]
        best = int(np.argmax(scores))
        return float(scores[best]), spans[best]


def with_marks(sentence: str, marks: str) -> str:
    """`Claim [1].`: markers go before the sentence's closing punctuation."""
    if not marks:
        return sentence
    if sentence[-1:] in ".!?:;":
        return f"{sentence[:-1].rstrip()} {marks}{sentence[-1]}"
    return f"{sentence} {marks}"
