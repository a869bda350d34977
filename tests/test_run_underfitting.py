"""Underfitting: a run that barely learned, told from one that learned before its log begins, from a
loss with a floor beside a held-out accuracy that climbed, from a run stopped on its target; a
classifier at chance (1/K beside a loss at ln K); and a loss below zero, whose zero means nothing."""

from __future__ import annotations

import math

import numpy as np

from assistant.runs import detect, parse_run
from tests.run_helpers import kinds as _kinds
from tests.run_helpers import steps_log


def test_a_log_that_begins_well_into_training_is_not_called_underfitting():
    # a resumed run: 60 prints from step 4,530,000 on, flat around 0.02
    rng = np.random.default_rng(2)
    flat = [0.02 + rng.normal(0, 0.002) for _ in range(60)]
    assert "underfitting" not in _kinds(steps_log(flat, first=4_530_000, every=100))
    assert "underfitting" in _kinds(steps_log(flat, first=10, every=100))  # the same curve from the start


def test_a_curve_that_never_came_down_is_underfitting_alone():
    # a loss that wanders around where it began (a DPO loss near ln 2) never levelled off from anything
    rng = np.random.default_rng(3)
    wandering = [0.69 + 0.03 * np.sin(i / 5) + rng.normal(0, 0.03) for i in range(60)]
    assert _kinds(steps_log(wandering)) == ["underfitting"]
    # one that came down a little, clearly, and then flattened is both
    rng = np.random.default_rng(4)
    slow = [2.0 - 0.1 * min(i, 30) / 30 + rng.normal(0, 0.002) for i in range(60)]
    assert set(_kinds(steps_log(slow))) == {"plateau", "underfitting"}


