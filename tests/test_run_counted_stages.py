"""Where a console line says its stage beside its counters rather than first: PyHealth's Trainer
(`--- Eval epoch-0, step-241 ---` above one reading a line), gru-svm's `step [100] validation --
loss : …`, Python logging's basic format (`INFO:dkt log:EVAL  Epoch: 10 Loss: …`), and a final test
summary under a heading with a remark (`Test Set Performance (NO code_mapping)`). Each of these was
read as training's, which called an overfitting run diverged, underfitting or healthy."""

from __future__ import annotations

import numpy as np

from assistant.runs import detect, parse_run
from tests.run_helpers import falling


def _pyhealth(train: list[float], val: list[float], steps: int = 241) -> str:
    lines = ["Training:", "Epoch 0 / 20:   0%|          | 0/241 [00:00<?, ?it/s]"]
    for e, (t, v) in enumerate(zip(train, val, strict=True)):
        step = (e + 1) * steps
        lines += [f"--- Train epoch-{e}, step-{step} ---", f"loss: {t:.4f}"]
        lines.append("Evaluation: 100%|██████████| 29/29 [00:02<00:00, 11.51it/s]")
        lines += [f"--- Eval epoch-{e}, step-{step} ---", "roc_auc: 0.6141", "accuracy: 0.8856"]
        lines.append(f"loss: {v:.4f}")
        lines += [f"New best roc_auc score (0.6141) at epoch-{e}, step-{step}", ""]
    lines += ["Loaded best model", "=" * 50, "Test Set Performance (NO code_mapping)", "=" * 50]
    lines += ["roc_auc: 0.6292", "accuracy: 0.8816", "loss: 0.3475"]
    return "\n".join(lines)


def test_pyhealth_evaluations_under_their_headings_are_held_out_and_the_test_summary_is_no_training_loss():
    train = falling(20, 0.39, 0.02)
    val = [*falling(4, 0.36, 0.33), *(0.33 + 0.05 * i for i in range(1, 17))]  # turns up from epoch 4
    run = parse_run(_pyhealth(train, val))
    t = run.table
    assert t["train_loss"].dropna().round(4).tolist() == [round(v, 4) for v in train]
    assert t["val_loss"].dropna().round(4).tolist() == [round(v, 4) for v in val]
    assert t["step"].dropna().iloc[-1] == 20 * 241
    assert t["test_loss"].dropna().tolist() == [0.3475]  # the final test, not a last training reading
    assert [f.kind for f in detect(run)] == ["overfitting"]


def test_a_hyphenated_counter_is_read_only_where_it_stands_as_a_word():
    lines = [f"iter {100 * i} | loss: {v:.3f} | from runs/epoch-7.pt" for i, v in enumerate(falling(8))]
    run = parse_run("\n".join(lines))
    assert run.table["epoch"].isna().all() and run.table["step"].tolist() == [100.0 * i for i in range(8)]


def test_a_stage_after_the_counter_stages_the_line():
    # gru-svm (TensorFlow 1): `step [100] train -- loss : …` and `step [100] validation -- loss : …`
    lines = []
    for i, (t, v) in enumerate(zip(falling(30, 230.0, 20.0), falling(30, 260.0, 60.0), strict=True)):
        lines.append(f"step [{100 * i}] train -- loss : {t:.4f}, accuracy : 0.82421875")
        lines.append(f"step [{100 * i}] validation -- loss : {v:.4f}, accuracy : 0.4453125")
    t = parse_run("\n".join(lines)).table
    assert t["val_loss"].dropna().round(4).tolist() == [round(v, 4) for v in falling(30, 260.0, 60.0)]
    assert t["train_loss"].dropna().round(4).tolist() == [round(v, 4) for v in falling(30, 230.0, 20.0)]
    # the stage word that begins a reading's own name is that name's, as before
    lines = [f"Epoch {e} val loss: {v:.3f} loss: {v / 2:.3f}" for e, v in enumerate(falling(9))]
    run = parse_run("\n".join(lines))
    assert {"train_loss", "val_loss"} <= set(run.metrics)


def test_python_loggings_basic_format_leaves_the_message_first():
    # `%(levelname)s:%(name)s:%(message)s`, a logger named with a space and a level of its own
    train, val = falling(30, 0.66, 0.45), [*falling(12, 0.66, 0.6), *(0.6 + 0.004 * i for i in range(1, 19))]
    lines = []
    for e, (t, v) in enumerate(zip(train, val, strict=True), 1):
        prefix = "Level 25:dkt log:" if e % 2 else "INFO:dkt log:"
        lines.append(f"{prefix}TRAIN Epoch: {10 * e} Loss: {t:.6f}")
        lines.append(f"{prefix}EVAL  Epoch: {10 * e} Loss: {v:.6f}")
    run = parse_run("\n".join(lines))
    assert run.table["val_loss"].dropna().round(6).tolist() == [round(v, 6) for v in val]
    assert "overfitting" in [f.kind for f in detect(run)]
    # a level, then a reading's name or a stage, is no logger's name: the message keeps it
    run = parse_run("\n".join(f"INFO:Train: loss: {t:.3f}, Loss:{t:.3f}" for t in falling(8)))
    assert "train_loss" in run.metrics


