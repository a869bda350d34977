"""Readings a console log prints without names: a number alone on a line (after a step counter or
under an epoch line), read as the loss when the log names no metric, or names them on one line only
(a sanity check's `loss 7.34` makes no curve); several numbers alone on a line, read as unnamed
scores when it names no metric at all."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import numpy as np

from assistant.runs.parse.finish import finish
from assistant.runs.parse.lines import NUM
from assistant.runs.parse.listed import listed_columns
from assistant.runs.parse.names import is_metric_name
from assistant.runs.parse.table import Columns, Run

# A reading printed without a name: `[Mar 29, 16:23:15] 104 6.2130` (a step counter, then one
# decimal; makemore's `  10000/ 200000: 2.0576` with its total; the PyTorch tutorials'
# `0m 57s (- 13m 28s) (5000 6%) 2.8591`, time spent and left, then the iteration and its share) or a
# line holding one decimal alone; or the epoch, then its reading (`epoch 3, 0.0102`, a notebook's
# `print(f"epoch {e}, {loss}")`: the count is the line's epoch, no step), its spread over the epoch's
# batches after it or not (zuko's `(3) 1.1210 ± 0.1036`: the mean is the reading); read when the log
# names no metric on more than one line. (no two parts may match the same run of spaces: a line of
# spaces is refused in linear time)
_TIME = r"\(?(?:-\s*)?\d+m\s*\d+s\)?"
_SPREAD = r"(?(2)(?:\s*(?:±|\+/?-)\s*(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)?)"  # after a count only
UNNAMED = re.compile(
    rf"^\s*(?:\[[^\]]{{0,40}}\]\s*)*(?:{_TIME}\s*){{0,2}}(epoch\s*(?:[:#]\s*)?)?"
    r"(?:\(?(\d+)(?:\s*/\s*\d+|\s+\d+%)?\)?(?:\s*[:,]\s*|\s+))?([-+]?\d*\.\d+(?:[eE][-+]?\d+)?)"
    rf"{_SPREAD}\s*$",
    re.IGNORECASE,
)
# A line of several numbers and nothing else (`(0.2565, 0.4692) (0.2580, 0.4682)`: SASRec's
# validation and test NDCG and hit rate): readings whose names the log never prints. Read only when
# it names no metric at all, each position as an unnamed score (drawn; no trend is judged: nothing
# says which way is better).
_GROUPING = r"[\s()\[\],;]"
NUMBERS_ONLY = re.compile(rf"^{_GROUPING}*{NUM}(?:{_GROUPING}+{NUM})+{_GROUPING}*$", re.IGNORECASE)
# ...and a date and time among them (RWKV's `train_log.txt`: `3 3.663070 38.9808 0.00059597 2025-04-24
# 02:37:25.409892 3`, the epoch, its loss, perplexity and rate, when, and the epoch again)
_WHEN = re.compile(r"(?<![\d.])\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?![\d.])")


def numbers_alone(text: str) -> str | None:
    """The line's numbers when it holds nothing else (NUMBERS_ONLY), a date and time among them left
    out; None when it holds more."""
    bare = _WHEN.sub(" ", text) if ":" in text else text
    return bare if NUMBERS_ONLY.match(bare) else None


def bare_numbers(rows: list[list[float]], name: str) -> Run | None:
    """The lines of numbers alone as unnamed scores, one per position, when most lines hold as many.
    A position counting up in whole numbers is the line's counter: the epoch when it counts by one,
    the step when by more (so-vits-svc's `[2.68, 2.84, 5.79, 63.6, 19.0, 200, 0.0001]`: its losses,
    then the step and the learning rate), bar a step back now and then (a run resumed from its
    checkpoint, whose newer rows the last run's reading keeps)."""
    if len(rows) < 2:
        return None
    if len(rows) < min(map(len, rows)) and min(map(len, rows)) >= _WHOLE:
        return _whole_curves(rows, name)
    width = max(set(map(len, rows)), key=[len(r) for r in rows].count)
    rows = [r for r in rows if len(r) == width]
    if len(rows) < 2:
        return None
    counting = [i for i in range(width) if _counts([r[i] for r in rows])]
    # a counter counting in even strides before one that does not (a count of right answers, a whole
    # number return, also counts up)
    even = [i for i in counting if _even([r[i] for r in rows])]
    at = (even or counting or [None])[0]
    axis = None if at is None else "epoch" if max(np.diff([r[at] for r in rows])) <= 1 else "step"
    # a second counter in even strides of more than one beside an epoch counting by one is the step
    # (d3rlpy's `epoch,step,value` rows), when a value is left beside them
    by_more = [i for i in even if i != at and max(np.diff([r[i] for r in rows])) > 1]
    step_at = by_more[0] if axis == "epoch" and by_more and width > 2 else None
    kept = [j for j in range(width) if j not in (at, step_at)]
    # one value beside its counters in a file named for a metric (d3rlpy writes each metric to a
    # headerless file of its own: `critic_loss.csv`): the file's name is the value's
    stem = Path(name).stem
    named = stem if len(kept) == 1 and is_metric_name(stem) else None
    cols = Columns(width)
    for r in rows:
        scores = {named: r[kept[0]]} if named else {f"score {k + 1}": r[j] for k, j in enumerate(kept)}
        step = r[step_at] if step_at is not None else r[at] if axis == "step" else None
        cols.add(r[at] if axis == "epoch" else None, step, scores)
    counted = "" if at is None else f" (the {_ORDINAL.get(at, f'{at + 1}th')} counting {axis}s)"
    if named:
        note = (
            f"the file names its one value: {len(rows)} lines hold {width} numbers alone{counted}, and "
            f"the value beside the counters is read as `{named}`, the file's name"
        )
        return finish(cols, "console", name, [note])
    note = (
        f"the log names no metric: {len(rows)} lines hold {width} numbers alone{counted}; each is drawn "
        "as an unnamed score, and no trend is judged (no name says which way is better)"
    )
    return finish(cols, "console", name, [note])


_ORDINAL = {0: "first", 1: "second", 2: "third"}
_WHOLE = 10  # lists this long, fewer than their numbers, are each a curve printed whole


def _whole_curves(rows: list[list[float]], name: str) -> Run:
    """A few long lists, each a curve printed whole (FedLab's test losses, then accuracies, a round
    each): one unnamed score per list, a point per position."""
    cols = listed_columns({f"score {j + 1}": r for j, r in enumerate(rows)}, len(rows))
    note = (
        f"the log names no metric: {len(rows)} lines each hold a curve of up to {max(map(len, rows))} "
        "numbers, read as one point per epoch; each is drawn as an unnamed score, and no trend is judged"
    )
    return finish(cols, "console", name, [note])


def _even(values: list[float]) -> bool:
    """Counting in one stride throughout (a step logged every 1000), bar a step back now and then."""
    strides = {b - a for a, b in itertools.pairwise(values) if b > a}
    return len(strides) == 1


def _counts(values: list[float]) -> bool:
    """Whole numbers counting up, bar a step back now and then (a run resumed from its checkpoint)."""
    if not all(math.isfinite(v) and v == int(v) for v in values):
        return False
    ups = [b > a for a, b in itertools.pairwise(values)]
    return sum(ups) >= 0.9 * len(ups) and values[-1] > values[0]
