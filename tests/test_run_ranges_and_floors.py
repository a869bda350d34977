"""Readings named by a range of cut-offs (mmaction2's `mAP/v_map_0.05:0.45: 55.1`), a Kaggle table
whose stage names its loss column, a settings object that counts epochs; and underfitting not said of
a run whose held-out accuracy is perfect or whose held-out error falls while a loss with a floor
hardly moves. Each with the near misses the rule must leave alone."""

from __future__ import annotations

from assistant.runs import detect, parse_run
from assistant.runs.parse.lines import pairs
from assistant.runs.parse.readings import line_readings
from tests.run_helpers import falling


def test_a_name_with_a_range_of_cut_offs_keeps_its_range():
    line = "Epoch(val) [3][120/120] mAP/frameAP: 59.55 mAP/v_map_0.05:0.45: 50.0 mAP/v_map_0.50:0.95: 19.1"
    read = {m.group(1): float(m.group(2)) for m in pairs(line)}
    assert read == {"mAP/frameAP": 59.55, "mAP/v_map_0.05:0.45": 50.0, "mAP/v_map_0.50:0.95": 19.1}
    # a full stop after a reading still ends it
    stopped = pairs("Epoch 0. Current Loss: 0.4888. train accu: 0.84.")
    assert [m.group(2) for m in stopped] == ["0.4888", "0.84"]
    # a single cut-off still reads, and COCO's range after `@` is still no name
    assert {m.group(1) for m in pairs("HR@10:0.30 Acc@1:76.1 mAP@0.5:0.95: 40.1")} == {"HR@10", "Acc@1"}


def test_held_out_scores_falling_after_the_first_evaluation_are_read_as_overfitting():
    frame_ap = [69.3, 64.3, 59.6, 57.6, 53.1, 50.7, 52.8, 51.3]
    v_map = [55.1, 50.0, 50.0, 50.0, 40.0, 35.0, 40.7, 40.0]
    lines = []
    for e, (train, a, b) in enumerate(zip(falling(8, 0.47, 0.28), frame_ap, v_map, strict=True)):
        for i in (20, 40, 60):
            lines.append(f"Epoch(train) [{e + 1}][{i}/60] lr: 1.0e-02 loss: {train * (1.1 - i / 300):.4f}")
        lines.append(
            f"Epoch(val) [{e + 1}][120/120] mAP/frameAP: {a} mAP/v_map_0.05:0.45: {b} data_time: 0.07"
        )
    run = parse_run("\n".join(lines))
    assert not any(
        set(run.table[c].dropna()) == {0.45} for c in run.metrics
    )  # no range's end read as a score
    assert "overfitting" in {f.kind for f in detect(run)}


def test_a_stage_named_over_its_scores_heads_that_stages_loss():
    head = "rate     iter   epoch  | valid   top@1    top@5    map@5  | train    top@1    map@5 |  time"
    rows = [
        f"0.00030  {i / 10:.2f} k  {i / 12:.2f}  | {v:.3f}    30.9    31.1    {0.31 + i / 1000:.4f} | "
        f"{t:.3f}    {40 + i}.0    {0.4 + i / 100:.3f} |  0 hr {i:02d} min"
        for i, (v, t) in enumerate(
            zip(falling(30, 1.6, 1.4) + [1.6 + k / 10 for k in range(10)], falling(40, 1.6, 0.2), strict=True)
        )
    ]
    run = parse_run("\n".join([head, "-" * 80, *rows]))
    assert run.sources["val_loss"].startswith("valid") and run.sources["train_loss"].startswith("train")
    assert run.table["val_loss"].dropna().iloc[-1] > 2.4  # the first number under `valid`, not a score
    assert "overfitting" in {f.kind for f in detect(run)}


def test_settings_that_count_epochs_beside_rates_alone_are_no_epoch():
    settings = "INFO: {'name': 'adam', 'beta1': 0.01, 'g_lr': 1.5e-05, 'd_lr': '6e-5', 'epochs': 10}"
    assert line_readings(settings, None)[1] == {}
    # a record of the epoch it is at, with its readings, keeps its epoch
    assert line_readings("{'loss': 0.5, 'learning_rate': 1e-05, 'epoch': 3}", None)[1] == {"epoch": 3.0}


