"""Requests that race on a fresh database: a fresh app's first page asks for its one local user from
several requests at once (the conversation list, the documents tab, the chat), and each must get it."""

from __future__ import annotations

import threading

from pg_server import postgres  # noqa: F401 - fixture
from store_helpers import db  # noqa: F401 - fixture

from assistant.settings import Settings
from assistant.store import Accounts


def test_the_local_user_asked_for_by_several_requests_at_once_is_one_user(db):  # noqa: F811
    # on SQLite the reads turned into writes at once: all but one failed with "database is locked"
    # (the first page of the browser test showed "Something went wrong on the server")
    accounts = Accounts(db, Settings())
    start = threading.Barrier(8)
    ids: list[int] = []
    errors: list[BaseException] = []

    def ask() -> None:
        start.wait()
        try:
            ids.append(accounts.local_user().id)
        except BaseException as exc:  # noqa: BLE001 - every failure is what the test reports
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(ids) == 8 and len(set(ids)) == 1
    assert accounts.local_user().id == ids[0]
