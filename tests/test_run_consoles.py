"""Console text as people and their scripts print it (Python logging, llm.c, prose, logger tables,
Hugging Face's console dicts, darknet, the PyTorch ImageNet example…): each sample is laid out the way
its producer writes it and must read into the right training and validation curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from assistant.runs import detect, parse_run
from assistant.runs.curves import judged_metric, run_curves
from tests.run_helpers import falling as _falling


@pytest.mark.parametrize(
    "line",
    [
        "2026-11-02 10:00:{e:02d},123 - INFO - Epoch {e} TrainLoss={t:.4f} ValLoss={v:.4f}",
        "Epoch {e}: Train Loss={t:.4f}, Val Loss={v:.4f}",
        "[2026-11-02 10:00:{e:02d}] epoch {e} | train loss: {t:.4f} | val loss = {v:.4f}",
    ],
)
def test_python_logging_text_keeps_training_and_validation_apart(line):
    text = "\n".join(line.format(e=e, t=t, v=t + 0.2) for e, t in enumerate(_falling(10), start=1))
    run = parse_run(text)
    assert run.sources["train_loss"].lower().replace(" ", "") == "trainloss"
    assert run.sources["val_loss"].lower().replace(" ", "") == "valloss"
    assert (run.table["val_loss"] > run.table["train_loss"]).all()


def test_llm_c_logs_read_trl_as_training_and_tel_as_validation():
    lines = []
    for s, t in enumerate(_falling(200, 11.0, 3.3)):
        if s % 50 == 0:
            lines.append(f"s:{s} tel:{t + 0.05:.6f}")
        lines.append(f"s:{s} trl:{t:.6f} lr:{0.0006:.6f} norm:{1.2:.2f}")
    run = parse_run("\n".join(lines))
    assert {"train_loss", "val_loss", "lr"} <= set(run.metrics)
    assert run.table["step"].max() == 199
    tr, va = run_curves(run)
    assert tr.unit == "step" and va is not None


def test_numbers_printed_without_a_name_are_read_when_the_log_names_no_metric():
    counter = "\n".join(
        f"[Mar 29, 16:22:{i % 60:02d}] {i} {v:.6f}" for i, v in enumerate(_falling(40, 6.3, 5.3))
    )
    run = parse_run("#> Starting...\n" + counter + "\n#> Done.")
    assert run.metrics == ["train_loss"] and len(run) == 40
    assert any("names no metric" in n for n in run.notes)
    per_epoch = "\n".join(
        f"epoch: {e}\n{v:.5f}" if e % 2 == 0 else f"epoch: {e}" for e, v in enumerate(_falling(16))
    )
    run = parse_run("start\n" + per_epoch + "\nfinish")
    assert run.metrics == ["train_loss"] and list(run.table["epoch"]) == [1, 3, 5, 7, 9, 11, 13, 15]
    named = counter + "\nepoch 1 loss: 0.5\nepoch 2 loss: 0.4"
    assert len(parse_run(named)) == 2  # a named metric wins: bare numbers are not read beside it


def test_prose_and_separator_free_readings_are_read():
    text = "\n".join(
        f"Epoch {e}, Step 25, total used time {e * 40.5} (s), avg loss so far is {t:.4f}\n"
        f"Epoch {e}, val loss is {t + 0.01:.4f}, val mse is {t / 2:.4f}."
        for e, t in enumerate(_falling(10, 0.05, 0.02))
    )
    run = parse_run(text)
    assert {"train_loss", "val_loss"} <= set(run.metrics) and run.table["val_loss"].notna().sum() == 10
    tagged = "\n".join(
        f"[epoch {e}], [train stage1 loss {t:.4f} (seg loss {t / 2:.4f})]" for e, t in enumerate(_falling(8))
    )
    assert {"train_stage1_loss", "train_seg_loss"} <= set(parse_run(tagged).metrics)
    cells = "\n".join(
        f"step {s}/100 | loss {t:.4f} (+nanz)| norm 1.2 | lr 3e-4" for s, t in enumerate(_falling(20))
    )
    assert parse_run(cells).metrics[:1] == ["train_loss"]


def test_logger_tables_are_one_record_each():
    """OpenAI baselines / improved-diffusion and Stable-Baselines3 print a table per logging step."""
    flat = "-" * 25 + "\n| grad_norm  | 1.91     |\n| loss       | {loss:.4f}   |\n| step       | {step}  |\n"
    diffusion = "".join(flat.format(loss=v, step=100 * i) for i, v in enumerate(_falling(12))) + "-" * 25
    run = parse_run("creating model...\n" + diffusion)
    assert run.metrics == ["train_loss"] and list(run.table["step"]) == [100 * i for i in range(12)]
    sb3 = (
        "-" * 41 + "\n| rollout/                |             |\n|    ep_rew_mean          | {rew:<11} |\n"
        "| time/                   |             |\n|    iterations           | {i:<11} |\n"
        "|    total_timesteps      | {ts:<11} |\n| train/                  |             |\n"
        "|    value_loss           | {loss:<11.4f} |\n"
    )
    text = "".join(sb3.format(rew=10 * i, i=i, ts=2048 * i, loss=v) for i, v in enumerate(_falling(10), 1))
    run = parse_run(text + "-" * 41)
    assert {"train_value_loss", "train_rollout_ep_rew"} <= set(run.metrics)
    assert run.table["step"].iloc[-1] == 2048 * 10


def test_evaluation_lines_named_by_their_first_word_are_the_held_out_curve():
    """The PyTorch ImageNet example: `Epoch: [3][..]  Loss 2.1e+00` and, after each epoch,
    `Test: [..]  Loss 1.3e+00`: the test lines are not training loss."""
    lines = []
    for e, t in enumerate(_falling(12, 2.0, 0.4)):
        lines += [f"Epoch: [{e}][{b}/500]\tTime 0.2\tLoss {t + 0.01 * b:.4e} ({t:.4e})" for b in (100, 200)]
        lines.append(f"Test: [50/196]\tTime 0.1\tLoss {t + 0.3:.4e} ({t + 0.3:.4e})")
        lines.append(f"Test set: Average loss: {t + 0.3:.4f}, Accuracy: 80%")
    run = parse_run("\n".join(lines))
    test_values = {round(t + 0.3, 4) for t in _falling(12, 2.0, 0.4)}
    assert not {round(v, 4) for v in run.table["train_loss"].dropna()} & test_values
    assert {round(v, 4) for v in run.table["val_loss"].dropna()} == test_values


def test_cyclegan_loss_logs_are_read_and_their_many_losses_not_guessed_at():
    head = "================ Training Loss (Sat Mar  2 10:00:00 2024) ================\n"
    lines = [
        f"(epoch: {e}, iters: {i}, time: 0.3, data: 0.01) D_A: {0.3:.3f} G_A: {g:.3f} cycle_A: {2 * g:.3f} "
        f"idt_A: {g / 2:.3f} D_B: 0.250 G_B: {g:.3f} cycle_B: {2 * g:.3f} idt_B: {g / 2:.3f} "
        for e, g in enumerate(_falling(10, 1.5, 0.6), 1)
        for i in (100, 200)
    ]
    run = parse_run(head + "\n".join(lines))
    assert {"train_g_a_loss", "train_d_b_loss", "train_cycle_a_loss"} <= set(run.metrics)
    assert list(run.table["step"][:2]) == [100, 200] and run.table["epoch"].max() == 10
    (finding,) = detect(run)
    assert finding.kind == "healthy" and "no trend is judged" in finding.evidence


def test_the_hugging_face_trainers_console_dicts_are_read():
    lines = ["***** Running training *****", "  Num examples = 3,000"]
    for i in range(40):
        lines.append(
            f"{{'loss': {0.9 * math.exp(-i / 10) + 0.1:.4f}, 'grad_norm': 0.07, 'learning_rate': 0.001, "
            f"'epoch': {0.05 * (i + 1):.2f}}}"
        )
        if i % 10 == 9:
            lines.append(
                f"{{'eval_loss': {0.95 * math.exp(-i / 10) + 0.15:.4f}, 'eval_runtime': 8.7, "
                f"'epoch': {0.05 * (i + 1):.2f}}}"
            )
    run = parse_run("\n".join(lines))
    assert run.sources["train_loss"] == "loss" and run.sources["val_loss"] == "eval_loss"
    assert len(run.table["train_loss"].dropna()) == 40
    assert parse_run("{'loss': __import__('os').getcwd()}\nloss 0.5\nloss 0.4\nloss 0.3").sources == {
        "train_loss": "loss"
    }  # a dict that is not literals is not evaluated, only skipped


def test_validation_lines_led_by_val_and_a_dash_are_the_held_out_curve():
    lines = []
    for e in range(1, 13):
        lines += [f"Epoch {e}", f"  Train - CE: {1 / e:.4f}, KL: 2.1, acc: {90 + e / 2:.1f}%",
                  f"  Val   - CE: {1.2 / e:.4f}, KL: 2.3, acc: {88 + e / 2:.1f}%"]  # fmt: skip
    tr, va = run_curves(parse_run("\n".join(lines)))
    assert tr.y[-1] == pytest.approx(1 / 12, abs=1e-4) and va.y[-1] == pytest.approx(1.2 / 12, abs=1e-4)


def test_a_stage_written_as_a_cell_of_its_own_sets_the_lines_stage():
    lines = []
    for e in range(1, 9):
        lines.append(
            f"2022-01-30 00:32:14 | ConvS2S_0: Train | Epoch: [{e}/8] | Avg loss: {5 / e:.3f} | ppl: 3.1"
        )
        lines.append(f"2022-01-30 00:55:27 | ConvS2S_0: Eval | Avg loss: {6 / e:.3f} | BLEU Score: {10 + e}")
    run = parse_run("\n".join(lines))
    assert run.sources["train_loss"] == "Avg loss" and run.sources["val_loss"] == "val/Avg loss"
    assert run.table["val_loss"].dropna().iloc[-1] == pytest.approx(6 / 8, abs=1e-3)


def test_a_name_followed_by_is_and_a_colon_and_a_success_rate_are_read():
    line = "Epoch {i} complete! Average Training loss: {t:.2f}\nValidation loss is: {v:.2f}"
    text = "\n".join(line.format(i=i, t=0.6 - i / 99, v=0.7 - i / 99) for i in range(12))
    assert {"train_loss", "val_loss"} <= set(parse_run(text).metrics)
    row = (
        "{rule}\n| epoch | {i} |\n| test/success_rate | {test:.2f} |\n| train/success_rate | {train:.2f} |\n"
    )
    table = "".join(row.format(rule="-" * 30, i=i, test=i / 20, train=i / 30) for i in range(12))
    run = parse_run(table + "-" * 30)
    assert {"train_success_rate", "val_success_rate"} <= set(run.metrics)  # test_* is the held-out set


def test_darknet_iteration_lines_are_read_and_its_per_layer_lines_are_not():
    rng = np.random.default_rng(22)
    lines = []
    for i in range(1, 120):
        loss = 5 / np.sqrt(i) + 0.3 + rng.normal(0, 0.02)
        for layer in (82, 94, 106):  # a detection layer's own stats, total_loss included
            lines.append(
                f"v3 (mse loss) Region {layer} Avg (IOU: 0.31), count: 5, total_loss = {3 * loss:.3f}"
            )
        lines.append(
            f" {i}: {loss:.6f}, {loss * 1.01:.6f} avg loss, 0.001000 rate, 3.5 seconds, {64 * i} images"
        )
    run = parse_run("\n".join(lines))
    assert list(run.metrics) == ["train_loss", "lr"] and len(run.table) == 119
    assert run.table["step"].iloc[-1] == 119 and run.table["train_loss"].iloc[0] < 5.4


def test_a_stage_word_after_a_logger_prefix_and_reinforcement_learning_exports_are_read():
    train = (
        "[2026-05-05 17:05:{s:02d} swin] (main.py 226): INFO Train: [{e}/40][50/50]\tloss {v:.4f} ({v:.4f})"
    )
    test = "[2026-05-05 17:06:{s:02d} swin] (main.py 272): INFO Test: [78/79]\tLoss {v:.4f} ({v:.4f})"
    lines = []
    for e in range(20):
        lines += [f"[2026-05-05 17:05:00 swin] (main.py 250): INFO EPOCH {e} training takes 0:00:10"]
        lines += [train.format(s=e, e=e, v=3.0 - e / 10), test.format(s=e, v=2.5 - e / 12)]
    run = parse_run("\n".join(lines))
    assert run.sources["val_loss"] == "test/Loss" and run.sources["train_loss"] == "loss"
    # a Tianshou export: `env_step` is the axis, `rew:seed_…` cells name one seed each
    header = "env_step,rew,rew:shaded,rew:seed_0_0104-Hopper_v3_ddpg/test_rew.csv"
    rows = [f"{10000 * i},{40 + 30 * i},{10 + i},{35 + 31 * i}" for i in range(30)]
    tianshou = parse_run(header + "\n" + "\n".join(rows))
    assert judged_metric(tianshou) == "rew" and tianshou.table["step"].iloc[-1] == 290000
    # a tab-separated console log that starts with its timestamp is console text, not a table
    olmo = "\n".join(
        f"2025-12-27 22:11:{i:02d}.985\tnode-03:0\ttrain:417\tINFO\t[step={i}/100]\n"
        f"    train/CE loss={3 - i / 20:.3f}"
        for i in range(30)
    )
    assert parse_run(olmo).fmt == "console"


def test_the_pytorch_imagenet_example_console_reads_epochs_top1_and_its_summary_line():
    lines = []
    for e in range(12):
        top1 = 25 + 4 * e
        lines.append(
            f"Epoch: [{e}][100/100]\tTime 0.3\tLoss {3 - e / 5:.4f} ({3 - e / 5:.4f})\tAcc@1 {top1 - 5:.3f}"
        )
        lines.append(f"Test: [10/10]\tTime 0.1\tLoss {2.5 - e / 6:.4f} ({2.5 - e / 6:.4f})\tAcc@1 {top1:.3f}")
        lines.append(f" * Acc@1 {top1:.3f} Acc@5 {50 + 3 * e:.3f}")  # the evaluation's summary
    run = parse_run("\n".join(lines))
    assert {"train_loss", "val_loss", "train_acc", "val_acc", "val_acc5"} <= set(run.metrics)
    assert "train_acc5" not in run.metrics and run.table["epoch"].nunique() == 12


def test_a_source_file_in_a_logger_prefix_is_no_metric():
    # DeepSpeed: `[loss_scaler.py:188:update_scale]` is a file and line, not a loss of 188
    lines = [
        f"[2023-04-18 01:46:{i:02d},554] [INFO] [loss_scaler.py:188:update_scale] [deepspeed] OVERFLOW!\n"
        f"epoch: {i} | step: {10 * i} | loss: {2.0 * 0.95**i:.4f}"
        for i in range(30)
    ]
    run = parse_run("\n".join(lines))
    assert list(run.metrics) == ["train_loss"]


def test_an_appended_log_is_read_from_its_last_start_when_its_opening_line_comes_again():
    def run_lines(start: float, n: int) -> list[str]:
        lines = ["2021-11-10 23:52:28.314 | INFO | __main__:<module>:112 - start training"]
        lines.append(
            "2021-11-10 23:52:29.001 | INFO | __main__:<module>:125 - Namespace(batch_size=4, lr=3e-05)"
        )
        return lines + [
            f"2021-11-10 23:53:{i % 60:02d}.000 | INFO | __main__:train:35 - loss: {start * 0.9**i:.5f}"
            for i in range(n)
        ]

    text = "\n".join(run_lines(2.5, 80) + run_lines(0.6, 50))
    run = parse_run(text)
    assert any("2 runs" in n for n in run.notes) and run.table["train_loss"].notna().sum() == 50
    assert [f.kind for f in detect(run)] != ["diverged"]  # the restart is no blow-up
    # a line printed before every epoch's readings is no restart: the loss does not start again
    epochs = "\n".join(
        f"Training...\nloss: {2.0 * 0.95**i:.4f}\nloss: {1.9 * 0.95**i:.4f}" for i in range(30)
    )
    assert not parse_run(epochs).notes


def test_a_run_started_again_and_stopped_before_its_first_reading_leaves_the_run_before_it_read():
    # PointNet's logger: each epoch opens with its heading and learning rate; the script was started
    # twice more and killed before a reading: those starts hold a learning rate alone
    def epoch(e: int, lr: float, loss: float | None) -> list[str]:
        lines = [f"2020-03-25 04:14:11,030 - Model - INFO - **** Epoch {e} ({e}/100) ****"]
        lines.append(f"2020-03-25 04:14:11,030 - Model - INFO - Learning rate:{lr:.6f}")
        if loss is not None:
            lines.append(f"2020-03-25 04:27:40,611 - Model - INFO - Training mean loss: {loss:.6f}")
            lines.append(f"2020-03-25 04:29:57,453 - Model - INFO - eval mean loss: {loss * 0.9:.6f}")
        return lines

    lines = [line for e in range(1, 23) for line in epoch(e, 1e-3 * 0.7 ** ((e - 1) // 10), 0.5 * 0.97**e)]
    run = parse_run("\n".join(lines + epoch(1, 1e-3, None) + epoch(1, 1e-3, None)))
    assert {"train_loss", "val_loss", "lr"} <= set(run.metrics)
    assert run.table["train_loss"].notna().sum() == 22
    assert any("start that logged no reading" in n and "the run before it" in n for n in run.notes)
    # ...however many such starts the log ends in (each once asked for the run before it, in turn)
    many = parse_run("\n".join(lines + epoch(1, 1e-3, None) * 1500))
    assert many.table["train_loss"].notna().sum() == 22


def test_ignite_result_lines_and_mmcv_val_epochs_are_the_held_out_curves():
    # PyTorch Ignite's examples print `Validation Results - Epoch: 3  Avg accuracy: … Avg loss: …`
    # after each epoch's iteration lines; mmcv's text log marks evaluation lines `Epoch(val) [3][100]`
    loss = _falling(12)
    lines = []
    for e, t in enumerate(loss, start=1):
        lines += [f"Epoch[{e}] Iteration[{100 * k}/469] Loss: {t + 0.01 * k:.4f}" for k in range(1, 4)]
        lines.append(
            f"Validation Results - Epoch: {e}  Avg accuracy: {0.5 + e / 30:.2f} Avg loss: {t + 0.2:.2f}"
        )
    run = parse_run("\n".join(lines))
    assert {"train_loss", "val_loss", "val_acc"} <= set(run.metrics)
    by_epoch = run.table.groupby("epoch")
    assert (by_epoch["val_loss"].max() > by_epoch["train_loss"].max()).all()
    prefix = "2023-01-01 10:00:00,000 - mmdet - INFO - "
    mmcv = "\n".join(
        f"{prefix}Epoch [{e}][50/200]\tlr: 2.000e-02, time: 0.5, loss_cls: {t / 2:.4f}, loss: {t:.4f}\n"
        f"{prefix}Epoch(val) [{e}][100]\tbbox_mAP: {0.2 + e / 100:.4f}, bbox_mAP_50: 0.5"
        for e, t in enumerate(loss, start=1)
    )
    run = parse_run(mmcv)
    assert "val_bbox_m_ap" in run.metrics and not any(m.startswith("train_bbox") for m in run.metrics)


def test_a_line_tagged_with_several_stages_is_read_part_by_part_and_perplexity_pairs_with_ppl():
    # ESPnet sums an epoch up in one line, training first, then validation
    espnet = "\n".join(
        f"[host] 2021-01-01 10:00:00,000 (trainer:338) INFO: {e}epoch results: [train] iter_time=0.1, "
        f"loss_ctc={30 * t:.3f}, loss={20 * t:.3f}, lr_0=1.0e-03, time=1 minute, [valid] "
        f"loss_ctc={30 * t + 5:.3f}, loss={20 * t + 3:.3f}, acc={0.9 - t / 10:.3f}, time=5 seconds"
        for e, t in enumerate(_falling(12), start=1)
    )
    run = parse_run(espnet)
    assert {"train_loss", "val_loss", "val_acc"} <= set(run.metrics) and "train_acc" not in run.metrics
    assert (run.table["val_loss"] > run.table["train_loss"]).all()
    # OpenNMT: `ppl:` on training steps, `Validation perplexity:` on its own line
    onmt = "\n".join(
        f"[2019-01-01 10:00:00,000 INFO] Step {50 * s}/1000; acc: {40 + s:.2f}; ppl: {90 - s:.2f}; lr: 1.0\n"
        f"[2019-01-01 10:00:00,000 INFO] Validation perplexity: {100 - s:.3f}"
        for s in range(1, 13)
    )
    assert {"train_ppl", "val_ppl"} <= set(parse_run(onmt).metrics)


def test_tensorflow_estimator_evaluations_are_the_held_out_curve():
    # `Saving dict for global step N:` sums up an evaluation; its `loss` is not the training loss
    lines = []
    for i, t in enumerate(_falling(12), start=1):
        lines.append(f"INFO:tensorflow:loss = {t:.5f}, step = {100 * i} (9.5 sec)")
        lines.append(
            f"INFO:tensorflow:Saving dict for global step {100 * i}: accuracy = {0.5 + i / 30:.4f}, "
            f"global_step = {100 * i}, loss = {t + 0.3:.5f}"
        )
    run = parse_run("\n".join(lines))
    assert {"train_loss", "val_loss", "val_acc"} <= set(run.metrics)
    assert (run.table["val_loss"].dropna() > run.table["train_loss"].min()).all()


def test_a_notebook_of_an_estimator_fit_then_loops_reads_the_last_loop():
    # hands-on ML's TF1 notebook: an Estimator fit by steps ending in its evaluation summary, then a
    # loop printing `N Batch accuracy: … Val accuracy: …`, then one printing `Epoch: N  Validation
    # accuracy: …%  Loss: …`. The summary's step is no step of the loops, and the run judged is the
    # last loop, on its own `Loss` (the validation loss: the line's `Validation` carries over to it)
    lines = [f"INFO:tensorflow:loss = {40 * t:.4f}, step = {100 * i}" for i, t in enumerate(_falling(20))]
    lines.append(
        "INFO:tensorflow:Saving dict for global step 2000: accuracy = 0.9798, average_loss = 0.10096, "
        "global_step = 2000, loss = 12.78"
    )
    lines += [
        f"{e} Batch accuracy: {0.9 + e / 400:.3f} Val accuracy: {0.91 + e / 500:.4f}" for e in range(30)
    ]
    loss = _falling(15, 0.3, 0.07)
    lines += [
        f"Epoch: {5 * e} \tValidation accuracy: {92 + e / 3:.3f}% \tLoss: {t:.5f}" for e, t in enumerate(loss)
    ]
    run = parse_run("\n".join(lines))
    assert len(run.table) == 15 and np.allclose(run.table["val_loss"], np.round(loss, 5))
    assert "train_loss" not in run.table and "train_loss" not in run.sources  # the Estimator's alone
    assert any("2 runs" in n for n in run.notes)


def test_caffes_glog_lines_keep_test_net_outputs_held_out():
    # glog prefixes every line; `Test net output #1: loss` is the held-out loss of the evaluation
    # announced by `Iteration N, Testing net`, and the next training line's own step takes over
    lines = []
    for i, t in enumerate(_falling(16)):
        glog = "I0101 10:00:00.000  1234 solver.cpp:{}] "
        lines.append(glog.format(218) + f"Iteration {100 * i} (10 iter/s, 10s/100 iters), loss = {t:.4f}")
        lines.append(glog.format(237) + f"    Train net output #0: loss = {t:.4f} (* 1 = {t:.4f} loss)")
        if i % 2 == 0:
            lines.append(glog.format(330) + f"Iteration {100 * i}, Testing net (#0)")
            lines.append(glog.format(397) + f"    Test net output #0: accuracy = {0.5 + i / 40:.4f}")
            lines.append(
                glog.format(397) + f"    Test net output #1: loss = {t + 0.3:.4f} (* 1 = {t + 0.3:.4f} loss)"
            )
    run = parse_run("\n".join(lines))
    assert {"train_loss", "val_loss", "val_acc"} <= set(run.metrics) and "train_acc" not in run.metrics
    assert run.table["step"].max() == 1500 and not any("runs" in n for n in run.notes)


def test_a_heading_that_names_the_test_set_makes_its_readings_held_out():
    # a TensorFlow notebook's `PERFORMANCE ON TEST SET: Batch Loss = …, Accuracy = …` after each
    # `Training iter #N:   Batch Loss = …` line: the heading, not a name, says the stage
    lines = []
    for i, t in enumerate(_falling(12), start=1):
        lines.append(f"Training iter #{1500 * i}:   Batch Loss = {t:.6f}, Accuracy = {0.5 + i / 30:.4f}")
        lines.append(f"PERFORMANCE ON TEST SET: Batch Loss = {t + 0.4:.6f}, Accuracy = {0.45 + i / 30:.4f}")
    run = parse_run("\n".join(lines))
    assert {"train_loss", "val_loss", "val_acc"} <= set(run.metrics)
    assert run.table["train_loss"].max() < run.table["val_loss"].max()
    assert run.table["train_loss"].notna().sum() == 12


def test_a_name_and_its_value_written_as_cells_of_their_own_are_read():
    # `epoch 1, phase train, step 10, loss_train, 0.838`: the name is one cell, the value the next
    lines = []
    for e, t in enumerate(_falling(12), start=1):
        lines += [
            f"epoch {e}, phase train, step {10 * (e * 3 + k)}, loss_train, {t + 0.01 * k:.3f}"
            for k in range(3)
        ]
        lines.append(f"epoch {e} | val_loss: {t + 0.1:.4f}")
    run = parse_run("\n".join(lines))
    assert run.sources["train_loss"] == "loss_train" and "val_loss" in run.metrics


def test_a_reading_may_end_a_sentence_or_trail_off_but_a_version_is_no_number():
    # a GAN notebook's `Epoch 3/100... Discriminator Loss: 0.4194... Generator Loss: 3.0784` and
    # prose ending in a full stop: both of a line's readings are read; `1.2.3` is not one
    lines = [
        f"Epoch {e}/100... Discriminator Loss: {0.4 + 0.006 * e:.4f}... Generator Loss: {3.5 - 0.01 * e:.4f}"
        for e in range(1, 31)
    ]
    run = parse_run("\n".join(["tensorflow version: 1.2.3", *lines]))
    assert sorted(run.sources) == ["train_discriminator_loss", "train_generator_loss"]
    prose = "\n".join(f"Epoch {e}, val loss is {1 / e:.4f}, val mse is {0.5 / e:.4f}." for e in range(1, 12))
    assert sorted(parse_run(prose).sources) == ["val_loss", "val_mse"]


def test_a_reading_printed_as_its_tensor_or_numpy_scalar_is_read():
    # PEFT's loop prints `epoch=3: train_ppl=tensor(1.1e+05, device='cuda:0') train_epoch_loss=tensor(…)`;
    # NumPy 2 prints `np.float64(0.41)` in a dict; TensorFlow `tf.Tensor(0.41, shape=(), dtype=float32)`
    torch_lines = [
        f"epoch={e}: train_ppl=tensor({math.exp(t):.4e}, device='cuda:0') "
        f"train_epoch_loss=tensor({t:.4f}, device='cuda:0') "
        f"eval_epoch_loss=tensor({t + 0.1:.4f}, device='cuda:0')"
        for e, t in enumerate(_falling(12))
    ]
    run = parse_run("\n".join(torch_lines))
    assert run.sources["train_loss"] == "train_epoch_loss" and run.sources["val_loss"] == "eval_epoch_loss"
    assert np.allclose(run.table["train_loss"], np.round(_falling(12), 4))
    numpy_lines = [
        f"{{'epoch': {e}, 'loss': np.float64({t:.4f}), "
        f"'val_loss': tf.Tensor({t + 0.2:.4f}, shape=(), dtype=float32)}}"
        for e, t in enumerate(_falling(12), start=1)
    ]
    run = parse_run("\n".join(numpy_lines))
    assert np.allclose(run.table["val_loss"] - run.table["train_loss"], 0.2)
    # a tensor of several numbers is no reading
    many = "\n".join(
        f"epoch {e} loss=tensor([{t:.3f}, {t:.3f}])" for e, t in enumerate(_falling(12), start=1)
    )
    with pytest.raises(ValueError):
        parse_run(many)


def test_a_held_out_name_gives_its_stage_to_the_readings_after_it_in_the_line():
    val = [0.30 * 0.9**e + 0.06 if e < 12 else 0.0689 + 0.0006 * (e - 12) for e in range(25)]
    text = "\n".join(
        f"Epoch: {e} \tValidation accuracy: {92 + e / 5:.3f}% \tLoss: {v:.5f}" for e, v in enumerate(val)
    )
    run = parse_run(text)
    assert list(run.metrics) == ["val_loss", "val_acc"] and run.sources["val_loss"] == "val/Loss"
    # a val line's `acc` too; but Keras' bare `loss` beside its `val_loss` stays training's
    assert "val_acc" in parse_run("Epoch 0, lr: 0.1, val loss: 152.6, acc: 44.8\n" * 3).metrics
    line = "{e}/30 - val_loss: {v:.3f} - loss: {t:.3f}"
    keras = "\n".join(line.format(e=e, v=0.5 - e / 100, t=0.4 - e / 100) for e in range(20))
    assert parse_run(keras).sources == {"train_loss": "loss", "val_loss": "val_loss"}


@pytest.mark.parametrize(
    "line",
    [
        "Epoch [{e}/4], Step [{s}/600], Loss: {v:.4f}",  # pytorch-tutorial's, copied everywhere
        "epoch: {e0}, iter: {s0}, loss: {v:.4f}",  # both counted from 0
    ],
)
def test_steps_counted_again_each_epoch_are_counted_across_epochs(line):
    # four epochs of six prints: few epochs, so the steps are the axis; read by the step counter
    # alone they interleave the epochs, and the falling loss looked like a loss jumping up and down
    rng = np.random.default_rng(5)
    loss = [2.3 * math.exp(-i / 8) + 0.05 + rng.normal(0, 0.01) for i in range(24)]
    text = "\n".join(
        line.format(e=i // 6 + 1, e0=i // 6, s=100 * (i % 6 + 1), s0=100 * (i % 6), v=v)
        for i, v in enumerate(loss)
    )
    run = parse_run(text)
    assert len(run.table) == 24 and run.table["step"].is_monotonic_increasing
    assert run.table["step"].iloc[-1] == 2400 - (100 if "e0" in line else 0)
    assert any("counted across epochs" in n for n in run.notes)
    assert [f.kind for f in detect(run)] == ["healthy"]


def test_a_keras_callbacks_epoch_line_does_not_move_the_epoch_and_a_summary_is_no_validation_curve():
    # Keras 1 prints `Epoch 00005: early stopping` (0-based) between `Epoch 6/10` and its line: the
    # last epoch had been written over the fifth
    lines = []
    val = [0.0705, 0.0713, 0.0715, 0.0731, 0.0737, 0.0740]
    for e, (t, v) in enumerate(zip(_falling(6, 0.03, 0.013), val, strict=True), 1):
        lines.append(f"Epoch {e}/10")
        if e == 6:
            lines.append("Epoch 00005: early stopping")
        lines.append(f"3122s - loss: {t:.4f} - acc: 0.99 - val_loss: {v:.4f} - val_acc: 0.985")
    run = parse_run("\n".join(lines))
    assert list(run.table["epoch"]) == [1, 2, 3, 4, 5, 6] and run.table["val_loss"].iloc[-1] == 0.074
    # a PyTorch script's `train`/`test` lines each epoch, then `Best val Acc: 0.74` once: the test
    # curve is the held-out one (the lone summary had kept it from being read as such)
    text = "\n".join(
        f"Epoch {e}/99\ntrain Loss: {t:.4f} Acc: 0.6\ntest Loss: {t - 0.5:.4f} Acc: 0.7"
        for e, t in enumerate(_falling(12, 3.0, 1.0))
    )
    run = parse_run(text + "\nBest val Acc: 0.742603")
    assert run.sources["val_loss"] == "test Loss" and "val_acc" in run.metrics


def test_a_table_drawn_with_pipes_is_read_row_by_row():
    # a Hugging Face model card's training results (Markdown), and rich's box-drawn table
    losses = _falling(8, 0.45, 0.1)
    card = "\n".join(
        [
            "It achieves the following results on the evaluation set:",
            "",
            "| Training Loss | Epoch | Step | Validation Loss | Accuracy |",
            "|:-------------:|:-----:|:----:|:---------------:|:--------:|",
            *(
                f"| {'No log' if e == 0 else f'{t:.4f}'} | {e + 1}.0 | {50 * (e + 1)} | {t * 1.1:.4f} | "
                f"{0.8 + e / 100:.2f} |"
                for e, t in enumerate(losses)
            ),
            "",
            "### Framework versions",
        ]
    )
    run = parse_run(card)
    assert run.sources["train_loss"] == "Training Loss" and run.sources["val_loss"] == "Validation Loss"
    assert len(run.table["val_loss"].dropna()) == 8 and run.table["train_loss"].dropna().iloc[0] == round(
        losses[1], 4
    )
    assert "val_acc" in run.metrics  # the Trainer's compute_metrics: the evaluation's accuracy
    boxed = "\n".join(
        [
            "┏━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━┓",
            "┃ Epoch ┃ Train Loss ┃ Val Loss ┃",
            "┡━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━┩",
            *(f"│ {e + 1} │ {t:.4f} │ {t * 1.1:.4f} │" for e, t in enumerate(losses)),
            "└───────┴────────────┴──────────┘",
        ]
    )
    run = parse_run(boxed)
    assert run.table["epoch"].tolist() == list(range(1, 9)) and {"train_loss", "val_loss"} <= set(run.metrics)
    # readings drawn with pipes are no header: bentrevett's `| Epoch: 01 | Train Loss: 4.2 | …`
    lined = "\n".join(
        f"| Epoch: {e + 1:02} | Train Loss: {t:.3f} | Val. Loss: {t * 1.1:.3f} |"
        for e, t in enumerate(losses)
    )
    assert len(parse_run(lined).table["val_loss"].dropna()) == 8


def test_a_quoted_checkpoint_path_inside_a_json_line_leaves_the_json_readable():
    lines = [
        f'INFO - {{"epoch": {e}, "loss": {t:.4f}, "val_loss": {t * 1.2:.4f}, "ckpt": "out/epoch={e}.pt"}}'
        for e, t in enumerate(_falling(12), start=1)
    ]
    run = parse_run("\n".join(lines))
    assert len(run.table["val_loss"].dropna()) == 12 and "train_loss" in run.metrics


def test_a_table_of_one_reading_per_category_is_no_record():
    # detectron2 after its COCO summary: `| category | AP | category | AP |`, one AP per category (and
    # COCO has a category named `train`): the summary's AP is the curve, not the categories'
    lines = []
    for i, t in enumerate(_falling(8, 1.2, 0.4)):
        lines += [f"iter: {100 * i + 99}  total_loss: {t:.3f}  lr: 0.02"]
        lines += ["|  AP  |  AP50  |", "|:----:|:------:|", f"| {10 + i:.3f} | {20 + i:.3f} |"]
        lines += [
            "| category | AP | category | AP |",
            "|:---|:---|:---|:---|",
            "| person | 55.1 | train | 61.0 |",
        ]
    run = parse_run("\n".join(lines))
    assert (
        run.table["val_ap"].dropna().tolist() == [10.0 + i for i in range(8)]
        and "train_ap" not in run.metrics
    )


def test_segmentation_models_bars_and_a_stage_named_percentage_are_read():
    # segmentation_models.pytorch prints a train bar and a valid bar each epoch, readings written
    # `name - value`; the test set's evaluation after the fit is a valid bar of another length
    bar = "{stage}: 100%|██████████| {n}/{n} [00:12<00:00,  3.5it/s, dice_loss - {v:.4f}, iou_score - 0.6]"
    train = _falling(12, 0.3, 0.1)
    lines = []
    for e, t in enumerate(train):
        lines += [
            f"Epoch: {e}",
            bar.format(stage="train", n=46, v=t),
            bar.format(stage="valid", n=101, v=t + 0.1),
        ]
    lines.append(bar.format(stage="valid", n=233, v=0.9))
    run = parse_run("\n".join(lines))
    assert {"train_loss", "val_loss", "train_iou_score", "val_iou_score"} <= set(run.metrics)
    assert len(run.table) == 12 and run.table["val_loss"].iloc[-1] == pytest.approx(train[-1] + 0.1, abs=1e-4)
    # Raschka's course prints each epoch's accuracies under the stage's name alone
    epoch = "Epoch: {e:03d}/050 | Batch 0200/0210 | Loss: {t:.4f}\n"
    epoch += "Epoch: {e:03d}/050 | Train: {a:.2f}% | Validation: {v:.2f}%"
    text = "\n".join(
        epoch.format(e=e, t=t, a=90 - 40 * t, v=88 - 40 * t) for e, t in enumerate(_falling(12, 1.5, 0.2), 1)
    )
    run = parse_run(text)
    assert {"train_loss", "train_acc", "val_acc"} <= set(run.metrics)
    assert run.sources["val_acc"] == "Validation accuracy"


def test_a_stages_percentage_is_an_accuracy_only_on_an_epochs_line_and_not_a_bars_share_done():
    # a Lightning validation bar exported from a notebook, and a data split's sizes, are no readings
    text = "\n".join(
        f"Epoch {e}: 100% 313/313 [00:10<00:00, loss={t:.3f}]\nValidation: 100% 79/79 [00:01<00:00, 50it/s]"
        for e, t in enumerate(_falling(8), 1)
    )
    run = parse_run("Split sizes -> train: 80%, val: 10%, test: 10%\n" + text)
    assert "val_acc" not in run.metrics and "train_acc" not in run.metrics and len(run.table) == 8


def test_keras_fits_appended_with_bars_of_other_lengths_keep_their_validation():
    # run 1 with 100 batches an epoch, run 2 with 50: the last run's validation is still read
    lines = []
    for n in (100, 50):
        for e, t in enumerate(_falling(8), 1):
            lines += [
                f"Epoch {e}/8",
                f"{n}/{n} [==============================] - 1s - loss: {t:.4f} - val_loss: {t + 0.1:.4f}",
            ]
    run = parse_run("\n".join(lines))
    assert len(run.table) == 8 and run.table["val_loss"].notna().all()
