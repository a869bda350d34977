"""Saved conversations and roles through the web handlers, called as an attacker would call them
(any value for any input: Gradio hands the server whatever the client sends), on the real index, the
tiny model and accounts in a SQLite file."""

from __future__ import annotations

import gradio as gr
import pytest
from store_helpers import req, web_handlers

from assistant.settings import Settings
from assistant.web.conversations_panel import NO_SUCH

Q1 = "My GPU keeps running out of memory while training, what can I do?"
Q2 = "How can I ensure the reproducibility of my deep learning project?"


@pytest.fixture(scope="module")
def app(tmp_path_factory, embedder, tiny_engine):
    settings = Settings(data_dir=tmp_path_factory.mktemp("access"), llm_max_new_tokens=24)
    with web_handlers(settings, embedder, tiny_engine, admins=("root",)) as handlers:
        yield handlers


def ask(chat, question, *, user, conversation=(), conv_id=None, tab="t"):
    """respond() to the end, with the inputs the page sends; the last output."""
    outs = list(chat.respond(question, [], list(conversation), 2, 0.0, 24, conv_id, req(user, tab)))
    return outs[-1]


def alice_conversation(app):
    last = ask(app.chat, Q1, user="alice")
    conv_id = last[6]
    assert conv_id and last[2][-1]["answer_id"]
    return conv_id, last


def test_answers_are_saved_and_a_resumed_conversation_continues_from_the_database(app, monkeypatch):
    conv_id, last = alice_conversation(app)
    alice = app.web.accounts.get("alice")
    saved = app.web.conversations.get(alice, conv_id)
    assert saved.title.startswith("My GPU keeps running out of memory")
    assert [t.question for t in saved.turns] == [Q1]
    assert saved.turns[0].answer["sources"] and saved.turns[0].answer == last[2][-1]["answer"]
    # A reload: the page asks for the conversation in its URL and gets it back, sources and all.
    shown, data, sources, _details, _status, opened, title, listing = app.chat.panel.restore(
        req("alice", "reloaded", {"c": conv_id})
    )
    assert opened == conv_id and title == saved.title
    assert shown[0] == {"role": "user", "content": Q1} and data[0]["answer_id"] == saved.turns[0].answer_id
    assert saved.turns[0].answer["sources"][0]["title"] in sources
    assert (saved.title, conv_id) in listing.choices
    # The follow-up in the reloaded tab sends the saved history to the model.
    seen = []
    real = app.assistant.ask_stream
    monkeypatch.setattr(
        app.assistant, "ask_stream", lambda q, history, **kw: seen.append(history) or real(q, history, **kw)
    )
    after = ask(app.chat, "how does the second one work?", user="alice", conversation=data, conv_id=conv_id)
    assert seen == [app.web.conversations.history(alice, conv_id)[:2]]
    assert after[6] == conv_id and len(app.web.conversations.get(alice, conv_id).turns) == 2


def test_another_user_gets_nothing_of_a_conversation_even_with_its_id(app):
    conv_id, last = alice_conversation(app)
    alice = app.web.accounts.get("alice")
    before = app.web.conversations.get(alice, conv_id)
    bob = req("bob")
    missing = "x" * len(conv_id)

    def refused(call, *args):
        """Refused with exactly the words a conversation that does not exist gets."""
        with pytest.raises(gr.Error) as mine:
            call(*args)
        return str(mine.value.message)

    panel, chat = app.chat.panel, app.chat
    for target in (conv_id, missing):
        assert refused(panel.open, target, bob) == NO_SUCH
        assert refused(panel.rename, target, "pwned", "", bob) == NO_SUCH
        assert refused(panel.delete, target, "", bob) == NO_SUCH
        with pytest.raises(gr.Error, match=NO_SUCH):
            list(chat.respond("and then?", [], [], 2, 0.0, 24, target, bob))
        # Even with A's answer id in a forged tab state, a thumb does not land on A's answer.
        like = gr.LikeData(None, {"index": 1, "value": "", "liked": False})
        assert refused(chat.like, like, last[2], target, "", bob) == NO_SUCH
    # A reload with A's id in B's address bar: a new chat, and B's list holds none of A's.
    state = panel.restore(req("bob", "t", {"c": conv_id}))
    assert state[:7] == panel.empty() and all(c[1] != conv_id for c in state[7].choices)
    assert panel.refresh("GPU", None, bob).choices == []  # searching A's words finds nothing
    after = app.web.conversations.get(alice, conv_id)
    assert after.title == before.title and len(after.turns) == len(before.turns)
    assert app.web.conversations.feedback(None) == [] or all(
        f["user"] != "bob" for f in app.web.conversations.feedback(None)
    )
    # …while A herself renames, rates and deletes it.
    like = gr.LikeData(None, {"index": 1, "value": "", "liked": True})
    assert chat.like(like, last[2], conv_id, "cites the right FAQ", req("alice")) == ""
    assert any(
        f["user"] == "alice" and f["liked"] and f["comment"] == "cites the right FAQ"
        for f in app.web.conversations.feedback(None)
    )
    assert ("Mine", conv_id) in panel.rename(conv_id, "Mine", "", req("alice")).choices
    panel.delete(conv_id, "", req("alice"))
    assert refused(panel.open, conv_id, req("alice")) == NO_SUCH


