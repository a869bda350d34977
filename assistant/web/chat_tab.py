"""The chat tab: streaming answers, stop/retry/clear, sources and details panels, settings,
thumbs feedback and Markdown export. Every browser tab has its own conversation (Gradio session
state); the model and the index are shared."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import gradio as gr

from assistant.chat.chain import Answer, message_text
from assistant.knowledge.retrieval import EmptyQueryError
from assistant.llm.engine import LLMOutOfMemoryError
from assistant.llm.models import list_models
from assistant.web.render import (
    answer_markdown,
    conversation_markdown,
    details_markdown,
    sources_html,
    status_line,
)

# session hash -> stop event of the answer being generated for that browser tab
_STOPS: dict[str, threading.Event] = {}


def _history(messages: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """What the chain needs from the Chatbot's messages: role and plain text."""
    return [{"role": m["role"], "content": message_text(m.get("content"))} for m in messages or []]


def example_questions(assistant: Any, n: int) -> list[str]:
    """Questions from the corpus itself, spread over its documents."""
    by_doc: dict[str, list[str]] = {}
    for unit in assistant.retriever.units():
        if unit["kind"] == "qa" and len(unit["title"]) <= 90:
            by_doc.setdefault(unit["source"], []).append(unit["title"])
    picks: list[str] = []
    while len(picks) < n and any(by_doc.values()):
        for titles in by_doc.values():
            if titles and len(picks) < n:
                picks.append(titles.pop(0))
    return picks


