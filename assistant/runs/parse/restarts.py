"""Which rows of a log are its last run: a log may hold several runs appended one after another (a
script started again, writing to the same file), or a run resumed from a checkpoint. What the
detectors judge is the last run; the rows before it stay out of the curves.

Three signs of a new run: its epoch or step counter starts over (last_run), rows counted by steps
give way to rows counted by epochs or back (_other_counter), or, in a log without
counters, a line the script printed before its first reading comes again while the loss starts over
(last_started; the console reader finds those lines). A last run that holds no reading (started
and killed before its first) is no run (last_run)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from assistant.runs.parse.lines import EPOCH, LOG_PREFIX

RESTART_RISE = 3.0  # a counterless log starts again when its loss jumps this much at its opening line
# a line saying the loss itself changed (MACE's `Changing loss based on SWA`: new weights on its terms;
# not mixed precision's loss scale, which changes whenever a step overflows)
_LOSS_CHANGED = re.compile(
    r"\b(?:chang|switch)(?:e|es|ed|ing)\b[^.\n]{0,20}\bloss(?:es)?\b(?!\s*scal)"
    r"|\bloss\b(?!\s*scal)[^.\n]{0,20}\b(?:changed|switched)\b",
    re.IGNORECASE,
)
MIN_RUN_ROWS = 3  # rows by each counter before a switch of counters makes two runs (_other_counter)
# A script printing its arguments (argparse's `Namespace(lr=…)`, `args: {…}`): a run begins.
_ARGS = re.compile(
    r"\bNamespace\(|^\s*(?:args|arguments|hparams|hyperparameters|config)\s*[:=]", re.IGNORECASE
)


class OpeningLines:
    """Where an appended log's runs start, for last_started (Python logging and loguru append to
    their file by default): a line the script printed before its first reading (a banner, its
    arguments) printed again after readings, or a line of arguments after readings."""

    def __init__(self) -> None:
        self.opening: set[str] = set()
        self.starts: list[int] = []  # the rows read when each later run began
        self.loss_changed: list[int] = []  # the rows read when the log said its loss changed

    def feed(self, segment: str, read: bool, rows: int) -> None:
        """A segment without readings, after `rows` rows; `read` says whether any reading came yet."""
        if read and _LOSS_CHANGED.search(segment):
            self.loss_changed.append(rows)
        if not (shape := _shape(segment)):
            return
        if not read:
            self.opening.add(shape)
        elif (shape in self.opening or _ARGS.search(shape)) and (not self.starts or self.starts[-1] < rows):
            self.starts.append(rows)


def _shape(segment: str) -> str | None:
    """A line of text as it reads whatever its numbers and time (None when it says too little to be
    recognised again: a rule of dashes, a bare number)."""
    if EPOCH.search(segment):
        return None  # `Epoch 3/20`: a line every epoch prints
    text = shape_of(segment)
    return text if sum(c.isalpha() for c in text) >= 6 else None


def shape_of(segment: str) -> str:
    """A line as it reads whatever its numbers and its logger's prefix (`**** Epoch # (#/#) ****`)."""
    return re.sub(r"\d+", "#", LOG_PREFIX.sub("", segment, count=1)).strip()


