"""The stage a console line's readings take from the lines before it when the line says none: a staged
line with only its epoch or step (Flax's `[test] epoch: 1/10`, then `- total loss: 1.98` on a line of
its own) opens that stage's record until a new epoch or step; a heading of its own (`Dev Results`,
Paddle's `Eval begin...`) gives its held-out stage to the first line read under it, and to the lines
after that one counting the same evaluation's batches (`step 10/88`, `step 20/88`, where training's
lines count `/614`). One line at a time: `before` (the stage a line takes), then `after`."""

from __future__ import annotations

import re

from assistant.runs.parse.lines import heading_stage

# a progress counter's `20/88`: what it counts to
_BAR_TOTAL = re.compile(r"(?<![\w./])\d+\s*/\s*(\d+)(?![\w./])")


def bar_total(message: str) -> str | None:
    """The total a progress counter on the line counts to (`step 20/88` -> "88"), None without one."""
    return m.group(1) if (m := _BAR_TOTAL.search(message)) else None


class StageCarry:
    def __init__(self) -> None:
        self.stage: str | None = None  # the stage carried to the lines that say none
        self.heading = False  # a heading gave it (not a staged line with only its epoch or step)
        self.bar: str | None = None  # what the heading's first line read counts to ("" before it)

    def before(self, message: str, own: str | None, new_epoch: bool, at_axis: bool) -> str | None:
        """The stage carried to this line (`own`: the stage the line says itself)."""
        if self.heading and self.bar and bar_total(message) != self.bar:
            self.stage, self.heading = None, False  # the heading's record is over
        # a new epoch or step, or a line staged itself, ends a carried stage's record (a heading's
        # record may count its own steps: Paddle's `Eval begin...`, then `step 2/2 - loss: 8.9`)
        if own is not None or (new_epoch if self.heading else at_axis):
            self.stage = None
        return self.stage

    def under_heading(self) -> bool:
        """The line's stage came from a heading: it reads an evaluation of its own."""
        return self.heading and self.stage is not None

    def after(self, message: str, own: str | None, at_axis: bool, read: bool) -> None:
        """What the line opens or closes: `read` says whether any of its readings were read."""
        if own and at_axis and not read:
            self.stage, self.heading = own, False
        elif not read and (named := heading_stage(message)):
            # (Hugging Face's `***** Running Evaluation *****`, its `eval_loss`, then training's
            # records: one line; a heading naming training ends a carried stage)
            self.stage, self.heading, self.bar = (named if named in ("val", "test") else None), True, ""
        elif self.heading and read and self.bar == "":
            self.bar = bar_total(message)
            if self.bar is None:
                self.stage, self.heading = None, False  # a record of one line
