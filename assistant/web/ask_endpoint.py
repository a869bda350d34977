"""The Gradio API's `/ask` endpoint (gradio_client, the page's "Use via API" link): a question and an
optional history in, the answer streamed out, ending with the whole Answer as JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from assistant.chat.chain import Answer
from assistant.chat.messages import HistoryError, checked_history, message_text, too_long
from assistant.knowledge.retrieval import EmptyQueryError
from assistant.llm.errors import LLMError
from assistant.web.api import depth


def ask_endpoint(assistant: Any, metrics: Any = None) -> Callable[..., Iterator[str]]:
    """The /ask handler; `metrics` (web/metrics.py), when given, counts its answers."""
    settings = assistant.settings

    def ask(question: str, history_json: str = "[]") -> Iterator[str]:
        """Answer a question (history: JSON list of {role, content}); streams text, ends with the
        whole Answer as JSON."""
        question = message_text(question)
        for text in (question, history_json or ""):
            if why := too_long(text, settings.message_max_kb):
                raise gr.Error(why)
        try:
            history = checked_history(json.loads(history_json or "[]"))
            if depth(history) > settings.json_max_depth:
                raise HistoryError(f"history_json is nested more than {settings.json_max_depth} levels deep")
        except (ValueError, RecursionError) as exc:
            why = str(exc) if isinstance(exc, HistoryError) else "history_json is not valid JSON"
            raise gr.Error(f"{why}: send a JSON list of {{role, content}} messages") from None
        text = ""
        try:
            for item in assistant.ask_stream(question, history):
                if isinstance(item, Answer):
                    if metrics is not None:
                        metrics.answer("ask", item)
                    yield json.dumps(item.to_dict(), ensure_ascii=False)
                elif isinstance(item, str):
                    text += item
                    yield text
        except (EmptyQueryError, LLMError) as exc:
            if metrics is not None and isinstance(exc, LLMError):
                metrics.answer("ask", None)
            raise gr.Error(str(exc)) from None

    return ask
