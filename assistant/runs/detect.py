"""Name what a run's curves show: diverged, overfitting, unstable, plateau, underfitting, or healthy.

Deterministic rules on the curves of curves.py (per epoch when a run has enough epochs, else per
span of logged steps), each judged against the curve's own noise rather than a fixed percentage
alone: a rise counts when it stands several noise-widths above where the curve was. Findings may
co-exist (a noisy validation curve can be unstable *and* rising); each carries its evidence with
real epochs or steps and values (never NaN), and a confidence (how far past its threshold it is).

Precedence kept: a run that blew up (NaN/inf) or climbs for good is reported as diverged only (what
follows says nothing about the settings); plateau and underfitting are not said of a run that
overfits (it is not stuck) nor of an unstable one (its noise hides both).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from assistant.runs.curves import Axis, Curve, fmt, judged_metric, lr_at_end, metric_curves
from assistant.runs.parse import Run

KINDS = ("diverged", "overfitting", "plateau", "unstable", "underfitting", "healthy")


@dataclass(frozen=True)
class Thresholds:
    min_points: int = Axis.min_points
    """Fewer points than this on a curve: no trend is judged on it (a blow-up still is)."""
    noise_widths: float = 3.0
    """A change counts when it exceeds this many times the curve's noise (curves.noise)..."""
    min_change: float = 0.05
    """...and this share of the curve's level, so a very smooth curve's tiny wiggle is no finding."""
    diverge_rise: float = 0.5
    """Diverged (no NaN): the training trend ends this much (50%) above its best and stays above it
    for the last `tail` of the run, while validation (if logged) does not improve either..."""
    explode_factor: float = 10.0
    """...or one logged training loss is 10x the run's start (the median of its first `start_steps`)."""
    start_steps: int = 5
    tail: float = 0.2
    overfit_min_after: int = 3
    """Overfitting: at least this many points (and a tenth of the run) after the validation minimum,
    the validation curve ending above it (the median of the later half of those points, three at
    least, against the three around the minimum) by `noise_widths` standard errors and by
    `overfit_min_rise` of its level, while training does not get worse."""
    overfit_min_rise: float = 0.015
    spike_span: float = 0.15
    """A spike: a point standing above both neighbours by this share of the trend's range after the
    warm-up (what stands out on the plot a person reads) and of its level, and by `noise_widths`..."""
    spike_share: float = 0.15
    unstable_spikes: int = 3
    """...unstable: the training curve has at least this many spikes after the first tenth of the run
    (warm-up), or either curve has spikes at `spike_share` of its points (two at least), or scatters
    by `unstable_noise` (30%) of its level throughout (it never settles)."""
    unstable_noise: float = 0.3
    plateau_window: float = 1 / 3
    """Plateau: over the last third of the run the training trend improves by less than
    `plateau_floor`, or by less than `plateau_gain` and less than three standard errors of the window
    (a run that barely learned is also underfitting); not said when validation still improves, nor
    when the logged learning rate has decayed below `lr_decayed` of its peak (that tail is convergence)."""
    plateau_floor: float = 0.02
    plateau_gain: float = 0.1
    lr_decayed: float = 0.1
    underfit_progress: float = 0.1
    """Underfitting without a validation curve: the training trend improves by less than this share
    over the run (from its highest point in the first fifth: a warm-up rise is not progress lost)."""
    underfit_progress_with_val: float = 0.25
    underfit_val_progress: float = 0.1
    """With a validation curve: training improves by less than `underfit_progress_with_val` and
    validation by less than this."""


THRESHOLDS = Thresholds()


@dataclass
class Finding:
    kind: str
    evidence: str  # in words, with epochs or steps and values
    details: dict[str, Any] = field(default_factory=dict)
    confidence: str = "medium"  # high | medium | low: how far past its threshold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _confidence(margin: float) -> str:
    """From how many times over its threshold a finding is."""
    return "high" if margin >= 3 else "medium" if margin >= 1.5 else "low"


def _counted(c: Curve, change: float, level: float, th: Thresholds) -> float:
    """How many times over the counting threshold a change on curve `c` is (>= 1: it counts)."""
    return change / c.need(th.noise_widths, th.min_change, level)


# -- blow-ups --------------------------------------------------------------------------------------


def _where(row: Any, index: int, step_first: bool) -> str:
    """Where a logged row is, in the run's own terms: `epoch 3 (step 1200)` (or `step 1200` first when
    steps are what was read), else its place in the log."""
    has_epoch, has_step = not math.isnan(row["epoch"]), not math.isnan(row["step"])
    if has_step and (step_first or not has_epoch):
        return f"step {int(row['step'])}"
    if has_epoch:
        return f"epoch {int(row['epoch'])}" + (f" (step {int(row['step'])})" if has_step else "")
    return f"row {index + 1}"