def test_a_ruled_heading_that_counts_epochs_opens_each_epochs_record():
    # Tricks-of-Semi-supervisedDeepLearning: `------ Training epochs: 0 ------`, a line every 20 batches
    # (`[train][20 ] lloss: …`, the labelled loss run into its name), then the epoch's sums
    # (`>>>[train] lloss: …`, `>>>[test] lloss: …`): one row an epoch, of its sums. Without the heading's
    # epoch the batches' and the sums' readings made one curve, spiking 100-fold at every epoch's end.
    train, val = falling(30, 576.0, 1.6), falling(30, 228.0, 31.0)
    lines = ["Namespace(arch='cnn13', epochs=400, lr=0.1)"]
    for e, (t, v) in enumerate(zip(train, val, strict=True)):
        lines.append(f"------ Training epochs: {e} ------")
        lines += [f"[train][{i:<3}] lloss: {t / 250:.5f}\tuloss: 0.00087\tlacc: 24%" for i in (20, 40, 60)]
        lines.append(f">>>[train] lloss: {t:.5f}\tuloss: 1.16511\tlacc: 57.816%")
        lines.append(f">>>[test] lloss: {v:.5f}\tlacc: 46.850%")
    run = parse_run("\n".join(lines))
    assert run.table["train_loss"].dropna().round(5).tolist() == [round(t, 5) for t in train]
    assert run.table["val_loss"].dropna().round(5).tolist() == [round(v, 5) for v in val]
    assert [f.kind for f in detect(run)] == ["healthy"]


def test_what_only_looks_like_a_counter_a_stage_or_a_heading_reads_as_before():
    # found by a review of the readings above, each read as before them:
    # a counter inside a checkpoint's or a folder's name, after each Keras epoch
    lines, val = [], [*falling(15, 2.1, 0.8), 0.82, 0.85, 0.88, 0.9, 0.93]
    for e, (t, v) in enumerate(zip(falling(20), val, strict=True), 1):
        lines += [f"Epoch {e}/20", f"100/100 [======] - 3s 30ms/step - loss: {t:.4f} - val_loss: {v:.4f}"]
        lines.append(f"Loading best weights from ckpt/model-epoch-{min(e, 12)} and data/step-2000")
    run = parse_run("\n".join(lines))
    assert len(run.table) == 20 and "overfitting" in [f.kind for f in detect(run)]
    # a settings line between rules, and a logger whose name holds a stage word
    lines = ["------ epochs: 100 ------", "==== Max epochs: 100 ===="]
    for e, v in enumerate(falling(10), 1):
        lines += [f"INFO:root:Epoch {e} loss={v:.4f} acc=0.6", f"INFO:on val:acc=0.66 loss={v + 0.1:.4f}"]
    run = parse_run("\n".join(lines))
    assert run.table["epoch"].dropna().tolist() == [float(e) for e in range(1, 11)]
    assert run.table["train_loss"].dropna().round(4).tolist() == [round(v, 4) for v in falling(10)]
    # a heading whose remark says the evaluation did not run stages nothing
    for remark in ("no test set", "deactivated", "Validation set empty, skipping", "N/A", "failed"):
        run = parse_run("\n".join([f"==== Test ({remark}) ====", *(f"loss: {v:.4f}" for v in falling(8))]))
        assert run.metrics == ["train_loss"], remark


def test_fairseqs_valid_on_a_subset_cell_is_held_out():
    # fairseq's (and NaturalCC's) simple log: `epoch 006 | valid on 'valid' subset | loss 1.31 | …` below
    # the epoch's training summary; the held-out subset may be named 'test'. Read as training's, the
    # validation loss turning at epoch 24 was the training loss "climbing": diverged
    train = falling(30, 36.4, 0.9)
    val = [*falling(12, 20.1, 6.5), *(6.5 + 0.2 * i for i in range(1, 19))]
    lines = []
    for e, (t, v) in enumerate(zip(train, val, strict=True), start=1):
        head = f"[2021-03-22 14:00:17]    INFO >> epoch {e:03d} |"
        lines.append(f"{head} loss {t:.3f} | ppl {2**t:.4g} | num_updates {868 * e} | lr 0.0001")
        subset = "valid" if e % 2 else "test"
        lines.append(f"{head} valid on '{subset}' subset | loss {v:.3f} | bleu 11.37 | num_updates {868 * e}")
    run = parse_run("\n".join(lines))
    assert run.table["train_loss"].dropna().round(3).tolist() == [round(v, 3) for v in train]
    assert run.table["val_loss"].dropna().round(3).tolist() == [round(v, 3) for v in val]
    assert [f.kind for f in detect(run)] == ["overfitting"]
    # a cell that only mentions a subset in prose is no stage
    prose = parse_run(
        "\n".join(f"epoch {e} | loss {t:.3f} | kept on 'valid' set" for e, t in enumerate(train))
    )
    assert "val_loss" not in prose.table