class ChatTab:
    def __init__(self, assistant: Any):
        self.assistant = assistant
        self.settings = assistant.settings
        self._feedback_lock = threading.Lock()

    # -- handlers --------------------------------------------------------------------------------
    def respond(
        self,
        message: Any,
        messages: list[dict[str, Any]] | None,
        answers: dict[int, dict[str, Any]],
        k: float,
        temperature: float,
        max_new_tokens: float,
        request: gr.Request,
    ) -> Any:
        text = message_text(message).strip()
        if not text:
            raise gr.Error("Type a question first.")
        history = _history(messages)
        messages = [*history, {"role": "user", "content": text}, {"role": "assistant", "content": ""}]
        yield "", messages, answers, sources_html(None), gr.skip(), "⏳ Answering…"
        stop = _STOPS[request.session_hash] = threading.Event()
        final: Answer | None = None
        try:
            for item in self.assistant.ask_stream(
                text,
                history,
                sources_k=int(k),
                temperature=float(temperature),
                max_new_tokens=int(max_new_tokens),
                stop=stop,
            ):
                if isinstance(item, Answer):
                    final = item
                else:
                    messages[-1]["content"] += item
                    yield "", messages, answers, gr.skip(), gr.skip(), gr.skip()
        except EmptyQueryError as exc:
            raise gr.Error(str(exc)) from None
        except LLMOutOfMemoryError as exc:
            messages[-1]["content"] = f"⚠️ {exc}"
            yield "", messages, answers, gr.skip(), gr.skip(), "⚠️ out of memory: see the message"
            return
        finally:
            _STOPS.pop(request.session_hash, None)
        if final is None:
            return
        answer = final.to_dict()
        messages[-1]["content"] = answer_markdown(answer)
        answers = {**answers, len(messages) - 1: answer}
        yield "", messages, answers, sources_html(answer), details_markdown(answer), status_line(answer)

    def stop(self, request: gr.Request) -> None:
        if event := _STOPS.get(request.session_hash):
            event.set()

    def retry(self, messages: list[dict[str, Any]] | None, answers: dict[int, dict[str, Any]]) -> Any:
        """Drop the last exchange and put its question back, ready to be asked again."""
        messages = list(messages or [])
        last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
        if last_user is None:
            return "", messages, answers
        question = message_text(messages[last_user]["content"])
        kept = {i: a for i, a in answers.items() if i < last_user}
        return question, messages[:last_user], kept

    def like(self, data: gr.LikeData, messages: list[dict[str, Any]] | None, answers: dict[int, Any]) -> None:
        """Thumbs up/down saved with the question, the answer and its sources (data/feedback.jsonl)."""
        messages = messages or []
        index = data.index if isinstance(data.index, int) else data.index[0]
        question = next(
            (message_text(m["content"]) for m in reversed(messages[:index]) if m["role"] == "user"), ""
        )
        answer = answers.get(index, {})
        row = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "liked": bool(data.liked),
            "question": question,
            "answer": answer.get(
                "answer", message_text(messages[index]["content"]) if index < len(messages) else ""
            ),
            "sources": [
                {k: s[k] for k in ("n", "source", "title", "unit_id")} for s in answer.get("sources", [])
            ],
            "model": self.assistant.llm.name if self.assistant._llm is not None else None,
        }
        path = self.settings.feedback_file
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._feedback_lock, open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        gr.Info("Thanks: feedback saved." if data.liked else "Thanks: we saved this answer for review.")

    def export(self, messages: list[dict[str, Any]] | None, answers: dict[int, dict[str, Any]]) -> Any:
        if not messages:
            raise gr.Error("Nothing to export yet.")
        ordered = [answers.get(i, {}) for i, m in enumerate(messages) if m["role"] == "assistant"]
        folder = self.settings.data_dir / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"conversation-{time.strftime('%Y%m%d-%H%M%S')}.md"
        path.write_text(conversation_markdown(messages, ordered), encoding="utf-8")
        return gr.File(value=str(path), visible=True)

    def switch_model(self, name: str) -> str:
        try:
            engine = self.assistant.set_model(name)
        except (ValueError, RuntimeError, FileNotFoundError) as exc:
            raise gr.Error(str(exc)) from None
        return f"Model: **{engine.name}** on {engine.device} ({engine.dtype}). Shared by every open tab."

    # -- layout ----------------------------------------------------------------------------------
    def build(self) -> None:
        s = self.settings
        answers = gr.State({})
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label="Conversation",
                    height=520,
                    elem_id="chatbot",
                    buttons=["copy"],
                    placeholder="Ask about a training problem: *my loss plateaus*, *out of GPU memory*…",
                )
                with gr.Row():
                    box = gr.Textbox(
                        placeholder="Ask a question or a follow-up…",
                        show_label=False,
                        scale=6,
                        elem_id="question",
                        autofocus=True,
                    )
                    send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                with gr.Row():
                    stop = gr.Button("Stop", variant="stop", size="sm", elem_id="stop")
                    retry = gr.Button("Retry", size="sm", elem_id="retry")
                    clear = gr.Button("Clear", size="sm", elem_id="clear")
                    export = gr.Button("Export as Markdown", size="sm", elem_id="export")
                status = gr.Markdown(elem_id="status")
                exported = gr.File(label="Conversation", visible=False, elem_id="exported")
                gr.Examples(
                    examples=[[q] for q in example_questions(self.assistant, s.example_questions)],
                    inputs=[box],
                    label="Questions the documents answer",
                )
            with gr.Column(scale=2):
                gr.Markdown("### Sources")
                panel = gr.HTML(sources_html(None), elem_id="sources")
                with gr.Accordion("How this answer was made", open=False, elem_id="details-accordion"):
                    details = gr.Markdown(details_markdown(None), elem_id="details")
                with gr.Accordion("Settings", open=False):
                    presets = ["auto"] + [m["name"] for m in list_models(s) if m["available"]]
                    model = gr.Dropdown(
                        presets,
                        value=s.llm_model if s.llm_model in presets else "auto",
                        label="Model (reloads the shared model)",
                        allow_custom_value=True,
                    )
                    model_status = gr.Markdown()
                    k = gr.Slider(1, 8, value=s.sources_k, step=1, label="Number of sources")
                    temperature = gr.Slider(0, 1.5, value=s.llm_temperature, step=0.05, label="Temperature")
                    max_new = gr.Slider(32, 1024, value=s.llm_max_new_tokens, step=32, label="Max new tokens")

        inputs = [box, chatbot, answers, k, temperature, max_new]
        outputs = [box, chatbot, answers, panel, details, status]
        box.submit(self.respond, inputs, outputs, api_visibility="private")
        send.click(self.respond, inputs, outputs, api_visibility="private")
        # Stop sets this tab's stop event: generation ends at the next token and the answer is
        # finished normally (sources, "stopped" in the status line) rather than cut off mid-update.
        stop.click(self.stop, None, None, api_visibility="private", queue=False)
        retry.click(self.retry, [chatbot, answers], [box, chatbot, answers], api_visibility="private").then(
            self.respond, inputs, outputs, api_visibility="private"
        )
        clear.click(
            lambda: ("", [], {}, sources_html(None), details_markdown(None), "", gr.File(visible=False)),
            None,
            [box, chatbot, answers, panel, details, status, exported],
            api_visibility="private",
        )
        chatbot.like(self.like, [chatbot, answers], None, api_visibility="private")
        export.click(self.export, [chatbot, answers], [exported], api_visibility="private")
        model.change(self.switch_model, [model], [model_status], api_visibility="private")

        def ask(question: str, history_json: str = "[]") -> Any:
            """Answer a question (history: JSON list of {role, content}); streams text, ends with the
            whole Answer as JSON."""
            try:
                history = json.loads(history_json or "[]")
            except ValueError:
                raise gr.Error("history_json must be a JSON list of {role, content} messages") from None
            text = ""
            try:
                for item in self.assistant.ask_stream(question, history):
                    if isinstance(item, Answer):
                        yield json.dumps(item.to_dict(), ensure_ascii=False)
                    else:
                        text += item
                        yield text
            except EmptyQueryError as exc:
                raise gr.Error(str(exc)) from None

        gr.api(ask, api_name="ask")
