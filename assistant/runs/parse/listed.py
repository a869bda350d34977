"""Curves printed whole, each on one line: a Keras history printed as a dict of lists
(`{'loss': [0.69, 0.52, …], 'val_loss': [0.71, 0.60, …]}`: `print(history.history)` in a notebook),
or a list under its name (FedLab's `avg_mdl_test_acc:[0.0994, 0.4248, …]`). Read, when the log holds
no other curve, as one point per epoch (a round, for federated learning)."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from assistant.runs.parse.lines import NUM
from assistant.runs.parse.table import Columns, logged

MIN_POINTS = 3  # a list of fewer numbers is a reading's parts, not a curve
# `name: [0.1, 0.2, …]`, `name=[…]`: a name, then the whole list on the rest of the line
_NAMED_LIST = re.compile(
    rf"^\s*([A-Za-z][\w./@-]{{0,60}})\s*[:=]\s*"
    rf"\[\s*({NUM}(?:\s*,\s*{NUM}){{{MIN_POINTS - 1},}})\s*,?\s*\]\s*$",
    re.IGNORECASE,
)


def curves_in(segment: str) -> dict[str, list[float]] | None:
    """The curves a line prints whole (see the module), by name; None when it prints none."""
    if (named := _NAMED_LIST.match(segment)) is not None:
        return {named.group(1): [logged(v) for v in re.findall(NUM, named.group(2), re.IGNORECASE)]}
    text = segment.strip()
    if not (text.startswith("{") and text.endswith("}") and "[" in text):
        return None
    found = {str(k): v for k, v in _literal(text).items() if _numbers(v)} if text else {}
    return {k: [logged(x) for x in v] for k, v in found.items()} or None


def _literal(text: str) -> dict[Any, Any]:
    """A dict printed as JSON or by Python (read as a literal, never evaluated); empty when not one."""
    for load in (json.loads, ast.literal_eval):
        try:
            value = load(text)
        except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError):
            continue
        return value if isinstance(value, dict) else {}
    return {}


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
