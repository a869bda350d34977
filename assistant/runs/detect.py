"""Name what a run's curves show: diverged, overfitting, plateau, unstable, underfitting, or healthy.

Deterministic rules on per-epoch curves. Step-level values are first averaged per epoch (a log
without epochs is cut into `step_bins` equal spans of steps), which smooths mini-batch noise the
way people read curves; long runs are averaged down to `max_points`. Trends (for minima, ends and
plateaus) are a centred 3-point moving average of those curves; spikes are judged on the curves
themselves. Thresholds are relative (to a curve's own range, minimum or start), so they hold for
any loss scale; each is documented on `Thresholds`.

Precedence: a diverged run is reported as diverged only (what follows a blow-up says nothing about
the settings); an unstable one is not also called a plateau or underfitting (the noise hides both),
nor overfitting when it is the validation curve that jumps (its minimum is noise).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from assistant.runs.parse import Run

KINDS = ("diverged", "overfitting", "plateau", "unstable", "underfitting", "healthy")


@dataclass(frozen=True)
class Thresholds:
    min_points: int = 4
    """Fewer epochs than this: only divergence is judged (a trend needs a few points)."""
    step_bins: int = 30
    """A log without epochs is averaged over this many equal spans of steps ("epochs")."""
    max_points: int = 40
    """Longer runs are averaged down to this many points (each a span of epochs)."""
    diverge_factor: float = 3.0
    """Diverged: the training loss climbs above 3x the best value it had reached and is still there
    at the end (it did not recover), ..."""
    explode_factor: float = 10.0
    """...or it peaks above 10x its best, or a single step's loss is 10x the loss the run started
    from (the median of its first `start_steps` steps), or it is NaN/inf. A healthy loss never
    triples its best for good, nor goes ten times above where it started; a learning rate too high
    does. A loss that climbs less and comes back is `unstable`, not diverged."""
    start_steps: int = 5
    """Steps whose median is the loss a run started from."""
    overfit_rise: float = 0.25
    """Overfitting: the validation trend ends at least 25% above its minimum..."""
    overfit_min_epochs: int = 3
    """...at least 3 points after that minimum (one bad epoch is noise)..."""
    overfit_train_gain: float = 0.10
    """...while the training trend falls by at least 10% over the same stretch."""
    plateau_window: float = 1 / 3
    """Plateau: over the last third of the run (at least 3 points)..."""
    plateau_gain: float = 0.02
    """...the training loss's best value improves by less than 2% on its best before that."""
    unstable_spike: float = 0.15
    """A spike: a point standing above both neighbours by more than 15% of the curve's range..."""
    unstable_floor: float = 0.10
    """...where the range counts as at least 10% of the curve's median (the range of a flat curve
    is its noise: a 0.002 wobble on a loss of 0.66 is no spike)."""
    unstable_min_spikes: int = 2
    """Unstable: at least 2 spikes in the training or the validation curve."""
    underfit_ratio: float = 0.6
    """Underfitting: the training trend ends at 60% or more of its first value (it learned little)..."""
    underfit_gap: float = 0.25
    """...and the validation loss is within 25% of the training loss (the model is not overfitting,
    it cannot fit)."""


THRESHOLDS = Thresholds()


@dataclass
class Finding:
    kind: str
    evidence: str  # in words, with epochs and values
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Curves:
    """Per-epoch curves of a run. `x` labels each point (an epoch, or the last step of a span)."""

    x: np.ndarray
    unit: str  # "epoch" | "step"
    train: np.ndarray | None  # training loss (or 1 - accuracy when no loss is logged)
    val: np.ndarray | None
    what: str  # "loss" | "error (1 - accuracy)"

    def at(self, i: int) -> str:
        return f"{self.unit} {int(self.x[i])}"


