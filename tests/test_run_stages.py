"""Where a console line's readings get their stage when the line itself does not say it: from a line
that opened the record with only its stage and epoch (Flax), from a bulleted heading (Python logging
in the knowledge-distillation repository), from a tool's own shape (Trax), from a heading after the
logger's time alone (JoeyNMT); and a loss printed as 0 at every evaluation, never computed, is no
curve."""

from __future__ import annotations

import json

from assistant.runs import detect, parse_run
from tests.run_helpers import falling


def test_a_staged_line_with_only_its_epoch_gives_its_stage_to_the_readings_under_it():
    # Flax NNX's translation example: a `[test] epoch: N/10` line, then one reading a line
    lines = []
    for e, (t, v) in enumerate(zip(falling(10, 1.96, 0.36), falling(10, 1.98, 0.90), strict=True), 1):
        lines += [f"[train] epoch: {e - 1}/10, [160/162], loss={t:.3f} [00:09]", f"[test] epoch: {e}/10",
                  f"- total loss: {v:.4f}", f"- Accuracy: {0.67 + e / 60:.4f}"]  # fmt: skip
    run = parse_run("\n".join(lines))
    assert run.sources["train_loss"] == "train/loss" and run.sources["val_loss"] == "test/total loss"
    assert run.table["val_loss"].notna().sum() == 10
    # a new epoch line that says no stage ends the held-out record, itself included (its loss is
    # training's), and every reading under a staged line keeps that stage, however many there are
    for split in (", loss=", "\nloss="):
        plain = [ln.replace("[train] epoch", "epoch").replace(", loss=", split) for ln in lines]
        plain = [ln + "\n- bleu: 21.5\n- ppl: 4.1" if ln.startswith("- Accuracy") else ln for ln in plain]
        again = parse_run("\n".join(plain))
        assert again.table["train_loss"].notna().sum() == 10 and again.table["val_loss"].notna().sum() == 10
        assert not any(m.startswith("train_") for m in again.metrics if m not in ("train_loss",))


def test_a_heading_of_its_own_gives_a_held_out_stage_to_the_readings_under_it():
    # an event extractor's `Dev Results` heading, a progress bar and timing, then its dev F1; a
    # `=== Validation ===` heading before a validation loss; a training heading ends the held-out record
    lines = []
    for e, (t, v) in enumerate(zip(falling(12, 23.4, 16.1), falling(12, 2.1, 1.2), strict=True), 1):
        lines += [f"Epoch:{e}", f"Training loss:{t:.4f}", "Training time:0:00:37.15", "", "Dev Results", "",
                  "100%|█████████████| 3/3 [00:04<00:00,  1.58s/it]", "Prediction time:0:00:04.734820",
                  f"F1:{0.02 + e / 100:.4f}", "=== Validation ===", f"loss: {v:.3f}", "Running training",
                  f"accuracy: {0.5 + e / 40:.3f}"]  # fmt: skip
    run = parse_run("\n".join(lines))
    assert run.table["train_loss"].iloc[0] == 23.4 and run.table["val_loss"].iloc[0] == 2.1
    assert run.table["val_f1"].notna().sum() == 12 and "train_f1" not in run.metrics
    assert run.table["train_acc"].notna().sum() == 12 and "val_acc" not in run.metrics


