"""The chat tab: streaming answers, stop/retry/new chat, sources and details panels, settings,
thumbs feedback and Markdown export (feedback.py); a training log attached to a message
(run_attach) is shown as findings and curves above its answer. Every browser tab has its own open
conversation (Gradio session state); every finished or stopped answer is saved to the user's
conversation in the database, which the sidebar lists and a reload brings back. The model and the
index are shared."""

from __future__ import annotations

import html
import logging
from typing import Any

import gradio as gr

from assistant.chat.chain import Answer, message_text
from assistant.knowledge.retrieval import EmptyQueryError
from assistant.llm.errors import LLMError, LLMOutOfMemoryError
from assistant.llm.streaming import Waiting
from assistant.store import NotFound
from assistant.web.ask_endpoint import ask_endpoint
from assistant.web.auth import NotAllowed, WebContext, logout_link, web_context
from assistant.web.conversations_panel import NO_SUCH, URL_JS, ConversationsPanel, user_of
from assistant.web.feedback import Feedback
from assistant.web.model_switch import ModelSwitch
from assistant.web.problem_panel import ProblemPanel
from assistant.web.render import (
    attached_label,
    bubble_markdown,
    details_markdown,
    question_markdown,
    sources_html,
    status_line,
    waiting_line,
)
from assistant.web.run_attach import NotAttached, RunAttacher
from assistant.web.turns import TabTurns

log = logging.getLogger(__name__)


