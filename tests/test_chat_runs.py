"""A training run attached in the chat, through the chat tab's handlers as Gradio calls them (any value
for any input), on the real index, the tiny model, the goldset's real logs and accounts in a SQLite
file: findings and curves at once, the answer to the symptom question, saved and shown again,
follow-ups about the run, bad input refused with nothing changed, and no way to read a server path or
another user's run."""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import gradio as gr
import pytest
from store_helpers import req, web_handlers

from assistant.runs import detect, parse_run
from assistant.settings import Settings
from assistant.web.auth import WebContext
from assistant.web.conversations_panel import NO_SUCH
from assistant.web.feedback import Feedback
from assistant.web.run_attach import NOT_UPLOADED, RunAttacher, split_pasted

LOGS = Path(__file__).parent / "goldsets" / "runs" / "logs"
OVERFIT = LOGS / "overfit_blobs.keras.csv"  # overfitting from epoch 3
DIVERGED = LOGS / "diverged_blobs_nan.console.log"
HEALTHY_CONSOLE = LOGS / "healthy_blobs_adam.console.log"


@pytest.fixture(scope="module")
def app(tmp_path_factory, embedder, tiny_engine):
    settings = Settings(data_dir=tmp_path_factory.mktemp("chat-runs"), llm_max_new_tokens=24)
    with web_handlers(settings, embedder, tiny_engine) as handlers:
        yield handlers


@pytest.fixture()
def uploads(tmp_path, monkeypatch):
    """Gradio's upload folder (where its /upload route puts a file, in a folder of its own)."""
    folder = tmp_path / "gradio-uploads"
    folder.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))

    def upload(src: Path, name: str | None = None) -> str:
        dest = folder / uuid.uuid4().hex / (name or src.name)
        dest.parent.mkdir()
        shutil.copyfile(src, dest)
        return str(dest)

    return upload


def send(chat, message, *, user="alice", conversation=(), conv_id=None, tab="t", card=None) -> list:
    """respond() to the end with the inputs the page sends; every output as sent at that moment."""
    outs = chat.respond(message, [], list(conversation), 2, 0.0, 24, conv_id, req(user, tab), card)
    return [copy.deepcopy(out) for out in outs]


def conversations_of(app, user: str) -> list:
    return app.web.conversations.list(app.web.accounts.get(user))


# -- pasted text: a log or a question -------------------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "Why is my loss: 0.4 so high?",
        "My loss is stuck:\nloss: 0.4\nWhat should I do?",
        "I train a ResNet with lr=0.1, batch=64.\nAfter epoch 5 the loss stays at 0.4.\n"
        "val_loss: 0.6\nWhat should I change first?",
        "My run:\nepoch 1 loss: 0.9\nepoch 2 loss: 0.7\nepoch 3 loss: 0.6\nIs that a plateau?",  # 3 points
        "Which optimizer is best?\nAdam or SGD?\nI have 8 GB of memory.\nThanks, Ann",
        "/etc/passwd",
    ],
)
def test_a_question_with_numbers_in_it_stays_a_question(question, settings):
    words, run = RunAttacher(settings).read(question, "tab")
    assert run is None and words == question.strip()


@pytest.mark.parametrize(
    ("log", "fmt"),
    [
        ("healthy_blobs_adam.console.log", "console"),
        ("overfit_blobs.keras.csv", "csv"),
        ("healthy_blobs_adam.jsonl", "jsonl"),
        ("healthy_blobs_adam.trainer_state.json", "trainer-state"),
        ("unstable_regression_sgd.console.log", "console"),
    ],
)
def test_a_pasted_log_is_attached_with_the_words_around_it(log, fmt, settings):
    text = (LOGS / log).read_text()
    attacher = RunAttacher(settings)
    bare, run = attacher.read(text, "tab")
    assert bare == "" and run["format"] == fmt and run["findings"] and run["plot_png"]
    wrapped = f"Here is my training log:\n```\n{text}\n```\nWhy does it behave like this?"
    words, run2 = attacher.read({"text": wrapped, "files": []}, "tab")
    assert words == "Here is my training log:\nWhy does it behave like this?"
    assert run2["findings"] == run["findings"] and run2["rows"] == run["rows"]
    assert run2["question"].endswith("Why does it behave like this?")  # the user's words are asked
    assert split_pasted(wrapped)[0].strip() == text.strip()


