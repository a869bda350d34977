"""Loggers of image restoration, forecasting and click-through models, laid out as their producers
write them: KAIR's `<epoch, iter, lr> G_loss` lines and `Average PSNR : 27.86dB` evaluations,
BasicSR's `l_pix` loss terms, N-BEATS' `tr_loss (epoch) = …` (a remark in brackets after a name),
HugeCTR's `Evaluation, AUC: 0.79`; and those of architecture search and 3D vision: pt.darts' `Train: [ 3/50]
Step 050/468 Loss …` under a time and a bar, Frustum PointNets' ` -- 010 / 9181 --` above its readings,
3D-ResNets' TSV of `tensor(3.4634, device='cuda:0')` cells; DeepXDE's table of each loss's terms."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from assistant.runs import detect, parse_run
from tests.run_helpers import falling


def _evaluated_every_fifth(
    losses: list[float], line: str, evaluation: str, score: Callable[[int], float]
) -> list[str]:
    """A training line per logged step `i` (iteration `it` = 200 i), and an evaluation every fifth."""
    lines = []
    for i, loss in enumerate(losses, start=1):
        lines.append(line.format(i=i, it=200 * i, loss=loss))
        if i % 5 == 0:
            lines.append(evaluation.format(i=i, it=200 * i, score=score(i)))
    return lines


def test_kair_psnr_in_decibels_is_the_held_out_curve():
    # KAIR writes each evaluation's PSNR with its unit stuck to the number: it was no reading at all
    lines = _evaluated_every_fifth(
        falling(40, 0.06, 0.02),
        "25-12-16 16:{i:02d}:58.396 : <epoch:{i:3d}, iter:{it:8,d}, lr:2.000e-04> G_loss: {loss:.3e} ",
        "25-12-16 16:{i:02d}:59.012 : <epoch:{i:3d}, iter:{it:8,d}, Average PSNR : {score:.2f}dB",
        lambda i: 26 + i / 10,
    )
    run = parse_run("\n".join(lines))
    assert {"train_g_loss", "val_psnr"} <= set(run.metrics)  # (G: the generator's)
    assert np.allclose(run.table["val_psnr"].dropna(), [26.5, 27.0, 27.5, 28.0, 28.5, 29.0, 29.5, 30.0])
    # a unit of another kind stuck to a number still makes no reading (a version, a byte count)
    assert "val_psnr" not in parse_run("\n".join(line.replace("dB", "dBm") for line in lines)).metrics


def test_basicsr_loss_terms_named_l_are_losses():
    # BasicSR names each term of its loss `l_` and the term: `l_pix`, `l_percep`; they were no readings
    lines = [
        f"2023-12-04 14:53:19,378 INFO: [train..][epoch:  0, iter:{i:8,d}, lr:(1.000e-03,)] [eta: 0:00:41, "
        f"time (data): 1.905 (0.793)] l_pix: {loss:.4e} l_percep: {2 * loss:.4e} "
        for i, loss in enumerate(falling(30, 0.4, 0.03), start=1)
    ]
    run = parse_run("\n".join(lines))
    assert {"train_loss_pix", "train_loss_percep"} <= set(run.metrics)
    assert run.table["train_loss_pix"].iloc[0] == 0.4
    # only its terms' words: an `l_acc` or an `l_step` beside them is no loss
    other = [
        f"Epoch {e} l_pix: {0.1 * 0.9**e:.4f} l_acc: {0.4 + 0.035 * e:.3f} l_step: {100 * e}"
        for e in range(1, 16)
    ]
    assert {"train_loss_pix", "train_l_acc"} <= set(parse_run("\n".join(other)).metrics)
    # a learning rate written `l_rate` stays a setting
    assert not any(
        "rate" in m
        for m in parse_run(
            "\n".join(f"epoch {e} l_rate: 0.01 loss: {1 / e:.3f}" for e in range(1, 9))
        ).metrics
    )


def test_a_remark_in_brackets_after_a_name_leaves_the_name():
    # N-BEATS' notebook prints `tr_loss (epoch) = 944.288, te_loss (epoch) = 1068.918` every 100 epochs
    train, test = falling(10, 5.0, 0.2), falling(10, 6.0, 0.5)
    lines = [
        f"epoch = {100 * e:04d}, grad_step = {1212 * e:06d}, tr_loss (epoch) = {t:.3f}, "
        f"te_loss (epoch) = {v:.3f}"
        for e, (t, v) in enumerate(zip(train, test, strict=True))
    ]
    run = parse_run("\n".join(lines))
    assert {"train_loss", "val_loss"} <= set(run.metrics)
    assert np.allclose(run.table["train_loss"], np.round(train, 3))
    # a remark may say the stage, or tell two readings of one name apart: it stays in the name
    staged = [
        f"Epoch {e} | Loss (train): {t:.4f} | Loss (val): {v:.4f}"
        for e, (t, v) in enumerate(zip(train, test, strict=True))
    ]
    run = parse_run("\n".join(staged))
    assert np.allclose(run.table["train_loss"], np.round(train, 4)) and np.allclose(
        run.table["val_loss"], np.round(test, 4)
    )
    two = parse_run(
        "\n".join(
            f"epoch {e} loss: {t:.3f} PSNR (Y): {30 + e / 10:.2f} PSNR (RGB): {28 + e / 10:.2f}"
            for e, t in enumerate(train)
        )
    )
    assert {"val_psnr_y", "val_psnr_rgb"} <= set(two.metrics)


def test_hugectr_evaluation_lines_are_held_out():
    # HugeCTR: `Iter: N … Loss: x` every 200 iterations and `Evaluation, AUC: y` every 1000: the
    # evaluation's AUC was read as a training reading (the stage word ends with a comma)
    lines = _evaluated_every_fifth(
        falling(50, 0.58, 0.49),
        "[26d22h01m45s][HUGECTR][INFO]: Iter: {it} Time(200 iters): 0.2063s Loss: {loss:.6f} lr:0.001000",
        "[26d22h01m46s][HUGECTR][INFO]: Evaluation, AUC: {score:.6f}",
        lambda i: 0.77 + i / 1000,
    )
    run = parse_run("\n".join(lines))
    assert "val_auc" in run.metrics and "train_auc" not in run.metrics
    assert len(run.table["val_auc"].dropna()) == 10


def test_ptdarts_epochs_in_brackets_and_its_validation_lines():
    # `MM/DD hh:mm:ss PM | ` is its logger's prefix, the bracketed count before `Step` its epoch, and
    # the validation lines' own step counter counts their batches: it is no restart of the run
    lines = []
    for e, (t, v) in enumerate(zip(falling(12, 2.0, 0.3), falling(12, 1.5, 0.5), strict=True), start=1):
        at = f"04/26 01:42:48 PM | Train: [{e:2d}/12]"
        steps = (0, 50, 100)
        lines += [f"{at} Step {b:03d}/100 Loss {t + 0.1 - b / 1e3:.3f} Prec@(1,5) (54%, 95%)" for b in steps]
        lines.append(f"{at} Final Prec@1 {50 + e:.4f}%")
        at = f"04/26 01:45:00 PM | Valid: [{e:2d}/12]"
        lines += [f"{at} Step {b:03d}/050 Loss {v:.3f} Prec@(1,5) (81%, 99%)" for b in (0, 50)]
        lines.append(f"04/26 01:45:10 PM | Epoch {e} LR 0.0249")
    run = parse_run("\n".join(lines))
    assert run.has_epochs and run.table["epoch"].max() == 12
    assert not any("runs" in note for note in run.notes)  # one run, not 24
    assert {"train_loss", "val_loss"} <= set(run.metrics)
    assert np.allclose(run.table["val_loss"].dropna(), [round(v, 3) for v in falling(12, 1.5, 0.5)])
    assert not any(m[0].isdigit() for m in run.metrics)  # `Epoch 7 LR` after the bar is no name `7 LR`
    # the ImageNet example's `Test: [50/196]` still counts batches, not epochs
    imagenet = [f"Test: [{b}/196]\tTime 0.1\tLoss {1.0 + b / 1000:.4e}" for b in (50, 100, 150)]
    assert not parse_run("\n".join(imagenet * 4)).has_epochs


def test_frustum_pointnets_count_between_rules_is_the_step():
    # its readings stand one a line under ` -- 010 / 9181 --`: each was "logged once", no curve at all
    lines = ["**** EPOCH 000 ****"]
    for i, loss in enumerate(falling(30, 60.0, 10.0), start=1):
        lines += [f" -- {10 * i:03d} / 9181 --", f"mean loss: {loss:.6f}", "segmentation accuracy: 0.6"]
    run = parse_run("\n".join(lines))
    assert list(run.table["step"].dropna())[:3] == [10, 20, 30]
    assert len(run.table["train_loss"].dropna()) == 30
    # a rule with a number that is no count of a total stays a rule
    assert parse_run("\n".join(line.replace(" / 9181", "") for line in lines)).table["step"].isna().all()


def test_tensor_cells_of_a_tsv_are_their_numbers():
    # 3D-ResNets writes `str(tensor)` into its TSV logger: "none has a number in it"
    rows = [f"{e}\ttensor({loss:.4f}, device='cuda:0')\ttensor({0.1 + e / 50:.4f}, device='cuda:0')"
            for e, loss in enumerate(falling(20, 3.5, 2.2), start=2)]  # fmt: skip
    run = parse_run("epoch\tloss\tacc\n" + "\n".join(rows), name="val.log")
    assert run.metrics[:2] == ["val_loss", "val_acc"] and run.table["val_loss"].iloc[0] == 3.5


def test_deepxde_table_of_loss_terms_is_read_as_their_sums():
    # DeepXDE prints each loss as the list of its terms; only its `Best model at step N:` summary was read
    lines = ["Training model...", "", "Step      Train loss              Test loss               Test metric"]
    for i, loss in enumerate(falling(12, 0.4, 0.01)):
        lines.append(f"{1000 * i:<10d}[{loss:.2e}, {loss / 4:.2e}]    [{loss:.2e}, {loss / 2:.2e}]    []  ")
    lines += [f"{12000 + 1000 * i:<10d}[{0.008 - 0.0005 * i:.2e}, 1.00e-04]" for i in range(4)]  # L-BFGS
    lines += ["", "Best model at step 15000:", "  train loss: 6.60e-03", "  test loss: 1.20e-02"]
    run = parse_run("\n".join(lines))
    assert run.sources == {"train_loss": "train loss", "val_loss": "test loss"}
    assert list(run.table["step"]) == [1000 * i for i in range(16)]  # the best step printed again is no row
    assert run.table["train_loss"].iloc[0] == 0.4 + 0.1 and run.table["val_loss"].iloc[0] == 0.4 + 0.2
    assert run.table["val_loss"].iloc[12:].isna().all()  # L-BFGS' rows hold training's terms alone


def test_what_the_new_shapes_leave_alone():
    # a review's crafted logs, each read as before the shapes above were added
    epochs = range(1, 9)
    # `print(epoch, scheduler.get_last_lr())` is no DeepXDE row: there is no DeepXDE heading above it
    lr_prints = "".join(f"Epoch {e} loss {1 / e:.3f}\n{e} [0.001]\n" for e in epochs)
    assert list(parse_run(lr_prints).table["train_loss"].round(3)) == [round(1 / e, 3) for e in epochs]
    # a pipe table whose first column is a time is no logger's prefix
    timed = "time | epoch | loss | val_loss\n" + "".join(
        f"12:00:{e:02d} | {e} | {1 / e:.3f} | {1.2 / e:.3f}\n" for e in epochs
    )
    assert {"train_loss", "val_loss"} <= set(parse_run(timed).metrics)
    # a cell's name may hold a number (`mAP 50`); only a counter opening the cell is no part of it
    cells = "".join(f"| Epoch {e} | box loss {1 / e:.3f} | mAP 50 {0.2 + e / 30:.3f} |\n" for e in epochs)
    assert any("50" in m for m in parse_run(cells).metrics)
    # a validation line's global step with its total stays its step
    both = "".join(
        f"Epoch 0 | {stage} | step {1000 * e}/8000 | loss {scale / e:.3f}\n"
        for e in epochs
        for stage, scale in (("train", 1.0), ("valid", 1.2))
    )
    run = parse_run(both)
    assert list(run.table.dropna(subset=["val_loss"])["step"]) == [1000 * e for e in epochs]
    # a fold's heading between rules is no step
    fold = "".join(f"Epoch {e} loss {1 / e:.3f}\n" for e in epochs)
    folds = "".join(f"========== {k}/3 ==========\n{fold}" for k in (1, 2, 3))
    assert parse_run(folds).table["step"].isna().all()


def test_a_tensor_cell_holding_nan_is_a_blow_up():
    rows = [f"{i}\ttensor({2 / (i + 1):.4f}, device='cuda:0')" for i in range(12)]
    rows += [f"{i}\ttensor(nan, device='cuda:0')" for i in range(12, 18)]
    assert detect(parse_run("step\tloss\n" + "\n".join(rows)))[0].kind == "diverged"


def test_a_loggers_name_before_its_level_and_an_evaluation_counting_its_batches():
    # `%(asctime)s - %(name)s: [%(levelname)s] - %(message)s` with the logger named `train`: its
    # `TEST [40/40]: Loss: …` lines are the test set's, not training's (both were read as training)
    rng = np.random.default_rng(4)
    at = "2023-03-06 09:26:05,579 -                train: [    INFO] - "
    lines = []
    for e in range(1, 31):
        lines.append(f"{at}\nEpoch: {e}/30")
        for b in (43, 86):
            loss = 2.0 * np.exp(-e / 6) + rng.normal(0, 0.01)
            lines.append(f"{at}TRAIN [  {b}/86] Loss: {loss:.4f} ({loss:.4f}) Acc: {60 + e:.3f}% LR: 1.0e-02")
        test = 0.9 + 0.6 * np.exp(-e / 5) + 0.01 * e
        lines.append(f"{at}TEST [40/40]: Loss: {test:.3f} | Acc: {55 + e:.3f}% [8301/10000]")
    run = parse_run("\n".join(lines))
    assert run.sources["val_loss"] == "test/Loss" and run.sources["train_loss"] == "Loss"
    assert run.table["val_loss"].dropna().iloc[0] > 1.3 > run.table["train_loss"].dropna().iloc[-1] + 1


def test_a_minus_sign_after_a_loggers_level_stays_with_its_number():
    # `… - INFO - -95.0 …`: the separators after the level end where a negative number begins
    from assistant.runs.parse.lines import LOG_PREFIX

    for line, rest in (
        ("2023-01-01 10:00:00 - INFO - -95.0  1.000", "-95.0  1.000"),
        ("INFO: -0.5 loss", "-0.5 loss"),
    ):
        assert LOG_PREFIX.sub("", line, count=1) == rest


def test_an_object_of_no_reading_among_a_lines_readings_is_read_around():
    # InternEvo's metrics line prints the gradient norm per parameter group as a dict among its
    # `key=value` readings: the line was read as that dict alone, and the log refused as holding none
    loss = falling(12, 11.6, 6.5)
    lines = [
        f"INFO [training_internlm.py, line 601, in record_current_batch_training_metrics] - pid=78690 : "
        f"tflops=127.9 step={s} loss={v:.4f} tgs (tokens/gpu/second)=1031.7 lr=4e-07 loss_scale=65536.0 "
        f"grad_norm={{'0_default': {80 - s:.2f}, '1_fp32': 0.0}} micro_num=4 acc={s / 100:.3f} perplexity=9.1"
        for s, v in enumerate(loss)
    ]
    run = parse_run("\n".join(lines))
    assert np.allclose(run.table["train_loss"], np.round(loss, 4))
    assert run.table["step"].tolist() == [float(s) for s in range(12)]
    assert "train_acc" in run.metrics
