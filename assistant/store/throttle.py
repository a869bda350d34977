"""Slowing down repeated failed logins, per throttle key, with the counts kept where every replica
sees them (the database) or, for tests and tools, in memory.

The rule (settings `login_*`): the first `free` failures for a key cost nothing; after that each
attempt must wait `login_delay_s`, doubled at every further failure, up to `login_max_delay_s`. An
attempt made while any of its keys must wait is refused without checking the password (so guessing
gets no faster by hammering), and does not count. Failures are forgotten
`login_failure_window_minutes` after the last one. Which keys an attempt has is the caller's choice
(`Accounts.login_keys`): the account and client together, the client, the account from unknown
browsers, and a global ceiling, so a stranger can slow down their own guesses but never lock an
account's owner out of a browser the owner logged in from.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import case, delete, select


@dataclass(frozen=True)
class Key:
    name: str
    free: int  # failures that cost nothing before the delays start


class ThrottleState(Protocol):
    def read(self, keys: list[str]) -> dict[str, tuple[int, float]]:
        """key -> (failures, unix time of the last one), for the keys that have a record."""

    def fail(self, keys: list[str], now: float, window_s: float) -> None:
        """Count one more failure for each key (a record older than the window starts again at 1)."""

    def clear(self, keys: list[str]) -> None: ...


class MemoryState:
    """Counts in this process only (tests, a single-process tool)."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def read(self, keys: list[str]) -> dict[str, tuple[int, float]]:
        with self._lock:
            return {k: self.records[k] for k in keys if k in self.records}

    def fail(self, keys: list[str], now: float, window_s: float) -> None:
        with self._lock:
            for key in keys:
                failures, last = self.records.get(key, (0, now))
                self.records[key] = (1 if now - last > window_s else failures + 1, now)
            if len(self.records) > 100_000:  # an attacker inventing names cannot grow this forever
                for key in [k for k, (_, last) in self.records.items() if now - last > window_s]:
                    del self.records[key]

    def clear(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self.records.pop(key, None)


class DatabaseState:
    """Counts in the database's `login_failures` table: every replica of the app counts the same
    failures. One upsert per failed attempt; stale rows are deleted as new failures arrive."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def read(self, keys: list[str]) -> dict[str, tuple[int, float]]:
        from assistant.store.models import LoginFailure

        with self.db.session() as s:
            rows = s.execute(
                select(LoginFailure.key, LoginFailure.failures, LoginFailure.last).where(
                    LoginFailure.key.in_(keys)
                )
            )
            return {key: (failures, last) for key, failures, last in rows}

    def fail(self, keys: list[str], now: float, window_s: float) -> None:
        from assistant.store.models import LoginFailure

        dialect = self.db.engine.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        table = LoginFailure.__table__
        stmt = insert(table).values([{"key": k, "failures": 1, "last": now} for k in keys])
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "failures": case((table.c.last < now - window_s, 1), else_=table.c.failures + 1),
                "last": now,
            },
        )
        with self.db.session(write=True) as s:
            s.execute(stmt)
            s.execute(delete(LoginFailure).where(LoginFailure.last < now - window_s))

    def clear(self, keys: list[str]) -> None:
        from assistant.store.models import LoginFailure

        with self.db.session() as s:
            s.execute(delete(LoginFailure).where(LoginFailure.key.in_(keys)))


class LoginThrottle:
    def __init__(
        self,
        state: ThrottleState | None = None,
        delay_s: float = 1.0,
        max_delay_s: float = 900.0,
        window_s: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state if state is not None else MemoryState()
        self.delay_s = delay_s
        self.max_delay_s = max_delay_s
        self.window_s = window_s
        self.clock = clock

    @classmethod
    def from_settings(
        cls, settings: Any, state: ThrottleState | None = None, clock: Callable[[], float] = time.time
    ) -> LoginThrottle:
        return cls(
            state,
            delay_s=settings.login_delay_s,
            max_delay_s=settings.login_max_delay_s,
            window_s=settings.login_failure_window_minutes * 60,
            clock=clock,
        )

    def delay_after(self, failures: int, free: int) -> float:
        """Seconds an attempt must wait after this many consecutive failures, `free` of them free."""
        extra = failures - free
        if extra <= 0:
            return 0.0
        return min(self.max_delay_s, self.delay_s * 2 ** min(extra - 1, 60))

    def wait(self, keys: Iterable[Key]) -> float:
        """Seconds before an attempt with these keys is allowed (0: go ahead)."""
        keys = list(keys)
        if not keys:
            return 0.0
        now = self.clock()
        records = self.state.read([k.name for k in keys])
        waits = [0.0]
        for key in keys:
            if key.name in records:
                failures, last = records[key.name]
                if now - last <= self.window_s:
                    waits.append(last + self.delay_after(failures, key.free) - now)
        return max(0.0, max(waits))

    def failed(self, keys: Iterable[Key]) -> None:
        if names := [k.name for k in keys]:
            self.state.fail(names, self.clock(), self.window_s)

    def succeeded(self, keys: Iterable[Key]) -> None:
        if names := [k.name for k in keys]:
            self.state.clear(names)
