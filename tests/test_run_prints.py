"""A run of one epoch that prints its readings again and again: each print is a point of the run, and
the run is judged on those prints, not on its one epoch."""

from __future__ import annotations

import numpy as np

from assistant.runs import detect, parse_run
from tests.run_helpers import falling as _falling


def test_one_epoch_printed_again_and_again_is_a_curve_of_its_prints():
    # MorvanZhou's RNN tutorial: one epoch, `Epoch:  0 | train loss: 2.3127 | test accuracy: 0.14` every
    # 50 steps: each print is a point. With a second epoch, the prints of an epoch update its row.
    losses = _falling(15)
    one = "\n".join(f"Epoch:  0 | train loss: {t:.4f} | test accuracy: {1 - t / 3:.2f}" for t in losses)
    run = parse_run(one)
    assert len(run.table) == 15 and np.allclose(run.table["train_loss"], np.round(losses, 4))
    assert any("printed 15 times" in n for n in run.notes)
    two = "\n".join(
        f"Epoch:  {e} | train loss: {t:.4f} | test accuracy: {1 - t / 3:.2f}"
        for e in range(12)
        for t in (losses[e] + 0.01, losses[e])
    )
    run = parse_run(two)
    assert len(run.table) == 12 and np.allclose(run.table["train_loss"], np.round(losses[:12], 4))


def test_a_learning_rate_alone_before_a_lone_epochs_prints_does_not_hide_them():
    # LoRA fine-tuning in a notebook under DeepSpeed: the engine logs `step=0, skipped=0, lr=[0.0]`,
    # then the Trainer prints `{'loss': …, 'learning_rate': …, 'epoch': 0.0}` (epoch rounded to 0.0
    # for a short run) between progress bars; the prints make the curve, judged row by row (the log
    # was refused as holding one reading, and one epoch is no axis to judge on)
    losses = [1.87, 1.57, 1.48, 1.76, 1.55, 1.96, 2.21, 1.76, 1.09, 1.78, 2.08]
    lines = ["[2023-05-12 05:09:51,846] [INFO] [logging.py:96:log_dist] [Rank 0] step=0, skipped=0, lr=[0.0]"]
    for i, loss in enumerate(losses):
        lines.append(
            f" {i}% {i}/100 [00:0{i % 10}<02:13,  1.35s/it][INFO] [deepspeed] OVERFLOW! Skipping step."
        )
        lines.append(str({"loss": loss, "learning_rate": 1e-4 * (1 - i / 11), "epoch": 0.0}))
    run = parse_run("\n".join(lines))
    assert run.table["train_loss"].dropna().tolist() == losses
    assert any("printed 11 times" in n for n in run.notes)
    found = detect(run)
    assert [f.kind for f in found] == ["underfitting"] and "row 11" in found[0].evidence
