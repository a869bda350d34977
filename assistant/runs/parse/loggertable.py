"""A logger table in a console log (OpenAI baselines, Stable-Baselines3, improved-diffusion): rows of
`| loss | 0.0195 |` between rules of dashes, read as one record when the closing rule comes;
SB3 heads a section with `| train/ |  |` and indents its rows."""

from __future__ import annotations

import re

from assistant.runs.parse.lines import NUM
from assistant.runs.parse.names import is_metric_name
from assistant.runs.parse.table import logged

TABLE_RULE = re.compile(r"^\s*-{8,}\s*$")
_ROW = re.compile(rf"^\s*\|(\s*)(\S[^|]*?)\s*\|\s*({NUM})?\s*\|\s*$", re.IGNORECASE)
# the row that is the record's step, in order of preference
_STEPS = ("step", "steps", "global_step", "total_timesteps", "timesteps", "iterations", "samples_seen")


class LoggerTable:
    """The rows of one logger table, kept until its closing rule makes them one record."""

    def __init__(self) -> None:
        self.open = False  # inside a table (after a rule of dashes)
        self.values: dict[str, float] = {}
        self.section = ""

    def feed(self, segment: str) -> bool:
        """Whether the segment is part of a table (a rule, or a row after one)."""
        if TABLE_RULE.match(segment):
            self.open = True
            return True
        if not self.open or not (m := _ROW.match(segment)):
            return False
        indent, key, number = m.groups()
        if number is None:
            self.section = key if key.endswith("/") else self.section
        else:
            self.values[self.section + key if self.section and len(indent) > 1 else key] = logged(
                float(number)
            )
        return True

    def record(self) -> tuple[float | None, float | None, dict[str, float]] | None:
        """(epoch, step, metrics) of the table read so far, which is then forgotten."""
        if not self.values:
            return None
        last = {k: k.rsplit("/", 1)[-1].lower() for k in self.values}  # `time/total_timesteps`
        axes = {last[k]: v for k, v in self.values.items()}
        step = next((axes[k] for k in _STEPS if k in axes), None)
        metrics = {
            k: v
            for k, v in self.values.items()
            if last[k] not in _STEPS and last[k] != "epoch" and is_metric_name(k)
        }
        self.values, self.section = {}, ""
        return axes.get("epoch"), step, metrics
