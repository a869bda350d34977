"""Plain console output, read line by line (a 100k-line log never sits in memory as lines).

Understood, in any mix:
- Keras: an `Epoch 3/20` line, then a progress line `32/32 [====] - 0s - loss: 0.41 - val_loss: 0.58`
  (its later updates of the same epoch replace the earlier ones: the last is the epoch's figure);
- key/value text in any casing and spacing: `epoch 3 | step 1200 | loss 0.41`, `step=1200 loss=0.41
  lr=1e-3`, `avg loss so far is 0.41`, `train loss 1.27 (seg loss 0.55)` (a loss or accuracy needs no
  separator), `Epoch 12 TrainLoss=0.41 ValLoss=0.58`, `Train Loss=0.07, Val Loss=0.08`, `val loss: 0.3`
  (a name may be up to three words: the words before the last one are kept when they are not prose);
- lines that begin with a tag or a timestamp (`[train] …`, `[INFO] …`, `2026-11-02 10:00:01,123 - …`):
  a stage tag (`[train]`, `[valid]`, `[eval]`, `[test]`, fairseq's `[train_inner]`) is the stage of the
  line's names that say none;
- a JSON object inside a line (inlinejson; fairseq's `[train_inner][INFO] - {"loss": "0.26", …}`), numbers as
  strings included;
- records spread over lines: a line with only a step or epoch (`[step=10/10000,epoch=0]`) opens a
  record that the following lines' values belong to;
- logger tables (OpenAI baselines, Stable-Baselines3, improved-diffusion): rows `| loss | 0.02 |`
  between rules of dashes, one record per table, its `step` / `total_timesteps` row the step;
- tables drawn with pipes (pipetable): Markdown's `| Epoch | Train Loss |` over `|---|---|` (a model
  card's training results, detectron2's evaluation), rich's box-drawn ones;
- lines in the shape one tool prints (toolshapes): XGBoost's, LightGBM's and CatBoost's boosting rounds,
  darknet's YOLO training lines, pytorch-CycleGAN-and-pix2pix's loss_log.txt;
- tqdm bars with a postfix: `Epoch 2: 100%|████| 938/938 [00:12<00:00, 75.1it/s, loss=0.41]` (a
  captured bar's updates are separated by carriage returns; each update is one reading).
A `name: value` pair counts only when its name is a metric (names.is_metric_name), so `ETA: 3s`,
`v_num=0`, timings or settings printed in a config dump are never taken for one; a GAN's losses named
by their networks alone (`D=2.29, G=0.01` on one line) are those networks' losses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from assistant.runs.parse.carry import StageCarry
from assistant.runs.parse.endings import RunEnd
from assistant.runs.parse.finish import finish
from assistant.runs.parse.flower import flower_history
from assistant.runs.parse.headed import HeadedRows
from assistant.runs.parse.lines import (
    EPOCH,
    LOG_PREFIX,
    NUM,
    STEP,
    UNSIGNED,
    joined_dicts,
    joined_pairs,
)
from assistant.runs.parse.listed import curves_in, extends, listed_columns
from assistant.runs.parse.loggertable import TABLE_RULE, LoggerTable
from assistant.runs.parse.lone import LoneEpoch
from assistant.runs.parse.names import (
    is_metric_name,
    normalise,
    rewarding,
    stage_of,
    tokens,
)
from assistant.runs.parse.pipetable import PipeTable
from assistant.runs.parse.readings import line_readings, without_best_counter
from assistant.runs.parse.restarts import OpeningLines, shape_of
from assistant.runs.parse.rewrites import (
    plain_text,
    ungroup_stages,
    unquote_readings,
    unslash_readings,
    unwrap_numbers,
)
from assistant.runs.parse.stages import line_stage
from assistant.runs.parse.table import DEFAULT_LIMITS, Columns, Limits, Run, logged
from assistant.runs.parse.toolshapes import ToolLines
from assistant.runs.parse.unnamed import UNNAMED, bare_numbers, numbers_alone

# a Keras callback's message (`Epoch 00005: early stopping`, `Epoch 00012: ReduceLROnPlateau …`): its
# number is 0-based in Keras 1, 1-based in Keras 2, and the epoch's own line has said which epoch it is
_CALLBACK = re.compile(r"^\s*Epoch \d{5}:")
# an agent's `Episode 100`; `ep 0025` only on a line that names a reward (the GDRL book's `ep 0025,
# step 000338, last ep rew 011`): elsewhere `ep 3` is as often an epoch
_EPISODE = re.compile(r"\bepisode\b\s*(?:[:=#]\s*)?(\d+)", re.IGNORECASE)
_EP = re.compile(r"\bep\b\s*(?:[:=#]\s*)?(\d+)", re.IGNORECASE)
_COUNTER = re.compile(r"(?<![\w./])(\d+)/(\d+)\s*(?:\[|━|\|)")  # a progress bar's `938/938 [`
# the PyTorch ImageNet example's (and timm's, DeiT's, Swin's) summary of an evaluation: ` * Acc@1 76.1 …`
_SUMMARY = re.compile(r"^\s*(?:\*|==>)\s+\w")
# ...but an arrowed line naming its epoch or step is a record of its own (`==> Epoch 3 loss: 1.1`)
_ARROWED_RECORD = re.compile(r"^\s*==>.*\b(?:epoch|step|iter|iteration)\b", re.IGNORECASE)
_COUNT_OF = re.compile(r"\s*/\s*\d")  # a count's total after it: `050/156`
# an evaluation's progress line as the ImageNet example's AverageMeter prints it, each reading with
# its running average in brackets (`Test: [190/196] Loss 1.31 (1.52) Acc@1 71.9 (76.0)`): the average
# is the evaluation's so far (the last printed is its result), the other number one batch's
_BATCH_OF = re.compile(r"\[\s*(\d+)\s*/\s*(\d+)\s*\]")
# (a batch's value may be negative, so may its average; a `+` in brackets is a change, not an average)
_AVERAGED = re.compile(rf"(?<![\w.-])-?{UNSIGNED}\s*\(\s*(-?{UNSIGNED})\s*\)(?!\s*%)")
# a line that records the best reading so far and nothing else (TLlib's `best_acc1 = 76.11637` after its
# last epoch): an evaluation that follows with that very value is the best checkpoint's again
_BEST_RECORD = re.compile(rf"^best[_-]?[A-Za-z][\w@]*\s*[=:]\s*({NUM})\s*$", re.IGNORECASE)
# A scheduler announcing its new rate in prose: PyTorch's `Adjusting learning rate of group 0 to
# 1.0000e-04.`, Keras' `Epoch 00012: ReduceLROnPlateau reducing learning rate to 0.0001.`, Informer's
# `Updating learning rate to 5e-05`.
_LR_TO = re.compile(
    r"\blearning[ _]rate\b(?:\s+of\s+group\s+\d+)?\s+to\s+(\d*\.?\d+(?:[eE][-+]?\d+)?)", re.IGNORECASE
)  # its number may end the sentence: `1.0000e-04.`


def read_console(lines: Iterable[str], name: str, limits: Limits = DEFAULT_LIMITS) -> Run:
    cols = Columns(limits.max_metrics)
    epoch: float | None = None
    record_step: float | None = None  # a step a line announced on its own: the record's
    record_epoch: float | None = None  # ...and the epoch it was announced in (a new one ends the record)
    offset, last_count = 0, 0  # a bar without epochs restarts its counter: steps keep counting
    row_epoch_key: float | None = None  # the epoch the last row belongs to when it has no step
    row_bar: str | None = None  # the length of the progress bar that line drew (Keras' `1719/1719 [`)
    row_validated = False  # that row holds its epoch's validation readings
    held_bar: str | None = None  # the length of the last bar of its own over held-out data read
    unnamed = Columns(1)  # readings without a name, kept until a named metric turns up
    bare: list[list[float]] = []  # lines of several numbers alone, likewise
    table = LoggerTable()
    headed = HeadedRows()
    drawn = PipeTable()
    tools = ToolLines()
    counts = HeldOutCount()
    listed: dict[str, list[float]] | None = {}  # curves printed whole (a Keras history's lists)
    lone = LoneEpoch(limits.max_metrics)  # a run of one epoch, point by point

    def add_table() -> None:
        if (found := table.record()) and found[2]:
            cols.add(*found)

    opening = OpeningLines()  # where the runs of an appended log start (finish asks the loss to start again)
    read = False  # a reading other than a learning rate was logged
    last_stage: str | None = None
    summed = False  # an evaluation summary line (` * Acc@1 …`) was seen
    carry = StageCarry()  # the stage lines that say none take from a line or a heading before them
    ending = RunEnd()
    heard: str | None = None  # the line that announced the epoch on its own (`Epoch 3/20`), as a shape
    row_heard: str | None = None  # ...when the last row was added
    reopened = False  # an epoch the last row was announced with is announced again since its last reading
    best: float | None = None  # after a line of the best reading alone, before training goes on
    for line in joined_pairs(joined_dicts(flower_history(lines))):
        line = ungroup_stages(unslash_readings(unquote_readings(unwrap_numbers(plain_text(line)))))
        message = LOG_PREFIX.sub("", line, count=1)
        stage = line_stage(line, message)
        line_stage_own = stage
        if stage is None and _SUMMARY.match(message) and not _ARROWED_RECORD.match(message):
            # ` * Acc@1 76.1 Acc@5 92.9` (Distiller's `==> Top1: 45.9 … Loss: 1.160`) sums up the
            # evaluation lines before it, staged by their own words or by their heading
            stage = last_stage or carry.stage
            summed = True  # the log sums up its evaluations: a first batch alone is not one
        last_stage = stage
        counted = without_best_counter(message)
        named_epoch = EPOCH.search(counted)
        at_axis = bool(named_epoch or STEP.search(counted))
        other_epoch = bool(named_epoch) and float(named_epoch.group(1)) != epoch
        carried = carry.before(message, line_stage_own, other_epoch, at_axis)
        stage = stage or carried
        if record := _BEST_RECORD.match(message.strip()):
            best = float(record.group(1))  # the best reading so far, recorded on a line of its own
            continue
        if best and (stage in ("val", "test") or _SUMMARY.match(message)) and best in _numbers(message):
            continue  # TLlib's `best_acc1 = 76.1`, then the best model's ` * Acc@1 76.1`: no epoch's reading
        # ...until training goes on: another epoch, a counter outside an evaluation, a training line
        best = None if other_epoch or at_axis or stage == "train" else best
        if stage in ("val", "test") and (batch := _BATCH_OF.search(message[:40])):
            first = batch.group(1).lstrip("0") == "" and int(batch.group(2)) > 1 and not at_axis
            if first and summed:
                continue  # its first batch (`Test: [ 0/25]`), then its summary: one batch's readings
            line = _AVERAGED.sub(r"\1", line)
        readings = 0  # how many of the line's readings were read
        segments = line.split("\r")
        line_start = segments[0]  # a print of its own, not a progress bar's rewrite of it
        for segment in segments:
            if not segment.strip():
                continue
            if listed is not None and (whole := curves_in(segment)):
                if extends(listed, whole):
                    listed.update(whole)  # curves printed whole, one a line: read if nothing else is
                    continue
                listed = None  # lists printed again and again under one name: no whole curves
            if table.feed(segment):
                if TABLE_RULE.match(segment):
                    add_table()  # a rule closes the table before it (and opens the next)
                continue
            if table.open:
                add_table()
                table.open = False
            if tools.skip(segment) or headed.header(segment) or drawn.feed(segment):
                continue
            values, axes = (
                headed.row(segment)
                or drawn.row(segment)
                or tools.row(segment)
                or line_readings(segment, stage)
            )
            announced = not values and (lr := _LR_TO.search(segment)) is not None
            if announced:
                values = {"lr": logged(lr.group(1))}
            readings += len(values)
            ending.feed(segment, read, cols)
            ending.rename(values)
            counters = without_best_counter(segment)  # the counters that say when the line was written
            # ...and those that must open a line, after a logger's prefix (`… - INFO - Round 3, loss …`):
            # the line's message, worked out above, when the segment is the whole line; asked only when
            # it differs from the segment (a prefix came off)
            opened = (
                counted if segment == line else without_best_counter(LOG_PREFIX.sub("", segment, count=1))
            )
            after_prefix = (opened,) if opened != counters else ()
            named = _search(EPOCH, counters, *after_prefix)
            if "epoch" in axes:
                epoch, heard = axes["epoch"], None
            elif named and not _CALLBACK.match(segment):
                held = any(stage_of(k) in ("val", "test") for k in values)
                epoch, heard = (
                    counts.epoch(float(named.group(1)), held, epoch),
                    None if values else shape_of(segment),
                )
            s = _search(STEP, counters, *after_prefix) if "step" not in axes else None
            if (
                s
                and stage in ("val", "test")
                and named
                and "[" in named.group(0)
                and _COUNT_OF.match(s.string, s.end())
            ):
                s = None  # an evaluation's batch counter (pt.darts' `Valid: [ 3/50] Step 050/156`)
            step = axes.get("step", float(s.group(1)) if s else None)
            if ep := _EPISODE.search(segment) or (
                any(rewarding(set(tokens(k))) for k in values) and _EP.search(segment)
            ):  # an agent's episodes: its axis, and a score is its return
                step = float(ep.group(1)) if step is None and "epoch" not in axes else step
                values = {(f"episode {k}" if "score" in tokens(k) else k): v for k, v in values.items()}
            settings = all(normalise(k) == "lr" for k in values)  # text, or a config dump's `lr=3e-5`
            if settings and not announced and step is None and "epoch" not in axes:
                opening.feed(segment, read, cols.n)
            read = read or not settings
            if not values:
                # the line the last row's epoch was announced with, printed again for that epoch (a
                # script whose epoch counter is stuck, Keras' `Epoch 1/1` of fit() called in a loop):
                # readings that repeat the row's are a new print of it. Not another line naming the
                # epoch (`Epoch 1 done, saving`), nor an epoch's summary under its heading after its
                # progress bar named it (`Epoch 1: 100%|…` then `Epoch 1` and its readings).
                reopened = reopened or bool(
                    cols.n
                    and named
                    and row_heard
                    and epoch == row_epoch_key
                    and shape_of(segment) == row_heard
                )
                if step is None and epoch != record_epoch:
                    record_step = None  # a new epoch ends the record (a demo's `Time step 2 =>` before a fit)
                if step is not None:
                    record_step, record_epoch = step, epoch  # the values on the next lines belong to it
                elif cols.n <= 1 and (u := UNNAMED.match(segment)):
                    counter = float(u.group(2)) if u.group(2) and not u.group(1) else None  # (not an epoch's)
                    unnamed.add(epoch, counter, {"loss": logged(u.group(3))})
                elif cols.n <= 1 and (numbers := numbers_alone(LOG_PREFIX.sub("", segment, count=1))):
                    bare.append([logged(v) for v in re.findall(NUM, numbers, re.IGNORECASE)])
                continue
            again, reopened = reopened and _repeats(cols, values), False
            if step is None and record_step is not None:
                if (
                    sum(map(is_metric_name, values)) > 1  # readings printed again, not a setting (`IoU=0.75`)
                    and not settings
                    and epoch is None
                    and cols.n
                    and cols.step[-1] == record_step
                    and _repeats(cols, values)
                ):
                    record_step = None  # its readings are in: the record is over (an estimator's
                    # `global_step = 44000` summary, then another run's lines that say no step)
                else:
                    step = record_step
            elif step is not None and record_step is not None:
                record_step = step  # a line with a step of its own starts the record the next lines add to
            if (
                carry.under_heading()
                and line_stage_own is None
                and cols.n
                and epoch is not None
                and epoch == cols.epoch[-1]
                and all(stage_of(k) in ("val", "test") for k in values)
            ):
                # an evaluation under its heading, in the epoch of the last row: that epoch's held-out
                # readings (its `step 2/2` counts the evaluation's batches, not training's steps)
                cols.update_last(epoch, values)
                row_validated = True
                continue
            bar = _COUNTER.search(segment)
            if step is None and epoch is None:
                if c := bar:
                    count = int(c.group(1))
                    if count < last_count:
                        offset += last_count
                    last_count = count
                    step = float(offset + count)
                elif cols.n and all(stage_of(k) in ("val", "test") for k in values):
                    step = cols.step[-1]  # an evaluation after a training step, on that step (OpenNMT's
                    # `Validation perplexity: 27.3` after `Step 5000/100000; acc: …`)
                    if (
                        math.isnan(step)
                        and math.isnan(cols.epoch[-1])
                        and all(math.isnan(cols.last(k)) for k in values)
                    ):  # neither line says when: `Valid Loss: 4.8` under `Train Loss: 5.0` is its row's
                        cols.update_last(None, values)
                        continue
            held_out = any(stage_of(k) in ("val", "test") for k in values)
            # a record that carries its own epoch printed again with new readings (the Trainer's
            # `{'loss': …, 'epoch': 0.01}` every few steps, its epoch rounded to two decimals) is the
            # next print, not an update of the last
            again = again or (segment.lstrip().startswith("{") and "epoch" in axes and _repeats(cols, values))
            if step is None and epoch is not None and cols.n and row_epoch_key == epoch and not again:
                own = bar is not None and held_out and bar.group(2) != row_bar  # a held-out bar of its own
                if bar and (
                    (own and held_bar not in (None, bar.group(2)))
                    or (not held_out and ((row_bar and bar.group(2) != row_bar) or row_validated))
                ):
                    continue  # evaluate() after the fit: a bar of another length than the epochs'
                    # own (over the training set, or over the validation set when a bar of its own
                    # says so: segmentation_models' `valid: …| 101/101 [`), or one after the epoch's
                    # validation (Keras prints an epoch's line with its validation last)
                if own:
                    held_bar = bar.group(2)
                if cols.n == 1 and not bar and segment is line_start and _repeats(cols, values):
                    lone.printed(epoch, values)  # the first epoch printed again
                elif bar:
                    lone.updated(cols, epoch, float(bar.group(1)), values)  # the first epoch's bar
                cols.update_last(epoch, values)  # a later update or the validation line of this epoch
                row_validated = row_validated or held_out
                continue
            if (
                step is not None
                and cols.n
                and step == cols.step[-1]
                and step == record_step
                and (epoch is None or math.isnan(cols.epoch[-1]) or epoch == cols.epoch[-1])
            ):
                cols.update_last(epoch, values)  # another line of the same record (not the next epoch's
                continue  # record at the same count: `Epoch 1: iteration 106/107` every epoch)
            cols.add(epoch, step, values)
            if step is None:
                lone.added(cols, epoch, float(bar.group(1)) if bar else None, values)
            row_epoch_key = epoch if step is None else None
            row_heard = heard
            row_bar = bar.group(2) if bar else None
            row_validated = held_out
        carry.after(message, line_stage_own, at_axis, readings)
    add_table()
    if run := lone.run(cols, name):
        return run
    if cols.n <= 1 and unnamed.n > 1:  # one named reading (a sanity check's `loss 7.34`) is no curve
        named = "no metric" if not cols.n else "metrics on one line only"
        note = (
            f"the log names {named}: the number printed alone on {unnamed.n} lines "
            "(after a step counter, or under an epoch line) is read as the training loss"
        )
        return finish(unnamed, "console", name, [note])
    if cols.n <= 1 and listed:  # (None once lists repeated under one name)
        note = f"each curve is printed whole on one line ({', '.join(listed)}): read as one point per epoch"
        return finish(listed_columns(listed, limits.max_metrics), "console", name, [note])
    if cols.n <= 1 and (run := bare_numbers(bare, name)):  # (beside a settings line's `lr` at most)
        return run
    changed = opening.loss_changed
    return ending.finish(finish(cols, "console", name, tools.finish(cols), opening.starts, changed), cols)


class HeldOutCount:
    """Whether a log's evaluation lines count epochs from 0 while its training lines count from 1
    (AdaHessian's `epoch 1/200: 100%|…| c_loss: 1.337` bar, then `Testing Acc at epoch 0: 0.48`):
    decided at the first evaluation line (at epoch 0, or every fifth epoch at 4), when the training
    lines began at epoch 1 and it names the epoch before theirs. Read as they print, each evaluation
    would go back an epoch: a restart."""

    def __init__(self) -> None:
        self.first: float | None = None  # the first epoch a line named
        self.shift: float | None = None  # what the evaluation lines' epochs are behind by, once known

    def epoch(self, named: float, held: bool, current: float | None) -> float:
        """The epoch a line that names `named` belongs to; `held`: its readings are held-out ones."""
        if self.first is None:
            self.first = named
        if held and self.shift is None:
            self.shift = float(self.first == 1 and current is not None and named == current - 1)
        return named + (self.shift or 0.0) if held else named


def _numbers(text: str) -> set[float]:
    """The numbers a line prints (the nonzero ones: a zero is no best value to meet again)."""
    return {v for m in re.finditer(NUM, text) if (v := float(m.group(0))) and math.isfinite(v)}


def _repeats(cols: Columns, values: dict[str, float]) -> bool:
    """Every reading of the line is already in the last row: the line prints that row again."""
    return all(not math.isnan(cols.last(k)) for k in values)


def _search(pattern: re.Pattern[str], *texts: str) -> re.Match[str] | None:
    """The first of the texts the pattern is found in, searched in order."""
    return next((m for text in texts if (m := pattern.search(text))), None)