def test_a_long_paste_that_the_box_turned_into_a_file_reads_as_typed(settings, uploads, tmp_path):
    """Gradio's box makes a paste over 1000 characters into `pasted_text.txt`: a log in it is
    attached, anything else is the question."""
    attacher = RunAttacher(settings)
    pasted = tmp_path / "pasted_text.txt"
    pasted.write_text(f"My run:\n{HEALTHY_CONSOLE.read_text()}\nIs it fine?")
    words, run = attacher.read({"text": "", "files": [uploads(pasted)]}, "tab")
    assert words == "My run:\nIs it fine?" and run["findings"][0]["kind"] == "healthy"
    long_question = "My model trains slowly and I wonder why. " * 40
    pasted.write_text(long_question)
    words, run = attacher.read({"text": "Please help.", "files": [uploads(pasted)]}, "tab")
    assert run is None and words == f"Please help.\n{long_question}".strip()


# -- attach, see, ask, save -----------------------------------------------------------------------------


def test_an_uploaded_log_shows_findings_and_curves_first_then_the_answer_and_is_saved(app, uploads):
    outs = send(app.chat, {"text": "Why does validation loss go up?", "files": [uploads(OVERFIT)]})
    first_bubble = outs[0][1][-1]["content"]  # the first thing the page shows, before any answer text
    assert "Your run: overfit\\_blobs.keras.csv" in first_bubble and "**overfitting**" in first_bubble
    turn = detect(parse_run(OVERFIT))[0].details["turn"]
    assert turn.startswith("epoch ") and f"at {turn}" in first_bubble  # the finding's evidence
    assert "](data:image/png;base64,iVBOR" in first_bubble  # the curves, inline
    assert first_bubble.endswith("---\n\n")  # nothing of the answer yet
    final = outs[-1]
    turn = final[2][-1]
    run, answer = turn["attachment"], turn["answer"]
    assert run["name"] == "overfit_blobs.keras.csv" and run["epochs"] == 100
    assert [f["kind"] for f in run["findings"]] == ["overfitting"]
    # The documents were asked the symptoms and the user's words, and the answer cites them.
    assert answer["standalone_question"] == run["question"]
    assert run["question"].startswith("Training loss keeps going down while validation loss goes up")
    assert run["question"].endswith("Why does validation loss go up?")
    given = answer["sources"] + answer["consulted"]
    assert not answer["abstained"] and any("overfitting" in s["title"] for s in given)
    assert given[0]["title"] in final[3]  # in the sources panel, as for any answer
    assert final[1][-1]["content"].startswith(first_bubble.split("---")[0])
    assert final[1][-2]["content"] == "Why does validation loss go up?\n\n📎 overfit\\_blobs.keras.csv"
    # Saved with the question, exactly as shown.
    saved = app.web.conversations.get(app.web.accounts.get("alice"), final[6])
    assert saved.turns[-1].attachment == run and saved.turns[-1].question == "Why does validation loss go up?"


def test_a_file_name_is_shown_literally(app, uploads):
    outs = send(app.chat, {"text": "", "files": [uploads(OVERFIT, "<i onclick=x>*run*.csv")]}, tab="name")
    user, bot = outs[-1][1][-2]["content"], outs[-1][1][-1]["content"]
    assert user == "📎 &lt;i onclick=x&gt;\\*run\\*.csv"
    assert "<i" not in bot and "Your run: &lt;i onclick=x&gt;\\*run\\*.csv**" in bot


def test_a_bare_upload_asks_what_is_wrong(app, uploads):
    outs = send(app.chat, {"text": "", "files": [uploads(DIVERGED)]}, tab="bare")
    turn = outs[-1][2][-1]
    assert turn["question"] == "📎 diverged_blobs_nan.console.log"  # names the saved conversation
    assert turn["attachment"]["findings"][0]["kind"] == "diverged"
    assert turn["attachment"]["question"].endswith("What is the likely cause and what should I change first?")
    assert outs[-1][1][-2]["content"] == "📎 diverged\\_blobs\\_nan.console.log"
    title = app.web.conversations.get(app.web.accounts.get("alice"), outs[-1][6]).title
    assert title == "📎 diverged_blobs_nan.console.log"


