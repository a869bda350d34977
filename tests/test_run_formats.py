"""Logs as other tools and people write them: each sample below is laid out the way its producer
writes it (Ultralytics, detectron2, DETR, llm.c, Python logging, bare prints…), and must read into
the right training and validation curves, with what was skipped said in a note and never a NaN in
the evidence."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from assistant.runs import detect, parse_run
from assistant.runs.curves import judged_metric, run_curves
from assistant.runs.parse.names import normalise
from tests.run_helpers import falling as _falling


def _evidence(run) -> str:
    return " ".join(f.evidence for f in detect(run))


def test_ultralytics_results_csv_sums_its_component_losses():
    head = (
        "                  epoch,      train/box_loss,      train/cls_loss,      train/dfl_loss,"
        "   metrics/precision(B),   metrics/mAP50(B),        val/box_loss,        val/cls_loss,"
        "        val/dfl_loss,              lr/pg0"
    )
    rows = [
        f"{e + 1:>24},{b:>20.5f},{b * 2:>20.5f},{b / 2:>20.5f},{0.5 + e / 40:>23.5f},"
        f"{0.4 + e / 40:>19.5f},{b + 0.1:>20.5f},{b * 2 + 0.1:>20.5f},{b / 2 + 0.1:>20.5f},{0.01:>20.5f}"
        for e, b in enumerate(_falling(12, 1.5, 0.8))
    ]
    run = parse_run("\n".join([head, *rows]))
    assert {"train_loss", "val_loss"} <= set(run.metrics)
    assert any("sum of its logged parts" in n for n in run.notes)
    assert run.table["train_loss"].iloc[0] == pytest.approx(1.5 * 3.5, rel=1e-3)
    assert [f.kind for f in detect(run)] == ["healthy"]
    # the mAP is computed on the validation set each epoch (a detector never computes it in training)
    assert "val_m_ap50_b" in run.metrics and "train_m_ap50_b" not in run.metrics


def test_a_reading_only_an_evaluation_computes_is_held_out_unless_named_otherwise():
    assert [normalise(n) for n in ("mAP50", "bbox_mAP", "bleu")] == [
        "val_m_ap50",
        "val_bbox_m_ap",
        "val_bleu",
    ]
    assert normalise("WER") == "train_wer"  # CTC scripts print a training batch's
    assert [normalise(n) for n in ("train_bleu", "test/mAP", "ap_loss")] == [
        "train_bleu",
        "test_m_ap",
        "train_ap_loss",
    ]
    # a test loss is still the held-out curve beside an mAP that says no stage (FCOS on VOC)
    text = "\n".join(
        f"epoch {e}, loss: {t:.4f}, test_loss: {t * 1.2:.4f}, mAP: {0.3 + e / 50:.3f}"
        for e, t in enumerate(_falling(12), start=1)
    )
    run = parse_run(text)
    assert run.sources["val_loss"] == "test_loss" and "val_m_ap" in run.metrics


def test_detectron2_metrics_json_lines_read_total_loss_per_iteration():
    lines = [
        json.dumps({"iteration": 20 * i + 19, "total_loss": v, "loss_cls": v / 2, "lr": 0.02, "time": 0.4})
        for i, v in enumerate(_falling(30, 3.0, 0.6))
    ]
    run = parse_run("\n".join(lines))
    assert "train_loss" in run.metrics and run.sources["train_loss"] == "total_loss"
    assert run.table["step"].iloc[-1] == 20 * 29 + 19


def test_detr_json_lines_read_test_loss_as_the_held_out_curve():
    lines = [
        json.dumps({"train_loss": t, "test_loss": t + 0.3, "test_coco_eval_bbox": [0.1] * 12, "epoch": e})
        for e, t in enumerate(_falling(10))
    ]
    run = parse_run("\n".join(lines))
    assert {"train_loss", "val_loss"} <= set(run.metrics)
    assert any("test curve is read as the held-out one" in n for n in run.notes)


def test_a_lightning_csv_with_one_odd_column_keeps_the_others():
    head = "epoch,step,train_loss,val_loss,out_tensor([0.])"
    rows = [f"{e},{e * 10},{t:.4f},{t + 0.2:.4f},x" for e, t in enumerate(_falling(8))]
    run = parse_run("\n".join([head, *rows]))
    assert {"train_loss", "val_loss"} <= set(run.metrics)


def test_a_metric_only_run_is_judged_on_its_metric_higher_being_better():
    rows = [
        {"epoch": e, "train_cos": 0.9 - 0.3 * math.exp(-e / 3), "val_cos": 0.84 - 0.2 * math.exp(-e / 3)}
        for e in range(1, 21)
    ]
    run = parse_run(json.dumps(rows))
    assert judged_metric(run) == "cos"
    tr, va = run_curves(run)
    assert tr.what == "shortfall (1 - cos)" and va is not None
    assert np.all(np.diff(tr.trend) <= 1e-9)  # a rising similarity is a falling shortfall
    assert [f.kind for f in detect(run)] == ["healthy"]
    overfit = [
        dict(r, val_cos=r["val_cos"] - (0.02 * (r["epoch"] - 10) if r["epoch"] > 10 else 0)) for r in rows
    ]
    assert "overfitting" in [f.kind for f in detect(parse_run(json.dumps(overfit)))]


def test_a_reward_is_judged_on_its_negative_and_a_score_only_when_an_episode_scored_it():
    rising = "\n".join(f"Episode {i} Average Reward: {20 + 3 * i:.2f}" for i in range(1, 30))
    tr, _ = run_curves(parse_run(rising))
    assert tr.what == "negative reward"
    assert [f.kind for f in detect(parse_run(rising))] == ["healthy"]
    # FID falls as a model improves, a game score rises: `score` alone says neither...
    fid = "\n".join(f"step {i} fid={300 / i:.2f}" for i in range(1, 30))
    assert run_curves(parse_run(fid))[0].what == "fid"
    score = "\n".join(f"step {i} Average100 Score: {20 + 3 * i:.2f}" for i in range(1, 30))
    assert judged_metric(parse_run(score)) is None
    # ...but an episode's score is its return (Udacity's DDPG: -95 to -98 over 2000 episodes, stuck)
    episodes = "\n".join(f"Episode {i}\tAverage Score: {20 + 3 * i:.2f}" for i in range(1, 30))
    tr, _ = run_curves(parse_run(episodes))
    assert tr.negated and tr.unit == "step" and tr.x[-1] == 29
    stuck = "\n".join(f"Episode {100 * i}\tAverage Score: {-95 - (i % 3):.2f}" for i in range(1, 21))
    found = detect(parse_run(stuck))
    assert [f.kind for f in found] == ["underfitting"] and "episode score barely improves: from -9" in found[
        0
    ].evidence


def test_in_reinforcement_learning_the_reward_is_judged_not_the_growing_losses():
    table = (
        "-" * 30 + "\n| rollout/        |         |\n|    ep_rew_mean  | {rew:<7} |\n"
        "| time/           |         |\n|    total_timesteps | {ts:<7} |\n"
        "| train/          |         |\n|    loss         | {loss:<7.2f} |\n"
    )
    text = "".join(table.format(rew=20 + 15 * i, ts=2048 * i, loss=0.5 * i) for i in range(1, 31)) + "-" * 30
    run = parse_run(text)
    assert judged_metric(run) == "rollout_ep_rew"
    assert [f.kind for f in detect(run)] == ["healthy"]  # its loss grew 30x, as returns did


def test_what_a_step_cost_is_no_reading_of_the_model():
    # verl prints `timing_s/reward` (seconds spent scoring) beside the actor's loss: it is no reward
    text = "\n".join(
        f"step:{i} - actor/pg_loss:{0.5 / i:.4f} - timing_s/reward:{i / 100:.3f} - perf/throughput:{i}"
        for i in range(1, 30)
    )
    run = parse_run(text)
    assert not [m for m in run.metrics if "timing" in m or "throughput" in m]
    assert judged_metric(run) == "actor_pg_loss"


def test_several_losses_with_no_main_one_are_not_guessed_at():
    """Three agents' critic and entropy losses: which one matters is not for the reader to guess."""
    head = "_step,train/a/loss_critic,train/b/loss_critic,train/c/loss_critic"
    rows = [f"{i},{1 + i * 0.1},{2 - i * 0.1},{1.5}" for i in range(12)]
    run = parse_run("\n".join([head, *rows]))
    assert judged_metric(run) is None and run_curves(run) == (None, None)
    rl = "_step,actor/loss,actor/pg_loss,actor/kl_loss\n" + "\n".join(
        f"{i},{1 / (i + 1)},{0.5},{0.01 * i}" for i in range(12)
    )
    assert judged_metric(parse_run(rl)) == "actor_loss"


