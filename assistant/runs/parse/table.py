"""`Run`: one training log as a table (epoch, step, normalised metrics), built column by column so a
long log costs 8 bytes per value, not a Python object per row."""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from assistant.runs.parse.names import is_metric_name, normalise


class RunParseError(ValueError):
    """The input is not a training log we can read, or holds no metric; the message says what to do."""


@dataclass
class Run:
    # columns: epoch, step, then one per metric. NaN = not logged on that row; a value logged as NaN
    # (a loss that blew up) is stored as +inf, so the two never mix.
    table: pd.DataFrame
    fmt: str  # which reader produced it: lightning-csv, csv, trainer-state, tensorboard, jsonl, console
    name: str = ""  # the file name, or "pasted text"
    notes: list[str] = field(default_factory=list)  # what the reader skipped, in words

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


def logged(value: float) -> float:
    """A value as written in the log: NaN becomes +inf (NaN in the table means "not logged")."""
    return math.inf if math.isnan(value) else value


_NAN_TEXT = {"nan", "-nan", "+nan", "nan.0"}


class Columns:
    """Rows appended as {name: value}; columns are float arrays padded with NaN."""

    def __init__(self) -> None:
        self.cols: dict[str, array] = {"epoch": array("d"), "step": array("d")}
        self.n = 0

    def add(self, epoch: float | None, step: float | None, values: Mapping[str, float]) -> None:
        self.n += 1
        self._put("epoch", epoch)
        self._put("step", step)
        for k, v in values.items():
            self._put(k, v)
        for col in self.cols.values():
            if len(col) < self.n:
                col.append(math.nan)

    def update_last(self, epoch: float | None, values: Mapping[str, float]) -> None:
        """Overwrite the last row's values (a progress bar's later update of the same epoch)."""
        if epoch is not None:
            self.cols["epoch"][-1] = epoch
        for k, v in values.items():
            if k not in self.cols:
                self.cols[k] = array("d", [math.nan] * self.n)
            self.cols[k][-1] = v

    def last(self, name: str) -> float:
        return self.cols[name][-1] if self.n else math.nan

    def _put(self, name: str, value: float | None) -> None:
        col = self.cols.get(name)
        if col is None:
            col = self.cols[name] = array("d", [math.nan] * (self.n - 1))
        col.append(math.nan if value is None else value)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({k: np.frombuffer(v, dtype=np.float64) for k, v in self.cols.items()})


def finish(raw: pd.DataFrame, fmt: str, name: str, notes: list[str] | None = None) -> Run:
    """Normalise a raw table (any column names; `epoch`/`step` already named so) into a Run.

    Metric names are mapped to the shared vocabulary; when two columns map to one name (Lightning's
    `train_loss_step` and `train_loss_epoch`), the finer one (more values) is kept. Epochs become
    1-based, as people count them: 0-based integer epochs (Lightning, Keras CSV) are shifted, and
    fractional ones (Hugging Face's 0.25 = a quarter into the first) are rounded up."""
    notes = list(notes or [])
    found = [c for c in raw.columns if c not in ("epoch", "step")]
    metric_cols = [c for c in found if is_metric_name(str(c))]
    if not metric_cols:
        shown = ", ".join(map(str, found[:8])) or "nothing"
        raise RunParseError(
            f"{name or 'the input'} holds no training metric (found {shown}). A training log needs a "
            "loss or accuracy per epoch or step, e.g. columns `epoch,loss,val_loss` or lines like "
            "`Epoch 3/20 - loss: 0.41 - val_loss: 0.58`."
        )
    out = pd.DataFrame(index=raw.index)
    for axis in ("epoch", "step"):
        out[axis] = pd.to_numeric(raw[axis], errors="coerce") if axis in raw else np.nan
    chosen: dict[str, pd.Series] = {}
    for col in metric_cols:
        column = raw[col]
        if not pd.api.types.is_numeric_dtype(
            column
        ):  # CSV cells read as text: a written "nan" is a logged NaN
            column = column.map(
                lambda v: math.inf if isinstance(v, str) and v.strip().lower() in _NAN_TEXT else v
            )
        values = pd.to_numeric(column, errors="coerce").astype("float64")
        if not values.notna().any():
            continue
        key = normalise(str(col))
        if key not in chosen or values.notna().sum() > chosen[key].notna().sum():
            chosen[key] = values
    if not chosen:
        raise RunParseError(
            f"{name or 'the input'} names metrics ({', '.join(map(str, metric_cols[:8]))}) "
            "but none has a number in it."
        )
    order = sorted(chosen, key=lambda k: (k not in _FIRST, _FIRST.index(k) if k in _FIRST else 0, k))
    for key in order:
        out[key] = chosen[key]
    out = out[out[order].notna().any(axis=1)].reset_index(drop=True)
    out["epoch"] = _human_epochs(out["epoch"])
    return Run(out, fmt, name, notes)


_FIRST = ["train_loss", "val_loss", "train_acc", "val_acc", "lr"]


def _human_epochs(epoch: pd.Series) -> pd.Series:
    known = epoch.dropna()
    if known.empty:
        return epoch
    # a row logged without its epoch (a TensorBoard tag written at a step with no `epoch` scalar)
    # belongs to the epoch of the row before it
    epoch = epoch.ffill().bfill()
    if (known != known.round()).any():
        return np.ceil(epoch).clip(lower=1)
    return epoch + 1 if known.min() == 0 else epoch
