"""A JSON object written inside a console line (fairseq's `[train_inner][INFO] - {"loss": "0.26", …}`,
MLPerf's `:::MLLOG {"key": "eval_accuracy", "value": 0.75, …}`), or a dict Python printed (the
Hugging Face Trainer's `{'loss': 0.69, 'epoch': 0.04}`): its numbers, by name."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from typing import Any

from assistant.runs.parse.jsonstream import spells_nan
from assistant.runs.parse.lines import COUNT
from assistant.runs.parse.names import STAGE_FIELDS, role, stage_of
from assistant.runs.parse.table import logged

_NAMED_BEFORE = re.compile(r"([A-Za-z][\w./]*):\s*$")  # `eval_accuracy: ` just before a JSON object
_MOST_EPOCHS = 100_000  # an epoch number past this is a count of samples or tokens
_DEEPEST = 32  # levels of nesting a record's readings are looked for in
# NaN and infinity as Python prints them, bare (`{'loss': nan}`, `[(10, inf)]`): no literal spells them
_BARE_SPECIAL = re.compile(r"(?<=[(,:] )-?(?:nan|inf)(?=[),}\]])")


def json_values(segment: str) -> dict[str, float] | None:
    """The numbers of a JSON object written inside the line, or None when there is none. An object
    that is one reading named outside it (MLPerf's `eval_accuracy: {"epoch": 3, "value": 0.75}`) or
    by its own `key` (`:::MLLOG {"key": "eval_accuracy", "value": 0.75, "metadata": {"epoch_num":
    3}}`) is that reading, with its epoch."""
    if (span := braces(segment)) is None:
        return None
    opens, closes = span
    if (obj := object_in(segment[opens : closes + 1])) is None:
        return None
    if isinstance(value := obj.get("value"), int | float) and not isinstance(value, bool):
        named = obj.get("key") if isinstance(obj.get("key"), str) else None
        before = _NAMED_BEFORE.search(segment[:opens])
        if named or before:
            meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else obj
            epoch = next(
                (meta[k] for k in ("epoch_num", "epoch") if isinstance(meta.get(k), int | float)), None
            )
            out = {named or before.group(1): logged(value)}
            if epoch is None:
                return out
            # MLPerf's language-model benchmarks count samples or tokens in `epoch_num` (1258291200)
            return {**out, "epoch" if epoch < _MOST_EPOCHS else "step": float(epoch)}
    if not_on_the_curve(obj):
        return {}
    out: dict[str, float] = {}
    for k, v in obj.items():
        if isinstance(v, Mapping | list):
            out.update(numbers_of({k: v}))  # NVIDIA DLLogger's `"step": [1, 5, 390], "data": {…}`
            continue
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            continue
        if isinstance(v, str) and (count := COUNT.match(v.strip())) and role(str(k)) != "metric":
            out[str(k)] = float(count.group(1))  # PySlowFast's `"epoch": "3/20"`: the third of twenty
            continue
        try:
            out[str(k)] = logged(v)
        except ValueError:
            continue
    said = next((v for k in STAGE_FIELDS if isinstance(v := obj.get(k), str)), "")
    if (stage := stage_of(said)) and stage != "train":  # the record's stage, in a field of its own
        out = {k if stage_of(k) or role(k) != "metric" else f"{stage}_{k}": v for k, v in out.items()}
    return out


def numbers_of(record: Mapping[str, Any], prefix: str = "", depth: int = 0) -> dict[str, float]:
    """Numbers of a record, nested objects joined with `/` ({"val": {"loss": 1}} -> val/loss; deeper
    than `_DEEPEST` levels, none). Lists inside a record are not readings, but for NVIDIA DLLogger's
    step, a tuple of counters that opens with the epoch and then its iteration (`"step": [1, 5,
    390]`, `[3]` for an epoch's summary). DLLogger's records of the run's settings (`"step":
    "PARAMETER"`) and of its final summary (`"step": []`) are no readings on the curve."""
    if depth == 0 and not_on_the_curve(record):
        return {}
    out: dict[str, float] = {}
    for k, v in record.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            if depth < _DEEPEST:
                out.update(numbers_of(v, f"{key}/", depth + 1))
        elif isinstance(v, bool):
            continue
        elif isinstance(v, int | float):
            out[key] = logged(v)
        elif spells_nan(v):
            out[key] = logged(v)  # how Python's json (quoted above) and some loggers spell NaN
        elif isinstance(v, list) and str(k).lower() == "step" and _counters(v):
            out.update(zip((f"{prefix}epoch", f"{prefix}iteration"), map(float, v[:2]), strict=False))
    return out


def not_on_the_curve(record: Mapping[str, Any]) -> bool:
    """DLLogger's record of the run's settings (`"step": "PARAMETER"`) or of its summary (`[]`)."""
    return (step := record.get("step")) == [] or (isinstance(step, str) and step.isalpha())


def _counters(v: list[Any]) -> bool:
    return 1 <= len(v) <= 3 and all(
        isinstance(c, int) and not isinstance(c, bool) and 0 <= c < 2**53 for c in v
    )


def braces(segment: str) -> tuple[int, int] | None:
    """Where a JSON object inside the line opens and closes: from the first `{` to the last `}`, as a
    greedy pattern from `{` to `}` finds it (searched for, that pattern took the square of a line of
    braces' length)."""
    opens = segment.find("{")
    closes = segment.rfind("}", opens + 1) if opens >= 0 else -1
    return (opens, closes) if closes >= 0 else None


def object_in(text: str) -> dict[Any, Any] | None:
    """The dict a braced text is, written as JSON or printed by Python; None when it is none."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        obj = python_dict(text)
    return obj if isinstance(obj, dict) else None


def python_dict(text: str) -> Any:
    """A dict Python printed (`{'loss': 0.69, 'epoch': 0.04}`: the Hugging Face Trainer's console),
    read as a literal (never evaluated); None when it is not one."""
    return python_literal(text) if text.startswith("{'") else None


def python_literal(text: str) -> Any:
    """A literal Python printed, read (never evaluated); None when it is none. Python prints NaN and
    infinity bare (`{'loss': nan}`), which no literal spells: they are read quoted, as some loggers
    write them (`'nan'`)."""
    try:
        return ast.literal_eval(text)
    except ValueError:  # a name in it: a bare `nan` or `inf`, or something no literal holds
        quoted = _BARE_SPECIAL.sub(lambda m: repr(m.group(0)), text)
        return python_literal(quoted) if quoted != text else None
    except (SyntaxError, RecursionError, MemoryError, TypeError):
        return None
