"""Console lines in the shape one tool prints them, read by that shape rather than as `name: value`:

- gradient boosting, one line per boosting round (a step): XGBoost's `[12]\ttrain-logloss:0.41\t
  eval-logloss:0.47` (`xgb.cv`'s `test-auc:0.81+0.01`: the mean), LightGBM's `[12]\ttraining's
  binary_logloss: 0.41\tvalid_1's binary_logloss: 0.47`, CatBoost's `12:\tlearn: 0.41\ttest: 0.47\t
  best: 0.46 (10)\ttotal: …`. The round that early stopping kept, printed again after `best iteration
  is:`, is not a new reading;
- darknet's (YOLO) `1200: 0.71, 0.80 avg loss, 0.001 rate, …`: the batch's loss, not the running
  average, and the learning rate; its per-layer lines between them (`Region 82 Avg IOU: 0.29, …`) are
  one detection layer's, not the run's;
- YOLACT's `[  0]      10 || B: 5.99 | C: 8.35 | M: 4.25 | T: 19.9 || ETA: …` (a fork's `Epoch:   0 |
  Iteration  10 || …`): its losses by their initials, `T` the total (the loss);
- pytorch-CycleGAN-and-pix2pix's loss_log.txt: `(epoch: 3, iters: 400, time: …) D_A: 0.2 G_A: 0.6`:
  every value after the parenthesis is a loss, named without the word;
- Trax's training loop: `Step 100: train CrossEntropyLoss |  5.27` and `Step 100: eval  Accuracy |
  0.85`, one metric a line, its layer's name for a name;
- NGCF's, KGAT's and LightGCN's reference code: `Epoch 9 [166.8s + 69.8s]: train==[66.216=3.462 +
  61.997 + 0.757], recall=[0.0765, 0.1558], ndcg=[0.1224, 0.2028]`: the training loss is the sum
  before `=` (its terms after it), each test metric a list over its cut-offs (`Ks`), read at the first;
- DeepXDE's training table, once its heading `Step  Train loss  Test loss  Test metric` was printed
  (`print(epoch, scheduler.get_last_lr())` prints `3 [0.001]`): `1000  [8.75e-03, 9.49e-03]
  [8.75e-03, 9.49e-03]  []`, each loss a list of its terms (the PDE's residuals, its boundary and
  initial conditions), read as their sum as its `loss.dat` is (commented.py); L-BFGS' rows print the
  training terms alone;
- a loop that reports each evaluation only as better or not (keras-unet-collection's examples:
  `Validation performance is improved from 0.70 to 0.64`, `Validation performance 0.65 is NOT
  improved`): its new value, an evaluation a line; which way its improvements go says whether it is a
  loss or a score.
"""

from __future__ import annotations

import re

from assistant.runs.parse.lines import LOG_PREFIX, NUM, pairs
from assistant.runs.parse.names import HIGHER_BETTER, TRAIN, is_metric_name, normalise, stage_of, tokens
from assistant.runs.parse.table import Columns, logged

_ROUND = re.compile(r"^\s*\[(\d+)\]\s")  # XGBoost's and LightGBM's `[12]\t`
# one field of a round (fields are tab-separated; some copies turned the tabs into runs of spaces):
# XGBoost's `train-logloss:0.41` (`xgb.cv`: `test-auc:0.81+0.01`), LightGBM's `valid_1's auc: 0.87`
_XGB = re.compile(rf"([A-Za-z]\w*)-([A-Za-z][\w@.:-]*):({NUM})(?:\+{NUM})?")
_LGB = re.compile(rf"([A-Za-z][\w ]*)'s ([A-Za-z][\w@.-]*): ({NUM})(?:\s*\+\s*{NUM})?")
_FIELDS = re.compile(r"\t|\s{2,}")
_CATBOOST = re.compile(rf"^\s*(\d+):\s+(?:learn|test\d*):\s*{NUM}\s")
_CATBOOST_SET = re.compile(rf"\b(learn|test\d*):\s*({NUM})")
_CATBOOST_BEST = re.compile(rf"\bbest:\s*({NUM})")
_BEST_AGAIN = re.compile(r"best iteration(?: is)?:?\s*$", re.IGNORECASE)
# Boosting metrics that are the objective's loss (LightGBM's `binary_logloss`, XGBoost's `mlogloss`,
# CatBoost's `MultiClass`), read as the loss; any other name of no known direction is a loss too
# (`poisson`, `quantile`, `huber`, `tweedie-nloglik@1.5`: each the objective's own).
_LOSSES = {
    "logloss", "binarylogloss", "multilogloss", "mlogloss", "crossentropy", "xentropy", "multiclass",
    "multiclassova", "binary",
}  # fmt: skip
_RENAMED = {
    "merror": "error", "binaryerror": "error", "multierror": "error", "aucpr": "pr auc",
    "pre": "precision", "averageprecision": "ap",
}  # fmt: skip

