"""What each MCP tool does, whatever the transport: search, ask, diagnose a run, list documents, read a
unit. Results are pydantic models (their JSON schemas are the tools' output schemas); a request the
assistant refuses raises `Refused` with the message the UI or `/v1` gives for the same mistake.

An answer is shaped as `/v1` shapes it (chat/answer.py `extras`): the text with [n] markers, the cited
sources, whether it abstained, its notices. Every passage carries `uri` (`unit://<unit id>`), the
resource a client reads to open it.
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from assistant.chat.answer import Answer, extras, strip_footer
from assistant.chat.messages import message_text, too_long
from assistant.knowledge.retrieval import EmptyQueryError, document_url
from assistant.llm.errors import LLMError
from assistant.runs.diagnose import diagnose
from assistant.runs.parse import Limits, Run, RunParseError, parse_run

log = logging.getLogger(__name__)

UNIT_SCHEME = "unit"
EMPTY_QUESTION = "the question is empty: ask about training a model"
NO_LOG = "give the training log: its text as `log_text`, or (local server only) a file as `path`"


class Refused(ValueError):
    """A request the assistant turns down; the message is shown to the client as it is."""


def unit_uri(unit_id: str) -> str:
    return f"{UNIT_SCHEME}://{unit_id}"


# --- results (their JSON schemas are the tools' output schemas) ------------------------------------


class Passage(BaseModel):
    file: str = Field(description="The document the passage comes from.")
    doc_title: str = Field(description="The document's title.")
    question: str = Field(description="The question this Q&A unit answers.")
    passage: str = Field(description="The part of the answer that matched the query.")
    unit_id: str = Field(description="The unit's id: read the whole unit as the resource `uri`.")
    uri: str = Field(description="Resource URI of the whole unit (unit://<unit_id>).")
    relevance: float = Field(description="Relevance 0-1; below about 0.4 the documents do not cover it.")
    document: str | None = Field(
        None, description="Path on the app's HTTP server that downloads the whole document (signed in)."
    )


class SearchResult(BaseModel):
    query: str
    passages: list[Passage] = Field(description="Best first, one per Q&A unit.")


class CitedSource(BaseModel):
    n: int = Field(description="The number the answer cites it by: [n].")
    file: str = Field(description="The document.")
    question: str = Field(description="The question the cited unit answers.")
    passage: str = Field(description="The passage the answer was written from.")
    span: str = Field(description="The part of the passage that supports the sentences citing it.")
    span_start: int = Field(description="Character offset of `span` in `passage` (-1: none).")
    span_end: int = Field(description="End offset of `span` in `passage`.")
    score: float = Field(description="Retrieval relevance 0-1.")
    unit_id: str
    uri: str = Field(description="Resource URI of the whole unit.")
    document: str | None = Field(
        None, description="Path on the app's HTTP server that downloads the whole document (signed in)."
    )


class AskResult(BaseModel):
    answer: str = Field(description="The answer, each claim followed by [n] markers naming `sources`.")
    abstained: bool = Field(description="True: the documents do not cover the question; no source is cited.")
    sources: list[CitedSource]
    notices: list[str] = Field(description="What the checks found about the answer, in words.")
    left_out: list[str] = Field(description="Sentences the model wrote that no source states (not shown).")
    rewritten_question: str | None = Field(description="What a follow-up was rewritten to, if it was.")
    stopped: bool


class Finding(BaseModel):
    kind: str = Field(description="overfitting, underfitting, plateau, unstable, diverged or healthy.")
    confidence: str = Field(description="high, medium or low: how far past its threshold.")
    evidence: str = Field(description="What the curves show, with real epochs or steps and values.")
    details: dict[str, Any] = Field(description="The numbers behind the evidence.")


class RunInfo(BaseModel):
    name: str
    format: str = Field(description="The log format recognised (lightning-csv, trainer-state, console…).")
    rows: int
    epochs: int | None
    metrics: list[str]
    notes: list[str] = Field(description="What was skipped or assumed while reading the log.")


class DiagnoseResult(BaseModel):
    run: RunInfo
    findings: list[Finding]
    question: str = Field(description="What was asked of the documents: the symptoms, then your question.")
    answer: AskResult


class Document(BaseModel):
    name: str
    units: int = Field(description="Q&A units indexed from it.")
    origin: Literal["corpus", "uploaded", "another host"]
    document_id: str


class DocumentList(BaseModel):
    documents: list[Document]


# --- the tools -------------------------------------------------------------------------------------


def answer_result(answer: Answer) -> AskResult:
    """An Answer as `/v1` reports it (web/api.py), each source with its resource URI."""
    out = {"answer": answer.answer, **extras(answer)}
    out["sources"] = [{**s, "uri": unit_uri(s["unit_id"])} for s in out["sources"]]
    return AskResult.model_validate(out)


def _finite(value: Any) -> Any:
    """JSON-safe numbers: NaN and inf become None (evidence says them in words)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _finite(value.item())
    return value