def _keras(train: list[float], val: list[float], **more: list[float]) -> str:
    n = len(train)
    lines = []
    for e in range(n):
        extra = "".join(f" - {k}: {v[e]:.4f}" for k, v in more.items())
        lines += [
            f"Epoch {e + 1}/{n}",
            f"10/10 [====] - 1s - loss: {train[e]:.4f} - val_loss: {val[e]:.4f}{extra}",
        ]
    return "\n".join(lines)


def test_a_held_out_error_that_falls_says_the_model_learns_where_a_floored_loss_hardly_moves():
    # a cross-entropy on soft targets cannot fall below their entropy: 0.265 -> 0.225 is most of what
    # there is to learn, and the RMSE beside it says so
    text = _keras(
        falling(40, 0.265, 0.225), falling(40, 0.259, 0.236), rmse=falling(40, 0.13, 0.072),
        val_rmse=falling(40, 0.124, 0.082),
    )  # fmt: skip
    assert [f.kind for f in detect(parse_run(text))] == ["healthy"]
    # without the error beside it, the same loss still reads as learning too little
    assert "underfitting" in {
        f.kind for f in detect(parse_run(_keras(falling(40, 0.265, 0.225), falling(40, 0.259, 0.236))))
    }


def test_a_held_out_accuracy_near_its_best_from_the_start_is_no_underfitting():
    lines = []
    acc = [1.0, 1.0, 1.0, 0.5, 0.7, 0.7, 0.8, 0.9, 0.9, 0.9]
    for e, (loss, a) in enumerate(
        zip([0.42, 0.31, 0.22, 0.29, 0.30, 0.30, 0.55, 0.79, 0.47, 0.35], acc, strict=True)
    ):
        lines.append(f"Epoch(train) [{e + 1}][8/8] lr: 1.0e-02 loss: {loss:.4f} top1_acc: 1.0000")
        lines.append(f"Epoch(val) [{e + 1}][3/3] acc/top1: {a:.4f} acc/mean1: {a:.4f}")
    assert "underfitting" not in {f.kind for f in detect(parse_run("\n".join(lines)))}


def test_the_near_misses_of_these_rules_read_as_before():
    # a long run of digits after a name and a colon is read in linear time (a quadratic split of it
    # took minutes on a line of 100,000 characters), and a value glued to a colon still reads
    assert [m.group(1) for m in pairs("seed1:" + "7" * 20000)] == ["seed1"]
    assert {m.group(1): m.group(2) for m in pairs("loss: 1.5e-3:2 acc: 90:10")} == {
        "loss": "1.5e-3",
        "acc": "90",
    }
    # a stage's cell of scores with no number to spare holds no loss
    head = "epoch | train loss | valid  acc  f1 | time"
    rows = [f"{e} | {1 / e:.3f} | {0.5 + e / 100:.3f}  {0.4 + e / 100:.3f} | 0 min" for e in range(1, 31)]
    assert "val_loss" not in parse_run("\n".join([head, *rows])).table
    # a rate-only record keeps its own counters beside the count of epochs
    assert line_readings("{'step': 300, 'epochs': 10, 'lr': 0.01}", None)[1] == {"step": 300.0}
    assert line_readings("{'epoch': 3, 'epochs': 10, 'lr': 0.01}", None)[1] == {"epoch": 3.0}


def test_a_run_stuck_at_chance_on_imbalanced_classes_or_beside_its_perplexity_still_underfits():
    flat = [0.326 + 0.002 * ((e * 7) % 3 - 1) for e in range(40)]
    held = [0.325 + 0.002 * ((e * 5) % 3 - 1) for e in range(40)]
    chance = [0.900 + 0.002 * ((e * 3) % 3 - 1) for e in range(40)]  # 90% is the majority class
    assert "underfitting" in {f.kind for f in detect(parse_run(_keras(flat, held, val_accuracy=chance)))}
    loss, val = falling(40, 4.62, 4.52), falling(40, 4.63, 4.50)
    ppl = [2.718281828**v for v in val]  # the exponent of the loss: no news of learning
    assert "underfitting" in {f.kind for f in detect(parse_run(_keras(loss, val, val_ppl=ppl)))}
