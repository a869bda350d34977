"""Shared by the store tests: a database fixture over a real SQLite file and a real PostgreSQL server,
and a clock the tests move by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from assistant.store import Database, open_database


class Clock:
    """Aware UTC 'now' that only moves when a test says so."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'assistant.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    database = open_database(url=url)
    yield database
    database.dispose()
