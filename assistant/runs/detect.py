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
instability.py, a validation curve's turn in overfitting.py, a stall told from convergence in
plateau.py, too little learned in underfitting.py; the thresholds (each documented) and the Finding
in findings.py.
"""

from __future__ import annotations

import math

import numpy as np

from assistant.runs.blowups import climbing, held_out_holds, jump, nonfinite, step_explosion, zeroed
from assistant.runs.curves import (
    Axis,
    Curve,
    fmt,
    judged_metric,
    metric_curves,
    other_held_out,
    training_losses,
    training_scores,
)
from assistant.runs.findings import KINDS, THRESHOLDS, Finding, Thresholds
from assistant.runs.gan import discriminator_wins
from assistant.runs.instability import spiked_on_the_way, unstable
from assistant.runs.overfitting import overfitting, score_turned, too_near_end
from assistant.runs.parse import Run
from assistant.runs.parse.names import PREDICTION_ERRORS
from assistant.runs.plateau import convergence, last_third, plateau
from assistant.runs.underfitting import never_fell, past_half, underfitting

__all__ = ["KINDS", "THRESHOLDS", "Finding", "Thresholds", "detect"]


def detect(run: Run, th: Thresholds = THRESHOLDS) -> list[Finding]:
    """The findings for a run, most severe first; `healthy` alone when nothing is wrong."""
    what = judged_metric(run)
    ax = Axis(min_points=th.min_points)
    tr, va = metric_curves(run, what, ax)
    if blown := nonfinite(run) or (zeroed(run, th) if what == "loss" else None):
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
    # without any held-out curve long enough for a trend, those too short for one are asked as a short
    # validation loss is (_few_evaluations: a notebook's validation accuracy over four epochs)
    scored = held or other_held_out(run, what, Axis(min_points=3))  # (`held` is empty only without `va`)
    overfit = overfitting(tr, va, th) or score_turned(tr, va, scored, th)
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
                plateau(tr, va, held + learned + also_held, optimised, run, th),
                underfitting(tr, held + past_half(also_held, va, th) + _errors(also_held), learned, run, th),
            )
            if f
        ]
        if len(found) == 2 and tr is not None and (never_fell(tr, th) or found[1].details.get("chance")):
            # a curve that never came down (or only to chance) did not level off: it never learned
            found = found[1:]
        elif len(found) == 2 and "lr_gone_at" in found[0].details:
            found = found[:1]  # it learned until its learning rate vanished: the schedule stopped it
    return found or [_healthy(tr, va, run, th, judged=what is not None)]


def _errors(held: list[Curve]) -> list[Curve]:
    """The held-out curves beside a validation loss that are errors of its predictions (an RMSE, a word
    error rate; not a VAE's KL nor a perplexity): each may show the model learning where the loss hardly
    moves (a cross-entropy on soft targets, whose floor is their entropy: 0.259 -> 0.232 while the RMSE
    falls 0.124 -> 0.082)."""
    return [h for h in held if not h.score and PREDICTION_ERRORS & set(h.tokens) and "loss" not in h.tokens]


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
            # why that is no turn: too few readings after the best (a last one up, 2748's single
            # evaluation at +194%), or a rise within the curve's noise
            late = too_near_end(len(va), int(np.argmin(va.y)), th)
            text += ", too near the end to call a turn" if late else ", a rise within its noise"
    # (said of a flat tail only: a curve still falling steeply does not level off)
    flat = last_third(c, th)[0] < 1
    if flat and (settled := convergence(c, th.last_stretch(len(c)), run, th, va if c is tr else None)):
        text += f"; {settled}"
    return Finding("healthy", text + ": no sign of a problem", {"points": len(c)}, "medium")