def test_follow_ups_are_about_the_run_live_and_after_a_reload(app, uploads, monkeypatch):
    chain = app.assistant.chain
    outs = send(app.chat, {"text": "", "files": [uploads(OVERFIT)]}, tab="follow")
    conversation, conv_id = outs[-1][2], outs[-1][6]
    symptoms = conversation[-1]["attachment"]["question"]
    histories, searched = [], []
    real_stream, real_retrieve = app.assistant.ask_stream, chain.retrieve
    monkeypatch.setattr(
        app.assistant, "ask_stream", lambda q, h, **kw: histories.append(h) or real_stream(q, h, **kw)
    )
    monkeypatch.setattr(chain, "retrieve", lambda queries: searched.append(queries) or real_retrieve(queries))
    # After a reload (another tab): the findings and the picture come back...
    shown, data, *_ = app.chat.panel.restore(req("alice", "reloaded", {"c": conv_id}))
    assert "**overfitting**" in shown[1]["content"] and "data:image/png;base64," in shown[1]["content"]
    assert data[0]["attachment"] == conversation[0]["attachment"]
    # ...and a follow-up, there or live, is about the run: the model reads its findings as the earlier
    # question, the follow-up is rewritten, and retrieval searches the symptoms.
    for tab, turns in (("reloaded", data), ("follow", conversation)):
        out = send(app.chat, "How do I fix it?", conversation=turns, conv_id=conv_id, tab=tab)
        assert histories[-1][0] == {"role": "user", "content": symptoms}
        assert out[-1][2][-1]["answer"]["rewritten"]
        turn = conversation[0]["attachment"]["findings"][0]["details"]["turn"]
        assert any(f"validation loss goes up after {turn}" in q for q in searched[-1])


def test_the_run_goes_on_the_problem_card_and_stays_in_view_for_later_turns(app, uploads, monkeypatch):
    """After the turn it came with, the run's findings are a line of the conversation's problem card,
    saved; every later turn's chain receives the card, not only the next one's history."""
    outs = send(app.chat, {"text": "", "files": [uploads(OVERFIT)]}, tab="card")
    conversation, conv_id = outs[-1][2], outs[-1][6]
    card = app.chat.problem.after_turn(conv_id, conversation, {}, req("alice", "card"))[0]
    assert card["run"].startswith(f"{OVERFIT.name}: overfitting")
    alice = app.web.accounts.get("alice")
    assert app.web.conversations.problem(alice, conv_id)["run"] == card["run"]
    cards = []
    real_stream = app.assistant.ask_stream
    monkeypatch.setattr(
        app.assistant,
        "ask_stream",
        lambda q, h, **kw: cards.append(kw.get("problem")) or real_stream(q, h, **kw),
    )
    for question in ["What should I change first?", "Is a smaller model an option?"]:
        out = send(app.chat, question, conversation=conversation, conv_id=conv_id, tab="card", card=card)
        conversation = out[-1][2]
        card = app.chat.problem.after_turn(conv_id, conversation, card, req("alice", "card"))[0]
    assert [c["run"] for c in cards] == [card["run"]] * 2


def test_retry_sends_the_same_run_again(app, uploads):
    outs = send(app.chat, {"text": "What now?", "files": [uploads(OVERFIT)]}, tab="retry")
    shown, conversation, conv_id = outs[-1][1], outs[-1][2], outs[-1][6]
    again, kept_shown, kept = app.chat.retry(shown, conversation, conv_id, req("alice", "retry"))
    assert again == "What now?" and kept_shown == [] and kept == []
    retried = send(app.chat, {"text": again, "files": []}, conversation=kept, conv_id=conv_id, tab="retry")
    turn = retried[-1][2][-1]
    assert turn["attachment"]["findings"] == conversation[0]["attachment"]["findings"]
    assert turn["attachment"]["question"].endswith("What now?")
    saved = app.web.conversations.get(app.web.accounts.get("alice"), conv_id)
    assert len(saved.turns) == 1 and saved.turns[0].attachment["name"] == "overfit_blobs.keras.csv"
    # A run sent without words comes back without words (not its label as a question).
    bare = send(app.chat, {"text": "", "files": [uploads(DIVERGED)]}, tab="retry-bare")
    again, *_ = app.chat.retry(bare[-1][1], bare[-1][2], bare[-1][6], req("alice", "retry-bare"))
    assert again == ""
    redo = send(app.chat, {"text": again, "files": []}, conv_id=bare[-1][6], tab="retry-bare")
    assert redo[-1][2][-1]["question"] == "📎 diverged_blobs_nan.console.log"