def test_a_held_out_map_that_rose_clear_of_its_noise_is_learning_though_far_from_its_ceiling():
    # a detector fine-tuned for 16k steps: its loss eases 15%, its evaluation's AP50 goes 22 -> 27.5
    # (a fifteenth of the way to 100, far above its noise): it learns. The same AP50 wandering in its
    # noise around 22 beside that loss is underfitting.
    rng = np.random.default_rng(5)
    loss = [0.175 - 0.026 * i / 80 + rng.normal(0, 0.006) for i in range(81)]
    rising = [22.4 + 5.1 * min(i, 8) / 8 + rng.normal(0, 0.5) for i in range(16)]
    flat = [22.4 + rng.normal(0, 0.5) for _ in range(16)]
    for ap50, want in ((rising, False), (flat, True)):
        lines = []
        for i, v in enumerate(loss):
            lines.append(f"iter: {200 * i + 19}  total_loss: {v:.4f}  lr: 0.02")
            if i % 5 == 4:
                a = ap50[i // 5]  # detectron2's COCO table
                lines += ["|  AP  |  AP50  |  AP75  |", "|:----:|:------:|:------:|"]
                lines.append(f"| {a / 2:.3f} | {a:.3f} | {a / 3:.3f} |")
        found = _kinds("\n".join(lines))
        assert ("underfitting" in found) == want, found


def test_a_held_out_accuracy_inching_from_chance_is_still_underfitting():
    # training loss 1% better, validation accuracy 10% -> 11% over 30 epochs, smoothly: it rose clear
    # of its (tiny) noise, but closed a hundredth of its gap: the model learns nothing
    loss = [2.30 - 0.023 * i / 29 for i in range(30)]
    acc = [0.10 + 0.01 * i / 29 for i in range(30)]
    text = "\n".join(
        f"epoch {e + 1} loss {t:.4f} val_acc {a:.4f}" for e, (t, a) in enumerate(zip(loss, acc, strict=True))
    )
    assert "underfitting" in _kinds(text)


def test_a_loss_with_a_floor_beside_a_held_out_accuracy_that_climbed_past_half_is_not_underfitting():
    # CurveNet on ShapeNetPart: a label-smoothed loss, 1.44 -> 1.35 after its first epoch (its floor
    # is far from zero), validation loss 1.47 -> 1.40, while test accuracy climbs 0.88 -> 0.95: it learned
    n = 60
    train = [1.35 + 0.09 * np.exp(-e / 20) for e in range(n)]
    val = [1.395 + 0.07 * np.exp(-e / 20) for e in range(n)]
    lines = [
        f"Epoch {e + 1}: loss {t:.4f} val_loss {v:.4f} val_acc {0.95 - 0.07 * np.exp(-e / 12):.4f}"
        for e, (t, v) in enumerate(zip(train, val, strict=True))
    ]
    assert "underfitting" not in _kinds("\n".join(lines))
    # the same losses beside an accuracy that climbs only to 0.42 (four classes): short of half, it
    # may sit near chance, and the flat losses say the model barely learns
    low = [line.replace("val_acc 0.9", "val_acc 0.4").replace("val_acc 0.8", "val_acc 0.3") for line in lines]
    assert "underfitting" in _kinds("\n".join(low))


def test_a_binary_accuracy_just_past_half_beside_losses_at_ln_2_is_underfitting():
    # a Keras deepfake detector: validation loss 0.696 -> 0.684 (ln 2 = 0.693, a binary classifier's
    # untrained cost), training loss 0.693 -> 0.62, validation accuracy 0.41 -> 0.60: past half of 1,
    # but a fifth of the way from its chance of 0.5. It has learned next to nothing
    def log(val_start: float) -> str:
        rows = "".join(
            f"{e},{0.693 - 0.075 * e / 9:.4f},{val_start - 0.012 * e / 9:.4f},"
            f"{0.45 + 0.15 * e / 9 + 0.02 * (-1) ** e:.4f}\n"
            for e in range(10)
        )
        return "epoch,loss,val_loss,val_accuracy\n" + rows

    assert "underfitting" in _kinds(log(0.696))
    # the same accuracy beside a validation loss no ln K is near (0.90): chance is unknown, taken as
    # zero, and an accuracy past half of its top says the model learned
    assert "underfitting" not in _kinds(log(0.90))
    # chance is 1/K for an accuracy alone: an IoU of 0.60 beside the same losses has learned
    assert "underfitting" not in _kinds(log(0.696).replace("val_accuracy", "val_iou"))
    # a validation loss first logged at 1069 (an unscaled regression's error) names no classes at all
    assert "underfitting" not in _kinds(log(1069.0))


def test_the_classes_an_untrained_loss_implies():
    from assistant.runs.chance import classes_at_start
    from assistant.runs.findings import THRESHOLDS

    found = [classes_at_start(v, THRESHOLDS) for v in (0.696, 2.31, 1.2, 0.4, 1069.0, math.inf, math.nan)]
    assert found == [2, 10, None, None, None, None, None]


def test_a_classifier_at_chance_is_underfitting_not_a_plateau():
    # Time-Series-Library's iTransformer on four classes: the loss falls 2.9 -> 1.39 in seven epochs,
    # then sits at ln 4 = 1.386 with accuracy 0.251 for ninety: it learned the prior and nothing more
    rng = np.random.default_rng(7)
    losses = [1.386 + 1.5 * np.exp(-e / 1.5) for e in range(100)]
    lines = [
        f"Epoch: {e + 1}, Steps: 13 | Train Loss: {t + rng.normal(0, 0.005):.3f} Vali Loss: {t:.3f} "
        f"Vali Acc: {0.247 + 0.004 * (e % 2):.3f}"
        for e, t in enumerate(losses)
    ]
    found = detect(parse_run("\n".join(lines)))
    assert [f.kind for f in found] == ["underfitting"] and found[0].details["classes"] == 4
    # the same loss beside an accuracy that learned (0.9) is no guess: ln 4 is then a coincidence
    learned = [line.replace("Vali Acc: 0.2", "Vali Acc: 0.9") for line in lines]
    assert "underfitting" not in [f.kind for f in detect(parse_run("\n".join(learned)))]


def test_a_run_that_stopped_on_reaching_its_quality_target_is_not_underfitting():
    # MLPerf GPT-3 from a checkpoint: its training loss moves 3% (2.77 -> 2.69) on the way to the
    # target, and the log says it got there (`run_stop`, status success)
    rng = np.random.default_rng(8)
    losses = [2.77 - 0.08 * i / 60 + rng.normal(0, 0.004) for i in range(60)]
    stats = "\n".join(
        f':::MLLOG {{"key": "tracked_stats", "value": {{"reduced_train_loss": {v:.4f}}}, '
        f'"metadata": {{"step": {i + 1}}}}}'
        for i, v in enumerate(losses)
    )
    stop = ':::MLLOG {"key": "run_stop", "value": null, "metadata": {"status": "success"}}'
    assert "underfitting" in _kinds(stats)
    assert _kinds(stats + "\n" + stop) == ["healthy"]


def test_a_loss_below_zero_is_underfitting_only_when_it_never_came_down():
    # a normalising flow's NLL: -113,248 to -115,470 is 2% of a number whose zero means nothing
    rng = np.random.default_rng(3)
    nll = [-113_248 - 2_300 * (1 - math.exp(-i / 6)) + rng.normal(0, 15) for i in range(30)]
    assert "underfitting" not in _kinds(steps_log(nll, every=1000))
    flat = [-113_248 + rng.normal(0, 15) for _ in range(30)]  # never came down: underfitting still
    assert "underfitting" in _kinds(steps_log(flat, every=1000))
    # ...and beside a held-out loss that never moves, held-out data still decides
    val = [2.3 + rng.normal(0, 0.01) for _ in range(30)]
    lines = [
        f"Epoch {e + 1}: loss={t:.2f} val_loss={v:.4f}" for e, (t, v) in enumerate(zip(nll, val, strict=True))
    ]
    assert "underfitting" in _kinds("\n".join(lines))


def test_a_roc_auc_is_judged_from_its_chance_of_one_half():
    # an encoder-decoder knowledge tracer: both losses at ln 2 for 800 epochs while the held-out AUC
    # creeps from 0.58 to 0.70, two fifths of the way from a random ranking's 0.5 to 1: it barely learns.
    # An AUC taken from zero was past half its way at 0.70, and the run was called healthy.
    epochs = range(100, 900, 100)
    aucs = [0.579, 0.622, 0.655, 0.675, 0.686, 0.694, 0.700, 0.704]
    lines = []
    for e, auc in zip(epochs, aucs, strict=True):
        lines.append(f"TRAIN Epoch: {e} Loss: {0.693131 - e * 2e-7:.6f}")
        lines.append(f"EVAL  Epoch: {e} Loss: {0.69312 - e * 2e-7:.6f}")
        lines.append(f"EVAL  Epoch: {e} AUC: {auc}")
    assert _kinds("\n".join(lines)) == ["underfitting"]
    # one that reached 0.90 learned, whatever its loss did
    lines = [line.replace("AUC: 0.7", "AUC: 0.9").replace("AUC: 0.6", "AUC: 0.8") for line in lines]
    assert _kinds("\n".join(lines)) != ["underfitting"]
