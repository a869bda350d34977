"""Where a console log's epoch counter is not the word `epoch`: a stage word and its count opening the
line (DGCNN's `Train 3, loss: …`), and evaluation lines that count epochs from 0 beside training
lines that count from 1; a federated run's rounds."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.runs import detect, parse_run
from assistant.runs.parse.readings import without_best_counter
from assistant.runs.parse.restarts import last_run
from tests.run_helpers import falling, train_val


def _dgcnn(train: list[float], test: list[float]) -> str:
    """DGCNN's (and CurveNet's, and their forks') `main.py` output: a line per epoch and stage."""
    lines = ["Namespace(exp_name='cls_1024', model='dgcnn', epochs=200)", "Use Adam"]
    for e, (t, v) in enumerate(zip(train, test, strict=True)):
        lines.append(f"Train {e}, loss: {t:.6f}, train acc: {1 - t / 4:.6f}, train avg acc: {1 - t / 3:.6f}")
        lines.append(f"Test {e}, loss: {v:.6f}, test acc: {1 - v / 4:.6f}, test avg acc: {1 - v / 3:.6f}")
    return "\n".join(lines)


def test_a_stage_word_and_its_count_opening_a_line_are_the_stage_and_the_epoch():
    # `Test 3, loss: 1.74` was read as a training loss with no epoch: each stage's line a row of its
    # own, the test loss drawn into the training curve and no held-out loss at all
    train, test = falling(30, 2.4, 1.3), falling(30, 2.1, 1.45)
    run = parse_run(_dgcnn(train, test))
    assert len(run) == 30 and list(run.table["epoch"]) == list(range(1, 31))
    assert np.allclose(run.table["train_loss"], np.round(train, 6))
    assert np.allclose(run.table["val_loss"], np.round(test, 6))
    assert np.allclose(run.table["val_acc"], np.round(1 - np.array(test) / 4, 6))


def test_evaluation_lines_counting_epochs_from_zero_are_not_a_restart_every_epoch():
    # AdaHessian's TF2 script: the epoch's bar says `epoch 1/200`, its evaluation `Testing Acc at
    # epoch 0`. Read as printed, every evaluation went back an epoch: a new run, and the training
    # losses of all but the last "run" were dropped
    loss, acc = falling(40, 1.3, 0.05), [0.5 + 0.4 * (1 - np.exp(-e / 8)) for e in range(40)]
    lines = ["RUNID: adam_x1"]
    for e, (t, a) in enumerate(zip(loss, acc, strict=True)):
        bar = "100%|####################| 200/200 [00:11<00:00, 17.54it/s]"
        lines.append(f"epoch {e + 1}/40: {bar} c_loss: {t:.3f}  | err: {t / 3:.3f}")
        lines += [f"Testing Acc at epoch {e}: {a:.4f}", f"Best testing Acc at epoch {e}: {a:.4f}"]
    run = parse_run("\n".join(lines))
    assert not any("runs" in n for n in run.notes)
    assert list(run.table["epoch"]) == list(range(1, 41))
    assert run.sources["train_loss"] == "c_loss" and np.allclose(run.table["train_loss"], np.round(loss, 3))
    assert np.allclose(run.table["val_acc"], np.round(acc, 4))
    assert [f.kind for f in detect(run)] == ["healthy"]


def test_an_evaluation_before_training_at_epoch_zero_keeps_its_epoch():
    # the same lines with a baseline evaluation first (`Testing Acc at epoch 0` before any training):
    # the evaluations count like the training lines, each at its own epoch
    lines = ["Testing Acc at epoch 0: 0.1000"]
    for e in range(1, 11):
        lines += [f"epoch {e}/10: c_loss: {1 / e:.3f}", f"Testing Acc at epoch {e}: {0.5 + e / 25:.4f}"]
    table = parse_run("\n".join(lines)).table  # (its epochs numbered from 1, as the reader does for any)
    assert len(table) == 11 and np.isnan(table["train_loss"].iloc[0]) and table["val_acc"].iloc[0] == 0.1
    assert np.allclose(table["train_loss"].iloc[1:], np.round([1 / e for e in range(1, 11)], 3))
    assert np.allclose(table["val_acc"].iloc[1:], [0.5 + e / 25 for e in range(1, 11)])