def test_nan_never_appears_as_a_number_in_the_evidence():
    values = [*_falling(10), math.nan, *_falling(5, 0.6, 0.5)]
    text = "\n".join(f"Epoch {e} TrainLoss={v} ValLoss={v + 0.1}" for e, v in enumerate(values, start=1))
    run = parse_run(text)
    found = detect(run)
    assert found[0].kind == "diverged"
    assert "nan" not in _evidence(run).lower().replace("not a number", "").replace("nan or", "")


def test_llama_factory_steps_are_the_axis_when_epochs_are_few():
    lines = [
        json.dumps({"current_steps": 10 * (i + 1), "total_steps": 600, "loss": t, "epoch": (i + 1) / 20})
        for i, t in enumerate(_falling(60))
    ]
    tr, _ = run_curves(parse_run("\n".join(lines)))
    assert tr.unit == "step" and len(tr) == 60


def _val_run(val: list[float]) -> str:
    train = _falling(len(val), 2.0, 0.5)
    return "\n".join(
        f"Epoch {e} TrainLoss={t:.5f} ValLoss={v:.5f}"
        for e, (t, v) in enumerate(zip(train, val, strict=True), 1)
    )


def test_a_mild_rise_that_stays_is_overfitting_and_one_late_spike_is_not():
    rng = np.random.default_rng(0)
    low = [1.6 - 0.05 * min(e, 8) for e in range(20)]  # falls to 1.2 by epoch 9, flat after
    mild = [v + (0.006 * (e - 12) if e > 12 else 0) + rng.normal(0, 0.002) for e, v in enumerate(low)]
    assert "overfitting" in [f.kind for f in detect(parse_run(_val_run(mild)))]  # +3%, clear of the noise
    spike = [v + rng.normal(0, 0.002) for v in low]
    spike[-2] += 0.1
    assert "overfitting" not in [f.kind for f in detect(parse_run(_val_run(spike)))]


