"""Whole JSON documents, read as a stream (ijson's C parser, through jsonstream), never loaded whole:
Hugging Face's trainer_state.json (`log_history`), a Keras `history.history` dump, a list of records,
a Jupyter notebook's cell outputs, or series (jsonseries).

Two passes over the bytes. The first only checks the nesting (deeper than `Limits.max_depth` is
refused before the parser's own bookkeeping can grow with it) and notes where the readings are: a
top-level list of records, lists of records under top-level keys, top-level lists of numbers, or
series. The second builds one record at a time with ijson's C builder, so a 200 MB document costs
what its numbers cost in the table, not half a gigabyte of Python objects. A quoted "NaN" (Python's
bare `NaN`, quoted by jsonstream) reads as a logged NaN. A document that breaks off keeps what came
before it, with a note.
"""

from __future__ import annotations

import itertools
import math
import re
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import IO, Any

import ijson

from assistant.runs.parse.console import read_console
from assistant.runs.parse.finish import finish
from assistant.runs.parse.inlinejson import numbers_of
from assistant.runs.parse.jsonseries import (
    KEYED,
    SERIES,
    add_export,
    add_keyed,
    add_nested,
    add_series,
)
from assistant.runs.parse.jsonstream import events, parser
from assistant.runs.parse.names import STAGE_FIELDS, export_tag, is_metric_name, normalise, role, stage_of
from assistant.runs.parse.notebook import notebook_lines
from assistant.runs.parse.table import (
    DEFAULT_LIMITS,
    Columns,
    Limits,
    Run,
    RunParseError,
    logged,
)

# records in a list inside each object of a top-level list: one run per object (a sweep's results,
# `[{"config": {...}, "history": [{"epoch": 0, "train_loss": 1.6}, …]}, …]`); a top-level object's own
# readings; an inner record's own
_RUNS = re.compile(r"^item\.[^.]+\.item$")
_TOP_KEY = re.compile(r"^item\.([^.]+)$")
_RUN_KEY = re.compile(r"^item\.[^.]+\.item\.([^.]+)$")
_MAX_RUN_LISTS = 4  # lists of records a run may hold (`train`, `val`): more are some other nesting
UNNAMED_VALUE = "value score"  # a record's lone `value` ({"Iteration": 3, "Value": 1.6, "Agent": "DQN"})


@dataclass
class _Layout:
    """Where a document's readings are (the first pass, `_layout`)."""

    records: list[str] = field(default_factory=list)  # prefixes of lists of records
    numbers: bool = False  # top-level lists of numbers (a Keras history)
    pairs: bool = False  # top-level lists of [step, value] pairs
    bare: bool = False  # the document is itself a list of numbers
    nested: bool = False  # lists of numbers deeper, in named objects
    rows: bool = False  # the document is itself a list of lists
    keyed: bool = False  # objects of values keyed by step
    runs: list[str] = field(default_factory=list)  # lists of records inside a top-level list's objects
    items: int = 0  # the top-level list's objects
    run_item: int = -1  # the last of them that holds such a list
    flat: bool = False  # a top-level object holds a metric itself: the objects are records, not runs
    counted: bool = False  # the inner records count their epochs or steps

    def run_list(self) -> bool:
        """A sweep's list of runs: objects holding no metric themselves, each with its records, which
        count their epochs or steps (not records with a nested list: per-class results, per-batch
        losses, parameter groups)."""
        return bool(self.runs) and self.counted and not self.flat

    def any(self, lists: bool = True) -> bool:
        found = (self.numbers, self.pairs, self.bare, self.nested, self.keyed, lists and self.rows)
        return bool(self.records) or any(found)


def _layout(opener: Callable[[], IO[bytes]], limits: Limits) -> _Layout:
    """Where the readings of a document whose nesting is within the limit are. Raises
    ijson.JSONError where it is not JSON."""
    at = _Layout()
    last = previous = ""  # the last event at the top two levels; the last event
    try:
        with opener() as f:
            for prefix, event, _ in events(f, limits):
                if last == "start_array" and (prefix == "item" or prefix.count(".") == 1):
                    if event == "start_map" and prefix not in at.records:
                        at.records.append(prefix)
                    elif event == "number":
                        at.numbers, at.bare = at.numbers or prefix != "item", at.bare or prefix == "item"
                    elif event == "start_array":
                        at.pairs, at.rows = at.pairs or prefix != "item", at.rows or prefix == "item"
                if prefix.count(".") <= 1:
                    last = event
                at.nested = at.nested or (
                    previous == "start_array" and event == "number" and SERIES.match(prefix) is not None
                )
                at.keyed = at.keyed or (event == "number" and KEYED.match(prefix) is not None)
                _note_runs(at, prefix, event, previous)
                previous = event
    except ijson.JSONError:
        if not at.any():
            raise
    return at


