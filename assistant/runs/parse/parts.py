"""Losses logged in parts (Ultralytics' box, cls and dfl losses; detectron2's loss_cls and loss_box_reg;
one evaluation loss per dataset): summed into the stage's loss, or, when the validation logs one part
alone, that part judged on both sides."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from assistant.runs.parse.names import component_of

if TYPE_CHECKING:
    from assistant.runs.parse.table import Columns

MAX_PARTS = 8  # a loss logged in more parts than this is not one loss in parts


def pair_lone_part(chosen: dict[str, str]) -> str | None:
    """No whole loss on either side, and the validation logs one part of it alone (MONAI's autoencoder:
    recons, perceptual and an unweighted KL in training, the recons loss in validation): that part, on
    both sides, is the comparison the log affords (a sum with the KL would be the KL's curve). Renames
    the pair in `chosen` (normalised name -> raw column); the note, when it did."""
    val_parts = [k for k in chosen if (c := component_of(k)) and c[0] == "val"]
    twin = "train_" + val_parts[0].removeprefix("val_") if len(val_parts) == 1 else ""
    if twin not in chosen or {"train_loss", "val_loss"} & set(chosen):
        return None
    chosen["train_loss"], chosen["val_loss"] = chosen.pop(twin), chosen.pop(val_parts[0])
    part = chosen["val_loss"]
    return f"the validation logs one part of the loss alone (`{part}`): that part is judged on both sides"


def sum_of_parts(cols: Columns, chosen: dict[str, str], stage: str) -> tuple[np.ndarray, list[str]] | None:
    """A stage's loss logged only in parts (Ultralytics' box, cls and dfl losses; one evaluation
    loss per dataset): their sum at each step (or epoch) where every part is logged, written on the
    rows of the first part. A loss in more than `MAX_PARTS` parts is not summed, nor held-out parts
    each logged for training too beside a whole training loss they do not add up to: they are
    readings beside the loss (a heart-sound challenge's murmur and outcome costs), not its parts."""
    parts = sorted(k for k in chosen if (c := component_of(k)) and c[0] == stage)
    if not 2 <= len(parts) <= MAX_PARTS:
        return None
    trained = ["train_" + k.partition("_")[2] for k in parts]
    beside = stage != "train" and "train_loss" in chosen and all(k in chosen for k in trained)
    if beside and not _adds_up(cols, chosen["train_loss"], [chosen[k] for k in trained]):
        return None
    step, epoch = np.frombuffer(cols.step), np.frombuffer(cols.epoch)
    axis = (
        step
        if not np.isnan(step).all()
        else epoch
        if not np.isnan(epoch).all()
        else np.arange(cols.n, dtype=float)
    )
    frame = pd.DataFrame({k: cols.dense(chosen[k]) for k in parts}).assign(_at=axis)
    per_point = frame.groupby("_at").mean().sum(axis=1, min_count=len(parts))
    first = frame[parts[0]].notna().to_numpy()
    total = np.full(cols.n, np.nan)
    total[first] = pd.Series(axis[first]).map(per_point).to_numpy()
    if np.count_nonzero(~np.isnan(total)) < 2:
        return None
    return total, [str(chosen[k]) for k in parts]


def _adds_up(cols: Columns, whole: str, parts: list[str]) -> bool:
    """The parts sum to the whole (within 1%) on the rows that log them all."""
    frame = pd.DataFrame({"whole": cols.dense(whole), **{p: cols.dense(p) for p in parts}}).dropna()
    frame = frame[np.isfinite(frame.to_numpy()).all(axis=1)]
    return len(frame) > 0 and bool(np.allclose(frame[parts].sum(axis=1), frame["whole"], rtol=0.01))
