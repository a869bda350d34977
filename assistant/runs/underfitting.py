"""Underfitting: a run that barely learned, judged against its own progress and its held-out
curves rather than against zero; a held-out accuracy frozen at one value; a loss at chance."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from assistant.runs.chance import at_chance, classes_at_start
from assistant.runs.curves import ACCURACY_ERROR, Curve, first_level, fmt, score_top, starts_late
from assistant.runs.findings import Finding, Thresholds, confidence
from assistant.runs.parse import Run
from assistant.runs.parse.names import direction
from assistant.runs.plateau import progress_of

_TOP_K = re.compile(r"\btop(?:[2-9]|\d{2,})\b")  # a top-5 accuracy counts a hit among five guesses


def never_fell(c: Curve, th: Thresholds) -> bool:
    """The trend ends no lower than where the run started, beyond `noise_widths` of its noise."""
    _, level, _ = progress_of(c, th)
    return level - float(c.trend[-1]) < th.noise_widths * c.noise


def underfitting(
    tr: Curve | None, held: list[Curve], learned: list[Curve], run: Run, th: Thresholds
) -> Finding | None:
    """Judged on the run's own progress: with a held-out curve, held-out progress decides (the
    training loss may fall some while the model generalises nothing; with several, the one that
    improves most); without one, training's. A held-out score (accuracy, mAP) that rose by more than
    `noise_widths` of its noise is not "barely moving" when it closed half the share of its gap that
    asks (a detector's mAP has a ceiling no model reaches: 22 -> 27.5 closes a fifteenth of it).
    Not said of a log that begins well into training (what it learned before the log is not in it),
    nor of a run the log says stopped on reaching its quality target (it learned what was asked).
    A training loss that goes below zero is judged on whether it came down beyond its noise, not on
    its share (a normalising flow's NLL falling from -113,248 to -115,470 is 2% of a number whose
    zero means nothing); a held-out curve beside it still decides.
    Without a held-out curve, a training score (accuracy, AUROC) that clearly improves says it learns."""
    if tr is None or len(tr) < th.min_points or starts_late(run) or run.stopped == "target":
        return None
    if frozen := _frozen_held_out(run, held, th) or at_chance(run, th):
        return frozen
    progress, level, start = progress_of(tr, th)
    # a loss below zero (a flow's NLL, an energy) has no zero to take a share of: one that came down
    # beyond its noise learned, as far as training can say; held-out data, if any, decides
    unanchored = not tr.log and not tr.score and float(np.min(tr.trend)) < 0 and not never_fell(tr, th)
    held = [h for h in held if len(h) >= th.min_points]
    if any(_perfect(h) for h in held):
        return None
    va = max(held, key=lambda h: progress_of(h, th)[0]) if held else None
    with_val = va is not None
    if unanchored and not with_val:
        return None
    if not unanchored and progress >= (th.underfit_progress_with_val if with_val else th.underfit_progress):
        return None
    if not with_val and any(progress_of(s, th)[0] >= th.underfit_score_progress for s in learned):
        return None  # its accuracy (AUROC, mAP) climbs: it learns what the loss hardly shows
    t0, t1 = tr.logged(level), tr.logged(tr.trend[-1])
    details: dict[str, Any] = {"train_start": t0, "train_end": t1, "progress": progress}
    val_text = ""
    margin = th.underfit_progress / max(progress, th.underfit_progress / 3)
    if va is not None:
        v_progress, v_level, _ = progress_of(va, th)
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
    moved = "went" if unanchored else "barely improves:"
    share = "" if unanchored else f" ({max(progress, 0):.0%} better)"
    return Finding(
        "underfitting",
        f"training {tr.name} {moved} from {fmt(t0)} at {tr.at(start)} to {fmt(t1)} at "
        f"{tr.at(len(tr) - 1)}{share}{val_text}",
        details,
        confidence(margin),
    )


def _perfect(h: Curve) -> bool:
    """A held-out accuracy (top-1) that reached its best value, 100% (within a hundredth): the model
    gets every held-out example right, whatever its loss did, and an accuracy that began there has
    nothing left to improve (a two-class fine-tune at 100% from its first evaluation). Not 90%, which
    may be chance on imbalanced classes, nor a top-5 accuracy or a recall, which a model that learned
    little may still max out."""
    if not (h.score and h.top and {"acc", "accuracy"} & set(h.tokens)) or _TOP_K.search(" ".join(h.tokens)):
        return False
    return bool(h.value(float(np.min(h.y))) <= 0.01 * h.top)


def past_half(scores: list[Curve], va: Curve | None, th: Thresholds) -> list[Curve]:
    """The held-out scores beside a validation loss `va` that end more than halfway from chance to
    their top: one that climbed there says the model learned, however little its loss moves (a
    label-smoothed loss with a floor of 1.35 while accuracy reaches 0.95). One still short of half may
    be near chance (a four-class accuracy of 0.42), and says nothing the loss does not. An accuracy's
    chance is 1/K when the validation loss starts at ln K (a binary classifier's 0.693: its accuracy of
    0.60 is a fifth of the way from its chance 0.5); a ROC AUC's is a half (a random ranking of two
    classes: an AUC of 0.70 is two fifths of the way from it); any other score's (an IoU, an F1) is
    taken as zero, as an accuracy's is beside any other loss."""
    k = classes_at_start(va.value(first_level(va)), th) if va is not None and not va.score else None

    def chance(s: Curve) -> float:
        if not s.top:
            return 0.0
        if s.what == ACCURACY_ERROR:
            return s.top / k if k else 0.0
        return s.top / 2 if {"auc", "auroc"} & set(s.tokens) and "pr" not in s.tokens else 0.0

    # (a score's curve holds its shortfall: under half of what is left above chance is past half)
    return [s for s in scores if s.score and s.top and s.value(float(s.trend[-1])) < (s.top - chance(s)) / 2]


