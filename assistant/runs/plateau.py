"""Plateau: a curve that improved, then stopped improving for its last stretch while still short of
done, judged against its own noise and pace (last_third); told apart from convergence (a learning rate
decayed, a run stopped on its target or by early stopping, a loss down by an order of magnitude, a
score at its ceiling: convergence) and from a curve still improving, still reaching new lows at its
end however slowly (coming_down), or only now moving. `progress_of` (how far a curve came over the
run) is shared with underfitting.py."""

from __future__ import annotations

import math

import numpy as np

from assistant.runs.curves import (
    SHORT_CURVE,
    Curve,
    first_fifth,
    fmt,
    fmt_x,
    lr_at_end,
    lr_gone_at,
    starts_late,
)
from assistant.runs.findings import Finding, Thresholds, confidence
from assistant.runs.parse import Run
from assistant.runs.parse.names import rewarding


def progress_of(c: Curve, th: Thresholds) -> tuple[float, float, int]:
    """(relative improvement over the run, the level it is measured from, its index): from the highest
    point of the first fifth's trend, so a warm-up rise is not counted as progress lost, or from the
    first logged point when it stands clear above that (the untrained start, which the trend's running
    median smooths away when the loss falls steeply in the first few spans; not one noisy point)."""
    first = first_fifth(len(c))
    start = int(np.argmax(c.trend[:first]))
    level = float(c.trend[start])
    if c.y[0] > level + th.noise_widths * c.noise:
        start, level = 0, float(c.y[0])
    return -c.rel(level, float(c.trend[-1])), level, start


def plateau(
    tr: Curve | None, va: Curve | None, held: list[Curve], training: list[Curve], run: Run, th: Thresholds
) -> Finding | None:
    """`held`: the curves that say whether the model still improves (`va` and the held-out curves of
    the run's other metrics, or without `va` those alone: a DeiT log's test accuracies beside a
    training loss alone; without any, its training scores). `training`: for a run judged on a
    held-out curve alone (an agent's evaluation return), its training losses: whether the optimiser
    still makes progress."""
    c = tr if tr is not None else va
    if c is None or len(c) < th.min_points:
        return None
    n = len(c)
    # a training curve's new lows count without a held-out curve only: with one, that curve says whether
    # they carry over (still improving, it withholds the plateau below; flat or worse, they do not)
    lows = not (c is tr and va is not None and len(va) >= th.min_points)
    margin, gain, before, within, w = last_third(c, th, lows, late=starts_late(run), shown=True)
    if margin >= 1 or _rose(c, before, within, th) or _late_start(c, before, within, th):
        return None  # still improving; worse than it was (a rise is no plateau); or only now moving
    if c is tr and any(still_improving(h, th) for h in held):
        return None  # validation still improves: training is slow, not stuck
    if c is va and any(still_improving(t, th) for t in training):
        return None  # only a held-out curve, levelling while training still improves: not a stall
    if convergence(c, w, run, th, va if c is tr else None):
        return None  # a flat tail that is convergence, not a stall
    if coming_down(c if lows else va, th):
        return None  # still reaching new lows, slowly: converging (a validation curve says for training)
    gone = _lr_gone(c, n - w, run, th)
    stalled = ""
    if gone is not None:
        stalled = (
            f"; the learning rate was down to {th.lr_vanished:g} of its peak from {c.unit} {fmt_x(gone)} on"
        )
        stalled += ": nothing is learned at that rate"
    return Finding(
        "plateau",
        f"the {c.label} {c.what} {f'improved by only {gain:.1%}' if gain > 0 else 'did not improve'} over "
        f"the last {_stretch(c, w)} ({c.at(n - w)} to {c.at(n - 1)}): best {fmt(c.value(before))} before, "
        f"{fmt(c.value(within))} since{stalled}",
        {"from": c.at(n - w), "to": c.at(n - 1), "gain": gain, "best_before": c.value(before),
         "best_after": c.value(within), **({} if gone is None else {"lr_gone_at": gone})},
        confidence(1 / max(margin, 1 / 3)),
    )  # fmt: skip


def _stretch(c: Curve, w: int) -> str:
    """The last `w` points as counted: `4 epochs` when each is one epoch, `14 readings` when each is
    several (a loss printed every 5 epochs, a long run averaged into spans of steps)."""
    one_each = bool(np.all(np.diff(c.x[-w:]) == 1))
    return f"{w} {c.unit}s" if one_each else f"{w} readings"


def _late_start(c: Curve, before: float, within: float, th: Thresholds) -> bool:
    """The last stretch gained clearly, and at least as much as the whole run before it: a curve
    that sat still and only began to move (10.31 for six epochs, then 10.05) has not levelled off."""
    _, level, _ = progress_of(c, th)
    return before - within > c.noise and before - within >= level - before


def _rose(c: Curve, before: float, within: float, th: Thresholds) -> bool:
    """The best of the last stretch stands `diverge_rise` above the best before it, however noisy the
    curve (3.4 before, 6.3 since): a climb, not a level. A loss creeping up from where it levelled
    (1.10 to 1.29) is still stuck."""
    if c.negated or (not c.log and before <= 0):
        return False  # a reward's best is any number; a loss at or below zero has no share to rise by
    return c.rel(before, within) >= th.diverge_rise


