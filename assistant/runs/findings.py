"""What a detector reports (a Finding of one of KINDS, with its evidence and a confidence) and the
thresholds every rule judges by, each documented where it is set."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from assistant.runs.curves import Axis, Curve

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
    for the last `tail` of the run, while validation (if logged) does not improve either; or by any
    counted change when the validation trend too ends a counted change above its best (both curves
    worse together: the optimisation is going wrong, not the generalisation)..."""
    explode_factor: float = 10.0
    """...or one logged training loss is 10x the run's start (the median of its first `start_steps`)."""
    zeroed_readings: int = 3
    """...or the training loss is logged as exactly 0 at each of its last readings, this many at least
    and never before, straight after a reading above `jump_start_share` of where it started and no
    lower than the median of the three before it: the loss overflowed in half precision and is shown
    as 0 (a fine-tune at 5.26 one step, 0.0 from then on), not learned away."""
    gan_d_collapse: float = 0.05
    """A GAN's discriminator wins (gan.py) when every discriminator loss ends (median of its last
    fifth) below this share of where it began (its first fifth)..."""
    gan_g_rise: float = 2.0
    """...while a generator adversarial loss ends at least this many times its best, by a counted
    change."""
    jump_recovery: int = 3
    """A jump to `explode_factor` times the previous point and the best so far is a blow-up unless the
    curve is back within twice that level (within `noise_widths` of its own scatter, on a curve read
    on a log scale) within this many points (a spike)..."""
    jump_start_share: float = 0.1
    """...or it lands below this share of where the run started: a loss near zero whose single
    batches scatter by decades (1e-4 to 4e-3 after starting at 0.5) has not blown up."""
    start_steps: int = 5
    tail: float = 0.2
    overfit_min_after: int = 3
    """Overfitting: at least this many points (and a tenth of the run) after the validation minimum,
    the validation curve ending above it (the median of the later half of those points, three at
    least, against the three around the minimum; or their mean without the highest, against as many
    points up to the minimum) by `noise_widths` standard errors and by
    `overfit_min_rise` of its level (`overfit_widening_rise` when training improves by `min_change` or
    more over the same stretch: the gap between them widens clearly), while training still improves
    over that stretch, by `overfit_train_fall` of its level and its noise at least (a training curve
    standing still is a stall, not overfitting)."""
    overfit_min_rise: float = 0.015
    overfit_pull: float = 0.15
    """...or, a rise too mild for that, when validation's best came before the last `plateau_window`
    of the run and its trend ends a noise-width above it while training fell by this share since."""
    overfit_widening_rise: float = 0.01
    overfit_train_fall: float = 0.01
    memorise_fall: float = 0.5
    memorise_val_gain: float = 0.1
    """Overfitting with no turn: over the validation curve's span, training fell by `memorise_fall` of
    its level while validation gained less than `memorise_val_gain` of its own and stopped gaining."""
    spike_span: float = 0.15
    """A spike: a point standing above both neighbours by this share of the trend's range after the
    warm-up (what stands out on the plot a person reads) and of its level, and by `noise_widths`..."""
    spike_share: float = 0.15
    unstable_spikes: int = 3
    """...unstable: the training curve has at least this many spikes after the first tenth of the run
    (warm-up), or either curve has spikes at `spike_share` of its points (two at least), or scatters
    by `unstable_noise` (30%) of its level throughout (it never settles) while going up and down: at
    least `unstable_reversals` of its steps rise and as many fall (a curve that only falls, steeply, is
    not scattering, whatever a short curve's noise estimate says)."""
    relapse_rise: float = 0.25
    """...or, after the first fifth of the run, a curve rises this share (and `noise_widths`) above
    where the run began and later comes back below its best before that: what it learned was lost
    for a while (a blow-up of `explode_factor` that lands above the start counts wherever it is)."""
    unstable_noise: float = 0.3
    unstable_reversals: float = 0.25
    chance_share: float = 0.03
    """A classifier at chance (chance.py): over its last stretch, accuracy within this share of 1/K
    and its loss within this share of ln K, for the same number of classes K."""
    plateau_window: float = 1 / 3
    """Plateau: over the last third of the run the training trend improves by less than
    `plateau_floor`, or by less than `plateau_gain` and less than three standard errors of the window
    (a run that barely learned is also underfitting); not said when validation still improves (nor,
    for a run judged on a held-out curve alone, when a training loss still improves), nor
    when the logged learning rate has decayed to `lr_decayed` of its peak or below (a tenfold step decay
    included: that tail is convergence), nor when the trend ends at `converged_level` of where it began
    or lower while holding its lowest point (or at `settled_level`, below), nor when the tail logs the
    run's best value again and again (a ceiling: a capped return, every answer right), nor for an
    agent's return that holds (how far it is from done is its environment's solved score, which no
    curve says)."""
    plateau_floor: float = 0.02
    plateau_gain: float = 0.1
    plateau_doubt: float = 2.0
    """...and only where the window shows a stall through its noise: its gain, with this many standard
    errors of the window added, still short of `plateau_gain` (a curve scattering 20% by epoch whose
    last third's best is 6% under the best before may be gaining 10% or nothing)."""
    converging_gain: float = 0.005
    """...nor when the trend ends at its lowest point, this share or more below its best before the last
    third, its trend having set a new low at half that stretch's points or more (a curve of a dozen
    points or more): still coming down, as a converging curve does."""
    plateau_share: float = 0.1
    """...nor when the last third's clear gain is this share or more of all the run gained, in a run
    that learned (`underfit_progress` or more): a curve improving slowly and steadily whose level is
    mostly what no model removes (an AUC), nor when, in a run that learned, it is clear and at least
    a third of what the window before it gained (a language model's loss falls about as much per
    doubling of its steps), nor when, with no held-out curve, it still sets a new low at two of every
    three of the last third's points by three times the bar for clear. A barely-learning run's slow
    creep is still a plateau."""
    lr_decayed: float = 0.1
    lr_vanished: float = 1e-3
    """...but when the learning rate had already fallen to `lr_vanished` of its peak before that tail
    began (halved every epoch from the first), the flat tail is a stall the schedule caused: a plateau,
    said with the rate."""
    converged_level: float = 0.1
    """...a trend at this share of where it began, holding its lowest point, converged: when that point
    was reached after the run's first `settled_after` (below); one there from its first tenth on was
    stuck from the start."""
    settled_level: float = 0.7
    settled_after: float = 0.1
    """...nor when the trend ends at `settled_level` of where it began or lower, holding its lowest
    point, having reached it after the run's first `settled_after`, its validation curve (if any)
    holding its own, and the learning rate not having vanished before the tail: a curve that came down
    by a third and sits at its best has learned and settled there (an autoencoder's reconstruction
    loss, 0.80 -> 0.39 and flat); a stall is one that levelled before it came down that far, one at
    its level within its first tenth and flat for the rest, or one creeping back up from its low.
    Which level is good for a task no curve says."""
    underfit_progress: float = 0.1
    """Underfitting without a validation curve: the training trend improves by less than this share
    over the run (from its highest point in the first fifth: a warm-up rise is not progress lost)."""
    underfit_progress_with_val: float = 0.25
    underfit_val_progress: float = 0.1
    """With a validation curve: training improves by less than `underfit_progress_with_val` and
    validation by less than this."""
    underfit_score_progress: float = 0.25
    """Without a held-out curve, not underfitting whatever the loss: a training score (accuracy, AUROC,
    mAP) whose shortfall (1 - score) improves by this share or more."""

    def last_stretch(self, n: int) -> int:
        """How many of a curve's `n` points are its last `plateau_window` (three at least)."""
        return max(3, math.ceil(n * self.plateau_window))


THRESHOLDS = Thresholds()


@dataclass
class Finding:
    kind: str
    evidence: str  # in words, with epochs or steps and values
    details: dict[str, Any] = field(default_factory=dict)
    confidence: str = "medium"  # high | medium | low: how far past its threshold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def confidence(margin: float) -> str:
    """From how many times over its threshold a finding is."""
    return "high" if margin >= 3 else "medium" if margin >= 1.5 else "low"


def counted(c: Curve, change: float, level: float, th: Thresholds) -> float:
    """How many times over the counting threshold a change on curve `c` is (>= 1: it counts)."""
    return change / c.need(th.noise_widths, th.min_change, level)
