"""Name what a run's curves show: diverged, overfitting, unstable, plateau, underfitting, or healthy.

Deterministic rules on the curves of curves.py (per epoch when a run has enough epochs, else per
span of logged steps), each judged against the curve's own noise rather than a fixed percentage
alone: a rise counts when it stands several noise-widths above where the curve was. Findings may
co-exist (a noisy validation curve can be unstable *and* rising); each carries its evidence with
real epochs or steps and values (never NaN), and a confidence (how far past its threshold it is).

Precedence kept: a run that blew up (NaN/inf) or climbs for good is reported as diverged (what follows
says nothing about the settings), with `unstable` beside it only when its loss spiked and came back
down on the way; plateau and underfitting are not said of a run that overfits (it is not stuck) nor
of an unstable one (its noise hides both). The blow-ups are in blowups.py, spikes and scatter in
instability.py, a validation curve's turn in overfitting.py; the thresholds (each documented) and the
Finding in findings.py.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from assistant.runs.blowups import climbing, held_out_holds, jump, nonfinite, step_explosion
from assistant.runs.chance import at_chance
from assistant.runs.curves import (
    Axis,
    Curve,
    first_fifth,
    fmt,
    fmt_x,
    judged_metric,
    lr_at_end,
    lr_gone_at,
    metric_curves,
    other_held_out,
    score_top,
    starts_late,
    training_losses,
    training_scores,
)
from assistant.runs.findings import KINDS, THRESHOLDS, Finding, Thresholds, confidence
from assistant.runs.gan import discriminator_wins
from assistant.runs.instability import spiked_on_the_way, unstable
from assistant.runs.overfitting import overfitting
from assistant.runs.parse import Run
from assistant.runs.parse.names import rewarding

__all__ = ["KINDS", "THRESHOLDS", "Finding", "Thresholds", "detect"]

# -- the shape of the curves ------------------------------------------------------------------------


def _progress(c: Curve, th: Thresholds) -> tuple[float, float, int]:
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


def _plateau(
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
    margin, gain, before, within, w = _last_third(c, th, lows)
    if margin >= 1 or _rose(c, before, within, th) or _late_start(c, before, within, th):
        return None  # still improving; worse than it was (a rise is no plateau); or only now moving
    if c is tr and any(_still_improving(h, th) for h in held):
        return None  # validation still improves: training is slow, not stuck
    if c is va and any(_still_improving(t, th) for t in training):
        return None  # only a held-out curve, levelling while training still improves: not a stall
    if _settled(c, w, run, th):
        return None  # a flat tail that is convergence, not a stall
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
        f"the last {w} {c.unit}s ({c.at(n - w)} to {c.at(n - 1)}): best {fmt(c.value(before))} before, "
        f"{fmt(c.value(within))} since{stalled}",
        {"from": c.at(n - w), "to": c.at(n - 1), "gain": gain, "best_before": c.value(before),
         "best_after": c.value(within), **({} if gone is None else {"lr_gone_at": gone})},
        confidence(1 / max(margin, 1 / 3)),
    )  # fmt: skip


def _late_start(c: Curve, before: float, within: float, th: Thresholds) -> bool:
    """The last stretch gained clearly, and at least as much as the whole run before it: a curve
    that sat still and only began to move (10.31 for six epochs, then 10.05) has not levelled off."""
    _, level, _ = _progress(c, th)
    return before - within > c.noise and before - within >= level - before


def _rose(c: Curve, before: float, within: float, th: Thresholds) -> bool:
    """The best of the last stretch stands `diverge_rise` above the best before it, however noisy the
    curve (3.4 before, 6.3 since): a climb, not a level. A loss creeping up from where it levelled
    (1.10 to 1.29) is still stuck."""
    if c.negated or (not c.log and before <= 0):
        return False  # a reward's best is any number; a loss at or below zero has no share to rise by
    return c.rel(before, within) >= th.diverge_rise


def _settled(c: Curve, w: int, run: Run, th: Thresholds) -> str | None:
    """Why a flat tail of `w` points is convergence rather than a stall, if it is: the learning rate
    decayed; the log says the run stopped on reaching its quality target (MLPerf's `run_stop` with
    status success: its last evaluations creep up to the target by design), or by early stopping
    (its patience is a flat end by design); the curve came down by
    an order of magnitude and still holds its lowest point (a loss at a tenth of where it began has
    learned what it will at this rate; one creeping back up is stuck); or a score sits at a ceiling,
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
    _, level, _ = _progress(c, th)
    start, end, low = c.value(level), c.value(c.trend[-1]), c.value(float(np.min(c.trend)))
    holds = c.trend[-1] - np.min(c.trend) < th.noise_widths * c.noise
    if start > 0 and 0 <= end <= th.converged_level * start and holds:
        return f"it levels off at {fmt(low)}, a tenth or less of where it began, which is convergence"
    best = float(np.min(c.y))
    repeats = int(np.sum(np.abs(c.y[-w:] - best) <= 1e-9 * max(abs(best), 1e-12)))
    if c.score and _round(c.value(best)) and repeats >= max(3, w // 3):
        return f"it sits at its best value ({fmt(c.value(best))}) again and again: a ceiling, convergence"
    if c.negated and rewarding(set(c.name.split())) and _last_third(c, th)[0] < 1:
        # how far an agent's return is from done is its environment's (the solved score), which no
        # curve says: one that rose and holds learned what it learns (one that never rose is underfit)
        level = fmt(c.logged(float(np.median(c.trend[-w:]))))
        return f"it holds near {level}; whether that is the task's best is its environment's solved score"
    return None


def _lr_gone(c: Curve, i: int, run: Run, th: Thresholds) -> float | None:
    """Where the learning rate fell to `lr_vanished` of its peak for good, when that is at or before
    the curve's point `i`: nothing is learned from there on."""
    at = lr_gone_at(run, c.unit, th.lr_vanished)
    return at if at is not None and at <= c.x[i] else None


def _round(v: float) -> bool:
    """A value a cap is set at (0 left to gain, a return of 500, 21 points): two significant digits
    at most. A loss or an AUC printed to four digits repeats its best by rounding, at no cap."""
    return v == 0 or float(f"{abs(v):.2g}") == abs(v)


def _last_third(c: Curve, th: Thresholds, lows: bool = True) -> tuple[float, float, float, float, int]:
    """(margin, gain, best before, best within, window) of the curve's last `plateau_window`: how many
    times over the bar for "still improving" its gain is. An improvement counts when it is clear of
    the window's noise (the standard error of its mean) and is not negligible, or when it is plainly
    large: a noisy curve still gaining 20% in its last third is not on a plateau, and a smooth one
    gaining 0.5% is, however clear that 0.5% is, unless it learned and keeps a third of the pace of
    the window before (a language model's loss, far from zero, falling a little less each stretch),
    or unless it still sets a new low at two of every three of its last points, by three times the
    bar for clear (a forecaster's error falling every epoch, slower each time), when no held-out curve is
    there to say whether those gains carry over (`lows`)."""
    n = len(c)
    w = th.last_stretch(n)
    before, within = float(np.min(c.trend[: n - w])), float(np.min(c.trend[n - w :]))
    gain = -c.rel(before, within)
    standard_error = th.noise_widths * c.noise * math.sqrt(2 / w)
    clear = (before - within) / standard_error
    # a curve that learned, still making a good share of its own progress clearly, is not stuck (an
    # AUC whose level is mostly what no model can remove); one that barely learned is judged as before
    progress, level, _ = _progress(c, th)
    made = (level - float(np.min(c.trend))) or math.inf
    # ...or one still gaining, clearly, a third of what it gained over the window before (a language
    # model's loss falls about as much per doubling of its steps: no stall, however small the share);
    # the window before is measured from the best point up to its first (not from the steep fall after)
    pace = n > 2 * w and before - within >= (float(np.min(c.trend[: n - 2 * w + 1])) - before) / 3
    share = (before - within) / made >= th.plateau_share
    # ...or one still setting new lows at most of its last points, its gain three times the bar for
    # clear (a smooth curve creeping 0.5% to a new low at every point stays a plateau)
    lows_set = np.minimum.accumulate(np.concatenate([[float(np.min(c.y[: n - w]))], c.y[n - w :]]))
    falling = lows and clear >= 3 and np.mean(np.diff(lows_set) < 0) >= 2 / 3
    steady = progress >= th.underfit_progress and clear >= 1 and (share or pace or falling)
    margin = max(clear if gain >= th.plateau_floor else 0.0, gain / th.plateau_gain, 1.0 if steady else 0.0)
    return margin, gain, before, within, w


def _still_improving(c: Curve, th: Thresholds) -> bool:
    """A held-out curve still improving by the same bar a plateau is judged by."""
    return len(c) >= th.min_points and _last_third(c, th)[0] >= 1


def _never_fell(c: Curve, th: Thresholds) -> bool:
    """The trend ends no lower than where the run started, beyond `noise_widths` of its noise."""
    _, level, _ = _progress(c, th)
    return level - float(c.trend[-1]) < th.noise_widths * c.noise


def _underfitting(
    tr: Curve | None, held: list[Curve], learned: list[Curve], run: Run, th: Thresholds
) -> Finding | None:
    """Judged on the run's own progress: with a held-out curve, held-out progress decides (the
    training loss may fall some while the model generalises nothing; with several, the one that
    improves most); without one, training's. A held-out score (accuracy, mAP) that rose by more than
    `noise_widths` of its noise is not "barely moving" when it closed half the share of its gap that
    asks (a detector's mAP has a ceiling no model reaches: 22 -> 27.5 closes a fifteenth of it).
    Not said of a log that begins well into training: what it learned before the log is not in it.
    Without a held-out curve, a training score (accuracy, AUROC) that clearly improves says it learns."""
    if tr is None or len(tr) < th.min_points or starts_late(run):
        return None
    if frozen := _frozen_accuracy(run, held, th) or at_chance(run, th):
        return frozen
    progress, level, start = _progress(tr, th)
    held = [h for h in held if len(h) >= th.min_points]
    va = max(held, key=lambda h: _progress(h, th)[0]) if held else None
    with_val = va is not None
    if progress >= (th.underfit_progress_with_val if with_val else th.underfit_progress):
        return None
    if not with_val and any(_progress(s, th)[0] >= th.underfit_score_progress for s in learned):
        return None  # its accuracy (AUROC, mAP) climbs: it learns what the loss hardly shows
    t0, t1 = tr.logged(level), tr.logged(tr.trend[-1])
    details: dict[str, Any] = {"train_start": t0, "train_end": t1, "progress": progress}
    val_text = ""
    margin = th.underfit_progress / max(progress, th.underfit_progress / 3)
    if va is not None and with_val:
        v_progress, v_level, _ = _progress(va, th)
        if v_progress >= th.underfit_val_progress:
            return None
        if (
            va.score
            and v_progress >= th.underfit_val_progress / 2
            and v_level - va.trend[-1] > th.noise_widths * va.noise
        ):
            return None  # a held-out score that rose clear of its noise learned (an mAP of 22 -> 27)
        v0, v1 = va.logged(v_level), va.logged(va.trend[-1])
        val_text = f", and validation {va.name} barely moves ({fmt(v0)} to {fmt(v1)})"
        details["val_end"] = v1
        margin = th.underfit_val_progress / max(v_progress, th.underfit_val_progress / 3)
    return Finding(
        "underfitting",
        f"training {tr.name} barely improves: from {fmt(t0)} at {tr.at(start)} to {fmt(t1)} at "
        f"{tr.at(len(tr) - 1)} ({max(progress, 0):.0%} better){val_text}",
        details,
        confidence(margin),
    )


def _score_turned(tr: Curve | None, va: Curve | None, held: list[Curve], th: Thresholds) -> Finding | None:
    """Without a held-out loss, the held-out scores turning worse from their best while the training
    loss still falls (a recommender's validation NDCG and hit rate, best at epoch 20 and 4-9% below
    it by epoch 200): the same turn, on the curves the log holds. Every one of them, not one: a
    score is a coarser reading than a loss (an accuracy at a fixed threshold on rare positives may
    turn while the AUC beside it still climbs). Not an agent's return (no held-out data there)."""
    scores = [h for h in held if h.score and not h.negated and len(h) >= th.min_points]
    if va is not None or tr is None or not scores:
        return None
    turned = [overfitting(tr, h, th) for h in scores]
    return turned[0] if all(turned) else None


def _past_half(scores: list[Curve]) -> list[Curve]:
    """The held-out scores beside a validation loss that end more than halfway to their top: one that
    climbed there says the model learned, however little its loss moves (a label-smoothed loss with a
    floor of 1.35 while accuracy reaches 0.95). One still short of half may be near chance (a
    four-class accuracy of 0.42), and says nothing the loss does not."""
    # (a score's curve holds its shortfall: under half the top left to gain is past half of it)
    return [s for s in scores if s.score and s.top and s.value(float(s.trend[-1])) < s.top / 2]


def _frozen_accuracy(run: Run, held: list[Curve], th: Thresholds) -> Finding | None:
    """Held-out accuracy logged at the very same value at every evaluation, short of perfect: the
    model's held-out predictions never change (a majority class). Not when a held-out curve falls by
    half or more (a validation loss 0.66 -> 0.20): the model's outputs change, and an accuracy that
    does not is a metric measuring something else (0.0135 at every epoch beside a Dice of 0.75)."""
    if "val_acc" not in run.table or any(_progress(h, th)[0] >= 0.5 for h in held):
        return None
    acc = run.table["val_acc"].to_numpy(dtype=float)
    acc = acc[np.isfinite(acc)]
    if len(acc) < th.min_points or np.ptp(acc) > 0 or (top := score_top(acc)) is None or acc[0] >= 0.99 * top:
        return None
    return Finding(
        "underfitting",
        f"validation accuracy is {fmt(float(acc[0]))} at every one of its {len(acc)} evaluations: the "
        "model's predictions on held-out data never change (one class for everything?)",
        {"val_acc": float(acc[0]), "evaluations": len(acc), "frozen": True},
        "high",
    )


def detect(run: Run, th: Thresholds = THRESHOLDS) -> list[Finding]:
    """The findings for a run, most severe first; `healthy` alone when nothing is wrong."""
    what = judged_metric(run)
    ax = Axis(min_points=th.min_points)
    tr, va = metric_curves(run, what, ax)
    if blown := nonfinite(run):
        spiked = spiked_on_the_way(tr, th) if what == "loss" else None
        return [blown, spiked] if spiked else [blown]
    if won := discriminator_wins(run, th):
        return [won]
    # the logged steps' loss is read for a blow-up only when the loss is what is judged (in
    # reinforcement learning, judged on its reward, a loss may grow tenfold in a healthy run)
    steps = step_explosion(run, th) if what == "loss" else None
    if not held_out_holds(va, th) and (exploded := steps or jump(tr, th) or climbing(tr, va, th)):
        spiked = spiked_on_the_way(tr, th) if what == "loss" else None
        return [exploded, spiked] if spiked else [exploded]
    held = [va] if va is not None else other_held_out(run, what, ax)
    overfit = overfitting(tr, va, th) or _score_turned(tr, va, held, th)
    found = [f for f in (overfit, unstable([c for c in (tr, va) if c], th, held)) if f]
    if not found:  # a run that overfits is not stuck; an unstable one's noise hides both
        learned = [] if held else training_scores(run, what, ax)  # without held-out data, what it learns
        optimised = [] if tr is not None else training_losses(run, what, ax)
        # beside a validation loss, its held-out scores too: a training loss levelling off while the
        # held-out AUC still climbs is slow, not stuck (a recommender's noisy logloss, AUC 0.73 -> 0.74)
        also_held = other_held_out(run, what, ax) if va is not None else []
        found += [
            f
            for f in (
                _plateau(tr, va, held + learned + also_held, optimised, run, th),
                _underfitting(tr, held + _past_half(also_held), learned, run, th),
            )
            if f
        ]
        if len(found) == 2 and tr is not None and (_never_fell(tr, th) or found[1].details.get("chance")):
            # a curve that never came down (or only to chance) did not level off: it never learned
            found = found[1:]
        elif len(found) == 2 and "lr_gone_at" in found[0].details:
            found = found[:1]  # it learned until its learning rate vanished: the schedule stopped it
    found = found or [_healthy(tr, va, run, th, judged=what is not None)]
    if run.blown_before:  # what the user saw first; the last run's own findings follow (not "healthy")
        return [_blown_before(), *(f for f in found if f.kind != "healthy")]
    return found


def _blown_before() -> Finding:
    text = (
        "an earlier run in this log logged its loss as NaN or infinite (the weights overflowed); the "
        "last run, judged here, is a restart"
    )
    return Finding("diverged", text, {"earlier_run": True}, "medium")


def _healthy(tr: Curve | None, va: Curve | None, run: Run, th: Thresholds, judged: bool) -> Finding:
    c = tr if tr is not None else va
    if c is None and not judged and (names := [m for m in run.metrics if m != "lr"]):
        text = (
            f"{len(names)} curves ({', '.join(names[:4])}{', …' if len(names) > 4 else ''}) and none of "
            "them is the run's main one (or says which way is better): they are drawn, no trend is judged"
        )
        return Finding("healthy", text, {"points": 0, "judged": None}, "low")
    if c is None or len(c) < th.min_points:
        n = 0 if c is None else len(c)
        unit = "point" if c is None else c.unit
        text = f"nothing abnormal in {n} {unit}s (too few to judge trends)"
        return Finding("healthy", text, {"points": n}, "low")
    rose = c.trend[-1] > c.trend[0]  # got worse
    start, end = fmt(c.logged(c.trend[0])), fmt(c.logged(c.trend[-1]))
    moved = "rose" if rose != c.negated else "fell"  # a reward, as logged
    # the trend's ends, where they were (a curve of many points is judged on spans of them: `len(c)`
    # counts spans, not epochs)
    text = f"{c.label} {c.name} {moved} from {start} at {c.at(0)} to {end} at {c.at(len(c) - 1)} on its trend"
    if tr is not None and va is not None and len(va):
        best = int(np.argmin(va.trend))
        low = f"best {fmt(va.value(va.trend[best]))} at {va.at(best)}"
        # how far the last reading is from the best reading (`low` quotes the trend's best)
        ended = va.rel(float(np.min(va.y)), float(va.y[-1]))
        if rose:
            text += f" while validation {va.what} improved ({low}): the training objective changes under it"
        elif ended < th.min_change or not math.isfinite(ended):
            text += f"; validation {va.what} followed it ({low})"
        else:
            text += f"; validation {va.what} ended {ended:.0%} above its best reading ({low} on its trend)"
            text += ", too little to call a turn"
    if settled := _settled(c, th.last_stretch(len(c)), run, th):
        text += f"; {settled}"
    return Finding("healthy", text + ": no sign of a problem", {"points": len(c)}, "medium")