def convergence(c: Curve, w: int, run: Run, th: Thresholds, beside: Curve | None = None) -> str | None:
    """Why a flat tail of `w` points is convergence rather than a stall, if it is: the learning rate
    decayed; the log says the run stopped on reaching its quality target (MLPerf's `run_stop` with
    status success: its last evaluations creep up to the target by design), or by early stopping
    (its patience is a flat end by design); the curve came down by
    an order of magnitude and still holds its lowest point (a loss at a tenth of where it began has
    learned what it will at this rate; one creeping back up is stuck), or by a third and settled there
    (`beside`: the validation curve beside a training curve); or a score sits at a ceiling,
    its best value logged again and again and a round one (a capped return, every answer right:
    nothing is left to gain; a loss or an AUC printed with few digits repeats its best by rounding); or
    it is an agent's return that holds (whether it could go higher is the environment's to say)."""
    lr = lr_at_end(run)
    if lr is not None and lr <= th.lr_decayed * (1 + 1e-6) and _lr_gone(c, len(c) - w, run, th) is None:
        return "it levels off as the learning rate decays, which is convergence"  # (1e-4 / 1e-3 in floats)
    if run.stopped == "target":
        return "the log says the run stopped on reaching its quality target, which is convergence"
    if run.stopped == "early":
        return "the log says early stopping ended the run (a flat end is its patience running out)"
    _, level, _ = progress_of(c, th)
    start, end, low = c.value(level), c.value(c.trend[-1]), c.value(float(np.min(c.trend)))
    # at its lowest point, reached after the run's first tenth (not a reward: its zero is anywhere, so
    # a share of its negative says nothing; its rule is below)
    at_low = not c.negated and start > 0 and end >= 0 and _holds(c, th) and _came_late(c, th)
    if at_low and end <= th.converged_level * start:
        return f"it levels off at {fmt(low)}, a tenth or less of where it began, which is convergence"
    # one that came down by a third and holds its low settled there, with the validation curve beside
    # it holding its own (one creeping up while training sits still is no settled run), unless the
    # schedule stopped it
    settled = (
        at_low
        and end <= th.settled_level * start
        and (beside is None or len(beside) < th.min_points or _holds(beside, th))
    )
    if settled and _lr_gone(c, len(c) - w, run, th) is None:
        return (
            f"it levels off at {fmt(low)}, {end / start:.0%} of where it began ({fmt(start)}), and holds "
            "its lowest point: it learned and settled there, which is convergence"
        )
    best = float(np.min(c.y))
    repeats = int(np.sum(np.abs(c.y[-w:] - best) <= 1e-9 * max(abs(best), 1e-12)))
    if c.score and _round(c.value(best)) and repeats >= max(3, w // 3):
        return f"it sits at its best value ({fmt(c.value(best))}) again and again: a ceiling, convergence"
    if c.negated and rewarding(set(c.name.split())) and last_third(c, th)[0] < 1:
        # how far an agent's return is from done is its environment's (the solved score), which no
        # curve says: one that rose and holds learned what it learns (one that never rose is underfit)
        level = fmt(c.logged(float(np.median(c.trend[-w:]))))
        return f"it holds near {level}; whether that is the task's best is its environment's solved score"
    return None


def _holds(c: Curve, th: Thresholds) -> bool:
    """The trend ends within `noise_widths` of its noise above its lowest point."""
    return bool(c.trend[-1] - np.min(c.trend) < th.noise_widths * c.noise)


def _came_late(c: Curve, th: Thresholds) -> bool:
    """The trend reached its lowest level (within its noise) after the run's first `settled_after`: a
    curve at its level within its first tenth and flat for the other nine was stuck from the start
    (a sparse target's loss 0.0115 -> 0.000976 in one epoch, then the same for nineteen), however
    far that first fall went."""
    reached = int(np.argmax(c.trend <= np.min(c.trend) + th.noise_widths * c.noise))
    return reached >= th.settled_after * len(c)


def coming_down(c: Curve | None, th: Thresholds) -> bool:
    """A curve that learned (`underfit_progress`) and still comes down, slowly, as a converging curve
    does: its trend sets a new low at half or more of its last stretch's points (three at least) and
    ends at its lowest, `converging_gain` or more below its best before that stretch. A stalled one
    sits on a level, its trend's lowest point anywhere in it (a last reading or two lower by chance
    moves its last point or two). Not asked of a short curve, whose trend, a running mean of three,
    still carries the fall into its last points; nor of one that barely learned and creeps on (a
    plateau beside underfitting); a reward is judged by its own rule (convergence)."""
    if c is None or c.negated or len(c) < SHORT_CURVE:
        return False
    n = len(c)
    w = th.last_stretch(n)
    before, end = float(np.min(c.trend[: n - w])), float(c.trend[-1])
    new_lows = int(np.sum(_new_lows(before, c.trend[n - w :])))
    learned = progress_of(c, th)[0] >= th.underfit_progress
    ends_low = end <= float(np.min(c.trend)) and -c.rel(before, end) >= th.converging_gain
    return learned and ends_low and new_lows >= max(3, w / 2)


def _new_lows(best: float, tail: np.ndarray) -> np.ndarray:
    """Which of `tail`'s points stand below every one before them, the best before it included."""
    return np.diff(np.minimum.accumulate(np.concatenate([[best], tail]))) < 0


def _lr_gone(c: Curve, i: int, run: Run, th: Thresholds) -> float | None:
    """Where the learning rate fell to `lr_vanished` of its peak for good, when that is at or before
    the curve's point `i`: nothing is learned from there on."""
    at = lr_gone_at(run, c.unit, th.lr_vanished)
    return at if at is not None and at <= c.x[i] else None


def _round(v: float) -> bool:
    """A value a cap is set at (0 left to gain, a return of 500, 21 points): two significant digits
    at most. A loss or an AUC printed to four digits repeats its best by rounding, at no cap."""
    return v == 0 or float(f"{abs(v):.2g}") == abs(v)


def last_third(
    c: Curve, th: Thresholds, lows: bool = True, late: bool = False, shown: bool = False
) -> tuple[float, float, float, float, int]:
    """(margin, gain, best before, best within, window) of the curve's last `plateau_window`: how many
    times over the bar for "still improving" its gain is. An improvement counts when it is clear of
    the window's noise (the standard error of its mean) and is not negligible, or when it is plainly
    large, or (`shown`, for the curve a plateau is said of) may be, within `plateau_doubt` standard
    errors (a stall is said only where the noise lets it be shown; a held-out curve flat within its noise is
    no sign that training still improves): a noisy curve still gaining 20% in its last third is not on
    a plateau, and a smooth one gaining 0.5% is, however clear that 0.5% is, unless it learned and keeps
    a third of the pace of the window before (a language model's loss, far from zero, falling a little
    less each stretch), or unless it still sets a new low at two of every three of its last points,
    by three times the bar for clear (a forecaster's error falling every epoch, slower each time),
    when no held-out curve is there to say whether those gains carry over (`lows`). For a log that
    begins well into training (`late`), that it learned is asked of its coming down beyond its noise,
    not of its own progress."""
    n = len(c)
    w = th.last_stretch(n)
    before, within = float(np.min(c.trend[: n - w])), float(np.min(c.trend[n - w :]))
    gain = -c.rel(before, within)
    standard_error = th.noise_widths * c.noise * math.sqrt(2 / w)
    clear = (before - within) / standard_error
    # a curve that learned, still making a good share of its own progress clearly, is not stuck (an
    # AUC whose level is mostly what no model can remove); one that barely learned is judged as before
    progress, level, _ = progress_of(c, th)
    made = (level - float(np.min(c.trend))) or math.inf
    # ...or one still gaining, clearly, a third of what it gained over the window before (a language
    # model's loss falls about as much per doubling of its steps: no stall, however small the share);
    # the window before is measured from the best point up to its first (not from the steep fall after)
    pace = n > 2 * w and before - within >= (float(np.min(c.trend[: n - 2 * w + 1])) - before) / 3
    share = (before - within) / made >= th.plateau_share
    # ...or one still setting new lows at most of its last points, its gain three times the bar for
    # clear (a smooth curve creeping 0.5% to a new low at every point stays a plateau)
    falling = lows and clear >= 3 and np.mean(_new_lows(float(np.min(c.y[: n - w])), c.y[n - w :])) >= 2 / 3
    # a log that begins well into training (`late`: a resumed run) holds little of the progress made,
    # so its own progress says nothing of whether it learned (a captioner's second epoch: 2.28 -> 2.07)
    learned = progress >= th.underfit_progress or (
        late and level - float(c.trend[-1]) >= th.noise_widths * c.noise
    )
    steady = learned and clear >= 1 and (share or pace or falling)
    # a stall is said only where the window shows it (`shown`: the curve judged for a plateau, not one
    # asked whether it still improves): its gain, give or take `plateau_doubt` standard errors
    # (`standard_error` holds `noise_widths` of them), short of the bar for plainly large
    doubt = -c.rel(before, before - th.plateau_doubt * standard_error / th.noise_widths)
    plainly = (gain + (doubt if shown and math.isfinite(doubt) else 0.0)) / th.plateau_gain
    margin = max(clear if gain >= th.plateau_floor else 0.0, plainly, 1.0 if steady else 0.0)
    return margin, gain, before, within, w


def still_improving(c: Curve, th: Thresholds) -> bool:
    """A held-out curve still improving by the same bar a plateau is judged by; one too short for a
    trend (a translation model evaluated every 10,000 steps, four times), when each of its last three
    evaluations is better than the one before, by `min_change` in all (perplexity 10.6, 9.65, 8.75)."""
    if len(c) >= th.min_points:
        return last_third(c, th)[0] >= 1
    return len(c) >= 3 and bool(np.all(np.diff(c.y[-3:]) < 0)) and -c.rel(c.y[-3], c.y[-1]) >= th.min_change
