"""Curves printed whole, each on one line: a Keras history printed as a dict of lists, a list under
its name, and a few long unnamed lists (a federated run's test losses, then its accuracies)."""

from __future__ import annotations

import math
import pprint

import numpy as np

from assistant.runs import RunParseError, detect, parse_run
from tests.run_helpers import falling


def test_a_keras_history_printed_as_a_dict_of_lists_is_read_one_point_per_epoch():
    # `print(history.history)` at the end of a notebook's fit: the log was refused as holding nothing
    train, val = falling(20, 0.9, 0.05), [0.8 - 0.04 * min(e, 8) + 0.03 * max(e - 8, 0) for e in range(20)]
    history = {"loss": train, "accuracy": [1 - v for v in train], "val_loss": val}
    run = parse_run(f"Epoch 20/20 done\n{history}\n")
    assert list(run.table["epoch"]) == list(range(1, 21))
    assert np.allclose(run.table["train_loss"], train) and np.allclose(run.table["val_loss"], val)
    assert any("printed whole" in n for n in run.notes)
    assert "overfitting" in [f.kind for f in detect(run)]


def test_lists_under_their_names_are_curves_and_a_settings_dict_beside_them_is_no_curve():
    # FedLab's FedDyn: its arguments as a dict, then `avg_mdl_test_loss:[…]` a round each
    lines = ["{'num_clients': 100, 'round': 300, 'lr': 0.1, 'epochs': 5}"]
    loss = falling(300, 2.1, 0.45)
    lines.append(f"avg_mdl_test_acc:{[round(0.3 + 0.5 * (1 - v / 2.1), 4) for v in loss]}")
    lines.append(f"avg_mdl_test_loss:{[round(v, 4) for v in loss]}")
    run = parse_run("\n".join(lines))
    assert len(run) == 300 and run.sources["val_mdl_loss"] == "avg_mdl_test_loss"
    assert np.allclose(run.table["val_mdl_loss"], np.round(loss, 4)) and "lr" not in run.table


def test_a_few_long_unnamed_lists_are_each_a_curve_not_a_row_each():
    # FedLab's records: the test losses of 1000 rounds on one line, their accuracies on the next. Read
    # as two rows of a thousand unnamed scores each; they are two curves of a thousand points (still
    # unnamed: drawn, no trend judged)
    loss, acc = falling(1000, 24.0, 0.4), [0.13 + 0.85 * (1 - np.exp(-i / 50)) for i in range(1000)]
    text = "partition noniid\nlr 0.02\n\n" + str(loss) + "\n" + str(acc) + "\n"
    run = parse_run(text)
    assert len(run) == 1000 and np.allclose(run.table["train_score_1"], loss)
    assert [f.kind for f in detect(run)] == ["healthy"] and "no trend is judged" in detect(run)[0].evidence
    # lists of a few numbers, one per step (so-vits-svc's losses), are still rows
    rows = "\n".join(str([2.4, 2.3, 17 + 40 * np.exp(-i / 5), 0.7, 200 * i, 0.0001]) for i in range(30))
    assert len(parse_run(rows)) == 30


def test_a_settings_list_and_lists_repeated_under_one_name_are_no_whole_curves():
    # `milestones: [30, 60, 90]` is a scheduler's setting: the rows of numbers under it are the log
    run = parse_run("milestones: [30, 60, 90]\n1 0.9 0.5\n2 0.8 0.6\n3 0.7 0.7\n")
    assert len(run) == 3 and "train_loss" not in run.table
    # a step's loss parts printed as a list under one name, step after step, are no curves printed
    # whole (the last list was read as a five-epoch curve)
    lines = "\n".join(f"Losses: [{2.5 - i / 10:.1f}, 2.8, 5.7, 63.6, 19.0]" for i in range(5))
    try:
        run = parse_run(lines)
    except RunParseError:
        return  # refused with its reason is right too
    assert not any("printed whole" in n for n in run.notes)


