"""Readings printed inside a holder or beside a counter the console reader would not take for one:
a list of one (MindSpore's `Train Loss: [2.341]`, PaddlePaddle's `loss: [0.63]`, MT-DNN's `Training
Loss - [1.64]` after `Updates - [ 500]`), a terminal's colour codes around names and values, an
epoch's average beside its last batch's reading, a share worked out after its counts, and the best
reading so far, which is a record of another curve, not one of its own."""

from __future__ import annotations

from assistant.runs import detect, parse_run
from assistant.runs.parse.readings import line_readings
from tests.run_helpers import falling


def test_a_reading_printed_as_a_list_of_one_is_read():
    # PaddlePaddle's hand-written loop: `loss: [0.63]` per batch and `val Loss [1.13] Accuray 0.5` per epoch
    lines = []
    pairs = zip(falling(12, 0.63, 0.2), falling(12, 1.13, 0.55), strict=True)
    for e, (t, v) in enumerate(pairs):
        lines.append(f"epoch {e} iter 0 loss: [{t:.7f}], accuracy 0.5")
        lines.append(f"epoch {e} val Loss [{v:.7f}] Accuray 0.5")
    run = parse_run("\n".join(lines))
    assert run.table["train_loss"].iloc[0] == 0.63 and run.table["val_loss"].dropna().iloc[0] == 1.13
    assert run.table["val_loss"].notna().sum() == 12


def test_a_list_of_one_after_a_dash_and_an_updates_counter():
    # MT-DNN: `Task - [ 0] Updates - [   500] Training Loss - [1.32204] Time Remaining - [4:25:55]`
    lines = [
        f"06/26/2020 08:19:40 - mtdnn.modeling_mtdnn - INFO - Task - [ 0] Updates - [{500 * i:>6}] "
        f"Training Loss - [{loss:.5f}] Time Remaining - [4:25:55]"
        for i, loss in enumerate(falling(20, 1.64, 0.4))
    ]
    # (a model's name with `-step-` in it, in a settings line, is no step)
    run = parse_run("loading TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T\n" + "\n".join(lines))
    assert run.table["step"].tolist()[:3] == [0.0, 500.0, 1000.0]
    assert run.table["train_loss"].iloc[0] == 1.64


def test_a_counter_or_a_settings_list_in_brackets_is_not_a_reading():
    # mmcv's `Epoch [3][100/500]` keeps its counters; yacs' dump of detectron2's settings
    # (`IOU_THRESHOLDS: [0.5]`, printed once per run) is no curve however many runs the log holds
    dump = "\n".join(["  ROI_HEADS:", "    IOU_THRESHOLDS: [0.5]", "    SCORE_THRESH_TEST: 0.05"] * 30)
    assert "train_iou_thresholds" not in parse_run(dump + "\nepoch 1 loss 0.5\nepoch 2 loss 0.4").metrics
    losses = falling(10, 1.2, 0.3)
    lines = [f"Epoch [{e}][100/500]\tlr: 1.0e-02, loss: {v:.3f}" for e, v in enumerate(losses, start=1)]
    run = parse_run("\n".join(lines))
    assert run.table["epoch"].tolist()[:2] == [1.0, 2.0] and run.table["train_loss"].iloc[0] == 1.2


def test_an_epoch_average_is_kept_over_the_last_batch_reading_on_its_row():
    # MindSpore's GoogLeNet: batch lines `Train Loss: [x]`, then `Average Train Loss: [y]` for the epoch
    lines = []
    for e, avg in enumerate(falling(15, 1.629, 0.1), 1):
        lines += [f"Epoch: [{e:3}/100], Steps: [{s:4}/1564], Train Loss: [{avg * (0.5 + s / 2000):.3f}]"
                  for s in (1, 501, 1001, 1501)]  # fmt: skip
        lines.append(f"Epoch: [{e:3}/100], Average Train Loss: [{avg:.3f}], Accuracy: [0.{50 + e}]")
    run = parse_run("\n".join(lines))
    assert run.sources["train_loss"] == "Average Train Loss"
    assert run.table["train_loss"].dropna().iloc[0] == 1.629