def test_an_evaluation_announced_in_words_is_held_out_though_its_line_reads_like_trainings():
    # a PaddlePaddle course script: `testing in eval mode……` (an ellipsis), then the same `epoch: 1,
    # loss is: …, acc is: …` line as training's, then `Now continue training……`; the evaluation's
    # line overwrote the training one and the held-out loss was judged as the training loss
    lines = []
    for e, (t, v) in enumerate(zip(falling(10, 0.63, 0.16), falling(10, 0.49, 0.26), strict=True)):
        lines += [
            f"epoch: {e},  loss is: {t:.6f}, acc is: {0.78 + e / 60:.6f}",
            "testing in eval mode……",
            f"epoch: {e},  loss is: {v:.6f}, acc is: {0.83 + e / 120:.6f}",
            "Now continue training……",
        ]
    run = parse_run("\n".join(lines))
    assert run.table["train_loss"].iloc[0] == 0.63 and run.table["val_loss"].iloc[0] == 0.49
    assert len(run.table) == 10
    # `in` and `mode` are a heading's words only after what the line says it is doing: `Running in
    # test mode...` over training's steps stages nothing
    steps = "\n".join(f"step {100 * i} loss {t:.3f}" for i, t in enumerate(falling(10, 0.91, 0.19), 1))
    assert parse_run(f"Running in test mode...\n{steps}").sources == {"train_loss": "loss"}


def test_a_bulleted_evaluation_heading_stages_its_readings():
    # `- Train metrics: accuracy: 0.334 ; loss: 1.771` and `- Eval metrics : …` under a logger's prefix
    lines = []
    for e, (t, v) in enumerate(zip(falling(12, 1.77, 0.2), falling(12, 1.35, 0.5), strict=True), 1):
        lines += [
            f"2018-03-09 02:56:{e:02d},525:INFO: Epoch {e}/200",
            f"2018-03-09 02:57:{e:02d},525:INFO: - Train metrics: accuracy: 0.5 ; loss: {t:.3f}",
            f"2018-03-09 02:58:{e:02d},525:INFO: - Eval metrics : accuracy: 0.6 ; loss: {v:.3f}",
        ]
    run = parse_run("\n".join(lines))
    assert run.table["train_loss"].iloc[0] == 1.77 and run.table["val_loss"].iloc[0] == 1.35


def test_trax_training_loop_lines_are_read_one_metric_a_line():
    lines = []
    for i, (t, v) in enumerate(zip(falling(20, 9.85, 1.7), falling(20, 9.7, 1.8), strict=True)):
        step = 1 if i == 0 else 100 * i
        lines += [f"Step {step:>6}: Ran 100 train steps in 70.54 secs",
                  f"Step {step:>6}: train CrossEntropyLossWithLogSoftmax |  {t:.8f}",
                  f"Step {step:>6}: eval  CrossEntropyLossWithLogSoftmax |  {v:.8f}",
                  f"Step {step:>6}: eval        WeightedCategoryAccuracy |  {0.1 + i / 30:.8f}"]  # fmt: skip
    run = parse_run("\n".join(lines))
    assert {"train_loss", "val_loss", "val_acc"} <= set(run.metrics)
    assert run.table["step"].tolist()[:2] == [1.0, 100.0] and run.table["val_loss"].iloc[0] == 9.7
    # the loss layer of Trax's README (`WeightedCategoryCrossEntropy`) is the loss too, and a sequence
    # accuracy stays apart from the per-token one
    renamed = "\n".join(lines).replace("CrossEntropyLossWithLogSoftmax", "WeightedCategoryCrossEntropy")
    renamed += "\nStep   2000: eval   SequenceAccuracy |  0.01000000"
    again = parse_run(renamed)
    assert {"train_loss", "val_loss", "val_acc", "val_sequence_accuracy"} <= set(again.metrics)


def test_a_loss_printed_as_zero_at_every_evaluation_was_never_computed():
    # a distillation run whose eval loss is left at 0.000 while its eval accuracy climbs: judged on the
    # accuracy, not on a flat zero beside a training loss that does not measure progress
    rows = [
        {"epoch": e, "train_loss": 1.0 + 0.01 * (-1) ** e, "val_loss": 0.0, "val_acc": 0.56 + 0.38 * e / 30}
        for e in range(1, 31)
    ]
    run = parse_run("\n".join(json.dumps(r) for r in rows))
    assert [f.kind for f in detect(run)] == ["healthy"]


