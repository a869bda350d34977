"""The web app: a chat tab and a documents tab, served offline by Gradio (analytics, share and SSR off)."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from assistant.settings import Settings
from assistant.web.chat_tab import ChatTab
from assistant.web.documents_tab import DocumentsTab
from assistant.web.render import CSS

log = logging.getLogger(__name__)


def build_app(assistant: Any) -> gr.Blocks:
    with gr.Blocks(title="Deep-learning training assistant") as demo:
        gr.Markdown(
            "## Deep-learning training assistant\n"
            "Answers from the indexed Q&A documents, every claim cited. Runs offline."
        )
        with gr.Tab("Chat"):
            ChatTab(assistant).build()
        with gr.Tab("Documents"):
            DocumentsTab(assistant).build()
    return demo


def launch(demo: gr.Blocks, host: str, port: int, *, block: bool = True) -> Any:
    demo.queue(default_concurrency_limit=16)
    return demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        ssr_mode=False,
        show_error=True,
        css=CSS,
        footer_links=["api"],
        prevent_thread_lock=not block,
        quiet=not block,
    )


def serve(settings: Settings, *, block: bool = True) -> tuple[Any, gr.Blocks]:
    """Index what changed, load and warm the model (so the first answer is not slow), then serve."""
    from assistant.core import Assistant

    assistant = Assistant(settings)
    report = assistant.ingest()
    log.warning("index: %s", report.summary())
    engine = assistant.llm
    engine.warmup()
    log.warning("model ready: %s on %s", engine.name, engine.device)
    demo = build_app(assistant)
    launch(demo, settings.host, settings.port, block=block)
    return assistant, demo
