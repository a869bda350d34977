"""An MLflow run folder (`mlruns/<experiment>/<run>/`): one file per metric under `metrics/` (a name
with `/` is a sub-folder), each line `<timestamp> <value> <step>`. The readings are joined on their
step; a metric named `epoch` is the epoch axis."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from assistant.runs.parse.finish import finish
from assistant.runs.parse.names import role
from assistant.runs.parse.table import (
    DEFAULT_LIMITS,
    Columns,
    Limits,
    Run,
    RunParseError,
    text_values,
)


def metrics_dir(path: Path) -> Path | None:
    """The `metrics/` folder of an MLflow run folder (or the folder itself), else None."""
    for candidate in (path / "metrics", path):
        if candidate.is_dir() and candidate.name == "metrics" and any(candidate.rglob("*")):
            return candidate
    return None


def read_mlflow(path: Path, name: str, limits: Limits = DEFAULT_LIMITS) -> Run:
    folder = metrics_dir(path)
    if folder is None:
        raise RunParseError(f"{name}: no metrics/ folder of an MLflow run here")
    cols = Columns(limits.max_metrics)
    series: dict[str, pd.Series] = {}
    notes: list[str] = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        metric = file.relative_to(folder).as_posix()
        if len(series) >= limits.max_metrics:
            notes.append(
                f"metrics beyond the first {limits.max_metrics} files were skipped (run_max_metrics)"
            )
            break
        try:
            table = pd.read_csv(
                file, sep=r"\s+", header=None, names=["time", "value", "step"], dtype=str, on_bad_lines="skip"
            )
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
            notes.append(f"{metric} could not be read and was skipped")
            continue
        steps = pd.to_numeric(table["step"], errors="coerce").fillna(0)
        series[metric] = (
            pd.Series(text_values(table["value"]).to_numpy(), index=steps).groupby(level=0).last()
        )
    if not series:
        raise RunParseError(f"{name}: the MLflow run's metrics/ folder holds no readable metric file")
    frame = pd.concat(series, axis=1).sort_index()
    frame.index.name = "step"
    frame = frame.reset_index()
    epochs = [c for c in frame.columns if role(str(c)) == "epoch"]
    if epochs:
        frame = frame.rename(columns={epochs[0]: "epoch"})
    cols.extend(frame)
    return finish(cols, "mlflow", name, notes)