def test_a_json_records_counter_with_its_total_and_its_type_field_give_its_epoch_and_stage():
    # PySlowFast's `json_stats: {"_type": "val_epoch", "epoch": "10/20", "top1_err": 76.6, …}`: the
    # epoch is a string with its total and the stage is in `_type`; read as rows without an epoch, the
    # five runs appended to one file were one run, and the validation errors were training's
    lines = []
    for run in range(2):
        for e in range(1, 21):
            loss = 3.3 - 0.04 * e - 0.5 * run
            record = f'"_type": "train_epoch", "epoch": "{e}/20", "loss": {loss:.4f}, "top1_err": 70'
            lines.append(f"json_stats: {{{record}}}")
            if e % 5 == 0:
                lines.append(
                    f'json_stats: {{"_type": "val_epoch", "epoch": "{e}/20", "top1_err": {80 - e:.2f}}}'
                )
    run = parse_run("\n".join(lines))
    assert any("2 runs" in n for n in run.notes)
    assert list(run.table["epoch"]) == list(range(1, 21))
    # (the validation error, lower is better, is the held-out curve beside the training loss)
    assert run.sources["val_loss"] == "val_top1_err"
    assert run.table["val_loss"].dropna().tolist() == [75.0, 70.0, 65.0, 60.0]
    assert np.isclose(run.table["train_loss"].iloc[0], 3.3 - 0.04 - 0.5)


def test_evaluations_every_fifth_epoch_counting_from_zero_keep_their_last_one():
    # `epoch 5/20: …` then `Testing Acc at epoch 4: …`, every fifth epoch: the evaluations name the
    # epoch before the training line's. Read as they print, each went back an epoch, and the last one
    # (the evaluation overfitting is judged on) was dropped as a re-evaluation of an old checkpoint
    lines = []
    for e in range(1, 21):
        lines.append(f"epoch {e}/20: c_loss: {1 / e:.3f}")
        if e % 5 == 0:
            lines.append(f"Testing Acc at epoch {e - 1}: {0.05 * e:.2f}")
    run = parse_run("\n".join(lines))
    assert len(run) == 20 and not any("runs" in n for n in run.notes)
    assert run.table["val_acc"].dropna().tolist() == [0.25, 0.5, 0.75, 1.0]
    assert run.table.loc[run.table["val_acc"].notna(), "epoch"].tolist() == [5.0, 10.0, 15.0, 20.0]


# TensorFlow Federated's tutorials print a line per round, `round  3, train_metrics=OrderedDict([('loss',
# 2.30), ...])`; a federated script may write `Round 3, loss: …` through Python's logging, its counter
# opening the message rather than the line
_ROUNDS = {
    "tff": "round {r:2d}, train_metrics=OrderedDict([('sparse_categorical_accuracy', {a:.4f}), "
    "('loss', {v:.5f}), ('num_examples', 1000)]), broadcasted_bits=507.62Mibit",
    "logging": "2024-05-01 10:00:{r:02d},000 - fl - INFO - Round {r}, loss: {v:.5f}",
}


@pytest.mark.parametrize("shape", _ROUNDS.values(), ids=list(_ROUNDS))
def test_federated_rounds_count_steps_and_a_round_back_at_zero_starts_a_run(shape: str):
    # a second configuration run in the next cell: without a counter the two runs were read as one
    def rounds(losses: list[float]) -> list[str]:
        return [shape.format(r=r, v=v, a=1 - v / 2.5) for r, v in enumerate(losses)]

    first, second = falling(10, 2.31, 1.2), falling(10, 2.32, 1.9)
    run = parse_run("\n".join(rounds(first) + rounds(second)))
    assert list(run.table["step"]) == list(range(10)) and any("2 runs" in n for n in run.notes)
    assert np.allclose(run.table["train_loss"], np.round(second, 5))


def test_a_round_in_prose_beside_a_step_or_tagged_over_epochs_is_no_counter():
    # prose that opens with a round is no counter (its line opens each run again), nor is a round
    # beside a step word (the step counts)
    prose = [f"Round {k} of the learning-rate search" for k in (1, 2)]
    tried, again = falling(30, 2.0, 0.2), falling(30, 2.1, 0.5)
    searched = [prose[0], *(f"loss: {v:.4f}" for v in tried), prose[1], *(f"loss: {v:.4f}" for v in again)]
    run = parse_run("\n".join(searched))
    assert any("2 runs" in n for n in run.notes) and np.allclose(run.table["train_loss"], np.round(again, 4))
    first = falling(10, 2.31, 1.2)
    stepped = parse_run(
        "\n".join(f"Round 2, Step {300 + 10 * i}, loss: {v:.4f}" for i, v in enumerate(first))
    )
    assert list(stepped.table["step"]) == [300 + 10 * i for i in range(10)]
    # an outer loop's round tagged at the line's start is no counter of the readings under it
    tagged = [
        f"[RAR-G] round {k} | points= 2500\n"
        + "\n".join(f"epoch {e} loss: {v:.4f}" for e, v in enumerate(first))
        for k in (1, 2)
    ]
    assert "step" not in parse_run("\n".join(tagged)).table.dropna(axis=1, how="all")


