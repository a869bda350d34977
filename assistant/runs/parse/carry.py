"""The stage a console line's readings take from the lines before it when the line says none.

A staged line with only its epoch or step (Flax's `[test] epoch: 1/10`, then `- total loss: 1.98` on a
line of its own) opens that stage's record until a new epoch or step. A heading of its own (`Dev
Results`, Paddle's `Eval begin...`, `***** eval metrics *****`) gives its held-out stage to the first
line read under it, and then to the lines of the same record: those counting the same evaluation's
batches (`step 10/88`, `step 20/88`, where training's lines count `/614`), or, after a line of one
reading, more lines of one reading each (`acc = 0.52`, `f1 = 0.42`). One line at a time: `before`
(the stage a line takes), then `after`."""

from __future__ import annotations

import re

from assistant.runs.parse.lines import pairs
from assistant.runs.parse.stages import STAGE_TAGS

# what a remark says of an evaluation that did not run
_NOT_RUN = (
    r"(?:not|none|n/a|disabled|deactivated|skip\w*|off|missing|empty|fail\w*|cancel\w*|unavailable|absent"
    r"|no\s+(?:test|val\w*|eval\w*|dev|data|set|split))"
)
# A heading: decoration, then only a stage's words and words a heading is made of (`***** Running
# Evaluation *****`, `=== Validation ===`, `Eval begin...`, `Test set:`), no number but the epoch or
# step it is of in brackets (Distiller's `--- validate (epoch=3)-----------`), or a remark without
# numbers (PyHealth's notebook's `Test Set Performance (NO code_mapping)`; not one that says the
# evaluation did not run, `Evaluation (disabled)`, `(no test set)`, `(Validation set empty, skipping)`,
# nor a schedule, `Evaluation (every 500 steps)`).
# A line that does something with a split (`Loading validation data`, `No validation set`) is no heading.
# (PaddlePaddle course code's `testing in eval mode……`, ended by an ellipsis)
_HEADING = re.compile(
    r"^[\s*=#>~-]*([A-Za-z][A-Za-z ]{0,40}?)"
    rf"(?:\s*\((?:(?:epoch|step|iter|iteration)\s*[=:]?\s*\d+|(?![^()]*\b{_NOT_RUN}\b)[^()\d]{{1,40}})\))?"
    r"[\s*=#:.…~-]*$",
    re.IGNORECASE,
)
_HEADING_WORDS = {"results", "result", "metrics", "metric", "scores", "performance", "summary", "report",
                  "error", "loss", "accuracy", "set", "on", "the", "begin", "begins", "start", "running",
                  "phase", "loop", "step"}  # fmt: skip
_MODE_WORDS = {"in", "mode"}  # after what a line says it is doing: `testing in eval mode`
# how many lines below its heading a record may begin (a progress bar, warnings, a timing between them);
# a heading that nothing is read under soon is a settings dump's key (yacs' `TEST:`)
_NEAR = 12
_DOING = {"evaluating": "val", "validating": "val", "testing": "test", "validate": "val"}  # `Evaluating...`
# a progress counter's `20/88`: what it counts to
_BAR_TOTAL = re.compile(r"(?<![\w./])\d+\s*/\s*(\d+)(?![\w./])")
_ONE = "one reading a line"


def heading_stage(message: str) -> str | None:
    """The stage a heading names (`Dev Results` -> "val", `Running training` -> "train"), None when the
    line is no heading."""
    if not (m := _HEADING.match(message)):
        return None
    words = [w.lower() for w in m.group(1).split()]
    stages = [STAGE_TAGS.get(w) or _DOING.get(w) for w in words]
    known = _HEADING_WORDS | (_MODE_WORDS if words[0] in _DOING else set())
    if not any(stages) or not all(s or w in known for s, w in zip(stages, words, strict=True)):
        return None
    return next(s for s in stages if s)


def _one_pair(message: str) -> bool:
    """A line of one `name: value` pair and no record of several (`acc = 0.52`, not `{'loss': …}`)."""
    return "{" not in message and len(list(pairs(message))) == 1


def bar_total(message: str) -> str | None:
    """The total a progress counter on the line counts to (`step 20/88` -> "88"), None without one."""
    return m.group(1) if (m := _BAR_TOTAL.search(message)) else None


class StageCarry:
    def __init__(self) -> None:
        self.stage: str | None = None  # the stage carried to the lines that say none
        self.heading = False  # a heading gave it (not a staged line with only its epoch or step)
        self.waited: int | None = None  # lines since the heading, until its first line is read
        self.follows: str | None = None  # what the heading's later lines look like: a total, or _ONE
        self.total: str | None = None  # what the last line read outside a heading's record counted to

    def _end(self) -> None:
        self.stage, self.heading, self.follows = None, False, None

    def before(self, message: str, own: str | None, other_epoch: bool, at_axis: bool) -> str | None:
        """The stage carried to this line (`own`: the stage the line says itself; `other_epoch`: it
        names an epoch other than the last row's; `at_axis`: it names an epoch or a step)."""
        if self.heading and self.waited is not None:
            self.waited += 1
            if self.waited > _NEAR:
                self._end()
        elif self.heading:
            same = bar_total(message) == self.follows if self.follows != _ONE else _one_pair(message)
            if not same:
                self._end()  # the heading's record is over
        if own is not None or (other_epoch if self.heading else at_axis):
            self._end()  # a new epoch or step, or a line staged itself, ends a carried record
        return self.stage

    def under_heading(self) -> bool:
        """The line's stage came from a heading: it reads an evaluation of its own."""
        return self.heading and self.stage is not None

    def after(self, message: str, own: str | None, at_axis: bool, readings: int) -> None:
        """What the line opens or closes (`readings`: how many of its readings were read)."""
        if own and at_axis and not readings:
            self.stage, self.heading = own, False
        elif not readings and (named := heading_stage(message)):
            # (a heading naming training ends a carried stage)
            self.stage, self.heading = (named if named in ("val", "test") else None), True
            self.waited = 0
        elif self.under_heading() and self.waited is not None and readings:
            self.waited = None
            total = bar_total(message)
            if total is not None and total != self.total:
                self.follows = total  # an evaluation counting its own batches
            elif total is None and not at_axis and _one_pair(message):
                self.follows = _ONE
            else:
                self._end()  # a record of one line
        elif readings and not self.heading:
            self.total = bar_total(message)