def test_an_evaluation_under_its_heading_counts_its_own_batches():
    # Paddle's Model.fit: `Eval begin...`, then the evaluation's own progress lines (`step 20/88`, the
    # same shape as training's `step 20/614`), then `Eval samples: 2808`: the epoch's held-out readings
    lines = []
    for e, (t, v) in enumerate(zip(falling(12, 0.17, 0.13), falling(12, 0.15, 0.14), strict=True), 1):
        lines.append(f"Epoch {e}/12")
        lines += [
            f"step {s}/614 - loss: {t:.4f} - AUROC: {0.6 + e / 50:.4f} - 300ms/step" for s in (300, 614)
        ]
        lines.append("Eval begin...")
        lines += [f"step {s}/88 - loss: {v + s / 1e4:.4f} - AUROC: {0.7 + e / 60:.4f}" for s in (10, 88)]
        lines.append("Eval samples: 2808")
    run = parse_run("\n".join(lines))
    assert run.table["val_loss"].notna().sum() == 12 and run.table["train_loss"].notna().sum() == 24
    assert (
        run.table["train_loss"].iloc[0] == 0.17 and round(run.table["val_loss"].dropna().iloc[0], 4) == 0.1588
    )


def test_a_headings_stage_ends_with_its_record():
    # Hugging Face's `***** Running Evaluation *****`: its eval record, then training's records go on;
    # detectron2's `Evaluation results for bbox:` table, then `iter: 1019  total_loss: …` lines
    hf = []
    for i, loss in enumerate(falling(12, 2.0, 0.6), 1):
        hf.append(f"{{'loss': {loss:.4f}, 'learning_rate': 5e-05, 'epoch': {i / 4:.2f}}}")
        if i % 4 == 0:
            hf += ["***** Running Evaluation *****", "  Num examples = 500", "  Batch size = 8"]
            hf.append(f"{{'eval_loss': {loss + 0.2:.4f}, 'eval_runtime': 3.1, 'epoch': {i / 4:.2f}}}")
    run = parse_run("\n".join(hf))
    assert run.table["train_loss"].notna().sum() == 12 and run.table["val_loss"].notna().sum() == 3
    d2 = []
    for i, loss in enumerate(falling(30, 0.9, 0.3)):
        d2.append(f"[11/19 09:19:35] d2.utils.events INFO:  iter: {20 * i + 19}  total_loss: {loss:.4f}")
        if i == 10:
            d2 += ["[11/19 09:09:39] d2.evaluation.coco_evaluation INFO: Evaluation results for bbox: ",
                   "|   AP   |  AP50  |", "|:------:|:------:|", "| 14.803 | 28.889 |",
                   "[11/19 09:09:39] d2.evaluation.coco_evaluation INFO: Per-category bbox AP: "]  # fmt: skip
    run = parse_run("\n".join(d2))
    assert run.table["train_loss"].notna().sum() == 30 and "val_loss" not in run.metrics


def test_a_heading_stages_only_its_own_record():
    # `Validation`, then a line counting training's own steps (`Step [300/1200]`): one line, and the
    # training lines after it stay training's
    lines = [f"Step [{100 * i}/1200] loss: {v:.4f}" for i, v in enumerate(falling(12, 2.0, 0.6), 1)]
    lines.insert(3, "Validation")
    lines.insert(4, "Step [300/1200] loss: 2.5000")
    run = parse_run("\n".join(lines))
    assert run.table["train_loss"].notna().sum() == 12 and run.table["val_loss"].notna().sum() == 1
    # a line doing something with a split is no heading
    for setup in ("Loading validation data", "No validation set", "Building test dataset..."):
        text = (
            setup
            + "\n"
            + "\n".join(f"Iter [{100 * i}/1000] loss: {v:.4f}" for i, v in enumerate(falling(10), 1))
        )
        assert set(parse_run(text).metrics) == {"train_loss"}, setup
    # one reading a line under `***** Eval results *****`: all of them the evaluation's
    block = "Epoch 1/8\ntrain loss: 1.0000\n***** Eval results *****\n  acc = 0.5200\n  f1 = 0.4200"
    blocks = "\n".join(block.replace("1/8", f"{e}/8").replace("1.0000", f"{1 / e:.4f}") for e in range(1, 9))
    run = parse_run(blocks)
    assert {"val_acc", "val_f1"} <= set(run.metrics) and "train_f1" not in run.metrics
    # a line under the heading that names the same epoch as training's line before it
    text = "\n".join(
        f"Epoch [{e}/8] Loss: {1 / e:.4f}\nValidation\nEpoch [{e}/8] Loss: {1.2 / e:.4f}" for e in range(1, 9)
    )
    run = parse_run(text)
    assert run.table["train_loss"].iloc[0] == 1.0 and run.table["val_loss"].iloc[0] == 1.2


