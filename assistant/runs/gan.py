"""A GAN whose discriminator wins: its losses fall to about zero (it tells real from generated every
time) while the generator's adversarial loss climbs for good, so the generator no longer learns from
it. The textbook failure of adversarial training, and one a GAN log shows even though none of its
losses is the run's main one (pix2pix's `D_real`/`D_fake`/`G_GAN`, CycleGAN's `D_A`/`G_A`, or
`d_loss`/`g_loss`).
"""

from __future__ import annotations

import numpy as np

from assistant.runs.curves import Axis, Curve, curve, fmt
from assistant.runs.findings import Finding, Thresholds, confidence, counted
from assistant.runs.parse import Run
from assistant.runs.parse.names import DISCRIMINATOR, GENERATOR, tokens

# a generator's reconstruction or auxiliary terms, which the discriminator does not drive
_NOT_ADVERSARIAL = {"l1", "l2", "cycle", "idt", "identity", "rec", "recon", "perceptual", "vgg", "feat"}


def _losses(run: Run, words: set[str], ax: Axis) -> list[Curve]:
    names = [
        m
        for m in run.metrics
        if m.startswith("train_") and (t := set(tokens(m))) & words and not t & _NOT_ADVERSARIAL
    ]
    found = [curve(run, m, m.removeprefix("train_").removesuffix("_loss"), ax) for m in names]
    return [c for c in found if c is not None and len(c) >= ax.min_points]


def discriminator_wins(run: Run, th: Thresholds) -> Finding | None:
    ax = Axis(min_points=th.min_points)
    ds, gs = _losses(run, DISCRIMINATOR, ax), _losses(run, GENERATOR, ax)
    if not ds or not gs:
        return None

    early = [d.value(_fifth(d, last=False)) for d in ds]
    late = [d.value(_fifth(d, last=True)) for d in ds]
    if not all(e > 0 and lt < th.gan_d_collapse * e for e, lt in zip(early, late, strict=True)):
        return None
    for g in gs:
        best = int(np.argmin(g.trend))
        low_y, end_y = float(g.trend[best]), _fifth(g, last=True)  # on the curve's own scale
        low, end = g.value(low_y), g.value(end_y)
        if low > 0 and end >= th.gan_g_rise * low and counted(g, end_y - low_y, low_y, th) >= 1:
            pairs = zip(ds, early, late, strict=True)
            d_text = ", ".join(f"{d.label} {fmt(e)} to {fmt(lt)}" for d, e, lt in pairs)
            return Finding(
                "diverged",
                f"the discriminator wins: its losses fell to about zero ({d_text}) while the generator's "
                f"adversarial loss {g.label} climbed from its best {fmt(low)} at {g.at(best)} to "
                f"{fmt(end)} at the end, so the generator no longer learns from it",
                {"discriminator": [d.label for d in ds], "generator": g.label, "best": low, "end": end},
                confidence(end / low / th.gan_g_rise),
            )
    return None


def _fifth(c: Curve, last: bool) -> float:
    """The median of the trend's first or last fifth, on the curve's own (maybe log) scale."""
    q = max(1, len(c) // 5)
    return float(np.median(c.trend[-q:] if last else c.trend[:q]))