def test_retry_while_the_answer_streams_sends_the_same_run_again(app, uploads):
    """Retry pressed before the answer has finished (so before the turn is saved): the run and the
    words go back, not the rendered bubble, and the stopped answer is never saved."""
    saved = len(conversations_of(app, "alice"))
    message = {"text": "Why is that?", "files": [uploads(OVERFIT)]}
    stream = app.chat.respond(message, [], [], 2, 0.0, 24, None, req("alice", "retry-live"))
    shown = next(stream)[1]  # the question and the findings are on screen; the answer has not begun
    again, kept_shown, kept = app.chat.retry(shown, [], None, req("alice", "retry-live"))
    assert (again, kept_shown, kept) == ("Why is that?", [], [])
    assert list(stream) == []  # the superseded answer writes nothing more
    assert len(conversations_of(app, "alice")) == saved  # and is not saved
    redo = send(app.chat, {"text": again, "files": []}, tab="retry-live")
    turn = redo[-1][2][-1]
    assert turn["attachment"]["name"] == "overfit_blobs.keras.csv" and turn["question"] == "Why is that?"


def test_two_logs_attached_are_compared_in_one_picture_and_answered_as_a_comparison(app, uploads):
    outs = send(
        app.chat, {"text": "Which one should I keep?", "files": [uploads(OVERFIT), uploads(HEALTHY_CONSOLE)]}
    )
    first = outs[0][1][-1]["content"]
    assert "overfit\\_blobs.keras.csv vs healthy\\_blobs\\_adam.console.log" in first
    assert "**compared**" in first and "is better" in first and "](data:image/png;base64,iVBOR" in first
    turn = outs[-1][2][-1]
    attachment = turn["attachment"]
    assert attachment["compared"]["names"] == ["overfit_blobs.keras.csv", "healthy_blobs_adam.console.log"]
    assert (
        "In run overfit_blobs.keras.csv" in attachment["question"]
        and "Which one should I keep?" in attachment["question"]
    )
    assert turn["answer"]["answer"]  # answered from the documents like any question
    # Retry sends the same pair again with the user's words
    again = app.chat.runs.with_question(attachment, "And now?")
    assert again["question"].endswith("And now?") and "In run overfit_blobs.keras.csv" in again["question"]


def test_the_markdown_export_holds_the_findings_and_the_picture(app, uploads, tmp_path, monkeypatch):
    outs = send(app.chat, {"text": "", "files": [uploads(HEALTHY_CONSOLE)]}, tab="export")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    built = Feedback(app.chat.web)  # as each app builds it: a folder made here outlived a killed server
    exported = app.chat.export(outs[-1][2], req("alice", "export"))
    # the file written for Gradio to copy goes with its own folder: none is left in the temp folder
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("assistant-")] == [], built
    md = Path(exported.value["path"] if isinstance(exported.value, dict) else exported.value).read_text()
    assert "**You:** 📎 healthy_blobs_adam.console.log" in md
    assert "- **healthy**: training loss fell from" in md
    png = md.split("](data:image/png;base64,", 1)[1].split(")", 1)[0]
    import base64

    assert base64.b64decode(png).startswith(b"\x89PNG")


# -- bad input ------------------------------------------------------------------------------------------


def _refused(app, message, tab) -> str:
    """What the page is told (a warning) when the message is refused; checks nothing changed."""
    before = [c.id for c in conversations_of(app, "alice")]
    with pytest.warns(UserWarning) as said:  # gr.Warning outside a running app
        outs = list(app.chat.respond(message, [], [], 2, 0.0, 24, None, req("alice", tab)))
    assert outs == [(gr.skip(),) * 7]  # nothing on the page changes: the message stays to fix
    assert [c.id for c in conversations_of(app, "alice")] == before  # nothing saved
    return str(said[-1].message)


def test_a_file_that_is_not_a_log_or_has_no_metric_is_refused_and_nothing_changes(app, uploads, tmp_path):
    binary = tmp_path / "weights.bin"
    binary.write_bytes(b"\x00\x01\x02" * 500)
    notes = tmp_path / "notes.txt"
    notes.write_text("Meeting notes\nWe talked about the plan.\nNothing else happened.\n")
    table = tmp_path / "people.csv"
    table.write_text("name,age,city\nann,31,Oslo\nbob,45,Rome\n")
    assert "binary file, not a training log" in _refused(app, {"text": "", "files": [uploads(binary)]}, "b")
    assert "holds no training metric" in _refused(app, {"text": "hi", "files": [uploads(notes)]}, "b")
    assert "holds no training metric" in _refused(app, {"text": "", "files": [uploads(table)]}, "b")
    named = uploads(notes, "<img src=x onerror=alert(1)>.csv")  # the page shows the warning as HTML
    said = _refused(app, {"text": "", "files": [named]}, "b")
    assert "&lt;img src=x onerror=alert(1)&gt;.csv holds no training metric" in said and "<img" not in said
    three = [uploads(OVERFIT), uploads(DIVERGED), uploads(HEALTHY_CONSOLE)]
    assert "or two to compare them" in _refused(app, {"text": "", "files": three}, "b")
    bad_pair = [uploads(OVERFIT), uploads(notes)]
    assert "notes.txt holds no training metric" in _refused(app, {"text": "", "files": bad_pair}, "b")
    # …and the tab goes on answering.
    assert send(app.chat, "How do I choose a learning rate?", tab="b")[-1][2][-1]["answer"]