def test_pytorchs_quickstart_test_error_heading_and_a_settings_key_named_test():
    # `Test Error:` then `acc: 49.7%, avg loss: 0.046441` each epoch (the PyTorch quickstart loop)
    lines = []
    for e, (t, v) in enumerate(zip(falling(15, 0.69, 0.1), falling(15, 0.046, 0.008), strict=True), 1):
        lines += [
            f"Epoch {e}",
            f"loss: {t:.6f}  [ 6000/ 6388]",
            "Test Error:",
            f"acc: {50 + 3 * e:.1f}%, avg loss: {v:.6f}",
            "",
        ]
    run = parse_run("\n".join(lines))
    assert run.sources["val_loss"] == "test/avg loss" and run.table["val_loss"].notna().sum() == 15
    # yacs' dump of detectron2's settings holds a `TEST:` key; the training lines long after it are
    # training's
    dump = ["TEST:", "  AUG:", "    ENABLED: False", "  DETECTIONS_PER_IMAGE: 100", "VERSION: 2"] + [
        "GeneralizedRCNN("
    ] * 20
    d2 = [
        f"[05/24 22:27:24] d2.utils.events INFO:  iter: {20 * i + 19}  total_loss: {v:.4f}"
        for i, v in enumerate(falling(20, 1.2))
    ]
    assert set(parse_run("\n".join(dump + d2)).metrics) == {"train_loss"}


def test_a_stage_word_before_the_three_words_of_a_name_stages_it():
    # Pointnet's `eval point avg class IoU: 0.47`: the name keeps three words, the stage is the first
    lines = [
        f"Epoch {e}\nTraining mean loss: {t:.4f}\neval point avg class IoU: {0.4 + e / 50:.4f}"
        for e, t in enumerate(falling(12, 0.9, 0.3))
    ]
    run = parse_run("\n".join(lines))
    assert run.metrics == ["train_loss", "val_class_iou"]


def test_a_validation_heading_after_the_loggers_time_alone_gives_its_readings_its_stage():
    # JoeyNMT 1.x logs with only the time before each message, and its validation lines say their
    # decoding in parentheses: `… Validation result (greedy) at epoch 5, step 1000: bleu: 2.06, loss:
    # 73394.2, ppl: 24.66`; their loss and perplexity were read as training's, and the overfitting
    # (the validation loss turning up while training falls) went unseen
    lines, train = [], falling(30, 3.0, 0.7)
    val = [7.0e4 - 2.0e3 * i if i < 8 else 5.4e4 + 400 * (i - 8) for i in range(30)]
    for e, (t, v) in enumerate(zip(train, val, strict=True), 1):
        lines += [
            f"2020-02-09 13:{e:02d}:12,666 Epoch {e:3d} Step: {100 * e:8d} Batch Loss: {t:.6f} Lr: 0.000300",
            f"2020-02-09 13:{e:02d}:43,451 Validation result (greedy) at epoch {e:3d}, step {100 * e:6d}: "
            f"bleu: {2 + e / 3:6.2f}, loss: {v:.4f}, ppl: {v / 3000:8.4f}, duration: 13.5851s",
        ]
    run = parse_run("\n".join(lines))
    assert run.sources["val_loss"] == "val/loss" and "val_ppl" in run.metrics
    assert run.table["val_loss"].notna().sum() == 30 and "train_ppl" not in run.metrics
    assert "overfitting" in [f.kind for f in detect(run)]


