"""Shared by the store and web tests: a database fixture over a real SQLite file and a real PostgreSQL
server, a clock the tests move by hand, and the web handlers over accounts in a database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

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


@contextmanager
def web_handlers(
    settings: Any,
    embedder: Any,
    llm: Any,
    users: tuple[str, ...] = ("alice", "bob"),
    admins: tuple[str, ...] = (),
) -> Iterator[SimpleNamespace]:
    """The web layer's handlers as the app builds them, without a server: an ingested Assistant over
    the given engine, accounts with logins on (password "pw") in a SQLite file under `data_dir`, and
    the chat and documents tabs. For tests that call the handlers as any client could."""
    from assistant.core import Assistant
    from assistant.store import Accounts, ConversationStore
    from assistant.web.auth import WebContext
    from assistant.web.chat_tab import ChatTab
    from assistant.web.documents_tab import DocumentsTab

    assistant = Assistant(settings, embedder=embedder, llm=llm)
    assistant.ingest()
    database = open_database(settings)
    accounts = Accounts(database, settings)
    for name in users:
        accounts.add(name, "pw")
    for name in admins:
        accounts.add(name, "pw", admin=True)
    web = WebContext(db=database, accounts=accounts, conversations=ConversationStore(database), auth=True)
    try:
        yield SimpleNamespace(
            assistant=assistant, web=web, chat=ChatTab(assistant, web), docs=DocumentsTab(assistant, web)
        )
    finally:
        database.dispose()


def req(user: str | None, tab: str = "t", query: dict | None = None) -> SimpleNamespace:
    """What a Gradio request carries for a handler: the tab's session, the signed-in user, the URL query."""
    return SimpleNamespace(session_hash=f"{user}-{tab}", username=user, query_params=query or {})
