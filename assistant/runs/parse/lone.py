"""A console run of one epoch, kept point by point beside the table of epochs: the epoch's readings
printed again and again (`Epoch:  0 | train loss: 0.31 | test accuracy: 0.91` every 50 steps), or
its progress bar updated again and again (Lightning's `Epoch 0:  76%|…| 995/1307 [… train/loss=6.75]`,
each count a step). When no second epoch comes, each is a point of the run: one epoch is no curve."""

from __future__ import annotations

import math

from assistant.runs.parse.finish import finish
from assistant.runs.parse.names import normalise, stage_of
from assistant.runs.parse.table import Columns, Run

MIN_PRINTS = 3  # prints of a lone epoch that make a curve of it


class LoneEpoch:
    def __init__(self, max_metrics: int) -> None:
        self.points = Columns(max_metrics)

    def printed(self, epoch: float | None, values: dict[str, float]) -> None:
        """The first epoch's readings printed again."""
        self.points.add(epoch, None, values)

    def added(
        self, cols: Columns, epoch: float | None, count: float | None, values: dict[str, float]
    ) -> None:
        """A row without a step was added to the table (`count`: its bar's count, if it drew one)."""
        if count is not None and _trains(values) and _lone(cols):
            self.points.add(epoch, count, values)
        elif cols.n == 1:
            self.points.add(epoch, None, values)

    def updated(self, cols: Columns, epoch: float | None, count: float, values: dict[str, float]) -> None:
        """The epoch's bar drawn again: a new count is the next step, the same count the bar redrawn."""
        if not (_trains(values) and _lone(cols)):
            return
        if self.points.n and self.points.step[-1] == count:
            self.points.update_last(epoch, values)
        else:
            self.points.add(epoch, count, values)

    def run(self, cols: Columns, name: str) -> Run | None:
        """The run read point by point, when the table holds one epoch and it was printed or drawn
        `MIN_PRINTS` times or more; None otherwise."""
        points = self.points
        if _lone(cols) and (updates := sum(math.isfinite(s) for s in points.step)) >= MIN_PRINTS:
            note = f"one epoch, its progress bar's {updates} updates: each is read as a step of the run"
            return finish(points, "console", name, [note])
        if cols.n == 1 and points.n >= MIN_PRINTS:
            note = f"one epoch, printed {points.n} times: each print is read as a point of the run"
            return finish(points, "console", name, [note])
        return None


def _lone(cols: Columns) -> bool:
    """The table holds one epoch's row so far, after settings lines at most: their learning rates (RWKV's
    `- lr_init: 6.000e-04` and `- lr_final: …` before its bar), and a value printed once, before any
    epoch or step (a configuration's `Ranking Loss Margin: 0.1`)."""
    last = cols.n - 1
    return cols.n > 0 and all(
        not at or at[0] == last or normalise(k) == "lr" or (len(at) == 1 and _unplaced(cols, at[0]))
        for k, at in cols.rows.items()
    )


def _unplaced(cols: Columns, row: int) -> bool:
    return math.isnan(cols.epoch[row]) and math.isnan(cols.step[row])


def _trains(values: dict[str, float]) -> bool:
    """The readings hold a training one (a bar's postfix keeps a validation reading beside training's
    after an evaluation mid-epoch: `train/loss=2.1, val/loss=2.3`)."""
    return any(stage_of(k) not in ("val", "test") for k in values)