def _note_runs(at: _Layout, prefix: str, event: str, previous: str) -> None:
    """What the first pass notes for a list of runs (_Layout.run_list) at one event."""
    if not prefix.startswith("item"):
        return  # not inside a top-level list
    if prefix == "item" and event == "start_map":
        at.items += 1
    elif event == "number" and (top := _TOP_KEY.match(prefix)):
        at.flat = at.flat or (is_metric_name(top.group(1)) and normalise(top.group(1)) != "lr")
    elif event == "number" and (inner := _RUN_KEY.match(prefix)):
        at.counted = at.counted or role(inner.group(1)) in ("epoch", "step")
    if previous == "start_array" and event == "start_map" and _RUNS.match(prefix):
        if prefix not in at.runs:
            at.runs.append(prefix)
            at.flat = at.flat or len(at.runs) > _MAX_RUN_LISTS
        at.run_item = at.items - 1


def _add_last_run(opener: Callable[[], IO[bytes]], at: _Layout, cols: Columns, limits: Limits) -> list[str]:
    """The records of the last run of a list of runs (_Layout.run_list) that holds any, read from its
    object's events alone (the others are never built), and a note."""
    for where in at.runs:
        key = where.split(".")[1]
        prefix = f"{key}/" if stage_of(key) else ""  # a run's `train` and `val` lists say their stage
        with opener() as f:
            for rec in ijson.items(_item_events(events(f, limits), at.run_item), where):
                if isinstance(rec, Mapping):
                    add_record(rec, cols, prefix)
    if at.items < 2:
        return []
    which = "the last" if at.run_item == at.items - 1 else f"the last with records (run {at.run_item + 1})"
    return [f"{at.items} runs in one list (a sweep's results), each with its records: {which} is read"]


def _item_events(stream: Iterator[tuple[str, str, Any]], index: int) -> Iterator[tuple[str, str, Any]]:
    """The events of the top-level list's object number `index` (from 0)."""
    seen = -1
    for prefix, event, value in stream:
        if prefix == "item" and event == "start_map":
            seen += 1
        if seen == index:
            yield prefix, event, value
        elif seen > index:
            return


def add_record(record: Mapping[str, Any], cols: Columns, prefix: str = "") -> None:
    """One record of a log (a JSON object): its epoch and step, and its metrics. A record that says
    its stage in a field (mmdetection's `"mode": "val"`) gives it to the names that say none."""
    values = numbers_of(record, prefix)
    said = next((v for k in STAGE_FIELDS if isinstance(v := record.get(k), str)), "")
    if (stage := stage_of(said)) and stage != "train":
        values = {k if stage_of(k) or role(k) != "metric" else f"{stage}_{k}": v for k, v in values.items()}
    epoch = step = None
    for key in list(values):
        axis = role(key.rsplit("/", 1)[-1] if prefix else key)
        if axis == "epoch" and epoch is None:
            epoch = values.pop(key)
        elif axis == "step" and step is None:
            step = values.pop(key)
    if len(values) == 1 and (only := next(iter(values))).lower() == "value":
        values = {UNNAMED_VALUE: values[only]}  # the record's one reading, which nothing names
    if values:
        cols.add(epoch, step, values)


_AXIS_LISTS = {"batches": "step", "iterations": "step"}  # a history's counters named in the plural