def test_a_nan_on_a_row_without_epoch_or_step_is_named_by_its_row():
    text = "\n".join(["loss: 0.5", "loss: 0.4", "loss: nan", "loss: 0.3"])
    assert "row 3" in detect(parse_run(text))[0].evidence


def test_timm_top1_accuracy_is_read_as_an_accuracy():
    rows = [
        {"epoch": e, "train_loss": 3.0 - 0.01 * e, "test_acc1": 60 + e, "test_acc5": 85 + e / 2}
        for e in range(8)
    ]
    run = parse_run("\n".join(json.dumps(r) for r in rows))
    assert (
        run.sources["val_acc"] == "test_acc1" and run.sources["val_acc5"] == "test_acc5"
    )  # top-1 is the accuracy


def test_spinning_up_progress_files_are_judged_on_their_returns():
    head = "Epoch\tAverageEpRet\tStdEpRet\tAverageTestEpRet\tLossPi\tLossQ\tTime"
    rows = [
        f"{e}\t{3000 + 150 * e}\t{200 - e}\t{3100 + 160 * e}\t{-100 - e}\t{5 + e}\t{10 * e}"
        for e in range(40)
    ]
    run = parse_run("\n".join([head, *rows]))
    assert judged_metric(run) == "ep_ret"  # AverageEpRet: the return, not the growing losses
    assert run.sources["val_ep_ret"] == "AverageTestEpRet"
    assert [f.kind for f in detect(run)] == ["healthy"]


