"""Readings printed the way evaluation code prints them rather than as `name: value` pairs: a name
that says when it was read after a logger's level (the RotatE codebase's `INFO     Training average
loss at step 100: 0.678`), a speech recogniser's error rate as Kaldi's scoring prints it (`%WER 8.70%
[ 4572 / 52576, … ]`, under `# epoch N`), and a metric with a cut-off in its name (mmpose's
`pck/PCK@0.05: 0.43`). Each was unread, and its log refused as holding no curve."""

from __future__ import annotations

from assistant.runs import detect, parse_run
from assistant.runs.parse.readings import line_readings
from tests.run_helpers import falling


def test_a_reading_named_at_its_step_after_a_loggers_level_is_read():
    # prose after the level is not: its number does not end the line
    for prose in ("Loss in epoch 3: 12 batches skipped", "Reducing lr in epoch 10: 0.001 -> 0.0001"):
        assert line_readings(f"2022-01-01 10:00:00 INFO  {prose}", None)[0] == {}
    loss, mrr = falling(30, 0.70, 0.19), falling(10, 0.99, 0.66)
    lines = []
    for i, v in enumerate(loss):
        stamp = f"2022-05-17 22:{i // 60:02d}:{i % 60:02d} INFO     "
        lines.append(f"{stamp}Training average positive_sample_loss at step {100 * i}: {v + 0.01:.6f}")
        lines.append(f"{stamp}Training average loss at step {100 * i}: {v:.6f}")
        if i % 3 == 0:
            lines.append(f"{stamp}Evaluating on Valid Dataset...")
            lines.append(f"{stamp}Valid MRR at step {100 * i}: {1 - mrr[i // 3]:.6f}")
    run = parse_run("\n".join(lines))
    assert run.sources["train_loss"] == "Training average loss"
    assert run.table["train_loss"].dropna().round(6).tolist() == [round(v, 6) for v in loss]
    assert run.table["val_mrr"].dropna().size == 10
    assert run.table["step"].dropna().iloc[-1] == 2900
    assert [f.kind for f in detect(run)] == ["healthy"]


def test_kaldi_style_error_rates_under_their_epoch_headings_are_read():
    wer = falling(10, 28.8, 14.6)
    lines = []
    for e, w in enumerate(wer):
        lines += [f"# epoch {e}", f"2021-02-12 17:15:21,695 INFO [ctc_decode.py:182] %WER {w:.2f}% "]
        lines[-1] += f"[{int(w * 644)} / 64428, 1612 ins, 2177 del, 14763 sub ]"
        lines.append("")
    run = parse_run("```\n" + "\n".join(lines) + "```\n")
    epochs = run.table["epoch"].dropna()
    assert epochs.size == 10 and epochs.is_monotonic_increasing and epochs.is_unique
    assert run.table["train_wer"].dropna().round(2).tolist() == [round(w, 2) for w in wer]
    # the rate with its counts in brackets after it, as Kaldi's scoring prints it; a flag or prose is none
    assert line_readings("%WER 8.70 [ 4572 / 52576, 702 ins, 395 del, 3475 sub ]", None)[0] == {"WER": 8.7}
    assert line_readings("compute_wer 1", None)[0] == line_readings("WER 5 utterances skipped", None)[0] == {}


def test_a_metric_with_a_decimal_cut_off_in_its_name_is_read_as_held_out():
    pck = [0.009, 0.16, 0.20, 0.25, 0.30, 0.32, 0.29, 0.34, 0.35, 0.31, 0.34, 0.36]
    lines = [
        f"09/15 12:42:{e:02d} - mmengine - INFO - Epoch(val) [{e + 1}][2/2]  pck/PCK@0.05: {p:.6f}"
        for e, p in enumerate(pck)
    ]
    run = parse_run("\n".join(lines))
    [name] = [m for m in run.metrics if "pck" in m]
    assert name.startswith("val_") and run.sources[name] == "val/pck/PCK@0.05"
    assert run.table[name].dropna().tolist() == pck
    # COCO's `mAP@0.5:0.95` (`mAP@0.5:.95`) is still no name with a reading inside it, and a whole
    # cut-off is read right before its colon (`HR@10:0.30`)
    assert line_readings("mAP@0.5:0.95: 0.42 mAP@0.5:.95: 0.4", None)[0] == {}
    assert line_readings("HR@10:0.3012 NDCG@10:0.1523", None)[0] == {"HR@10": 0.3012, "NDCG@10": 0.1523}
