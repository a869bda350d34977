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


def test_the_trainers_records_all_at_epoch_zero_are_a_curve_judged_row_by_row():
    # LoRA fine-tuning in a notebook under DeepSpeed: the engine logs `step=0, skipped=0, lr=[0.0]`,
    # then the Trainer prints `{'loss': …, 'learning_rate': …, 'epoch': 0.0}` (epoch rounded to 0.0
    # for a short run) between progress bars; each record is a point, judged row by row (the log was
    # refused as holding one reading, and one epoch is no axis to judge on)
    losses = [1.87, 1.57, 1.48, 1.76, 1.55, 1.96, 2.21, 1.76, 1.09, 1.78, 2.08]
    lines = ["[2023-05-12 05:09:51,846] [INFO] [logging.py:96:log_dist] [Rank 0] step=0, skipped=0, lr=[0.0]"]
    for i, loss in enumerate(losses):
        lines.append(
            f" {i}% {i}/100 [00:0{i % 10}<02:13,  1.35s/it][INFO] [deepspeed] OVERFLOW! Skipping step."
        )
        lines.append(str({"loss": loss, "learning_rate": 1e-4 * (1 - i / 11), "epoch": 0.0}))
    run = parse_run("\n".join(lines))
    assert run.table["train_loss"].dropna().tolist() == losses
    assert len(run.table) == len(losses)
    found = detect(run)
    assert [f.kind for f in found] == ["underfitting"] and "row 11" in found[0].evidence


def test_the_trainers_records_at_an_epoch_rounded_to_two_decimals_are_each_a_print():
    # a ChatGLM3 LoRA fine-tune's console: `{'loss': …, 'learning_rate': …, 'epoch': 0.01}` every 10
    # steps of a long first epoch, its epoch rounded so that ten records share each value; the eval
    # record at an epoch adds to that print's row (the 400 prints were read as the few epochs' last)
    losses = _falling(40, 4.8, 3.3)
    lines = []
    for i, loss in enumerate(losses):
        lines.append(
            str({"loss": round(loss, 4), "learning_rate": 5e-5 * (1 - i / 40), "epoch": round(i / 1000, 2)})
        )
        if i % 10 == 9:
            lines.append(str({"eval_rouge-1": 31.6 + i / 40, "epoch": round(i / 1000, 2)}))
    run = parse_run("\n".join(lines))
    assert run.table["train_loss"].dropna().tolist() == [round(v, 4) for v in losses]
    assert run.table["val_rouge_1"].notna().sum() == 4 and len(run.table) == 40


def test_one_epochs_progress_bar_is_a_curve_of_its_updates():
    # RWKV-infctx-trainer under Lightning: one epoch of 1307 steps, its bar's postfix `train/loss=…` at
    # each update (each drawn twice), after the optimiser's settings; was refused as one reading
    losses = _falling(60, 11.2, 6.7)
    lines = ["[RWKV.model] Configuring optimizer with", "    - lr_init:  6.000e-04 (0.0006)",
             "    - lr_final: 4.000e-04 (0.0004)"]  # fmt: skip
    for i, t in enumerate(losses, 1):
        bar = f"Epoch 0:   {i * 100 // 1307:2d}%|          | {i}/1307 [00:0{i % 10}<23:51,  1.5it/s"
        lines.append(f"{bar}, v_num=b88m, train/loss={t:.3f}]{bar}, v_num=b88m, train/loss={t:.3f}]")
    run = parse_run("\n".join(lines))
    assert run.table["train_loss"].dropna().round(3).tolist() == [round(t, 3) for t in losses]
    assert run.table["step"].dropna().tolist() == [float(i) for i in range(1, 61)]
    assert any("progress bar's 60 updates" in n for n in run.notes)
    assert [f.kind for f in detect(run)] == ["healthy"]
    # a validation halfway through the epoch leaves its reading in the bar's postfix: the updates after
    # it are the epoch's steps still (they were dropped, the table ending at the evaluation)
    half = [line.replace("]", ", val/loss=3.100]") if i > 30 else line for i, line in enumerate(lines)]
    run = parse_run("\n".join(half))
    assert run.table["step"].dropna().tolist() == [float(i) for i in range(1, 61)]


def test_one_epochs_bar_after_a_configuration_that_names_a_losss_setting_is_a_curve():
    # a ranking IQA trainer prints its configuration (`Ranking Loss Margin: 0.1`, read as a reading: a
    # row before any epoch), then its first epoch's bar until it is interrupted: the bar's updates are
    # the run (it was refused as each metric logged once)
    losses = _falling(40, 64.9, 5.9)
    lines = ["Loss Function:", "  Ranking Loss Alpha:       0.5", "  Ranking Loss Margin:      0.1"]
    lines += [
        f"Epoch 1/30:   {i // 44:d}%|          | {i * 11}/4404 [00:0{i % 10}<27:39, 2.65batch/s, "
        f"loss={t:.4f}, rank_loss=0.77]"
        for i, t in enumerate(losses, 1)
    ]
    run = parse_run("\n".join(lines))
    assert run.table["train_loss"].dropna().round(4).tolist() == [round(t, 4) for t in losses]
    assert any("progress bar's 40 updates" in n for n in run.notes)
