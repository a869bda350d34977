"""Curves shared by the training-log tests."""

from __future__ import annotations

import math


def falling(n: int, start: float = 2.0, end: float = 0.5) -> list[float]:
    """A loss falling from `start` towards `end` as a run that learns does (fast, then levelling)."""
    return [start + (end - start) * (1 - math.exp(-4 * i / n)) for i in range(n)]