def _nonfinite(run: Run) -> Finding | None:
    """A loss logged as NaN or inf (stored as inf: see parse.Run)."""
    for name in ("train_loss", "val_loss"):
        if name not in run.table:
            continue
        bad = np.flatnonzero(np.isinf(run.table[name].to_numpy(dtype=float)))
        if len(bad):
            where = _where(run.table.iloc[int(bad[0])], int(bad[0]), step_first=False)
            label = "training" if name == "train_loss" else "validation"
            return Finding(
                "diverged",
                f"the {label} loss became NaN or infinite at {where}: the weights overflowed",
                {"metric": name, "at": where},
                "high",
            )
    return None


def _step_explosion(run: Run, th: Thresholds) -> Finding | None:
    """A loss blown up inside one epoch is averaged away per epoch: look at the steps themselves."""
    if "train_loss" not in run.table:
        return None
    rows = run.table[np.isfinite(run.table["train_loss"].to_numpy(dtype=float))]
    y = rows["train_loss"].to_numpy(dtype=float)
    if len(y) < 2 * th.start_steps:
        return None
    start = float(np.median(y[: th.start_steps]))
    over = (
        th.start_steps + np.flatnonzero(y[th.start_steps :] > th.explode_factor * start) if start > 0 else []
    )
    if not len(over):
        return None
    where = _where(rows.iloc[int(over[0])], int(rows.index[int(over[0])]), step_first=True)
    return Finding(
        "diverged",
        f"the training loss started at {fmt(start)} and reached {fmt(y[over[0]])} at {where} "
        f"(peak {fmt(float(np.max(y)))}): more than {th.explode_factor:g}x where it started",
        {"at": where, "start": start, "value": float(y[over[0]]), "peak": float(np.max(y))},
        "high",
    )


def _jump(tr: Curve | None, th: Thresholds) -> Finding | None:
    """A training loss that jumps to `explode_factor` times both its previous value and its best so
    far, from one point to the next: a blow-up a per-epoch log shows only as one wild value."""
    if tr is None or len(tr) < 2:
        return None
    y = np.array([tr.value(v) for v in tr.y])
    best = np.minimum.accumulate(y)
    for i in range(1, len(y)):
        if best[i - 1] > 0 and y[i] > th.explode_factor * max(y[i - 1], best[i - 1]):
            return Finding(
                "diverged",
                f"the training {tr.what} jumped from {fmt(y[i - 1])} to {fmt(y[i])} at {tr.at(i)} "
                f"(its best so far was {fmt(best[i - 1])}; {fmt(y[-1])} at the end)",
                {"at": tr.at(i), "best": float(best[i - 1]), "value": float(y[i]), "end": float(y[-1])},
                "high",
            )
    return None


def _climbing(tr: Curve | None, va: Curve | None, th: Thresholds) -> Finding | None:
    """The training loss climbs for good (no NaN): diverged, unless validation keeps improving (then
    the training objective is changing under it: a curriculum, a ramped regulariser)."""
    if tr is None or len(tr) < th.min_points:
        return None
    t = tr.trend
    best = int(np.argmin(t))
    tail = max(2, math.ceil(len(t) * th.tail))
    if best >= len(t) - tail or (not tr.log and t[best] <= 0):
        return None
    rise = tr.rel(t[best], t[-1])
    above = t[-tail:] > t[best] + tr.need(th.noise_widths, th.min_change, t[best])
    if rise < th.diverge_rise or not above.all():
        return None
    if va is not None and len(va) >= th.min_points and va.trend[-1] <= np.min(va.trend) + va.noise:
        return None
    return Finding(
        "diverged",
        f"the training {tr.what} climbed from its best {fmt(tr.value(t[best]))} at {tr.at(best)} to "
        f"{fmt(tr.value(t[-1]))} at {tr.at(len(t) - 1)} (+{rise:.0%}) and did not come back down",
        {"at": tr.at(best), "best": tr.value(t[best]), "end": tr.value(t[-1])},
        _confidence(rise / th.diverge_rise),
    )


# -- the shape of the curves ------------------------------------------------------------------------