def test_without_a_login_every_handler_refuses(app):
    nobody = req(None)
    for call, args in [
        (app.chat.panel.open, ("x",)),
        (app.chat.panel.restore, ()),
        (app.chat.panel.refresh, ("", None)),
        (app.docs.remove, ("/etc/passwd",)),
    ]:
        with pytest.raises(gr.Error, match="Log in first|administrator"):
            call(*args, nobody)
    with pytest.raises(gr.Error, match="Log in first"):
        list(app.chat.respond(Q2, [], [], 2, 0.0, 24, None, nobody))
    assert not app.chat.may_switch_model(nobody)


def test_only_an_admin_adds_or_removes_documents_or_switches_the_model(app, tmp_path):
    doc = tmp_path / "team-notes.md"
    doc.write_text("# Notes\n\n### What is zorblax?\n\nZorblax rescales activations by their median.\n")
    store = app.assistant.store
    before = store.count()
    for user in ("alice", "bob"):
        with pytest.raises(gr.Error, match="Only an administrator"):
            app.docs.upload([str(doc)], request=req(user))
        victim = next(iter(store.files()))  # a document id
        with pytest.raises(gr.Error, match="Only an administrator"):
            app.docs.remove(victim, req(user))
        assert app.docs.load(req(user)) == (gr.skip(), gr.skip())  # the list is an admin's only
        with pytest.raises(gr.Error, match="Only an administrator"):
            app.chat.switch_model("auto", req(user))
    assert store.count() == before and not any(app.assistant.settings.uploads_dir.glob("*/team-notes.md"))
    status, *_ = app.docs.upload([str(doc)], request=req("root"))
    assert "units indexed" in status and store.count() > before
    doc_id = next(d for d, f in store.files().items() if f["path"].endswith("team-notes.md"))
    with pytest.raises(gr.Error, match="not in this server's index") as refused:  # a path names nothing
        app.docs.remove(store.files()[doc_id]["path"], req("root"))
    assert "/" not in str(refused.value)  # and the error lists no path of the server
    status, *_ = app.docs.remove(doc_id, req("root"))
    assert "Removed" in status and store.count() == before
    assert app.chat.may_switch_model(req("root"))


def test_retry_takes_the_last_exchange_back_from_the_saved_conversation(app):
    conv_id, last = alice_conversation(app)
    alice = app.web.accounts.get("alice")
    saved = app.web.conversations.get
    second = list(app.chat.respond(Q2, last[1], last[2], 2, 0.0, 24, conv_id, req("alice")))[-1]
    shown, data = second[1], second[2]
    # Bob's Retry on Alice's conversation (her tab's state forged into his call) takes nothing away.
    with pytest.raises(gr.Error, match=NO_SUCH):
        app.chat.retry(shown, data, conv_id, req("bob"))
    assert [t.question for t in saved(alice, conv_id).turns] == [Q1, Q2]
    question, kept_shown, kept = app.chat.retry(shown, data, conv_id, req("alice"))
    assert question == Q2 and len(kept) == 1 and len(kept_shown) == 2
    assert [t.question for t in saved(alice, conv_id).turns] == [Q1]  # a reload shows what the tab shows
    list(app.chat.respond(Q2, kept_shown, kept, 2, 0.0, 24, conv_id, req("alice")))
    assert [t.question for t in saved(alice, conv_id).turns] == [Q1, Q2]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/?c=abc", "/?c=abc"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
    ],
)
def test_after_logging_in_the_page_only_returns_to_a_path_of_this_server(target, expected):
    from assistant.web.auth import local_path

    assert local_path(target) == expected
