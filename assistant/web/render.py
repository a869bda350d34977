"""HTML and markdown the web app shows: answers, the sources panel, details, the exported conversation.

Pure functions of an Answer (as a dict, the form it is kept in per browser tab), so they are tested
without a browser.
"""

from __future__ import annotations

import html
import re
import time
from typing import Any

from assistant.knowledge.retrieval import document_url

CSS = """
.sources-panel .source { border-left: 3px solid var(--color-accent); padding: 6px 10px; margin: 8px 0; }
.sources-panel .source.consulted { border-left-color: var(--border-color-primary); opacity: .8; }
.sources-panel .meta { font-size: .85em; opacity: .75; }
.sources-panel mark, .unsupported-mark { background: #fde68a; color: inherit; padding: 0 2px; }
.sources-panel .passage { white-space: pre-wrap; font-size: .92em; margin-top: 4px; }
mark.unsupported { background: #fecaca; color: inherit; }
.abstained-note { font-weight: 600; }
"""


# Characters that reorder what follows them on screen (a file named "report\u202egpj.exe" shows as
# "reportexe.jpg"): shown as nothing in a name or a log's text.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def safe_text(text: str) -> str:
    """Text the model (or a user) wrote, shown as Markdown but never as HTML, and never as an image:
    `<img>`, `<form>` or `![x](http://elsewhere)` from a document that told the model to write them
    would make the browser fetch or post elsewhere."""
    return html.escape(_BIDI.sub("", text), quote=False).replace("![", "!\\[")


def answer_markdown(answer: dict[str, Any]) -> str:
    """The chat bubble: the answer with unsupported sentences marked; an abstention looks different."""
    text = answer["answer"]
    if answer.get("abstained"):
        return f"🚫 **Not covered by the documents.**\n\n> {safe_text(text)}"
    spans = sorted(
        found for u in answer.get("unsupported", []) if (found := _find_sentence(text, u["sentence"]))
    )
    out, at = [], 0
    for a, b in spans:
        if a < at:
            continue
        out += [
            safe_text(text[at:a]),
            '<mark class="unsupported" title="not supported by the cited source">',
            safe_text(text[a:b]),
            "</mark> ⚠️",
        ]
        at = b
    out.append(safe_text(text[at:]))
    shown = "".join(out)
    for note in answer.get("notices", []):
        shown += f"\n\n*{safe_text(note)}*"
    return shown


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~$])")  # never at a line's start here: # + - need none
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
ATTACHED = "📎"  # marks a question sent with a training run


