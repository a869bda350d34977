"""JSON documents of series rather than records: lists of [step, value] pairs under each name, lists
of numbers inside named objects (Ludwig, Sacred), objects of values keyed by step (Megatron-LM's golden
values, pandas' `to_json()`), and TensorBoard's JSON download of one scalar."""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Callable
from typing import IO

import ijson

from assistant.runs.parse.jsonstream import events, parser, spells_nan
from assistant.runs.parse.table import Columns, Limits, as_float, logged

# a list of numbers two objects deep or more, not inside a list: Ludwig's `training.combined.loss`,
# Sacred's `training.loss.values` (beside its `steps`)
SERIES = re.compile(r"^(?:[^.]+\.){2,}item$")
_STEPS_KEYS = ("steps", "step", "iterations", "epochs")  # a series object's own x (Sacred)
_VALUES_KEYS = ("values", "value")
# a value in an object keyed by step, under its series' name: `lm loss.values.50` (Megatron-LM's golden
# values), `loss.3` (pandas' `to_json()`)
KEYED = re.compile(r"^([^.]+)\.(?:values\.)?(\d+)$")


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


def add_nested(opener: Callable[[], IO[bytes]], cols: Columns, limits: Limits) -> None:
    """Lists of numbers inside named objects, one series each, named by their path (`training/combined
    /loss`: Ludwig's training_statistics.json, one value per epoch), or, for an object holding
    `values` beside `steps` (Sacred's metrics.json), that object's path at those steps."""
    series: dict[str, array] = {}
    with opener() as f:  # events() reads NaN and Infinity itself
        for prefix, event, value in events(f, limits):
            if event == "number" and SERIES.match(prefix):
                series.setdefault(prefix.removesuffix(".item"), array("d")).append(logged(value))
    by_x: dict[tuple[bool, float], dict[str, float]] = {}
    for path, values in series.items():
        parent, _, last = path.rpartition(".")
        if last in _STEPS_KEYS:
            continue
        steps = next((series[f"{parent}.{k}"] for k in _STEPS_KEYS if f"{parent}.{k}" in series), None)
        name = (parent if last in _VALUES_KEYS else path).replace(".", "/")
        for i, v in enumerate(values):
            at = (True, steps[i]) if steps is not None and i < len(steps) else (False, float(i + 1))
            by_x.setdefault(at, {})[name] = v
    for (is_step, x), row in sorted(by_x.items()):
        cols.add(None if is_step else x, x if is_step else None, row)


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
