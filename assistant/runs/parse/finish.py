"""`finish`: what every reader stored, made into a `Run` as the detectors read it: names mapped to the
shared vocabulary, one column kept per name, the log's last run chosen, a held-out curve found when
none is named so, parts summed into a loss, and epochs counted as people count them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from assistant.runs.parse.names import (
    EVALUATION_SCORES,
    PLAYERS,
    TRAIN,
    component_of,
    direction,
    evaluated,
    normalise,
    stage_of,
    tokens,
)
from assistant.runs.parse.parts import pair_lone_part, sum_of_parts
from assistant.runs.parse.restarts import goes_on, last_run, last_started, steps_across_epochs
from assistant.runs.parse.table import (
    CELLS_PER_VALUE,
    CORE,
    MIN_CELLS,
    Columns,
    NoMetricError,
    Run,
    RunParseError,
)

_HELD_OUT_FILE = {"val", "valid", "validation"}  # a file named for the validation set (not `test`: a
# training script's trial run is often `test.log`)


def _file_stage(name: str, metric_cols: Sequence[Any]) -> str | None:
    """ "val" for a file named for the validation set alone (a U-Net's `val_log.csv` beside its
    `train_log.csv`) whose columns say no stage (`loss`, `mIoU`): they are that set's readings."""
    words = set(tokens(name.rsplit(".", 1)[0]))
    if not words & _HELD_OUT_FILE or words & TRAIN or any(stage_of(str(c)) for c in metric_cols):
        return None
    return "val"


def _held_rows(cols: Columns) -> tuple[np.ndarray, np.ndarray]:
    """(the rows that hold held-out readings, the rows that hold training ones; a learning rate is
    no reading)."""
    trained, held = np.zeros(cols.n, dtype=bool), np.zeros(cols.n, dtype=bool)
    for col, rows in cols.rows.items():
        if normalise(str(col)) == "lr":
            continue
        at = np.frombuffer(rows, dtype=np.int64)
        (held if stage_of(str(col)) in ("val", "test") else trained)[at] = True
    return held, trained


