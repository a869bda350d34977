"""Answers being written, per browser tab: what Stop reaches, and which answer owns the tab's chat.

Each answer registers its own stop event under its tab (Gradio's session hash). Stop sets every
event of that tab, whenever it is pressed (during the follow-up rewrite too: the chain passes the
event to every generation of the turn). A newer answer in the same tab (Retry while one streams, a
second question) supersedes the older one: the older is stopped and stops writing to the chat, and
its cleanup removes only its own entry, never the newer one's.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Turn:
    tab: str
    id: int
    stop: threading.Event = field(default_factory=threading.Event, compare=False)
    # what the user sent (question, attachment): Retry while this answer streams sends it again
    sent: dict = field(default_factory=dict, compare=False)


class TabTurns:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._running: dict[str, dict[int, Turn]] = {}  # tab -> its answers being written
        self._owner: dict[str, int] = {}  # tab -> the answer that owns its chat

    def start(self, tab: str, **sent: object) -> Turn:
        """Register a new answer for `tab` with what the user sent; an older one still running there
        is superseded."""
        with self._lock:
            turn = Turn(tab, next(self._ids), sent=sent)
            for older in self._running.get(tab, {}).values():
                older.stop.set()
            self._running.setdefault(tab, {})[turn.id] = turn
            self._owner[tab] = turn.id
            return turn

    def owns_chat(self, turn: Turn) -> bool:
        with self._lock:
            return self._owner.get(turn.tab) == turn.id

    def stop(self, tab: str) -> int:
        """Stop every answer being written in `tab`; returns how many."""
        with self._lock:
            turns = list(self._running.get(tab, {}).values())
        for turn in turns:
            turn.stop.set()
        return len(turns)

    def supersede(self, tab: str) -> Turn | None:
        """Stop the tab's answers and take the chat from them (Retry, Clear); returns the answer
        that owned the chat, if one was still being written."""
        with self._lock:
            owner = self._owner.pop(tab, None)
            turn = self._running.get(tab, {}).get(owner) if owner is not None else None
        self.stop(tab)
        return turn

    def finish(self, turn: Turn) -> None:
        with self._lock:
            running = self._running.get(turn.tab, {})
            running.pop(turn.id, None)
            if not running:
                self._running.pop(turn.tab, None)
            if self._owner.get(turn.tab) == turn.id:
                del self._owner[turn.tab]

    def running(self, tab: str) -> int:
        with self._lock:
            return len(self._running.get(tab, {}))