def _md(text: Any) -> str:
    """Text from a log or a file name, shown literally in Markdown (no markup, no HTML)."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(_BIDI.sub("", str(text)), quote=False))


def run_markdown(run: dict[str, Any] | None) -> str:
    """An attached training run as shown above its answer (and in the export): what was read, each
    finding with its evidence, and the curves (the PNG inline as a data: URI, so it needs no file)."""
    if not run:
        return ""
    span = f"{run['epochs']} epochs" if run.get("epochs") else f"{run.get('rows', 0)} rows"
    lines = [
        f"**📈 Your run: {_md(run.get('name') or 'training log')}** · {_md(run.get('format', ''))} · "
        f"{span} · {_md(', '.join(run.get('metrics', [])))}",
        "",
    ]
    lines += [f"- **{_md(f['kind'])}**: {_md(f['evidence'])}" for f in run.get("findings", [])]
    lines += [f"- **compared**: {_md(sentence)}" for sentence in run.get("comparison", [])]
    png = run.get("plot_png") or ""
    if _BASE64.fullmatch(png):
        alt = f"Training curves of {_md(run.get('name') or 'the run')}"
        lines += ["", f"![{alt}](data:image/png;base64,{png})"]
    return "\n".join(lines)


def attached_label(run: dict[str, Any]) -> str:
    """The question saved for a run sent without words (it also names the conversation)."""
    return f"{ATTACHED} {run.get('name') or 'training log'}"


def question_markdown(question: str, run: dict[str, Any] | None) -> str:
    """The user's bubble: the question, with the attached run's name when one was sent with it."""
    if not run:
        return safe_text(question)
    shown = f"{ATTACHED} {_md(run.get('name') or 'training log')}"
    return shown if question == attached_label(run) else f"{safe_text(question)}\n\n{shown}"


def bubble_markdown(answer: dict[str, Any] | None, run: dict[str, Any] | None, body: str = "") -> str:
    """The assistant's bubble: the attached run's findings and curves first, then the answer (or
    `body`, what has streamed so far)."""
    text = answer_markdown(answer) if answer else safe_text(body)
    return f"{run_markdown(run)}\n\n---\n\n{text}" if run else text


def _find_sentence(text: str, sentence: str) -> tuple[int, int] | None:
    """Where a sentence the chain reported (stored without its [n] markers) stands in the answer,
    which shows it with them: `Claim [1].` for `Claim.`. The span includes the markers."""
    sentence = sentence.strip()
    if not sentence:
        return None
    body, end = (sentence[:-1].rstrip(), sentence[-1]) if sentence[-1] in ".!?:;" else (sentence, "")
    words = [re.escape(w) for w in body.split()]
    pattern = r"\s+".join(words) + r"(?:\s*\[\d+\])*" + re.escape(end)
    match = re.search(pattern, text)
    return (match.start(), match.end()) if match else None


def _passage_html(src: dict[str, Any]) -> str:
    text = src["text"]
    a, b = src.get("span_start", -1), src.get("span_end", -1)
    if 0 <= a < b <= len(text):
        return html.escape(text[:a]) + "<mark>" + html.escape(text[a:b]) + "</mark>" + html.escape(text[b:])
    return html.escape(text)


def sources_html(answer: dict[str, Any] | None) -> str:
    """The sources panel: every cited source with its supporting span highlighted, then the consulted."""
    if not answer:
        return (
            '<div class="sources-panel"><p class="meta">Sources of the latest answer appear here.</p></div>'
        )
    if answer.get("abstained"):
        return (
            '<div class="sources-panel"><p class="abstained-note">No source in the documents was relevant '
            "enough, so the assistant did not answer (the model was not asked).</p></div>"
        )
    parts = ['<div class="sources-panel">']
    for kind, items in (("cited", answer.get("sources", [])), ("consulted", answer.get("consulted", []))):
        if kind == "consulted" and items:
            parts.append('<p class="meta">Also given to the model, not cited:</p>')
        for s in items:
            support = "" if s.get("support") is None else f" · support {s['support']:.2f}"
            whole = ""
            if s.get("doc"):  # the whole document, served by web/document_route.py
                whole = f' · <a href="{html.escape(document_url(str(s["doc"])))}" download>whole document</a>'
            parts.append(
                f'<div class="source {kind}"><strong>[{s["n"]}] {html.escape(s["title"])}</strong>'
                f'<div class="meta">{html.escape(s["doc_title"])} · {html.escape(s["source"])} · '
                f"relevance {s['score']:.2f}{support}{whole}</div>"
                f'<div class="passage">{_passage_html(s)}</div></div>'
            )
    parts.append("</div>")
    return "".join(parts)


def details_markdown(answer: dict[str, Any] | None) -> str:
    """The collapsible details: the standalone question retrieval used, and the timings."""
    if not answer:
        return "Ask a question to see how it was answered."
    t = answer.get("timings", {})
    lines = [
        f"**Searched for:** {answer.get('standalone_question', '')}",
        f"**Follow-up rewritten:** {'yes' if answer.get('rewritten') else 'no (standalone question)'}",
        f"**Timings:** retrieval {t.get('retrieve_ms', 0):.0f} ms · "
        f"rewrite {t.get('rewrite_ms', 0):.0f} ms · "
        f"first token {t.get('first_token_ms', 0):.0f} ms · total {t.get('total_ms', 0):.0f} ms · "
        f"{t.get('tokens_per_s', 0):.1f} tokens/s",
    ]
    if answer.get("citations_added"):
        lines.append("\nThe model wrote no citation markers; they were attributed by checking each sentence.")
    if answer.get("corrected"):
        lines.append(
            f"\n{answer['corrected']} citation(s) pointed at a source that lacked the claim and were fixed."
        )
    return "\n\n".join(line for line in lines if line)


def status_line(answer: dict[str, Any]) -> str:
    """One line under the chat once an answer is complete."""
    if answer.get("abstained"):
        return "🚫 Not covered by the documents: the model was not asked."
    t = answer.get("timings", {})
    stopped = " · stopped" if "Stopped." in answer.get("notices", []) else ""
    return (
        f"✓ {len(answer.get('sources', []))} cited source(s)"
        f" · first token {t.get('first_token_ms', 0) / 1000:.1f} s"
        f" · {t.get('tokens_per_s', 0):.1f} tokens/s · retrieval {t.get('retrieve_ms', 0):.0f} ms{stopped}"
    )


def conversation_markdown(conversation: list[dict[str, Any]]) -> str:
    """The conversation (a tab's turns as data: question, answer dict, attached run) as one
    self-contained Markdown document: an attached run's findings and curves (inline) before its
    answer, each answer followed by its sources."""
    out = [f"# Conversation ({time.strftime('%Y-%m-%d %H:%M')})", ""]
    for turn in conversation:
        answer = turn.get("answer") or {}
        out += [f"**You:** {turn['question']}", ""]
        if turn.get("attachment"):
            out += [run_markdown(turn["attachment"]), ""]
        out += [f"**Assistant:** {answer.get('answer', '')}", ""]
        for note in answer.get("notices", []):
            out += [f"*{note}*", ""]
        for s in answer.get("sources", []):
            out.append(f"- [{s['n']}] {s['title']} ({s['source']}): “{s.get('span') or s['text'][:200]}”")
        out.append("")
    return "\n".join(out)


def waiting_line(ahead: int) -> str:
    """Status while an answer waits for a place in the batch (or its turn, one at a time)."""
    return f"⏳ {ahead} answer{'s' if ahead != 1 else ''} ahead of you; yours starts as soon as one finishes"