class Tools:
    """The tools over one Assistant. `local`: the caller runs this server itself (stdio), so
    `diagnose_run` may read a log file under `mcp_allowed_dirs`."""

    def __init__(self, assistant: Any, *, local: bool) -> None:
        self.assistant = assistant
        self.settings = assistant.settings
        self.local = local

    def search_documents(self, query: str, k: int) -> SearchResult:
        try:
            hits = self.assistant.search(query, k)
        except EmptyQueryError as exc:
            raise Refused(str(exc)) from None
        passages = [
            Passage(
                file=h.source,
                doc_title=h.doc_title,
                question=h.title,
                passage=h.passage,
                unit_id=h.unit_id,
                uri=unit_uri(h.unit_id),
                relevance=h.relevance,
                document=document_url(h.doc) if h.doc else None,
            )
            for h in hits
        ]
        return SearchResult(query=query, passages=passages)

    def _history(self, history: list[dict[str, str]] | None) -> list[dict[str, str]]:
        return [
            {
                "role": m["role"],
                "content": strip_footer(message_text(m["content"]))
                if m["role"] == "assistant"
                else message_text(m["content"]),
            }
            for m in history or []
        ]

    def ask(self, question: str, history: list[dict[str, str]] | None = None) -> AskResult:
        if not question.strip():
            raise Refused(EMPTY_QUESTION)
        if why := too_long(question, self.settings.message_max_kb):
            raise Refused(why)
        return answer_result(self._answer(question, self._history(history)))

    def _answer(self, question: str, history: list[dict[str, str]] | None = None) -> Answer:
        try:
            return self.assistant.ask(question, history)
        except EmptyQueryError as exc:
            raise Refused(str(exc)) from None
        except LLMError as exc:
            raise Refused(str(exc)) from None

    def read_run(self, log_text: str | None, path: str | None) -> Run:
        """The run a `diagnose_run` call names: pasted text (never taken for a file name) or, on the
        local server only, a file under `mcp_allowed_dirs`."""
        limits = Limits.from_settings(self.settings)
        if (log_text is None) == (path is None):
            raise Refused(NO_LOG if path is None else "give either `log_text` or `path`, not both")
        try:
            if path is not None:
                return parse_run(self._allowed(path), limits=limits)
            assert log_text is not None
            size = len(log_text.encode("utf-8", "replace"))
            if size > limits.max_bytes:
                raise Refused(
                    f"the log is {size / 1e6:.1f} MB, over the {limits.max_bytes / 1e6:.0f} MB limit "
                    "(run_max_mb)"
                )
            if "\n" in log_text.strip():
                return parse_run(log_text, name="pasted log", limits=limits)
            # One line (a Keras history JSON, say): read from a private file, so that text which
            # happens to name a file on this machine is never read as that file.
            with tempfile.TemporaryDirectory(prefix="mcp-log-") as tmp:
                file = Path(tmp) / "pasted log"
                file.write_text(log_text, encoding="utf-8")
                return parse_run(file, limits=limits)
        except RunParseError as exc:
            raise Refused(str(exc)) from None

    def _allowed(self, path: str) -> Path:
        if not self.local:
            raise Refused("`path` is only for a local server (`assistant mcp`): send the log as `log_text`")
        roots = [Path(d).expanduser().resolve() for d in self.settings.mcp_allowed_dirs]
        try:
            target = Path(path).expanduser().resolve()
        except (OSError, RuntimeError, ValueError):
            raise Refused(f"{path} is not a path this server may read") from None
        if not any(target.is_relative_to(root) for root in roots):
            allowed = ", ".join(str(r) for r in roots) or "none set"
            raise Refused(
                f"{path} is not under a folder this server may read (mcp_allowed_dirs: {allowed}); "
                "send the log as `log_text`, or add its folder to ASSISTANT_MCP_ALLOWED_DIRS"
            )
        return target

    def diagnose_run(
        self, log_text: str | None, path: str | None, question: str | None
    ) -> tuple[DiagnoseResult, bytes]:
        """The findings, the answer with its sources, and the curves as PNG bytes."""
        if question and (why := too_long(question, self.settings.message_max_kb)):
            raise Refused(why)
        run = self.read_run(log_text, path)
        found = diagnose(run, question, self._answer, prompts_dir=self.settings.prompts_dir)
        info = found.to_dict()["run"]
        result = DiagnoseResult(
            run=RunInfo.model_validate(info),
            findings=[Finding.model_validate(_finite(f.to_dict())) for f in found.findings],
            question=found.question,
            answer=answer_result(found.answer),
        )
        return result, found.png

    def list_documents(self) -> DocumentList:
        rows = self.assistant.documents()
        return DocumentList(
            documents=[Document(name=n, units=u, origin=o, document_id=i) for n, u, o, i in rows]
        )

    def read_unit(self, unit_id: str) -> str:
        """One indexed Q&A unit as Markdown: its question, document and whole answer."""
        self.assistant.ensure_indexed()
        unit = next((m for m in self.assistant.retriever.units() if m["unit_id"] == unit_id), None)
        if unit is None:
            raise Refused(f"no indexed unit has the id {unit_id!r} (it may have been removed)")
        return f"# {unit['title']}\n\nFrom {unit['source']} ({unit['doc_title']}).\n\n{unit['unit_text']}\n"
