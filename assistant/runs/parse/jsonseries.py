"""JSON documents of series rather than records: lists of [step, value] pairs under each name, lists
of numbers inside named objects (Ludwig, Sacred), objects of values keyed by step (Megatron-LM's golden
values, pandas' `to_json()`), and TensorBoard's JSON download of one scalar."""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Callable
from os.path import commonprefix
from typing import IO

import ijson

from assistant.runs.parse.jsonstream import events, parser, spells_nan
from assistant.runs.parse.names import is_metric_name, stage_of
from assistant.runs.parse.table import Columns, Limits, as_float, logged

# a list of numbers two objects deep or more, not inside a list: Ludwig's `training.combined.loss`,
# Sacred's `training.loss.values` (beside its `steps`)
SERIES = re.compile(r"^(?:[^.]+\.){2,}item$")
_STEPS_KEYS = ("steps", "step", "iterations", "epochs")  # a series object's own x (Sacred)
_VALUES_KEYS = ("values", "value")
# a value in an object keyed by step, under its series' name: `lm loss.values.50` (Megatron-LM's golden
# values), `loss.3` (pandas' `to_json()`)
KEYED = re.compile(r"^([^.]+)\.(?:values\.)?(\d+)$")
# an object named for one repeat of a run: `seed_42`, `run3`, `trial-7`, `fold_2`
_REPEAT = re.compile(r"^(?:seed|run|trial|rep|repeat|fold)[_-]?\d+$", re.IGNORECASE)


def add_export(opener: Callable[[], IO[bytes]], cols: Columns, tag: str) -> bool:
    """TensorBoard's JSON download of one scalar: `[[wall time, step, value], …]`. Whether it was one."""
    with parser(opener) as f:
        for row in ijson.items(f, "item", use_float=True):
            if not (isinstance(row, list) and len(row) == 3 and all(isinstance(v, int | float) for v in row)):
                return False
            cols.add(None, float(row[1]), {tag: logged(row[2])})
    return True


def add_series(opener: Callable[[], IO[bytes]], cols: Columns) -> None:
    """Top-level lists of [step, value] pairs as rows by step (each series has its own steps)."""
    by_step: dict[float, dict[str, float]] = {}
    with parser(opener) as f:
        for key, values in ijson.kvitems(f, "", use_float=True):
            if not isinstance(values, list):
                continue
            for pair in values:
                if (
                    isinstance(pair, list)
                    and len(pair) == 2
                    and all(isinstance(v, int | float) and not isinstance(v, bool) for v in pair)
                ):
                    by_step.setdefault(as_float(pair[0]), {})[key] = logged(pair[1])
    for step in sorted(by_step):
        cols.add(None, step, by_step[step])


def add_nested(opener: Callable[[], IO[bytes]], cols: Columns, limits: Limits) -> list[str]:
    """Lists of numbers inside named objects, one series each, named by their path (`training/combined
    /loss`: Ludwig's training_statistics.json, one value per epoch), or, for an object holding
    `values` beside `steps` (Sacred's metrics.json), that object's path at those steps. Of several
    runs side by side (_runs), the last is read. The notes."""
    series: dict[str, array] = {}
    with opener() as f:  # events() reads NaN and Infinity itself
        for prefix, event, value in events(f, limits):
            if event == "number" and SERIES.match(prefix):
                series.setdefault(prefix.removesuffix(".item"), array("d")).append(logged(value))
    series, notes = _last_run(series)
    by_x: dict[tuple[bool, float], dict[str, float]] = {}
    shared = _shared_parents(list(series))
    for path, values in series.items():
        parent, _, last = path.rpartition(".")
        if last in _STEPS_KEYS:
            continue
        steps = next((series[f"{parent}.{k}"] for k in _STEPS_KEYS if f"{parent}.{k}" in series), None)
        name = "/".join(_named(path).split(".")[shared:])
        for i, v in enumerate(values):
            at = (True, steps[i]) if steps is not None and i < len(steps) else (False, float(i + 1))
            by_x.setdefault(at, {})[name] = v
    for (is_step, x), row in sorted(by_x.items()):
        cols.add(None if is_step else x, x if is_step else None, row)
    return notes


def _named(path: str) -> str:
    """The path that names a series: its own, or its object's for a `values` (or `steps`) list."""
    parent, _, last = path.rpartition(".")
    return parent if last in _VALUES_KEYS or last in _STEPS_KEYS else path


