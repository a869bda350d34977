"""The sidebar of saved conversations: list (newest first), search by title or content, open, rename,
delete, and the conversation brought back on reload (its id rides in the page URL, `?c=<id>`).

Every handler asks the store as the calling user: another user's conversation id gets exactly what
an id that does not exist gets, so nothing about it (not even that it exists) leaks.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from assistant.store import NotFound
from assistant.web.auth import NotAllowed, WebContext
from assistant.web.render import (
    bubble_markdown,
    details_markdown,
    question_markdown,
    sources_html,
    status_line,
)
from assistant.web.turns import TabTurns

NO_SUCH = "No such conversation."  # the same words for a missing id and for someone else's

# Keeps the open conversation in the address bar, so a reload (or a bookmark) brings it back.
URL_JS = """(c) => {
  const u = new URL(window.location.href);
  if (c) { u.searchParams.set('c', c); } else { u.searchParams.delete('c'); }
  window.history.replaceState(null, '', u);
  return c;
}"""


def user_of(web: WebContext, request: Any) -> Any:
    try:
        return web.user(request)
    except NotAllowed as exc:
        raise gr.Error(str(exc)) from None


def view_state(view: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None]:
    """(bubbles shown, the tab's conversation data, the last answer) of a saved conversation; an
    attached run's findings and curves come back above its answer."""
    shown: list[dict[str, Any]] = []
    data: list[dict[str, Any]] = []
    last = None
    for turn in view.turns:
        run = turn.attachment
        shown.append({"role": "user", "content": question_markdown(turn.question, run)})
        answer = turn.answer
        shown.append(
            {"role": "assistant", "content": bubble_markdown(answer, run, "⚠️ (no answer was saved)")}
        )
        data.append(
            {
                "question": turn.question,
                "answer": answer,
                "attachment": run,
                "index": len(shown) - 1,
                "question_id": turn.question_id,
                "answer_id": turn.answer_id,
            }
        )
        last = answer or last
    return shown, data, last


class ConversationsPanel:
    def __init__(self, web: WebContext, turns: TabTurns) -> None:
        self.web = web
        self.turns = turns

    def choices(self, user: Any, search: str = "") -> list[tuple[str, str]]:
        return [(c.title, c.id) for c in self.web.conversations.list(user, search=search or "")]

    # -- handlers --------------------------------------------------------------------------------
    def refresh(self, search: str, conv_id: str | None, request: gr.Request) -> Any:
        user = user_of(self.web, request)
        choices = self.choices(user, search)
        value = conv_id if conv_id in {c[1] for c in choices} else None
        return gr.Radio(choices=choices, value=value)

    def empty(self) -> tuple[Any, ...]:
        """What a new chat shows: (chatbot, conversation, sources, details, status, conv id, title)."""
        return [], [], sources_html(None), details_markdown(None), "", None, ""

    def _load(self, user: Any, conv_id: str) -> tuple[Any, ...]:
        view = self.web.conversations.get(user, conv_id)  # NotFound for others' ids
        shown, data, last = view_state(view)
        return (
            shown,
            data,
            sources_html(last),
            details_markdown(last),
            status_line(last) if last else "",
            view.id,
            view.title,
        )

    def open(self, conv_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        user = user_of(self.web, request)
        self.turns.supersede(request.session_hash)  # an answer still streaming stops writing here
        if not conv_id:
            return self.empty()
        try:
            return self._load(user, conv_id)
        except NotFound:
            raise gr.Error(NO_SUCH) from None

    def restore(self, request: gr.Request) -> tuple[Any, ...]:
        """On page load: the conversation named in the URL if it is the user's, else a new chat."""
        user = user_of(self.web, request)
        conv_id = (getattr(request, "query_params", None) or {}).get("c") or ""
        state = self.empty()
        if conv_id:
            try:
                state = self._load(user, conv_id)
            except NotFound:
                gr.Warning(NO_SUCH)
        return (*state, gr.Radio(choices=self.choices(user), value=state[5]))

    def rename(self, conv_id: str | None, title: str, search: str, request: gr.Request) -> Any:
        user = user_of(self.web, request)
        if not conv_id:
            raise gr.Error("Open a conversation to rename it.")
        try:
            self.web.conversations.rename(user, conv_id, title)
        except NotFound:
            raise gr.Error(NO_SUCH) from None
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        return gr.Radio(choices=self.choices(user, search), value=conv_id)

    def delete(self, conv_id: str | None, search: str, request: gr.Request) -> tuple[Any, ...]:
        user = user_of(self.web, request)
        if not conv_id:
            raise gr.Error("Open a conversation to delete it.")
        self.turns.supersede(request.session_hash)
        try:
            self.web.conversations.delete(user, conv_id)
        except NotFound:
            raise gr.Error(NO_SUCH) from None
        return (*self.empty(), gr.Radio(choices=self.choices(user, search), value=None))

    # -- layout ----------------------------------------------------------------------------------
    def build(self) -> dict[str, Any]:
        """The sidebar's components (the chat tab wires them to its own)."""
        with gr.Sidebar(open=True, elem_id="sidebar", label="Conversations"):
            new = gr.Button("New chat", variant="primary", size="sm", elem_id="new-chat")
            search = gr.Textbox(
                placeholder="Search titles and messages…", show_label=False, elem_id="conv-search"
            )
            listing = gr.Radio(choices=[], label="Conversations", elem_id="conversations")
            with gr.Accordion("Rename or delete", open=False, elem_id="conv-manage"):
                title = gr.Textbox(label="Title", elem_id="conv-title")
                with gr.Row():
                    rename = gr.Button("Rename", size="sm", elem_id="rename")
                    delete = gr.Button("Delete", variant="stop", size="sm", elem_id="delete")
        return {
            "new": new,
            "search": search,
            "list": listing,
            "title": title,
            "rename": rename,
            "delete": delete,
        }
