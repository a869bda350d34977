"""Writing the answer (chat/writing.py, chat/compose.py) and the check of meaning (chat/entailment.py),
with the real tiny model steered to write a given reply, a real index and the real embedder."""

from __future__ import annotations

import math

import pytest

from assistant.chat.compose import clean, statements
from assistant.chat.entailment import features, probability
from assistant.chat.writing import SentenceGate, first_sentence, left_out_notice

MEMORY = "My GPU keeps running out of memory while training."
STATED = "Accumulate gradients over multiple batches before performing an update."  # the memory passage's
INVENTED = "Buy a bigger GPU and switch your whole project to a different framework written in Rust."


def steer(engine, monkeypatch, reply: str) -> list[str]:
    """The real tiny model writes `reply` (constrained decoding); returns what happened in order:
    "model" when it is asked."""
    real, events = engine.stream, []

    def stream(messages, **kw):
        events.append("model")
        ids = engine.tokenizer.encode(reply, add_special_tokens=False)
        start = engine.encode_chat(messages).shape[-1]

        def allowed(batch_id, input_ids):
            i = input_ids.shape[-1] - start
            return [ids[i]] if i < len(ids) else [engine.tokenizer.eos_token_id]

        return real(messages, prefix_allowed_tokens_fn=allowed, **{**kw, "max_new_tokens": len(ids) + 2})

    monkeypatch.setattr(engine, "stream", stream)
    return events


@pytest.fixture()
def writer(settings, make_assistant, serial_engine):
    """The default (quoted) style; the check reads the words alone, so its verdicts do not depend on
    the tiny random model's yes/no."""
    a = make_assistant(settings.model_copy(update={"entail_llm": False}), llm=serial_engine)
    a.ingest()
    return a


def run(assistant, question: str, events: list[str] | None = None):
    chunks = []
    for c in assistant.chain.stream(question):
        if isinstance(c, str) and c and events is not None:
            events.append("text")
        chunks.append(c)
    return chunks[-1], [c for c in chunks if isinstance(c, str)]


def test_quotes_are_the_passages_own_sentences_cited_and_shown_before_the_model_is_asked(
    writer, serial_engine, monkeypatch
):
    events = steer(serial_engine, monkeypatch, STATED + " [1]")
    answer, shown = run(writer, MEMORY, events)
    assert events[:2] == ["text", "model"]  # the quotes reached the user before the model read anything
    bullets = [line[2:] for line in shown[0].splitlines() if line.startswith("- ")]
    assert bullets and len(bullets) <= writer.settings.quote_count
    by_n = {s.n: s for s in answer.sources}
    for bullet in bullets:
        text, marker = bullet.rsplit(" [", 1)
        passage = " ".join(by_n[int(marker.rstrip("]"))].text.split())
        assert text in passage  # verbatim (list marker aside), and cited to the passage it is from
    assert "ram" in answer.sources[0].title.lower()
    assert answer.sources[0].span and answer.sources[0].span in answer.sources[0].text
    assert shown[0].startswith(f"From “{' '.join(answer.sources[0].title.split())}” [1]:")


def test_the_models_sentence_is_shown_when_its_source_states_it(writer, serial_engine, monkeypatch):
    steer(serial_engine, monkeypatch, STATED + " [1]")
    answer, shown = run(writer, MEMORY)
    assert answer.answer.endswith(STATED[:-1] + " [1].") or STATED[:-1] in answer.answer.splitlines()[-1]
    assert answer.checked == 1 and not answer.left_out
    assert "".join(shown) == answer.answer


def test_a_sentence_no_source_states_is_left_out_never_shown_and_said_so(writer, serial_engine, monkeypatch):
    steer(serial_engine, monkeypatch, INVENTED + " [1]")
    answer, shown = run(writer, MEMORY)
    assert "Rust" not in "".join(shown) and "Rust" not in answer.answer
    assert [u["sentence"] for u in answer.left_out] == [INVENTED]
    assert left_out_notice(1) in answer.notices
    assert answer.checked == 0 and answer.answer.startswith("From “")  # the quotes still answer


def test_the_free_style_holds_each_sentence_until_it_is_checked(
    settings, make_assistant, serial_engine, monkeypatch
):
    a = make_assistant(
        settings.model_copy(update={"entail_llm": False, "answer_style": "free"}), llm=serial_engine
    )
    a.ingest()
    steer(serial_engine, monkeypatch, f"{STATED} [1] {INVENTED} [1] Use float16 to reduce memory usage. [1]")
    answer, shown = run(a, MEMORY)
    text = "".join(shown)
    assert "Rust" not in text and "Rust" not in answer.answer
    assert "Accumulate gradients" in text and "float16" in text
    assert answer.checked == 2 and [u["sentence"] for u in answer.left_out] == [INVENTED]
    assert left_out_notice(1) in answer.notices


@pytest.fixture()
def free_writer(settings, make_assistant, serial_engine):
    a = make_assistant(
        settings.model_copy(update={"entail_llm": False, "answer_style": "free"}), llm=serial_engine
    )
    a.ingest()
    return a


