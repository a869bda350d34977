"""What a user keeps of an answer: thumbs up/down with a comment, saved on their own answer in the
database (`assistant feedback export`), and the whole conversation as a Markdown download."""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.processing_utils import save_file_to_cache
from gradio.utils import get_upload_folder

from assistant.store import NotFound
from assistant.web.auth import WebContext
from assistant.web.conversations_panel import NO_SUCH, user_of
from assistant.web.render import conversation_markdown


class Feedback:
    def __init__(self, web: WebContext) -> None:
        self.web = web

    def like(
        self,
        data: gr.LikeData,
        conversation: list[dict[str, Any]] | None,
        conv_id: str | None,
        comment: str,
        request: gr.Request,
    ) -> str:
        """Thumbs up/down with the optional comment typed beside the chat, saved in the database on
        the user's own answer (`assistant feedback export`); rating again replaces it."""
        user = user_of(self.web, request)
        index = data.index if isinstance(data.index, int) else data.index[0]
        turn = next((t for t in conversation or [] if t["index"] == index), None)
        if turn is None:
            raise gr.Error("This answer is still being written; rate it once it is complete.")
        if not conv_id or turn.get("answer_id") is None:
            raise gr.Error("This answer was not saved, so it cannot be rated.")
        try:
            self.web.conversations.add_feedback(
                user, conv_id, turn["answer_id"], bool(data.liked), (comment or "")[:4000]
            )
        except NotFound:
            raise gr.Error(NO_SUCH) from None
        gr.Info("Thanks: feedback saved." if data.liked else "Thanks: we saved this answer for review.")
        return ""

    def export(self, conversation: list[dict[str, Any]] | None, request: gr.Request) -> Any:
        """The conversation as a Markdown download. Written to a private temp folder made for this
        export alone (Gradio accepts it wherever `data_dir` is; in Docker that is /data, outside the
        working directory) and copied into Gradio's file cache here, so the copy Gradio serves is
        registered as this user's: no one else can fetch it, even with its address. The folder goes
        with the export: one kept per app was left behind in /tmp by every server stopped by a
        signal."""
        user = user_of(self.web, request)
        if not conversation:
            raise gr.Error("Nothing to export yet.")
        name = f"conversation-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.md"
        with tempfile.TemporaryDirectory(prefix="assistant-export-") as folder:
            path = Path(folder) / name
            path.write_text(conversation_markdown(conversation), encoding="utf-8")
            served = save_file_to_cache(path, get_upload_folder())  # where Gradio would copy it anyway
        self.web.owners.own_file(served, user.name)
        return gr.File(value=served, visible=True)
