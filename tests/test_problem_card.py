"""The problem card: extraction over varied phrasing, the merge rules (hand edits win over incidental
mentions), the card in the chain's prompts and searches (real index, tiny model), and the web handlers
called as the page and as an attacker call them."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest
from store_helpers import req, web_handlers

from assistant.chat.problem import (
    EDITED,
    card_text,
    card_with_run,
    edit_card,
    extract,
    normalise,
    update_card,
)
from assistant.settings import Settings
from assistant.web.problem_panel import APPLIED

# -- extraction ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "I'm training a ResNet-50 on 50k images with PyTorch.",
            {"model": "ResNet-50", "data": "50k images", "framework": "PyTorch"},
        ),
        (
            "Fine-tuning BERT-base on 10,000 samples using Hugging Face Transformers",
            {"model": "BERT-base", "data": "10,000 samples", "framework": "Hugging Face Transformers"},
        ),
        ("We have a 7B LLaMA and 2 GB of text.", {"model": "7B LLaMA", "data": "2 GB of text"}),
        ("My model is an LSTM.", {"model": "LSTM"}),
        ("I have an RTX 3060 with 12 GB.", {"hardware": "RTX 3060", "memory": "12 GB GPU memory"}),
        ("Training on a single A100 40GB", {"hardware": "A100", "memory": "40 GB GPU memory"}),
        ("CPU only, no GPU at all.", {"hardware": "CPU only"}),
        ("I'm on an M1 Mac.", {"hardware": "Apple M1"}),
        ("I have 8 GB VRAM", {"memory": "8 GB GPU memory"}),
        ("I have a 6 GB GPU", {"memory": "6 GB GPU memory"}),
        ("16GB RAM and a GTX 1080 Ti", {"hardware": "GTX 1080 Ti", "memory": "16 GB RAM"}),
        ("two RTX 3090s with 24GB each", {"hardware": "2× RTX 3090", "memory": "24 GB GPU memory"}),
        ("I use TensorFlow/Keras", {"framework": "TensorFlow/Keras"}),
        ("Using PyTorch Lightning and JAX", {"framework": "PyTorch Lightning, JAX"}),
        ("batch of 32", {"batch_size": "32"}),
        (
            "I train on 4 x V100 GPUs, bs=256, bf16",
            {"hardware": "4× V100", "batch_size": "256", "precision": "bf16"},
        ),
        (
            "The batch size is 64 with fp16 mixed precision",
            {"batch_size": "64", "precision": "fp16, mixed precision"},
        ),
        ("My dataset has 3 hours of audio and 10 classes", {"data": "3 hours of audio, 10 classes"}),
        ("We fine-tune Llama-2 7B with 4-bit QLoRA", {"model": "LLaMA-2 7B", "precision": "4-bit"}),
        ("I switched from TensorFlow to PyTorch.", {"framework": "PyTorch"}),
        ("Why does my ResNet-50 overfit?", {"model": "ResNet-50"}),
        ("I use Hugging Face Transformers", {"framework": "Hugging Face Transformers"}),  # not a model
        ("I'm training a vision transformer", {"model": "ViT"}),
        ("We run DeepSpeed on 8 H100s", {"hardware": "8× H100", "framework": "DeepSpeed"}),
        (
            "I have 32 GB of RAM and an 8 GB RTX 3070",
            {"hardware": "RTX 3070", "memory": "32 GB RAM, 8 GB GPU memory"},
        ),
        (
            "I trained a small MLP on MNIST (60,000 images)",
            {"model": "MLP", "data": "60,000 images"},
        ),  # "my": a fact, even in a question
        (
            "My Mac has an M2 Pro with 32GB unified memory",
            {"hardware": "Apple M2 Pro", "memory": "32 GB unified memory"},
        ),
    ],
)
def test_facts_are_extracted_from_varied_phrasing(message, expected):
    assert {k: f.value for k, f in extract(message).items()} == expected


@pytest.mark.parametrize(
    "message",
    [
        "I use 12 epochs",  # not memory
        "The loss explodes after 3 epochs with lr 0.1",
        "The checkpoint is 2 GB on disk.",  # a size, not memory
        "Is 8 GB enough?",  # no sign it is the user's memory
        "Should I use ResNet or ViT?",  # a comparison, not a fact
        "Would ViT be better?",  # a model asked about, not the one used
        "Should I use batch size 32?",  # a value asked about
        "Which batch size should I try?",
        "It takes 2 hours per epoch",
        "The model has 25M parameters and 3 layers",
    ],
)
def test_what_is_not_a_fact_about_the_setup_is_left_out(message):
    facts = extract(message)
    assert "memory" not in facts and "model" not in facts and "batch_size" not in facts, facts


def test_batch_of_32_is_a_batch_size_not_data():
    facts = extract("I use a CNN with 32 images per batch")
    assert facts["batch_size"].value == "32" and "data" not in facts


# -- merging ---------------------------------------------------------------------------------------


def test_later_statements_update_a_field_and_questions_only_fill_empty_ones():
    card = update_card({}, "I'm training a ResNet-50 on 50k images.")
    card = update_card(card, "Now I train an EfficientNet-B0 instead.")
    assert card["model"] == "EfficientNet-B0" and card["data"] == "50k images"
    card = update_card(card, "What about my ViT-B/16?")  # a question: fills only empty fields
    assert card["model"] == "EfficientNet-B0"
    card = update_card(card, "How much memory does my 6 GB GPU leave for activations?")
    assert card["memory"] == "6 GB GPU memory"
    assert update_card(card, "How much memory does my 6 GB GPU leave for activations?") == card  # idempotent


def test_a_hand_edited_field_changes_only_when_the_user_states_a_new_value():
    card = update_card({}, "I have an RTX 3060 with 12 GB.")
    card = edit_card(card, {"memory": "8 GB GPU memory", "model": "ResNet-18"})
    assert card[EDITED] == ["memory", "model"]
    kept = update_card(card, "Training a ResNet-50 on a card with 16 GB VRAM.")  # not first person
    assert kept["memory"] == "8 GB GPU memory" and kept["model"] == "ResNet-18"
    stated = update_card(card, "My GPU has 24 GB VRAM now.")  # stated explicitly: replaces it
    assert stated["memory"] == "24 GB GPU memory" and stated[EDITED] == ["model"]
    emptied = edit_card(card, {"model": ""})  # emptied by hand: stays empty until stated again
    assert "model" not in emptied and "model" in emptied[EDITED]
    assert "model" not in update_card(emptied, "Would a ViT help here?")
    assert update_card(emptied, "I switched to a ViT-B/16.")["model"] == "ViT-B/16"


def test_an_attached_run_is_one_line_and_replaces_a_hand_edit():
    card = edit_card({}, {"run": "old run"})
    card = card_with_run(card, "run.csv", "overfitting: validation loss rises after epoch 5\n(val 0.9)")
    assert card["run"] == "run.csv: overfitting: validation loss rises after epoch 5 (val 0.9)"
    assert EDITED not in card


def test_card_text_is_bounded_in_tokens_and_empty_without_a_card():
    words = len  # one token per character: a harsh counter
    card = {
        "model": "ResNet-50",
        "memory": "6 GB GPU memory",
        "framework": "PyTorch",
        "run": "x" * 150,
        EDITED: ["model"],
    }
    assert card_text({}, 96, words) == "" and card_text(None, 96, words) == ""
    full = card_text(card, 1000, words)
    assert full.startswith("Model: ResNet-50; Memory: 6 GB GPU memory; Framework: PyTorch; Training run: ")
    short = card_text(card, 60, words)
    assert len(short) <= 60 and short.startswith("Model: ResNet-50")  # later fields dropped first


# -- the chain -------------------------------------------------------------------------------------

SETUP_HISTORY = [
    {"role": "user", "content": "I have a 6 GB GPU and train a ResNet-50 in PyTorch."},
    {"role": "assistant", "content": "Mixed precision and smaller batches save memory [1]."},
]
CARD = update_card({}, SETUP_HISTORY[0]["content"])


@pytest.fixture()
def chat(settings, make_assistant, tiny_engine):
    a = make_assistant(settings.model_copy(update={"llm_max_new_tokens": 8}), llm=tiny_engine)
    a.ingest()
    return a


@pytest.fixture()
def spies(chat, monkeypatch):
    """What the chain sends: every LLM call's messages and every search query."""
    seen = SimpleNamespace(prompts=[], queries=[])
    engine, real_stream = chat.llm, chat.llm.stream
    real_search = chat.search

    def stream(messages, **kw):  # generate() (the rewrite) streams too
        kind = "rewrite" if "Last message:" in messages[-1]["content"] else "answer"
        seen.prompts.append((kind, messages[-1]["content"]))
        return real_stream(messages, **kw)

    monkeypatch.setattr(engine, "stream", stream)
    monkeypatch.setattr(chat, "search", lambda q, k=None: seen.queries.append(q) or real_search(q, k))
    return seen


