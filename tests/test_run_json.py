"""JSON documents of series rather than records: lists of [step, value] pairs, lists inside named
objects (Ludwig, Sacred, a script's summary of several models trained one after another), values keyed
by step (Megatron-LM, pandas), CatBoost's training JSON and histories named in the plural; and NVIDIA
DLLogger's records, their readings nested under `data`."""

from __future__ import annotations

import json

import pytest

from assistant.runs import detect, parse_run
from assistant.runs.curves import run_curves
from assistant.runs.parse import RunParseError
from tests.run_helpers import falling as _falling


def test_json_series_of_step_value_pairs_are_read_each_at_its_own_steps():
    doc = {
        "train_loss": [[i, 11.9 - 0.01 * i] for i in range(501)],
        "val_loss": [[0, 12.1], [250, 9.5], [500, 7.3]],
        "lr": [[i, 1e-3] for i in range(501)],
        "val_checkpoints": [{"iter": 0, "val_loss": 12.1}, {"iter": 500, "val_loss": 7.3}],  # a summary
    }
    run = parse_run(json.dumps(doc))
    assert run.sources["train_loss"] == "train_loss" and run.sources["val_loss"] == "val_loss"
    assert run.table["val_loss"].dropna().tolist() == [12.1, 9.5, 7.3] and not run.notes


def test_nested_json_series_ludwig_statistics_and_sacred_metrics_are_read():
    epochs = range(12)
    ludwig = {
        stage: {
            feature: {
                "loss": [2.0 / (e + 1) + shift for e in epochs],
                "accuracy": [0.5 + e / 30 for e in epochs],
            }
            for feature in ("combined", "label")
        }
        for stage, shift in (("training", 0.0), ("validation", 0.1), ("test", 0.12))
    }
    run = parse_run(json.dumps(ludwig))
    assert {"train_loss", "val_loss", "train_acc", "val_acc"} <= set(run.metrics)
    assert run.sources["val_loss"] == "validation/combined/loss" and run.table["epoch"].nunique() == 12
    sacred = {
        "training.loss": {"steps": [10 * i for i in range(30)], "timestamps": ["2021-01-01T00:00:00"] * 30,
                          "values": [1.5 * 0.9**i for i in range(30)]},
        "validation.loss": {"steps": [50 * i for i in range(6)], "timestamps": ["t"] * 6,
                            "values": [1.6 * 0.8**i for i in range(6)]},
    }  # fmt: skip
    run = parse_run(json.dumps(sacred))
    assert run.table["step"].max() == 290 and run.table["val_loss"].notna().sum() == 6
    assert run_curves(run)[0] is not None


def test_series_keyed_by_step_megatron_golden_values_and_pandas_to_json_are_read():
    # Megatron-LM's golden values: each series an object of values keyed by step, every series "nan"
    # at the steps the run did not reach (memory and timing too); a loss NaN alone is a logged NaN
    steps = range(1, 400, 5)
    loss = {str(s): 10.8 * 0.995**s + 2 for s in steps} | {"400": "nan", "405": "nan"}
    mem = {str(s): 1.5e10 for s in steps} | {"400": "nan", "405": "nan"}
    golden = {
        "lm loss": {"start_step": 1, "end_step": 405, "step_interval": 5, "values": loss},
        "mem-allocated-bytes": {"start_step": 1, "end_step": 405, "step_interval": 5, "values": mem},
    }
    run = parse_run(json.dumps(golden))
    assert run.sources["train_loss"] == "lm loss" and len(run.table) == len(steps)
    assert run.table["step"].iloc[-1] == 396 and any(
        "2 steps are NaN in every series" in n for n in run.notes
    )
    golden["mem-allocated-bytes"]["values"]["400"] = 1.5e10  # the run reached step 400: its loss broke
    run = parse_run(json.dumps(golden))
    assert len(run.table) == len(steps) + 1 and [f.kind for f in detect(run)] == ["diverged"]
    # pandas' DataFrame(history.history).to_json(): {"loss": {"0": …, "1": …}, "val_loss": {…}}
    history = {
        "loss": dict(enumerate(_falling(12))),
        "val_loss": {i: v + 0.1 for i, v in enumerate(_falling(12))},
    }
    run = parse_run(json.dumps(history))
    assert run.sources == {"train_loss": "loss", "val_loss": "val_loss"} and len(run.table) == 12


def test_catboost_training_json_and_histories_named_in_the_plural_are_read():
    # CatBoost's catboost_info/catboost_training.json: each iteration's `learn` and `test` lists hold
    # the metrics `meta` names, in order
    meta = {
        "learn_metrics": [{"best_value": "Min", "name": "Logloss"}],
        "test_metrics": [{"best_value": "Min", "name": "Logloss"}, {"best_value": "Max", "name": "AUC"}],
        "learn_sets": ["learn"],
        "test_sets": ["test"],
        "iteration_count": 40,
    }
    iterations = [
        {"learn": [t], "test": [t + 0.05, 0.6 + i / 100], "iteration": i, "passed_time": 0.01 * i}
        for i, t in enumerate(_falling(40, 0.69, 0.2))
    ]
    run = parse_run(json.dumps({"meta": meta, "iterations": iterations}))
    assert run.fmt == "catboost" and run.sources["train_loss"] == "train Logloss"
    assert run.sources["val_loss"] == "val Logloss" and "val_auc" in run.table and len(run.table) == 40
    # a history kept as lists named in the plural (`train_losses`, `val_aucs`); MiniGo's
    # `virtual_losses` is a count set, not a loss
    history = {
        "train_losses": _falling(20),
        "val_losses": [t + 0.1 for t in _falling(20)],
        "val_aucs": [0.7 + i / 100 for i in range(20)],
        "virtual_losses": [8] * 20,
    }
    run = parse_run(json.dumps(history))
    assert run.sources == {"train_loss": "train_losses", "val_loss": "val_losses", "val_auc": "val_aucs"}


