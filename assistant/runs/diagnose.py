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

from assistant.runs.compare import Comparison, compare
from assistant.runs.detect import Finding, detect
from assistant.runs.parse import Limits, Run, parse_run
from assistant.runs.parse.table import DEFAULT_LIMITS
from assistant.runs.plot import plot_compare, plot_run

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
    draw: bool = True,
) -> Diagnosis:
    """Parse (unless given a Run), detect, draw (unless `draw` is off and no `plot_path` is asked for)
    and (with `ask`) answer. A bad log raises RunParseError before any LLM call."""
    run = source if isinstance(source, Run) else parse_run(source, limits=limits)
    findings = detect(run)
    asked = build_question(findings, question, prompts_dir)
    png = plot_run(run, findings, plot_path) if draw or plot_path else b""
    answer = ask(asked) if ask is not None else None
    return Diagnosis(run, findings, asked, answer, png, str(plot_path) if plot_path else None)


def build_compare_question(comparison: Comparison, question: str | None, prompts_dir: Path) -> str:
    """Each run's symptoms in plain words (named), how they compare, then the user's question or the
    default one for two runs."""
    symptoms = load_symptoms(prompts_dir)
    said = []
    for name, findings in zip(comparison.names, comparison.findings, strict=True):
        problems = [f for f in findings if f.kind != "healthy"]
        if problems and problems[0].kind in symptoms:
            said.append(f"In run {name}: {_fill(symptoms[problems[0].kind], problems[0].details)}")
    asked = (question or "").strip() or symptoms.get("question_compare", symptoms.get("question", ""))
    return " ".join(s for s in [*said, *comparison.summary[-1:], asked] if s)


@dataclass
class PairDiagnosis:
    """Two runs compared: what each shows, which is better and where they part, the question asked of
    the documents, the answer and one picture of both."""

    runs: tuple[Run, Run]
    comparison: Comparison
    question: str
    answer: Any = None
    png: bytes = b""
    plot_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [
                Diagnosis(run, list(fs), "").to_dict()["run"]
                for run, fs in zip(self.runs, self.comparison.findings, strict=True)
            ],
            "comparison": self.comparison.to_dict(),
            "question": self.question,
            "answer": self.answer.to_dict() if self.answer is not None else None,
            "plot": self.plot_path,
        }

    def summary(self) -> str:
        return " ".join(self.comparison.summary)

    def attachment(self) -> dict[str, Any]:
        """As a chat keeps it: shaped like one run's attachment (name, findings, picture) so it renders
        and saves the same way; each finding names its run."""
        a, b = self.runs
        findings = [
            {**f.to_dict(), "evidence": f"{name}: {f.evidence}"}
            for name, fs in zip(self.comparison.names, self.comparison.findings, strict=True)
            for f in fs
        ]
        return {
            "name": f"{a.name} vs {b.name}",
            "format": "two runs compared",
            "rows": len(a) + len(b),
            "epochs": None,
            "metrics": [self.comparison.metric] if self.comparison.metric else [],
            "notes": a.notes + b.notes,
            "findings": findings,
            "comparison": self.comparison.summary,
            "summary": self.summary(),
            "question": self.question,
            "plot_png": base64.b64encode(self.png).decode("ascii"),
        }


def diagnose_pair(
    first: str | Path | Run,
    second: str | Path | Run,
    question: str | None,
    ask: Callable[[str], Any] | None,
    *,
    prompts_dir: Path,
    limits: Limits = DEFAULT_LIMITS,
    plot_path: Path | None = None,
    draw: bool = True,
) -> PairDiagnosis:
    """Two logs compared (each parsed unless given a Run); a bad log raises RunParseError naming it,
    before any LLM call."""
    runs = tuple(src if isinstance(src, Run) else parse_run(src, limits=limits) for src in (first, second))
    if runs[0].name == runs[1].name:  # two files of the same name: told apart
        runs[0].name, runs[1].name = f"{runs[0].name} (1)", f"{runs[1].name} (2)"
    comparison = compare(runs[0], runs[1])
    asked = build_compare_question(comparison, question, prompts_dir)
    title = " ".join(comparison.summary[-1:])
    png = plot_compare(runs[0], runs[1], title, plot_path) if draw or plot_path else b""
    answer = ask(asked) if ask is not None else None
    return PairDiagnosis(
        (runs[0], runs[1]), comparison, asked, answer, png, str(plot_path) if plot_path else None
    )