_DARKNET_LAYER = re.compile(r"\bRegion \d+\b")
_DARKNET = re.compile(
    rf"^\s*(\d+):\s*({NUM}),\s*({NUM})\s+avg(?:\s+loss)?,\s*({NUM})\s+rate\b", re.IGNORECASE
)
# YOLACT's `[  0]      10 || B: 5.987 | C: 8.346 | M: 4.250 | S: 1.343 | T: 25.473 ||` (a fork's
# `Epoch:   0 | Iteration     10 || …`):
# each loss by its initial (box, class, mask, prototype, diversity, class existence, semantic
# segmentation, mask IoU), `T` their total
_YOLACT = re.compile(
    rf"^\s*(?:\[\s*(\d+)\]\s+|Epoch:\s*(\d+)\s*\|\s*Iteration\s+)(\d+)\s*\|\|"
    rf"((?:\s*[A-Z]:\s*{NUM}\s*\|)*)\s*T:\s*({NUM})"
)
_YOLACT_PART = re.compile(rf"\b([A-Z]):\s*({NUM})")
_YOLACT_LOSSES = {
    "B": "box", "C": "class", "M": "mask", "P": "prototype", "D": "diversity", "E": "existence",
    "S": "semantic", "I": "mask iou",
}  # fmt: skip
# NGCF / KGAT / LightGCN: `Epoch 0 [188.2s]: train==[664.01=4.39 + 659.53 + 0.10]`, then every few
# epochs `, recall=[0.0765, 0.1558], precision=[…], hit=[…], ndcg=[…]` (one value per cut-off)
_NGCF = re.compile(rf"^\s*Epoch\s+(\d+)\s+\[[\d.]+s(?:\s*\+\s*[\d.]+s)?\]:\s*train==\[({NUM})(?:=[^\]]*)?\]")
_AT_CUTOFFS = re.compile(rf"\b([A-Za-z]\w*)=\[\s*({NUM})(?:\s*,\s*{NUM})*\s*\]")
_GAN_HEAD = re.compile(r"\(epoch:\s*\d+,\s*iters:\s*(\d+)[^)]*\)", re.IGNORECASE)
# Trax's training.Loop: `Step    100: train CrossEntropyLoss |  5.27`, `Step    100: eval  Accuracy |  0.85`
_TRAX = re.compile(rf"^\s*Step\s+(\d+):\s+(train|eval)\s+([A-Za-z]\w*)\s*\|\s*({NUM})\s*$")

# DeepXDE: the step, then its training terms and (but in L-BFGS' rows) its test terms and metrics, in lists
_TERMS = rf"\[\s*({NUM}(?:\s*,\s*{NUM})*)\s*\]"
_DEEPXDE = re.compile(rf"^\s*(\d+)\s+{_TERMS}(?:\s+{_TERMS}\s+\[[^\]]*\])?\s*$")
_DEEPXDE_HEAD = re.compile(r"^\s*Step\s+Train loss\s+Test loss\s+Test metric\s*$")  # only under it
# ...and the best step's readings again after training, under `Best model at step 700:`: no new reading
_DEEPXDE_BEST = re.compile(r"^\s*Best model at step \d+:\s*$")
_DEEPXDE_BEST_LINE = re.compile(r"^\s+(?:train loss|test loss|test metric):")
# an evaluation reported only as better or not (the whole line: Keras' `Epoch 3: val_loss improved
# from 0.5 to 0.4, saving model to …` is its checkpoint's, beside the epoch's own readings)
_IMPROVED = re.compile(
    rf"^\s*([A-Za-z][A-Za-z ]{{0,40}}?)\s+(?:is\s+)?improved\s+from\s+({NUM}|[-+]?inf)\s+to\s+({NUM})\s*$",
    re.IGNORECASE,
)
_NOT_IMPROVED = re.compile(
    rf"^\s*([A-Za-z][A-Za-z ]{{0,40}}?)\s+({NUM})\s+is\s+not\s+improved\s*$", re.IGNORECASE
)

Read = tuple[dict[str, float], dict[str, float]]  # (metrics, axes)


def _round_fields(rest: str) -> list[tuple[str, str, str]] | None:
    """(data set, metric, value) of each field after a round's `[12]`, when every field is one (a
    line such as `[3] epoch-time:12 loss=0.5` is no boosting round: the console reader reads it)."""
    fields = [f for f in _FIELDS.split(rest.strip()) if f]
    out = []
    for field in fields:
        m = _LGB.fullmatch(field) or _XGB.fullmatch(field)
        if m is None:
            return None
        out.append((m.group(1), m.group(2), m.group(3)))
    return out or None