def _overfitting(tr: Curve | None, va: Curve | None, th: Thresholds) -> Finding | None:
    if va is None or len(va) < th.min_points:
        return None
    v = va.trend
    turn = int(np.argmin(v))
    # the evidence names a logged point: the lowest near the trend's turn (smoothing shifts it)
    near = slice(max(0, turn - 2), min(len(v), turn + 3))
    turn = near.start + int(np.argmin(va.y[near]))
    after = len(v) - 1 - turn
    if after < max(th.overfit_min_after, math.ceil(0.1 * len(v))):
        return None
    low = float(va.y[turn])  # what was logged there (the margin is judged on means, below)
    # the rise: the median of the last points (the later half since the turn, three at least) against
    # the mean of the three around the turn, counted in standard errors of that difference (a mild
    # rise that stays is clear on a smooth curve) and as a share of the level (not a tiny wiggle)
    tail = va.y[-max(3, after // 2) :]
    around = va.y[max(0, turn - 1) : turn + 2]
    rise = float(np.median(tail) - np.mean(around))  # a median: one late spike is no rise
    error = va.noise * math.sqrt(1.57 / len(tail) + 1 / len(around))  # a median's error is 1.25x
    level = abs(float(np.mean(around)))
    floor = math.log10(1 + th.overfit_min_rise) if va.log else th.overfit_min_rise * level
    margin = rise / max(th.noise_widths * error, floor, 1e-12)
    if margin < 1 or v[-1] <= float(np.min(v)):
        return None
    details: dict[str, Any] = {"turn": va.at(turn), "val_min": va.value(low), "val_end": va.value(v[-1])}
    train_text = ""
    if tr is not None and len(tr) >= 2:
        # training over the same stretch, on its own axis positions
        i0 = min(int(np.searchsorted(tr.x, va.x[turn])), len(tr) - 1)
        t0, t1 = float(tr.trend[i0]), float(tr.trend[-1])
        if t1 > t0 + tr.noise:  # training got worse too: that is not overfitting
            return None
        train_text = f" while training {tr.what} went from {fmt(tr.value(t0))} to {fmt(tr.value(t1))}"
        details.update(train_at_turn=tr.value(t0), train_end=tr.value(t1))
    rise = va.rel(low, v[-1])
    return Finding(
        "overfitting",
        f"validation {va.what} was lowest ({fmt(va.value(low))}) at {va.at(turn)} and rose to "
        f"{fmt(va.value(v[-1]))} by {va.at(len(v) - 1)} (+{rise:.0%}){train_text}: it turns at {va.at(turn)}",
        details,
        _confidence(margin),
    )


def _spikes(c: Curve, th: Thresholds) -> list[int]:
    """Points standing above both neighbours by more than `spike_span` of the trend's range after the
    warm-up (what a person sees as a jump on the plot), and clear of the curve's noise."""
    skip = max(1, math.ceil(0.1 * len(c)))  # warm-up
    if len(c) <= skip + 2:
        return []
    span = float(np.max(c.trend[skip:]) - np.min(c.trend[skip:]))
    out = []
    for i in range(skip, len(c) - 1):
        stand = c.y[i] - max(c.y[i - 1], c.y[i + 1])
        if stand > max(th.spike_span * span, c.need(th.noise_widths, th.spike_span, c.trend[i])):
            out.append(i)
    return out


def _unstable(curves: list[Curve], th: Thresholds) -> Finding | None:
    for c in curves:
        if len(c) < th.min_points:
            continue
        spikes = _spikes(c, th)
        spread = c.spread()
        # a training loss that spikes again and again is unstable; a validation curve is noisy when its
        # evaluation set is small, so it takes spikes at a good share of its points
        dense = len(spikes) >= 2 and len(spikes) >= th.spike_share * len(c)
        many = dense or (c.label == "training" and len(spikes) >= th.unstable_spikes)
        if not many and spread < th.unstable_noise:
            continue
        if many:
            shown = ", ".join(f"{fmt(c.value(c.y[i]))} at {c.at(i)}" for i in spikes[:4])
            count = f"{len(spikes)} spikes well above its trend"
            text = f"the {c.label} {c.what} jumps up and down: {count} ({shown})"
            margin = len(spikes) / th.unstable_spikes
        else:
            level = float(np.median(c.trend))
            text = (
                f"the {c.label} {c.what} never settles: it scatters by about {spread:.0%} around its trend "
                f"(near {fmt(c.value(level))})"
            )
            margin = spread / th.unstable_noise
        return Finding(
            "unstable",
            text,
            {"curve": c.label, "spikes": [c.at(i) for i in spikes], "spread": spread},
            _confidence(margin),
        )
    return None


def _progress(c: Curve) -> tuple[float, int]:
    """(relative improvement of the trend over the run, index it is measured from): from the highest
    point of the first fifth, so a warm-up rise is not counted as progress lost."""
    first = max(1, math.ceil(0.2 * len(c)))
    start = int(np.argmax(c.trend[:first]))
    return -c.rel(float(c.trend[start]), float(c.trend[-1])), start


def _plateau(tr: Curve | None, va: Curve | None, run: Run, th: Thresholds) -> Finding | None:
    c = tr if tr is not None else va
    if c is None or len(c) < th.min_points:
        return None
    n = len(c)
    w = max(3, math.ceil(n * th.plateau_window))
    before, within = float(np.min(c.trend[: n - w])), float(np.min(c.trend[n - w :]))
    gain = -c.rel(before, within)
    # an improvement counts when it is clear of the window's noise (the standard error of its mean)
    # and is not negligible, or when it is plainly large: a noisy curve still gaining 20% in its last
    # third is not on a plateau, and a smooth one gaining 0.5% is, however clear that 0.5% is
    standard_error = th.noise_widths * c.noise * math.sqrt(2 / w)
    clear = (before - within) / standard_error if gain >= th.plateau_floor else 0.0
    margin = max(clear, gain / th.plateau_gain)
    if margin >= 1:
        return None
    if va is not None and c is tr and _still_improving(va, th):
        return None  # validation still improves: training is slow, not stuck
    lr = lr_at_end(run)
    if lr is not None and lr < th.lr_decayed:
        return None  # the flat tail comes after the learning rate decayed: convergence
    return Finding(
        "plateau",
        f"the {c.label} {c.what} improved by only {max(gain, 0):.1%} over the last {w} {c.unit}s "
        f"({c.at(n - w)} to {c.at(n - 1)}): best {fmt(c.value(before))} before, {fmt(c.value(within))} since",
        {"from": c.at(n - w), "to": c.at(n - 1), "gain": gain, "best_before": c.value(before),
         "best_after": c.value(within)},
        _confidence(1 / max(margin, 1 / 3)),
    )  # fmt: skip


def _still_improving(c: Curve, th: Thresholds) -> bool:
    if len(c) < th.min_points:
        return False
    w = max(2, math.ceil(len(c) * th.plateau_window))
    before, within = float(np.min(c.trend[:-w])), float(np.min(c.trend[-w:]))
    return _counted(c, before - within, before, th) >= 1


def _underfitting(tr: Curve | None, va: Curve | None, th: Thresholds) -> Finding | None:
    """Judged on the run's own progress: with a validation curve, held-out progress decides (the
    training loss may fall some while the model generalises nothing); without one, training's."""
    if tr is None or len(tr) < th.min_points:
        return None
    progress, start = _progress(tr)
    with_val = va is not None and len(va) >= th.min_points
    if progress >= (th.underfit_progress_with_val if with_val else th.underfit_progress):
        return None
    t0, t1 = tr.value(tr.trend[start]), tr.value(tr.trend[-1])
    details: dict[str, Any] = {"train_start": t0, "train_end": t1, "progress": progress}
    val_text = ""
    margin = th.underfit_progress / max(progress, th.underfit_progress / 3)
    if va is not None and with_val:
        v_progress, v_start = _progress(va)
        if v_progress >= th.underfit_val_progress:
            return None
        v0, v1 = va.value(va.trend[v_start]), va.value(va.trend[-1])
        val_text = f", and validation {va.what} barely moves ({fmt(v0)} to {fmt(v1)})"
        details["val_end"] = v1
        margin = th.underfit_val_progress / max(v_progress, th.underfit_val_progress / 3)
    return Finding(
        "underfitting",
        f"training {tr.what} barely improves: from {fmt(t0)} at {tr.at(start)} to {fmt(t1)} at "
        f"{tr.at(len(tr) - 1)} ({max(progress, 0):.0%} better){val_text}",
        details,
        _confidence(margin),
    )


def detect(run: Run, th: Thresholds = THRESHOLDS) -> list[Finding]:
    """The findings for a run, most severe first; `healthy` alone when nothing is wrong."""
    if nonfinite := _nonfinite(run):
        return [nonfinite]
    what = judged_metric(run)
    tr, va = metric_curves(run, what, Axis(min_points=th.min_points))
    # the logged steps' loss is read for a blow-up only when the loss is what is judged (in
    # reinforcement learning, judged on its reward, a loss may grow tenfold in a healthy run)
    steps = _step_explosion(run, th) if what == "loss" else None
    if exploded := steps or _jump(tr, th) or _climbing(tr, va, th):
        return [exploded]
    found = [f for f in (_overfitting(tr, va, th), _unstable([c for c in (tr, va) if c], th)) if f]
    if not found:  # a run that overfits is not stuck; an unstable one's noise hides both
        found += [f for f in (_plateau(tr, va, run, th), _underfitting(tr, va, th)) if f]
    if found:
        return found
    return [_healthy(tr, va, run, th, judged=what is not None)]


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
    start, end = fmt(c.value(c.trend[0])), fmt(c.value(c.trend[-1]))
    text = f"{c.label} {c.what} fell from {start} to {end} over {len(c)} {c.unit}s"
    if tr is not None and va is not None and len(va):
        best = int(np.argmin(va.trend))
        text += f"; validation {va.what} followed it (best {fmt(va.value(va.trend[best]))} at {va.at(best)})"
    lr = lr_at_end(run)
    if lr is not None and lr < th.lr_decayed:
        text += "; it levels off as the learning rate decays, which is convergence"
    return Finding("healthy", text + ": no sign of a problem", {"points": len(c)}, "medium")
