"""Saved conversations on a real SQLite file and a real PostgreSQL server: round trip, search, owner
isolation tried as an attacker would, all-or-nothing turns (an injected failure and a SIGKILL mid-write),
feedback, and the schema's upgrade path from its first version."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from pg_server import postgres  # noqa: F401 - fixture
from store_helpers import Clock, db  # noqa: F401 - fixture

from assistant.chat.chain import Answer, Source
from assistant.store import Accounts, ConversationStore, Forbidden, NotFound, open_database
from assistant.store.db import current_revision, make_engine, upgrade
from assistant.store.models import Base, User
from assistant.web.chat_tab import chain_history


def answer(text: str, source: str = "faq.md", stopped: bool = False) -> dict:
    src = Source(
        1, "u1", source, "FAQ", "What is dropout?", "Dropout zeroes activations.", 0.8, "zeroes", 8, 14
    )
    notices = ["Stopped."] if stopped else []
    result = Answer(text, "what is dropout", False, sources=[src], notices=notices, timings={"total_s": 1.5})
    return result.to_dict()


@pytest.fixture()
def users(db, settings):  # noqa: F811
    accounts = Accounts(db, settings)
    return (
        accounts.add("alice", "pw-a"),
        accounts.add("bob", "pw-b"),
        accounts.add("root", "pw-r", admin=True),
    )


def test_a_conversation_comes_back_as_the_chain_reads_it(db, settings):  # noqa: F811
    clock = Clock()
    store = ConversationStore(db, clock=clock)
    alice = Accounts(db, settings).local_user()
    conv = store.create(alice)
    assert conv.title == "New chat" and len(conv.id) >= 32
    first = answer("Dropout zeroes random activations [1].")
    store.append_turn(alice, conv.id, "  What is   dropout?", first)
    clock.advance(minutes=1)
    store.append_turn(alice, conv.id, "and why does it help?", answer("It prevents co-adaptation [1]."))

    view = store.get(alice, conv.id)
    assert view.title == "What is dropout?"  # named by the first question, whitespace tidied
    assert view.updated - view.created == clock.now - view.created
    assert [t.question for t in view.turns] == ["  What is   dropout?", "and why does it help?"]
    # the whole result comes back: sources with spans, the rewritten question, timings
    assert view.turns[0].answer == json.loads(json.dumps(first))
    assert view.turns[0].answer["sources"][0]["span_start"] == 8
    # the history a follow-up sends is exactly what the live chat tab builds from the same turns
    live = [{"index": i, "question": t.question, "answer": t.answer} for i, t in enumerate(view.turns)]
    assert store.history(alice, conv.id) == chain_history(live)
    assert store.history(alice, conv.id)[-1] == {
        "role": "assistant",
        "content": "It prevents co-adaptation [1].",
    }


def test_list_is_newest_first_and_searches_titles_and_content(db, users):  # noqa: F811
    alice = users[0]
    clock = Clock()
    store = ConversationStore(db, clock=clock)
    ids = []
    for question, reply in [
        ("What is dropout?", "Dropout zeroes activations."),
        ("How do I pick a learning rate?", "Try a range test; 100% of runs improved."),
        ("Why is my GPU out of memory?", "Lower the batch size."),
    ]:
        clock.advance(minutes=1)
        conv = store.create(alice)
        store.append_turn(alice, conv.id, question, answer(reply))
        ids.append(conv.id)
    assert [c.id for c in store.list(alice)] == ids[::-1]
    clock.advance(minutes=1)
    store.append_turn(alice, ids[0], "more?", answer("More."))  # a new turn brings it to the top
    assert [c.id for c in store.list(alice)][0] == ids[0]

    assert [c.id for c in store.list(alice, search="LEARNING rate")] == [ids[1]]  # title, any case
    assert [c.id for c in store.list(alice, search="batch size")] == [ids[2]]  # answer text
    assert [c.id for c in store.list(alice, search="100%")] == [ids[1]]  # % is a character, not a wildcard
    assert store.list(alice, search="_") == [] and store.list(alice, search="transformer") == []

    store.rename(alice, ids[2], "  GPU   memory ")
    assert store.get(alice, ids[2]).title == "GPU memory"
    with pytest.raises(ValueError, match="empty"):
        store.rename(alice, ids[2], "   ")
    store.delete(alice, ids[2])
    with pytest.raises(NotFound):
        store.get(alice, ids[2])
    assert len(store.list(alice)) == 2


def test_another_user_cannot_touch_a_conversation_even_with_its_id(db, users):  # noqa: F811
    alice, bob, _ = users
    store = ConversationStore(db)
    conv = store.create(alice)
    turn = store.append_turn(alice, conv.id, "What is dropout?", answer("Dropout [1]."))
    before = store.get(alice, conv.id)
    bobs = store.create(bob)

    attempts = {
        "read": lambda cid: store.get(bob, cid),
        "history": lambda cid: store.history(bob, cid),
        "rename": lambda cid: store.rename(bob, cid, "mine now"),
        "delete": lambda cid: store.delete(bob, cid),
        "append": lambda cid: store.append_turn(bob, cid, "continue", answer("x")),
        "stop": lambda cid: store.mark_stopped(bob, cid, turn.answer_id),
        "feedback": lambda cid: store.add_feedback(bob, cid, turn.answer_id, False, "bad"),
        "problem": lambda cid: store.problem(bob, cid),
        "set problem": lambda cid: store.set_problem(bob, cid, {"model": "mine now"}),
    }
    for name, attempt in attempts.items():
        with pytest.raises(NotFound) as stolen:
            attempt(conv.id)
        with pytest.raises(NotFound) as missing:
            attempt("no-such-conversation-id")
        assert str(stolen.value) == str(missing.value), f"{name} reveals that the id exists"
    # A's answer id through B's own conversation does not work either
    with pytest.raises(NotFound):
        store.add_feedback(bob, bobs.id, turn.answer_id, False)
    with pytest.raises(NotFound):
        store.mark_stopped(bob, bobs.id, turn.answer_id)
    # B lists and searches only his own
    assert [c.id for c in store.list(bob)] == [bobs.id]
    assert store.list(bob, search="dropout") == []
    # and A's conversation is exactly as it was
    after = store.get(alice, conv.id)
    assert after == before and store.feedback(None) == []


def test_an_attached_run_and_the_problem_card_are_kept_with_the_conversation(db, users):  # noqa: F811
    alice, _, _ = users
    store = ConversationStore(db)
    conv = store.create(alice)
    run = {"name": "metrics.csv", "format": "lightning-csv", "findings": [{"kind": "plateau"}], "png": "iVBO"}
    turn = store.append_turn(
        alice, conv.id, "Why does my loss plateau?", answer("Lower the LR [1]."), attachment=run
    )
    store.append_turn(alice, conv.id, "What should I change first?", answer("The LR [1]."))
    assert turn.attachment == run
    assert store.problem(alice, conv.id) == {}
    card = store.set_problem(alice, conv.id, {"model": "ResNet-50", "hardware": "RTX 3060 12 GB", "data": ""})
    assert card == {"model": "ResNet-50", "hardware": "RTX 3060 12 GB"}  # empty fields are dropped
    view = store.get(alice, conv.id)
    assert [t.attachment for t in view.turns] == [run, None]
    assert store.history(alice, conv.id)[0] == {"role": "user", "content": "Why does my loss plateau?"}
    run_with_question = {**run, "question": "The training loss stops improving after epoch 4."}
    turn = store.append_turn(alice, conv.id, "📎 metrics.csv", None, attachment=run_with_question)
    assert store.history(alice, conv.id)[-1] == {"role": "user", "content": run_with_question["question"]}
    store.truncate(alice, conv.id, turn.question_id)
    assert view.problem == card == store.problem(alice, conv.id)
    assert store.set_problem(alice, conv.id, {}) == {} and store.get(alice, conv.id).problem == {}


def test_a_failure_mid_turn_leaves_the_conversation_as_it_was(db, users):  # noqa: F811
    alice = users[0]
    store = ConversationStore(db)
    conv = store.create(alice)
    store.append_turn(alice, conv.id, "What is dropout?", answer("Dropout [1]."))
    before = store.get(alice, conv.id)

    writes: list[str] = []

    def fail_on_second_write(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            writes.append(statement)
            if len(writes) == 2:
                raise RuntimeError("disk pulled out mid-write")

    sa.event.listen(db.engine, "before_cursor_execute", fail_on_second_write)
    try:
        with pytest.raises(RuntimeError, match="mid-write"):
            store.append_turn(alice, conv.id, "and why?", answer("Because [1]."))
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", fail_on_second_write)
    assert len(writes) == 2  # one write of the turn went through before the failure

    fresh = open_database(url=db.engine.url.render_as_string(hide_password=False))
    try:
        assert ConversationStore(fresh).get(alice, conv.id) == before
        with fresh.session() as s:
            assert s.scalar(sa.text("SELECT count(*) FROM messages")) == 2
    finally:
        fresh.dispose()


CRASH = """
import os, signal, sys
import sqlalchemy as sa
from assistant.store import ConversationStore, open_database
from assistant.store.models import User
db = open_database(url=sys.argv[1])
with db.session() as s:
    alice = s.scalars(sa.select(User).where(User.name == "alice")).one()
