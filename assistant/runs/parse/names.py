"""Metric names as loggers write them -> one vocabulary (train_loss, val_loss, train_acc, val_acc, lr).

Names are split into tokens ("validation/epoch_loss" -> validation, epoch, loss) so that each logger's
spelling maps without a table per tool: Lightning's `train_loss_step`, Keras' `val_accuracy`, Hugging
Face's `eval_loss`, TensorBoard tags like `Loss/train` or `train/loss`.
"""

from __future__ import annotations

import re
from functools import lru_cache

STEP_COLUMNS = {"step", "global_step", "iteration", "iter", "batch", "steps"}
EPOCH_COLUMNS = {"epoch", "epochs"}

TRAIN = {"train", "training", "tr"}
VAL = {"val", "valid", "validation", "eval", "evaluation", "dev"}
# suffixes and prefixes that say when a value was aggregated, not what it measures
NOISE = {"epoch", "step", "avg", "mean", "metric", "metrics", "scalar", "scalars", "on", "per"}
LOSS = {"loss", "nll", "ce"}
ACC = {"acc", "accuracy"}
LR = {"lr", "learningrate"}
# A console line's `name: value` counts as a metric only when its name holds one of these tokens, so
# `ETA: 3`, `v_num=0` or `time: 12` are never taken for one.
METRIC_TOKENS = LOSS | ACC | LR | {
    "f1", "auc", "precision", "recall", "perplexity", "ppl", "mae", "mse", "rmse", "error", "err",
    "dice", "iou", "bleu", "rouge", "top1", "top5", "gradnorm", "score", "map",
}  # fmt: skip

_SPLIT = re.compile(r"[/_\-.\s:]+")


def tokens(name: str) -> list[str]:
    text = (
        name.strip().lower().replace("learning_rate", "learningrate").replace("learning rate", "learningrate")
    )
    return [t for t in _SPLIT.split(text) if t]


def normalise(name: str) -> str:
    """The metric's name in the shared vocabulary; unknown metrics keep a cleaned name with the
    stage first (`val_f1`)."""
    toks = tokens(name)
    if not toks:
        return name
    low = name.strip().lower()
    if any(t in LR for t in toks):  # also Lightning's LearningRateMonitor: `lr-Adam`, `lr-SGD/pg1`
        return "lr"
    stage = "val" if any(t in VAL for t in toks) else "train"
    rest = [t for t in toks if t not in VAL | TRAIN | NOISE]
    if any(t in LOSS for t in rest) and len(rest) == 1:
        return f"{stage}_loss"
    if any(t in ACC for t in rest) and len(rest) == 1:
        return f"{stage}_acc"
    if not rest:
        return low
    return f"{stage}_{'_'.join(rest)}"


@lru_cache(maxsize=4096)  # a log repeats its few names on every line
def is_metric_name(name: str) -> bool:
    toks = tokens(name)
    return bool(toks) and any(t in METRIC_TOKENS for t in toks)


@lru_cache(maxsize=4096)
def role(name: str) -> str:
    """'epoch', 'step' or 'metric' for a column name."""
    low = name.strip().lower()
    if low in EPOCH_COLUMNS:
        return "epoch"
    if low in STEP_COLUMNS:
        return "step"
    return "metric"