def test_a_stage_word_after_a_time_and_its_colon_gives_the_lines_readings_their_stage():
    # `12:00:05: valid: epoch=5 loss=1.93` (a clock's time, then a colon): the validation lines were read
    # as training's, their loss merged into the training curve; with a date before the time too
    train = falling(12, 2.0, 0.8)
    val = [2.1 - 0.05 * e + 0.004 * e * e for e in range(1, 13)]
    for stamp in ("12:00:{e:02d}: ", "2017-10-12 19:{e:02d}:00: "):
        lines = []
        for e, (t, v) in enumerate(zip(train, val, strict=True), 1):
            lines += [
                f"{stamp.format(e=e)}train: epoch={e} loss={t:.4f}",
                f"{stamp.format(e=e)}valid: epoch={e} loss={v:.4f}",
            ]
        run = parse_run("\n".join(lines))
        assert run.sources == {"train_loss": "loss", "val_loss": "val/loss"}, stamp
        assert run.table["val_loss"].dropna().round(4).tolist() == [round(v, 4) for v in val]


def test_an_evaluation_line_after_a_time_and_a_dash_is_held_out_and_its_test_loss_the_held_out_loss():
    # SimpleAICV: `2022-07-17 05:28:05 - eval: epoch: 200, acc1: 79.580%, …, test_loss: 1.1704`. Its
    # accuracy was read as training's; staged as the evaluation's, the validation accuracy beside a
    # test loss alone leaves that loss the held-out one (it turns at epoch 12: overfitting)
    train, test = falling(30, 2.3, 0.01), [1.6 - 0.06 * min(e, 12) + 0.02 * max(e - 12, 0) for e in range(30)]
    lines = []
    for e, (t, v) in enumerate(zip(train, test, strict=True), 1):
        lines.append(f"2022-07-17 05:27:58 - train: epoch {e}, train_loss: {t:.4f}")
        lines.append(f"2022-07-17 05:28:05 - eval: epoch: {e}, acc1: {60 + e / 2:.3f}%, test_loss: {v:.4f}")
    run = parse_run("\n".join(lines))
    assert run.sources["val_acc"] == "val/acc1" and run.sources["val_loss"] == "test_loss"
    assert "overfitting" in [f.kind for f in detect(run)]


def test_a_stage_word_between_rules_of_stars_stages_the_readings_after_it():
    # UniMatch: `[… INFO] ***** Evaluation original ***** >>>> MeanIoU: 75.13`, once an epoch after its
    # training lines; its held-out score was read as a training one
    lines = []
    for e in range(20):
        lines.append(f"[2024-07-26 16:23:39,481][    INFO] ===========> Epoch: {e}, LR: 0.00001")
        lines.append(f"[2024-07-26 16:23:45,890][    INFO] Iters: 88, Total loss: {0.5 / (e + 1):.3f}")
        evaluation = f"***** Evaluation original ***** >>>> MeanIoU: {70 + e / 4:.2f}"
        lines.append(f"[2024-07-26 16:25:25,107][    INFO] {evaluation}")
    run = parse_run("\n".join(lines))
    assert run.sources["val_iou"] == "val/MeanIoU" and "train_iou" not in run.table


