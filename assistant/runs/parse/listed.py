"""Curves printed whole, each on one line: a Keras history printed as a dict of lists
(`{'loss': [0.69, 0.52, …], 'val_loss': [0.71, 0.60, …]}`: `print(history.history)` in a notebook),
or a list under its name (FedLab's `avg_mdl_test_acc:[0.0994, 0.4248, …]`). Read, when the log holds
no other curve, as one point per epoch (a round, for federated learning)."""

from __future__ import annotations

import re
from typing import Any

from assistant.runs.parse.inlinejson import object_in
from assistant.runs.parse.lines import NUM
from assistant.runs.parse.names import is_metric_name
from assistant.runs.parse.table import Columns, logged

MIN_POINTS = 3  # a list of fewer numbers is a reading's parts, not a curve
# `name: [0.1, 0.2, …]`, `name=[…]`: a name, then the whole list on the rest of the line
_NAMED_LIST = re.compile(
    rf"^\s*([A-Za-z][\w./@-]{{0,60}})\s*[:=]\s*"
    rf"\[\s*({NUM}(?:\s*,\s*{NUM}){{{MIN_POINTS - 1},}})\s*,?\s*\]\s*$",
    re.IGNORECASE,
)


def curves_in(segment: str) -> dict[str, list[float]] | None:
    """The curves a line prints whole (see the module), by metric name; None when it prints none (a
    setting's list, `milestones: [30, 60, 90]`, is none)."""
    if (named := _NAMED_LIST.match(segment)) is not None:
        found = {named.group(1): [logged(v) for v in re.findall(NUM, named.group(2), re.IGNORECASE)]}
        return found if is_metric_name(named.group(1)) else None
    text = segment.strip()
    if not (text.startswith("{") and text.endswith("}") and "[" in text):
        return None
    if (literal := object_in(text)) is None:
        return None
    found = {str(k): v for k, v in literal.items() if _numbers(v) and is_metric_name(str(k))}
    return {k: [logged(x) for x in v] for k, v in found.items()} or None


def extends(listed: dict[str, list[float]], whole: dict[str, list[float]]) -> bool:
    """Each curve of `whole` is new, or the same curve printed again with more points (a history
    printed after each fit): not a list printed each step under one name (a step's loss parts)."""
    return all(k not in listed or v[: len(listed[k])] == listed[k] for k, v in whole.items())


def _numbers(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) >= MIN_POINTS
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
    )


def listed_columns(curves: dict[str, list[float]], max_metrics: int) -> Columns:
    """The curves as rows, one per epoch (the lists' positions, counted from 1)."""
    cols = Columns(max_metrics)
    for i in range(max(map(len, curves.values()))):
        cols.add(float(i + 1), None, {k: v[i] for k, v in curves.items() if i < len(v)})
    return cols
