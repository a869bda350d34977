"""Consoles of more producers, each laid out as its producer writes it (Megatron-LM, YOLOv5's console
table, Informer, PyTorch's and Keras' schedulers, SASRec's bare tuples): read into the right training
and validation curves, or read honestly as unnamed when the log names nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.runs import RunParseError, detect, parse_run
from assistant.runs.curves import judged_metric, metric_curves
from tests.run_helpers import falling as _falling


def test_megatron_lm_iterations_and_validation_headings_read_as_training_and_held_out_losses():
    lines = []
    for i, t in enumerate(_falling(20, 9.0, 3.0), start=1):
        lines.append(
            f" iteration {100 * i:>8d}/  500000 | consumed samples: {51200 * i:>12d} | elapsed time per "
            f"iteration (ms): 1000.0 | learning rate: 1.500E-04 | global batch size:   512 | lm loss: "
            f"{t:.6E} | loss scale: 65536.0 | grad norm: 2.123 | number of skipped iterations:   0 |"
        )
        if i % 4 == 0:
            lines += [
                "-" * 60,
                f" validation loss at iteration {100 * i} | lm loss value: {t + 0.2:.6E} | lm loss PPL: "
                f"{np.exp(t + 0.2):.6E} | ",
                "-" * 60,
            ]
    run = parse_run("\n".join(lines))
    assert run.sources["train_loss"] == "lm loss" and run.sources["val_loss"].endswith("lm loss value")
    val = run.table.dropna(subset=["val_loss"])
    assert list(val["step"]) == [400, 800, 1200, 1600, 2000] and (val["val_loss"] < 10).all()  # not 400…


def test_a_console_table_under_a_header_printed_each_epoch_is_read_column_by_column():
    # YOLOv5: the header before each epoch, its row ending in a progress bar, then the validation table
    lines = []
    for e, t in enumerate(_falling(12, 0.3, 0.1)):
        lines += [
            "",
            "      Epoch    GPU_mem   box_loss   obj_loss   cls_loss  Instances       Size",
            f"      {e}/11      3.46G    {t:.5f}    {t / 2:.5f}    {t / 4:.5f}        155        640: "
            "100%|██████████| 58/58 [00:12<00:00,  4.61it/s]",
            "                 Class     Images  Instances          P          R      mAP50   mAP50-95: "
            "100%|██████████| 4/4 [00:01<00:00,  3.50it/s]",
            f"                   all        128        929      0.5      0.4      {0.3 + e / 50:.3f}"
            "      0.2",
        ]
    run = parse_run("\n".join(lines))
    assert {"train_box_loss", "train_obj_loss", "train_cls_loss"} <= set(run.metrics)
    assert run.sources["train_loss"] == "box_loss + obj_loss + cls_loss" and len(run) == 12
    assert list(run.table["epoch"])[:2] == [1, 2]
    assert run.table["val_m_ap50"].tolist()[:2] == [0.3, 0.32]  # the validation table's
    prose = "Computing the loss and accuracy\n" + "\n".join(
        f"epoch {e} loss: {t:.3f}" for e, t in enumerate(_falling(8))
    )
    assert parse_run(prose).metrics == ["train_loss"]  # a sentence is no header


def test_a_name_does_not_start_inside_the_number_before_it():
    # PaddlePaddle's InvDN: `Time: 59.3302s\tLoss: 4198.68`: the loss is `Loss`, not `s Loss`
    text = "\n".join(
        f"22-09-25 01:20:49.569 - INFO: Iter: {100 * i}\tTime: {59.33 * i:.4f}s\tLoss: {t:.4f}\tLR: 0.000800"
        for i, t in enumerate(_falling(20, 4000, 2000), start=1)
    )
    run = parse_run(text)
    assert run.sources["train_loss"] == "Loss" and run.metrics == ["train_loss", "lr"]


def test_lines_of_several_numbers_alone_are_read_as_unnamed_scores_and_not_judged():
    # SASRec prints `(valid NDCG, HR) (test NDCG, HR)` per evaluation, never naming them
    rows = [(0.25 + 0.01 * i, 0.47 + 0.01 * i) for i in range(20)]
    text = "\n".join(f"({a:.4f}, {b:.4f}) ({a - 0.01:.4f}, {b - 0.02:.4f})" for a, b in rows)
    run = parse_run(text)
    assert run.metrics == [f"train_score_{i}" for i in range(1, 5)] and len(run) == 20
    assert any("4 numbers alone" in n for n in run.notes)
    assert [f.kind for f in detect(run)] == ["healthy"] and judged_metric(run) is None
    counted = "\n".join(f"{e} {a:.4f} {b:.4f}" for e, (a, b) in enumerate(rows, start=1))
    run = parse_run("training\n" + counted)
    assert run.metrics == ["train_score_1", "train_score_2"] and list(run.table["epoch"])[:3] == [1, 2, 3]
    named = counted + "\nepoch 21 loss: 0.5\nepoch 22 loss: 0.4"
    assert parse_run(named).metrics == ["train_loss"]  # a named metric wins: bare numbers are not read


def test_a_learning_rate_announced_in_prose_is_read_and_an_epoch_summary_beats_its_batch_lines():
    # Informer's console: batch lines `iters: N, epoch: E | loss: …`, then the epoch's summary, then
    # `Updating learning rate to …`; PyTorch's scheduler (verbose) and Keras' callbacks say it likewise
    lines = []
    for e, t in enumerate(_falling(8, 0.64, 0.5), start=1):
        lines += [f"\titers: {i}, epoch: {e} | loss: {t - 0.05 * i / 100:.7f}" for i in (100, 200)]
        lines.append(f"Epoch: {e}, Steps: 266 | Train Loss: {t:.7f} Vali Loss: {t + 0.5:.7f}")
        lines.append(f"Updating learning rate to {1e-4 / 2**e:g}")
    run = parse_run("\n".join(lines))
    assert run.sources["train_loss"] == "Train Loss" and run.table["train_loss"].iloc[0] == 0.64
    assert run.table["lr"].iloc[-1] == 1e-4 / 2**8
    torch = ["Adjusting learning rate of group 0 to 1.0000e-01."]
    for e, t in enumerate(_falling(10), start=1):
        torch += [f"Epoch {e} train_loss: {t:.4f} val_loss: {t + 0.1:.4f}"]
        torch += [f"Adjusting learning rate of group 0 to {0.1 * 0.5**e:.4e}."]
    run = parse_run("\n".join(torch))
    assert run.table["train_loss"].count() == 10 and not any("runs" in n for n in run.notes)  # one run
    assert run.table["lr"].iloc[-1] < 1e-3
    keras = "\n".join(
        f"Epoch {e:05d}: ReduceLROnPlateau reducing learning rate to {1e-3 / 10 ** (e // 4):g}.\n"
        f"Epoch {e}/12 - loss: {t:.4f} - val_loss: {t + 0.1:.4f}"
        for e, t in enumerate(_falling(12), start=1)
    )
    assert parse_run(keras).table["lr"].min() == 1e-6


def test_an_evaluation_printed_without_a_step_is_placed_at_the_training_step_before_it():
    # OpenNMT-py: `Step 500/100000; acc: …; ppl: …` then `Validation perplexity: …` with no step
    lines = []
    for i, t in enumerate(_falling(20, 7.0, 3.0), start=1):
        lines.append(
            f"[2019-03-01 10:00:00,000 INFO] Step {50 * i}/100000; acc:  {10 + i:.2f}; ppl: {np.exp(t):.2f}"
        )
        if i % 2 == 0:
            lines.append(f"[2019-03-01 10:00:30,000 INFO] Validation perplexity: {np.exp(t + 0.2):.4f}")
    run = parse_run("\n".join(lines))
    tr, va = metric_curves(run, "ppl")
    assert list(run.table.dropna(subset=["val_ppl"])["step"]) == [100 * k for k in range(1, 11)]
    assert va is not None and va.unit == tr.unit == "step"


def test_a_dataframe_printed_in_a_notebook_is_read_under_its_header():
    # `print(pd.DataFrame(history.history))`: pandas leads each row with its index, under no name
    rows = [f"{i:<3d} {t:.6f}  {t + 0.1:.6f}  {0.5 + i / 100:.6f}" for i, t in enumerate(_falling(30))]
    run = parse_run("history of the fit:\n        loss  val_loss  accuracy\n" + "\n".join(rows))
    assert run.metrics == ["train_loss", "val_loss", "train_acc"] and len(run) == 30
    assert run.table["val_loss"].iloc[0] == 2.1


def test_makemores_counter_with_its_total_a_plural_reward_and_a_long_table_are_read():
    # Karpathy's makemore: `  10000/ 200000: 2.0576`, a single number after the step and its total
    makemore = "\n".join(f"{10000 * i:7d}/ 200000: {t:.4f}" for i, t in enumerate(_falling(20, 3.3, 1.7)))
    run = parse_run("vocab 27\n" + makemore)
    assert run.metrics == ["train_loss"] and list(run.table["step"])[:2] == [0, 10000]
    # an RL notebook's table: `| Episode: 10 | Mean Train Rewards: -167.7 | Mean Test Rewards: -476.3 |`
    rl = "\n".join(
        f"| Episode: {10 * i:3d} | Mean Train Rewards: {-200 + 5 * i:7.1f} | "
        f"Mean Test Rewards: {-150 + 6 * i:7.1f} |"
        for i in range(1, 30)
    )
    assert set(parse_run(rl).metrics) == {"train_reward", "val_reward"}
    # a table in long form (disentangling-vae's `Epoch,Loss,Value`; tbparse's `step,tag,value`)
    rows = ["Epoch,Loss,Value"] + [
        f"{e},{k},{v:.4f}"
        for e, t in enumerate(_falling(12, 200, 150))
        for k, v in (("recon_loss", t), ("loss", t + 10))
    ]
    run = parse_run("\n".join(rows))
    assert set(run.metrics) == {"train_loss", "train_recon_loss"} and run.table["train_loss"].count() == 12
    assert any("long form" in n for n in run.notes)


def test_a_held_out_line_under_a_training_line_with_no_epoch_in_either_shares_its_row():
    # pytorch-seq2seq's notebooks: `\tTrain Loss: 5.011 | Train PPL: 150.091` then `\tValid Loss: …`
    lines = []
    for t in _falling(10, 5.0, 1.5):
        lines += [f"\tTrain Loss: {t:.3f} | Train PPL: {np.exp(t):7.3f}", f"\t Val. Loss: {t + 1:.3f}"]
    run = parse_run("\n".join(lines))
    assert len(run) == 10 and run.table[["train_loss", "val_loss"]].notna().all().all()
    only_val = parse_run("\n".join(f"Valid Loss: {t:.3f}" for t in _falling(10)))
    assert len(only_val) == 10  # held-out lines alone are each their own reading


def test_a_keras_notebook_of_several_fits_is_read_on_its_last_fit_without_its_settings_or_evaluate():
    # hands-on-ML's notebooks: fit, `history.params` printed as a dict, `model.evaluate` (a bar of its
    # own length under the last epoch), then the next fit; the last fit is the run
    def fit(n: int, start: float) -> list[str]:
        out = []
        for e in range(1, n + 1):
            loss = start / e
            out += [
                f"Epoch {e}/{n}",
                f"1719/1719 [==============================] - 2s 1ms/step - loss: {loss:.4f} - "
                f"accuracy: 0.9 - val_loss: {loss + 0.05:.4f} - val_accuracy: 0.88",
            ]
        return [
            *out,
            "313/313 [==============================] - 0s 639us/step - loss: 0.9999 - accuracy: 0.8837",
        ]

    text = [*fit(30, 1.0), "{'verbose': 1, 'epochs': 30, 'steps': 1719}", *fit(28, 0.5)]
    run = parse_run("\n".join(text))
    t = run.table
    assert len(t) == 28 and t["epoch"].tolist() == list(range(1, 29))
    assert t["train_loss"].iloc[-1] == round(0.5 / 28, 4)  # the fit's last epoch, not evaluate()'s 0.9999
    # evaluate() on a test set of as many batches draws a bar of the same length: it comes after the
    # epoch's validation, which Keras prints last, so it is no update of that epoch either
    same = "\n".join(text).replace("313/313 [", "1719/1719 [")
    assert parse_run(same).table["train_loss"].iloc[-1] == round(0.5 / 28, 4)


def test_the_hugging_face_trainers_notebook_table_is_read_and_a_progress_bars_share_is_no_reading():
    # a notebook that ran the Trainer: datasets' `Map:  40%|████` bars (no mAP), then the Trainer's
    # progress display, kept only as HTML (its plain-text copy is `<IPython.core.display.HTML object>`)
    rows = "".join(
        f"<tr><td>{100 * i}</td><td>{'No log' if i == 1 else f'{0.9 - 0.05 * i:.6f}'}</td>"
        f"<td>{1.0 - 0.06 * i:.6f}</td><td>{0.5 + 0.03 * i:.6f}</td></tr>"
        for i in range(1, 11)
    )
    html = (
        "<div><progress value='1000' max='1000'></progress> [1000/1000 05:21, Epoch 3/3]</div>"
        '<table border="1" class="dataframe"><thead><tr style="text-align: left;"><th>Step</th>'
        "<th>Training Loss</th><th>Validation Loss</th><th>F1 Score</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
    bars = [
        f"Map:  {p}%|{'█' * (p // 10)}{' ' * (10 - p // 10)}| {10 * p}/1000 [00:01<00:00]\n"
        for p in (0, 40, 100)
    ]
    notebook = {
        "cells": [
            {"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stderr", "text": bars}]},
            {
                "cell_type": "code",
                "outputs": [
                    {
                        "output_type": "display_data",
                        "data": {"text/html": [html], "text/plain": ["<IPython.core.display.HTML object>"]},
                    }
                ],
            },
        ]
    }
    run = parse_run(json.dumps(notebook))
    assert run.sources["train_loss"] == "Training Loss" and run.sources["val_loss"] == "Validation Loss"
    assert len(run) == 10 and not any("map" in m for m in run.metrics)
    assert run.table["step"].tolist() == [100.0 * i for i in range(1, 11)]
    assert "val_f1_score" in run.metrics  # what compute_metrics adds is the evaluation's


def test_a_trainer_table_of_two_columns_is_the_training_curve_beside_the_trainoutput():
    # a QLoRA fine-tune's notebook, saved mid-run: `Step | Training Loss` only, and the TrainOutput of
    # an earlier run printed as text, naming train_loss once: the table's rows are the curve
    rows = "".join(f"<tr><td>{10 * i}</td><td>{1.45 - 0.01 * i:.6f}</td></tr>" for i in range(1, 31))
    html = (
        "<div><progress value='300' max='858'></progress> [300/858 1:10:00 < 2:10:00, Epoch 1.04/3]</div>"
        "<table><thead><tr><th>Step</th><th>Training Loss</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
    output = {"output_type": "display_data", "data": {"text/html": [html], "text/plain": ["<HTML object>"]}}
    printed = (
        "TrainOutput(global_step=858, training_loss=1.19, metrics={'train_runtime': 11675.6, "
        "'train_loss': 1.19})"
    )
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "outputs": [{"output_type": "stream", "name": "stdout", "text": [printed]}],
            },
            {"cell_type": "code", "outputs": [output]},
        ]
    }
    run = parse_run(json.dumps(notebook))
    assert run.sources["train_loss"] == "Training Loss" and len(run) == 30
    assert run.table["step"].tolist()[:3] == [10.0, 20.0, 30.0]


def test_a_metrics_table_shown_only_as_html_is_read_with_the_stage_its_rows_name():
    # fastprogress (fastai's miniai course): `accuracy | loss | epoch | train`, a row for training and
    # one for evaluation each epoch, the stage in a cell; the result's plain text is only a placeholder
    rows = "".join(
        f"<tr><td>{0.5 + e / 40:.3f}</td><td>{t:.3f}</td><td>{e}</td><td>train</td></tr>"
        f"<tr><td>{0.48 + e / 40:.3f}</td><td>{t * 1.1:.3f}</td><td>{e}</td><td>eval</td></tr>"
        for e, t in enumerate(_falling(10, 2.0, 0.5))
    )
    head = "<thead><tr><th>accuracy</th><th>loss</th><th>epoch</th><th>train</th></tr></thead>"
    html = f"<table>{head}{rows}</table>"
    shown = {"text/html": [html], "text/plain": ["<IPython.core.display.HTML object>"]}
    frame = {"text/html": [html], "text/plain": ["   accuracy  loss\n0  0.5  2.0"]}  # a DataFrame's
    for data, read in ((shown, True), (frame, False)):
        notebook = {
            "cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data", "data": data}]}]
        }
        if read:
            run = parse_run(json.dumps(notebook))
            assert run.sources["val_loss"] == "eval loss" and run.sources["train_loss"] == "train loss"
            assert len(run) == 10 and run.table["val_loss"].iloc[0] == 2.2
        else:  # its plain-text copy is what is read
            with pytest.raises(RunParseError):
                parse_run(json.dumps(notebook))


def test_lightning_checkpoint_lines_are_read_at_full_precision_not_from_the_file_name():
    # ModelCheckpoint(verbose=True) prints the monitored value, then the file it saves, whose name
    # repeats it rounded (and, without a version suffix, runs into `.ckpt`)
    lines = [
        f"Epoch {e}, global step {e + 1}: 'val_loss' reached {v:.5f} (best {v:.5f}), saving model to "
        f"'checkpoints/epoch={e}-step={e + 1}-val_loss={v:.4f}{'-v1' if e % 2 else ''}.ckpt' as top 1"
        for e, v in enumerate(_falling(12, 0.333, 0.057))
    ]
    run = parse_run("\n".join(lines))
    assert len(run) == 12 and run.table["epoch"].tolist() == list(range(1, 13))
    assert run.table["val_loss"].tolist() == [round(v, 5) for v in _falling(12, 0.333, 0.057)]


def test_tensorflow_object_detection_prints_its_loss_dict_over_several_lines():
    # model_main_tf2.py: `Step N per-step time …`, then pprint's dict, one key a line; `Loss/total_loss`
    # is the loss, its parts keep their names
    lines = []
    for i, t in enumerate(_falling(30, 1.2, 0.3), start=1):
        lines += [
            f"I1203 10:00:00.000000 139 model_lib_v2.py:705] Step {100 * i} per-step time 0.512s",
            f"I1203 10:00:00.000000 139 model_lib_v2.py:708] {{'Loss/classification_loss': {t * 0.6:.4f},",
            f" 'Loss/localization_loss': {t * 0.25:.4f},",
            " 'Loss/regularization_loss': 0.15,",
            f" 'Loss/total_loss': {t:.4f},",
            " 'learning_rate': 0.04}",
        ]
    run = parse_run("\n".join(lines))
    assert run.sources["train_loss"] == "Loss/total_loss" and len(run.table) == 30
    assert run.table["step"].iloc[-1] == 3000 and "train_classification_loss" in run.metrics


def test_a_tensorflow_1_cost_is_its_loss_and_a_cost_in_time_is_not():
    # the TF1 notebooks' `training avg cost` / `testing avg cost` (`cost = tf.reduce_mean(...)`), next
    # to Informer-style timings (`Epoch: 1 cost time: 114.6`), which stay out of the curves
    lines = []
    for e, (t, v) in enumerate(
        zip(_falling(12, 22.6, 0.2), [12.9 - 0.3 * e + 0.1 * e * e for e in range(12)], strict=False), 1
    ):
        lines += [
            f"Epoch: {e} cost time: {110 + e:.4f}",
            f"epoch {e}, training avg cost {t:.6f}, training avg accuracy {0.5 + e / 30:.6f}",
            f"epoch {e}, testing avg cost {v:.6f}, testing avg accuracy {0.7 + e / 100:.6f}",
        ]
    run = parse_run("\n".join(lines))
    assert run.sources["train_loss"] == "training avg cost" and "testing avg cost" in run.sources["val_loss"]
    assert not any("time" in name for name in run.metrics)
    assert "overfitting" in [f.kind for f in detect(run)]


def test_a_notebook_cell_printing_one_record_alone_is_an_evaluation_not_a_training_record():
    # Microsoft Recommenders' notebooks: `print(model.run_eval(test_file))` in a cell before and after
    # the one whose loop prints `train info: logloss loss:…` and `eval info: auc:…, logloss:…`
    loop = []
    for e in range(1, 11):
        loop += [f"at epoch {e}\n", f"train info: logloss loss:{744 / 2**e:.4f}\n",
                 f"eval info: auc:{0.66 + e / 120:.4f}, logloss:{0.534 - e / 250:.4f}\n"]  # fmt: skip

    def printed(text: list[str]) -> dict[str, object]:
        return {"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stdout", "text": text}]}

    before, after = (
        printed(["{'auc': 0.4728, 'logloss': 0.7113}\n"]),
        printed(["{'auc': 0.7356, 'logloss': 0.5017}\n"]),
    )
    run = parse_run(json.dumps({"cells": [before, printed(loop), after]}))
    assert run.sources["val_loss"] == "val/logloss" and "test_loss" in run.metrics
    assert run.table["train_loss"].notna().sum() == 10 and 0.5017 not in run.table["train_loss"].tolist()
    # a record printed inside the loop's own output (one line of many) is that loop's reading
    inline = printed(loop + ["{'auc': 0.7356, 'logloss': 0.5017}\n"])
    assert "test_loss" not in parse_run(json.dumps({"cells": [inline]})).metrics
    # NumPy 2 prints its numbers wrapped (`np.float64(0.5017)`); a warning on stderr beside the record
    # leaves it alone in what the cell printed
    warned = printed(["{'auc': np.float64(0.7356), 'logloss': np.float64(0.5017)}\n"])
    warned["outputs"].insert(0, {"output_type": "stream", "name": "stderr", "text": ["UserWarning: …\n"]})
    assert "test_loss" in parse_run(json.dumps({"cells": [before, printed(loop), warned]})).metrics
    # a loop printing one record an epoch between its progress bars on stderr: every print is a record
    # alone in its output, but not in its cell, so they are the loop's training records
    bars: list[dict[str, object]] = []
    for e in range(1, 11):
        bars.append({"output_type": "stream", "name": "stderr", "text": [f"100%|████| 50/50 [epoch {e}]\n"]})
        bars.append(
            {
                "output_type": "stream",
                "name": "stdout",
                "text": [f"{{'loss': {2 / e:.3f}, 'accuracy': 0.5}}\n"],
            }
        )
    looped = parse_run(json.dumps({"cells": [{"cell_type": "code", "outputs": bars}]}))
    assert looped.table["train_loss"].notna().sum() == 10 and "test_loss" not in looped.metrics
    # a settings dict printed alone in a cell is no evaluation
    config = printed(["{'lr': 0.001, 'momentum': 0.9}\n"])
    assert "test_lr" not in parse_run(json.dumps({"cells": [config, printed(loop)]})).metrics
    # a notebook cut off inside a cell keeps what that cell had printed
    cut = json.dumps({"cells": [printed(loop)]})
    assert parse_run(cut[: cut.index("at epoch 10")]).table["train_loss"].notna().sum() == 9


def test_a_gans_losses_named_by_their_networks_alone_are_read():
    # an SGAN's tqdm capture: `Epoch 3: 100%|███| 28/28 [00:23<00:00, 1.21it/s, D=2.045, G=0.010, FID=-]`
    bars = "\n".join(
        f"Epoch {e}: 100%|██████| 28/28 [00:23<00:00,  1.21it/s, D={d:.3f}, G={0.01 + e / 1e4:.3f}, FID=-]"
        for e, d in enumerate(_falling(40, 2.3, 0.8))
    )
    run = parse_run(bars)
    assert {"train_d_loss", "train_g_loss"} <= set(run.metrics) and len(run) == 40
    # one network's letter alone is no reading (`d=3` in a config line beside a loss)
    lone = parse_run("\n".join(f"epoch {e} d=3 loss={2 / e:.3f}" for e in range(1, 9)))
    assert not any("_d" in m for m in lone.metrics)