def _shared_parents(paths: list[str]) -> int:
    """How many leading objects every series sits in (`results_per_model`): they name none of them (a
    stage or a metric does, shared or not: Sacred's `validation.loss` alone)."""
    split = [_named(p).split(".")[:-1] for p in paths]  # never a series' own name
    shared = commonprefix(split) if split else []
    return next((i for i, part in enumerate(shared) if stage_of(part) or is_metric_name(part)), len(shared))


def _last_run(series: dict[str, array]) -> tuple[dict[str, array], list[str]]:
    """The series of the last of several runs side by side (_runs), named without their run's object,
    and a note naming the runs; all the series, and no note, when they are one run."""
    if not (runs := _runs(series)):
        return series, []
    parent, names = runs
    level = len(parent)
    kept = {}
    for path, values in series.items():
        parts = path.split(".")
        if parts[:level] == parent and len(parts) > level + 1 and parts[level] == names[-1]:
            kept[".".join(parts[:level] + parts[level + 1 :])] = values
    shown = ", ".join(f"`{n}`" for n in names[:4]) + (", …" if len(names) > 4 else "")
    return kept, [f"{len(names)} runs side by side ({shown}): the last, `{names[-1]}`, is read"]


def _runs(series: dict[str, array]) -> tuple[list[str], list[str]] | None:
    """(the path to the runs' objects, the runs' names in the order the document gives them) when the
    series are several runs side by side: one object per run under a shared parent, each holding the
    same series (`results_per_model.resnet50.train_loss_history`, then `vit_b_16`'s). Not a split of one
    run (`training.loss`, `validation.loss`) nor a metric's objects (`loss.train`). Deeper, beside other
    series (a list of the seeds used), only objects named for a seed, run, trial, repeat or fold and its
    number: repeats of one run (`training_results.seed_42.history.train_loss`, then `seed_123`'s), not
    a run's layers, heads or outputs (`layer1`, `head_0`)."""
    paths = [path.split(".") for path in series]
    if not paths:
        return None
    if found := _side_by_side(paths, len(commonprefix(paths))):
        return found
    repeats: dict[tuple[str, ...], list[list[str]]] = {}  # the first repeat-named object on each path
    for p in paths:
        if (at := next((i for i, part in enumerate(p[:-1]) if _REPEAT.match(part)), None)) is not None:
            repeats.setdefault(tuple(p[:at]), []).append(p)
    for parent, under in repeats.items():  # in the document's order
        if found := _side_by_side(under, len(parent)):
            return found
    return None


def _side_by_side(paths: list[list[str]], level: int) -> tuple[list[str], list[str]] | None:
    """(the shared path, the names at `level`) when the objects there are two or more runs: each holds
    the same series, a metric among them, and none is named for a metric or a stage."""
    if len(paths) < 2 or level >= min(len(p) for p in paths) - 1:
        return None
    held: dict[str, set[str]] = {}
    for p in paths:
        held.setdefault(p[level], set()).add(".".join(p[level + 1 :]))
    names = list(held)
    first = held[names[0]]
    if (
        len(names) > 1
        and all(kept == first for kept in held.values())
        and any(is_metric_name(k) for k in first)
        and not any(is_metric_name(n) or stage_of(n) for n in names)
    ):
        return paths[0][:level], names
    return None


def add_keyed(opener: Callable[[], IO[bytes]], cols: Columns, limits: Limits) -> list[str]:
    """Objects of values keyed by step, one per series: `{"lm loss": {"start_step": 1, "values": {"1":
    10.8, "5": 10.6}}}` (Megatron-LM's golden values) or `{"loss": {"0": 0.9, "1": 0.7}}` (pandas'
    `to_json()`). A step at which every series, memory and timing included, is NaN was not run (the
    golden values' trailing placeholders): it is left out, with a note. The notes."""
    by_step: dict[float, dict[str, float]] = {}
    with opener() as f:  # events() reads NaN and Infinity itself
        for prefix, event, value in events(f, limits):
            if (event == "number" or event == "string") and (m := KEYED.match(prefix)):
                number = logged(value) if event == "number" or spells_nan(value) else None
                if number is not None:
                    by_step.setdefault(float(m.group(2)), {})[m.group(1)] = number
    unrun = {step for step, row in by_step.items() if not any(math.isfinite(v) for v in row.values())}
    for step in sorted(by_step.keys() - unrun):
        cols.add(None, step, by_step[step])
    if not unrun:
        return []
    return [f"{len(unrun)} steps are NaN in every series, memory and timing too: not run, left out"]
