"""TensorBoard event files, read with TensorBoard's own EventAccumulator (no TensorFlow needed).

A run folder may hold several event files: Keras writes `train/` and `validation/` sub-folders with
the same tag (`epoch_loss`), so a tag is named by its sub-folder too (`validation/epoch_loss`)."""

from __future__ import annotations

import math
from pathlib import Path

from assistant.runs.parse.finish import finish
from assistant.runs.parse.names import role
from assistant.runs.parse.table import DEFAULT_LIMITS, Columns, Limits, Run, RunParseError, logged

EVENT_GLOB = "events.out.tfevents*"


def is_event_file(path: Path) -> bool:
    return path.name.startswith("events.out.tfevents")


def event_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(p for p in path.rglob(EVENT_GLOB) if p.is_file())


def read_tensorboard(path: Path, name: str, limits: Limits = DEFAULT_LIMITS) -> Run:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = event_files(path)
    if not files:
        raise RunParseError(f"{name}: no TensorBoard event file (events.out.tfevents.*) in this folder")
    base = path if path.is_dir() else path.parent
    by_step: dict[float, dict[str, float]] = {}
    for f in files:
        prefix = "/".join(f.parent.relative_to(base).parts)
        acc = EventAccumulator(str(f), size_guidance={"scalars": 0})  # 0 = keep every point
        try:
            acc.Reload()
        except Exception as exc:  # a truncated or foreign file: the reader raises its own types
            raise RunParseError(
                f"{name}: {f.name} is not a readable TensorBoard event file ({exc})"
            ) from None
        for tag in acc.Tags().get("scalars", []):
            key = f"{prefix}/{tag}" if prefix and role(tag) == "metric" else tag
            for ev in acc.Scalars(tag):
                by_step.setdefault(float(ev.step), {})[key] = logged(ev.value)
    cols = Columns(limits.max_metrics)
    for step in sorted(by_step):
        values = by_step[step]
        epoch = next((values.pop(k) for k in list(values) if role(k) == "epoch"), None)
        values = {k: v for k, v in values.items() if role(k) == "metric"}
        if values:
            cols.add(None if epoch is None or math.isnan(epoch) else epoch, step, values)
    return finish(cols, "tensorboard", name)
