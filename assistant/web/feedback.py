"""What a user keeps of an answer: thumbs up/down with a comment, saved on their own answer in the
database (`assistant feedback export`), and the whole conversation as a Markdown download."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
import weakref
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
        # removed when the app is collected, or at exit: each app built, a test's included, used to
        # leave an empty folder behind in /tmp
        self._exports = Path(tempfile.mkdtemp(prefix="assistant-exports-"))
        weakref.finalize(self, shutil.rmtree, self._exports, ignore_errors=True)

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
        """The conversation as a Markdown download. Written to this app's private temp folder, which
        Gradio accepts wherever `data_dir` is (in Docker it is /data, outside the working directory),
        and copied into Gradio's file cache here, so the copy Gradio serves is registered as this
        user's: no one else can fetch it, even with its address."""
        user = user_of(self.web, request)
        if not conversation:
            raise gr.Error("Nothing to export yet.")
        path = self._exports / f"conversation-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.md"
        path.write_text(conversation_markdown(conversation), encoding="utf-8")
        served = save_file_to_cache(path, get_upload_folder())  # where Gradio would copy it anyway
        path.unlink(missing_ok=True)
        self.web.owners.own_file(served, user.name)
        return gr.File(value=served, visible=True)
