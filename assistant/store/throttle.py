"""Slowing down repeated failed logins, per account name and per client.

The rule (settings `login_*`): the first `login_free_failures` failures for a key cost nothing; after
that each attempt must wait `login_delay_s`, doubled at every further failure, up to
`login_max_delay_s`. An attempt made while a key must wait is refused without checking the password
(so guessing gets no faster by hammering), and does not count. A success clears the name's count;
failures are forgotten `login_failure_window_minutes` after the last one. The state lives in the
server's memory: a restart forgets it, and it is per process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass
class _Record:
    failures: int = 0
    last: float = 0.0


class LoginThrottle:
    def __init__(
        self,
        free_failures: int = 5,
        delay_s: float = 1.0,
        max_delay_s: float = 900.0,
        window_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.delay_s = delay_s
        self.max_delay_s = max_delay_s
        self.window_s = window_s
        self.clock = clock
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: object, clock: Callable[[], float] = time.monotonic) -> LoginThrottle:
        return cls(
            free_failures=settings.login_free_failures,  # type: ignore[attr-defined]
            delay_s=settings.login_delay_s,  # type: ignore[attr-defined]
            max_delay_s=settings.login_max_delay_s,  # type: ignore[attr-defined]
            window_s=settings.login_failure_window_minutes * 60,  # type: ignore[attr-defined]
            clock=clock,
        )

    def delay_after(self, failures: int) -> float:
        """Seconds an attempt must wait after this many consecutive failures."""
        extra = failures - self.free_failures
        if extra <= 0:
            return 0.0
        return min(self.max_delay_s, self.delay_s * 2 ** min(extra - 1, 60))

    def _live(self, key: str, now: float) -> _Record | None:
        rec = self._records.get(key)
        if rec is not None and now - rec.last > self.window_s:
            del self._records[key]
            return None
        return rec

    def wait(self, keys: Iterable[str]) -> float:
        """Seconds before an attempt for these keys is allowed (0: go ahead)."""
        now = self.clock()
        with self._lock:
            waits = [0.0]
            for key in keys:
                rec = self._live(key, now)
                if rec is not None:
                    waits.append(rec.last + self.delay_after(rec.failures) - now)
            return max(0.0, max(waits))

    def failed(self, keys: Iterable[str]) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                rec = self._live(key, now) or self._records.setdefault(key, _Record())
                rec.failures += 1
                rec.last = now
            if len(self._records) > 100_000:  # an attacker inventing names cannot grow this forever
                for key in [k for k, r in self._records.items() if now - r.last > self.window_s]:
                    del self._records[key]

    def succeeded(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._records.pop(key, None)
