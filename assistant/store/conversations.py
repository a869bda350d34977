"""Conversations, their turns and feedback, always as seen by one user.

Every operation takes the acting user and only ever touches that user's rows: another user's
conversation id gets `NotFound`, exactly like an id that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.orm import Session

from assistant.store.db import Database
from assistant.store.errors import Forbidden, NotFound
from assistant.store.models import Conversation, Feedback, Message, User, utcnow

TITLE_CHARS = 80
UNTITLED = "New chat"


@dataclass
class ConversationInfo:
    id: str
    title: str  # "New chat" until the first question names it
    created: datetime
    updated: datetime


@dataclass
class Turn:
    """One question and its answer (None while the conversation holds an unanswered question)."""

    question: str
    question_id: int
    answer: dict[str, Any] | None = None  # the whole Answer.to_dict()
    answer_id: int | None = None
    stopped: bool = False
    attachment: dict[str, Any] | None = None  # a training run attached to the question


@dataclass
class ConversationView(ConversationInfo):
    turns: list[Turn] = field(default_factory=list)
    problem: dict[str, Any] = field(default_factory=dict)  # the problem card

    def history(self) -> list[dict[str, str]]:
        """The conversation as the chain reads it: each question (one sent with a training run: the
        symptom question asked for it) and the plain text of its answer."""
        out = []
        for t in self.turns:
            asked = (t.attachment or {}).get("question") or t.question
            out.append({"role": "user", "content": asked})
            if t.answer and t.answer.get("answer"):
                out.append({"role": "assistant", "content": t.answer["answer"]})
        return out


def title_from(question: str) -> str:
    text = " ".join(question.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"


def clean_title(title: str) -> str:
    text = " ".join(str(title).split())
    if not text:
        raise ValueError("a conversation title cannot be empty")
    return text[:200]


class ConversationStore:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    # --- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _owned(s: Session, user: User, conversation_id: str) -> Conversation:
        conv = s.scalars(
            select(Conversation).where(
                Conversation.id == str(conversation_id), Conversation.owner_id == user.id
            )
        ).first()
        if conv is None:
            raise NotFound("no such conversation")
        return conv

    @staticmethod
    def _info(conv: Conversation) -> ConversationInfo:
        return ConversationInfo(conv.id, conv.title or UNTITLED, conv.created, conv.updated)

    # --- conversations -------------------------------------------------------------------------
    def create(self, user: User, title: str = "") -> ConversationInfo:
        now = self.clock()
        conv = Conversation(
            id=secrets.token_urlsafe(24),
            owner_id=user.id,
            title=clean_title(title) if title.strip() else "",
            created=now,
            updated=now,
        )
        with self.db.session() as s:
            s.add(conv)
        return self._info(conv)

    def list(self, user: User, search: str = "", limit: int = 200) -> list[ConversationInfo]:
        """The user's conversations, most recently updated first; `search` matches (case-insensitively)
        the title or the text of any message."""
        query = select(Conversation).where(Conversation.owner_id == user.id)
        needle = search.strip().lower()
        if needle:
            in_messages = exists().where(
                Message.conversation_id == Conversation.id,
                func.lower(Message.content).contains(needle, autoescape=True),
            )
            query = query.where(
                or_(func.lower(Conversation.title).contains(needle, autoescape=True), in_messages)
            )
        query = query.order_by(Conversation.updated.desc(), Conversation.created.desc()).limit(limit)
        with self.db.session() as s:
            return [self._info(c) for c in s.scalars(query)]

    def get(self, user: User, conversation_id: str) -> ConversationView:
        with self.db.session() as s:
            conv = self._owned(s, user, conversation_id)
            turns: list[Turn] = []
            for m in conv.messages:
                if m.role == "user":
                    turns.append(Turn(question=m.content, question_id=m.id, attachment=m.attachment))
                elif turns and turns[-1].answer is None:
                    turns[-1].answer = m.result or {"answer": m.content}
                    turns[-1].answer_id = m.id
                    turns[-1].stopped = m.stopped
            info = self._info(conv)
            problem = dict(conv.problem or {})
        return ConversationView(**vars(info), turns=turns, problem=problem)

    def history(self, user: User, conversation_id: str) -> list[dict[str, str]]:
        """What a follow-up sends to the chain: [{role, content}, …] as in a live conversation."""
        return self.get(user, conversation_id).history()

    def rename(self, user: User, conversation_id: str, title: str) -> ConversationInfo:
        new = clean_title(title)
        with self.db.session() as s:
            conv = self._owned(s, user, conversation_id)
            conv.title = new
            return self._info(conv)

    def delete(self, user: User, conversation_id: str) -> None:
        with self.db.session() as s:
            s.delete(self._owned(s, user, conversation_id))

    # --- turns ---------------------------------------------------------------------------------
    def append_turn(
        self,
        user: User,
        conversation_id: str,
        question: str,
        answer: dict[str, Any] | None,
        stopped: bool = False,
        attachment: dict[str, Any] | None = None,
    ) -> Turn:
        """Save a finished (or stopped) turn: the question and its answer, all or nothing. The first
        question names an untitled conversation. `answer` is Answer.to_dict() (None: unanswered);
        `attachment` a training run attached to the question (JSON-safe dict)."""
        if not str(question).strip():
            raise ValueError("an empty question cannot be saved")
        if answer is not None:
            answer = json.loads(json.dumps(answer, default=str))  # JSON-safe, and a copy
        if attachment is not None:
            attachment = json.loads(json.dumps(attachment, default=str))
        now = self.clock()
        with self.db.session(write=True) as s:
            conv = self._owned(s, user, conversation_id)
            # lock the conversation row where the backend can, so two tabs appending at once
            # serialise on the positions instead of colliding
            s.execute(select(Conversation.id).where(Conversation.id == conv.id).with_for_update()).first()
            last = s.scalar(select(func.max(Message.position)).where(Message.conversation_id == conv.id))
            pos = -1 if last is None else last
            q = Message(
                conversation_id=conv.id,
                position=pos + 1,
                role="user",
                content=question,
                attachment=attachment,
                created=now,
            )
            s.add(q)
            a = None
            if answer is not None:
                a = Message(
                    conversation_id=conv.id,
                    position=pos + 2,
                    role="assistant",
                    content=str(answer.get("answer", "")),
                    result=answer,
                    stopped=stopped,
                    created=now,
                )
                s.add(a)
            if not conv.title:
                conv.title = title_from(question)
            conv.updated = now
            s.flush()
            return Turn(question, q.id, answer, a.id if a else None, stopped, attachment)

    def truncate(self, user: User, conversation_id: str, message_id: int) -> int:
        """Delete one message of the user's conversation and every later one (Retry takes the last
        exchange back); returns how many went. Their feedback stays, unlinked."""
        with self.db.session(write=True) as s:
            conv = self._owned(s, user, conversation_id)
            position = s.scalar(
                select(Message.position).where(
                    Message.id == int(message_id), Message.conversation_id == conv.id
                )
            )
            if position is None:
                raise NotFound("no such message")
            gone = s.execute(
                delete(Message).where(Message.conversation_id == conv.id, Message.position >= position)
            )
            conv.updated = self.clock()
            return gone.rowcount or 0

    # --- the problem card ----------------------------------------------------------------------
    def problem(self, user: User, conversation_id: str) -> dict[str, Any]:
        with self.db.session() as s:
            return dict(self._owned(s, user, conversation_id).problem or {})

    def set_problem(self, user: User, conversation_id: str, card: dict[str, Any]) -> dict[str, Any]:
        """Replace the conversation's problem card ({field: value}; empty values are dropped)."""
        clean = {
            str(k): v for k, v in json.loads(json.dumps(card, default=str)).items() if v not in ("", None)
        }
        with self.db.session(write=True) as s:
            conv = self._owned(s, user, conversation_id)
            conv.problem = clean or None
            conv.updated = self.clock()
        return clean

    def mark_stopped(self, user: User, conversation_id: str, answer_id: int) -> None:
        with self.db.session() as s:
            self._answer(s, user, conversation_id, answer_id).stopped = True

    def _answer(self, s: Session, user: User, conversation_id: str, answer_id: int) -> Message:
        conv = self._owned(s, user, conversation_id)
        msg = s.scalars(
            select(Message).where(
                Message.id == int(answer_id),
                Message.conversation_id == conv.id,
                Message.role == "assistant",
            )
        ).first()
        if msg is None:
            raise NotFound("no such answer")
        return msg

    # --- feedback ------------------------------------------------------------------------------
    def add_feedback(
        self, user: User, conversation_id: str, answer_id: int, liked: bool, comment: str = ""
    ) -> int:
        """👍/👎 (and an optional comment) on one of the user's answers; rating it again replaces it."""
        with self.db.session(write=True) as s:
            msg = self._answer(s, user, conversation_id, answer_id)
            question = s.scalar(
                select(Message.content).where(
                    Message.conversation_id == msg.conversation_id, Message.position == msg.position - 1
                )
            )
            sources = [
                {k: src.get(k) for k in ("n", "source", "title", "unit_id")}
                for src in (msg.result or {}).get("sources", [])
            ]
            fb = s.scalars(
                select(Feedback).where(Feedback.message_id == msg.id, Feedback.user_id == user.id)
            ).first()
            if fb is None:
                fb = Feedback(user_id=user.id, conversation_id=msg.conversation_id, message_id=msg.id)
                s.add(fb)
            fb.liked = bool(liked)
            fb.comment = str(comment or "").strip()
            fb.question = question or ""
            fb.answer = msg.content
            fb.sources = sources
            fb.created = self.clock()
            s.flush()
            return fb.id

    def feedback(self, actor: User | None) -> list[dict[str, Any]]:
        """All feedback, oldest first. Admins only; `None` is the operator at the command line (who
        holds the database anyway)."""
        if actor is not None and not actor.is_admin:
            raise Forbidden("only an admin reads all feedback")
        query = (
            select(Feedback, User.name)
            .outerjoin(User, User.id == Feedback.user_id)
            .order_by(Feedback.created, Feedback.id)
        )
        with self.db.session() as s:
            return [
                {
                    "time": fb.created.isoformat(timespec="seconds"),
                    "user": name,
                    "liked": fb.liked,
                    "comment": fb.comment,
                    "question": fb.question,
                    "answer": fb.answer,
                    "sources": fb.sources,
                    "conversation_id": fb.conversation_id,
                    "message_id": fb.message_id,
                }
                for fb, name in s.execute(query)
            ]

    def export_feedback(self, out: TextIO, actor: User | None = None) -> int:
        """All feedback as JSON lines; returns how many."""
        rows = self.feedback(actor)
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return len(rows)