def _frozen_held_out(run: Run, held: list[Curve], th: Thresholds) -> Finding | None:
    """Held-out accuracy logged at the very same value at every evaluation, short of perfect: the
    model's held-out predictions never change (a majority class). Without an accuracy, the log's
    held-out scores (not a loss or an error: step-back's `val_score`), every one of them frozen near
    its floor, above zero (a tenth of its best at most: one logged with two decimals at 0.91 may
    move unseen, and an mAP of 0 is a detector with no correct box yet, not a frozen one), and one
    alone may be a setting read as a score (simpleaicv's `iou: 0.95` beside its mAP). Not when a
    held-out curve falls by half or more (a validation loss 0.66 -> 0.20): the model's outputs change,
    and an accuracy that does not is a metric measuring something else (0.0135 at every epoch beside a
    Dice of 0.75)."""
    accuracy = "val_acc" in run.table
    names = ["val_acc"] if accuracy else _held_scores(run)
    if not names or any(progress_of(h, th)[0] >= 0.5 for h in held):
        return None
    frozen = [acc for acc in (_finite(run.table[k]) for k in names) if _frozen(acc, th, accuracy)]
    if len(frozen) < len(names):
        return None
    name, acc = names[0], frozen[0]
    what = "accuracy" if accuracy else f"`{name}`"
    why = "predictions on held-out data never change (one class for everything?)"
    return Finding(
        "underfitting",
        f"validation {what} is {fmt(float(acc[0]))} at every one of its {len(acc)} evaluations: the "
        f"model's {why if accuracy else 'held-out score never moves off its floor'}",
        {"val_acc": float(acc[0]), "evaluations": len(acc), "frozen": True},
        "high",
    )


def _held_scores(run: Run) -> list[str]:
    return sorted(k for k in run.table if k.startswith("val_") and direction(k) != "down")


def _finite(column: Any) -> np.ndarray:
    values = column.to_numpy(dtype=float)
    return values[np.isfinite(values)]


def _frozen(acc: np.ndarray, th: Thresholds, accuracy: bool) -> bool:
    """`min_points` readings or more, all the very same value: short of the score's best for an
    accuracy, above zero and within a tenth of the best from it for another score."""
    if len(acc) < th.min_points or np.ptp(acc) > 0 or (top := score_top(acc)) is None:
        return False
    return bool(acc[0] < 0.99 * top) if accuracy else bool(0 < acc[0] <= 0.1 * top)