def test_readings_in_a_terminals_colours_are_read():
    # a Keras callback printing `\x1b[1mloss\x1b[0m = \x1b[94m3.091\x1b[0m; \x1b[1mval-loss\x1b[0m = …`
    def paint(name: str, v: float) -> str:
        return f"\x1b[1m{name}\x1b[0m = \x1b[94m{v:.3f}\x1b[0m"

    pairs = zip(falling(15, 3.09, 0.5), falling(15, 1.98, 0.76), strict=True)
    lines = [f"Epoch {e:2}/300: {paint('loss', t)}; {paint('val-loss', v)}" for e, (t, v) in enumerate(pairs)]
    run = parse_run("\x1b]0;jupyter\x07" + "\n".join(lines))
    assert run.table["train_loss"].iloc[0] == 3.09 and run.table["val_loss"].iloc[0] == 1.98
    assert run.table["val_loss"].notna().sum() == 15


def test_a_progress_bars_percentage_is_not_its_epoch_or_step():
    # BERT fine-tuning in a notebook: tqdm bars `Epoch:  50%|█████     | 1/2` and `Iteration:   0%|`
    # on stderr, the loss printed every ten iterations on a line of its own
    lines = []
    for epoch in range(2):
        lines.append(f"Epoch:  {50 * epoch}%|{'█' * 5 * epoch:10}| {epoch}/2 [00:00<?, ?it/s]")
        for i in range(0, 600, 10):
            lines.append(f"Iteration:  {i // 6}%|          | {i}/600 [00:22<2:27:47,  1.45s/it]")
            lines.append(f"Loss:{0.018 * 0.998 ** (i + 600 * epoch):.6f}")
    run = parse_run("\n".join(lines))
    assert run.table["train_loss"].notna().sum() == 120
    assert not (run.table["epoch"] > 2).any() and not (run.table["step"] < 10).any()


def test_paddles_batch_and_reader_costs_are_timings_not_an_averaged_loss():
    # PaddleSeg-style lines: `loss = 2.997/7.876 (last/avg) - avg_reader_cost: 0.00023 sec -
    # avg_batch_cost: 0.14044 sec` (an average named so is still a time, not the loss)
    lines = [
        f"bottle  Epoch {e} - iter:{e}/40 - lr:0.001 - loss = {v:.3f}/{v:.3f} (last/avg) - avg_reader_cost: "
        f"0.0002{e % 10} sec - avg_batch_cost: 0.1{e % 10} sec - avg_samples: 32 - avg_ips: 227.9 images/sec"
        for e, v in enumerate(falling(15, 12.7, 1.6), 1)
    ]
    run = parse_run("\n".join(lines))
    assert run.sources["train_loss"] == "loss" and run.table["train_loss"].iloc[0] == 12.7


def test_a_running_average_beside_the_raw_loss_does_not_hide_a_blow_up():
    # `step 4000 | loss 21.47 | avg loss 2.01`: the raw loss is the curve, the average lags behind it
    lines, avg = [], 0.0
    for i in range(1, 41):
        loss = 2.0 * 0.99**i if i < 33 else 2.0 * 1.5 ** (i - 32)
        avg = (avg * (i - 1) + loss) / i
        lines.append(f"step {100 * i} | loss {loss:.4f} | avg loss {avg:.4f}")
    run = parse_run("\n".join(lines))
    assert run.sources["train_loss"] == "loss" and detect(run)[0].kind == "diverged"


