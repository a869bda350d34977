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
from assistant.runs.parse.names import tokens

_DISCRIMINATOR = {"d", "dis", "disc", "discriminator"}
_GENERATOR = {"g", "gen", "generator"}
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
    ds, gs = _losses(run, _DISCRIMINATOR, ax), _losses(run, _GENERATOR, ax)
    if not ds or not gs:
        return None

    def fifth(c: Curve, last: bool) -> float:  # the median of its first or last fifth, as logged
        q = max(1, len(c) // 5)
        return c.value(float(np.median(c.trend[-q:] if last else c.trend[:q])))

    early, late = [fifth(d, last=False) for d in ds], [fifth(d, last=True) for d in ds]
    if not all(e > 0 and lt < th.gan_d_collapse * e for e, lt in zip(early, late, strict=True)):
        return None
    for g in gs:
        best = int(np.argmin(g.trend))
        low, end = g.value(float(g.trend[best])), fifth(g, last=True)
        rise = float(np.median(g.trend[-max(1, len(g) // 5) :])) - float(g.trend[best])
        if low > 0 and end >= th.gan_g_rise * low and counted(g, rise, float(g.trend[best]), th) >= 1:
            d_text = ", ".join(
                f"{d.label} {fmt(e)} to {fmt(lt)}" for d, e, lt in zip(ds, early, late, strict=True)
            )
            return Finding(
                "diverged",
                f"the discriminator wins: its losses fell to about zero ({d_text}) while the generator's "
                f"adversarial loss {g.label} climbed from its best {fmt(low)} at {g.at(best)} to "
                f"{fmt(end)} at the end, so the generator no longer learns from it",
                {"discriminator": [d.label for d in ds], "generator": g.label, "best": low, "end": end},
                confidence(end / low / th.gan_g_rise),
            )
    return None
    for g in gs:
        t = g.trend
        best = int(np.argmin(t))
        low, end = float(t[best]), float(np.median(t[-max(1, len(t) // 5) :]))
        if low > 0 and end >= th.gan_g_rise * low and counted(g, end - low, low, th) >= 1:
            d_text = ", ".join(
                f"{d.label} {fmt(d.value(e))} to {fmt(d.value(lt))}"
                for d, e, lt in zip(ds, early, late, strict=True)
            )
            return Finding(
                "diverged",
                f"the discriminator wins: its losses fell to about zero ({d_text}) while the generator's "
                f"adversarial loss {g.label} climbed from its best {fmt(g.value(low))} at {g.at(best)} to "
                f"{fmt(g.value(end))} at the end, so the generator no longer learns from it",
                {"discriminator": [d.label for d in ds], "generator": g.label, "best": low, "end": end},
                confidence(end / low / th.gan_g_rise),
            )
    return None