def curves(run: Run, th: Thresholds = THRESHOLDS) -> Curves:
    t = run.table
    if run.has_epochs:
        grouped = t.groupby("epoch", sort=True).mean(numeric_only=True)
        x, unit = grouped.index.to_numpy(dtype=float), "epoch"
    else:
        pos = t["step"].to_numpy() if t["step"].notna().all() else np.arange(1, len(t) + 1, dtype=float)
        bins = np.minimum((np.arange(len(t)) * th.step_bins) // max(len(t), 1), th.step_bins - 1)
        grouped = t.assign(_bin=bins).groupby("_bin").mean(numeric_only=True)
        x = pd.Series(pos).groupby(bins).max().to_numpy(dtype=float)
        unit = "step"
    if len(grouped) > th.max_points:
        span = np.arange(len(grouped)) * th.max_points // len(grouped)
        x = pd.Series(x).groupby(span).max().to_numpy()
        grouped = grouped.reset_index(drop=True).groupby(span).mean()
    what = "loss"
    names = ("train_loss", "val_loss")
    if not any(n in grouped for n in names):
        names, what = ("train_acc", "val_acc"), "error (1 - accuracy)"
    out = []
    for n in names:
        if n not in grouped:
            out.append(None)
            continue
        y = grouped[n].to_numpy(dtype=float)
        if what != "loss":
            y = (100.0 if np.nanmax(y) > 1.0 else 1.0) - y
        out.append(y)
    return Curves(x, unit, out[0], out[1], what)


def _trend(y: np.ndarray) -> np.ndarray:
    return pd.Series(y).rolling(3, center=True, min_periods=1).mean().to_numpy() if len(y) >= 6 else y


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _nonfinite(run: Run) -> Finding | None:
    """A loss logged as NaN or inf (stored as inf: see parse.Run)."""
    for name in ("train_loss", "val_loss"):
        if name not in run.table:
            continue
        bad = np.flatnonzero(np.isinf(run.table[name].to_numpy(dtype=float)))
        if len(bad):
            row = run.table.iloc[int(bad[0])]
            where = (
                f"epoch {int(row['epoch'])}" if not math.isnan(row["epoch"]) else f"step {int(row['step'])}"
            )
            label = "training" if name == "train_loss" else "validation"
            return Finding(
                "diverged",
                f"the {label} loss became NaN or infinite at {where}: the weights overflowed",
                {"metric": name, "at": where},
            )
    return None


def _exploded(c: Curves, th: Thresholds) -> Finding | None:
    y = c.train if c.train is not None else c.val
    if y is None or len(y) < 2:
        return None
    label = "training" if c.train is not None else "validation"
    best = np.fmin.accumulate(y)
    for i in range(1, len(y)):
        if not y[i] > th.diverge_factor * best[i - 1] > 0:
            continue
        peak = int(np.nanargmax(y[i:])) + i
        if y[peak] > th.explode_factor * best[i - 1] or y[-1] > th.diverge_factor * best[i - 1]:
            return Finding(
                "diverged",
                f"the {label} {c.what} climbed from its best {_fmt(best[i - 1])} to {_fmt(y[i])} at "
                f"{c.at(i)} (peak {_fmt(y[peak])} at {c.at(peak)}, {_fmt(y[-1])} at the end)",
                {"at": c.at(i), "best": float(best[i - 1]), "value": float(y[i]), "peak": float(y[peak])},
            )
    return None


def _step_explosion(run: Run, th: Thresholds) -> Finding | None:
    """A loss blown up inside one epoch is averaged away per epoch: look at the steps themselves."""
    if "train_loss" not in run.table:
        return None
    rows = run.table[run.table["train_loss"].notna()]
    y = rows["train_loss"].to_numpy(dtype=float)
    if len(y) < 2 * th.start_steps:
        return None
    start = float(np.median(y[: th.start_steps]))
    over = np.flatnonzero(y > th.explode_factor * start) if start > 0 else []
    if not len(over):
        return None
    row = rows.iloc[int(over[0])]
    where = f"step {int(row['step'])}" if not math.isnan(row["step"]) else f"epoch {int(row['epoch'])}"
    return Finding(
        "diverged",
        f"the training loss started at {_fmt(start)} and reached {_fmt(y[over[0]])} at {where} "
        f"(peak {_fmt(float(np.max(y)))}): more than {th.explode_factor:g}x where it started",
        {"at": where, "start": start, "value": float(y[over[0]]), "peak": float(np.max(y))},
    )


def _overfitting(c: Curves, th: Thresholds) -> Finding | None:
    if c.train is None or c.val is None:
        return None
    ok = ~(np.isnan(c.train) | np.isnan(c.val))
    x, tr, va = c.x[ok], _trend(c.train[ok]), _trend(c.val[ok])
    if len(va) < th.min_points:
        return None
    turn = int(np.argmin(va))
    after = len(va) - 1 - turn
    if after < th.overfit_min_epochs:
        return None
    rise = (va[-1] - va[turn]) / abs(va[turn]) if va[turn] else math.inf
    gain = (tr[turn] - tr[-1]) / abs(tr[turn]) if tr[turn] else 0.0
    if rise < th.overfit_rise or gain < th.overfit_train_gain:
        return None
    sub = Curves(x, c.unit, None, None, c.what)
    return Finding(
        "overfitting",
        f"validation {c.what} was lowest ({_fmt(va[turn])}) at {sub.at(turn)} and rose to "
        f"{_fmt(va[-1])} by {sub.at(len(va) - 1)} (+{rise:.0%}) while training {c.what} kept falling, "
        f"from {_fmt(tr[turn])} to {_fmt(tr[-1])}: it turns at {sub.at(turn)}",
        {"turn": sub.at(turn), "turn_value": float(x[turn]), "val_min": float(va[turn]),
         "val_end": float(va[-1]), "train_at_turn": float(tr[turn]), "train_end": float(tr[-1])},
    )  # fmt: skip


def _spikes(y: np.ndarray, th: Thresholds) -> list[int]:
    y = y[~np.isnan(y)]
    if len(y) < 3:
        return []
    scale = max(float(np.max(y) - np.min(y)), th.unstable_floor * abs(float(np.median(y))))
    if scale <= 0:
        return []
    stand = y[1:-1] - np.maximum(y[:-2], y[2:])
    return [int(i) + 1 for i in np.flatnonzero(stand > th.unstable_spike * scale)]


def _unstable(c: Curves, th: Thresholds) -> Finding | None:
    for label, y in (("training", c.train), ("validation", c.val)):
        if y is None or np.count_nonzero(~np.isnan(y)) < th.min_points:
            continue
        x = c.x[~np.isnan(y)]
        spikes = _spikes(y, th)
        if len(spikes) >= th.unstable_min_spikes:
            yy = y[~np.isnan(y)]
            sub = Curves(x, c.unit, None, None, c.what)
            shown = ", ".join(f"{_fmt(yy[i])} at {sub.at(i)}" for i in spikes[:4])
            return Finding(
                "unstable",
                f"the {label} {c.what} jumps up and down: {len(spikes)} spikes above both neighbours "
                f"by more than {th.unstable_spike:.0%} of its range ({shown})",
                {"curve": label, "spikes": [sub.at(i) for i in spikes],
                 "range": [float(np.min(yy)), float(np.max(yy))]},
            )  # fmt: skip
    return None


def _plateau(c: Curves, th: Thresholds) -> Finding | None:
    label, y = ("training", c.train) if c.train is not None else ("validation", c.val)
    if y is None:
        return None
    ok = ~np.isnan(y)
    x, y = c.x[ok], _trend(y[ok])
    n = len(y)
    w = max(3, math.ceil(n * th.plateau_window))
    if n < th.min_points or n - w < 1:
        return None
    before, within = float(np.min(y[: n - w])), float(np.min(y[n - w :]))
    gain = (before - within) / abs(before) if before else 0.0
    if gain >= th.plateau_gain:
        return None
    sub = Curves(x, c.unit, None, None, c.what)
    return Finding(
        "plateau",
        f"the {label} {c.what} improved by only {max(gain, 0):.1%} over the last {w} {c.unit}s "
        f"({sub.at(n - w)} to {sub.at(n - 1)}): best {_fmt(before)} before, {_fmt(within)} since",
        {
            "from": sub.at(n - w),
            "to": sub.at(n - 1),
            "gain": gain,
            "best_before": before,
            "best_after": within,
        },
    )


def _underfitting(c: Curves, th: Thresholds) -> Finding | None:
    if c.train is None:
        return None
    tr = c.train[~np.isnan(c.train)]
    if len(tr) < th.min_points or tr[0] <= 0:
        return None
    end = float(_trend(tr)[-1])
    ratio = end / float(tr[0])
    if ratio < th.underfit_ratio:
        return None
    gap_text, details = "", {"train_start": float(tr[0]), "train_end": end, "ratio": ratio}
    if c.val is not None and np.count_nonzero(~np.isnan(c.val)):
        va = c.val[~np.isnan(c.val)]
        v_end = float(_trend(va)[-1])
        if abs(v_end - end) > th.underfit_gap * abs(end):
            return None
        gap_text = f", and validation {c.what} stays close ({_fmt(v_end)})"
        details["val_end"] = v_end
    return Finding(
        "underfitting",
        f"training {c.what} stays high: from {_fmt(tr[0])} at {c.at(0)} to {_fmt(end)} at "
        f"{c.at(len(c.x) - 1)} ({ratio:.0%} of where it started){gap_text}",
        details,
    )


def detect(run: Run, th: Thresholds = THRESHOLDS) -> list[Finding]:
    """The findings for a run, most severe first; `healthy` alone when nothing is wrong."""
    nonfinite = _nonfinite(run)
    if nonfinite:
        return [nonfinite]
    c = curves(run, th)
    exploded = _exploded(c, th) or _step_explosion(run, th)
    if exploded:
        return [exploded]
    unstable = _unstable(c, th)
    overfit = _overfitting(c, th)
    if unstable and unstable.details["curve"] == "validation":
        overfit = None  # a validation curve that jumps about has no trustworthy turning point
    found = [f for f in (overfit, unstable) if f]
    if not any(f.kind == "unstable" for f in found):
        found += [f for f in (_plateau(c, th), _underfitting(c, th)) if f]
    if found:
        return found
    y = c.train if c.train is not None else c.val
    n = len(c.x)
    if y is None or n < th.min_points:
        return [
            Finding("healthy", f"nothing abnormal in {n} {c.unit}s (too few to judge trends)", {"points": n})
        ]
    label = "training" if c.train is not None else "validation"
    text = f"{label} {c.what} fell from {_fmt(y[0])} to {_fmt(y[-1])} over {n} {c.unit}s"
    if c.train is not None and c.val is not None:
        best = int(np.nanargmin(c.val))
        text += f"; validation {c.what} followed it (best {_fmt(c.val[best])} at {c.at(best)})"
    return [Finding("healthy", text + ": no sign of a problem", {"points": n})]