def test_numbers_alone_holding_infinities_are_read_or_refused_never_a_crash():
    # (a position holding inf was tested for a whole-number counter, and int(inf) raised)
    for text in ("0.5 inf 3\n0.4 inf 4\n0.3 inf 5\n", "inf 1\ninf 2\n", "nan nan\nnan nan\nnan nan\n"):
        try:
            run = parse_run(text)
        except RunParseError as refused:
            assert "holds no" in str(refused) or "curve" in str(refused)
        else:
            assert len(run) >= 2


def _flower_summary(losses: list[float], accuracy: list[float]) -> list[str]:
    """Flower 1.8+'s summary: the distributed loss a round a line, its metrics as pprint wraps them."""
    lines = ["INFO :      [SUMMARY]", f"INFO :      Run finished {len(losses)} round(s) in 157.48s"]
    lines.append("INFO :      \tHistory (loss, distributed):")
    lines += [f"INFO :      \t\tround {r}: {v}" for r, v in enumerate(losses, start=1)]
    lines.append("INFO :      \tHistory (metrics, distributed, evaluate):")
    wrapped = pprint.pformat({"accuracy": list(enumerate(accuracy, start=1))}).splitlines()
    return lines + [f"INFO :      \t{w}" for w in wrapped] + ["INFO :      "]


def test_flowers_history_is_read_a_point_per_round():
    # a Flower simulation's log: rounds announced, clients sampled, and the History only at the end; it
    # was refused as holding nothing
    losses, accuracy = falling(30, 2.2, 0.6), [round(0.2 + 0.02 * r, 4) for r in range(30)]
    rounds = [
        f"INFO :      [ROUND {r}]\nINFO :      configure_fit: strategy sampled 10 clients (out of 10)"
        for r in range(1, 31)
    ]
    run = parse_run("\n".join(rounds + _flower_summary(losses, accuracy)))
    assert list(run.table["epoch"]) == list(range(1, 31))
    assert np.allclose(run.table["val_loss"], losses) and np.allclose(run.table["val_acc"], accuracy)
    # before 1.8, each list on a line of its own: the clients' training metrics are the training's, the
    # server's evaluation its test curve (its round 0, the model before training, left out), here a
    # NaN at the end
    test_loss = [{"Test loss:": v} for v in [2.5, *falling(10, 2.3, 1.0)[:-1]]] + [{"Test loss:": math.nan}]
    prefix = "INFO flwr 2023-08-02 11:54:28,203 | app.py:205 | app_fit:"
    old = [
        f"{prefix} losses_distributed {list(enumerate(losses[:11]))[1:]}",
        f"{prefix} metrics_distributed_fit { {'accuracy': list(enumerate(accuracy[:11]))[1:]} }",
        f"{prefix} losses_centralized {list(enumerate(test_loss))}",
    ]
    run = parse_run("\n".join(old))
    assert list(run.table["epoch"]) == list(range(1, 11)) and run.table["val_loss"].notna().sum() == 10
    assert run.table["train_acc"].iloc[-1] == accuracy[10] and np.isinf(run.table["test_loss"].iloc[-1])


def test_a_flower_summary_beside_the_logs_own_curves_leaves_them_read():
    # a client's epochs before the summary (ANSI-coloured, as Flower prints its level), or the
    # Trainer's dicts after it: the log's own curve is read as it was
    summary = [
        line.replace("INFO :", "\x1b[92mINFO \x1b[0m:") for line in _flower_summary([1.0] * 5, [0.5] * 5)
    ]
    train = falling(20, 2.0, 0.4)
    epochs = [f"Epoch {e + 1}: train loss {v:.4f}" for e, v in enumerate(train)]
    dicts = [str({"loss": round(v, 4), "epoch": float(e + 1)}) for e, v in enumerate(train)]
    for text in (epochs + summary, summary + dicts):
        run = parse_run("\n".join(text))
        assert run.table["train_loss"].dropna().tolist() == [round(v, 4) for v in train]
        assert list(run.table["epoch"]) == list(range(1, 21)) and "val_loss" not in run.table
    assert "val_loss" in parse_run("\n".join(summary)).table  # the summary alone is read
