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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from assistant.runs.parse.names import (
    PLAYERS,
    TRAIN,
    component_of,
    direction,
    evaluated,
    is_metric_name,
    normalise,
    stage_of,
    tokens,
)
from assistant.runs.parse.parts import pair_lone_part, sum_of_parts
from assistant.runs.parse.restarts import last_run, last_started, steps_across_epochs


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
    blown_before: bool = False  # an earlier run in the same log (not read) logged a NaN or inf loss
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
    """A column of cells read as text: numbers as floats, a written "nan" as a logged NaN (+inf),
    anything else not logged (NaN)."""
    if pd.api.types.is_numeric_dtype(column):
        return column.astype("float64")  # already numbers (NaN = an empty cell)
    column = column.map(lambda v: math.inf if isinstance(v, str) and v.strip().lower() in _NAN_TEXT else v)
    return pd.to_numeric(column, errors="coerce").astype("float64")


_HELD_OUT_FILE = {"val", "valid", "validation"}  # a file named for the validation set (not `test`: a
# training script's trial run is often `test.log`)


def _file_stage(name: str, metric_cols: Sequence[Any]) -> str | None:
    """ "val" for a file named for the validation set alone (a U-Net's `val_log.csv` beside its
    `train_log.csv`) whose columns say no stage (`loss`, `mIoU`): they are that set's readings."""
    words = set(tokens(name.rsplit(".", 1)[0]))
    if not words & _HELD_OUT_FILE or words & TRAIN or any(stage_of(str(c)) for c in metric_cols):
        return None
    return "val"


def finish(cols: Columns, fmt: str, name: str, notes: Iterable[str] = (), starts: Sequence[int] = ()) -> Run:
    """Normalise what a reader stored into a Run.

    Metric names are mapped to the shared vocabulary; when two columns map to one name (Lightning's
    `train_loss_step` and `train_loss_epoch`), the finer one (more values) is kept. Epochs become
    1-based, as people count them: 0-based integer epochs (Lightning, Keras CSV) are shifted, and
    fractional ones (Hugging Face's 0.25 = a quarter into the first) are rounded up."""
    notes = list(notes)
    if note := cols.skipped_note():
        notes.append(note)
    metric_cols = cols.names  # only metric names are ever stored
    if not metric_cols and cols.empty_names and not cols.skipped_values:
        raise RunParseError(
            f"{name or 'the input'} names metrics ({', '.join(cols.empty_names)}) "
            "but none has a number in it."
        )
    if not metric_cols:
        shown = ", ".join(map(str, cols.other_names)) or "nothing"
        raise NoMetricError(
            f"{name or 'the input'} holds no training metric (found {shown}). A training log needs a "
            "loss or accuracy per epoch or step, e.g. columns `epoch,loss,val_loss` or lines like "
            "`Epoch 3/20 - loss: 0.41 - val_loss: 0.58`."
        )
    axes = {
        "epoch": np.frombuffer(cols.epoch) if cols.n else np.empty(0),
        "step": np.frombuffer(cols.step) if cols.n else np.empty(0),
    }
    keep, runs = last_run(axes["epoch"], axes["step"])  # the last run's rows: its columns are chosen
    chosen: dict[str, str] = {}  # normalised name -> the raw column kept for it
    stage = _file_stage(name, metric_cols)
    if stage:
        notes.append("the file is named for the validation set and no column names a stage: read as held-out")
    for col in metric_cols:
        key = normalise(str(col), stage or "train")
        if key not in chosen or _finer(cols, col, chosen[key], keep):
            chosen[key] = col
    # DETR, fairseq, RL's Test_Return…: with no validation curve, test is the held-out set
    # (a validation reading printed once, `Best val Acc: 0.74` at the end, is a summary, not a curve)
    curves = [k for k in chosen if len(cols.values[chosen[k]]) > 1]
    # (a reading only an evaluation computes, mAP, is the held-out set's by default: not a val curve)
    said = [k for k in curves if k.startswith("val_") and not evaluated(str(chosen[k]))]
    if not said and any(k.startswith("test_") for k in curves):
        for key in [k for k in curves if k.startswith("test_")]:
            if (to := "val_" + key[len("test_") :]) not in curves:
                chosen[to] = chosen.pop(key)
        notes.append("no validation curve: the test curve is read as the held-out one")
    # a training loss named for what it is (Megatron-LM's `lm loss`), the log's only one, is its loss
    # (one part alone is no sum of parts)
    named = [k for k in chosen if k.startswith("train_") and k.endswith("_loss")]
    if "train_loss" not in chosen and len(named) == 1 and _own_loss(named[0]):
        chosen["train_loss"] = chosen.pop(named[0])
    if note := pair_lone_part(chosen):
        notes.append(note)
    # a held-out loss named for its split (`val_night_loss`) or by its form (`val_mse` in a regression):
    # beside a training loss and with no other, it is the held-out loss
    if "train_loss" in chosen and "val_loss" not in chosen:
        held = [k for k in chosen if k.startswith("val_") and k.endswith("_loss")] or [
            k for k in chosen if k.startswith("val_") and direction(k) == "down"
        ]
        if len(held) == 1:
            chosen["val_loss"] = chosen.pop(held[0])
            notes.append(f"no validation loss: `{chosen['val_loss']}` is read as the held-out loss")
    order = sorted(
        chosen, key=lambda k: (k not in CORE, CORE.index(k) if k in CORE else 0, -len(cols.values[chosen[k]]))
    )
    budget = max(MIN_CELLS, CELLS_PER_VALUE * sum(len(cols.values[c]) for c in chosen.values()))
    kept = [k for k in order if k in CORE]
    left_out = 0
    for key in order:
        if key in kept:
            continue
        if (len(kept) + 3) * cols.n <= budget:
            kept.append(key)
        else:
            left_out += 1
    if left_out:
        notes.append(f"{left_out} sparse metrics were left out of the table (too few values for its size)")
    data = dict(axes)
    sources = {key: str(chosen[key]) for key in kept}
    for stage in ("train", "val"):
        if f"{stage}_loss" not in chosen and (summed := sum_of_parts(cols, chosen, stage)):
            data[f"{stage}_loss"], parts = summed
            notes.append(f"{stage}_loss is the sum of its logged parts ({', '.join(parts)})")
            sources[f"{stage}_loss"] = " + ".join(
                str(chosen[k]) for k in chosen if component_of(k) and k.startswith(stage)
            )
    for key in kept:
        data[key] = cols.dense(chosen[key])
    if not any(_is_curve(v) for k, v in data.items() if k not in ("epoch", "step", "lr")):
        shown = ", ".join(k for k in data if k not in ("epoch", "step")) or "nothing"
        raise RunParseError(
            f"{name or 'the input'} holds no training curve: {shown}, each logged once at most. A "
            "training log needs a loss or accuracy at several epochs or steps."
        )
    columns = [k for k in data if k not in ("epoch", "step")]
    out = pd.DataFrame(data)[["epoch", "step", *sorted(columns, key=_column_order)]]
    if runs > 1:
        notes.append(f"the log holds {runs} runs (its counter starts again): the last one is read")
    elif starts and np.isnan(data["epoch"]).all() and np.isnan(data["step"]).all():
        first = next((k for k in (*CORE, *data) if k in data and k not in ("epoch", "step", "lr")), None)
        keep, runs = last_started(data[first], starts) if first else (keep, runs)
        if runs > 1:
            notes.append(f"the log holds {runs} runs (its opening line comes again): the last one is read")
    earlier = out[~keep]
    blown = any(
        np.isinf(earlier[c].to_numpy(dtype=float)).any() for c in ("train_loss", "val_loss") if c in earlier
    )
    out = out[keep & out[columns].notna().any(axis=1).to_numpy()].reset_index(drop=True)
    if runs > 1:  # what only the earlier runs logged is not the last run's
        gone = [c for c in columns if out[c].isna().all()]
        out = out.drop(columns=gone)
        sources = {k: v for k, v in sources.items() if k not in gone}
    out["epoch"] = _human_epochs(out["epoch"])
    if (steps := steps_across_epochs(out["epoch"].to_numpy(), out["step"].to_numpy())) is not None:
        out["step"] = steps
        notes.append("the step counter starts again each epoch: the steps are counted across epochs")
    return Run(out, fmt, name, notes, sources, blown_before=blown)