def test_history_lists_of_what_the_readings_were_taken_at_are_their_epochs_and_steps():
    # a char-RNN's record every 20 batches: `epochs` and `batches` beside `train_errs` / `valid_errs`
    # (its cross-entropy, named in the plural); read at those epochs and steps, not one epoch a record
    n, per_epoch = 120, 10
    train = _falling(n, 3.5, 1.2)
    history = {
        "times": [0] * n,
        "epochs": [1 + i // per_epoch for i in range(n)],
        "batches": [20 * (i + 1) for i in range(n)],
        "train_errs": train,
        "valid_errs": [t + 0.1 + 0.004 * max(0, i - 60) for i, t in enumerate(train)],
    }
    run = parse_run(json.dumps(history))
    assert run.sources == {"train_err": "train_errs", "val_err": "valid_errs"}
    assert run.table["epoch"].iloc[-1] == 12 and run.table["step"].iloc[-1] == 2400
    assert run_curves(run)[0].unit == "epoch" and len(run_curves(run)[0]) == 12
    # a list that is a setting (`"epochs": [50]`), or a count that starts again each epoch, says
    # nothing of where a reading was taken: each reading is an epoch, in order, as before
    for axis in (
        {"epochs": [50]},
        {"batches": [100, 200, 300] * 40},
        {"epoch": list(range(120)), "epochs": [9] * 120},
    ):
        run = parse_run(json.dumps({**axis, "train_errs": train}))
        assert run.table["epoch"].tolist() == list(range(1, n + 1)) and not run.notes, axis


def test_several_models_trained_one_after_another_in_one_summary_json_are_read_on_the_last():
    # a script's summary: `results_per_model` holds one object per model, each with the same histories;
    # the models are runs side by side, the last (a ViT that overfits) is read, and said
    def history(best: int, n: int) -> dict[str, list[float]]:
        train = [2.3 * 0.93**e for e in range(n)]
        val = [2.1 - 0.05 * min(e, best) + 0.03 * max(0, e - best) for e in range(n)]
        return {"train_loss_history": train, "val_loss_history": val, "lr_history": [0.0] * n}

    models = {"mobilenet_v2": history(29, 30), "resnet50": history(29, 30), "vit_b_16": history(6, 17)}
    doc = {"seed": 42, "models_completed": list(models), "results_per_model": models}
    run = parse_run(json.dumps(doc))
    assert run.sources["train_loss"] == "train_loss_history" and len(run.table) == 17
    assert any("3 runs side by side" in n and "the last, `vit_b_16`, is read" in n for n in run.notes)
    assert [f.kind for f in detect(run)] == ["overfitting"]
    # one model alone is one run, its histories read by their own names beneath the object they share
    run = parse_run(json.dumps({"results_per_model": {"vit_b_16": history(6, 17)}}))
    assert set(run.sources) >= {"train_loss", "val_loss"} and not run.notes


def test_nvidia_dllogger_lines_are_read_by_epoch_and_iteration_with_their_nested_readings():
    # DLLogger's stream backend: `DLLL {…}` per line, the step a tuple (epoch, iteration, of how many)
    # and the readings under `data`; an epoch's summary has the epoch alone
    lines = [
        'DLLL {"type": "LOG", "step": "PARAMETER", "data": {"epochs": 3}}',
        *(
            f'DLLL {{"type": "LOG", "step": [{e}, {i}, 40], "data": {{"train_loss": {v:.4f}, "took": 0.2}}}}'
            for e in (1, 2, 3)
            for i, v in enumerate(_falling(40, 35.0 - 5 * e, 30.0 - 5 * e), 1)
        ),
    ]
    run = parse_run("\n".join(lines))
    assert run.fmt == "console" and run.sources["train_loss"] == "data/train_loss"
    assert run.table["epoch"].dropna().unique().tolist() == [1.0, 2.0, 3.0]
    assert len(run.table) == 120
    # the same records as JSON lines, without the prefix, read the same
    plain = parse_run("\n".join(line.removeprefix("DLLL ") for line in lines))
    assert plain.metrics == run.metrics and len(plain.table) == 120


def test_dllogger_settings_summaries_huge_counters_and_deep_nesting_are_no_readings_and_no_crash():
    lines = [
        f'DLLL {{"step": [1, {i}, 40], "data": {{"train_loss": {v:.4f}}}}}'
        for i, v in enumerate(_falling(40, 3.0, 1.0), 1)
    ]
    settings = 'DLLL {"step": "PARAMETER", "data": {"lr": 0.1, "epochs": 3}}'
    summary = 'DLLL {"step": [], "data": {"train_loss": 9.9}}'  # the run's final summary
    run = parse_run("\n".join([settings, *lines, summary]))
    assert len(run.table) == 40 and run.table["train_loss"].max() < 3.01
    # a counter past what a float holds exactly, and a record nested a thousand levels deep
    huge = 'DLLL {"step": [' + "1" * 400 + ', 1], "data": {"train_loss": 0.5}}'
    deep = 'DLLL {"step": [1, 41], "data": ' + '{"a":' * 990 + "1" + "}" * 990 + "}"
    assert len(parse_run("\n".join([*lines, huge, deep])).table) >= 40
    nested = '{"a":' * 990 + "1" + "}" * 990
    jsonl = [f'{{"epoch": {e}, "loss": {1 / e}, "x": {nested}}}' for e in range(1, 10)]
    with pytest.raises(RunParseError, match="nested more than"):  # a clear refusal, no RecursionError
        parse_run("\n".join(jsonl))