def _metric(raw: str) -> str:
    """A boosting metric's name in the shared vocabulary (`ndcg@10` stays apart from `ndcg@5`)."""
    base, _, at = raw.partition("@")
    key = base.lower().replace("_", "").replace("-", "")
    name = _RENAMED.get(key, base)
    if key in _LOSSES:
        return "loss"
    if key in HIGHER_BETTER or is_metric_name(name):
        return f"{name} at {at}" if at else name
    return f"{raw} loss"


def _summed(terms: str) -> float:
    """A list of a loss's terms (`8.75e-03, 9.49e-03`) as the loss: their sum."""
    return logged(sum(float(t) for t in terms.split(",")))


def _trax_metric(name: str) -> str:
    """A Trax metric's layer name as a reading, kept as the log prints it when the shared vocabulary
    knows it (`CrossEntropyLoss`); its other loss layers (`CrossEntropyLossWithLogSoftmax`,
    `WeightedCategoryCrossEntropy`) are the loss, its accuracies the accuracy (`SequenceAccuracy` its
    own)."""
    low = name.lower()
    if normalise(name).endswith(("_loss", "_acc")):
        return name
    if "loss" in low or "crossentropy" in low:
        return "loss"
    if low.endswith("accuracy"):
        return "sequence accuracy" if "sequence" in low else "accuracy"
    return name


