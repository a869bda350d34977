"""The chat tab's handlers, driven as Gradio drives them (generators, one session hash per browser
tab), on the real index and the tiny model: Stop, superseded answers, history kept as data."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from assistant.settings import Settings

Q1 = "How do I choose the right loss function for my project?"
Q2 = "How can I ensure the reproducibility of my deep learning project?"


@pytest.fixture(scope="module")
def tab(tmp_path_factory, embedder, tiny_engine):
    from assistant.core import Assistant
    from assistant.web.chat_tab import ChatTab

    s = Settings(data_dir=tmp_path_factory.mktemp("tab"))
    assistant = Assistant(s, embedder=embedder, llm=tiny_engine)
    assistant.ingest()
    return ChatTab(assistant)


def req(name: str) -> SimpleNamespace:
    return SimpleNamespace(session_hash=name)


def ask(tab, question, conversation=(), *, request, k=1, max_new=1024):
    """respond() as a generator, with the arguments the UI passes."""
    return tab.respond(question, [], list(conversation), k, 0.0, max_new, None, request)


def last(outputs: list) -> tuple:
    return outputs[-1] if outputs else ()


def test_stop_reaches_the_newest_answer_in_the_tab(tab):
    """A second answer in the same tab (Retry mid-stream, Enter then Send) used to overwrite the tab's
    one stop event, and the first answer's cleanup then removed the second one's: Stop did nothing."""
    r = req("tab-stop")
    first = ask(tab, Q1, request=r)
    next(first), next(first)  # the first answer is streaming
    second_out: list = []
    first_done = threading.Event()

    def second() -> None:
        for out in ask(tab, Q2, request=r):
            second_out.append(out)
            if len(second_out) == 2:  # the second answer streams: the user presses Stop
                first_done.wait(30)
                tab.stop(r)

    t = threading.Thread(target=second)
    t.start()
    rest_of_first = list(first)  # ends; its cleanup must not take the second answer's stop away
    first_done.set()
    t.join(60)
    assert not t.is_alive()
    status = last(second_out)[5]
    conversation = last(second_out)[2]
    assert "stopped" in status, status
    assert conversation[-1]["answer"]["notices"][-1] == "Stopped."
    # The superseded first answer stopped too and no longer writes into the tab's chat.
    assert all(Q1 not in str(out[2]) for out in rest_of_first)


def test_stop_during_the_follow_up_rewrite_ends_the_turn(tab, monkeypatch):
    r = req("tab-rewrite")
    first = list(ask(tab, Q1, request=r, max_new=16))
    conversation = last(first)[2]
    chain, engine = tab.assistant.chain, tab.assistant.llm
    rewrite_stops = []
    real_rewrite, real_generate = chain.rewrite, engine.generate

    def pressed_while_rewriting(*args, **kwargs):
        tab.stop(r)  # Stop arrives while the follow-up is being rewritten
        return real_rewrite(*args, **kwargs)

    def generate(messages, **kw):
        rewrite_stops.append(kw.get("stop"))
        return real_generate(messages, **kw)

    monkeypatch.setattr(chain, "rewrite", pressed_while_rewriting)
    monkeypatch.setattr(engine, "generate", generate)
    out = list(ask(tab, "why does the second one matter?", conversation, request=r))
    answer = last(out)[2][-1]["answer"]
    assert rewrite_stops and rewrite_stops[0] is not None and rewrite_stops[0].is_set()
    assert "stopped" in last(out)[5]
    assert answer["answer"] == "" and answer["notices"][-1] == "Stopped."  # no answer was started
    assert tab.turns.running(r.session_hash) == 0


def test_history_for_the_model_is_the_conversation_data_not_the_rendered_bubbles(tab, monkeypatch):
    r = req("tab-history")
    first = list(ask(tab, Q1, request=r, max_new=16))
    conversation = last(first)[2]
    turn = conversation[-1]
    # What the chat shows: marks, warnings and notices around the answer.
    turn["answer"]["unsupported"] = [{"sentence": turn["answer"]["answer"][:20], "support": 0.1}]
    turn["answer"]["notices"] = ["Stopped."]
    seen = []
    real = tab.assistant.ask_stream

    def spy(question, history, **kw):
        seen.append(history)
        return real(question, history, **kw)

    monkeypatch.setattr(tab.assistant, "ask_stream", spy)
    list(ask(tab, "and which one for ranking?", conversation, request=r, max_new=16))
    assert seen[0] == [
        {"role": "user", "content": Q1},
        {"role": "assistant", "content": turn["answer"]["answer"]},
    ]
    assert "<mark" not in str(seen[0]) and "Stopped." not in str(seen[0])


def test_only_listed_models_can_be_switched_to(tab, tiny_model_dir):
    """The dropdown accepted any value, so any visitor could make the server load any path; the
    handler now refuses what the server does not list, whatever the client sends."""
    import gradio as gr

    before = tab.assistant._llm
    for name in (str(tiny_model_dir), "/etc/passwd", "../../elsewhere/model.gguf"):
        with pytest.raises(gr.Error, match="not one of the models this server offers"):
            tab.switch_model(name, req("visitor"))
    assert tab.assistant._llm is before
    assert "auto" in tab.model_choices and str(tiny_model_dir) not in tab.model_choices