def finish(
    cols: Columns,
    fmt: str,
    name: str,
    notes: Iterable[str] = (),
    starts: Sequence[int] = (),
    changed: Sequence[int] = (),
) -> Run:
    """Normalise what a reader stored into a Run.

    Metric names are mapped to the shared vocabulary; when two columns map to one name (Lightning's
    `train_loss_step` and `train_loss_epoch`), the finer one (more values) is kept. Epochs become
    1-based, as people count them: 0-based integer epochs (Lightning, Keras CSV) are shifted, and
    fractional ones (Hugging Face's 0.25 = a quarter into the first) are rounded up. Where the log
    said its loss changed (`changed`: the rows read by then), the last run is read from there on: the
    loss before it is another objective's, and the jump between them no divergence."""
    notes = list(notes)
    if note := cols.skipped_note():
        notes.append(note)
    metric_cols = cols.names  # only metric names are ever stored
    if not metric_cols and cols.empty_names and not cols.skipped_values:
        raise RunParseError(
            f"{name or 'the input'} names metrics ({', '.join(cols.empty_names)}) "
            "but none has a number in it."
        )
    if not metric_cols:
        shown = ", ".join(map(str, cols.other_names)) or "nothing"
        raise NoMetricError(
            f"{name or 'the input'} holds no training metric (found {shown}). A training log needs a "
            "loss or accuracy per epoch or step, e.g. columns `epoch,loss,val_loss` or lines like "
            "`Epoch 3/20 - loss: 0.41 - val_loss: 0.58`."
        )
    axes = {
        "epoch": np.frombuffer(cols.epoch) if cols.n else np.empty(0),
        "step": np.frombuffer(cols.step) if cols.n else np.empty(0),
    }
    keep, runs, stubs = last_run(axes["epoch"], axes["step"], _held_rows(cols))  # the last run's rows: its
    # columns are chosen
    chosen: dict[str, str] = {}  # normalised name -> the raw column kept for it
    stage = _file_stage(name, metric_cols)
    if stage:
        notes.append("the file is named for the validation set and no column names a stage: read as held-out")
    for col in metric_cols:
        key = normalise(str(col), stage or "train")
        if key not in chosen or _finer(cols, col, chosen[key], keep):
            chosen[key] = col
    if not stage and (held := _unstaged_beside_training(cols, chosen, metric_cols)):
        notes.append(f"`{held}` says no stage beside a loss named for training: read as the held-out one")
    # DETR, fairseq, RL's Test_Return…: with no validation curve, test is the held-out set
    # (a validation reading printed once, `Best val Acc: 0.74` at the end, is a summary, not a curve)
    curves = [k for k in chosen if len(cols.values[chosen[k]]) > 1]
    # (a reading only an evaluation computes, mAP, is the held-out set's by default: not a val curve)
    said = [k for k in curves if k.startswith("val_") and not evaluated(str(chosen[k]))]
    if not said and any(k.startswith("test_") for k in curves):
        for key in [k for k in curves if k.startswith("test_")]:
            if (to := "val_" + key[len("test_") :]) not in curves:
                chosen[to] = chosen.pop(key)
        notes.append("no validation curve: the test curve is read as the held-out one")
    elif "test_loss" in curves and "val_loss" not in chosen:
        # a validation score beside a test loss alone (SimpleAICV's `eval: epoch: 200, acc1: 79.6%,
        # test_loss: 1.17`): the held-out loss is the test set's
        chosen["val_loss"] = chosen.pop("test_loss")
        notes.append("no validation loss: the test loss is read as the held-out loss")
    # a training loss named for what it is (Megatron-LM's `lm loss`), the log's only one, is its loss
    # (one part alone is no sum of parts)
    named = [k for k in chosen if k.startswith("train_") and k.endswith("_loss")]
    if "train_loss" not in chosen and len(named) == 1 and _own_loss(named[0]):
        chosen["train_loss"] = chosen.pop(named[0])
    if note := pair_lone_part(chosen):
        notes.append(note)
    # a held-out loss named for its split (`val_night_loss`) or by its form (`val_mse` in a regression):
    # beside a training loss and with no other, it is the held-out loss (not a signed error, `mean_error`
    # of -10 to +9, whose best is zero: no loss goes below it)
    if "train_loss" in chosen and "val_loss" not in chosen:
        held = [k for k in chosen if k.startswith("val_") and k.endswith("_loss")] or [
            k
            for k in chosen
            if k.startswith("val_") and direction(k) == "down" and _unsigned(cols.values[chosen[k]])
        ]
        if len(held) == 1:
            chosen["val_loss"] = chosen.pop(held[0])
            notes.append(f"no validation loss: `{chosen['val_loss']}` is read as the held-out loss")
    order = sorted(
        chosen, key=lambda k: (k not in CORE, CORE.index(k) if k in CORE else 0, -len(cols.values[chosen[k]]))
    )
    budget = max(MIN_CELLS, CELLS_PER_VALUE * sum(len(cols.values[c]) for c in chosen.values()))
    kept = [k for k in order if k in CORE]
    left_out = 0
    for key in order:
        if key in kept:
            continue
        if (len(kept) + 3) * cols.n <= budget:
            kept.append(key)
        else:
            left_out += 1
    if left_out:
        notes.append(f"{left_out} sparse metrics were left out of the table (too few values for its size)")
    data = dict(axes)
    sources = {key: str(chosen[key]) for key in kept}
    for stage in ("train", "val"):
        if f"{stage}_loss" not in chosen and (summed := sum_of_parts(cols, chosen, stage)):
            data[f"{stage}_loss"], parts = summed
            notes.append(f"{stage}_loss is the sum of its logged parts ({', '.join(parts)})")
            sources[f"{stage}_loss"] = " + ".join(
                str(chosen[k]) for k in chosen if component_of(k) and k.startswith(stage)
            )
    for key in kept:
        data[key] = cols.dense(chosen[key])
    if not any(_is_curve(v) for k, v in data.items() if k not in ("epoch", "step", "lr")):
        shown = ", ".join(k for k in data if k not in ("epoch", "step")) or "nothing"
        raise RunParseError(
            f"{name or 'the input'} holds no training curve: {shown}, each logged once at most. A "
            "training log needs a loss or accuracy at several epochs or steps."
        )
    columns = [k for k in data if k not in ("epoch", "step")]
    out = pd.DataFrame(data)[["epoch", "step", *sorted(columns, key=_column_order)]]
    if stubs:
        before = f"the last of the {runs} runs before it" if runs > 1 else "the run before it"
        notes.append(
            f"the log ends in a start that logged no reading (stopped before its first?): {before} is read"
        )
    elif runs > 1:
        notes.append(f"the log holds {runs} runs (its counter starts again): the last one is read")
    elif starts and np.isnan(data["epoch"]).all() and np.isnan(data["step"]).all():
        first = next((k for k in (*CORE, *data) if k in data and k not in ("epoch", "step", "lr")), None)
        keep, runs = last_started(data[first], starts) if first else (keep, runs)
        if runs > 1:
            notes.append(f"the log holds {runs} runs (its opening line comes again): the last one is read")
    if changed and keep[: changed[-1]].any() and keep[changed[-1] :].any():
        at = changed[-1]
        keep = keep & (np.arange(len(keep)) >= at)
        when = f" at epoch {data['epoch'][at]:g}" if math.isfinite(data["epoch"][at]) else ""
        notes.append(f"the log says its loss changed{when}: the curve from there on is read")
    earlier = out[~keep]
    if any(
        np.isinf(earlier[c].to_numpy(dtype=float)).any() for c in ("train_loss", "val_loss") if c in earlier
    ):
        notes.append(
            "an earlier run's loss was NaN or infinite (its weights overflowed): the last run is judged alone"
        )
    out = out[keep & out[columns].notna().any(axis=1).to_numpy()].reset_index(drop=True)
    if resumed := runs > 1 and goes_on(earlier, out):
        notes.append("the last run starts where the one before it ended: it seems to go on from its weights")
    if runs > 1:  # what only the earlier runs logged is not the last run's
        gone = [c for c in columns if out[c].isna().all()]
        out = out.drop(columns=gone)
        sources = {k: v for k, v in sources.items() if k not in gone}
    out["epoch"] = _human_epochs(out["epoch"])
    if (steps := steps_across_epochs(out["epoch"].to_numpy(), out["step"].to_numpy())) is not None:
        out["step"] = steps
        notes.append("the step counter starts again each epoch: the steps are counted across epochs")
    return Run(out, fmt, name, notes, sources, resumed=resumed)


