"""CSV (Lightning's and Keras' CSVLogger, Stable-Baselines3's Monitor) and JSON lines, both read in
bounded pieces: CSV in chunks of rows through pandas' C reader, JSON lines one (length-capped) line at
a time."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

import pandas as pd

from assistant.runs.parse.commented import column_names, commented_header, sum_blocks
from assistant.runs.parse.finish import finish
from assistant.runs.parse.jsondoc import add_record
from assistant.runs.parse.lines import NUM, NUMBER
from assistant.runs.parse.listed import listed_columns
from assistant.runs.parse.names import STAGE_FIELDS, export_tag, is_metric_name, normalise, role, stage_of
from assistant.runs.parse.table import (
    DEFAULT_LIMITS,
    Columns,
    Limits,
    Run,
    RunParseError,
    logged,
    text_values,
)

CSV_CHUNK_CELLS = 1_000_000  # cells parsed at a time (8 MB as floats)
RUN_POINTS = 10  # a run's curve in one cell of a table of runs: this many readings or more
SPACES = r"\s+"  # columns aligned with spaces (rllab/AWR-style RL progress tables): pandas' C reader
# what pandas raises on a file that is not the table it looked like (RunParseError, a ValueError, is ours)
_UNREADABLE = (
    pd.errors.ParserError,
    pd.errors.EmptyDataError,
    UnicodeDecodeError,
    ValueError,
)


def _axis_names(columns: Iterable[Any]) -> dict[Any, str]:
    """Rename the first epoch-like and step-like column to `epoch` / `step`."""
    rename: dict[Any, str] = {}
    for c in columns:
        r = role(str(c))
        if r != "metric" and r not in rename.values():
            rename[c] = r
    return rename


def csv_cells(line: str, sep: str) -> list[str]:
    """The line's cells, a quoted one whole (timm's `"[3.5e-08, 3.5e-08]"`, a learning rate per group);
    runs of spaces separate a space-aligned table's."""
    if sep == SPACES:
        return line.split()
    try:
        return next(csv.reader([line.rstrip("\r\n")], delimiter=sep), [])
    except csv.Error:  # a stray carriage return or NUL inside the line
        return line.rstrip("\r\n").split(sep)


