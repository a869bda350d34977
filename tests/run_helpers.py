"""Curves shared by the training-log tests."""

from __future__ import annotations

import math

from assistant.runs import detect, parse_run


def kinds(text: str) -> list[str]:
    """The kinds the detectors find in a log's text, most severe first."""
    return [f.kind for f in detect(parse_run(text))]


def falling(n: int, start: float = 2.0, end: float = 0.5) -> list[float]:
    """A loss falling from `start` towards `end` as a run that learns does (fast, then levelling)."""
    return [start + (end - start) * (1 - math.exp(-4 * i / n)) for i in range(n)]


TRAIN_VAL = "step {x}: train loss {t:.4f}, val loss {v:.4f}"


def train_val(train: list[float], val: list[float], line: str = TRAIN_VAL, every: int = 100) -> str:
    """A console log of a training and a validation loss side by side, one line per `every` steps."""
    pairs = enumerate(zip(train, val, strict=True))
    return "\n".join(line.format(x=every * (i + 1), t=t, v=v) for i, (t, v) in pairs)


def steps_log(losses: list[float], first: int = 10, every: int = 10, lr: list[float] | None = None) -> str:
    """A console log of one loss per step (`step 10 | loss 0.5 | lr 0.001`), at a constant rate unless
    `lr` gives one per step."""
    rates = lr or [1e-3] * len(losses)
    return "\n".join(
        f"step {first + every * i} | loss {v:.5f} | lr {r:.6g}"
        for i, (v, r) in enumerate(zip(losses, rates, strict=True))
    )