def last_run(
    epoch: np.ndarray, step: np.ndarray, held: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, int, bool]:
    """The rows of the last run in a log that holds several (its epoch or step counter starts over),
    and how many runs there were. A run resumed from a checkpoint (the counter goes back only part
    of the way) keeps the newer rows for what was logged twice. Rows at the end that go back with
    held-out readings alone are the best checkpoint evaluated again once training is over (freerec's
    `Load best model @Epoch 4`, then its evaluation at epoch 4): no resumed run, and not rows of the
    curves. A last run whose rows hold no reading (a script started again and killed before its
    first) is no run: the one before it is read, and the third value says such starts were skipped.
    `held`: (the rows with held-out readings, the rows with training readings)."""
    n = end = len(epoch)
    # peeled back one evaluation pass at a time, each pass's rows at counts logged before them; the rows
    # before are read as any log is (a start there that logged no reading is no run)
    while (
        held is not None and (at := _evaluated_again(epoch[:end], step[:end], *_upto(held, end))) is not None
    ):
        end = at
    if held is not None and end < n:
        keep, runs, stubs = last_run(epoch[:end], step[:end], _upto(held, end))
        return np.concatenate([keep, np.zeros(n - end, dtype=bool)]), runs, stubs
    keep, runs = _last_counted(epoch, step)
    if held is None:
        return keep, runs, False
    # a last run that printed its settings (its learning rate) and stopped before its first reading
    # (PointNet's logger restarted and killed: `Epoch 1 (1/100)`, `Learning rate:0.001`, then nothing)
    # is no run, nor are any after it: the run that holds the log's last reading is read
    read = held[0] | held[1]
    if (keep & read).any() or not read.any():
        return keep, runs, False
    last = int(np.flatnonzero(read)[-1]) + 1
    keep = np.zeros(n, dtype=bool)
    keep[:last], runs = _last_counted(epoch[:last], step[:last])
    return keep, runs, True


def _upto(held: tuple[np.ndarray, np.ndarray], end: int) -> tuple[np.ndarray, np.ndarray]:
    return held[0][:end], held[1][:end]


def _last_counted(epoch: np.ndarray, step: np.ndarray) -> tuple[np.ndarray, int]:
    """last_run by the counters alone."""
    n = len(epoch)
    keep = np.ones(n, dtype=bool)
    has_epoch, has_step = bool(np.isfinite(epoch).any()), bool(np.isfinite(step).any())
    if not n or not (has_epoch or has_step):
        return keep, 1
    if has_step and np.isfinite(step).sum() < MIN_RUN_ROWS <= np.isfinite(epoch).sum():
        # a step or two among rows counted by epochs (a setting's number read as one, `step: 100` in a
        # pasted configuration): the runs are told apart by the epochs, as the rows holding both alone
        # would not tell them (the reproduction notes of nine Anomaly Transformer runs read as one)
        has_step = False
    if has_epoch and has_step and (later := _other_counter(epoch, step)):
        keep[:later] = False
        keep[later:], runs = _last_counted(epoch[later:], step[later:])
        return keep, runs + 1
    if has_epoch and has_step:  # per-epoch step counters: ordered by epoch first (rows with both only)
        span = float(np.nanmax(step)) + 1
        x = epoch + step / span / 2
    else:
        x = epoch if has_epoch else step
    finite = np.flatnonzero(np.isfinite(x))
    xs = x[finite]
    if not len(xs) or (np.diff(xs) >= 0).all():
        return keep, 1
    runs, start, high = 1, xs[0], xs[0]
    for pos, v in zip(finite, xs, strict=True):
        if v < high:
            if v <= start + 0.1 * (high - start):  # back to the start: a new run
                keep[:pos] = False
                runs, start = runs + 1, v
            else:  # resumed from a checkpoint: the newer rows replace the older
                older = np.zeros(n, dtype=bool)
                older[:pos] = np.isfinite(x[:pos]) & (x[:pos] >= v)
                keep &= ~older
        high = v if v < high else max(high, v)
    return keep, runs


def _evaluated_again(
    epoch: np.ndarray, step: np.ndarray, held: np.ndarray, trained: np.ndarray
) -> int | None:
    """Where the rows begin that go back on the counter at the end of the log holding held-out
    readings alone, at counts an earlier row's held-out readings were logged at, if they do (an
    evaluation that names the epoch before the training line's, 0-based after 1-based, is that
    epoch's own)."""
    held_only = held & ~trained
    x = epoch if np.isfinite(epoch).any() else step
    finite = np.flatnonzero(np.isfinite(x))
    if len(finite) < 2:
        return None
    back = finite[1:][x[finite[1:]] < np.maximum.accumulate(x[finite])[:-1]]
    if not len(back) or not held_only[back[-1] :].all():
        return None
    at = int(back[-1])
    before = x[:at][held[:at] & np.isfinite(x[:at])]
    return at if np.isin(x[at:][np.isfinite(x[at:])], before).all() else None