def test_a_share_worked_out_after_its_counts_reads_its_result():
    # Pointnet's segmentation logs: `Test Accuracy: 2427457/2555718 = 0.9498`, the count is no reading
    lines = []
    for e, (t, a) in enumerate(zip(falling(12, 0.9, 0.3), falling(12, 0.5, 0.9), strict=True)):
        lines += [
            f"Epoch {e + 1}",
            f"Training loss: {t:.4f}",
            f"Test Accuracy: {int(a * 1e6)}/1000000 = {a:.4f}",
        ]
    run = parse_run("\n".join(lines))
    acc = run.table["val_acc"]  # the test set is the held-out one here
    assert acc.max() <= 1 and acc.iloc[0] == 0.5


def test_an_epoch_announced_again_opens_a_new_print_of_its_readings():
    # a script whose epoch counter is stuck (Pointnet's `**** Epoch 1 (2/500) ****` each epoch), like
    # Keras' `Epoch 1/1` of fit() called in a loop: each announcement's readings are a point
    losses = falling(15, 0.9, 0.3)
    lines = []
    for i, t in enumerate(losses):
        lines += [
            f"**** Epoch 1 ({i + 1}/15) ****",
            f"Training loss: {t:.4f}",
            f"eval mean loss: {t + 0.1:.4f}",
        ]
    run = parse_run("\n".join(lines))
    assert len(run.table) == 15 and run.table["train_loss"].tolist() == [round(t, 4) for t in losses]
    # readings after it that the row does not hold yet still join the row (its validation line)
    staged = "\n".join(
        f"Epoch {e}\ntrain loss: {t:.3f}\nEpoch {e}\nval loss: {t + 0.1:.3f}" for e, t in enumerate(losses)
    )
    run = parse_run(staged)
    assert len(run.table) == 15 and run.table["val_loss"].notna().all()
    # an epoch's summary under its heading updates the row its progress bar named the epoch in
    barred = "\n".join(
        f"Epoch {e}: 100%|##| 48/48 [00:01<00:00, CE={t + 0.2:.3f}]\nEpoch {e}\n  Train - CE: {t:.4f}\n"
        f"  Val   - CE: {t + 0.05:.4f}"
        for e, t in enumerate(losses)
    )
    run = parse_run(barred)
    assert len(run.table) == 15 and run.table["train_loss"].tolist() == [round(t, 4) for t in losses]
    # another line naming the epoch (`Epoch 1 done, saving checkpoint`) is no announcement of it
    banner = "\n".join(
        f"Epoch {e}/15\nloss: {t:.3f}\nEpoch {e} done, saving\nloss: {t:.3f}" for e, t in enumerate(losses)
    )
    assert len(parse_run(banner).table) == 15