class ToolLines:
    """The shapes above, with what a boosting log needs across lines: the held-out sets' order and
    whether a CatBoost score goes up."""

    def __init__(self) -> None:
        self.sets: dict[str, str] = {}  # a boosting log's data set name -> its stage
        self._again = False  # the next round printed is the kept one, printed again
        self._up = 0  # CatBoost rounds whose best reading was above the latest: higher is better
        self._down = 0  # ...below it: lower is better
        self._first: float | None = None  # the first set's first reading, and its latest
        self._last: float | None = None
        self._columns: set[str] = set()  # the columns CatBoost's lines made (none: no CatBoost line)
        self._reported: dict[str, str] = {}  # an improvement report's column -> the name it printed
        self._better = [0, 0]  # its improvements that went down, up
        self._best_block = False  # under DeepXDE's `Best model at step N:`
        self._deepxde = False  # DeepXDE's table heading was seen: `N  [terms]` lines are its rows

    def skip(self, segment: str) -> bool:
        """Whether the line is no reading of the run's: a darknet layer's, the round early stopping
        kept (printed again), or its heading; DeepXDE's best step's readings printed again."""
        if _BEST_AGAIN.search(segment):
            self._again = True
            return True
        if _DEEPXDE_HEAD.match(segment):
            self._deepxde = True
            return True
        if _DEEPXDE_BEST.match(segment) or (self._best_block and _DEEPXDE_BEST_LINE.match(segment)):
            self._best_block = True
            return True
        self._best_block = False
        again, self._again = self._again, False
        round_again = again and bool(_ROUND.match(LOG_PREFIX.sub("", segment, count=1)))
        return bool(_DARKNET_LAYER.search(segment)) or round_again

    def row(self, segment: str) -> Read | None:
        """(metrics, axes) of a line in one of the shapes, else None."""
        message = LOG_PREFIX.sub("", segment, count=1)
        if (r := _ROUND.match(message)) and (fields := _round_fields(message[r.end() :])):
            return self._boosting(float(r.group(1)), fields)
        if (c := _CATBOOST.match(message)) and "total:" in message:
            return self._catboost(float(c.group(1)), message)
        if ngcf := _NGCF.match(message):
            rest = message[ngcf.end() :]
            tested = {f"test {m.group(1)}": logged(m.group(2)) for m in _AT_CUTOFFS.finditer(rest)}
            return {"train loss": logged(ngcf.group(2)), **tested}, {"epoch": float(ngcf.group(1))}
        if self._deepxde and (deepxde := _DEEPXDE.match(message)):
            train, test = (deepxde.group(i) for i in (2, 3))
            losses = {"train loss": _summed(train), **({"test loss": _summed(test)} if test else {})}
            return losses, {"step": float(deepxde.group(1))}
        if yolact := _YOLACT.match(message):
            parts = {
                f"{_YOLACT_LOSSES[m.group(1)]} loss": logged(m.group(2))
                for m in _YOLACT_PART.finditer(yolact.group(4))
                if m.group(1) in _YOLACT_LOSSES
            }
            axes = {"epoch": float(yolact.group(1) or yolact.group(2)), "step": float(yolact.group(3))}
            return {"loss": logged(yolact.group(5)), **parts}, axes
        if dark := _DARKNET.match(segment):
            loss, lr = logged(dark.group(2)), logged(dark.group(4))
            return {"loss": loss, "lr": lr}, {"step": float(dark.group(1))}
        if trax := _TRAX.match(message):
            return {f"{trax.group(2)} {_trax_metric(trax.group(3))}": logged(trax.group(4))}, {
                "step": float(trax.group(1))
            }
        if better := _IMPROVED.match(message) or _NOT_IMPROVED.match(message):
            return self._report(better)
        if head := _GAN_HEAD.search(segment):
            rest = segment[head.end() :]
            losses = {f"{m.group(1).split()[-1]} loss": logged(m.group(2)) for m in pairs(rest)}
            return losses, {"step": float(head.group(1))}
        return None

    def _report(self, m: re.Match[str]) -> Read:
        """An evaluation reported as improved (from, to) or not (its value): read as a loss until its
        improvements show higher is better (`finish` renames it then)."""
        name = m.group(1).strip()
        column = f"{stage_of(name) or 'val'} loss"
        self._reported[column] = name
        if m.re is _IMPROVED and "inf" not in m.group(2).lower():
            self._better[float(m.group(3)) > float(m.group(2))] += 1
        return {column: logged(m.groups()[-1])}, {}

    def _stage(self, name: str, names: list[str]) -> str | None:
        """A data set's stage: training when its name says so (sklearn's XGBoost names the sets it
        is given `validation_0`, `validation_1`…: the first of several is the training set, as in
        `eval_set=[(X_train, y_train), (X_val, y_val)]`), else the first held-out set is validation
        and the second test; any more are left out."""
        if name not in self.sets:
            toks = set(tokens(name))
            sklearn_first = name == "validation_0" and "validation_1" in names
            held_out = [s for s in self.sets.values() if s != "train"]
            self.sets[name] = (
                "train" if toks & (TRAIN | {"learn"}) or sklearn_first
                else ("val", "test", "")[min(len(held_out), 2)]
            )  # fmt: skip
        return self.sets[name] or None

    def _boosting(self, step: float, pairs: list[tuple[str, str, str]]) -> Read:
        names = [s for s, _, _ in pairs]
        values = {
            f"{stage} {_metric(metric)}": logged(v)
            for s, metric, v in pairs
            if (stage := self._stage(s.strip(), names))
        }
        return values, {"step": step}

    def _catboost(self, step: float, message: str) -> Read:
        pairs = _CATBOOST_SET.findall(message)
        names = [s for s, _ in pairs]
        values = {f"{stage} loss": logged(v) for s, v in pairs if (stage := self._stage(s, names))}
        tests = [logged(v) for s, v in pairs if s.startswith("test")]
        if (best := _CATBOOST_BEST.search(message)) and tests:
            self._up += logged(best.group(1)) > tests[0]
            self._down += logged(best.group(1)) < tests[0]
        if pairs:
            self._last = logged(pairs[0][1])
            self._first = self._last if self._first is None else self._first
        self._columns.update(values)
        return values, {"step": step}

    def _catboost_up(self) -> bool:
        """Whether CatBoost's metric is better higher: its best reading was above a later one more
        often than below; when it never differed (each round the best so far), whether the readings
        rose (a boosted model's training reading, and mostly its held-out one, improves overall)."""
        if self._up != self._down:
            return self._up > self._down
        return self._first is not None and self._last is not None and self._last > self._first

    def finish(self, cols: Columns) -> list[str]:
        """Name CatBoost's readings and an improvement report's (their lines do not say the metric)
        and say what was read."""
        notes = []
        up = self._better[1] > self._better[0]
        for column, name in self._reported.items():
            if up and column in cols.names:
                cols.rename(column, column.removesuffix(" loss") + " score↑")
            notes.append(
                f"`{name}` is reported only as improved or not: it improves as it "
                f"{'rises, so it is read as a score (↑)' if up else 'falls, so it is read as the loss'}"
            )
        return notes + self._boosting_notes(cols)

    def _boosting_notes(self, cols: Columns) -> list[str]:
        """Name CatBoost's readings, and say which set of a boosting log is which."""
        if self._columns and self._catboost_up():
            for old in [c for c in cols.names if c in self._columns]:
                cols.rename(old, old.removesuffix(" loss") + " score↑")
            return ["CatBoost's lines do not name their metric: its `best` reading shows higher is better, "
                    "so it is read as a score (↑)"]  # fmt: skip
        if self._columns:
            return ["CatBoost's lines do not name their metric: it is read as the loss (the objective's, "
                    "unless an eval_metric was set)"]  # fmt: skip
        if not self.sets:
            return []
        trained = [s for s, stage in self.sets.items() if stage == "train"]
        held_out = [s for s, stage in self.sets.items() if stage in ("val", "test")]
        note = "each boosting round is a step; " + (
            f"`{trained[0]}` is the training set" if trained else "no training set was evaluated"
        )
        note += f", `{held_out[0]}` the validation set" if held_out else ""
        note += f", `{held_out[1]}` the test set" if len(held_out) > 1 else ""
        return [note]