def test_a_free_answer_with_nothing_stated_says_the_documents_do_not_answer(
    free_writer, serial_engine, monkeypatch
):
    from assistant.chat.prompts import prompt

    steer(serial_engine, monkeypatch, f"{INVENTED} [1] Rewrite the training loop in assembly for speed. [2]")
    answer, shown = run(free_writer, MEMORY)
    refusal = prompt(free_writer.settings, "none_stated").format().strip()
    assert answer.answer == refusal and "Rust" not in "".join(shown) and "assembly" not in "".join(shown)
    assert len(answer.left_out) == 2 and left_out_notice(2) in answer.notices
    assert not answer.sources and answer.consulted  # nothing cited; what was found stays inspectable


@pytest.mark.parametrize("style", ["quoted", "free"])
def test_an_echoed_source_tag_never_reaches_the_user(
    settings, make_assistant, serial_engine, monkeypatch, style
):
    a = make_assistant(
        settings.model_copy(update={"entail_llm": False, "answer_style": style}), llm=serial_engine
    )
    a.ingest()
    steer(serial_engine, monkeypatch, f'<source n="1" title="Memory">{STATED} [1]')
    answer, shown = run(a, MEMORY)
    for text in ("".join(shown), answer.answer):
        assert "<source" not in text and "title=" not in text
    assert "Accumulate gradients" in answer.answer and answer.checked == 1


def test_the_api_and_the_export_say_what_was_left_out(writer, serial_engine, monkeypatch):
    from assistant.web.api import extras
    from assistant.web.render import answer_markdown, conversation_markdown

    steer(serial_engine, monkeypatch, INVENTED)
    answer, _ = run(writer, MEMORY)
    note = left_out_notice(1)
    assert extras(answer)["left_out"] == [INVENTED] and note in extras(answer)["notices"]
    d = answer.to_dict()
    assert note in answer_markdown(d)
    assert note in conversation_markdown([{"question": MEMORY, "answer": d}])


def test_features_see_negation_numbers_and_words_the_passage_lacks():
    passage = "Use dropout with a rate of 0.5 to reduce overfitting."
    same = features("Use dropout with a rate of 0.5.", passage, 0.9, None)
    assert same["missing"] == 0 and same["numbers"] == 0 and same["negation"] == 0
    assert math.isnan(same["yes"])
    assert features("Never use dropout.", passage, 0.8, None)["negation"] == 1
    assert features("Use dropout with a rate of 0.9.", passage, 0.9, None)["numbers"] == 1
    assert features("Switch the optimizer to LAMB with warmup.", passage, 0.3, 0.2)["missing"] > 0.8


def test_the_check_scores_a_contradiction_below_what_the_passage_states():
    from assistant.chat.entailment import load_weights

    weights = load_weights()
    passage = "Monitor validation loss and stop training when it starts increasing."
    stated = probability(
        features("Stop training when the validation loss starts increasing.", passage, 0.95, None), weights
    )
    invented = probability(
        features("Increase the learning rate tenfold and train for longer.", passage, 0.4, None), weights
    )
    assert stated > invented


def test_the_models_yes_no_is_one_batched_pass_that_padding_does_not_change(serial_engine):
    prompts = [
        [{"role": "user", "content": "Passage: Use float16.\n\nStatement: Use float16.\n\nYes or no?"}],
        [{"role": "user", "content": "Passage: a much longer passage about memory " * 8 + "\n\nYes or no?"}],
    ]
    together = serial_engine.yes_probabilities(prompts)
    alone = [serial_engine.yes_probabilities([p])[0] for p in prompts]
    assert all(0.0 <= p <= 1.0 for p in together)
    assert together == pytest.approx(alone, abs=1e-3)  # left padding and positions are right


def test_sentence_gate_lets_a_sentence_through_only_once_it_is_complete_and_stated():
    seen = []
    gate = SentenceGate(2, lambda plain, piece: seen.append(plain) or "bad" not in plain)
    assert gate.feed("First claim here [1]. Sec") == ["First claim here [1]."]
    assert gate.feed("ond is bad news [2].") == []  # still growing
    assert gate.finish() == []  # complete now, and refused
    assert seen == ["First claim here.", "Second is bad news."]
    assert gate.left_out == [{"sentence": "Second is bad news.", "cited": [2]}] and gate.checked == 1


def test_first_sentence_and_its_citations():
    assert first_sentence("[2] You should use float16. Then more.", 3) == ("You should use float16.", [1])
    assert first_sentence("Use dropout [1][3] and more. Next", 2) == ("Use dropout and more.", [0])
    assert first_sentence("[1] [2]", 2) == ("", [])


def test_passage_sentences_for_quoting():
    text = "- **Batching**: Load data in batches (e.g. 32 rows) to save memory. Then train.\n### Heading:"
    got = [clean(text[a:b]) for a, b in statements(text)]
    assert got == [
        "**Batching**: Load data in batches (e.g. 32 rows) to save memory.",
        "Then train.",
        "Heading:",
    ]