def test_chainer_logreport_main_and_validation_main_are_the_training_and_held_out_losses():
    records = [
        {"epoch": e, "iteration": 100 * e, "main/loss": 1 / e, "main/accuracy": 1 - 0.5 / e,
         "validation/main/loss": 1.2 / e, "validation/main/accuracy": 1 - 0.6 / e}
        for e in range(1, 11)
    ]  # fmt: skip
    run = parse_run(json.dumps(records))
    assert run.sources["train_loss"] == "main/loss" and run.sources["val_loss"] == "validation/main/loss"


def test_a_bare_list_of_losses_braced_headers_and_mlperf_lines_are_read():
    listed = parse_run("[" + ", ".join(f"{2.0 / (i + 1):.4f}" for i in range(20)) + "]")
    assert listed.fmt == "json-list" and list(listed.metrics) == ["train_loss"] and listed.notes
    braced = "{epoch}\t{lr}\t{train_loss}\t{test_loss}\n" + "\n".join(
        f"{i}\t0.1\t{2.0 / (i + 1):.4f}\t{2.2 / (i + 1):.4f}" for i in range(20)
    )
    run = parse_run(braced)
    assert {"train_loss", "val_loss"} <= set(run.metrics) and run.table["epoch"].nunique() == 20
    v05 = "\n".join(
        f':::MLPv0.5.0 resnet 15409{i} (solver.cpp:485) eval_accuracy: {{"epoch": {i}, "value": {a:.3f}}}'
        for i, a in enumerate(np.linspace(0.2, 0.7, 20))
    )
    mllog = "\n".join(
        f':::MLLOG {{"key": "eval_accuracy", "value": {0.2 + i / 40:.3f}, "metadata": {{"epoch_num": {i}}}}}'
        for i in range(20)
    )
    for text in (v05, mllog):
        run = parse_run(text + '\n:::MLPv0.5.0 gnmt 1541576397 (train.py:488) ret_code: {"value": 0}')
        assert list(run.metrics) == ["val_acc"] and run.table["epoch"].nunique() == 20
    # a language model's `epoch_num` counts tokens (MLPerf GPT-3): its axis is steps, not 1e9 epochs
    tokens = "\n".join(
        f':::MLLOG {{"key": "eval_accuracy", "value": {2.8 - i / 100:.3f}, "metadata": {{"epoch_num": '
        f"{50331648 * (i + 1)}}}}}"
        for i in range(20)
    )
    run = parse_run(tokens)
    assert not run.has_epochs and run.table["step"].nunique() == 20


def test_a_loss_part_the_validation_logs_alone_is_judged_on_both_sides():
    # MONAI's autoencoder-GAN: recons, perceptual and an unweighted KL (~8e4) in training, the recons
    # loss alone in validation; their plain sum would be the KL's curve
    lines = []
    for e, t in enumerate(_falling(12)):
        lines.append(
            f"epoch {e}/12:recons loss: {t / 10:.6f}, perc_loss: {t / 20:.6f}, kl_loss: {84000 - 50 * e:.3f},"
        )
        lines.append(f"epoch {e}/12: validation recons loss: {t / 10 + 0.01:.6f}")
    run = parse_run("\n".join(lines))
    assert run.sources["train_loss"] == "recons loss" and run.sources["val_loss"] == "validation recons loss"
    assert any("one part of the loss alone" in n for n in run.notes)
    # with no part in validation, the training parts are still summed (Ultralytics, above)
    run = parse_run("\n".join(line for line in lines if "validation" not in line))
    assert "kl_loss" in run.sources["train_loss"] and "+" in run.sources["train_loss"]


