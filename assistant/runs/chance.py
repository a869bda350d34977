"""A classifier stuck at chance: its accuracy sits at 1/K and its cross-entropy at ln K for the same
number of classes K, the loss of a uniform guess among K classes. Either figure alone is a
coincidence (healthy detection and language-model losses pass through 2.3 or 1.39 on the way down);
both at once, over the run's last stretch, say the model outputs the prior and learned nothing it
can use (an iTransformer at 0.251 accuracy and 1.387 loss on four classes)."""

from __future__ import annotations

import math

import numpy as np

from assistant.runs.curves import fmt, score_top
from assistant.runs.findings import Finding, Thresholds
from assistant.runs.parse import Run

_MOST_CLASSES = 1000


def at_chance(run: Run, th: Thresholds) -> Finding | None:
    """The run's last stretch at chance on held-out data (or on training data when none is held out)."""
    for stage in ("val", "train"):
        acc, loss = f"{stage}_acc", f"{stage}_loss"
        if acc not in run.table or loss not in run.table:
            continue
        pair = run.table[[acc, loss]].dropna().to_numpy(dtype=float)
        if len(pair) < th.min_points:
            continue
        if (top := score_top(pair[:, 0])) is None:
            return None
        tail = pair[-th.last_stretch(len(pair)) :]
        a, lo = float(np.median(tail[:, 0])) / top, float(np.median(tail[:, 1]))
        if a <= 0 or (k := round(1 / a)) < 2 or k > _MOST_CLASSES:
            return None
        if abs(a - 1 / k) > th.chance_share / k or abs(lo - math.log(k)) > th.chance_share * math.log(k):
            return None
        label = "validation" if stage == "val" else "training"
        return Finding(
            "underfitting",
            f"{label} accuracy sits at {fmt(a * top)} and its loss at {fmt(lo)} over the last "
            f"{len(tail)} readings: 1/{k} and ln {k} = {math.log(k):.3f}, a uniform guess among {k} "
            "classes. The model predicts no better than chance",
            {"classes": k, "accuracy": a, "loss": lo, "chance": True},
            "high",
        )
    return None


def classes_at_start(loss: float, th: Thresholds) -> int | None:
    """The number of classes K whose uniform guess costs `loss` (ln K, within `chance_share`), the
    cross-entropy an untrained classifier starts at (the sanity check of a new run): on a held-out loss
    first logged at 0.696 a binary classifier, whose accuracy is 0.5 by chance. None for a loss no
    ln K is near (below ln 2, or a regression's error that is no share of a log)."""
    if not math.log(2) * (1 - th.chance_share) <= loss <= math.log(_MOST_CLASSES) * (1 + th.chance_share):
        return None  # (a NaN too; and a loss of 1000 has no e**loss to round)
    k = max(2, round(math.exp(loss)))
    return k if k <= _MOST_CLASSES and abs(loss - math.log(k)) <= th.chance_share * math.log(k) else None
