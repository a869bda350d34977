"""Gradient boosting consoles (XGBoost, LightGBM, CatBoost), each laid out as the library prints it: a
boosting round per line, the data sets named by the library's own conventions. Read into training
and held-out curves with the round as the step, and judged like any other run."""

from __future__ import annotations

import numpy as np

from assistant.runs import detect, parse_run
from tests.run_helpers import falling


def _overfit(n: int, low: float = 0.30, at: int = 40) -> list[float]:
    """A held-out loss that falls to `low` by round `at`, then climbs as the trees memorise."""
    return [low + 0.4 * np.exp(-i / 8) + max(0, i - at) * 0.004 for i in range(n)]


def test_xgboost_native_watchlist_reads_train_and_eval_and_sees_the_held_out_loss_turn_up():
    train, val = falling(80, 0.69, 0.05), _overfit(80)
    rounds = enumerate(zip(train, val, strict=True))
    text = "\n".join(f"[{i}]\ttrain-logloss:{t:.5f}\teval-logloss:{v:.5f}" for i, (t, v) in rounds)
    run = parse_run(text)
    assert run.fmt == "console" and len(run.table) == 80 and run.table["step"].iloc[-1] == 79
    assert run.sources["train_loss"] == "train loss" and run.sources["val_loss"] == "val loss"
    assert "`train` is the training set, `eval` the validation set" in " ".join(run.notes)
    assert "overfitting" in [f.kind for f in detect(run)]


def test_xgboost_sklearn_sets_the_first_of_two_is_training_and_one_alone_is_held_out():
    two = "\n".join(
        f"[{i}]\tvalidation_0-rmse:{10 / (i + 1) + 1:.5f}\tvalidation_1-rmse:{10 / (i + 1) + 2:.5f}"
        for i in range(30)
    )
    run = parse_run(two)
    assert run.table["train_rmse"].iloc[-1] < run.table["val_rmse"].iloc[-1]
    assert "`validation_0` is the training set" in " ".join(run.notes)
    one = parse_run("\n".join(f"[{i}]\tvalidation_0-auc:{0.7 + i / 100:.5f}" for i in range(30)))
    assert list(one.metrics) == ["val_auc"] and "no training set was evaluated" in " ".join(one.notes)


def test_xgboost_cv_reads_the_mean_of_its_folds_and_a_ranking_metric_keeps_its_cut_off():
    text = "\n".join(
        f"[{i}]\ttrain-ndcg@5:{0.6 + i / 100:.5f}+0.00100\ttest-ndcg@5:{0.55 + i / 120:.5f}+0.00800"
        for i in range(30)
    )
    run = parse_run(text)
    assert run.table["val_ndcg_at_5"].iloc[0] == 0.55 and run.table["train_ndcg_at_5"].iloc[-1] == 0.89


def test_lightgbm_reads_its_sets_skips_its_info_lines_and_the_kept_round_printed_again():
    lines = [
        "[LightGBM] [Info] Number of positive: 3000, number of negative: 7000",
        "[LightGBM] [Info] Total Bins 2550",
        "Training until validation scores don't improve for 10 rounds",
    ]
    train, val = falling(60, 0.6, 0.1), _overfit(60, at=30)
    lines += [
        f"[{i}]\ttraining's binary_logloss: {t:.6f}\tvalid_1's binary_logloss: {v:.6f}"
        for i, (t, v) in enumerate(zip(train, val, strict=True), start=1)
    ]
    best = int(np.argmin(val)) + 1
    lines += ["Early stopping, best iteration is:", f"[{best}]\ttraining's binary_logloss: 0.2\tvalid_1's "]
    run = parse_run("\n".join(lines))
    assert len(run.table) == 60 and run.table["step"].iloc[-1] == 60  # not a second run of one round
    assert "`training` is the training set, `valid_1` the validation set" in " ".join(run.notes)
    assert "overfitting" in [f.kind for f in detect(run)]


def test_catboost_verbose_lines_are_read_and_whether_its_unnamed_metric_is_a_loss_or_a_score():
    def line(i: int, learn: float, test: float, best: float, at: int) -> str:
        return (
            f"{i}:\tlearn: {learn:.7f}\ttest: {test:.7f}\tbest: {best:.7f} ({at})\ttotal: {i * 12}ms\t"
            f"remaining: {(300 - i) * 12}ms"
        )

    learn, test = falling(300, 0.68, 0.05), _overfit(300, at=120)
    lines = ["Learning rate set to 0.05"]
    for i in range(0, 300, 10):
        at = int(np.argmin(test[: i + 1]))
        lines.append(line(i, learn[i], test[i], test[at], at))
    lines += ["", f"bestTest = {min(test):.10f}", f"bestIteration = {int(np.argmin(test))}"]
    run = parse_run("\n".join(lines))
    assert list(run.metrics) == ["train_loss", "val_loss"] and len(run.table) == 30
    assert "read as the loss" in " ".join(run.notes)
    assert "overfitting" in [f.kind for f in detect(run)]
    # an AUC (eval_metric='AUC'): each round the best so far, rising; a loss would have fallen
    auc = [line(i, 0.83 + i / 4000, 0.84 + i / 5000, 0.84 + i / 5000, i) for i in range(0, 300, 10)]
    scored = parse_run("\n".join(auc))
    assert list(scored.metrics) == ["train_score↑", "val_score↑"]
    assert "higher is better" in " ".join(scored.notes)
    assert [f.kind for f in detect(scored)] == ["healthy"]


def test_a_bracketed_line_that_is_no_boosting_round_is_read_as_console_and_a_prefix_hides_no_repeat():
    # `[3] epoch-time:12 loss=0.5`: one field looks like XGBoost's, the rest does not
    text = "\n".join(f"[{i}] epoch-time:12 loss={1 / i:.3f} val_loss={1.2 / i:.3f}" for i in range(1, 12))
    assert parse_run(text).sources == {"train_loss": "loss", "val_loss": "val_loss"}
    # LightGBM through Python logging: the kept round printed again after its prefix is still skipped
    val = _overfit(40, at=20)
    prefix = "2024-01-01 12:00:00 INFO "
    lines = [f"{prefix}[{i}]\tvalid_0's l2: {v:.5f}" for i, v in enumerate(val, start=1)]
    best = int(np.argmin(val)) + 1
    lines += [
        f"{prefix}Early stopping, best iteration is:",
        f"{prefix}[{best}]\tvalid_0's l2: {min(val):.5f}",
    ]
    run = parse_run("\n".join(lines))
    assert len(run.table) == 40 and run.table["step"].iloc[-1] == 40


def test_a_catboost_score_renames_only_catboosts_columns():
    lines = [
        f"{i}:\tlearn: {0.7 + i / 1000:.4f}\ttest: {0.69 + i / 1200:.4f}\tbest: {0.70 + i / 1000:.4f} ({i})\t"
        f"total: 1s\tremaining: 1s"
        for i in range(0, 100, 10)
    ]  # best above the latest test reading: higher is better, by the `best` vote
    lines += [f"step {i}: aux loss {100 / i:.3f}" for i in range(100, 130, 10)]  # another loss, after
    run = parse_run("\n".join(lines))
    assert "train_score↑" in run.metrics and "val_score↑" in run.metrics
    assert run.sources["train_loss"] == "aux loss"  # kept as the loss it is, not made a score