def _unstaged_beside_training(
    cols: Columns, chosen: dict[str, str], metric_cols: Sequence[Any]
) -> str | None:
    """A log that names its training loss as such (FuxiCTR's `Train loss: 0.30` after each epoch) and
    prints another loss saying no stage as often (its `[Metrics] AUC: 0.93 - logloss: 0.28` before it):
    the other is the evaluation's. Both were read as the training loss, and the one with more values
    kept; now the named one is the training loss, the other the held-out one, with the readings that
    say no stage on its lines (the AUC). Only when a score that only an evaluation computes (an AUC,
    an F1, an NDCG, an mAP) is logged with it: a total loss beside its cross-entropy, or a progress
    bar's `loss` beside a callback's `Train loss`, is training's too. Not when a held-out loss is named
    (`testing avg loss` beside a test bar's `cost`), nor when the unnamed loss is logged far more often
    (a progress line's loss per step beside an epoch's `Train Loss` summary): that is training's,
    finer. (A held-out reading printed once, a summary at the end, is no curve.)"""

    def curve(key: str) -> bool:
        return key in chosen and len(cols.values[chosen[key]]) > 1

    if curve("val_loss") or curve("test_loss") or "train_loss" not in chosen:
        return None
    losses = [c for c in metric_cols if normalise(str(c)) == "train_loss" and len(cols.values[c]) > 1]
    named = [c for c in losses if stage_of(str(c)) == "train"]
    unnamed = [c for c in losses if stage_of(str(c)) is None]
    if len(named) != 1 or len(unnamed) != 1:
        return None
    train, held = named[0], unnamed[0]
    if len(cols.values[held]) > 1.5 * len(cols.values[train]):
        return None
    rows = bytes(cols.rows[held])
    beside = [
        c for c in metric_cols if c != held and stage_of(str(c)) is None and bytes(cols.rows[c]) == rows
    ]
    if not any(EVALUATION_SCORES & set(tokens(str(c))) for c in beside):
        return None  # a second training loss (a total beside its cross-entropy, a bar's `loss`)
    for col in beside:
        key = normalise(str(col))
        if chosen.get(key) == col and key.startswith("train_") and not curve(f"val_{key[6:]}"):
            chosen[f"val_{key[6:]}"] = chosen.pop(key)
    chosen["train_loss"], chosen["val_loss"] = train, held
    return str(held)


