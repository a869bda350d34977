"""Several runs in one file, as sweeps and seed repeats write them: a JSON list of runs each with its
records, seeds side by side beside a list of the seeds, a CSV of runs with their curves in list cells;
and a sweep's failed run, its held-out score frozen at chance."""

from __future__ import annotations

import json

from assistant.runs import detect, parse_run


def _history(n: int, start: float, end: float, best: int | None = None) -> list[dict[str, float]]:
    """Per-epoch records from 0: a training loss from `start` to `end`, a validation loss beside it
    that turns up after epoch `best` (never when None)."""
    out = []
    for e in range(n):
        train = start + (end - start) * e / (n - 1)
        turned = best is not None and e > best
        val = (start + (end - start) * best / (n - 1) + 0.04 * (e - best) if turned else train) + 0.1
        out.append({"epoch": e, "train_loss": round(train, 4), "val_loss": round(val, 4), "lr": 0.1})
    return out


def test_a_json_list_of_runs_each_with_its_records_is_read_on_the_last_run():
    # step-back's sweep output: one object per run, its settings, its per-epoch history and a summary;
    # the last run (which overfits) is read, not the settings as one record per run
    runs = [
        {"config": {"lr": lr, "max_epoch": 20}, "history": _history(20, 2.0, 0.5, best), "summary": {"n": 1}}
        for lr, best in ((0.01, None), (0.1, None), (1.0, 8))
    ]
    run = parse_run(json.dumps(runs))
    assert len(run.table) == 20 and {"train_loss", "val_loss"} <= set(run.sources)
    assert any("3 runs" in n for n in run.notes)
    assert [f.kind for f in detect(run)] == ["overfitting"]
    # ProxSPS names its records `scores`: the same
    run = parse_run(json.dumps([{"config": {"lr": 1.0}, "scores": r["history"]} for r in runs]))
    assert len(run.table) == 20 and "overfitting" in [f.kind for f in detect(run)]


def test_seed_repeats_side_by_side_beside_a_list_of_the_seeds_are_read_on_the_last_seed():
    # a results file: per-seed histories under `training_results`, and the seeds used beside them
    def seed(end: float) -> dict[str, object]:
        rows = _history(30, 2.0, end)
        return {"history": {k: [r[k] for r in rows] for k in ("train_loss", "val_loss")}}

    doc = {
        "phase": "train",
        "results": {
            "training_results": {"seed_42": seed(0.4), "seed_123": seed(0.5), "seed_456": seed(1.95)},
            "seeds_used": [42, 123, 456],
        },
    }
    run = parse_run(json.dumps(doc))
    assert {"train_loss", "val_loss"} <= set(run.sources) and len(run.table) == 30
    assert any("the last, `seed_456`, is read" in n for n in run.notes)
    assert abs(run.table["train_loss"].iloc[-1] - 1.95) < 1e-6
    # objects named for what they hold, not alike but for a number, are no repeats: read whole
    doc["results"]["training_results"] = {"mlp": seed(0.4), "cnn": seed(0.5)}
    assert not any("side by side" in n for n in parse_run(json.dumps(doc)).notes)


def test_a_csv_of_runs_with_their_curves_in_list_cells_is_read_on_the_last_row():
    # a sweep's results table: settings and final scores per run, and each run's losses as one list
    losses = [[round(3.0 * 0.9**i + d, 4) for i in range(40)] for d in (0.3, 0.2, 0.1)]
    rows = ["params,training_loss,training_losses,accuracy"] + [
        f'{p},{ls[-1]},"{ls}",0.9' for p, ls in zip((100, 200, 300), losses, strict=True)
    ]
    run = parse_run("\n".join(rows))
    assert run.fmt == "csv-runs" and len(run.table) == 40
    assert run.table["train_loss"].tolist() == losses[-1]
    assert any("3 runs, one per row" in n for n in run.notes)
    # a learning rate per parameter group in a list cell (timm's summary.csv) is no run's curve
    rows = ["epoch,lr,loss"] + [f'{e},"[0.1, 0.1, 0.1]",{2.0 / e:.3f}' for e in range(1, 8)]
    run = parse_run("\n".join(rows))
    assert run.fmt != "csv-runs" and len(run.table) == 7


