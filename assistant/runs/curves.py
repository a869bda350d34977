"""A run's training and validation curves as the detectors read them: each on the axis it was logged
on, averaged into at most `max_points` points, with a smooth trend and an estimate of its own noise.

Which axis: epochs when a run has enough of them (`min_points`); otherwise its logged steps, so a
770-step run over 3 epochs is judged on its steps, not on 3 points. Each curve keeps its own points
(a validation loss logged every 500 steps is not spread over the training loss's rows).

The trend is a running median followed by a running mean (a few spikes do not bend it; a short curve
only gets the mean); the noise is the robust spread of single points around it (from second
differences for a short curve), so every threshold in detect.py can be a multiple of the curve's own
noise instead of a fixed percentage.
A positive curve spanning more than `log_decades` decades (a loss falling from 1e-2 to 1e-5) is judged
on a log scale, as a person reads it: its noise is then a ratio, not an absolute spread.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from assistant.runs.parse import Run
from assistant.runs.parse.names import ADVERSARIAL, EPISODE, NO_CEILING, direction, rewarding, tokens


@dataclass(frozen=True)
class Axis:
    min_points: int = 6
    """Fewer points than this: no trend is judged (a blow-up still is)."""
    max_points: int = 60
    """Curves with more points are averaged into this many (each a span of epochs or steps)."""

    log_decades: float = 2.0
    """A positive curve spanning more decades than this is judged on a log scale."""


@dataclass
class Curve:
    label: str  # "training" | "validation"
    what: str  # "loss" | "error (1 - accuracy)"
    unit: str  # "epoch" | "step"
    x: np.ndarray  # the last epoch or step of each point
    y: np.ndarray  # the mean of each span (finite values only), log10 of it when `log`
    trend: np.ndarray
    noise: float  # robust spread of y around the trend, at least a 1000th of the level
    log: bool = False
    negated: bool = False  # an unbounded score (a reward) judged on its negative: its zero means nothing
    score: bool = False  # a score (accuracy, reward: higher is better) judged on its shortfall or negative
    top: float | None = None  # a bounded score's best value (1 or 100), its shortfall's full scale
    quantum: float = 0.0  # the unit of the last digit its values are printed to (0.0001; 0: full floats)
    tokens: tuple[str, ...] = ()  # the words of the column's name (`val_roc_auc`: val, roc, auc)

    def __len__(self) -> int:
        return len(self.y)

    def at(self, i: int) -> str:
        return f"{self.unit} {fmt_x(self.x[i])}"

    @property
    def name(self) -> str:
        """What the curve measures as the log has it: a reward, not the negative it is judged on."""
        return self.what.removeprefix("negative ") if self.negated else self.what

    def logged(self, v: float) -> float:
        """A point of the curve as the log wrote it (a reward, not its negative)."""
        return -self.value(v) if self.negated else self.value(v)

    def value(self, v: float) -> float:
        """A point of the curve on the log's own scale (for evidence)."""
        return float(10**v) if self.log else float(v)

    def rel(self, a: float, b: float) -> float:
        """The change from a to b as a share of a, on the log's own scale."""
        if self.log:
            return float(10 ** (b - a) - 1)
        return (b - a) / abs(a) if a else math.inf

    def need(self, widths: float, share: float, level: float) -> float:
        """A change on this curve counts above `widths` noise-widths and `share` of its level."""
        floor = math.log10(1 + share) if self.log else share * abs(level)
        return max(widths * self.noise, floor, 1e-12)

    def scale(self, level: float) -> float:
        """What a share of this curve is a share of at `level`: the level itself, or for a bounded
        score's shortfall the score's full scale (its error at 8% rising to 8.5% is half a point of
        accuracy, not a 7% rise)."""
        return self.top if self.top is not None else abs(level)

    def spread(self) -> float:
        """The noise as a share of the level."""
        if self.log:
            return float(10**self.noise - 1)
        level = float(np.median(np.abs(self.trend)))
        return self.noise / level if level else 0.0


ACCURACY_ERROR = "error (1 - accuracy)"  # what an accuracy's curve holds (a bounded score: its shortfall)
SHORT_CURVE = 12  # fewer points: the trend is a running mean of 3 and the noise comes from second differences


def first_level(c: Curve) -> float:
    """The untrained level: the highest point of the curve's first fifth (on its own scale)."""
    return float(np.max(c.y[: first_fifth(len(c))]))


def first_fifth(n: int) -> int:
    """How many of a curve's `n` points are its first fifth (one at least): where the untrained level
    is read from."""
    return max(1, math.ceil(0.2 * n))


def fmt_x(x: float) -> str:
    return f"{int(x)}" if float(x).is_integer() else f"{x:.3g}"