def _own_loss(key: str) -> bool:
    """Not a player's loss (`train_d_loss`, an RL critic's `train_value_loss`): its own objective."""
    return not set(key.split("_")[1:-1]) & PLAYERS


def _finer(cols: Columns, col: str, than: str, keep: np.ndarray) -> bool:
    """Whether `col` is the one to keep of two columns with one name: the one the last run (`keep`)
    logged, when the other is an earlier run's alone; else the one with more values; of two as long,
    the one no later line of a row wrote over (MindSpore's epoch line `Average Train Loss: 1.629` over
    the `Train Loss` its batch lines wrote again and again, the last batch's staying), then the one
    whose name says its stage (an epoch's `Train Loss: 0.64` summary over the bare `loss` of the batch
    lines before it), then the one whose name says it is the epoch's mean (Lightning's progress bar
    writes `train_loss_step` and `train_loss_epoch` on every line: the last batch's loss and the
    epoch's, as many as each other when each bar shows its own epoch's mean)."""
    last = [bool(keep[np.frombuffer(cols.rows[c], dtype=np.int64)].any()) for c in (col, than)]
    if last[0] != last[1]:
        return last[0]
    more, fewer = len(cols.values[col]), len(cols.values[than])
    if more != fewer:
        return more > fewer
    ranks = [
        (c not in cols.overwritten, stage_of(str(c)) is not None, _averaged(str(c))) for c in (col, than)
    ]
    return ranks[0] > ranks[1]


def _averaged(name: str) -> bool:
    """A name that says its reading is the epoch's, not one batch's (Lightning's `train_loss_epoch`;
    not an `avg acc`, which is averaged over classes)."""
    toks = set(tokens(name))
    return "epoch" in toks and not toks & {"step", "batch", "iter"}


def _is_curve(values: np.ndarray) -> bool:
    """Two readings or more; or one that is a blow-up (a NaN or inf loss is a finding on its own)."""
    logged = values[~np.isnan(values)]
    return len(logged) > 1 or bool(np.isinf(logged).any())


def _column_order(key: str) -> tuple[bool, int, str]:
    return (key not in CORE, CORE.index(key) if key in CORE else 0, key)


def _human_epochs(epoch: pd.Series) -> pd.Series:
    known = epoch.dropna()
    if known.empty:
        return epoch
    # a row logged without its epoch (a TensorBoard tag written at a step with no `epoch` scalar)
    # belongs to the epoch of the row before it
    epoch = epoch.ffill().bfill()
    if (known != known.round()).any():
        return np.ceil(epoch).clip(lower=1)
    return epoch + 1 if known.min() == 0 else epoch


def _unsigned(values: Iterable[float]) -> bool:
    """No value below zero (a NaN is no reading either way)."""
    return not any(v < 0 for v in values)
