"""A training loop that prints each batch with its running average (Dassl's and the ImageNet
example's AverageMeter: `epoch [3/100][2/4]  loss 0.52 (0.60)  acc 75.0 (71.2)  lr 1.0e-05`): the
epoch's reading is its mean, not its last batch's; the learning rate printed beside them is read (a
settings dump's `BASE_LR_MULT: 0.1` is not); a best checkpoint evaluated again after `best_acc1 = …`
is no epoch's evaluation; and a batch's loss near zero scattering by chance is no blow-up."""

from __future__ import annotations

import math
import random

from assistant.runs import detect, parse_run
from tests.run_helpers import falling


def _dassl(losses: list[float], batches: int = 4, seed: int = 0) -> tuple[list[str], list[float]]:
    """Per-batch lines whose batch values scatter widely around each epoch's loss (a few-shot run), and
    each epoch's mean as printed."""
    rng = random.Random(seed)
    n = len(losses)
    means = []
    lines = ["OPTIM:", "  BASE_LR_MULT: 0.1", "  LR: 0.002", "  LR_SCHEDULER: cosine", "Start training"]
    for e, level in enumerate(losses):
        lr = 1e-5 if e == 0 else 1e-3 * (1 + math.cos(math.pi * e / n))
        seen: list[float] = []
        scatter = rng.sample([0.05, 0.4, 1.0, 2.55], k=batches)  # the batches' mean is the epoch's level
        for b in range(1, batches + 1):
            seen.append(level * scatter[b - 1])
            lines.append(
                f"epoch [{e + 1}/{n}][{b}/{batches}]\ttime 0.145 (0.558)\tdata 0.002 (0.204)\teta 0:03:42\t"
                f"loss {seen[-1]:.4f} ({sum(seen) / len(seen):.4f})\tlr {lr:.6e}"
            )
        means.append(round(sum(seen) / len(seen), 4))
    return lines, means


def test_an_epochs_reading_is_the_running_average_its_last_batch_prints():
    lines, means = _dassl(falling(100, 0.6, 0.15))
    run = parse_run("\n".join(lines))
    # each epoch's mean of its four batches, not its last batch alone (0.05 to 2.6 times the level)
    assert run.table["train_loss"].dropna().tolist() == means
    lr = run.table["lr"].dropna()
    assert lr.iloc[-1] < 1e-4 and 0.1 not in lr.tolist()  # the schedule's rate, not the settings' multiplier
    assert [f.kind for f in detect(run)] == ["healthy"]


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