def test_a_records_stage_said_in_a_field_and_headers_that_start_with_a_dimension_are_read():
    # mmdetection's log.json: `"mode": "val"` records hold the evaluation's readings
    lines = []
    for e in range(1, 13):
        lines += [
            json.dumps({"mode": "train", "epoch": e, "iter": i, "lr": 0.02, "loss": 2.0 / e + i / 1e4})
            for i in (50, 100)
        ]
        lines.append(
            json.dumps({"mode": "val", "epoch": e, "iter": 100, "lr": 0.02, "bbox_mAP": 0.2 + e / 100})
        )
    run = parse_run("\n".join(lines))
    assert "val_bbox_m_ap" in run.metrics and "train_bbox_m_ap" not in run.metrics
    # a tab-separated table whose columns are `2d_loss`, `3d_loss` (its lines end in a tab)
    rows = ["2d_loss   \t3d_loss   \ttemporal_loss   \t"] + [
        f"{3.0 / (i + 1):.6f}\t{4.0 / (i + 1):.6f}\t{2.0 / (i + 1):.6f}\t" for i in range(40)
    ]
    run = parse_run("\n".join(rows))
    assert run.fmt == "csv" and "train_loss" in run.metrics and "sum of its logged parts" in run.notes[0]


def test_a_discriminators_loss_is_no_part_of_a_sum_and_an_episodes_return_is_the_reward_judged():
    rng = np.random.default_rng(5)
    rows = ["D_loss,kl_loss,G_L1_loss"] + [
        f"{0.8 + (40 if i % 37 == 5 else 0) + rng.normal(0, 0.05):.3f},0.1,{4.5 - 2.5 * i / 300:.3f}"
        for i in range(300)
    ]
    run = parse_run("\n".join(rows))
    assert "train_loss" not in run.metrics  # D + kl is no loss of anything
    assert [f.kind for f in detect(run)] != ["diverged"]
    gail = ["mean 100 episode reward,reward signal mean,loss"] + [
        f"{40 + 120 * (1 - np.exp(-i / 10)):.1f},{0.4 + rng.normal(0, 0.05):.3f},{1 + rng.normal(0, 0.1):.3f}"
        for i in range(100)
    ]
    assert judged_metric(parse_run("\n".join(gail))) == "100_episode_reward"