def read_json(opener: Callable[[], IO[bytes]], name: str, limits: Limits = DEFAULT_LIMITS) -> Run:
    """A whole JSON document, opened (twice) by `opener`: records under `log_history`
    (trainer_state.json; the summary entry with `train_runtime` is not a point on the curve) or under
    another top-level key (its name prefixes theirs), a top-level list of records, or top-level lists
    of numbers (a Keras history, one value per epoch) or of [step, value] pairs (one series per key,
    each logged at its own steps: {"train_loss": [[0, 11.9], …], "val_loss": [[0, 12.1], [500, 7.3]]}),
    or objects of values keyed by step (jsonseries.add_keyed), or a bare list of numbers (`str(losses)`
    written to a file: read as the loss, with a note)."""
    cols = Columns(limits.max_metrics)
    notes: list[str] = []
    fmt = "json"
    try:
        at = _layout(opener, limits)
    except ijson.JSONError as exc:
        raise RunParseError(f"{name} starts like JSON but is not valid JSON ({_reason(exc)})") from None
    if "cells.item" in at.records:  # a Jupyter notebook: the training console is in its cells' outputs
        run = read_console(notebook_lines(opener, limits), name, limits)
        return replace(run, fmt="notebook", notes=["read from the notebook's cell outputs", *run.notes])
    catboost = _catboost_metrics(opener) if "iterations.item" in at.records else None
    try:
        if at.run_list() and not at.pairs:
            fmt = "json-runs"
            notes.extend(_add_last_run(opener, at, cols, limits))
        for where in [] if at.pairs or at.run_list() else at.records:  # with series, records are summaries
            outer = where.partition(".")[0] if where != "item" else ""
            fmt = "trainer-state" if outer == "log_history" else "catboost" if catboost else fmt
            prefix = f"{outer}/" if outer and outer not in ("log_history", "iterations") else ""
            with parser(opener) as f:
                for rec in ijson.items(f, where, use_float=True):
                    if isinstance(rec, Mapping) and catboost and where == "iterations.item":
                        rec = _catboost_record(rec, catboost)
                    if isinstance(rec, Mapping) and "train_runtime" not in rec:
                        add_record(rec, cols, prefix)
        if UNNAMED_VALUE in cols.names:
            notes.append(
                "the records name no metric (`Value`): it is drawn as an unnamed score, and no trend "
                "is judged on it"
            )
        if at.pairs:
            fmt = "json-series"
            add_series(opener, cols)
        if at.numbers and not cols.n:
            fmt = "keras-history"
            history: dict[str, array] = {}
            with parser(opener) as f:
                for key, values in ijson.kvitems(f, "", use_float=True):
                    if isinstance(values, list):
                        floats = [logged(v) if isinstance(v, int | float) else math.nan for v in values]
                        history[key] = array("d", floats)
            axes = _history_axes(history)
            for i in range(max((len(v) for v in history.values()), default=0)):
                row = {k: v[i] for k, v in history.items() if i < len(v) and not math.isnan(v[i])}
                epoch, step = (_at(axes.get(axis), i) for axis in ("epoch", "step"))
                cols.add(float(i + 1) if epoch is None and step is None else epoch, step, row)
        if at.nested and not cols.n:
            fmt = "json-nested-series"
            notes.extend(add_nested(opener, cols, limits))
        if at.bare and not cols.n:
            fmt = "json-list"
            with parser(opener) as f:
                for i, v in enumerate(ijson.items(f, "item", use_float=True)):
                    if isinstance(v, int | float) and not isinstance(v, bool):
                        cols.add(None, float(i + 1), {"loss": logged(v)})
            notes.append(
                f"a bare list of {cols.n} numbers names no metric: each is read as the training loss "
                "of one epoch or step, in order"
            )
        if at.keyed and not cols.n:
            fmt = "json-keyed-series"
            notes.extend(add_keyed(opener, cols, limits))
        if at.rows and not cols.n and add_export(opener, cols, tag := export_tag(name)):
            fmt = "tensorboard-json"
            notes.append(
                f"a TensorBoard JSON export of one scalar: its values are read as `{tag}` (file name)"
            )
    except ijson.JSONError as exc:  # the first pass stopped there too: keep what came before
        notes.append(f"the JSON breaks off before its end ({_reason(exc)}): what came before was read")
    if not (at.any(lists=False) or cols.n):  # a list of lists that was no export holds nothing read
        raise RunParseError(
            f"{name} is JSON but not a training log (it holds no training metric): expected Hugging "
            "Face's trainer_state.json (with "
            '`log_history`), a Keras history ({"loss": [...]}), a list of records, or one object per line.'
        )
    return finish(cols, fmt, name, notes)


def _history_axes(history: dict[str, array]) -> dict[str, array]:
    """The lists of a history that say what its readings were taken at (a char-RNN's `epochs` and
    `batches` beside its `train_errs`), taken out of it: each reading's epoch and step. One counts
    when it is the only list of its axis, as long as the readings and never going back (a setting,
    `"epochs": [50]`, or a count that starts again each epoch says nothing of where a reading is);
    without one, each reading is an epoch, in order."""
    named = {k: _AXIS_LISTS.get(k.lower()) or role(k) for k in history}
    longest = max((len(v) for k, v in history.items() if named[k] == "metric"), default=0)
    axes = {}
    for axis in ("epoch", "step"):
        lists = [k for k in history if named[k] == axis]
        values = [history.pop(k) for k in lists]
        if (
            len(values) == 1
            and len(values[0]) == longest
            and all(b >= a for a, b in itertools.pairwise(values[0]))
        ):
            axes[axis] = values[0]
    return axes


def _at(values: array | None, i: int) -> float | None:
    """The `i`th of an axis list, None past its end or where it holds no number."""
    return values[i] if values is not None and i < len(values) and not math.isnan(values[i]) else None


def _catboost_metrics(opener: Callable[[], IO[bytes]]) -> dict[str, list[str]] | None:
    """CatBoost's catboost_training.json: the metric names its records' `learn` and `test` lists hold,
    in order (`meta.learn_metrics`, `meta.test_metrics`); None for any other document."""
    with parser(opener) as f:
        meta = next(ijson.items(f, "meta", use_float=True), None)
    if not isinstance(meta, Mapping) or "learn_metrics" not in meta:
        return None
    names = {}
    for stage in ("learn", "test"):
        listed = meta.get(f"{stage}_metrics") or []
        names[stage] = [str(m.get("name", "")) for m in listed if isinstance(m, Mapping)]
    return names


def _catboost_record(record: Mapping[str, Any], names: dict[str, list[str]]) -> dict[str, Any]:
    """One CatBoost iteration (`{"learn": [0.62], "test": [0.65], "iteration": 0, …}`) with its lists
    named: the learning set's metrics are the training ones, the first test set's the held-out ones."""
    out = {k: v for k, v in record.items() if not isinstance(v, list)}
    for key, stage in (("learn", "train"), ("test", "val")):
        for metric, value in zip(names[key], record.get(key) or [], strict=False):
            out[f"{stage} {metric}"] = value
    return out


def _reason(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