def _other_counter(epoch: np.ndarray, step: np.ndarray) -> int | None:
    """Where a run counted by the other counter begins: rows by step alone, then rows by epoch alone
    (or the other way round), never on one row and never interleaved, each a curve of its own (a
    notebook's Estimator fit by steps, then a loop printing epochs). None when the counters mix."""
    epochs, steps = np.flatnonzero(np.isfinite(epoch)), np.flatnonzero(np.isfinite(step))
    if min(len(epochs), len(steps)) < MIN_RUN_ROWS or np.isin(epochs, steps).any():
        return None
    if steps[-1] < epochs[0]:
        return int(epochs[0])
    return int(steps[0]) if epochs[-1] < steps[0] else None


def steps_across_epochs(epoch: np.ndarray, step: np.ndarray) -> np.ndarray | None:
    """The steps counted on across epochs when the log counts them from the start again each epoch
    (`Epoch [2/5], Step [100/600]`): each step goes back only where the epoch goes up. An epoch is as
    many steps as the largest step logged (the next one, when they count from 0). None when the
    steps already count on (or say nothing)."""
    rows = np.isfinite(step)
    e, s = epoch[rows], step[rows]
    if len(s) < 2 or not np.isfinite(e).all() or (np.diff(e) < 0).any():
        return None
    back = np.diff(s) < 0
    if not back.any() or (np.diff(e)[back] <= 0).any():
        return None
    gaps = np.diff(np.unique(s))
    span = float(s.max()) + (float(gaps.min()) if s.min() == 0 and len(gaps) else 0.0)
    out = step.copy()
    out[rows] = (e - e.min()) * span + s
    return out


def last_started(y: np.ndarray, starts: Sequence[int]) -> tuple[np.ndarray, int]:
    """The rows of a counterless log's last run, and how many runs there were. A start (its opening
    line printed again) counts when the reading after it is `RESTART_RISE` times those just before
    it (a model starting over; a line printed every epoch does not make the loss jump). The last run
    is the last with two readings or more: the aborted starts an appended log may end with are not."""
    n = len(y)
    logged = np.flatnonzero(~np.isnan(y))
    bounds = [0]
    for s in starts:
        before, after = logged[logged < s][-3:], logged[logged >= s]
        if len(before) and len(after) and y[after[0]] > RESTART_RISE * float(np.median(y[before])) > 0:
            bounds.append(int(s))
    bounds.append(n)
    runs = [
        (a, b) for a, b in zip(bounds, bounds[1:], strict=False) if np.count_nonzero(~np.isnan(y[a:b])) >= 2
    ]
    keep = np.zeros(n, dtype=bool)
    if not runs:
        return ~keep, 1
    keep[runs[-1][0] : runs[-1][1]] = True
    return keep, len(runs)


def goes_on(earlier: pd.DataFrame, last: pd.DataFrame) -> bool:
    """The last run starts where the run before it ended, not where it began: it goes on from
    its weights (resumed, or fine-tuned from them: FITS' second phase, its validation loss 0.1137
    after the first phase's 0.616 -> 0.117), and what the model learned is not in it. Judged on the
    validation loss when both hold one (a fine-tune may change the training objective), else on the
    training loss: the run before fell by a quarter or more, and the last one's first reading is at
    or below its last (within 2%: a run from scratch that learns fast still starts above where a
    trained one ended, 1.15 after 1.10). Runs that each sit at chance, 0.693 after 0.693, start
    where the one before ended too: from scratch, having learned nothing."""
    previous, _ = _last_counted(earlier["epoch"].to_numpy(dtype=float), earlier["step"].to_numpy(dtype=float))
    earlier = earlier[previous]
    for key in ("val_loss", "train_loss"):
        if key not in earlier or key not in last:
            continue
        before = earlier[key].to_numpy(dtype=float)
        before = before[np.isfinite(before)]
        now = last[key].to_numpy(dtype=float)
        now = now[np.isfinite(now)]
        if len(before) < 2 or not len(now):
            continue
        first, end = float(before[0]), float(before[-1])
        return first - end >= 0.25 * abs(first) and float(now[0]) <= end + 0.02 * abs(end)
    return False