def test_a_name_alone_over_its_value_is_read_as_their_pair_under_each_stages_heading():
    # DeepChem's Tox21 notebook prints each reading in two print() calls, under `TRAIN:` and `TEST:`:
    # `RMSE:`, then `0.5319` on a line of its own. The numbers alone were read as one training loss
    # (RMSE and ROC AUC of both splits, four to an epoch)
    lines = []
    for e, (auc, rmse) in enumerate(zip(falling(12, 0.70, 0.86), falling(12, 0.53, 0.40), strict=True)):
        lines += [f"epoch: {e}", "TRAIN:", "RMSE:", f"{rmse:.8f}", "ROC AUC:", f"{auc:.8f}"]
        lines += ["TEST:", "RMSE:", f"{rmse + 0.02:.8f}", "ROC AUC:", f"{auc - 0.05:.8f}"]
    run = parse_run("\n".join(lines))
    assert len(run.table) == 12
    assert run.sources == {
        "train_rmse": "RMSE",
        "train_roc_auc": "ROC AUC",
        "val_rmse": "test/RMSE",
        "val_roc_auc": "test/ROC AUC",
    }
    assert run.table["val_rmse"].iloc[0] == 0.55 and run.table["train_roc_auc"].iloc[0] == 0.70
    # a name with no number under it stays as it was (a heading's words, `Loss:` over an epoch's line);
    # one over a column of numbers names them all, as it did; a whole number under it is a count or a
    # year, no reading (`Error:` over `2021`)
    text = "Loss:\nepoch 1 loss: 0.5\nepoch 2 loss: 0.4\nepoch 3 loss: 0.3"
    assert parse_run(text).table["train_loss"].tolist() == [0.5, 0.4, 0.3]
    column = [round(t, 4) for t in falling(10)]
    assert parse_run("loss:\n" + "\n".join(map(str, column))).table["train_loss"].tolist() == column
    text = "\n".join(f"epoch {e} loss: {t:.3f}\nError:\n2021" for e, t in enumerate(falling(10), 1))
    assert set(parse_run(text).metrics) == {"train_loss"}


def _imagenet_example(test_batches: list[int], total: int = 25) -> str:
    """The PyTorch ImageNet example's console (also timm's, Swin's, TLlib's): training progress lines,
    then each evaluation's progress lines with running averages in brackets and its summary line.
    The evaluation's loss falls each epoch (the averages), each batch's own loss does not."""
    lines = ["=> using pre-trained model 'resnet50'"]
    for e in range(8):
        for i in (0, 500):
            loss, average = 1.5 - 0.1 * e, 1.6 - 0.1 * e
            lines.append(f"Epoch: [{e}][{i:4d}/1000]\tTime 0.36 (0.38)\tLoss {loss:.2f} ({average:.2f})")
        for i in test_batches:
            batch = 0.05 if i % 2 else 0.9  # a batch of easy examples, then a hard one
            lines.append(f"Test: [{i:3d}/{total}]\tTime 0.27 (0.27)\tLoss {batch:.4e} ({1.4 - 0.08 * e:.4e})")
        lines.append(f" * Acc@1 {60 + 3 * e:.3f} Acc@5 90.000")
    return "\n".join(lines)


def test_an_evaluations_progress_lines_give_its_running_average_and_its_first_batch_alone_gives_none():
    # the held-out loss is the evaluation's running average (in brackets), not the last batch's loss
    run = parse_run(_imagenet_example([0, 10, 20]))
    assert run.table["val_loss"].dropna().round(2).tolist() == [round(1.4 - 0.08 * e, 2) for e in range(8)]
    # printed every 100 batches, an evaluation of 25 shows its first batch alone: that one batch is no
    # evaluation's loss (its summary's accuracy still is the held-out curve)
    run = parse_run(_imagenet_example([0]))
    assert "val_loss" not in run.metrics and run.table["val_acc"].dropna().tolist()[:2] == [60.0, 63.0]
    # an evaluation of one batch is the whole evaluation; a first batch with no summary after it is
    # all the log says of its evaluation: kept
    run = parse_run(_imagenet_example([0], total=1))
    assert "val_loss" in run.metrics
    run = parse_run("\n".join(line for line in _imagenet_example([0]).splitlines() if " * " not in line))
    assert "val_loss" in run.metrics
    # a negative batch value keeps its average (not the average with the batch's sign)
    run = parse_run(_imagenet_example([24]).replace("Loss 9.0000e-01 (", "Loss -5.0000e-01 ("))
    assert run.table["val_loss"].dropna().round(2).tolist()[0] == 1.4