def log(conn, cursor, statement, *rest):
    print(statement.split("(")[0].strip(), file=sys.stderr, flush=True)
def die(session):  # every write of the turn is sent, the transaction not yet committed
    os.kill(os.getpid(), signal.SIGKILL)
sa.event.listen(db.engine, "before_cursor_execute", log)
sa.event.listen(db.sessions, "before_commit", die)
ConversationStore(db).append_turn(alice, sys.argv[2], "and why?", {"answer": "Because."})
"""


def test_a_process_killed_mid_turn_leaves_the_conversation_as_it_was(tmp_path, settings):
    path = tmp_path / "assistant.db"
    database = open_database(url=f"sqlite:///{path}")
    alice = Accounts(database, settings).add("alice", "pw")
    store = ConversationStore(database)
    conv = store.create(alice)
    store.append_turn(alice, conv.id, "What is dropout?", answer("Dropout [1]."))
    before = store.get(alice, conv.id)
    database.dispose()

    done = subprocess.run(
        [sys.executable, "-c", CRASH, f"sqlite:///{path}", conv.id],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr  # it really died mid-write
    assert "INSERT INTO messages" in done.stderr and "UPDATE conversations" in done.stderr
    database = open_database(url=f"sqlite:///{path}")
    try:
        assert ConversationStore(database).get(alice, conv.id) == before
        with database.session() as s:
            assert s.execute(sa.text("PRAGMA integrity_check")).scalar() == "ok"
    finally:
        database.dispose()


def test_stopped_answers_and_feedback_with_export(db, users):  # noqa: F811
    alice, bob, root = users
    store = ConversationStore(db)
    conv = store.create(alice)
    stopped = store.append_turn(
        alice, conv.id, "What is dropout?", answer("Dropout zer", stopped=True), stopped=True
    )
    done = store.append_turn(alice, conv.id, "and batch norm?", answer("It normalises [1]."))
    store.mark_stopped(alice, conv.id, done.answer_id)
    assert [t.stopped for t in store.get(alice, conv.id).turns] == [True, True]
    with pytest.raises(NotFound):  # a question is not an answer
        store.mark_stopped(alice, conv.id, done.question_id)

    store.add_feedback(alice, conv.id, stopped.answer_id, True)
    store.add_feedback(alice, conv.id, stopped.answer_id, False, "  cut off  ")  # rating again replaces
    store.add_feedback(alice, conv.id, done.answer_id, True, "clear")
    with pytest.raises(Forbidden):
        store.feedback(bob)
    rows = store.feedback(root)
    assert [(r["liked"], r["comment"], r["question"]) for r in rows] == [
        (False, "cut off", "What is dropout?"),
        (True, "clear", "and batch norm?"),
    ]
    assert rows[1]["user"] == "alice" and rows[1]["sources"][0] == {
        "n": 1,
        "source": "faq.md",
        "title": "What is dropout?",
        "unit_id": "u1",
    }

    store.delete(alice, conv.id)  # feedback outlives the conversation it was given in
    lines = []

    class Sink:
        def write(self, text: str) -> None:
            lines.append(text)

    assert store.export_feedback(Sink()) == 2  # type: ignore[arg-type]
    exported = [json.loads(line) for line in "".join(lines).splitlines()]
    assert [e["comment"] for e in exported] == ["cut off", "clear"]
    assert exported[0]["conversation_id"] is None and exported[0]["answer"] == "Dropout zer"


def test_schema_upgrades_from_its_first_version_and_matches_the_models(db, settings):  # noqa: F811
    """Create the database at revision 0001, fill it with what that version could hold, upgrade to head
    and find everything; then the upgraded schema equals what the models declare."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from argon2 import PasswordHasher

    url = db.engine.url.render_as_string(hide_password=False)
    db.dispose()
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).unlink()
    else:  # a fresh database on the same server
        with db.engine.connect() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            conn.commit()
    engine = make_engine(url)
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    meta = sa.MetaData()
    meta.reflect(engine)
    assert "api_keys" not in meta.tables and "conversations" in meta.tables
    t = meta.tables
    from datetime import datetime, timezone

    now = datetime(2025, 6, 1, tzinfo=timezone.utc)
    with engine.begin() as conn:
        conn.execute(
            t["users"].insert(),
            [
                {
                    "id": 1,
                    "name": "alice",
                    "role": "user",
                    "password_hash": PasswordHasher().hash("old-pw"),
                    "created": now,
                }
            ],
        )
        conn.execute(
            t["conversations"].insert(),
            [{"id": "c1", "owner_id": 1, "title": "What is dropout?", "created": now, "updated": now}],
        )
        conn.execute(
            t["messages"].insert(),
            [
                {
                    "conversation_id": "c1",
                    "position": 0,
                    "role": "user",
                    "content": "What is dropout?",
                    "result": None,
                    "stopped": False,
                    "created": now,
                },
                {
                    "conversation_id": "c1",
                    "position": 1,
                    "role": "assistant",
                    "content": "Dropout [1].",
                    "result": answer("Dropout [1]."),
                    "stopped": False,
                    "created": now,
                },
            ],
        )

    upgrade(engine, "head")
    assert current_revision(engine) == "0004"
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()

    upgraded = open_database(url=url)  # what the app does at startup: upgrade head (a no-op now)
    try:
        accounts = Accounts(upgraded, settings)
        alice = accounts.authenticate_password("alice", "old-pw")
        store = ConversationStore(upgraded)
        assert [c.id for c in store.list(alice)] == ["c1"]
        assert store.history(alice, "c1") == [
            {"role": "user", "content": "What is dropout?"},
            {"role": "assistant", "content": "Dropout [1]."},
        ]
        assert store.get(alice, "c1").turns[0].answer["sources"][0]["span"] == "zeroes"
        key = accounts.new_api_key("alice")  # the new tables work for the old rows
        assert accounts.authenticate_key(key).id == alice.id
        store.append_turn(alice, "c1", "and why?", answer("Because [1]."))
        assert len(store.history(alice, "c1")) == 4
        assert isinstance(alice, User)
    finally:
        upgraded.dispose()


def test_concurrent_turns_in_one_conversation_are_all_kept(db, users):  # noqa: F811
    """Two tabs (or a stopped answer and the next question) appending at once: every turn is kept,
    in one order, none lost to a clash over positions."""
    import threading

    alice = users[0]
    store = ConversationStore(db)
    conv = store.create(alice)
    errors: list[Exception] = []

    def tab(i: int) -> None:
        for j in range(4):
            try:
                store.append_turn(alice, conv.id, f"question {i}.{j}", {"answer": f"answer {i}.{j}"})
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                errors.append(exc)

    threads = [threading.Thread(target=tab, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    turns = store.get(alice, conv.id).turns
    assert sorted(t.question for t in turns) == sorted(
        f"question {i}.{j}" for i in range(6) for j in range(4)
    )
    assert all(t.answer["answer"] == t.question.replace("question", "answer") for t in turns)
