"""The run's curves as a PNG: loss (train vs validation), accuracy, learning rate when logged.

Step-level values are drawn faintly with their per-epoch means on top, so the noise and the trend
are both visible. The loss axis turns logarithmic when the loss spans more than `LOG_DECADES`.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import numpy as np

from assistant.runs.detect import Finding
from assistant.runs.parse import Run

LOG_DECADES = 2.0  # a loss spanning more than two decades is drawn on a log scale
_COLOURS = {"train": "#1f77b4", "val": "#d62728"}


def _panels(run: Run) -> list[tuple[str, list[str]]]:
    groups = [
        ("loss", [m for m in ("train_loss", "val_loss") if m in run.table]),
        ("accuracy", [m for m in ("train_acc", "val_acc") if m in run.table]),
        ("learning rate", ["lr"] if "lr" in run.table else []),
    ]
    return [(title, cols) for title, cols in groups if cols]


def _spans_decades(values: np.ndarray) -> bool:
    pos = values[np.isfinite(values) & (values > 0)]
    return len(pos) > 1 and np.log10(pos.max() / pos.min()) > LOG_DECADES


def plot_run(run: Run, findings: list[Finding] | None = None, path: Path | None = None) -> bytes:
    """PNG bytes of the run's curves (also written to `path` when given)."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed, safe in threads of a server
    from matplotlib.figure import Figure

    panels = _panels(run) or [("metrics", run.metrics[:4])]
    fig = Figure(figsize=(6.4, 2.6 * len(panels)), dpi=100)
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    t = run.table
    by_epoch = run.has_epochs
    for ax, (title, cols) in zip(axes, panels, strict=True):
        for col in cols:
            stage = "val" if col.startswith("val") else "train"
            rows = t[t[col].notna()]
            y = rows[col].to_numpy(dtype=float)
            y = np.where(np.isinf(y), np.nan, y)  # a NaN/inf point is a gap (the finding names it)
            colour = _COLOURS.get(stage)
            if by_epoch:
                per_epoch = rows.assign(**{col: y}).groupby("epoch")[col].mean()
                if len(rows) > 2 * len(per_epoch) and rows["step"].notna().all():
                    # step-level values: faint, against the epoch they belong to (fractional position)
                    pos = rows.groupby("epoch").cumcount() / rows.groupby("epoch")[col].transform("size")
                    ax.plot(rows["epoch"] - 1 + pos, y, color=colour, alpha=0.2, lw=0.6)
                ax.plot(per_epoch.index, per_epoch.to_numpy(), marker="o", ms=2.5, color=colour, label=col)
                ax.set_xlabel("epoch")
            else:
                x = rows["step"].to_numpy() if rows["step"].notna().all() else np.arange(1, len(rows) + 1)
                ax.plot(x, y, color=colour, label=col, lw=0.8)
                ax.set_xlabel("step")
        if title == "loss" and _spans_decades(t[cols].to_numpy(dtype=float).ravel()):
            ax.set_yscale("log")
            title += " (log scale)"
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if findings:
        fig.suptitle(", ".join(dict.fromkeys(f.kind for f in findings)), fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    png = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(png)
    return png


def plot_compare(a: Run, b: Run, title: str = "", path: Path | None = None) -> bytes:
    """Two runs on one picture: each run a colour, training dashed, validation solid; the x axis is
    the one compare.py aligned them on (epochs, steps, or each run's share of its length)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from assistant.runs.curves import run_curves

    pairs = [run_curves(a), run_curves(b)]
    units = {c.unit for pair in pairs for c in pair if c is not None}
    shared = units.pop() if len(units) == 1 and units <= {"epoch", "step"} else "share of the run"
    fig = Figure(figsize=(7.0, 3.6), dpi=100)
    ax = fig.subplots()
    values: list[float] = []
    for colour, run, pair in (("#1f77b4", a, pairs[0]), ("#ff7f0e", b, pairs[1])):
        for c, style in zip(pair, ("--", "-"), strict=True):
            if c is None:
                continue
            x = c.x / c.x[-1] if shared == "share of the run" else c.x
            y = np.array([c.value(v) for v in c.y])
            values += list(y)
            ax.plot(x, y, style, color=colour, lw=1.2, label=f"{run.name or 'run'}: {c.label} {c.what}")
    if _spans_decades(np.array(values)):
        ax.set_yscale("log")
    ax.set_xlabel(shared)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(textwrap.fill(title, 100), fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    png = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(png)
    return png
