"""A training loop that prints each batch's readings with the rate beside them (Dassl's `epoch
[3/100][2/4]  loss 0.52 (0.60)  acc 75.0 (71.2)  lr 1.0e-05`): the rate is read (a settings dump's
`BASE_LR_MULT: 0.1` is not); a best checkpoint evaluated again after `best_acc1 = …` is no epoch's
evaluation; and a batch's loss scattering by chance below where the run began is no blow-up."""

from __future__ import annotations

import math
import random

from assistant.runs import detect, parse_run
from assistant.runs.parse.readings import line_readings
from tests.run_helpers import falling


def _dassl(losses: list[float], batches: int = 4) -> list[str]:
    """Dassl's per-batch lines under its settings dump, the rate on a cosine schedule."""
    n = len(losses)
    lines = ["OPTIM:", "  BASE_LR_MULT: 0.1", "  LR: 0.002", "  LR_SCHEDULER: cosine", "Start training"]
    for e, level in enumerate(losses):
        lr = 1e-5 if e == 0 else 1e-3 * (1 + math.cos(math.pi * e / n))
        for b in range(1, batches + 1):
            lines.append(
                f"epoch [{e + 1}/{n}][{b}/{batches}]\ttime 0.145 (0.558)\tdata 0.002 (0.204)\teta 0:03:42\t"
                f"loss {level * (0.9 + 0.05 * b):.4f} ({level:.4f})\tacc 75.0 (71.2)\tlr {lr:.6e}"
            )
    return lines


def test_the_rate_printed_beside_a_batchs_readings_is_read_and_a_settings_multiplier_is_not():
    run = parse_run("\n".join(_dassl(falling(60, 0.9, 0.4))))
    lr = run.table["lr"].dropna()
    assert lr.iloc[-1] < 1e-4 and 0.1 not in lr.tolist()  # the schedule's rate, not the settings' multiplier
    # its flat tail as the rate decays is convergence, not a plateau
    assert [f.kind for f in detect(run)] == ["healthy"]
    # on a line of its own, `lr 0.01` may be a setting, and `init_lr` is one
    assert line_readings("lr 0.01", None)[0] == {}
    assert line_readings("init_lr 0.1 loss 0.5 lr 0.002", None)[0] == {"loss": 0.5, "lr": 0.002}


def test_a_best_checkpoint_evaluated_after_training_is_no_epochs_evaluation():
    acc = [48.0, 56.0, 69.6, 70.2, 74.3, 76.1, 70.0, 66.0, 63.0, 61.0, 60.0, 59.5]
    test = "Test: [ 0/47]  Time  1.334 ( 1.334)  Loss 8.6e-01 (8.6e-01)  Acc@1  56.25 ( 56.25)"
    lines = []
    for e, (t, a) in enumerate(zip(falling(12, 0.85, 0.55), acc, strict=True)):
        lines += [f"Epoch: [{e}][  0/500]  Time 17.2 (17.2)  Loss   {t:.2f} ({t:.2f})  Cls Acc 40.6 (40.6)"]
        lines += [test, f" * Acc@1 {a:.5f}"]
    lines += ["best_acc1 = 76.10000", test, " * Acc@1 76.10000", "test_acc1 = 76.10000"]
    run = parse_run("\n".join(lines))
    assert run.table["val_acc"].dropna().tolist() == acc  # the last epoch's 59.5, not the best model's again
    assert "overfitting" in {f.kind for f in detect(run)}


def test_a_single_batch_loss_scattering_near_its_level_is_no_blow_up():
    rng = random.Random(3)
    levels = falling(60, 0.6, 0.15)
    losses = [level * rng.choice([0.3, 0.6, 1.0, 1.4, 1.7]) for level in levels]
    losses[56:] = [0.011, 0.14, 0.239, 0.078]  # a low batch, then one at the run's level: a 13x "jump"
    run = parse_run("\n".join(f"epoch {e + 1}/60 loss: {v:.4f}" for e, v in enumerate(losses)))
    assert "diverged" not in {f.kind for f in detect(run)}
    # a real blow-up at the end still is one
    blown = parse_run(
        "\n".join(f"epoch {e + 1}/60 loss: {v:.4f}" for e, v in enumerate([*losses[:58], 9.0, 12.0]))
    )
    assert "diverged" in {f.kind for f in detect(blown)}


def test_a_best_record_printed_after_each_evaluation_skips_no_later_evaluation():
    train, val = falling(10, 0.9, 0.3), falling(10, 0.8, 0.4)
    lines = []
    for i, (t, v) in enumerate(zip(train, val, strict=True)):
        lines += [
            f"step {100 * (i + 1)} loss {t:.4f}",
            f"Validation: loss: {v:.4f}",
            f"best_val_loss = {min(val[: i + 1]):.4f}",
        ]
    run = parse_run("\n".join(lines))
    assert run.table["val_loss"].dropna().round(4).tolist() == [round(v, 4) for v in val]


def test_a_jump_above_where_the_run_began_is_a_blow_up_however_noisy_the_curve():
    run = parse_run(
        "\n".join(f"epoch {e + 1}/6 loss: {v}" for e, v in enumerate([2.98, 1.49, 0.58, 52.7, 1.2, 115]))
    )
    assert "diverged" in {f.kind for f in detect(run)}