def fmt(v: float) -> str:
    """A value as evidence: never `nan` (a gap is said in words by the caller)."""
    return f"{v:.3g}" if math.isfinite(v) else "not a number"


def trend(y: np.ndarray) -> np.ndarray:
    """A centred running mean of 3 for a short curve (every point counts); a running median, then
    that mean, for a long one (a few spikes do not bend it)."""
    n = len(y)
    if n < 4:
        return y.astype(float)
    s = pd.Series(y)
    if n >= SHORT_CURVE:
        s = s.rolling(max(3, min(9, (n // 8) | 1)), center=True, min_periods=1).median()
    return s.rolling(3, center=True, min_periods=1).mean().to_numpy()


def noise(y: np.ndarray, t: np.ndarray) -> float:
    """The spread of single points around the trend: 1.4826 × the median absolute deviation of the
    residuals; for a short curve (whose 3-point trend bends with it) from second differences instead,
    where a slope and a bend cancel out (÷√6). At least a 1000th of the level."""
    level = float(np.median(np.abs(t))) if len(t) else 0.0
    if len(y) < 4:
        return max(1e-3 * level, 1e-12)
    if len(y) < SHORT_CURVE:
        d2 = np.diff(y, 2)
        spread = 1.4826 * float(np.median(np.abs(d2 - np.median(d2)))) / math.sqrt(6)
    else:
        resid = y - t
        spread = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    return max(spread, 1e-3 * level, 1e-12)


def _binned(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-count spans: (last x, mean y) of each."""
    if len(y) <= max_points:
        return x, y
    span = (np.arange(len(y)) * max_points) // len(y)
    return (pd.Series(x).groupby(span).max().to_numpy(), pd.Series(y).groupby(span).mean().to_numpy())


def axis_of(run: Run, ax: Axis = Axis()) -> str:
    """ "epoch" when the run has at least `min_points` epochs, else "step" (or "row" without steps).
    Steps also when the epochs are fewer than twice that and the run was evaluated several times an
    epoch: a per-epoch held-out curve of under a dozen points leaves too few after a turn to count
    it, and the evaluations were there. A run of one epoch printed again and again is judged on its
    rows (one epoch is one point)."""
    t = run.table
    epochs = t["epoch"].nunique() if run.has_epochs else 0
    if epochs >= ax.min_points and not (epochs < 2 * ax.min_points and _evaluated_within_epochs(t)):
        return "epoch"
    if t["step"].nunique() >= ax.min_points:  # a step printed as 4.53e+06 on every row is no axis
        return "step"
    if run.has_epochs and len(t) < 2 * ax.min_points and epochs > 1:
        return "epoch"
    return "row"  # few epochs but many logged rows, or one (in the order they were logged): judge those


def _evaluated_within_epochs(t: pd.DataFrame) -> bool:
    """Held-out readings at more steps than the run has epochs, by half again (a fine-tune evaluated
    every 100 steps over ten epochs): per-epoch means would blur the held-out curve, so its steps are
    the axis."""
    held = [c for c in t.columns if str(c).startswith("val_")]
    if not held:
        return False
    at = t.loc[t[held].notna().any(axis=1), "step"]
    return not at.empty and at.notna().all() and at.nunique() > 1.5 * t["epoch"].nunique()


def curve(run: Run, name: str, label: str, ax: Axis = Axis()) -> Curve | None:
    """One metric's curve (finite values; NaN/inf are findings of their own), None if not logged
    twice (one reading, the loss printed before training began, is no curve)."""
    t = run.table
    if name not in t:
        return None
    rows = t[np.isfinite(t[name].to_numpy(dtype=float))]
    if len(rows) < 2:
        return None
    what = "loss" if name.endswith("_loss") else name.split("_", 1)[-1].replace("_", " ")
    up = direction(name) == "up"
    if not up:
        rows = rows.iloc[_warm_up(rows[name].to_numpy(dtype=float)) :]
    y = rows[name].to_numpy(dtype=float)
    quantum = _printed_unit(y)
    if not up and len(y) > 1 and not y.any():
        return None  # a loss printed as 0 at every reading was never computed (an eval loss left at 0.000)
    negated, top = False, None
    if up:  # judged on what is left to gain (or its negative), so it should fall
        top = None if NO_CEILING & set(tokens(name)) or rewarding(set(tokens(name))) else score_top(y)
        if top is None:  # unbounded (a reward, a score): its negative
            what, y, negated = f"negative {what}", -y, True
        else:
            what = ACCURACY_ERROR if name.endswith("_acc") else f"shortfall ({top:g} - {what})"
            y = top - y
    unit = axis_of(run, ax)
    if unit == "epoch":
        frame = pd.DataFrame({"x": rows["epoch"].to_numpy(dtype=float), "y": y})
        grouped = frame.groupby("x", sort=True)["y"].mean()
        x, y = grouped.index.to_numpy(dtype=float), grouped.to_numpy()
    elif unit == "step" and rows["step"].notna().all():
        order = np.argsort(rows["step"].to_numpy(dtype=float), kind="stable")
        x, y = rows["step"].to_numpy(dtype=float)[order], y[order]
    else:
        unit, x = "row", rows.index.to_numpy(dtype=float) + 1  # its place in the log: curves align
    x, y = _binned(x, y, ax.max_points)
    log = bool((y > 0).all() and np.log10(y.max() / y.min()) > ax.log_decades)
    if log:
        y = np.log10(y)
    t_ = trend(y)
    return Curve(label, what, unit, x, y, t_, noise(y, t_), log, negated, up, top, quantum, tokens(name))


def _printed_unit(y: np.ndarray) -> float:
    """The unit of the last digit the values were printed to: the coarsest power of ten (1 down to
    1e-8) every value is a whole number of, 0.0001 for `0.0006, 0.0001, 0.0002`; 0 for values that
    carry more digits (a float written in full). Two readings one unit apart may differ by rounding
    alone."""
    finite = y[np.isfinite(y)]
    for digits in range(9):
        scaled = finite * 10.0**digits
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-6 * np.maximum(1.0, np.abs(scaled))):
            return 10.0**-digits
    return 0.0


def score_top(y: np.ndarray) -> float | None:
    """The best value a score's readings can reach: 1 (a fraction) or 100 (a percentage); None for an
    unbounded one (a reward, a negative score)."""
    low, high = np.nanmin(y), np.nanmax(y)
    return None if low < 0 else 1.0 if high <= 1.0 else 100.0 if high <= 100.0 else None


def _warm_up(y: np.ndarray) -> int:
    """How many leading readings are a running average warming up from zero (`Average Loss: 0.023`,
    then 0.4, 0.8 … up to the loss's level): a loss that starts under 5% of where it peaks within the
    first tenth of the log, climbing there step by step (no step more than half the climb: a loss
    that jumps from 0.69 to 41 blew up), did not start there. 0 for any other curve."""
    head = max(2, len(y) // 10)
    peak = int(np.argmax(y[:head]))
    if len(y) < 20 or peak < 3 or y[0] < 0 or y[0] >= 0.05 * y[peak]:
        return 0
    steps = np.diff(y[: peak + 1])
    gradual = bool((steps >= 0).all() and steps.max() <= 0.5 * (y[peak] - y[0]))
    return peak if gradual else 0


def _readings(t: pd.DataFrame, name: str) -> int:
    """How many readings the table logs of `name` (finite or not: a loss gone NaN is judged)."""
    return int(t[name].notna().sum()) if name in t else 0


def judged_metric(run: Run) -> str | None:
    """What the detectors read: a reward when one is logged (in reinforcement learning the losses
    grow as the returns do: the reward is the learning curve); else the loss; else accuracy; else the
    one metric of known direction that stands out as the run's main one: logged for both training and
    validation, a loss before a score, the fewest words (`actor/loss` before `actor/pg_loss`). None
    when several tie (three agents' critic losses) or no name says which way is better (`score`):
    guessing would judge the wrong curve."""
    t = run.table
    names = {c.split("_", 1)[1] for c in run.metrics if c != "lr" and "_" in c and direction(c)}
    rewards = {w for w in names if rewarding(set(w.split("_")))}
    # a reward printed a couple of times (a tutorial's demo of one episode) is not the run's learning
    # curve beside one logged throughout
    counts = {w: max(_readings(t, f"train_{w}"), _readings(t, f"val_{w}")) for w in rewards}
    rewards = {w for w in rewards if 2 * counts[w] >= max(counts.values())}
    # an episode's return is the learning curve; a learned reward signal (GAIL's) is the agent's input
    rewards = {w for w in rewards if set(w.split("_")) & EPISODE} or rewards
    if not rewards:
        for what in ("loss", "acc"):
            if max(_readings(t, f"train_{what}"), _readings(t, f"val_{what}")) >= 2:  # once is no curve
                return what
    both = {w for w in names if f"train_{w}" in t and f"val_{w}" in t}
    pool = rewards or both or names
    losses = {w for w in pool if w.endswith("_loss") or w.startswith("loss_")}
    if any(set(w.split("_")) & ADVERSARIAL for w in losses) and len(losses) > 1:
        # a GAN's losses (D_real, D_fake, G_GAN, G_L1): none is the run's own, by any count; what its
        # evaluation measures (an SRGAN's validation PSNR, the first it logs) is its learning curve
        evaluated = [c.split("_", 1)[1] for c in run.metrics if c.startswith("val_") and direction(c)]
        return next((w for w in evaluated if f"train_{w}" not in t), None)
    pool = losses or pool
    # perplexity is a language model's loss exponentiated, but a VQ-VAE's codebook usage (rising as
    # more codes are used): beside another lower-is-better metric (`recon_error`), that one is judged
    if any(w != "ppl" and direction(f"train_{w}") == "down" for w in pool):
        pool = {w for w in pool if w != "ppl"}
    if not pool:
        return None
    fewest = min(len(w.split("_")) for w in pool)
    main = [w for w in pool if len(w.split("_")) == fewest]
    return main[0] if len(main) == 1 else None


def run_curves(run: Run, ax: Axis = Axis()) -> tuple[Curve | None, Curve | None]:
    """(training, validation) curves of the judged metric (judged_metric): the loss, else the error
    (1 - accuracy), else another metric, complemented when higher is better."""
    return metric_curves(run, judged_metric(run), ax)


def metric_curves(run: Run, what: str | None, ax: Axis = Axis()) -> tuple[Curve | None, Curve | None]:
    """(training, validation) curves of one metric (`loss`, `acc`, `cos`…); none when `what` is None."""
    if what is None:
        return None, None
    return curve(run, f"train_{what}", "training", ax), curve(run, f"val_{what}", "validation", ax)


def other_held_out(run: Run, what: str | None, ax: Axis = Axis()) -> list[Curve]:
    """Held-out curves of the run's other metrics that say which way is better (for a run whose judged
    metric has no held-out curve: whether the model still improves on held-out data)."""
    return _others(run, "val", what, ax, lambda m: direction(m) is not None)


def training_scores(run: Run, what: str | None, ax: Axis = Axis()) -> list[Curve]:
    """Training curves of the run's scores other than the judged metric (accuracy, AUROC, mAP: higher
    is better), each as its shortfall: whether the model learns what a small loss drop hides (a
    multi-label loss dominated by its base rates)."""
    return _others(run, "train", what, ax, lambda m: direction(m) == "up")


def training_losses(run: Run, what: str | None, ax: Axis = Axis()) -> list[Curve]:
    """Training curves of the run's losses (lower is better) other than the judged metric: whether
    the optimiser still makes progress while a held-out score is judged (an agent's evaluation return
    beside its training loss)."""
    return _others(run, "train", what, ax, lambda m: direction(m) == "down")


def _others(run: Run, stage: str, what: str | None, ax: Axis, keep: Callable[[str], bool]) -> list[Curve]:
    label = "validation" if stage == "val" else "training"
    names = [m for m in run.metrics if m.startswith(f"{stage}_") and m != f"{stage}_{what}" and keep(m)]
    found = [curve(run, m, label, ax) for m in names]
    return [c for c in found if c is not None and len(c) >= ax.min_points]


def _lr(run: Run, axis: str | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The logged learning rates as shares of the largest one, with the epochs or steps they were
    logged at when `axis` is given (None when the run logs none, or none above zero)."""
    t = run.table
    if "lr" not in t or (axis is not None and axis not in t):
        return None
    lr = t["lr"].to_numpy(dtype=float)
    at = t[axis].to_numpy(dtype=float) if axis else np.zeros(len(lr))
    ok = np.isfinite(lr) & np.isfinite(at)
    lr, at = lr[ok], at[ok]
    if not len(lr) or lr.max() <= 0:
        return None
    return lr / lr.max(), at


def lr_at_end(run: Run) -> float | None:
    """The last logged learning rate as a share of the largest one (None when not logged)."""
    logged = _lr(run)
    return None if logged is None else float(logged[0][-1])


def lr_gone_at(run: Run, unit: str, share: float) -> float | None:
    """The epoch (or step) from which the logged learning rate stays at `share` of its peak or below
    (None when it never gets there, the run logs none, or the curve is judged on its rows)."""
    logged = _lr(run, unit) if unit in ("epoch", "step") else None
    if logged is None:
        return None
    lr, at = logged
    above = np.nonzero(lr > share * (1 + 1e-6))[0]
    if len(above) and above[-1] == len(lr) - 1:
        return None
    return float(at[above[-1] + 1] if len(above) else at[0])


def starts_late(run: Run) -> bool:
    """The log begins well into training (a resumed run, a late segment): its first logged step or
    epoch is further from zero than the log's own span on that axis, so most of the progress happened
    before it (either axis: a resumed Lightning run restarts its steps at each epoch); or its last run
    goes on from an earlier one's weights (its counter starts again where that run's loss ended)."""
    if run.resumed:
        return True
    for axis in ("step", "epoch"):
        x = run.table[axis].to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        if len(x) >= 2 and x[0] > 1 and x[0] > x.max() - x[0]:  # epoch 1 of a counter from 1 is the start
            return True
    return False
