"""Readings printed under names joined by slashes (coral-cnn's `MAE/RMSE: | Current Valid:
9.49/12.24`), each read under its own name in the heading's stage, and a held-out error (a validation
MAE) turning up while training still falls: overfitting without a held-out loss."""

from __future__ import annotations

from assistant.runs import detect, parse_run
from assistant.runs.parse.rewrites import unslash_readings
from tests.run_helpers import falling


def _coral(train: list[float], mae: list[float]) -> str:
    lines = []
    for e, (t, m) in enumerate(zip(train, mae, strict=True), start=1):
        lines += [f"Epoch: {e:03d}/{len(train)} | Batch {b:04d}/0448 | Cost: {t:.4f}" for b in (0, 200, 400)]
        lines.append(
            f"MAE/RMSE: | Current Valid: {m:.2f}/{1.3 * m:.2f} Ep. {e - 1} | Best Valid : 5.67/8.00 Ep. 13"
        )
        lines.append("Time elapsed: 1.79 min")
    return "\n".join(lines)


def test_readings_joined_by_slashes_are_each_read_under_their_name():
    assert unslash_readings("MAE/RMSE/ACC: Current Valid: 3.04/3.68/9.44 Ep. 1") == (
        "Current Valid MAE: 3.04, Current Valid RMSE: 3.68, Current Valid ACC: 9.44 Ep. 1"
    )
    # names and readings of unlike counts, a name with one slash, a counter with its total: as printed
    for line in ("loss/acc: 0.5/0.9/0.3", "train/loss: 0.5 val/loss: 0.6", "Epoch: 001/200 | Cost: 4.05"):
        assert unslash_readings(line) == line
    t = parse_run(_coral(falling(30, 3.7, 0.2), falling(30, 9.5, 5.7))).table
    assert t["val_mae"].dropna().round(2).tolist() == [round(v, 2) for v in falling(30, 9.5, 5.7)]
    assert len(t["val_rmse"].dropna()) == 30


def test_slashed_readings_keep_the_stage_said_before_or_between_and_drop_the_best_so_far():
    # the word before the names and the heading between are the readings' stage: read without them,
    # a validation accuracy was read as training's; the best so far is no reading of the line's own
    train, val = falling(12, 2.0, 0.4), falling(12, 2.1, 0.6)
    pairs = list(enumerate(zip(train, val, strict=True), start=1))
    before = parse_run(
        "\n".join(f"Epoch {e}/20 loss/acc: {t:.3f}/0.9 val loss/acc: {v:.3f}/0.4" for e, (t, v) in pairs)
    )
    between = parse_run(
        "\n".join(
            f"Epoch {e} | loss/acc: Train: {t:.3f}/0.9 | loss/acc: Valid: {v:.3f}/0.4" for e, (t, v) in pairs
        )
    )
    for t in (before.table, between.table):
        assert t["val_loss"].dropna().round(3).tolist() == [round(v, 3) for v in val]
        assert set(t["train_acc"].dropna()) == {0.9} and set(t["val_acc"].dropna()) == {0.4}
    best = parse_run(
        "\n".join(
            f"Epoch {e} | loss {t:.3f} | loss/acc: | Best Valid: 0.5/0.9" for e, t in enumerate(train, 1)
        )
    )
    assert best.table["train_loss"].dropna().round(3).tolist() == [round(v, 3) for v in train]
    assert unslash_readings("loss/acc: Epoch: 5/20 | loss 0.3") == "loss/acc: Epoch: 5/20 | loss 0.3"


def test_a_held_out_error_turning_up_while_training_falls_is_overfitting():
    # coral-cnn's age regressor: validation MAE best at epoch 14, then 9-12% above it to epoch 60 while
    # the training cost falls to 0.13; the same MAE still falling is healthy
    train = falling(60, 3.7, 0.13)
    turned = [*falling(15, 9.5, 5.7), *(5.7 + 0.012 * i for i in range(1, 46))]
    assert "overfitting" in {f.kind for f in detect(parse_run(_coral(train, turned)))}
    assert [f.kind for f in detect(parse_run(_coral(train, falling(60, 9.5, 5.7))))] == ["healthy"]
