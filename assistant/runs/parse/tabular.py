"""CSV (Lightning's and Keras' CSVLogger), JSON lines, and JSON documents (Hugging Face's
trainer_state.json, a Keras `history.history` dump, a list of records)."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from assistant.runs.parse.names import role
from assistant.runs.parse.table import Columns, Run, RunParseError, finish, logged


def _axis_names(columns: Iterable[Any]) -> dict[Any, str]:
    """Rename the first epoch-like and step-like column to `epoch` / `step`."""
    rename: dict[Any, str] = {}
    for c in columns:
        r = role(str(c))
        if r != "metric" and r not in rename.values():
            rename[c] = r
    return rename


def read_csv(source: str | io.TextIOBase, name: str, sep: str = ",") -> Run:
    """Lightning writes train and validation metrics on different rows (blanks elsewhere); Keras one
    row per epoch. Both are plain CSV with a header; pandas' C reader keeps a long file fast."""
    try:
        # only empty cells are missing: a written "nan" is a logged NaN (see table.logged)
        raw = pd.read_csv(source, sep=sep, engine="c", keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise RunParseError(f"{name} looks like CSV but cannot be read as a table: {exc}") from None
    raw = raw.rename(columns=_axis_names(raw.columns))
    fmt = "lightning-csv" if {"epoch", "step"} <= set(raw.columns) else "csv"
    return finish(raw, fmt, name)


def _flat(record: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numbers of a JSON object, nested objects joined with `/` ({"val": {"loss": 1}} -> val/loss)."""
    out: dict[str, float] = {}
    for k, v in record.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{key}/"))
        elif isinstance(v, bool):
            continue
        elif isinstance(v, int | float):
            out[key] = logged(float(v))
        elif isinstance(v, str) and v.strip().lower() in {"nan", "inf", "-inf", "infinity", "-infinity"}:
            out[key] = logged(float(v))  # how some loggers spell a NaN loss
    return out


def _add_records(records: Iterable[Mapping[str, Any]], cols: Columns) -> None:
    for rec in records:
        values = _flat(rec)
        axes = _axis_names(values)
        epoch = step = None
        for raw, axis in axes.items():
            value = values.pop(raw)
            if axis == "epoch":
                epoch = value
            else:
                step = value
        if values:
            cols.add(epoch, step, values)


def read_jsonl(lines: Iterable[str], name: str) -> Run:
    cols = Columns()
    bad = 0
    for i, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            if bad > 20 and bad > cols.n:
                raise RunParseError(
                    f"{name}: line {i} and {bad - 1} others are not JSON; a JSON-lines log has one "
                    'object per line, e.g. {"epoch": 3, "loss": 0.41}'
                ) from None
            continue
        if isinstance(rec, Mapping):
            _add_records([rec], cols)
    notes = [f"{bad} lines that are not JSON were skipped"] if bad else []
    return finish(cols.frame(), "jsonl", name, notes)


def read_json(doc: Any, name: str) -> Run:
    """A whole JSON document: trainer_state.json, a Keras history dict, or a list of records."""
    cols = Columns()
    if isinstance(doc, Mapping) and isinstance(doc.get("log_history"), list):
        # The last entry of a finished run is a summary (train_runtime, the run's mean train_loss):
        # not a point on the curve.
        _add_records(
            (r for r in doc["log_history"] if isinstance(r, Mapping) and "train_runtime" not in r), cols
        )
        return finish(cols.frame(), "trainer-state", name)
    if isinstance(doc, Mapping) and doc and all(isinstance(v, list) for v in doc.values()):
        # Keras' History.history: {"loss": [...], "val_loss": [...]}, one value per epoch
        n = max(len(v) for v in doc.values())
        frame = pd.DataFrame(
            {k: [logged(float(x)) if isinstance(x, int | float) else x for x in v] + [math.nan] * (n - len(v))
             for k, v in doc.items()}
        )  # fmt: skip
        if "epoch" not in frame:
            frame.insert(0, "epoch", range(1, n + 1))
        return finish(frame, "keras-history", name)
    if isinstance(doc, list) and all(isinstance(r, Mapping) for r in doc):
        _add_records(doc, cols)
        return finish(cols.frame(), "json", name)
    raise RunParseError(
        f"{name} is JSON but not a training log: expected Hugging Face's trainer_state.json (with "
        '`log_history`), a Keras history ({"loss": [...]}), a list of records, or one object per line.'
    )