def test_the_best_so_far_is_no_reading_and_its_counter_is_not_the_lines():
    # Pointnet prints `Best Instance Accuracy: 0.41, Class Accuracy: 0.34` after each test line: a
    # running record, flat by design; without it the instance accuracy is the run's one curve
    lines = []
    for e, (t, v) in enumerate(zip(falling(20, 0.6, 0.05), falling(20, 0.6, 0.1), strict=True)):
        lines += [
            f"Epoch {e + 1} ({e + 1}/20):",
            f"Train Instance Accuracy: {1 - t:.4f}",
            f"Test Instance Accuracy: {1 - v:.4f}, Class Accuracy: {0.9 - v:.4f}",
            f"Best Instance Accuracy: {1 - v:.4f}, Class Accuracy: {0.9 - v:.4f}",
        ]
    run = parse_run("\n".join(lines))
    assert not any("best" in m for m in run.metrics) and "train_class_accuracy" not in run.metrics
    assert {"train_instance_accuracy", "val_instance_accuracy"} <= set(run.metrics)
    # detectron2's hook after an evaluation: `… MaP IoU is 0.177, better than last best score 0.063 @
    # iteration 241.`: the iteration is the old best's, and the rows logged since it stay
    lines = []
    for i, t in enumerate(falling(30, 2.0, 1.2)):
        lines.append(
            f"[04/12 20:46:50 d2.utils.events]:  eta: 2:05:44  iter: {20 * i + 19}  total_loss: {t:.3f}"
        )
        if i % 10 == 9:
            lines.append(
                "[04/12 20:46:27 d2.engine.defaults]: Evaluation results for sartorius_val in csv format:"
            )
            lines.append(f"[04/12 20:46:27 d2.evaluation.testing]: copypaste: MaP IoU={0.1 + i / 100:.4f}")
            score, old = f"{0.1 + i / 100:.4f}", f"{0.1 + i / 200:.4f}"
            lines.append(
                "[04/12 20:52:55 d2.engine.hooks]: Saved best model as latest eval score for MaP IoU is "
                f"{score}, better than last best score {old} @ iteration {20 * i - 180}."
            )
    run = parse_run("\n".join(lines))
    steps = run.table["step"].dropna()
    assert len(steps) == 30 and steps.is_monotonic_increasing
    # a line that only mentions a best keeps its readings, and its own epoch
    assert line_readings("best epoch: 3, val loss: 0.41, val acc: 0.9", None)[0] == {
        "val loss": 0.41,
        "val acc": 0.9,
    }
    text = "\n".join(
        f"{'New best model! ' * (e % 2)}Epoch {e + 1} loss: {t:.3f}" for e, t in enumerate(falling(8))
    )
    assert parse_run(text).table["epoch"].tolist() == list(range(1, 9))


def test_names_courses_and_papers_abbreviate_are_read():
    # Andrew Ng's courses: `Cost after epoch 5: 0.41` (the name, when it was read, its value)
    costs = falling(20, 1.9, 0.18)
    assert line_readings("Cost at iteration 100: 0.69", None)[0] == {"Cost": 0.69}
    run = parse_run("\n".join(f"Cost after epoch {5 * i}: {c:.6f}" for i, c in enumerate(costs)))
    assert run.table["train_loss"].tolist() == [round(c, 6) for c in costs]
    assert run.table["epoch"].diff().dropna().eq(5).all()  # its counter is the epoch
    # fast-bert's, after the logger's name: `Loss after epoch 0 - 0.1377`, `Loss after epoch 1 4.2544`
    prefix = "02/16/2019 13:14:01 - INFO - root -   "
    assert line_readings(f"{prefix}Loss after epoch 0 - 0.1377", None)[0] == {"Loss": 0.1377}
    # the RNN tutorial's counters written as settings, after the time: the loss, not `num_examples_seen`
    line = "2017-10-12 19:42:53: Loss after num_examples_seen=400 epoch=1: 7.720494"
    assert line_readings(line, None)[0] == {"Loss": 7.720494}
    text = "\n".join(
        f"2017-10-12 19:4{e}:00: Loss after num_examples_seen={400 * e} epoch={e}: {c:.6f}"
        for e, c in enumerate(falling(8, 8.99, 6.03))
    )
    run = parse_run(text)
    assert run.sources == {"train_loss": "Loss"} and run.table["epoch"].tolist() == list(range(1, 9))
    # the readings after the value stay (a heading `Loss at epoch 1` goes before they are read)
    assert line_readings("Loss at epoch 1: 2.0, val_loss=2.05", None)[0] == {"Loss": 2.0, "val_loss": 2.05}
    line = "Training at epoch 3: Loss after num_examples_seen=400 epoch=3: 0.51 accuracy=0.9 val_loss=0.6"
    assert line_readings(line, None)[0] == {"Loss": 0.51, "accuracy": 0.9, "val_loss": 0.6}
    # after a dash or a space, only a number that ends the line: the rest is prose
    for prose in ("Loss at step 100 - 12 files", "loss at epoch 3 50% done", "Error in step 1200 2 retries"):
        assert line_readings(prose, None)[0] == {}
    lines = [
        f"{prefix}Loss after epoch {e + 1} {t:.6f}\n{prefix}  eval_loss = {t + 0.2:.6f}"
        for e, t in enumerate(costs)
    ]
    assert parse_run("\n".join(lines)).sources == {"train_loss": "Loss", "val_loss": "eval_loss"}
    # a loop printing each stage's name alone beside its loss: `| train 0.256 | val 0.094 | lr 8e-05`
    line = "Epoch {e:>3}/60 | train {t:.5f} | val {v:.5f} | lr 8.33e-05"
    text = "\n".join(line.format(e=e + 1, t=t, v=t / 3) for e, t in enumerate(falling(20, 0.26, 0.075)))
    assert parse_run(text).sources == {"train_loss": "train loss", "val_loss": "val loss", "lr": "lr"}
    # Jeff Heaton's course: `tloss: 0.60, vloss: 0.54`; SincNet's `loss_tr` / `loss_te` (train / test)
    text = "\n".join(f"Epoch: {e}, tloss: {t:.4f}, vloss: {t - 0.05:.4f}" for e, t in enumerate(falling(12)))
    assert {"train_loss", "val_loss"} <= set(parse_run(text).metrics)
    text = "\n".join(
        f"epoch {8 * e}, loss_tr={t:.6f} err_tr={t / 6:.6f} loss_te={t + 0.4:.6f} err_te={t / 5:.6f}"
        for e, t in enumerate(falling(12, 5.5, 0.1))
    )
    assert {"train_loss", "val_loss", "train_err", "val_err"} <= set(parse_run(text).metrics)
    # TensorFlow Probability's VAE: `trn_loss:188.31   tst_loss:174.41` (train / test)
    text = "\n".join(
        f"it:{250 * i + 1:5d}   trn_loss:{t:.4f}   tst_loss:{t - 5:.4f}   tst_kl:7.75"
        for i, t in enumerate(falling(12, 570, 95))
    )
    assert parse_run(text).sources["val_loss"] == "tst_loss"