def chain_history(conversation: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The conversation as the chain reads it: each question and the plain text of its answer (never
    the rendered bubble, whose marks and notices are for the reader, not the model). A question sent
    with a training run reads as the symptom question asked for it (the run's findings and the user's
    words), so follow-ups are about that run."""
    history = []
    for turn in conversation or []:
        run = turn.get("attachment")
        history.append({"role": "user", "content": run["question"] if run else turn["question"]})
        if turn.get("answer") and turn["answer"].get("answer"):
            history.append({"role": "assistant", "content": turn["answer"]["answer"]})
    return history


def _shown(messages: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The chat as shown: role and text of each bubble (Gradio may hand content as parts)."""
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
    """The handlers and layout of the chat tab. Per browser tab, the conversation is kept twice, side
    by side in session state: as data (`conversation`: each question with its answer dict, which the
    model's history, feedback and export are built from) and as rendered bubbles (the Chatbot)."""

    def __init__(self, assistant: Any, web: WebContext | None = None):
        self.assistant = assistant
        self.settings = assistant.settings
        self.web = web or web_context(assistant.settings, assistant.settings.host)
        self.turns = TabTurns()
        self.panel = ConversationsPanel(self.web, self.turns)
        self.problem = ProblemPanel(self.web)
        self.runs = RunAttacher(self.settings)
        self.feedback = Feedback(self.web)
        self.like, self.export = self.feedback.like, self.feedback.export
        self.models = ModelSwitch(assistant, self.web)
        self.model_choices = self.models.choices
        self.may_switch_model, self.switch_model = self.models.may_switch, self.models.switch

    # -- handlers --------------------------------------------------------------------------------
    def respond(
        self,
        message: Any,
        messages: list[dict[str, Any]] | None,
        conversation: list[dict[str, Any]] | None,
        k: float,
        temperature: float,
        max_new_tokens: float,
        conv_id: str | None,
        request: gr.Request,
        problem: dict[str, Any] | None = None,
    ) -> Any:
        user = user_of(self.web, request)
        # The sliders' values are whatever a client sends: kept within what the page offers.
        k = min(max(int(k), 1), 8)
        temperature = min(max(float(temperature), 0.0), 2.0)
        max_new_tokens = min(max(int(max_new_tokens), 1), self.settings.max_new_tokens_limit)
        if conv_id:  # continuing a saved conversation: it must be this user's
            try:
                self.web.conversations.get(user, conv_id)
            except NotFound:
                raise gr.Error(NO_SUCH) from None
        # A training log uploaded or pasted: read, judged and drawn now (a bad one stops here).
        try:
            text, run = self.runs.read(message, request.session_hash)
        except NotAttached as exc:  # said; the message stays in the box to fix, nothing else changes
            gr.Warning(html.escape(str(exc), quote=False))
            yield (gr.skip(),) * 7  # one per output
            return
        if not text and run is None:
            raise gr.Error("Type a question first (or attach a training log).")
        asked = text  # what the documents are asked: with a run, its symptoms and the user's words
        if run is not None:
            asked, text = run["question"], text or attached_label(run)
        conversation = list(conversation or [])
        # Registered before anything else, so a Stop pressed at any moment of this turn reaches it.
        turn = self.turns.start(request.session_hash, question=text, attachment=run)
        try:
            shown = [
                *_shown(messages),
                {"role": "user", "content": question_markdown(text, run)},
                {"role": "assistant", "content": bubble_markdown(None, run)},
            ]
            yield "", shown, conversation, sources_html(None), gr.skip(), "⏳ Answering…", gr.skip()
            final: Answer | None = None
            streamed = ""  # the answer's raw text so far; shown escaped (render.safe_text)
            stream = self.assistant.ask_stream(
                asked,
                chain_history(conversation),
                sources_k=int(k),
                temperature=float(temperature),
                max_new_tokens=int(max_new_tokens),
                stop=turn.stop,
                problem=self.problem.for_turn(problem, text),  # the card with this message's facts
            )
            try:
                for item in stream:
                    if not self.turns.owns_chat(turn):  # a newer answer in this tab took over
                        return
                    if isinstance(item, Answer):
                        final = item
                    elif not item:  # the model is writing, its text held until checked (chat/writing.py)
                        continue
                    elif isinstance(item, Waiting):
                        yield (
                            "",
                            gr.skip(),
                            gr.skip(),
                            gr.skip(),
                            gr.skip(),
                            waiting_line(item.ahead),
                            gr.skip(),
                        )
                    else:
                        streamed += item
                        shown[-1]["content"] = bubble_markdown(None, run, streamed)
                        yield "", shown, conversation, gr.skip(), gr.skip(), "⏳ Answering…", gr.skip()
            except EmptyQueryError as exc:
                raise gr.Error(str(exc)) from None
            except LLMError as exc:  # out of memory, model server down…: said in the chat, app keeps serving
                self.web.metrics.answer("ui", None)
                shown[-1]["content"] = bubble_markdown(None, run, f"⚠️ {exc}")
                conv_id, ids = self._save(user, conv_id, text, None, run)  # the question is kept
                conversation.append(
                    {"question": text, "answer": None, "attachment": run, "index": len(shown) - 1, **ids}
                )
                what = (
                    "out of memory" if isinstance(exc, LLMOutOfMemoryError) else "the model could not answer"
                )
                yield "", shown, conversation, gr.skip(), gr.skip(), f"⚠️ {what}: see the message", conv_id
                return
            finally:
                stream.close()  # also when superseded: the model stops within one step
            if final is None or not self.turns.owns_chat(turn):
                return
            self.web.metrics.answer("ui", final)
            answer = final.to_dict()
            shown[-1]["content"] = bubble_markdown(answer, run)
            conv_id, ids = self._save(user, conv_id, text, answer, run)
            conversation.append(
                {"question": text, "answer": answer, "attachment": run, "index": len(shown) - 1, **ids}
            )
            yield (
                "",
                shown,
                conversation,
                sources_html(answer),
                details_markdown(answer),
                status_line(answer),
                conv_id,
            )
        finally:
            self.turns.finish(turn)

    def _save(
        self,
        user: Any,
        conv_id: str | None,
        question: str,
        answer: dict[str, Any] | None,
        run: dict[str, Any] | None = None,
    ) -> tuple[str | None, dict[str, int | None]]:
        """Save a finished (or stopped, or failed) turn to the user's conversation, created with its
        first turn; returns (conversation id, {question_id, answer_id}). A failed save is said, never
        fatal: the answer on screen stays."""
        store = self.web.conversations
        stopped = bool(answer) and "Stopped." in (answer or {}).get("notices", [])
        try:
            if not conv_id:
                conv_id = store.create(user).id
            turn = store.append_turn(user, conv_id, question, answer, stopped=stopped, attachment=run)
            return conv_id, {"question_id": turn.question_id, "answer_id": turn.answer_id}
        except NotFound:  # deleted meanwhile (in another tab)
            gr.Warning("This conversation was deleted: the answer was not saved.")
            return None, {}
        except Exception:  # the database is down or full: the user still has the answer on screen
            log.exception("saving a turn failed")
            gr.Warning("The answer could not be saved (the server log says why).")
            return conv_id, {}

    def stop(self, request: gr.Request) -> None:
        self.turns.stop(request.session_hash)

    def retry(
        self,
        messages: list[dict[str, Any]] | None,
        conversation: list[dict[str, Any]] | None,
        conv_id: str | None,
        request: gr.Request,
    ) -> Any:
        """Stop what this tab is writing, drop the last exchange (from the saved conversation too)
        and put its question back."""
        user = user_of(self.web, request)
        streaming = self.turns.supersede(request.session_hash)
        shown = _shown(messages)
        last_user = max((i for i, m in enumerate(shown) if m["role"] == "user"), default=None)
        if last_user is None:
            return "", shown, list(conversation or [])
        kept = [t for t in conversation or [] if t["index"] < last_user]
        dropped = [t for t in conversation or [] if t["index"] >= last_user]
        if conv_id and dropped and dropped[0].get("question_id") is not None:
            try:
                self.web.conversations.truncate(user, conv_id, dropped[0]["question_id"])
            except NotFound:
                raise gr.Error(NO_SUCH) from None
        again = shown[last_user]["content"]
        # What was sent: the saved turn, or the one still streaming (not saved yet, and never will be).
        sent = dropped[0] if dropped else streaming.sent if streaming else None
        if sent:
            again = sent["question"]
            if run := sent.get("attachment"):  # the same run goes with the question again
                self.runs.hold(request.session_hash, run)
                again = "" if again == attached_label(run) else again
        return again, shown[:last_user], kept

    def clear(self, request: gr.Request) -> Any:
        """A new chat: the open one stays saved in the sidebar."""
        self.turns.supersede(request.session_hash)
        self.runs.release(request.session_hash)
        return "", [], [], sources_html(None), details_markdown(None), "", gr.File(visible=False), None, ""

    def whoami(self, request: gr.Request) -> tuple[Any, Any]:
        """(who is signed in, the documents tab shown to admins only)."""
        try:
            user = self.web.user(request)
        except NotAllowed:
            return "", gr.Tab(visible=False)
        return (logout_link(user.name) if self.web.auth else ""), gr.Tab(visible=user.is_admin)

    # -- layout ----------------------------------------------------------------------------------
    def build(self, demo: gr.Blocks, side: dict[str, Any]) -> None:
        """The tab's layout and events; `side` is the sidebar (`self.panel.build()`, made at the top
        level of the page, outside the tabs)."""
        s = self.settings
        # this tab's turns as data: [{question, answer, attachment, index, question_id, answer_id}]
        conversation = gr.State([])
        # The open saved conversation ("": a new one, created with its first turn). A hidden field, not
        # State, so the page can keep it in its address bar; a client can send any value, and every
        # handler asks the store as the calling user, so another user's id gets nothing.
        conv_id = gr.Textbox("", visible=False, elem_id="conv-id")
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
                    box = gr.MultimodalTextbox(  # a training log: uploaded here (📎) or pasted
                        placeholder="Ask a question or a follow-up… or attach or paste a training log (two "
                        "logs: compared)",
                        show_label=False,
                        scale=6,
                        elem_id="question",
                        autofocus=True,
                        file_count="multiple",  # one training log, or two to compare
                        sources=["upload"],
                        submit_btn=False,
                    )
                    send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                with gr.Row():
                    stop = gr.Button("Stop", variant="stop", size="sm", elem_id="stop")
                    retry = gr.Button("Retry", size="sm", elem_id="retry")
                    clear = gr.Button("New chat", size="sm", elem_id="clear")
                    export = gr.Button("Export as Markdown", size="sm", elem_id="export")
                status = gr.Markdown(elem_id="status")
                exported = gr.File(label="Conversation", visible=False, elem_id="exported")
                comment = gr.Textbox(
                    placeholder="Optional comment, sent with your next 👍/👎 on an answer",
                    show_label=False,
                    elem_id="feedback-comment",
                )
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
                    model = gr.Dropdown(
                        self.model_choices,
                        value=s.llm_model,
                        label="Model (reloads the shared model)",
                        elem_id="model",
                    )
                    model_status = gr.Markdown()
                    k = gr.Slider(1, 8, value=s.sources_k, step=1, label="Number of sources")
                    temperature = gr.Slider(0, 1.5, value=s.llm_temperature, step=0.05, label="Temperature")
                    new_tokens = min(s.llm_max_new_tokens, s.max_new_tokens_limit)
                    max_new = gr.Slider(
                        min(32, new_tokens),
                        max(32, s.max_new_tokens_limit),
                        value=new_tokens,
                        step=32,
                        label="Max new tokens",
                    )
                card = self.problem.build()

        inputs = [box, chatbot, conversation, k, temperature, max_new, conv_id, card.card]
        outputs = [box, chatbot, conversation, panel, details, status, conv_id]
        listing, search, title = side["list"], side["search"], side["title"]
        refresh = (self.panel.refresh, [search, conv_id], [listing])
        # the problem card: updated and saved after each turn, loaded with the open conversation
        card_after_turn = (self.problem.after_turn, [conv_id, conversation, card.card], card.shown)
        card_load = (self.problem.load, [conv_id], card.shown)
        self.problem.wire(card, conv_id, refresh)
        turn = gr.on([box.submit, send.click], self.respond, inputs, outputs, api_visibility="private")
        turn.then(*refresh, api_visibility="private")
        turn.success(*card_after_turn, api_visibility="private")
        # Stop reaches every answer this tab is writing: generation ends at the next token and the
        # answer is finished normally (sources, "stopped" in the status line).
        stop.click(self.stop, None, None, api_visibility="private", queue=False)
        again = retry.click(
            self.retry,
            [chatbot, conversation, conv_id],
            [box, chatbot, conversation],
            api_visibility="private",
        ).then(self.respond, inputs, outputs, api_visibility="private")
        again.then(*refresh, api_visibility="private")
        again.success(*card_after_turn, api_visibility="private")
        new_chat = [box, chatbot, conversation, panel, details, status, exported, conv_id, title]
        gr.on([clear.click, side["new"].click], self.clear, None, new_chat, api_visibility="private").then(
            *refresh, api_visibility="private"
        ).then(*card_load, api_visibility="private")
        shown = [chatbot, conversation, panel, details, status, conv_id, title]
        listing.input(self.panel.open, [listing], shown, api_visibility="private").then(
            *card_load, api_visibility="private"
        )
        search.change(*refresh, api_visibility="private")
        side["rename"].click(self.panel.rename, [conv_id, title, search], [listing], api_visibility="private")
        side["delete"].click(
            self.panel.delete, [conv_id, search], [*shown, listing], api_visibility="private"
        ).then(*card_load, api_visibility="private")
        conv_id.change(None, [conv_id], None, js=URL_JS, api_visibility="private")
        demo.load(self.panel.restore, None, [*shown, listing], api_visibility="private").then(
            *card_load, api_visibility="private"
        )
        chatbot.like(self.like, [conversation, conv_id, comment], [comment], api_visibility="private")
        export.click(self.export, [conversation], [exported], api_visibility="private")
        model.change(self.switch_model, [model], [model_status], api_visibility="private")

        gr.api(ask_endpoint(self.assistant, self.web.metrics), api_name="ask")