def test_a_stages_dict_after_its_name_and_numbers_in_markdown_code_spans_are_read():
    # scGLUE's logger: `[Epoch 10] train={'g_nll': 0.45, …}, val={'g_nll': 0.46, …}` every ten epochs
    line = (
        "[INFO] SCGLUETrainer: [Epoch {}] train={{'g_nll': {:.3f}, 'vae_loss': {:.3f}}}, "
        "val={{'g_nll': {:.3f}, 'vae_loss': {:.3f}}}, 5.2s elapsed"
    )
    lines = [
        line.format(e, 0.5 - e / 1e3, 0.3 - e / 1e3, 0.52 - e / 1e3, 0.31 - e / 1e3)
        for e in range(10, 130, 10)
    ]
    run = parse_run("\n".join(lines))
    assert {"train_loss", "val_loss", "train_g_nll", "val_g_nll"} <= set(run.metrics) and len(run.table) == 12
    assert run.sources["val_loss"] == "val vae_loss"
    # a stage's dict of settings is no readings
    epochs = [f"Epoch {e}: loss={1.5 - e / 10:.2f}, val_loss={1.6 - e / 10:.2f}" for e in range(1, 9)]
    run = parse_run("\n".join(["config test={'step': 5000, 'seed': 1}", *epochs]))
    assert set(run.metrics) == {"train_loss", "val_loss"} and run.table["step"].isna().all()
    # a Markdown report written while training (CompGCN's): each reading in a code span
    md = ["### Running"] + [f"\t * loss `{300 / (e + 1):.4f}`, time `2021-11-10 08:21:54`" for e in range(12)]
    assert parse_run("\n".join(md)).table["train_loss"].round(1).tolist()[:3] == [300.0, 150.0, 100.0]


def test_a_stage_name_and_its_fraction_after_an_epochs_count_is_that_stages_loss():
    # Meta-Baseline's `epoch 3, train 0.4724|0.9235, tval 1.2235|0.7952, val 1.3145|0.7852, 2.7m`: each
    # stage's loss, then its unnamed accuracy (left); the whole log was refused as holding no metric.
    # DGCNN's `Train 3, loss: 1.85` keeps its count as the epoch, and a split's shares without an
    # epoch's count (`train 0.8, val 0.1, test 0.1`) are no readings
    train, val = falling(12, 0.80, 0.12), falling(12, 1.68, 0.69)
    lines = ["train 0.8, val 0.1, test 0.1"]
    lines += [
        f"epoch {e}, train {t:.4f}|0.9, tval {v + 0.1:.4f}|0.79, val {v:.4f}|0.78, 2.7m 2.7m/53.2m (@7)"
        for e, (t, v) in enumerate(zip(train, val, strict=True), start=1)
    ]
    t = parse_run("\n".join(lines)).table
    assert t["train_loss"].dropna().round(4).tolist() == [round(x, 4) for x in train]
    assert t["val_loss"].dropna().round(4).tolist() == [round(x, 4) for x in val]
    dgcnn_lines = [f"Train {e}, loss: {x:.4f}, train acc: 0.79" for e, x in enumerate(train, 1)]
    dgcnn = parse_run("\n".join(dgcnn_lines)).table
    assert dgcnn["epoch"].dropna().tolist() == list(range(1, 13))
    assert dgcnn["train_loss"].dropna().round(4).tolist() == [round(x, 4) for x in train]
    # a stage's lone reading beside a named loss may be its accuracy: no loss of its own
    accs = parse_run(
        "\n".join(f"epoch {e}, loss {x:.4f}, train 0.79, val 0.71" for e, x in enumerate(train, 1))
    )
    assert accs.table["train_loss"].dropna().round(4).tolist() == [round(x, 4) for x in train]
    assert "val_loss" not in accs.table