def test_a_stage_and_count_opening_the_message_after_a_logger_prefix_is_the_epoch():
    # DGCNN's `Train 3, loss: …` and `Test 3, loss: …` lines under a logger's time and level
    lines = [
        f"2024-05-01 10:00:00,000 - INFO - {stage} {e}, loss: {v:.3f}"
        for e, v in enumerate(falling(10, 2.31, 1.2), start=1)
        for stage in ("Train", "Test")
    ]
    assert list(parse_run("\n".join(lines)).table["epoch"]) == list(range(1, 11))


def test_a_last_run_that_goes_on_from_the_one_before_is_not_judged_from_scratch():
    # FITS' two phases in one log: the second counts its epochs from 1 again but fine-tunes the
    # first's weights: its validation loss starts where the first's ended (0.1137 after 0.616 ->
    # 0.117) and barely moves, which is no underfitting: what it learned is in the phase before
    line = "Epoch: {x}, Steps: 137 | Train Loss: {t:.7f} Vali Loss: {v:.7f}"
    first = train_val(falling(40, 0.80, 0.02), falling(40, 0.62, 0.117), line=line, every=1)
    flat = [0.1137 - 0.0006 * i / 29 for i in range(30)]
    second = train_val([0.1369 - 0.002 * i / 29 for i in range(30)], flat, line=line, every=1)
    run = parse_run(first + "\n" + second)
    assert run.resumed and any("go on from its weights" in n for n in run.notes)
    assert "underfitting" not in [f.kind for f in detect(run)]
    # runs that each sit at chance (0.693 after 0.693) start where the one before ended too, from
    # scratch: the last one is judged as it is
    stuck = [0.6935 - 0.0003 * i / 19 for i in range(20)]
    again = [train_val(stuck, stuck, line=line, every=1)] * 3
    run = parse_run("\n".join(again))
    assert not run.resumed and "underfitting" in [f.kind for f in detect(run)]
    # a restart from scratch with other settings that learns fast starts above where the run before
    # ended (1.15 after 1.10): no resume
    sweep = train_val(falling(20, 2.3, 1.0), falling(20, 2.2, 1.1), line=line, every=1)
    fast = train_val(
        [1.12, 1.08, 1.06, 1.05] + [1.03] * 16, [1.15, 1.12, 1.11] + [1.09] * 17, line=line, every=1
    )
    assert not parse_run(sweep + "\n" + fast).resumed


def test_timms_epoch_before_its_batch_count_and_its_best_epoch_after_each_evaluation():
    # timm's train.py: `Train: 307 [1000/8007 ( 12%)]  Loss: …`, `Test: [ 312/312] … Loss: … (1.12)`,
    # then `*** Best metric: 78.3 (epoch 305)`: the epoch is the one training says, not the best's
    lines = []
    for e, (t, v) in enumerate(zip(falling(12, 3.0, 1.8), falling(12, 2.0, 1.0), strict=True), start=300):
        lines += [f"Train: {e} [{b:4d}/8007 ({b // 80:3d}%)]  Loss:  {t + 0.1:.6f} ({t:.4f})  LR: 5.000e-07"
                  for b in (0, 4000, 8006)]  # fmt: skip
        lines += [f"Test: [ 312/312]  Time: 0.198 (0.241)  Loss:  2.1777 ({v:.4f})  Acc@1: 45.0 (78.46)"]
        lines += ["Current checkpoints:", f" ('./output/train/checkpoint-{e}.pth.tar', 78.46)", ""]
        lines += [f"*** Best metric: 78.46 (epoch {max(300, e - 3)})"]
    t = parse_run("\n".join(lines)).table
    assert t.dropna(subset=["val_loss"])["epoch"].tolist() == list(range(300, 312))
    # the best's epoch is no counter of the line, wherever it stands
    assert "314" not in without_best_counter("*** Best metric: 78.322 (epoch 314)")
    assert "4" in without_best_counter("New best model! Epoch 4 loss: 0.6")
    assert "5" in without_best_counter("Saving best model (epoch 5) train_loss 0.9")  # no reading before it


def test_appended_runs_are_told_apart_by_their_epochs_beside_a_stray_step():
    # reproduction notes pasting the consoles of nine Anomaly Transformer runs, and among them the data
    # loader's code (`def get_loader_segment(…, win_size=100, step=100, …)`), read as a row at step 100:
    # with a step on one row, the rows counted by epoch alone were left out of telling the runs apart,
    # and the nine runs were judged as one
    epoch = np.array([1, 2, 3, 4, 1, 2, 3, 3, 1, 2, 3, 4], dtype=float)
    step = np.full(len(epoch), np.nan)
    step[7] = 100.0
    keep, runs, _ = last_run(epoch, step)
    assert runs == 3 and keep.tolist() == [False] * 8 + [True] * 4