def test_an_oversized_log_is_refused_with_its_limit(app, uploads, monkeypatch):
    monkeypatch.setattr(app.assistant.settings, "run_max_mb", 0.001)
    said = _refused(app, {"text": "", "files": [uploads(OVERFIT)]}, "big")
    assert "overfit_blobs.keras.csv" in said and "limit (run_max_mb)" in said
    # a pasted log is a message: bounded by message_max_kb (a bigger log is attached as a file)
    monkeypatch.setattr(app.assistant.settings, "message_max_kb", 1)
    pasted = HEALTHY_CONSOLE.read_text() * 3
    assert "message_max_kb" in _refused(app, pasted, "big")


# -- as an attacker -------------------------------------------------------------------------------------


def test_no_client_makes_the_server_read_a_path_it_did_not_upload(app, uploads, tmp_path):
    """Gradio hands the handler whatever path the client's payload names (a mounted app skips its own
    check): the handler reads only files in the upload folder."""
    db_file = app.assistant.settings.database_file
    assert db_file.exists()
    upload_root = Path(os.environ["GRADIO_TEMP_DIR"])
    link = upload_root / "abc" / "events.out.tfevents.1.host"
    link.parent.mkdir()
    link.symlink_to("/etc/passwd")
    secret = tmp_path / "secret.csv"  # a real log, but not uploaded
    shutil.copyfile(OVERFIT, secret)
    for path in [
        "/etc/passwd",
        str(db_file),
        str(app.assistant.settings.data_dir),
        str(secret),
        f"{upload_root}/../secret.csv",
        str(upload_root),
        str(link),
    ]:
        said = _refused(app, {"text": "", "files": [path]}, "attacker")
        assert said == NOT_UPLOADED, path
    for forged in ({"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, {"path": str(secret)}):
        assert _refused(app, {"text": "", "files": [forged]}, "attacker") == NOT_UPLOADED
    # A path typed as the message is a question, never a file to read.
    outs = send(app.chat, "/etc/passwd", tab="attacker")
    assert outs[-1][2][-1]["attachment"] is None and "root:" not in str(outs[-1])


def test_another_users_run_is_never_visible(app, uploads):
    outs = send(app.chat, {"text": "", "files": [uploads(OVERFIT)]}, tab="alice-private")
    conv_id = outs[-1][6]
    bob = req("bob", "snoop", {"c": conv_id})
    state = app.chat.panel.restore(bob)
    assert state[:7] == app.chat.panel.empty() and "data:image" not in str(state)
    with pytest.raises(gr.Error, match=NO_SUCH):
        app.chat.panel.open(conv_id, bob)
    with pytest.raises(gr.Error, match=NO_SUCH):
        send(app.chat, "How do I fix it?", user="bob", conv_id=conv_id, tab="snoop")
    assert all(
        t.attachment is None
        for c in conversations_of(app, "bob")
        for t in app.web.conversations.get(app.web.accounts.get("bob"), c.id).turns
    )


def test_an_upload_over_the_limits_is_refused_while_it_arrives(tmp_path, embedder, tiny_engine):
    """Gradio's own size check (max_file_size, from max_file_mb and run_max_mb) stops an oversized
    upload at the door, before it fills the disk; one within the limits is received."""
    import socket

    import httpx

    from assistant.core import Assistant
    from assistant.web.app import WebApp

    settings = Settings(data_dir=tmp_path / "data", max_file_mb=0.5, run_max_mb=1.0)
    assistant = Assistant(settings, embedder=embedder, llm=tiny_engine)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = WebApp(assistant, WebContext(db=None, accounts=None, conversations=None, auth=False))
    app.launch("127.0.0.1", port, block=False)
    try:
        url = f"http://127.0.0.1:{port}/gradio_api/upload"
        small = httpx.post(url, files={"files": ("run.csv", b"epoch,loss\n" * 60_000)}, timeout=30)
        big = httpx.post(url, files={"files": ("run.csv", b"epoch,loss\n" * 120_000)}, timeout=30)
        assert small.status_code == 200 and Path(small.json()[0]).stat().st_size == 660_000
        assert big.status_code == 413 and "size" in big.text.lower()
    finally:
        app.close()