def test_a_rankings_metrics_at_k_and_a_stages_grouped_readings_are_read():
    # ReChorus: `Epoch 3  loss=0.41 [1.8 s]  dev=(HR@5:0.2797,NDCG@5:0.1831) test=(HR@5:0.24,NDCG@5:0.15)`
    lines = [
        f"INFO:root:Epoch {e + 1:<5} loss={t:.4f} [1.8 s]\t dev=(HR@5:{0.5 - t / 4:.4f},"
        f"NDCG@5:{0.4 - t / 4:.4f}) test=(HR@5:{0.45 - t / 4:.4f},NDCG@5:{0.35 - t / 4:.4f}) [0.6 s]"
        for e, t in enumerate(falling(15, 0.66, 0.03))
    ]
    run = parse_run("\n".join(lines))
    assert {"val_ndcg_5", "test_ndcg_5"} <= set(run.metrics) and "train_ndcg_5" not in run.metrics
    assert run.sources["val_ndcg_5"] == "dev NDCG@5"
    # HR@10, top@1 and mAP@0.5 are metrics; COCO's `mAP@0.5:0.95` is no name with a value inside it
    assert line_readings("HR@10: 0.61 top@1: 0.7 loss: 0.2", None)[0] == {
        "HR@10": 0.61,
        "top@1": 0.7,
        "loss": 0.2,
    }
    assert line_readings("mAP@0.5: 0.61, mAP@0.5:0.95: 0.42", None)[0] == {"mAP@0.5": 0.61}
    # XNN's `検証: epoch=3 train={MAE=22.4% RMSE=33.0% Acc=84.8%} test={…}`: braces, `=`, percentages
    xnn = [
        f"検証: epoch={e + 1} train={{MAE={t:.1f}% RMSE={t + 10:.1f}% Acc={100 - t / 2:.1f}%}} "
        f"test={{MAE={t + 3:.1f}% RMSE={t + 14:.1f}% Acc={98 - t / 2:.1f}%}}"
        for e, t in enumerate(falling(10, 24, 7))
    ]
    run = parse_run("\n".join(xnn))
    assert {"train_rmse", "val_rmse", "train_acc", "val_acc"} <= set(run.metrics)
    assert run.table["val_rmse"].iloc[-1] > run.table["train_rmse"].iloc[-1]
    # settings grouped under a stage's name are no stage's readings
    assert line_readings("config: train={lr=0.1 batch_size=32 epochs=100}", None)[0] == {"lr": 0.1}
    # a dict printed after a stage's name (quotes inside) is read as the dict it is
    assert line_readings("train={'loss': 0.3}", None)[0] != {}


