"""Curves that jump up and down: spikes well above a curve's own trend and noise, scatter that never
settles, and blow-ups the run came back from (detect.py asks these after the blow-ups that end a run,
blowups.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from assistant.runs.blowups import recovered_blowups
from assistant.runs.curves import SHORT_CURVE, Curve, first_fifth, first_level, fmt
from assistant.runs.findings import Finding, Thresholds, confidence
from assistant.runs.parse.names import rewarding, tokens


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
    return [i for i in out if not _near_zero(c, c.y[i], th)]


def _near_zero(c: Curve, v: float, th: Thresholds) -> bool:
    """On a log scale a training loss near zero scatters by decades (single batches at 1e-4, 4e-3,
    1e-3 after starting at 0.5): on the plot of the run that is nothing below `jump_start_share` of
    where it began, as for a jump (blowups.py). Not a validation loss: a mean over a whole evaluation
    set that jumps fivefold and back, again and again, is unstable at any level (a VAE's property
    loss, 1843 at first, scattering 4 to 59 beside a smooth training loss)."""
    near = v < first_level(c) + math.log10(th.jump_start_share)
    return c.label == "training" and c.log and not c.negated and near


def _relapses(c: Curve, th: Thresholds) -> list[int]:
    """Points after the first fifth (a warm-up, where a curve may rise before it falls) standing
    `relapse_rise` above where the run began (its highest point in the first fifth), and beyond its
    noise, on a curve that later comes back below its best before them: all it had learned was lost
    for a while, then learned again. Not a reward's: an agent's single episodes dip by nature (an
    evaluation's PSNR, judged on its negative too, does not)."""
    n = len(c)
    first = first_fifth(n)
    if rewarding(set(tokens(c.name))) or n <= first + 1:
        return []
    start = float(np.max(c.y[:first]))
    return [
        i
        for i in range(first, n - 1)
        if c.y[i] - start > c.need(th.noise_widths, th.relapse_rise, start)
        and np.min(c.y[i + 1 :]) < np.min(c.y[:i])
    ]


def spiked_on_the_way(tr: Curve | None, th: Thresholds) -> Finding | None:
    """A training loss that diverged after spikes it came back from (a burst to 7 at step 450, back to
    1.0, then the climb): unstable first. Not for a reward, whose single episodes scatter by nature."""
    if tr is None or len(tr) < th.min_points or not (spikes := _spikes(tr, th)):
        return None
    text = f"on its way the training {tr.what} spiked and came back down ({_shown(tr, spikes)})"
    return Finding("unstable", text, {"curve": tr.label, "spikes": [tr.at(i) for i in spikes]}, "low")


def _shown(c: Curve, spikes: list[int]) -> str:
    """The first few spikes as evidence: `7.24 at step 470, 7.55 at step 1100`."""
    return ", ".join(f"{fmt(c.logged(c.y[i]))} at {c.at(i)}" for i in spikes[:4])  # as logged


def _goes_up_and_down(c: Curve, th: Thresholds) -> bool:
    steps = np.diff(c.y)
    return bool(min((steps > 0).mean(), (steps < 0).mean()) >= th.unstable_reversals) if len(steps) else False


def _steady(h: Curve, th: Thresholds) -> bool:
    """A held-out curve that passes the test the training curve failed (it scatters by less than
    `unstable_noise` and never jumps): what the model does, under the training curve's batch noise."""
    return len(h) >= th.min_points and h.spread() < th.unstable_noise and not _spikes(h, th)


def _scatter(c: Curve) -> float:
    """The curve's noise as a share of its level; a reward's, also as a share of how far it moved
    (from its first fifth's median reading to its last fifth's), whichever is smaller: its zero is
    anywhere, so a share of its level alone says little (an agent's return near -78 after climbing
    from -1,200 scatters by 38% of -78, by 3% of what it learned). One that never moved, or swings
    between two levels to the end (its medians near each other), is judged on its level, as before."""
    if not rewarding(set(tokens(c.name))):
        return c.spread()
    fifth = first_fifth(len(c))
    moved = abs(float(np.median(c.y[-fifth:]) - np.median(c.y[:fifth])))
    return min(c.spread(), c.noise / moved) if moved else c.spread()


def _settled(c: Curve, points: list[int], th: Thresholds) -> bool:
    """A rough start that settled: every one of `points` (its spikes; its first half for a curve that
    scatters) lies before the curve's last two fifths (`min_points` at least), which hold no spike and
    scatter around their trend by less than half of `unstable_noise` (a test loss leaping 1.1 to 3.5
    while a high learning rate lasts, then within 0.74-0.80 for the last 55 of 100 epochs). Unstable
    is what keeps coming back. (Not asked of a curve that went back above where it began: all it had
    learned lost, if for a while, is said however calm it ends.)"""
    n = len(c)
    tail = n - max(th.min_points, math.ceil(0.4 * n))
    if not points or tail <= 0 or max(points) >= tail:
        return False  # (`points` are its spikes when it has any: none lie in the tail)
    resid = c.y[tail:] - c.trend[tail:]
    spread = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    if c.log:
        return bool(10**spread - 1 < th.unstable_noise / 2)
    level = float(np.median(np.abs(c.trend[tail:])))
    return bool(level) and spread / level < th.unstable_noise / 2


def unstable(curves: list[Curve], th: Thresholds, held: Sequence[Curve] = ()) -> Finding | None:
    """`held`: the held-out curves (a validation loss, or a test accuracy beside a training loss
    alone). A training curve that scatters or spikes, while one of them goes its way steadily (no
    spike, little scatter), does so by its single batches: not unstable (a translation model's
    single-batch loss every 500 steps at 2.15 between 0.4s, its validation loss smooth). Spikes the
    loss came back from, above where it began, are unstable whatever the held-out curves do."""
    for c in curves:
        if len(c) < th.min_points:
            continue
        if lost := recovered_blowups(c, th) or _relapses(c, th):
            moved, side, back = (
                ("fell back to", "below", "up") if c.negated else ("went back up to", "above", "down")
            )
            text = (
                f"the {c.label} {c.name} {moved} {_shown(c, lost)}, {side} where the run began, "
                f"and came back {back}: what it had learned was lost for a while"
            )
            return Finding("unstable", text, {"curve": c.label, "spikes": [c.at(i) for i in lost]}, "high")
        spikes = _spikes(c, th)
        spread = _scatter(c)
        # a training loss that spikes again and again is unstable; a validation curve is noisy when its
        # evaluation set is small, so it takes spikes at a good share of its points
        dense = len(spikes) >= 2 and len(spikes) >= th.spike_share * len(c)
        # (not a reward's: single episodes scatter by nature, and an agent's returns leap as it learns)
        many = dense or (c.label == "training" and not c.negated and len(spikes) >= th.unstable_spikes)
        # scatter is judged on residuals around the trend; a short curve's noise comes from second
        # differences, which a steep early fall inflates: it says nothing about settling
        scatters = spread >= th.unstable_noise and _goes_up_and_down(c, th) and len(c) >= SHORT_CURVE
        scatters = scatters and not _near_zero(c, float(np.median(c.trend)), th)
        rough = spikes or list(range(len(c) // 2))  # where it jumped, or (scatter alone) its first half
        if not many and not scatters or _settled(c, rough, th):
            continue
        if c.label == "training" and any(_steady(h, th) for h in held if h is not c):
            continue  # its spikes or scatter are its single batches': the model goes its way steadily
        if many:
            count = f"{len(spikes)} {'dips well below' if c.negated else 'spikes well above'} its trend"
            text = f"the {c.label} {c.name} jumps up and down: {count} ({_shown(c, spikes)})"
            margin = len(spikes) / th.unstable_spikes
        else:
            level = float(np.median(c.trend))
            # a reward as logged (`reward … near 265`), not its negative
            what, near = (c.name, c.logged(level)) if c.negated else (c.what, c.value(level))
            text = (
                f"the {c.label} {what} never settles: it scatters by about {spread:.0%} around its trend "
                f"(near {fmt(near)})"
            )
            margin = spread / th.unstable_noise
        return Finding(
            "unstable",
            text,
            {"curve": c.label, "spikes": [c.at(i) for i in spikes], "spread": spread},
            confidence(margin),
        )
    return None