def _own_loss(key: str) -> bool:
    """Not a player's loss (`train_d_loss`, an RL critic's `train_value_loss`): its own objective."""
    return not set(key.split("_")[1:-1]) & PLAYERS


def _finer(cols: Columns, col: str, than: str, keep: np.ndarray) -> bool:
    """Whether `col` is the one to keep of two columns with one name: the one the last run (`keep`)
    logged, when the other is an earlier run's alone; else the one with more values; of two as long,
    the one no later line of a row wrote over (MindSpore's epoch line `Average Train Loss: 1.629` over
    the `Train Loss` its batch lines wrote again and again, the last batch's staying), then the one
    whose name says its stage (an epoch's `Train Loss: 0.64` summary over the bare `loss` of the batch
    lines before it)."""
    last = [bool(keep[np.frombuffer(cols.rows[c], dtype=np.int64)].any()) for c in (col, than)]
    if last[0] != last[1]:
        return last[0]
    more, fewer = len(cols.values[col]), len(cols.values[than])
    if more != fewer:
        return more > fewer
    ranks = [(c not in cols.overwritten, stage_of(str(c)) is not None) for c in (col, than)]
    return ranks[0] > ranks[1]


def _is_curve(values: np.ndarray) -> bool:
    """Two readings or more; or one that is a blow-up (a NaN or inf loss is a finding on its own)."""
    logged = values[~np.isnan(values)]
    return len(logged) > 1 or bool(np.isinf(logged).any())


def _column_order(key: str) -> tuple[bool, int, str]:
    return (key not in CORE, CORE.index(key) if key in CORE else 0, key)


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
