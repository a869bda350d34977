"""Which training problem a question describes, in the documents' words, and whether the documents
treat it at all.

People describe what they see ("99% on train, 60% on test", "CUDA out of memory at batch size 2");
the documents name the concept ("overfitting", "training takes too much RAM"). prompts/concepts.txt
lists each problem with a few symptom sentences and the words the documents use for it. A question
close in meaning to a problem's symptoms (the embedder's cosine, `concept_similarity`) is also
searched with those words (multi-query: each unit keeps its best relevance), at the cost of one more
embedding and search (milliseconds).

The same match decides, with the best source's relevance, whether the documents cover a question. A
source at `covered_relevance` or above covers it whatever the match (a document you added on another
subject, a question in the documents' own words). Below that, a question that is close to no problem
they treat (`abstain_concept_floor`), or that is about a library's own error, option or file (a quoted
error, `torch.cuda.is_available()`, `--flag`, `libcudnn.so`) and only loosely about a problem they
treat (`abstain_specific_below`), is declined without asking the model: the documents give general
advice, not that library's manual.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# What marks a question about one library's error, option, file or version.
_SPECIFIC = [
    re.compile(p)
    for p in (
        r"\b\w+(?:Error|Exception)\b",
        r"\berror:",
        r"Traceback",
        r"killed by signal",
        r"\b\w+\.\w+\(",  # a call: torch.cuda.is_available(
        r"\b[a-z]+_[a-z_]+\b",  # an identifier: num_workers, validation_split
        r"--\w+",  # a command-line flag
        r"\.(?:so|py|h5|pt|cpp|sh)\b",  # a file
        r"\b\d+\.\d+\.\d+\b",  # a version
        r"\bcu\d{2,3}\b",  # a CUDA build
        r"\"[^\"]{20,}\"",  # a quoted message
        r"'[^']{20,}'",
    )
]


@dataclass
class Concept:
    name: str
    symptoms: list[str] = field(default_factory=list)
    search: str = ""


def load_concepts(path: Path) -> list[Concept]:
    concepts: list[Concept] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            concepts.append(Concept(line[1:-1].strip()))
        elif concepts and line.startswith("symptom:"):
            concepts[-1].symptoms.append(line.split(":", 1)[1].strip())
        elif concepts and line.startswith("search:"):
            concepts[-1].search = line.split(":", 1)[1].strip()
    return [c for c in concepts if c.symptoms and c.search]


def specificity(question: str) -> int:
    """How many marks of a library's own error, option, file or version the question holds."""
    return sum(len(p.findall(question)) for p in _SPECIFIC)


@dataclass
class Match:
    concept: Concept | None
    similarity: float  # best cosine with the concept's symptom sentences (0 when there are none)
    specific: int


class Coverage:
    """The concept vocabulary, embedded once (lazily, on the first question)."""

    def __init__(self, embedder: Any, settings: Any) -> None:
        self.embedder = embedder
        self.settings = settings
        self._lock = threading.Lock()
        self._concepts: list[Concept] | None = None
        self._vectors: np.ndarray | None = None
        self._owner: list[int] = []

    def _load(self) -> None:
        with self._lock:
            if self._concepts is not None:
                return
            path = Path(self.settings.prompts_dir) / "concepts.txt"
            concepts = load_concepts(path) if path.exists() else []
            sentences = [(i, s) for i, c in enumerate(concepts) for s in c.symptoms]
            self._owner = [i for i, _ in sentences]
            self._vectors = np.asarray(self.embedder.embed([s for _, s in sentences])) if sentences else None
            self._concepts = concepts

    def match(self, question: str) -> Match:
        self._load()
        spec = specificity(question)
        if not self._concepts or self._vectors is None:
            return Match(None, 0.0, spec)
        sims = self._vectors @ np.asarray(self.embedder.embed([question]))[0]
        best = int(np.argmax(sims))
        return Match(self._concepts[self._owner[best]], float(sims[best]), spec)

    def queries(self, question: str, match: Match) -> list[str]:
        """The question, and (when it describes a problem) the question in the documents' words."""
        return [question, *(f"{question} {words}" for words in self.wording(match))]

    def wording(self, match: Match) -> list[str]:
        """The documents' words for the problem a question describes (its `match`), if it describes one."""
        if match.concept is None or match.similarity < self.settings.concept_similarity:
            return []
        return [match.concept.search]

    def covered(self, match: Match, relevance: float) -> bool:
        """Whether the documents treat the question: a source relevant enough, and a problem they treat
        (a library's own error needs a close one)."""
        s = self.settings
        if relevance < s.min_relevance:
            return False
        if relevance >= s.covered_relevance or not self._concepts:  # a passage this close answers it
            return True
        if match.similarity < s.abstain_concept_floor:
            return False
        return not (match.specific and match.similarity < s.abstain_specific_below)