def test_a_held_out_score_frozen_at_every_evaluation_is_underfitting_unless_another_moves():
    # an SGD run at too high a learning rate: the loss sits near chance and the held-out score (no
    # name says it is an accuracy) is 0.01 at every epoch
    rows = [{"epoch": e, "train_loss": 4.8 - 0.001 * e, "val_loss": 4.8 - 0.001 * e, "val_score": 0.01}
            for e in range(30)]  # fmt: skip
    found = detect(parse_run(json.dumps(rows)))
    assert "underfitting" in [f.kind for f in found]
    assert any("`val_score` is 0.01 at every one of its 30" in f.evidence for f in found)
    # a setting read as a score (an IoU threshold of 0.95 beside an mAP that climbs) is no frozen model
    for r in rows:
        r.update(val_iou=0.95, val_map=0.01 * r["epoch"], val_score=None)
    found = detect(parse_run(json.dumps([{k: v for k, v in r.items() if v is not None} for r in rows])))
    assert not any("at every one of its" in f.evidence for f in found)


def test_losses_numbered_in_their_names_are_read_as_losses():
    # USAD prints its two autoencoders' validation losses as `val_loss1` and `val_loss2`
    line = "Epoch [{}], val_loss1: {:.4f}, val_loss2: {:.4f}"
    lines = [line.format(e, 0.05 / (e + 1), 0.04 / (e + 1)) for e in range(12)]
    run = parse_run("\n".join(lines))
    assert {"val_loss_1", "val_loss_2"} <= set(run.metrics) and len(run.table) == 12


def test_records_with_nested_lists_stay_records_and_only_the_last_run_of_a_list_is_read():
    # per-epoch records each holding a list of dicts (parameter groups, per-batch losses, per-class
    # results) are the log's records, not runs: their curves stay
    batches = [{"batch": b, "loss": 1.0} for b in range(3)]
    records = [
        {**r, "param_groups": [{"lr": 0.1}, {"lr": 0.01}], "batches": batches} for r in _history(12, 2.0, 0.5)
    ]
    run = parse_run(json.dumps(records))
    assert len(run.table) == 12 and {"train_loss", "val_loss"} <= set(run.sources)
    # runs whose step counter goes on across runs (no restart): the last run alone, not one glued curve
    runs = []
    for i, end in enumerate((0.4, 0.5, 1.9)):
        history = [{"step": 10 * i + s, "train_loss": round(2.0 - (2.0 - end) * s / 9, 3)} for s in range(10)]
        runs.append({"config": {"lr": 0.1 * (i + 1)}, "history": history})
    run = parse_run(json.dumps(runs))
    assert len(run.table) == 10 and run.table["step"].tolist()[0] == 20
    assert "diverged" not in [f.kind for f in detect(run)]


def test_objects_named_alike_that_are_no_repeats_keep_the_runs_own_curves():
    # a run's per-layer probes beside its history are no repeats of the run
    rows = _history(20, 2.0, 0.4)
    doc = {
        "history": {k: [r[k] for r in rows] for k in ("train_loss", "val_loss")},
        "probe": {f"layer{i}": {"probe_acc": [0.1 * i + 0.01 * e for e in range(20)]} for i in (1, 2)},
    }
    run = parse_run(json.dumps(doc))
    assert {"train_loss", "val_loss"} <= set(run.sources) and not any("side by side" in n for n in run.notes)


def test_a_list_cell_in_an_epoch_table_is_that_epochs_and_a_zero_score_is_no_frozen_model():
    # a per-class accuracy list on each epoch's row: the table's rows are epochs, not runs
    rows = ["epoch,loss,val_loss,per_class_acc"] + [
        f'{e},{2.0 - 0.1 * e:.2f},{2.1 - 0.1 * e:.2f},"{[round(0.1 * e + 0.01 * c, 2) for c in range(12)]}"'
        for e in range(15)
    ]
    run = parse_run("\n".join(rows))
    assert run.fmt != "csv-runs" and len(run.table) == 15 and "val_loss" in run.sources
    # a detector's mAP and F1 still 0.0 at every evaluation while its losses fall: no correct box yet,
    # not a model whose outputs never change
    rows = ["epoch,loss,val_loss,val_map,val_f1"] + [
        f"{e},{2.9 - 0.045 * e:.3f},{3.0 - 0.035 * e:.3f},0.0,0.0" for e in range(20)
    ]
    assert not any("at every one of its" in f.evidence for f in detect(parse_run("\n".join(rows))))
