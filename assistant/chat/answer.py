"""What a turn returns: the answer, its numbered sources, and what the checks found; and the one
shape it takes as data for a client (`/v1` and the MCP tools both return `extras`)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from assistant.knowledge.retrieval import document_url

FOOTER = "\n\n**Sources**\n"
_FOOTER_RE = re.compile(r"\n\n\*\*Sources\*\*\n(?:- \[\d+\] .*(?:\n|$))+\Z")


@dataclass
class Source:
    n: int  # the number the answer cites it by
    unit_id: str
    source: str  # file
    doc_title: str
    title: str  # the question the passage answers
    text: str  # the passage the model was given
    score: float  # retrieval relevance
    span: str = ""  # the part of the passage that best supports the sentence citing it
    span_start: int = -1  # character offsets of the span in `text`
    span_end: int = -1
    support: float | None = None  # how well it supports the sentences citing it (0-1)
    doc: str = ""  # the document's index id: `GET /documents/{doc}` downloads it whole


@dataclass
class Answer:
    answer: str
    standalone_question: str
    abstained: bool
    sources: list[Source] = field(default_factory=list)  # cited, numbered by first use
    consulted: list[Source] = field(default_factory=list)  # given to the model but not cited
    unsupported: list[dict[str, Any]] = field(default_factory=list)  # cited sentences their source lacks
    # sentences the model wrote that no source states (chat/entailment.py): never shown
    left_out: list[dict[str, Any]] = field(default_factory=list)
    checked: int = 0  # sentences the model wrote that passed the check, shown
    notices: list[str] = field(default_factory=list)
    rewritten: bool = False
    citations_added: bool = False  # the model wrote no marker; they were attributed afterwards
    corrected: int = 0  # markers re-pointed to the source that actually supports the sentence
    retried: bool = False  # the first reply was source numbers alone, so the model was asked again
    no_text: bool = False  # the model wrote nothing but markers (even when asked again)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sources_of(answer: Answer) -> list[dict[str, Any]]:
    return [
        {
            "n": s.n,
            "file": s.source,
            "question": s.title,
            "passage": s.text,
            "span": s.span,
            "span_start": s.span_start,
            "span_end": s.span_end,
            "score": s.score,
            "unit_id": s.unit_id,
            "document": document_url(s.doc) if s.doc else None,
        }
        for s in answer.sources
    ]


def footer(answer: Answer) -> str:
    if not answer.sources:
        return ""
    return FOOTER + "\n".join(f"- [{s.n}] {s.source}: {' '.join(s.title.split())}" for s in answer.sources)


def extras(answer: Answer) -> dict[str, Any]:
    return {
        "sources": sources_of(answer),
        "abstained": answer.abstained,
        "notices": answer.notices,
        # sentences the model wrote that no source states: left out of the answer (README, Answers)
        "left_out": [u["sentence"] for u in answer.left_out],
        "rewritten_question": answer.standalone_question if answer.rewritten else None,
        "stopped": "Stopped." in answer.notices,
    }


def strip_footer(text: str) -> str:
    """An answer as the model wrote it: the Sources footer this API may have added is not history."""
    return _FOOTER_RE.sub("", text)