def test_the_card_reaches_the_rewrite_the_answer_and_the_search(chat, spies):
    setup = card_text(CARD, 96, chat.embedder.count_tokens)
    assert setup == "Model: ResNet-50; Memory: 6 GB GPU memory; Framework: PyTorch"
    answer = chat.ask("Which batch size should I try with it?", SETUP_HISTORY, problem=CARD)
    kinds = [k for k, _ in spies.prompts]
    assert kinds == ["rewrite", "answer"] and answer.rewritten
    rewrite, final = spies.prompts[0][1], spies.prompts[1][1]
    assert f"The user's setup (from earlier in the conversation): {setup}." in rewrite
    assert f"The user's setup (from what they said in this conversation): {setup}." in final
    assert any(q.endswith(setup) for q in spies.queries), spies.queries  # searched with the setup


def test_a_vague_question_finds_what_the_setup_points_to(chat, monkeypatch):
    """ "Which batch size should I try?" with "I have a 6 GB GPU" on the card: the memory passage comes
    close enough to the batch-size passage (which the question finds, and which stays first) to be
    given to the model as a source; without the card it trails too far."""
    memory = "My model training takes too much RAM, how do I solve this?"
    found: list[dict[str, float]] = []  # what retrieval hands to source selection, per turn
    real = chat.chain.select_sources
    monkeypatch.setattr(
        chat.chain,
        "select_sources",
        lambda results, *a: found.append({r.title: r.relevance for r in results}) or real(results, *a),
    )
    card = update_card({}, "I have a 6 GB GPU.")
    chat.ask("Which batch size should I try?")
    chat.ask("Which batch size should I try?", problem=card)
    plain, with_card = found
    margin = chat.settings.source_relevance_margin
    assert "batch size" in next(iter(plain)) and "batch size" in next(iter(with_card))
    assert (
        plain[memory] < max(plain.values()) - margin <= max(with_card.values()) - margin < with_card[memory]
    )