def test_a_step_printed_alone_before_a_keras_fit_holds_no_record_past_the_next_epoch():
    # Python Machine Learning's RNN chapter: a demo prints `Time step 2 =>` and its hidden state, then
    # a Keras fit prints `Epoch 1/10` and its lines; the step held every epoch's readings in one record
    # (the notebook was refused as holding no curve)
    lines = ["Time step 2 =>", "   Hidden          : [[1.243921  2.8803642]]", ""]
    for e in range(1, 11):
        loss = 0.70 - 0.02 * e
        lines += [
            f"Epoch {e}/10",
            f"625/625 [==============================] - 225s 361ms/step - loss: {loss:.4f} - "
            f"accuracy: 0.5 - val_loss: {loss + 0.01:.4f} - val_accuracy: 0.5",
        ]
    run = parse_run("\n".join(lines))
    assert run.table["epoch"].tolist() == list(range(1, 11))
    assert run.table["val_loss"].iloc[-1] == 0.51


def test_readings_printed_as_name_value_pairs_are_read():
    # PFRL's and ChainerRL's training loop: `statistics: [('average_q', 0.03), ('average_loss', 0.5)]`
    # after the episode's return; a script printing an OrderedDict's repr likewise
    stats = "[('average_q', {q:.4f}), ('average_loss', {loss:.4f})]"
    lines = [
        f"episode: {10 * i} R: {10 + i}.0 statistics: " + stats.format(q=0.03 * i, loss=loss)
        for i, loss in enumerate(falling(20, 0.5, 0.1), start=1)
    ]
    run = parse_run("\n".join(lines))
    assert run.table["train_loss"].tolist()[:2] == [0.5, round(falling(20, 0.5, 0.1)[1], 4)]
    assert run.table["step"].tolist()[:2] == [10.0, 20.0]
    ordered = [f"epoch {e} OrderedDict([('loss', {t:.4f}), ('val_loss', {t + 0.1:.4f})])" for e, t in
               enumerate(falling(12, 0.9, 0.3), start=1)]  # fmt: skip
    run = parse_run("\n".join(ordered))
    assert run.table["val_loss"].iloc[0] == 1.0 and len(run.table) == 12


def test_the_same_count_announced_in_each_epoch_holds_no_record_across_epochs():
    # a speech-emotion notebook's loop: `Epoch 0: iteration 106/107` (its last batch, the same count
    # every epoch), then `Epoch 0 --- loss:3.199, Epoch accuracy:22.55%, Validation loss:2.501, …`;
    # every epoch's readings were written over the first epoch's row (the log was refused)
    lines = []
    for e, t in enumerate(falling(12, 3.2, 0.2)):
        lines += [
            f"Epoch {e}: iteration 106/107",
            f"Epoch {e} --- loss:{t:.3f}, Epoch accuracy:{20 + e}.55%, Validation loss:{t + 0.4:.3f}, "
            f"Validation accuracy:{13 + e}.75%",
        ]
    run = parse_run("\n".join(lines))
    assert len(run.table) == 12 and run.table["val_loss"].iloc[-1] == round(
        falling(12, 3.2, 0.2)[-1] + 0.4, 3
    )
