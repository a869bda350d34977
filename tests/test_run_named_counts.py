"""Readings whose names or counters sit where the other readers did not look: a stage run into a
score's name (pyKT's `validauc`, printed beside `best auc`), a name followed by its counter with no
word between (GANITE's `Inference loss epoch 100: 15.58`), and a stage word followed by its epoch's
count and then the readings (Once-for-All's `Valid [3/120] loss=0.49, top-1=84.6, Train loss 1.52`).
Each of these logs was refused, or its validation loss was taken for training's."""

from __future__ import annotations

import pytest

from assistant.runs import detect, parse_run
from assistant.runs.parse.names import stage_of, tokens
from assistant.runs.parse.table import NoMetricError
from tests.run_helpers import falling


def _pykt(train: list[float], auc: list[float]) -> str:
    lines = ["device:cuda", "Start init data"]
    best = 0.0
    for e, (t, a) in enumerate(zip(train, auc, strict=True), 1):
        best = max(best, a)
        lines += [
            f"Epoch: {e}, validauc: {a:.4f}, validacc: {0.6 + a / 10:.4f}, best epoch: {e}, best auc: "
            f"{best:.4f}, loss: {t}, emb_type: qid, model: akt, save_dir: saved_model/akt_qid_0_0.05_1e-05",
            "            testauc: -1, testacc: -1, window_testauc: -1, window_testacc: -1",
        ]
    return "\n".join(lines)


def test_a_stage_run_into_a_scores_name_is_read_as_that_stages_score():
    assert tokens("validauc") == ("valid", "auc") and tokens("testacc") == ("test", "acc")
    assert stage_of("validacc") == "val" and tokens("valloss") == ("val", "loss")
    # the stage alone, or a word that only begins like one, is left whole
    assert tokens("valid") == ("valid",) and tokens("evaluate") == ("evaluate",)
    assert tokens("trainable") == ("trainable",)
    run = parse_run(_pykt(falling(30, 0.67, 0.40), [0.62 + 0.008 * e for e in range(30)]))
    assert run.sources["train_loss"] == "loss" and run.table["train_loss"].notna().sum() == 30
    assert run.table["val_auc"].notna().sum() == 30 and run.table["val_auc"].iloc[-1] > 0.85
    assert [f.kind for f in detect(run)] == ["healthy"]


def test_a_name_then_its_counter_with_no_word_between_is_read_when_its_value_ends_the_line():
    lines = []
    for e, v in enumerate(falling(8, 80.0, 20.0)):
        lines.append(f"Generator loss epoch {e * 100}: 0.0{e + 1} {v * 2:.3f}")
        lines.append(f"Inference loss epoch {e * 100}: {v}")
    run = parse_run("\n".join(lines))
    assert run.sources["train_loss"] == "Inference loss" and run.table["train_loss"].notna().sum() == 8
    # two numbers after the colon say two readings the line does not name: neither is taken
    assert not any("generator" in m.lower() for m in run.metrics)
    # a stage word and its counter are no reading (`Train Epoch 3: 0.5` names no metric)
    with pytest.raises(NoMetricError):
        parse_run("\n".join(f"Train Epoch {e}: {v}" for e, v in enumerate(falling(8))))


def _ofa(train: list[float], val: list[float]) -> str:
    lines = ["Loaded init from .torch/ofa_checkpoints/0/ofa_D4_E6_K7"]
    for e, (t, v) in enumerate(zip(train, val, strict=True), -4):
        lines.append(
            f"Valid [{e}/120] loss={v:.3f}, top-1={60 + e / 10:.3f} ({60 + e / 10:.3f}), Train top-1 "
            f"{70 + e / 5:.3f}, Train loss {t:.3f}\tR160-D4-E6-K3-W0 (81.860), R224-D4-E6-K3-W0 (72.430), "
        )
    return "\n".join(lines)


def test_a_stage_word_then_its_count_stages_the_unstaged_readings_after_it():
    # Once-for-All's console: the validation loss, beside the training loss named as such; its
    # held-out loss turns up after epoch 8 while training's keeps falling
    val = [2.6, 2.3, 2.2, 2.15, *[2.14 + 0.0025 * e for e in range(60)]]
    run = parse_run(_ofa(falling(64, 11.6, 9.4), val))
    assert run.sources["val_loss"] == "val/loss" and run.sources["train_loss"] == "Train loss"
    assert run.table["val_loss"].notna().sum() == 64
    assert "overfitting" in [f.kind for f in detect(run)]
    # the same lines whose validation loss keeps falling are healthy
    falls = parse_run(_ofa(falling(64, 11.6, 9.4), falling(64, 2.6, 0.3)))
    assert [f.kind for f in detect(falls)] == ["healthy"]


def test_a_stages_own_reading_on_the_line_keeps_the_unstaged_one_from_taking_its_name():
    # `Valid [e/n] loss=<training's>, val_loss=<validation's>`: the line's stage word gives `loss` no
    # stage when the line already names that stage's loss (either order), so the two are not swapped
    train, val = (
        falling(20, 1.0, 0.2),
        [0.9 - 0.02 * e if e < 8 else 0.74 + 0.03 * (e - 8) for e in range(20)],
    )
    for cells in ("loss={t:.4f}, val_loss={v:.4f}", "val_loss={v:.4f}, loss={t:.4f}"):
        text = "\n".join(
            f"Valid [{e}/20] " + cells.format(t=t, v=v)
            for e, (t, v) in enumerate(zip(train, val, strict=True))
        )
        run = parse_run(text)
        assert run.sources == {"train_loss": "loss", "val_loss": "val_loss"}
        assert run.table["train_loss"].iloc[-1] < 0.3 and run.table["val_loss"].iloc[-1] > 1.0
    # a count written before a colon is a stage's too, a warm-up's negative one included
    assert parse_run("\n".join(f"Valid [{e}/20]: loss={v:.3f}" for e, v in enumerate(val, -4))).sources == {
        "val_loss": "val/loss"
    }


def test_prose_before_a_counter_is_no_reading():
    # three words or more before the counter that do not begin with a stage are a sentence, not a name
    lines = [f"Reached target loss epoch {e}: 0.1\nRestored val loss epoch {e}: 0.34" for e in range(8)]
    with pytest.raises(NoMetricError):
        parse_run("\n".join(lines))
    staged = "\n".join(f"Train total loss epoch {e}: {v}" for e, v in enumerate(falling(8)))
    assert parse_run(staged).sources == {"train_loss": "Train total loss"}