def test_without_a_card_nothing_changes(chat, spies):
    answer = chat.ask("How do I choose the right loss function for my project?")
    assert [k for k, _ in spies.prompts] == ["answer"]
    assert "The user's setup" not in spies.prompts[0][1]
    assert all(q.startswith("How do I choose the right loss") for q in spies.queries)  # no setup searched
    blocks = spies.prompts[0][1].split("\n\n")  # the question follows the sources, nothing between
    assert blocks[-2].startswith("Question: How do I choose") and "</source>" in blocks[-3]
    assert not answer.rewritten


def test_a_first_turn_with_a_card_costs_no_llm_call_and_off_topic_still_abstains(chat, spies):
    answer = chat.ask("How do I choose the right loss function for my project?", problem=CARD)
    assert [k for k, _ in spies.prompts] == ["answer"] and not answer.rewritten
    assert answer.sources and "loss function" in (answer.sources + answer.consulted)[0].title
    off = chat.ask("Who painted the Mona Lisa?", problem=CARD)  # the card alone never makes it covered
    assert off.abstained and [k for k, _ in spies.prompts] == ["answer"]


# -- the web handlers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory, embedder, tiny_engine):
    settings = Settings(data_dir=tmp_path_factory.mktemp("card"), llm_max_new_tokens=8)
    with web_handlers(settings, embedder, tiny_engine) as handlers:
        yield handlers


def turn(chat, question, *, user, conversation=(), conv_id=None, card=None):
    """A turn as the page runs it: respond() with the tab's card, then the card's after-turn step."""
    r = req(user)
    last = list(chat.respond(question, [], list(conversation), 2, 0.0, 8, conv_id, r, card))[-1]
    shown = chat.problem.after_turn(last[6], last[2], card, r)
    return last, shown


