"""Overfitting: a validation curve that turns up after its best while training still improves,
counted in standard errors of means against the curve's own noise, or rising at every evaluation
since its lowest (_turned); and, on a validation curve too short for a trend, every evaluation after
its best worse than it, none recovering (_few_evaluations); a validation curve that never followed
training down at all (_never_followed); on a short curve, the gap opening at its last one or two
evaluations (_opens_at_end); without a held-out loss, every held-out score turning
(score_turned). A curve whose last reading is a new low has not turned, however its trend runs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from assistant.runs.curves import SHORT_CURVE, Curve, first_fifth, fmt
from assistant.runs.findings import Finding, Thresholds, confidence


def overfitting(tr: Curve | None, va: Curve | None, th: Thresholds) -> Finding | None:
    return (
        _turned(tr, va, th)
        or _few_evaluations(tr, va, th)
        or _never_followed(tr, va, th)
        or _opens_at_end(tr, va, th)
    )


def _never_followed(tr: Curve | None, va: Curve | None, th: Thresholds) -> Finding | None:
    """Training fell by `memorise_fall` of its level over the validation curve's span while validation
    gained less than `memorise_val_gain` of its own and has stopped gaining (its last third does not
    reach a noise-width below its best before): the model learns its training set and nothing that
    carries over (a classifier at 100% training accuracy whose validation loss sits at chance). No
    turn to find: the gap opens from the start. Not for a held-out score: a reward's zero means
    nothing, so no share of it does either, and a ranking's hit rate of 0.25 moving to 0.26 is 4% of
    itself but 1% of what it lacks (KGAT's recall and NDCG, still rising)."""
    if tr is None or va is None or min(len(tr), len(va)) < th.min_points or tr.negated or va.score:
        return None
    t0, t1 = float(tr.trend[_at(tr, va.x[0])]), float(tr.trend[-1])
    first = float(np.max(va.trend[: first_fifth(len(va))]))
    if (not tr.log and t0 <= 0) or (not va.log and first <= 0):
        return None  # a loss at or below zero (a continuous NLL) has no share to fall by
    best = int(np.argmin(va.trend))
    gained = -va.rel(first, float(va.trend[best]))
    if -tr.rel(t0, t1) < th.memorise_fall or gained >= th.memorise_val_gain or _still_gaining(va, th):
        return None
    text = (
        f"training {tr.what} went from {fmt(tr.value(t0))} to {fmt(tr.value(t1))} while validation "
        f"{va.what} barely moved ({fmt(va.value(first))} at first, best {fmt(va.value(va.trend[best]))} at "
        f"{va.at(best)}, {fmt(va.value(va.trend[-1]))} at {va.at(len(va) - 1)}): the model learns its "
        "training data and nothing that carries over to held-out data"
    )
    details = {"train_start": tr.value(t0), "train_end": tr.value(t1), "val_best": va.value(va.trend[best]),
               "val_gain": gained}  # fmt: skip
    return Finding("overfitting", text, details, "medium")


def too_near_end(n: int, turn: int, th: Thresholds) -> bool:
    """Too few of a curve's `n` evaluations come after its lowest at `turn` to call a turn there:
    fewer than `overfit_min_after`, or than a tenth of the curve."""
    return n - 1 - turn < max(th.overfit_min_after, math.ceil(0.1 * n))


def _turned(tr: Curve | None, va: Curve | None, th: Thresholds) -> Finding | None:
    if va is None or len(va) < th.min_points:
        return None
    v = va.trend
    turn = int(np.argmin(v))
    # the evidence names a logged point: the lowest near the trend's turn (smoothing shifts it)
    near = slice(max(0, turn - 2), min(len(v), turn + 3))
    turn = near.start + int(np.argmin(va.y[near]))
    after = len(v) - 1 - turn
    if too_near_end(len(v), turn, th):
        return None
    low = float(va.y[turn])  # what was logged there (the margin is judged on means, below)
    # the rise: the median of the last points (the later half since the turn, three at least) against
    # the mean of the three around the turn, counted in standard errors of that difference (a mild
    # rise that stays is clear on a smooth curve) and as a share of the level (not a tiny wiggle)
    tail = va.y[-max(3, after // 2) :]
    around = va.y[max(0, turn - 1) : turn + 2]
    rise = float(np.median(tail) - np.mean(around))  # a median: one late spike is no rise
    error = va.noise * math.sqrt(1.57 / len(tail) + 1 / len(around))  # a median's error is 1.25x
    details: dict[str, Any] = {"turn": va.at(turn), "val_min": va.value(low), "val_end": va.value(v[-1])}
    train_text, share = "", th.overfit_min_rise
    if tr is not None and len(tr) >= 2:
        if (fell := _training_fell(tr, va.x[turn], th)) is None:
            return None  # training got worse too, or stood still: nothing pulls the two apart
        t0, t1 = fell
        if -tr.rel(t0, t1) >= th.min_change:
            share = th.overfit_widening_rise  # training pulls away: a milder rise is the gap widening
        train_text = f" while training {tr.what} went from {fmt(tr.value(t0))} to {fmt(tr.value(t1))}"
        details.update(train_at_turn=tr.value(t0), train_end=tr.value(t1))
    level = va.scale(float(np.mean(around)))
    floor = math.log10(1 + share) if va.log else share * level
    margin = rise / max(th.noise_widths * error, floor, 1e-12)
    # ...or the tail's mean without its highest point (one late spike is no rise) against the mean of
    # as many points up to the turn: more points, a smaller error (a curve that scatters mid-run and
    # ends flat above its best); a curve still falling into its turn stands higher there, so this
    # asks more of the rise, not less
    before = va.y[max(0, turn - len(tail) + 1) : turn + 1]
    kept = np.sort(tail)[:-1]
    lasting = float(np.mean(kept) - np.mean(before))
    lasting_error = va.noise * math.sqrt(1 / len(kept) + 1 / len(before))
    margin = max(margin, lasting / max(th.noise_widths * lasting_error, floor, 1e-12))
    if v[-1] <= float(np.min(v)) or va.y[-1] < float(np.min(va.y[:-1])):
        # the trend at its lowest, or the last reading a new low: no turn (a last reading equal to
        # the best before is the best checkpoint evaluated again, as TLlib and ReChorus end their logs)
        return None
    if margin < 1 and not _pulled_away(tr, va, turn, th) and not _rose_each(va, share, th):
        return None
    rise = va.rel(low, v[-1])
    return Finding(
        "overfitting",
        f"validation {va.what} was lowest ({fmt(va.value(low))}) at {va.at(turn)} and rose to "
        f"{fmt(va.value(v[-1]))} by {va.at(len(v) - 1)}{_share(rise)}{train_text}: it turns at {va.at(turn)}",
        details,
        confidence(margin),
    )


def _share(rise: float) -> str:
    """` (+47%)`, or nothing when the best was 0 (a shortfall from a score at its cap: no share)."""
    return f" (+{rise:.0%})" if math.isfinite(rise) else ""


def _rose_each(va: Curve, share: float, th: Thresholds) -> bool:
    """The validation curve's lowest reading is followed by `overfit_min_after` or more, each above the
    one before, to the last, beyond `noise_widths` of its noise and `share` of its level in all: a turn
    the means around it blur (0.498 at epoch 7, then 0.502, 0.508, 0.517 while training falls), and
    that pure noise on a level curve rarely draws (its lowest point followed by three rises in a row)."""
    after = _rising_since_lowest(va.y)
    if len(after) <= th.overfit_min_after:
        return False
    return float(after[-1] - after[0]) > va.need(th.noise_widths, share, va.scale(float(after[0])))


def _rising_since_lowest(y: np.ndarray) -> np.ndarray:
    """The readings from the lowest on when each one after it is above the one before; else none."""
    after = y[int(np.argmin(y)) :]
    return after[:0] if (np.diff(after) <= 0).any() else after


def _worse_since_lowest(va: Curve, share: float) -> np.ndarray:
    """The readings from the lowest on when each after it is worse than the lowest and none comes back
    `share` below the worst before it (a flat step, 0.5344 then 0.5341, is no recovery; 0.90 then
    0.81 is, and so is 0.60, 0.575, 0.55, 0.53, a little at each step); else none."""
    after = va.y[int(np.argmin(va.y)) :]
    worst = np.maximum.accumulate(after)
    back = any(_came_back(va, float(w), float(b), share) for w, b in zip(worst[:-1], after[1:], strict=True))
    return after[:0] if back or (after[1:] <= after[0]).any() else after


def _came_back(va: Curve, worst: float, reading: float, share: float) -> bool:
    """`reading` is `share` of `worst` or more below it (below it at all when `worst` is zero, where
    no share is)."""
    return va.rel(worst, reading) <= -share if worst else reading < worst


def _still_gaining(va: Curve, th: Thresholds) -> bool:
    """The validation curve's last `plateau_window` reaches below its best before by a noise-width."""
    w = th.last_stretch(len(va))
    return float(np.min(va.trend[: len(va) - w])) - float(np.min(va.trend[len(va) - w :])) > va.noise


def _pulled_away(tr: Curve | None, va: Curve, turn: int, th: Thresholds) -> bool:
    """A validation curve whose best came before its last third and whose trend ends a noise-width
    and `overfit_min_rise` of the level above that best (its last three readings too, by that share:
    one late spike moves no median of three), while the training curve fell by `overfit_pull` of its
    level since: validation stopped gaining what training still gains (the gap widens), a rise too
    mild to count alone."""
    n = len(va)
    if tr is None or len(tr) < th.min_points or turn >= n - th.last_stretch(n):
        return False
    fell = -tr.rel(float(tr.trend[_at(tr, va.x[turn])]), float(tr.trend[-1]))
    best = float(np.min(va.trend))
    ends = float(va.trend[-1]) - best > va.need(1, th.overfit_min_rise, va.scale(best))
    last = float(np.median(va.y[-3:])) - best > va.need(0, th.overfit_min_rise, va.scale(best))
    return fell >= th.overfit_pull and ends and last


def _at(tr: Curve, x: float) -> int:
    """The training curve's point at (or first after) the epoch or step `x` of the validation curve."""
    return min(int(np.searchsorted(tr.x, x)), len(tr) - 1)


def _training_fell(tr: Curve, x: float, th: Thresholds) -> tuple[float, float] | None:
    """(trend at `x`, trend at the end) of the training curve when it fell over that stretch, by
    `overfit_train_fall` of its level and its noise at least; None when it stood still or rose."""
    t0, t1 = float(tr.trend[_at(tr, x)]), float(tr.trend[-1])
    return None if t0 - t1 < max(tr.noise, th.overfit_train_fall * abs(t0)) else (t0, t1)


def _fell_each(tr: Curve, x: float, th: Thresholds) -> tuple[float, float] | None:
    """(reading at `x`, last reading) of a training curve too short for a trend when it fell at every
    reading from `x` on, by `overfit_train_fall` of its level in all; None otherwise."""
    y = tr.y[int(np.searchsorted(tr.x, x)) :]
    if len(y) < 2 or (np.diff(y) >= 0).any() or -tr.rel(float(y[0]), float(y[-1])) < th.overfit_train_fall:
        return None
    return float(y[0]), float(y[-1])


def _fell_since(tr: Curve, x: float, th: Thresholds) -> tuple[float, float] | None:
    """How the training curve fell from the validation curve's `x` on: on its trend, or at every
    reading when it is too short for one (_training_fell, _fell_each)."""
    return (_training_fell if len(tr) >= th.min_points else _fell_each)(tr, x, th)


def _few_evaluations(tr: Curve | None, va: Curve | None, th: Thresholds) -> Finding | None:
    """Overfitting on a validation curve too short for a trend (a fine-tune evaluated once an epoch,
    three times), or for its noise to be read apart from a steep early fall (DLinear's eight epochs,
    0.301 at the fifth, then 0.320, 0.314, 0.336): every evaluation after its lowest was worse than
    it and none came back `min_change` below the worst before it (_worse_since_lowest), the last
    `min_change` of its level above the lowest, while the training curve fell over the same stretch
    (on its trend; when it is as short, at every reading: a five-epoch fine-tune stopped early). Too
    few points for a noise estimate, so it is said with low confidence."""
    if va is None or tr is None or not (3 <= len(va) < SHORT_CURVE) or len(tr) < 3:
        return None
    after = _worse_since_lowest(va, th.min_change)
    # two evaluations after the lowest on a curve shorter than `min_points`; on a longer one, still too
    # short for its noise to be read (SHORT_CURVE), as many as _turned asks after a turn, and the curve
    # came down into its lowest (two evaluations before it, it stood above every one after): on a
    # level curve the lowest is a dip of its scatter, and the readings after it scatter back
    short = len(va) < th.min_points
    if len(after) <= (2 if short else th.overfit_min_after):
        return None
    # each evaluation above the one before, more than `overfit_min_after` times in a row: noise rarely
    # draws that, so a milder rise counts (a fine-tune's validation loss 0.00754, 0.00762, 0.00768,
    # 0.00775, 0.00776 while training fell at each epoch)
    share = th.overfit_min_rise if len(_rising_since_lowest(va.y)) > th.overfit_min_after else th.min_change
    if not share <= (rise := va.rel(after[0], after[-1])) < math.inf:
        return None
    turn = len(va) - len(after)
    if not short and (turn < 2 or va.y[turn - 2] <= np.max(after[1:])):
        return None
    if (fell := _fell_since(tr, va.x[turn], th)) is None:
        return None
    t0, t1 = fell
    text = (
        f"validation {va.what} was lowest ({fmt(va.value(after[0]))}) at {va.at(turn)} and worse at each of "
        f"the {len(after) - 1} evaluations after it, to {fmt(va.value(after[-1]))} by {va.at(len(va) - 1)}"
        f"{_share(rise)}, while training {tr.what} went from {fmt(tr.value(t0))} to "
        f"{fmt(tr.value(t1))}: too few evaluations for a trend, but each one was worse"
    )
    details = {
        "turn": va.at(turn), "val_min": va.value(after[0]), "val_end": va.value(after[-1]),
        "evaluations": len(va),
    }  # fmt: skip
    return Finding("overfitting", text, details, "low")


def _opens_at_end(tr: Curve | None, va: Curve | None, th: Thresholds) -> Finding | None:
    """On a validation curve too short for a trend, its lowest at the second or third evaluation from
    the end and each one after it above the one before, by `noise_widths` of its noise and `min_change`
    of its level in all, while the training curve fell by `overfit_pull` of its level since (at every
    reading, when it is as short): the gap between the two opens at the end of a run stopped there (a
    fine-tune's validation loss 0.54, 0.50, 0.61 while its training loss halves in the last epoch).
    Said with low confidence: one or two evaluations after the best are too few to be sure. Four
    evaluations at least: on three, no noise can be read, and one reading above the one before is
    all there is."""
    if va is None or tr is None or not (4 <= len(va) < SHORT_CURVE) or len(tr) < 3:
        return None
    after = _rising_since_lowest(va.y)
    if not 2 <= len(after) <= 3:
        return None
    low, end = float(after[0]), float(after[-1])
    if end - low <= va.need(th.noise_widths, th.min_change, va.scale(low)):
        return None
    turn = len(va) - len(after)
    if (fell := _fell_since(tr, va.x[turn], th)) is None or -tr.rel(*fell) < th.overfit_pull:
        return None
    t0, t1 = fell
    text = (
        f"validation {va.what} was lowest ({fmt(va.value(low))}) at {va.at(turn)} and rose to "
        f"{fmt(va.value(end))} by {va.at(len(va) - 1)}{_share(va.rel(low, end))} while training {tr.what} "
        f"went from {fmt(tr.value(t0))} to {fmt(tr.value(t1))}: the gap opens at the end of the run; "
        "too few evaluations after the best to be sure"
    )
    details = {
        "turn": va.at(turn), "val_min": va.value(low), "val_end": va.value(end), "evaluations": len(va),
    }  # fmt: skip
    return Finding("overfitting", text, details, "low")


def score_turned(tr: Curve | None, va: Curve | None, held: list[Curve], th: Thresholds) -> Finding | None:
    """Without a held-out loss, the held-out scores turning worse from their best while the training
    loss still falls (a recommender's validation NDCG and hit rate, best at epoch 20 and 4-9% below it
    by epoch 200), or without any score the held-out errors (an age regressor's validation MAE and
    RMSE, best at epoch 14 and 9-12% above it by epoch 200): the same turn, on the curves the log
    holds. Every one of them, not one: a score is a coarser reading than a loss (an accuracy at a fixed
    threshold on rare positives may turn while the AUC beside it still climbs). Not an agent's return
    (no held-out data there). A curve of three evaluations or more is asked; one too short for a
    trend, as a validation loss is (_few_evaluations)."""
    asked = [h for h in held if not h.negated and len(h) >= 3]
    scores = [h for h in asked if h.score] or asked  # the scores; without any, the errors
    if va is not None or tr is None or not scores:
        return None
    turned = [overfitting(tr, h, th) for h in scores]
    return turned[0] if all(turned) else None