def read_csv(source: str | io.TextIOBase, name: str, sep: str = ",", limits: Limits = DEFAULT_LIMITS) -> Run:
    """Lightning writes train and validation metrics on different rows (blanks elsewhere); Keras one
    row per epoch. Both are plain CSV with a header. Only the epoch, step and metric columns are read
    (the first `max_metrics` metric names), in chunks of at most `CSV_CHUNK_CELLS` cells."""
    cols = Columns(limits.max_metrics)
    fmt, notes = "csv", []
    try:
        first, second = _first_rows(source)
        header = csv_cells(first, sep)
        header = [h.strip().strip("{}") for h in header]  # `{epoch}\t{lr}\t{train_loss}`
        if (commented := commented_header(first)) is not None:  # lcurve.out, DeepXDE's loss.dat
            width = len(csv_cells(second, sep))
            if (fitted := column_names(commented, width)) is None:
                raise RunParseError(
                    f"{name}'s header names {len(commented)} columns ({', '.join(commented[:6])}) but its "
                    f"rows hold {width} numbers: which is which cannot be told"
                )
            header, note = fitted
            if note and len(header) - 1 > limits.max_metrics:  # a block cut short would sum to a wrong loss
                raise RunParseError(
                    f"{name} holds {len(header) - 1} loss terms and metrics, over the {limits.max_metrics} "
                    "metrics a log may have (run_max_metrics): its losses cannot be summed whole"
                )
            notes += [note] if note else []
            fmt = "commented-table"
        elif export := _wandb_run(source, sep, header):  # W&B's "<run> - <metric>" columns
            header, note = export
            notes.append(note)
            fmt = "wandb-csv"
        elif [h.lower() for h in header] == ["wall time", "step", "value"]:
            tag = export_tag(name)
            header = [header[0], header[1], tag]
            notes.append(f"a TensorBoard CSV export of one scalar: its Value is read as `{tag}` (file name)")
            fmt = "tensorboard-csv"
        if (long := _long_layout(header, second, sep)) is not None:
            return _read_long(source, name, sep, header, long, limits)
        if _curve_cells(csv_cells(second, sep), header):
            runs, note = _listed_runs(source, sep, header, limits)
            return finish(runs, "csv-runs", name, [*notes, note])
        wanted = _wanted_columns(header, cols)
        chunk_rows = max(16, CSV_CHUNK_CELLS // max(1, len(wanted)))
        # only empty cells are missing: a written "nan" is a logged NaN (see table.logged)
        chunks = pd.read_csv(
            source,
            sep=sep,
            # a spreadsheet in a European locale separates by `;` and writes `0,4123`
            decimal="," if sep == ";" and _DECIMAL_COMMA.search(second) else ".",
            engine="c",
            keep_default_na=False,
            na_values=[""],
            usecols=wanted,
            chunksize=chunk_rows,
            on_bad_lines="skip",
            # a commented header is a comment like any other (a restarted lcurve.out prints it again)
            **({"header": None, "comment": "#"} if commented is not None else {}),
        )
        rename: dict[Any, str] | None = None
        for chunk in chunks:
            if rename is None:
                # by position: pandas mangles repeated names, and W&B's were renamed in `header`
                names = [header[i].strip() for i in sorted(wanted)]
                axes = _axis_names(names)
                rename = {c: axes.get(n, n) for c, n in zip(chunk.columns, names, strict=True)}
                if fmt == "csv" and {"epoch", "step"} <= set(axes.values()):
                    fmt = "lightning-csv"
            chunk = _staged(sum_blocks(chunk.rename(columns=rename)))
            cols.extend(pd.DataFrame({str(c): text_values(chunk[c]) for c in chunk.columns}))
    except RunParseError:
        raise
    except _UNREADABLE as exc:
        raise RunParseError(f"{name} looks like CSV but cannot be read as a table: {exc}") from None
    return finish(cols, fmt, name, notes)


def _curve_cells(cells: list[str], header: list[str]) -> dict[str, list[float]]:
    """The curves a row of a table of runs holds whole, each in one cell as a list of `RUN_POINTS`
    numbers or more under a metric's name (not a learning rate per parameter group, timm's `"[3.5e-08,
    3.5e-08]"`). None in a table with an epoch or step column: its rows are epochs, and a list in
    one is that epoch's (a per-class accuracy)."""
    if any(role(h) in ("epoch", "step") for h in header):
        return {}
    curves = {}
    for col, cell in zip(header, cells, strict=False):
        if not _listed(cell) or not is_metric_name(col) or normalise(col) == "lr":
            continue
        items = [t.strip() for t in cell.strip()[1:-1].split(",")]
        if all(re.fullmatch(NUM, t, re.IGNORECASE) for t in items):
            curves[col.strip()] = [logged(float(t)) for t in items]
    return curves


def _listed(cell: str) -> bool:
    """The cell is a bracketed list of `RUN_POINTS` items or more (its commas counted, not parsed)."""
    text = cell.strip()
    return text.startswith("[") and text.endswith("]") and text.count(",") >= RUN_POINTS - 1


def _listed_runs(
    source: str | io.TextIOBase, sep: str, header: list[str], limits: Limits
) -> tuple[Columns, str]:
    """A table of runs, one per row, each holding its curves whole in list cells (a sweep's results:
    `training_losses` as "[2.79, 1.88, …]" beside its settings and final scores): the last row's
    curves (only its lists are parsed), one point per position, and a note saying so."""
    last: list[str] = []
    rows = last_at = 0
    skipped = [0]
    with open(source, encoding="utf-8", errors="replace") if isinstance(source, str) else source as f:
        lines = bounded_lines(f, limits.max_line_bytes, skipped)
        next(lines, None)  # the header
        for line in lines:
            rows += 1
            cells = csv_cells(line, sep)
            if any(_listed(c) for c in cells):
                last, last_at = cells, rows
    curves = _curve_cells(last, header)
    shown = ", ".join(f"`{k}`" for k in curves)
    which = "the last row's" if last_at == rows else f"row {last_at}'s (the last with curves)"
    note = f"{rows} runs, one per row, each with its curves in lists ({shown}): {which} are read"
    return listed_columns(curves, limits.max_metrics), note


# Stable-Baselines3's (and OpenAI baselines') Monitor file: a `#{"t_start": …, "env_id": …}` line, then
# one row per episode: `r` its reward, `l` its length in steps, `t` the seconds since the start.
MONITOR_HEAD = re.compile(r'^#\s*\{.*"(?:t_start|env_id)"')


def read_monitor(source: str | io.TextIOBase, name: str, limits: Limits = DEFAULT_LIMITS) -> Run:
    """A Monitor CSV: the episode reward on the steps taken so far (the running sum of lengths)."""
    cols = Columns(limits.max_metrics)
    done = 0.0
    try:
        chunks = pd.read_csv(source, skiprows=1, chunksize=100_000, on_bad_lines="skip")
        for chunk in chunks:
            if not {"r", "l"} <= set(chunk.columns):
                raise RunParseError(f"{name} has a Monitor header but no `r` and `l` columns")
            lengths = pd.to_numeric(chunk["l"], errors="coerce").fillna(0).to_numpy()
            steps = done + lengths.cumsum()
            done = float(steps[-1]) if len(steps) else done
            frame = pd.DataFrame({"step": steps, "episode reward": text_values(chunk["r"])})
            if "is_success" in chunk.columns:  # goal-conditioned tasks log whether the episode succeeded
                frame["success"] = text_values(chunk["is_success"])
            cols.extend(frame)
    except RunParseError:
        raise
    except _UNREADABLE as exc:
        raise RunParseError(f"{name} looks like a Monitor CSV but cannot be read: {exc}") from None
    note = "a Monitor file: one row per episode, its reward on the steps taken so far"
    return finish(cols, "monitor-csv", name, [note])


_WANDB = re.compile(r"^(.+?) - (.+?)(__MIN|__MAX)?$")


def _wandb_run(source: str | io.TextIOBase, sep: str, header: list[str]) -> tuple[list[str], str] | None:
    """A W&B chart or history export names its columns `<run> - <metric>` (with `__MIN`/`__MAX`
    bands): the header with the run that has the most values renamed to bare metric names, the
    others blanked out, and a note; None for any other CSV."""
    runs: dict[str, list[int]] = {}
    for i, cell in enumerate(header):
        m = _WANDB.match(cell.strip())
        if m and not m.group(3):
            runs.setdefault(m.group(1), []).append(i)
    if not runs:
        return None
    counts = dict.fromkeys(runs, 0)
    first = {run: idx[0] for run, idx in runs.items()}
    used = sorted(first.values())  # read by position: pandas may name a column otherwise than the header
    for chunk in pd.read_csv(source, sep=sep, usecols=used, chunksize=50_000, dtype=str):
        for run, i in first.items():
            counts[run] += int(chunk.iloc[:, used.index(i)].notna().sum())
    if isinstance(source, io.TextIOBase):
        source.seek(0)
    best = max(counts, key=lambda r: counts[r])
    renamed = []
    for i, cell in enumerate(header):
        m = _WANDB.match(cell.strip())
        renamed.append(m.group(2) if m and i in runs[best] else "" if m else cell)
    note = f"a W&B export of {len(runs)} runs: read the one with the most points ({best})"
    return renamed, note if len(runs) > 1 else "a W&B export"


def _staged(chunk: pd.DataFrame) -> pd.DataFrame:
    """Rows whose stage a column says (torch_ecg's `part`: train or val; `mode`, `split`), their
    metrics named for it: a validation row's `f1_score` is `val_f1_score` (its learning rate stays
    the learning rate). The first such column whose cells name a held-out stage is the one; a column
    of other words or codes says nothing."""
    for said in (c for c in chunk.columns if str(c).strip().lower() in STAGE_FIELDS):
        stages = chunk[said].map(lambda v: stage_of(v) if isinstance(v, str) else None)
        if stages.isin(["val", "test"]).any():
            break
    else:
        return chunk
    parts = []
    for stage, rows in chunk.drop(columns=[said]).groupby(stages, sort=False, dropna=False):
        if stage in ("val", "test"):
            metrics = [c for c in rows.columns if role(str(c)) == "metric" and not stage_of(str(c))]
            rows = rows.rename(columns={c: f"{stage}_{c}" for c in metrics if normalise(str(c)) != "lr"})
        parts.append(rows)
    return pd.concat(parts).sort_index()


def _wanted_columns(header: list[str], cols: Columns) -> list[int]:
    """Positions of the columns worth reading: epoch and step, and the first `cols.max_metrics`
    metric names (the others are counted as skipped, never parsed)."""
    wanted, metrics = [], 0
    for i, column in enumerate(header):
        if role(column) != "metric" or column.strip().lower() in STAGE_FIELDS:
            wanted.append(i)
        elif is_metric_name(column):
            if metrics < cols.max_metrics:
                wanted.append(i)
                metrics += 1
            else:
                cols.skipped_values += 1
                if len(cols.skipped_names) < 3:
                    cols.skipped_names.append(column)
        elif len(cols.other_names) < 8:
            cols.other_names.append(column)
    return wanted


_DECIMAL_COMMA = re.compile(r"(?:^|;)\s*-?\d+,\d+\s*(?:;|$)")


def _first_rows(source: str | io.TextIOBase) -> tuple[str, str]:
    """The header line and the one under it (a path is opened; a text stream is rewound after them)."""
    if isinstance(source, str):
        with open(source, encoding="utf-8", errors="replace") as f:
            return f.readline(Limits.max_line_bytes), f.readline(Limits.max_line_bytes)
    lines = source.readline(Limits.max_line_bytes), source.readline(Limits.max_line_bytes)
    source.seek(0)
    return lines


def bounded_lines(f: IO[str], max_bytes: int, skipped: list[int]) -> Iterator[str]:
    """Lines of a text stream without their ending; a line longer than `max_bytes` characters is
    skipped whole (never held in memory) and counted in `skipped[0]`."""
    while True:
        line = f.readline(max_bytes + 1)
        if not line:
            return
        if len(line) > max_bytes and not line.endswith("\n"):
            skipped[0] += 1
            while (rest := f.readline(max_bytes + 1)) and not rest.endswith("\n"):
                pass
            continue
        yield line.rstrip("\n")


def read_jsonl(lines: Iterable[str], name: str, limits: Limits = DEFAULT_LIMITS) -> Run:
    cols = Columns(limits.max_metrics)
    bad = 0
    for i, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            bad += 1
            if bad > 20 and bad > cols.n:
                raise RunParseError(
                    f"{name}: line {i} and {bad - 1} others are not JSON; a JSON-lines log has one "
                    'object per line, e.g. {"epoch": 3, "loss": 0.41}'
                ) from None
            continue
        if isinstance(rec, Mapping):
            add_record(rec, cols)
    notes = [f"{bad} lines that are not JSON were skipped"] if bad else []
    return finish(cols, "jsonl", name, notes)


def _long_layout(header: list[str], second: str, sep: str) -> tuple[int, int] | None:
    """(name column, value column) of a table in long form, one reading per row (`Epoch,Loss,Value`
    / `0,recon_loss,197.0`; tbparse's `step,tag,value`): a column of metric names beside one named
    `value`, the rest the epoch or step."""
    cells = csv_cells(second, sep)
    lowered = [h.strip().lower() for h in header]
    if len(cells) != len(header) or "value" not in lowered:
        return None
    value = lowered.index("value")
    names = [
        i for i, c in enumerate(cells) if i != value and role(header[i]) == "metric" and is_metric_name(c)
    ]
    others = [i for i in range(len(header)) if i not in (value, *names)]
    if len(names) != 1 or any(role(header[i]) == "metric" for i in others):
        return None
    return names[0], value


def _read_long(
    source: str | io.TextIOBase, name: str, sep: str, header: list[str], long: tuple[int, int], limits: Limits
) -> Run:
    """Each row's reading under the name its row gives, at the row's epoch or step."""
    named, value = long
    cols = Columns(limits.max_metrics)
    axes = {i: role(h) for i, h in enumerate(header) if role(h) != "metric"}
    chunks = pd.read_csv(
        source, sep=sep, keep_default_na=False, on_bad_lines="skip", dtype=str,
        chunksize=max(16, CSV_CHUNK_CELLS // len(header)),
    )  # fmt: skip
    for row in (row for chunk in chunks for row in chunk.itertuples(index=False)):
        at = {kind: float(row[i]) for i, kind in axes.items() if NUMBER.match(row[i].strip())}
        try:
            cols.add(at.get("epoch"), at.get("step"), {str(row[named]).strip(): logged(row[value])})
        except ValueError:
            continue  # a value that is no number: that row is skipped
    note = f"a table in long form: each row one reading, named by its `{header[named]}` column"
    return finish(cols, "csv", name, [note])