def values(card: dict) -> list[str]:
    from assistant.chat.problem import KEYS

    return [card.get(k, "") for k in KEYS]


def test_a_card_edited_before_the_first_question_survives_and_turns_update_it(app):
    chat, store = app.chat, app.web.conversations
    alice = app.web.accounts.get("alice")
    edited = dict.fromkeys(
        ["model", "data", "hardware", "memory", "framework", "batch_size", "precision", "run"], ""
    )
    edited["framework"] = "JAX"
    card, *boxes, conv_id, status = chat.problem.save("", {}, req("alice"), *values(edited))
    assert conv_id and card["framework"] == "JAX" and "Saved" in status  # the conversation exists now
    assert store.problem(alice, conv_id)["framework"] == "JAX"
    last, (card, *boxes) = turn(
        chat,
        "I have a 6 GB GPU. My loss plateaus, what should I do?",
        user="alice",
        conv_id=conv_id,
        card=card,
    )
    assert last[6] == conv_id and card["memory"] == "6 GB GPU memory" and card["framework"] == "JAX"
    assert "6 GB GPU memory" in boxes and store.problem(alice, conv_id) == normalise(card)
    # A hand edit after the turn: the same turn's facts are never taken in again (e.g. when a
    # superseded answer ends without a new turn), so the edit stays.
    card, *boxes, _, _ = chat.problem.save(conv_id, card, req("alice"), *values({**card, "memory": "8 GB"}))
    again = chat.problem.after_turn(
        conv_id, last[2], {**card, APPLIED: last[2][-1]["question_id"]}, req("alice")
    )
    assert again[0]["memory"] == "8 GB" and store.problem(alice, conv_id)["memory"] == "8 GB"
    card = again[0]
    # A reload (or opening it from the sidebar) shows the saved card.
    assert chat.problem.load(conv_id, req("alice", "reloaded"))[0] == normalise(card)
    assert chat.problem.load("", req("alice"))[0] == {}  # a new chat: an empty card


def test_another_user_never_reads_or_writes_a_card(app):
    from assistant.web.conversations_panel import NO_SUCH

    chat, store = app.chat, app.web.conversations
    alice = app.web.accounts.get("alice")
    last, (card, *_) = turn(chat, "I train a ResNet-50 on 50k images with PyTorch.", user="alice")
    conv_id = last[6]
    card = normalise(card)
    assert store.problem(alice, conv_id) == card and card["model"] == "ResNet-50"
    bob = req("bob")
    for target in (conv_id, "x" * len(conv_id)):
        assert chat.problem.load(target, bob)[0] == {}  # reads nothing, not even that it exists
        with pytest.raises(gr.Error, match=NO_SUCH):
            chat.problem.save(target, {}, bob, *values({"model": "pwned"}))
        with pytest.raises(gr.Error, match=NO_SUCH):
            chat.problem.forget(target, bob)
        with pytest.raises(gr.Error, match=NO_SUCH):  # a turn in it is refused…
            list(chat.respond("I use JAX now.", [], [], 2, 0.0, 8, target, bob, {}))
        # …and the after-turn step, with a forged conversation in the tab's state, writes nothing
        chat.problem.after_turn(target, [{"question": "My GPU has 80 GB now."}], {}, bob)
    assert store.problem(alice, conv_id) == card


def test_a_run_attached_to_a_turn_goes_on_the_card(app):
    """The contract with the attach-a-run feature: a turn's `attachment` with a `name` and a one-line
    `summary` of the findings becomes the card's `run` field after the turn."""
    conversation = [
        {
            "question": "My loss goes up after epoch 5, why?",
            "attachment": {
                "name": "metrics.csv",
                "summary": "overfitting from epoch 5 (val loss 0.41 → 0.58)",
            },
            "index": 1,
        }
    ]
    card, *boxes = app.chat.problem.after_turn("", conversation, {}, req("alice"))
    assert card["run"] == "metrics.csv: overfitting from epoch 5 (val loss 0.41 → 0.58)"
    assert boxes[-1] == card["run"]
