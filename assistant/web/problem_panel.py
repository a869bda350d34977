"""The problem card beside the chat: what the user said about their setup (assistant/chat/problem.py),
one editable box per field, updated after every turn and saved with the conversation.

Per browser tab the card lives in session state (server side) and, once the conversation exists, in
the database (`ConversationStore.set_problem`). A card edited before the first question is saved by
creating the conversation then (untitled until its first question), so a reload keeps it. Every
handler asks the store as the calling user: another user's conversation id reads and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from assistant.chat.problem import FIELDS, KEYS, card_with_run, edit_card, normalise, update_card
from assistant.store import NotFound
from assistant.web.auth import WebContext
from assistant.web.conversations_panel import NO_SUCH, user_of

APPLIED = "_applied"  # in the tab's state only: the saved question whose facts the card has taken in
HINT = (
    "What you said about your setup, used by the next answers. Edit a box and press **Save**; "
    "empty a box and Save to forget it (it stays empty until you state a new value)."
)


@dataclass
class ProblemUI:
    card: Any  # gr.State: the card as data
    boxes: list[Any]  # one Textbox per field, in FIELDS order
    save: Any
    forget: Any
    status: Any

    @property
    def shown(self) -> list[Any]:
        """What a load or a turn updates: the card and its boxes."""
        return [self.card, *self.boxes]


class ProblemPanel:
    def __init__(self, web: WebContext) -> None:
        self.web = web

    @staticmethod
    def show(card: dict[str, Any] | None, applied: int | None = None) -> tuple[Any, ...]:
        """(the tab's state, one value per box) for a card."""
        card = normalise(card)
        state = {**card, APPLIED: applied} if applied is not None else card
        return (state, *(card.get(k, "") for k in KEYS))

    @staticmethod
    def for_turn(card: dict[str, Any] | None, message: str) -> dict[str, Any]:
        """The card the chain gets for this message: the tab's card with the message's facts."""
        return update_card(card, message)

    def _store(self, user: Any, conv_id: str, card: dict[str, Any]) -> dict[str, Any]:
        return self.web.conversations.set_problem(user, conv_id, normalise(card))

    # -- handlers --------------------------------------------------------------------------------
    def load(self, conv_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        """The card of the open conversation (after open, reload, delete, new chat); none for a new
        chat or an id that is not the caller's (the sidebar has already said so)."""
        user = user_of(self.web, request)
        if not conv_id:
            return self.show({})
        try:
            return self.show(self.web.conversations.problem(user, conv_id))
        except NotFound:
            return self.show({})

    def after_turn(
        self,
        conv_id: str | None,
        conversation: list[dict[str, Any]] | None,
        card: dict[str, Any] | None,
        request: gr.Request,
    ) -> tuple[Any, ...]:
        """After a turn: the card with what the user just said (and the run attached to the message:
        a turn's `attachment` with `name` and a one-line `summary` of its findings), saved with the
        conversation. A turn
        whose facts the card already took in (a superseded answer ends without a new turn) is not
        taken in again, so a hand edit made since stays."""
        user = user_of(self.web, request)
        last = (conversation or [{}])[-1]
        applied = last.get("question_id")
        if not last.get("question") or applied is not None and (card or {}).get(APPLIED) == applied:
            return self.show(card, (card or {}).get(APPLIED))
        card = self.for_turn(card, last["question"])
        run = last.get("attachment") or {}
        if isinstance(run, dict) and run.get("summary"):
            card = card_with_run(card, str(run.get("name") or ""), str(run["summary"]))
        if conv_id:
            try:
                card = self._store(user, conv_id, card)
            except NotFound:  # not the caller's, or deleted meanwhile: nothing is written
                gr.Warning("The problem card was not saved: " + NO_SUCH)
        return self.show(card, applied)

    def save(
        self, conv_id: str | None, card: dict[str, Any] | None, request: gr.Request, *values: str
    ) -> tuple[Any, ...]:
        """The user's edits, one value per box in FIELDS order: saved at once (a new chat's
        conversation is created for it). Gradio hands `request` in where it is declared."""
        user = user_of(self.web, request)
        card = edit_card(card, dict(zip(KEYS, values, strict=False)))
        try:
            if not conv_id:
                conv_id = self.web.conversations.create(user).id
            card = self._store(user, conv_id, card)
        except NotFound:
            raise gr.Error(NO_SUCH) from None
        shown = [f for f in KEYS if card.get(f)]
        return (*self.show(card), conv_id, f"Saved: {len(shown)} field{'s' * (len(shown) != 1)}.")

    def forget(self, conv_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Empty the whole card (extraction starts afresh from the next message)."""
        user = user_of(self.web, request)
        if conv_id:
            try:
                self._store(user, conv_id, {})
            except NotFound:
                raise gr.Error(NO_SUCH) from None
        return (*self.show({}), "Card emptied.")

    # -- layout ----------------------------------------------------------------------------------
    def build(self) -> ProblemUI:
        """The panel (inside the chat tab's right column)."""
        card = gr.State({})
        with gr.Accordion("Your setup (problem card)", open=True, elem_id="problem-card"):
            gr.Markdown(HINT)
            boxes = []
            *short, (run_key, run_label) = FIELDS  # two short fields a row; the run has its own
            for i in range(0, len(short), 2):
                with gr.Row():
                    boxes += [
                        gr.Textbox(label=label, lines=1, max_lines=2, elem_id=f"problem-{key}", min_width=120)
                        for key, label in short[i : i + 2]
                    ]
            boxes.append(gr.Textbox(label=run_label, lines=1, max_lines=3, elem_id=f"problem-{run_key}"))
            with gr.Row():
                save = gr.Button("Save", size="sm", variant="primary", elem_id="problem-save")
                forget = gr.Button("Empty the card", size="sm", elem_id="problem-forget")
            status = gr.Markdown(elem_id="problem-status")
        return ProblemUI(card, boxes, save, forget, status)

    def wire(self, ui: ProblemUI, conv_id: Any, refresh: tuple[Any, ...]) -> None:
        """The panel's own buttons; `refresh` lists the sidebar again (a save may create a chat)."""
        ui.save.click(
            self.save,
            [conv_id, ui.card, *ui.boxes],
            [*ui.shown, conv_id, ui.status],
            api_visibility="private",
        ).then(*refresh, api_visibility="private")
        ui.forget.click(self.forget, [conv_id], [*ui.shown, ui.status], api_visibility="private")
