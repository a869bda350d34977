"""Two runs side by side: their curves on one axis, which one is better, where they part, and what
each one's findings say ("run B's validation loss turns up at epoch 6, run A's never does").

The curves are compared on what both logged: the held-out loss when both have one, else the training
loss (or the error, 1 - accuracy). The axis is epochs when both count them, else steps, else each
run's share of its own length. *Better* is the lower curve at the end of the shorter run (what both
reached), with its best value beside it; the runs *part* at the first point from which the gap stays
wider than both curves' noise to the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from assistant.runs.curves import Curve, fmt, fmt_x, run_curves
from assistant.runs.detect import THRESHOLDS, Finding, Thresholds, detect
from assistant.runs.parse import Run


@dataclass
class Comparison:
    names: tuple[str, str]
    findings: tuple[list[Finding], list[Finding]]
    metric: str  # e.g. "validation loss"
    better: int | None  # 0 or 1; None when they end level
    parted: str | None  # "epoch 6": from there on the gap stays
    summary: list[str]  # sentences, in plain words

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": list(self.names),
            "findings": [[f.to_dict() for f in fs] for fs in self.findings],
            "metric": self.metric,
            "better": None if self.better is None else self.names[self.better],
            "parted": self.parted,
            "summary": self.summary,
        }


def _shared(a: Run, b: Run) -> tuple[Curve, Curve, str] | None:
    """The pair of curves both runs logged (held-out first), and what they measure."""
    for index in (1, 0):
        ca, cb = run_curves(a)[index], run_curves(b)[index]
        if ca is not None and cb is not None and ca.what == cb.what:
            return ca, cb, f"{ca.label} {ca.what}"
    return None


def _on_grid(c: Curve, unit: str, grid: np.ndarray) -> np.ndarray:
    """The curve's trend on the log's own scale, at the grid's positions (relative ones: a share of
    the run)."""
    x = c.x / c.x[-1] if unit == "share" else c.x
    y = np.array([c.value(v) for v in c.trend])
    return np.interp(grid, x, y, left=np.nan, right=np.nan)


_VERB = {
    "diverged": "diverged",
    "overfitting": "overfits",
    "plateau": "hits a plateau",
    "unstable": "is unstable",
    "underfitting": "underfits",
}


def _turn_words(label: str, findings: list[Finding]) -> str | None:
    f = next((f for f in findings if f.kind != "healthy"), None)
    if f is None:
        return None
    where = f.details.get("turn") or f.details.get("at") or f.details.get("from")
    return f"{label} {_VERB.get(f.kind, f.kind)}" + (f" (from {where})" if where else "")


def compare(a: Run, b: Run, th: Thresholds = THRESHOLDS) -> Comparison:
    names = (a.name or "run A", b.name or "run B")
    findings = (detect(a, th), detect(b, th))
    summary: list[str] = []
    words = [_turn_words(n, fs) for n, fs in zip(names, findings, strict=True)]
    if words[0] and words[1]:
        summary.append(f"{words[0]}; {words[1]}.")
    elif any(words):
        problem = next(w for w in words if w)
        healthy = names[words.index(None)]
        summary.append(f"{problem}; {healthy} shows no such problem.")
    shared = _shared(a, b)
    if shared is None:
        summary.append("They log no curve in common, so they cannot be compared point by point.")
        return Comparison(names, findings, "", None, None, summary)
    ca, cb, metric = shared
    unit = ca.unit if ca.unit == cb.unit and ca.unit in ("epoch", "step") else "share"
    end = min(ca.x[-1], cb.x[-1]) if unit != "share" else 1.0
    start = max(ca.x[0], cb.x[0]) if unit != "share" else max(ca.x[0] / ca.x[-1], cb.x[0] / cb.x[-1])
    grid = np.linspace(start, end, 50) if end > start else np.array([end])
    ya, yb = _on_grid(ca, unit, grid), _on_grid(cb, unit, grid)
    ok = ~(np.isnan(ya) | np.isnan(yb))
    if not ok.any():
        summary.append(f"Their {metric} curves do not overlap, so they cannot be compared point by point.")
        return Comparison(names, findings, metric, None, None, summary)
    grid, ya, yb = grid[ok], ya[ok], yb[ok]
    level = max(abs(float(np.median(ya))), abs(float(np.median(yb))), 1e-12)
    noise = max(_linear_noise(ca), _linear_noise(cb), th.min_change * level)
    gap = ya - yb
    better = None if abs(gap[-1]) <= noise else (0 if gap[-1] < 0 else 1)
    where = "at the end" if unit == "share" else f"by {unit} {fmt_x(grid[-1])}"
    if better is None:
        summary.append(f"Their {metric} ends level {where} ({fmt(ya[-1])} and {fmt(yb[-1])}).")
        parted = None
    else:
        lo, hi = (ya, yb) if better == 0 else (yb, ya)
        summary.append(
            f"{names[better]} is better: its {metric} is {fmt(lo[-1])} against {fmt(hi[-1])} {where} "
            f"(best {fmt(float(np.min(lo)))} against {fmt(float(np.min(hi)))})."
        )
        apart = np.abs(gap) > noise
        parted = None
        for i in range(len(grid)):
            if apart[i:].all():
                parted = "the start" if i == 0 else _grid_x(grid[i], unit)
                break
        if parted and parted != "the start":
            summary.append(f"They part at {parted}: from there {names[better]} stays ahead.")
    return Comparison(names, findings, metric, better, parted, summary)


def _grid_x(x: float, unit: str) -> str:
    """A grid position in words: `epoch 6`, `step 1200`, or `40% of the way`."""
    return (
        f"{x:.0%} of the way" if unit == "share" else f"{unit} {fmt_x(round(x) if x > 10 else round(x, 2))}"
    )


def _linear_noise(c: Curve) -> float:
    level = abs(c.value(float(np.median(c.trend))))
    return level * (10**c.noise - 1) if c.log else c.noise if math.isfinite(c.noise) else 0.0
