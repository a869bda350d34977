"""`Run`: one training log as a table (epoch, step, normalised metrics), and `Columns`, the bounded
store every reader fills while it streams the log.

Memory stays proportional to what the log holds, whatever its shape: a column keeps only the rows it
has a value on (row number and value, 16 bytes each), so a log whose every line names a new metric
costs what its values cost, not rows × names; at most `Limits.max_metrics` distinct metric names are
kept; and the dense table built at the end spends at most `CELLS_PER_VALUE` cells per stored value on
metrics beyond the five the detectors read (the sparsest are left out, with a note).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from assistant.runs.parse.names import is_metric_name
from assistant.runs.parse.rewrites import unwrap_numbers


class RunParseError(ValueError):
    """The input is not a training log we can read, or holds no metric; the message says what to do."""


class NoMetricError(RunParseError):
    """The input was read and names no training metric at all (a first line of prose taken for a
    table's header reads as one)."""


@dataclass(frozen=True)
class Limits:
    """What one log may cost (settings `run_max_mb`, `run_max_metrics`, `json_max_depth`)."""

    max_bytes: int = 500_000_000
    max_metrics: int = 64
    """Distinct metric names kept; values of further names are skipped (and counted in a note)."""
    max_depth: int = 32
    """Deepest nesting of a JSON log (objects in lists in objects…); deeper is refused."""
    max_line_bytes: int = 256_000
    """A longer line is skipped (a log's line is a few hundred bytes; this is a blob, not a reading)."""

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        return cls(
            max_bytes=int(settings.run_max_mb * 1e6),
            max_metrics=settings.run_max_metrics,
            max_depth=settings.json_max_depth,
        )


DEFAULT_LIMITS = Limits()
CELLS_PER_VALUE = 4  # the dense table's budget for metrics beyond CORE: cells per stored value
MIN_CELLS = 1 << 20  # …but never less than this (8 MB): small logs keep every metric
CORE = ["train_loss", "val_loss", "train_acc", "val_acc", "lr"]  # what the detectors and the plot read


@dataclass
class Run:
    # columns: epoch, step, then one per metric. NaN = not logged on that row; a value logged as NaN
    # (a loss that blew up) is stored as +inf, so the two never mix.
    table: pd.DataFrame
    fmt: str  # which reader produced it: lightning-csv, csv, trainer-state, tensorboard, jsonl, console
    name: str = ""  # the file name, or "pasted text"
    notes: list[str] = field(default_factory=list)  # what the reader skipped, in words
    sources: dict[str, str] = field(default_factory=dict)  # column -> the name the log gave it
    resumed: bool = False  # the last run goes on from the weights of an earlier one in the log
    stopped: str | None = None  # why the log says the run stopped: "target" (its quality target
    # reached: MLPerf's `run_stop` with status success) or "early" (early stopping's patience ran out)

    @property
    def metrics(self) -> list[str]:
        return [c for c in self.table.columns if c not in ("epoch", "step")]

    @property
    def has_epochs(self) -> bool:
        return bool(self.table["epoch"].notna().any())

    def __len__(self) -> int:
        return len(self.table)

    def summary(self) -> str:
        t = self.table
        span = f"{int(t['epoch'].max())} epochs" if self.has_epochs else f"{len(t)} rows"
        return f"{self.name or 'run'} ({self.fmt}): {span}; metrics {', '.join(self.metrics)}"


def as_float(value: float | int | str) -> float:
    """A logged number as a float; an integer too large for one (`1000…0`, 400 digits, in JSON) is
    infinite, as the same number written `1e400` is."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if int(value) > 0 else -math.inf


def logged(value: float | int | str) -> float:
    """A value as written in the log: NaN becomes +inf (NaN in the table means "not logged")."""
    number = as_float(value)
    return math.inf if math.isnan(number) else number


_NAN_TEXT = {"nan", "-nan", "+nan", "nan.0"}


class Columns:
    """Rows appended as {name: value}. Epoch and step are dense (one per row); every other column is
    sparse (the rows it has a value on). A row whose values were all skipped is not added."""

    def __init__(self, max_metrics: int = Limits.max_metrics) -> None:
        self.epoch, self.step = array("d"), array("d")
        self.rows: dict[str, array] = {}
        self.values: dict[str, array] = {}
        self.max_metrics = max_metrics
        self.skipped_values = 0
        self.skipped_names: list[str] = []  # the first few, for the note
        self.other_names: list[str] = []  # the first few names that are not metrics, for an error
        self.empty_names: list[str] = []  # metric columns that held no number, for an error
        self.overwritten: set[str] = set()  # columns a later line of the same row wrote over
        self.n = 0

    def _column(self, name: str) -> bool:
        """Whether values of `name` are kept: a metric name (loss, accuracy, lr…), within the cap."""
        if name in self.values:
            return True
        if not is_metric_name(name):
            if len(self.other_names) < 8 and name not in self.other_names:
                self.other_names.append(name)
            return False
        if len(self.values) >= self.max_metrics:
            self.skipped_values += 1
            if len(self.skipped_names) < 3 and name not in self.skipped_names:
                self.skipped_names.append(name)
            return False
        self.rows[name], self.values[name] = array("q"), array("d")
        return True

    def add(self, epoch: float | None, step: float | None, values: Mapping[str, float]) -> None:
        kept = False
        for k, v in values.items():
            if self._column(k):
                self.rows[k].append(self.n)
                self.values[k].append(v)
                kept = True
        if kept:
            self.epoch.append(math.nan if epoch is None else epoch)
            self.step.append(math.nan if step is None else step)
            self.n += 1

    def update_last(self, epoch: float | None, values: Mapping[str, float]) -> None:
        """Overwrite the last row's values (a progress bar's later update of the same epoch)."""
        if not self.n:
            self.add(epoch, None, values)
            return
        if epoch is not None:
            self.epoch[-1] = epoch
        last = self.n - 1
        for k, v in values.items():
            if not self._column(k):
                continue
            if self.rows[k] and self.rows[k][-1] == last:
                self.values[k][-1] = v
                self.overwritten.add(k)
            else:
                self.rows[k].append(last)
                self.values[k].append(v)

    def rename(self, old: str, new: str) -> None:
        """Give a column another name (none is replaced: a column of that name stays as it is)."""
        if new not in self.values:
            self.values[new], self.rows[new] = self.values.pop(old), self.rows.pop(old)

    def last(self, name: str) -> float:
        rows = self.rows.get(name)
        return self.values[name][-1] if rows and rows[-1] == self.n - 1 else math.nan

    def extend(self, frame: pd.DataFrame) -> None:
        """Append a block of rows at once (a chunk of a CSV): `epoch`/`step` columns if present, every
        other column numeric (NaN = not logged)."""
        n = len(frame)
        if not n:
            return
        metrics = {
            c: frame[c].to_numpy(dtype=np.float64) for c in frame.columns if c not in ("epoch", "step")
        }
        has = np.zeros(n, dtype=bool)
        for name, v in metrics.items():
            present = ~np.isnan(v)
            has |= present
            empty = not present.any() and is_metric_name(name)
            if empty and name not in self.empty_names and len(self.empty_names) < 8:
                self.empty_names.append(name)
        keep = np.flatnonzero(has)
        if not len(keep):
            return
        for axis, store in (("epoch", self.epoch), ("step", self.step)):
            col = frame[axis].to_numpy(dtype=np.float64) if axis in frame else np.full(n, np.nan)
            store.frombytes(np.ascontiguousarray(col[keep]).tobytes())
        position = np.full(n, -1, dtype=np.int64)
        position[keep] = np.arange(self.n, self.n + len(keep))
        for name, v in metrics.items():
            at = np.flatnonzero(~np.isnan(v))
            if not len(at) or not self._column(name):
                continue
            self.rows[name].frombytes(position[at].astype(np.int64).tobytes())
            self.values[name].frombytes(np.ascontiguousarray(v[at]).tobytes())
        self.n += len(keep)

    @property
    def names(self) -> list[str]:
        return list(self.values)

    def skipped_note(self) -> str | None:
        if not self.skipped_values:
            return None
        return (
            f"metrics beyond the first {self.max_metrics} names (e.g. {', '.join(self.skipped_names)}) "
            "were skipped (run_max_metrics)"
        )

    def dense(self, name: str) -> np.ndarray:
        out = np.full(self.n, np.nan)
        out[np.frombuffer(self.rows[name], dtype=np.int64)] = np.frombuffer(self.values[name])
        return out


def text_values(column: pd.Series) -> pd.Series:
    """A column of cells read as text: numbers as floats, also one printed as its holder (a TSV of
    `tensor(3.4634, device='cuda:0')` cells), a written "nan" as a logged NaN (+inf), anything else not
    logged (NaN)."""
    if pd.api.types.is_numeric_dtype(column):
        return column.astype("float64")  # already numbers (NaN = an empty cell)
    column = column.map(_cell)
    return pd.to_numeric(column, errors="coerce").astype("float64")


def _cell(v: Any) -> Any:
    if not isinstance(v, str):
        return v
    v = unwrap_numbers(v) if "(" in v else v  # (then `tensor(nan, …)` is a NaN written, as `nan` is)
    return math.inf if v.strip().lower() in _NAN_TEXT else v
