"""Runs that blew up: a loss logged as NaN or inf, one logged step tenfold the start, a jump from one
point to the next, or a training loss that climbs for good. Any of them is reported alone (detect.py):
what follows a blow-up says nothing about the settings. A training loss that rises while the
validation curve ends at its best is not one (held_out_holds)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from assistant.runs.curves import SHORT_CURVE, Curve, first_fifth, first_level, fmt
from assistant.runs.findings import Finding, Thresholds, confidence, counted
from assistant.runs.parse import Run


def _where(row: Any, index: int, step_first: bool) -> str:
    """Where a logged row is, in the run's own terms: `epoch 3 (step 1200)` (or `step 1200` first when
    steps are what was read), else its place in the log."""
    has_epoch, has_step = not math.isnan(row["epoch"]), not math.isnan(row["step"])
    if has_step and (step_first or not has_epoch):
        return f"step {int(row['step'])}"
    if has_epoch:
        return f"epoch {int(row['epoch'])}" + (f" (step {int(row['step'])})" if has_step else "")
    return f"row {index + 1}"


def nonfinite(run: Run) -> Finding | None:
    """A loss logged as NaN or inf (stored as inf: see parse.Run): the run's own, else, for a run
    logging no loss of its own, any of its losses (a GAN's discriminator loss). Not a `best_loss`:
    a best-so-far starts at inf; nor a validation loss logged as NaN once and finite again after."""
    own = [c for c in ("train_loss", "val_loss") if c in run.table]
    others = [] if own else sorted(c for c in run.table if c.endswith("_loss") and "best" not in c.split("_"))
    for name in own + others:
        values = run.table[name].to_numpy(dtype=float)
        bad = np.flatnonzero(np.isinf(values))
        # an evaluation that logged NaN once, the curve finite again after it, broke no weights
        if len(bad) and (name != "val_loss" or not np.isfinite(values[bad[-1] :]).any()):
            where = _where(run.table.iloc[int(bad[0])], int(bad[0]), step_first=False)
            said = {"train_loss": "the training loss", "val_loss": "the validation loss"}
            label = said.get(name, f"`{run.sources.get(name, name)}`")
            return Finding(
                "diverged",
                f"{label} became NaN or infinite at {where}: the weights overflowed",
                {"metric": name, "at": where},
                "high",
            )
    return None


def zeroed(run: Run, th: Thresholds) -> Finding | None:
    """A training loss logged as exactly 0 at each of its last `zeroed_readings` readings or more,
    the reading before them still above `jump_start_share` of its first: a loss that overflowed in
    half precision, shown as 0 with the weights broken (LLaMA-Factory's and TRL's fp16 fine-tunes,
    `loss: 0.0` with `eval_loss: nan`): it jumps there from a reading no lower than the ones before
    it, never logged 0 earlier. One coming down onto 0 (a margin met, the last digit its log prints)
    is learned."""
    if "train_loss" not in run.table:
        return None
    rows = run.table[np.isfinite(run.table["train_loss"].to_numpy(dtype=float))]
    y = rows["train_loss"].to_numpy(dtype=float)
    zeros = len(y) - int(np.flatnonzero(y != 0)[-1]) - 1 if (y != 0).any() else 0
    at = len(y) - zeros
    if zeros < th.zeroed_readings or at < 2 or (y[:at] == 0).any():
        return None  # (a loss at 0 now and then before is one that can be 0: a hinge, GRPO's)
    last, before = float(y[at - 1]), y[max(0, at - 4) : at - 1]
    if not last > th.jump_start_share * abs(float(y[0])) or last < float(np.median(before)):
        return None  # a loss still coming down onto 0 (a triplet margin met, a count of mistakes)
    where = _where(rows.iloc[at], int(rows.index[at]), step_first=True)
    return Finding(
        "diverged",
        f"the training loss went from {fmt(last)} straight to exactly 0 at {where} and stayed there for "
        f"its last {zeros} readings: a loss that overflowed (half precision shows it as 0), not one "
        "learned away",
        {"at": where, "before": last, "zero_readings": zeros},
        "high",
    )


def step_explosion(run: Run, th: Thresholds) -> Finding | None:
    """A loss blown up inside one epoch is averaged away per epoch: look at the steps themselves. Not
    one that later went below its best before the blow-up: it recovered (the unstable rule's)."""
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
    if _learned_back(y, int(over[0])):
        return None  # a blow-up it recovered from: the unstable rule's
    where = _where(rows.iloc[int(over[0])], int(rows.index[int(over[0])]), step_first=True)
    return Finding(
        "diverged",
        f"the training loss started at {fmt(start)} and reached {fmt(y[over[0]])} at {where} "
        f"(peak {fmt(float(np.max(y)))}): more than {th.explode_factor:g}x where it started",
        {"at": where, "start": start, "value": float(y[over[0]]), "peak": float(np.max(y))},
        "high",
    )


def _jumps(c: Curve, th: Thresholds) -> Iterator[tuple[int, bool]]:
    """(index, came back) of each point that jumps to `explode_factor` times both its previous value
    and its best so far, landing at `jump_start_share` of the run's start or higher, by more than
    `noise_widths` of the curve's own noise unless it lands above where the run began (a single batch's
    loss that scatters 0.01-0.67 around 0.15 goes from a low of 0.011 to 0.14 by chance: no jump). It
    came back when
    the curve is within twice where it was in the next `jump_recovery` points (on a curve read on a
    log scale, a loss near zero whose single batches scatter by decades, within its own scatter), or
    later went below its best before the jump, or back to it within the last digit it is printed to:
    a blow-up it took a while to learn its way out of (a loss at 0.02 jumping to 1e12 and back under
    0.02 thirty epochs on) is no divergence either."""
    y = np.array([c.value(v) for v in c.y])
    best = np.minimum.accumulate(y)
    start = c.value(first_level(c))  # the untrained level
    for i in range(1, len(y)):
        before = float(max(y[i - 1], best[i - 1]))  # (a Python float: 3 x 1e308 is inf, without a warning)
        # (at or above where the run began, a jump needs no noise to stand out from: a blow-up's own points
        # widen the noise that would excuse it)
        rise = c.y[i] - (math.log10(before) if c.log else before)
        clear = y[i] >= start or rise > th.noise_widths * c.noise
        if best[i - 1] > 0 and y[i] > max(th.explode_factor * before, th.jump_start_share * start) and clear:
            after = y[i + 1 : i + 1 + th.jump_recovery]
            # (a noise of decades, from readings near 1e300, would overflow the power: capped)
            back = before * (max(2.0, 10 ** min(th.noise_widths * c.noise, 300.0)) if c.log else 2.0)
            yield i, bool(len(after) and after.min() <= back) or _learned_back(y, i, c.quantum)


def _learned_back(y: np.ndarray, i: int, quantum: float = 0.0) -> bool:
    """The curve went below its best before point `i` somewhere after it, or back to it within the
    last digit it is printed to (a loss printed as 0.002 before a spike and 0.002 or 0.003 after it
    learned its way back: UniMatch's `Total loss: 0.002`)."""
    return i + 1 < len(y) and float(np.min(y[i + 1 :])) < float(np.min(y[:i])) + quantum * (1 + 1e-6)


def jump(tr: Curve | None, th: Thresholds) -> Finding | None:
    """A training loss that jumps (_jumps) and does not come back: a blow-up a per-epoch log shows
    only as one wild value. One that comes back is a spike (the `unstable` rule counts those), and
    the run went on learning. Not a reward: its zero is anywhere, so no factor of it is a blow-up (an
    agent's return of -7.9 then -157 is one bad episode; a collapse for good is `climbing`'s)."""
    if tr is None or len(tr) < 2 or tr.negated:
        return None
    for i, back in _jumps(tr, th):
        if back:
            continue
        y = np.array([tr.value(v) for v in tr.y])
        best = float(np.min(y[:i]))
        return Finding(
            "diverged",
            f"the training {tr.what} jumped from {fmt(y[i - 1])} to {fmt(y[i])} at {tr.at(i)} "
            f"(its best so far was {fmt(best)}; {fmt(y[-1])} at the end)",
            {"at": tr.at(i), "best": best, "value": float(y[i]), "end": float(y[-1])},
            "high",
        )
    return None


def recovered_blowups(c: Curve, th: Thresholds) -> list[int]:
    """Jumps (_jumps) the curve came back from that landed above where the run began (its highest
    point in the first fifth, before the jump): all it had learned was lost for a moment. Unstable
    wherever in the run, the warm-up included; a loss near zero whose batches scatter by decades
    never climbs that far."""
    if len(c) < 2:
        return []
    y = np.array([c.value(v) for v in c.y])
    first = first_fifth(len(y))
    return [i for i, back in _jumps(c, th) if back and y[i] > np.max(y[: min(i, first)])]


def climbing(tr: Curve | None, va: Curve | None, th: Thresholds) -> Finding | None:
    """The training loss climbs for good (no NaN): diverged (detect.py first asks held_out_holds: when
    validation keeps improving, the training objective is changing under it). A reward that falls
    back for good by half of its best (a policy that collapses) is the same."""
    if tr is None or len(tr) < th.min_points:
        return None
    t = tr.trend
    best = int(np.argmin(t))
    tail = max(2, math.ceil(len(t) * th.tail))
    if best >= len(t) - tail or (not tr.log and not tr.negated and t[best] <= 0):
        return None  # a loss at or below zero has no share to rise by; a reward's best is any number
    rise = tr.rel(t[best], t[-1])
    if abs(tr.value(t[-1]) - tr.value(t[best])) <= tr.quantum * (1 + 1e-6):
        return None  # one unit of the last digit the log prints (0.0001 -> 0.0002): rounding can do that
    above = t[-tail:] > t[best] + tr.need(th.noise_widths, th.min_change, t[best])
    # a short curve's noise comes from second differences, which its own jumps inflate: every reading
    # of the tail `diverge_rise` above the best is a climb however noisy the rest (3.4 -> 7.6, 7.0)
    short = len(tr) < SHORT_CURVE
    stays = (
        short
        and not tr.negated
        and bool(np.all(tr.y[-tail:] > t[best] + tr.need(0, th.diverge_rise, t[best])))
    )
    if not (above.all() or stays):
        return None
    with_val = va is not None and len(va) >= th.min_points
    val_text, need = "", th.diverge_rise
    if with_val and (worse := _worse_at_end(va, th)) is not None:
        need = 0.0  # `above` already asks a counted rise of the training curve
        val_text = f", and validation {va.what} with it ({worse})"
    if rise < need:
        return None
    if tr.negated:  # said as the reward it is
        moved = f"training {tr.what.removeprefix('negative ')} fell from its best {fmt(-tr.value(t[best]))}"
        to, back = fmt(-tr.value(t[-1])), f"lost {rise:.0%} of it and did not recover"
    else:
        moved = f"training {tr.what} climbed from its best {fmt(tr.value(t[best]))}"
        to, back = fmt(tr.value(t[-1])), f"+{rise:.0%}, and did not come back down"
    return Finding(
        "diverged",
        f"the {moved} at {tr.at(best)} to {to} at {tr.at(len(t) - 1)} ({back}){val_text}",
        {"at": tr.at(best), "best": tr.value(t[best]), "end": tr.value(t[-1])},
        confidence(rise / need if need else counted(tr, t[-1] - t[best], t[best], th)),
    )


def held_out_holds(va: Curve | None, th: Thresholds) -> bool:
    """The validation curve ends at its best: whatever the training loss does (a curriculum, a ramped
    regulariser changing the objective under it), the model is not breaking."""
    return va is not None and len(va) >= th.min_points and va.trend[-1] <= np.min(va.trend) + va.noise


def _worse_at_end(c: Curve, th: Thresholds) -> str | None:
    """How a curve ends a counted change above its best (`0.41 at step 2200 to 0.45`), else None."""
    best = int(np.argmin(c.trend))
    low, end = float(c.trend[best]), float(c.trend[-1])
    if counted(c, end - low, low, th) < 1:
        return None
    return f"{fmt(c.value(low))} at {c.at(best)} to {fmt(c.value(end))}"
