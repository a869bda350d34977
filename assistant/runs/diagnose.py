"""A diagnosis: parse the log, detect what the curves show, draw them, and ask the documents.

The question put to the retrieval chain is a plain-words description of the symptoms (one sentence
per finding kind, from prompts/symptoms.txt) followed by the user's own question, so retrieval finds
the units about that problem whatever the user typed. Answering goes through the caller's `ask`
(the Assistant's ordinary path), so citations, abstention and notices work as for any question.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.runs.detect import Finding, detect
from assistant.runs.parse import Limits, Run, parse_run
from assistant.runs.parse.table import DEFAULT_LIMITS
from assistant.runs.plot import plot_run

_CLAUSE = re.compile(r"\s*\([^()]*\{\w+\}[^()]*\)|\{\w+\}")  # `(around {at})` or a bare `{turn}`


def load_symptoms(prompts_dir: Path) -> dict[str, str]:
    path = prompts_dir / "symptoms.txt"
    if not path.exists():
        raise FileNotFoundError(f"prompt file {path} is missing")
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#") and ":" in line:
            key, text = line.split(":", 1)
            out[key.strip()] = text.strip()
    return out


def _fill(template: str, details: dict[str, Any]) -> str:
    """Fill {placeholders}; a bracketed clause whose placeholder the finding lacks is dropped."""

    def clause(m: re.Match[str]) -> str:
        text = m.group(0)
        names = re.findall(r"\{(\w+)\}", text)
        if any(details.get(n) is None for n in names):
            return ""
        for n in names:
            text = text.replace("{" + n + "}", str(details[n]))
        return text

    return _CLAUSE.sub(clause, template)


def build_question(findings: list[Finding], question: str | None, prompts_dir: Path) -> str:
    """The symptoms in plain words, then the user's question (or the default one)."""
    symptoms = load_symptoms(prompts_dir)
    kinds = list(dict.fromkeys(f.kind for f in findings))
    said = []
    for kind in kinds:
        first = next(f for f in findings if f.kind == kind)
        if kind in symptoms:
            said.append(_fill(symptoms[kind], first.details))
    asked = (question or "").strip() or symptoms.get(
        "question_healthy" if kinds == ["healthy"] else "question", ""
    )
    return " ".join(s for s in [*said, asked] if s)


@dataclass
class Diagnosis:
    run: Run
    findings: list[Finding]
    question: str  # what was asked of the documents
    answer: Any = None  # the chain's Answer
    png: bytes = b""
    plot_path: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        t = self.run.table
        return {
            "run": {
                "name": self.run.name,
                "format": self.run.fmt,
                "rows": len(t),
                "epochs": int(t["epoch"].max()) if self.run.has_epochs else None,
                "metrics": self.run.metrics,
                "notes": self.run.notes,
            },
            "findings": [f.to_dict() for f in self.findings],
            "question": self.question,
            "answer": self.answer.to_dict() if self.answer is not None else None,
            "plot": self.plot_path,
        }

    def summary(self) -> str:
        """The findings in one line, for the conversation's problem card ("overfitting: validation
        loss rises from epoch 6 …; plateau: …")."""
        return "; ".join(f"{f.kind}: {f.evidence}" for f in self.findings) or "no finding"

    def attachment(self) -> dict[str, Any]:
        """The run as a chat keeps it with the question (JSON-safe): what it is, the findings, the
        question asked of the documents, and the picture as base64 PNG (no file to lose)."""
        return {
            **self.to_dict()["run"],
            "findings": [f.to_dict() for f in self.findings],
            "summary": self.summary(),
            "question": self.question,
            "plot_png": base64.b64encode(self.png).decode("ascii"),
        }


def diagnose(
    source: str | Path | Run,
    question: str | None,
    ask: Callable[[str], Any] | None,
    *,
    prompts_dir: Path,
    limits: Limits = DEFAULT_LIMITS,
    plot_path: Path | None = None,
) -> Diagnosis:
    """Parse (unless given a Run), detect, draw and (with `ask`) answer. A bad log raises RunParseError
    before any LLM call."""
    run = source if isinstance(source, Run) else parse_run(source, limits=limits)
    findings = detect(run)
    asked = build_question(findings, question, prompts_dir)
    png = plot_run(run, findings, plot_path)
    answer = ask(asked) if ask is not None else None
    return Diagnosis(run, findings, asked, answer, png, str(plot_path) if plot_path else None)
