"""The Gradio API's `/ask` endpoint (gradio_client, the page's "Use via API" link): a question and an
optional history in, the answer streamed out, ending with the whole Answer as JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from assistant.chat.chain import Answer
from assistant.knowledge.retrieval import EmptyQueryError
from assistant.llm.errors import LLMError


def ask_endpoint(assistant: Any) -> Callable[..., Iterator[str]]:
    def ask(question: str, history_json: str = "[]") -> Iterator[str]:
        """Answer a question (history: JSON list of {role, content}); streams text, ends with the
        whole Answer as JSON."""
        try:
            history = json.loads(history_json or "[]")
        except ValueError:
            raise gr.Error("history_json must be a JSON list of {role, content} messages") from None
        text = ""
        try:
            for item in assistant.ask_stream(question, history):
                if isinstance(item, Answer):
                    yield json.dumps(item.to_dict(), ensure_ascii=False)
                elif isinstance(item, str):
                    text += item
                    yield text
        except (EmptyQueryError, LLMError) as exc:
            raise gr.Error(str(exc)) from None

    return ask