def test_a_word_and_its_comma_between_a_counter_and_its_stage():
    # RAT-SQL's `[time] Step 50 stats, val: loss = 29.9` beside `Step 50 stats, train: loss = 24.5`
    # and per-step `Step 10: loss=106.2`: the validation loss was read as training's
    lines = []
    for i, (t, v) in enumerate(zip(falling(12, 160.0, 4.0), falling(12, 195.0, 9.0), strict=True)):
        lines.append(f"[2021-07-26T10:26:02] Step {50 * i} stats, train: loss = {t:.3f}")
        lines.append(f"[2021-07-26T10:26:08] Step {50 * i} stats, val: loss = {v:.3f}")
        lines.append(f"[2021-07-26T10:26:15] Step {50 * i}: loss={0.9 * t:.4f}")
    t = parse_run("\n".join(lines)).table
    assert t["val_loss"].dropna().round(3).tolist() == [round(v, 3) for v in falling(12, 195.0, 9.0)]
    assert len(t["train_loss"].dropna()) == 24
    # any other word and comma is no summary of a stage: `Epoch 5 completed, val: …` reads on as training
    done = parse_run(
        "\n".join(f"Epoch {e} completed, val: 2.2 | loss: {x:.3f}" for e, x in enumerate(falling(12)))
    )
    assert "val_loss" not in done.table and len(done.table["train_loss"].dropna()) == 12


def test_siammasks_validation_after_the_epoch_and_the_batch_it_counts_is_held_out():
    # pysot's logger (`[time-rk0-file.py#line] `, SiamMask's and its forks') before the training lines
    # `Epoch: [5][70/717] lr: … siammask_loss: 1.52 (1.54)` and, every fifth epoch, the evaluation's
    # `Epoch: [5][10/29] Validation: … siammask_loss: 2.30 (2.34)`: the evaluation was read as the
    # training loss, eight spikes called unstable, and the validation loss that turns up never seen
    train, val = falling(48, 3.5, 1.0), [2.34, 2.30, 2.24, 2.29, 2.32, 2.44, 2.42, 2.42, 2.46]
    prefix = "[2019-08-14 20:59:26,795-rk0-trainval_siamrcnn.py#{line}] "
    lines = [prefix.format(line=201) + "Namespace(arch='', batch=64, clip=10.0, epochs=200, lr=0.001)"]
    for e, t in enumerate(train, 1):
        for b in (10, 700):
            lines.append(
                prefix.format(line=389) + f"Epoch: [{e}][{b}/717] lr: 0.001000\tbatch_time: 1.45 (1.30)\t"
                f"kp_loss: {t / 2:.6f} ({t / 2:.6f})\tsiammask_loss: {t:.6f} ({t:.6f})"
            )
        if e % 5 == 4:
            lines.append(prefix.format(line=401) + f"val epoch:{e}")
            v = val[e // 5]
            for b in (10, 20):
                lines.append(
                    prefix.format(line=463)
                    + f"Epoch: [{e + 1}][{b}/29] Validation:\tbatch_time: 0.43 (1.40)\t"
                    f"kp_loss: {v / 2:.6f} ({v / 2:.6f})\tsiammask_loss: {v:.6f} ({v:.6f})"
                )
    run = parse_run("\n".join(lines))
    assert run.table["train_siammask_loss"].max() == round(train[0], 6)  # no evaluation among them
    assert run.table["val_siammask_loss"].dropna().round(6).tolist() == val
    assert "overfitting" in [f.kind for f in detect(run)]


def test_pytrackings_tag_of_stage_epoch_and_batch_is_read_as_them():
    # pytracking's trainer (OSTrack's, ViPT's, STARK's) opens each line with `[train: 3, 50 / 468]` or
    # `[val: 3, 50 / 78]`, its readings the epoch's averages so far: no epoch was read, and the
    # validation lines were read as training's, six hundred rows of both
    train, val = falling(20, 0.21, 0.07), falling(20, 0.16, 0.06)
    stats = "FPS: 95.1 (93.6)  ,  DataTime: 0.171 (0.060)  ,  Loss/total: {v:.5f}  ,  IoU: 0.69"
    lines = []
    for e, (t, v) in enumerate(zip(train, val, strict=True), 1):
        lines += [
            f"[train: {e}, {b} / 468] " + stats.format(v=t * (1 + 0.1 * (468 - b) / 468)) for b in (50, 468)
        ]
        lines += [f"[val: {e}, {b} / 78] " + stats.format(v=v) for b in (50, 78)]
    run = parse_run("\n".join(lines))
    assert run.table["epoch"].tolist() == [float(e) for e in range(1, 21)]
    assert np.allclose(run.table["train_loss"], np.round(train, 5))
    assert np.allclose(run.table["val_loss"], np.round(val, 5))