def test_a_notebooks_cell_outputs_are_read_as_its_console_and_a_tensorboard_export_by_its_file_name():
    lines = [f"Epoch: {e}, Steps: 100 | Train Loss: {0.64 - 0.1 * (1 - 0.5**e):.4f} "
             f"Vali Loss: {1.09 - 0.1 * (1 - 0.6**e):.4f} Test Loss: {0.95 - 0.05 * (1 - 0.6**e):.4f}\n"
             for e in range(1, 13)]  # fmt: skip
    image = "iVBOR" + "A" * 70_000 + "NaN" + "B" * 5_000  # base64 crossing the reader's chunks, `NaN` in it
    notebook = {
        "cells": [
            {"cell_type": "code", "source": ["exp.train(setting)\n"], "outputs": [
                {"output_type": "stream", "name": "stdout", "text": lines},
                {"output_type": "display_data", "data": {"image/png": image, "text/plain": ["<Figure>"]}},
            ]},
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    run = parse_run(json.dumps(notebook, indent=1))
    assert (
        run.fmt == "notebook"
        and run.sources["val_loss"] == "Vali Loss"
        and run.table["epoch"].nunique() == 12
    )
    export = "Wall time,Step,Value\n" + "\n".join(
        f"{1.69e9 + i},{8000 * i},{50 + 900 * (1 - 0.9**i):.3f}" for i in range(40)
    )
    run = parse_run(export, name="run-dmc_walker-tag-scalars_train_return.csv")
    assert run.fmt == "tensorboard-csv" and judged_metric(run) == "return"
    # the same download as JSON: `[[wall time, step, value], …]`
    rows = [[1.69e9 + i, 8000 * i, 50 + 900 * (1 - 0.9**i)] for i in range(40)]
    run = parse_run(json.dumps(rows), name="run-dmc_walker-tag-scalars_train_return.json")
    assert (
        run.fmt == "tensorboard-json" and judged_metric(run) == "return" and run.table["step"].max() == 312000
    )


def test_records_whose_one_reading_is_an_unnamed_value_are_drawn_on_the_last_run_not_refused():
    # Dopamine's baselines: {"Iteration", "Value", "Agent"} records, agents by seeds, one after another
    records = [
        {"Iteration": i, "Value": (10 if agent == "DQN" else 1) * (seed + 1) * (1 + i), "Agent": agent}
        for agent in ("DQN", "Rainbow")
        for seed in range(3)
        for i in range(50)
    ]
    run = parse_run(json.dumps(records))
    assert run.metrics == ["train_value_score"] and len(run) == 50
    assert run.table["train_value_score"].iloc[-1] == 3 * 50  # the last agent's last seed
    assert any("name no metric" in n for n in run.notes)
    found = detect(parse_run(json.dumps(records)))
    assert [f.kind for f in found] == ["healthy"] and "no trend is judged" in found[0].evidence


def test_timms_summary_csv_with_a_learning_rate_per_group_in_quotes_is_read():
    # `train_lr` holds one rate per parameter group, quoted: the header's cells are counted the way
    # a CSV reader counts them, so the file is a CSV and not console text with nothing in it
    rows = [
        f'{e},{t:.6f},"[{1e-4 * (1 - e / 12):.6g}, {1e-4 * (1 - e / 12):.6g}]",{t * 0.8:.6f},{30 + 3 * e:.3f}'
        for e, t in enumerate(_falling(12, 5.6, 2.0))
    ]
    run = parse_run("epoch,train_loss,train_lr,eval_loss,eval_top1\n" + "\n".join(rows))
    assert run.fmt == "csv" and run.sources["val_loss"] == "eval_loss" and len(run) == 12


def test_a_gan_with_a_held_out_quality_score_is_judged_on_it():
    # SRGAN's statistics CSV: the discriminator's and generator's losses (none the run's own), then the
    # validation PSNR and SSIM an evaluation computes: PSNR (decibels, no ceiling) is the curve judged
    rows = [
        f"{e},1.0,{0.01 / (1 + e / 10):.5f},0.0,0.0,{p:.3f},{0.6 + e / 500:.4f}"
        for e, p in enumerate(_falling(40, 20.0, 24.5), start=1)
    ]
    run = parse_run("Epoch,Loss_D,Loss_G,Score_D,Score_G,PSNR,SSIM\n" + "\n".join(rows))
    assert {"val_psnr", "val_ssim"} <= set(run.metrics)
    found = detect(run)
    assert [f.kind for f in found] == ["healthy"] and "validation psnr rose from" in found[0].evidence
    # the same run whose PSNR collapses for three epochs mid-run (37 -> 15 dB) and recovers: unstable
    # (a reward's dips are an agent's nature; an evaluation's collapse is not)
    psnr = [float(p) for p in _falling(40, 28.0, 37.5)]
    psnr[20:23] = [15.0, 15.2, 25.9]
    rows = [f"{e},1.0,0.0015,0.0,0.0,{p:.3f},0.98" for e, p in enumerate(psnr, start=1)]
    collapsed = detect(parse_run("Epoch,Loss_D,Loss_G,Score_D,Score_G,PSNR,SSIM\n" + "\n".join(rows)))
    assert [f.kind for f in collapsed] == ["unstable"] and "validation psnr" in collapsed[0].evidence


def test_a_csv_named_for_the_validation_set_holds_held_out_readings(tmp_path):
    # a U-Net writes `train_log.csv` and `val_log.csv` with the same unstaged columns
    rows = "\n".join(f"{e},{v:.4f},{0.3 + e / 40:.3f}" for e, v in enumerate(_falling(12, 0.3, 0.06), 1))
    val = tmp_path / "val_log.csv"
    val.write_text("epoch,loss,mIoU\n" + rows)
    run = parse_run(val)
    assert {"val_loss", "val_m_iou"} <= set(run.metrics) and "train_loss" not in run.metrics
    assert any("named for the validation set" in n for n in run.notes)
    for other in ("train_log.csv", "test.csv", "train_val_log.csv"):  # a trial run is often `test.log`
        (tmp_path / other).write_text("epoch,loss,mIoU\n" + rows)
        assert "train_loss" in parse_run(tmp_path / other).metrics
