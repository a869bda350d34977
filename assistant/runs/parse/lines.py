"""What a console line is made of, whatever wrote it: numbers and `name: value` pairs (NUM, PAIR),
the epoch and step it names (EPOCH, STEP) and the prefix a logger writes before the message
(LOG_PREFIX). The stage a line reports is read in stages.py; what a line is rewritten into before its
pairs are read, in rewrites.py."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from assistant.runs.parse.names import is_metric_name, normalise, stage_of

# not followed by a letter, a digit or a dot that goes on (`1.2.3` is a version), save decibels written
# onto it (KAIR's `Average PSNR : 27.86dB`); a full stop or an ellipsis may end it (`Discriminator
# Loss: 0.3907... Generator Loss: 3.4972`)
UNSIGNED = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"  # a number's digits, without its sign
NUM = rf"[-+]?(?:{UNSIGNED}|nan|inf(?:inity)?)(?:(?=dB\b)|(?!\w|\.\w))"
# a cell that is a number and nothing else (its digits split one way only: `\d+\.?\d*` tried every split
# of a long run of them)
COUNT = re.compile(r"^(\d+)\s*/\s*\d+$")  # `3/299`: an epoch (or batch) counter with its total
NUMBER = re.compile(r"^[-+]?(\d+(?:\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_NAME_CHAR = r"[\w./()-]"  # what a name goes on with, after its first letter
# ...and a cut-off `@10` or `@0.05` (`NDCG@10`, a keypoint's `PCK@0.05`), not COCO's `mAP@0.5:0.95`,
# whose digits run on; a range of them after an underscore's number, where the reading's own colon
# follows (mmaction2's `mAP/v_map_0.05:0.45: 55.1`: the name is `v_map_0.05:0.45`, not `v_map_0.05`
# with a reading of 0.45)
_RANGE = r"(?<=\d):(?:\d+(?:\.\d+)?|\.\d+)(?=\s*:)"  # digits one way only: linear on a long run of them
WORD = rf"[A-Za-z](?:{_NAME_CHAR}|@\d+(?![\d.])|@\d+\.\d+(?![\d.]|:[\d.])|{_RANGE})*"
# `loss: 0.41`, `loss=0.41`, `avg loss so far is 0.41`, and a name with a remark in brackets after it,
# N-BEATS' `tr_loss (epoch) = 1.776`: the remark stays in the name, where it may say the stage (`Loss
# (val)`) or tell two readings apart (`PSNR (Y)`, `PSNR (RGB)`); `normalise` drops what says nothing
PAIR = re.compile(
    rf"(?<![A-Za-z0-9.])((?:{WORD}[ \t]+){{0,2}}{WORD}(?:[ \t]+\([A-Za-z][A-Za-z ]{{0,19}}\))?)"
    rf"\s*(?:[:=]|[ \t]is[ \t])\s*({NUM})",
    re.IGNORECASE,
)
# where a name may begin, and the run of characters it may go on with
_NAME_START = re.compile(r"(?<![A-Za-z0-9.])[A-Za-z]", re.IGNORECASE)
_NAME_RUN = re.compile(rf"{_NAME_CHAR}+")
# a run long enough to be read run by run: searching the pattern costs up to a run's length per start
_LONG_NAME_RUN = re.compile(rf"(?<!{_NAME_CHAR}){_NAME_CHAR}{{32}}")
HELD_WORDS = "test|val|valid|validation|eval|evaluation|dev"  # the words of a held-out stage
# `Epoch 3/20`, `epoch=3`, `Epoch5,`, the PyTorch ImageNet example's `Epoch: [3][10/50]`, PyHealth's
# `--- Eval epoch-0, step-241 ---` (not a file's `epoch-3.pt`), a ruled heading's `------ Training
# epochs: 3 ------` (not a settings line's `epochs: 400`, the run's length); not a
# progress bar's percentage (tqdm's `Epoch:  50%|█████     | 1/2`, `Iteration:   0%|`: its name, then
# how far it is). A stage word and a count opening a line is the epoch too: DGCNN's (and its many
# forks') `Train 3, loss: 1.85, train acc: 0.79` and `Test 3, loss: 1.74, test acc: 0.83`; and a stage
# word, its colon and a bracketed count with its total before the step: pt.darts' `Train: [ 3/50] Step
# 050/468 Loss 1.2` (not the ImageNet example's `Test: [50/196]`, which counts the evaluation's batches);
# and timm's `Train: 307 [1000/8007 ( 12%)]  Loss: …`, the epoch before its batch count.
EPOCH = re.compile(
    r"(?:\bepoch(?:\b|(?=\d))\s*(?:[:=#]\s*)?(?:\[\s*)?|(?<![\w./-])epoch-(?=\d+(?![\w./-]))"
    r"|^\s*[=*#~-]{3,}\s*train(?:ing)?\s+epochs\s*[:=]\s*(?=\d+\s*[=*#~-]{3,}\s*$)"
    r"|^\s*(?:train|training|test|val|valid|eval)\s+(?=\d+\s*,)"
    r"|^\s*(?:train|training|test|val|valid|eval)\s*:\s*\[\s*(?=\d+\s*/\s*\d+\s*\]\s*step\b)"
    r"|^\s*train\s*:\s*(?=\d+\s+\[\s*\d+\s*/\s*\d+\s*\())"
    r"(\d+)(?!\d)(?![\d.]*%)(?:\s*/\s*\d+)?",
    re.IGNORECASE,
)
# `step 12`, `iter: 12`, `Step [100/600]`, MT-DNN's `Updates - [  500]`, `step-241` (not a name's
# `-step-1431k` or a folder's `step-1000/`),
# DLRM's `Finished training it 100/300 of epoch 0` (`it` with its count and total; not `ms/it`);
# llm.c's `s:12`, federated learning's `Round  5:` (not a tagged outer loop's `[RAR-G] round 2`, over
# epochs, nor prose, `Round 2 of the search`, nor a round beside a step word, `Round 2, Step 300`)
# and a bare `#12, Train loss: 0.03` only at the start of a line or of its message, or a count and its
# total alone between two dashes, Frustum PointNets' ` -- 010 / 9181 --` above its readings (not a
# fold's `===== 2/3 =====`) (each
# separator owns the spaces after it: optional runs of spaces side by side backtrack without end on a
# long blank line)
_STEP_WORDS = r"global[_ ]step|step|iteration|iter|updates"
# A step is counted from 1: TensorFlow's `Loss for final step: 0.4258.` names a loss, not step 0 (a step
# printed with a fraction, `global_step: 100.25`, stays the step it is in).
STEP = re.compile(
    rf"(?:\b(?:{_STEP_WORDS})\b|\bit\b(?=\s*\d+\s*/\s*\d)"
    rf"|^\s*(?:s(?=\s*:)|round\b(?=\s*\d+\s*[,:])(?!.*\b(?:{_STEP_WORDS})\b))"
    r"|^\s*(?=#\d+[,:])|^\s*--(?=\s*\d+\s*/\s*\d+\s*--\s*$)"
    r"|(?<![\w./-])(?:step|iter|iteration)-(?=\d+(?![\w./-])))"
    r"\s*(?:[:=#]\s*|(?<=\s)-\s*)?(?:\[\s*)?(?!0\.0*[1-9])(\d+)(?!\d)(?![\d.]*%)",
    re.IGNORECASE,
)
_LEVELS = "INFO|DEBUG|WARNING|WARN|ERROR|CRITICAL"
# What a logger writes before the message: Python logging's basic format, `INFO:root:` (its logger's
# name may hold spaces, `INFO:dkt log:`, and a level of its own is `Level 25`; not a stage or a counter
# after the level, `INFO:Train: loss 0.3`), `[2026-05-05 17:05:55 swin] (main.py 272): INFO `,
# `2025-06-12 13:31:13,075 - INFO - ` (`… - train: [ INFO] - `), or its time alone (JoeyNMT's
# `2020-02-09 13:10:43,451 `, the RNN tutorial's `2017-10-12 19:42:53: `, a clock's `12:00:01: `): the
# stage word comes first after it; or a time and a bar before words (pt.darts' `04/26 01:42:48 PM | `;
# not a pipe table's time column, `12:00:01 | 1 | 1.000`); or its time in brackets, with the process's
# rank and the file and line after it (pysot's, SiamMask's and their forks': `[2019-08-14
# 22:27:03,518-rk0-train.py#463] `).
LOG_PREFIX = re.compile(
    rf"^\s*(?:{_LEVELS}|Level \d+):"
    rf"(?!(?i:[^:]*\b(?:train|training|{HELD_WORDS})\b|(?:epoch|step|iter|iteration)\b))"
    r"[A-Za-z_][A-Za-z_. -]{0,40}?:(?=[^\s\d.+-])"
    rf"|^.{{0,120}}?\b(?:{_LEVELS})\b(?:[\s:|\]]|-(?![\d.]))*"
    r"|^[IWEF]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\]\s*"  # glog (Caffe): `I0101 10:00:00.000  1234 solver.cpp:9] `
    r"|^\s*(?:\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?:?|\d\d?:\d\d:\d\d(?:[.,]\d+)?:)\s+(?=[A-Za-z])"
    r"|^\s*(?:\d\d?[/-]\d\d?(?:[/-]\d{2,4})?\s+)?\d\d?:\d\d:\d\d(?:[.,]\d+)?(?:\s*[AP]M)?\s*\|\s*(?=[A-Za-z])"
    r"|^\s*\[\d{4}-\d\d-\d\d[ T][\d:.,]+(?:-[^\]\s]{1,80})?\]\s*(?=[A-Za-z])"
)


def named_matches(
    pattern: re.Pattern[str], start: re.Pattern[str], text: str, not_in_last: str = ""
) -> Iterator[re.Match[str]]:
    """`pattern.finditer(text)`, in time linear in the text, for a pattern that begins with names of
    WORD's characters (a run of them), the first starting where `start` matches. A name started
    anywhere in one run ends where the run ends, so what may follow is the same wherever it started:
    only the run's first start needs trying, and, when the pattern's last name may not hold some of
    the run's characters (`not_in_last`), the first start after the last of those. Trying every
    start (`finditer`) took the square of a long token's length (`.a-a-…` or `(a(a…`: seconds for
    32 KB, on lines that come from the user). Runs all shorter than 32 bound that square, and the
    pattern searched for is faster on them (in one call, not one per run)."""
    if not _LONG_NAME_RUN.search(text):
        yield from pattern.finditer(text)
        return
    pos = 0
    for run in _NAME_RUN.finditer(text):
        lo, hi = max(pos, run.start()), run.end()
        if lo >= hi:
            continue  # inside the last match
        first = start.search(text, lo, hi)
        tries = [first.start()] if first else []
        if tries and (cut := max((text.rfind(c, tries[0], hi) for c in not_in_last), default=-1)) >= 0:
            after = start.search(text, cut + 1, hi)
            tries += [after.start()] if after else []
        for at in tries:
            if m := pattern.match(text, at):
                yield m
                pos = m.end()
                break


def pairs(text: str) -> Iterator[re.Match[str]]:
    """The `name: value` pairs in the text (`PAIR.finditer`, linear: see `named_matches`)."""
    return named_matches(PAIR, _NAME_START, text)


def carried_stages(names: list[str]) -> dict[str, str]:
    """The held-out stage a line's readings without one take from a held-out name before them (in
    the order they were found, the line's for `name: value` pairs): `Validation accuracy: 97.1%
    Loss: 0.11` is the validation loss. Not when the line names a training reading, nor for a
    reading whose metric the line also names with a stage (Keras' `val_loss: 0.4 - loss: 0.3`: the
    bare one is training's), nor for the learning rate."""
    stages = {n: stage_of(n) for n in names}
    if "train" in stages.values():
        return {}
    keys = {n: normalise(n) for n in names}
    staged = {keys[n].split("_", 1)[-1] for n, stage in stages.items() if stage}
    held: str | None = None
    out: dict[str, str] = {}
    for name in names:
        key = keys[name]
        if stages[name] in ("val", "test"):
            # a stage written as a word of its own (`Validation accuracy`), not an identifier's prefix
            # (`val_acc 0.8 loss 0.5`: a log naming its readings that way names each one's stage)
            held = stages[name] if " " in name.strip() else None
        elif held and stages[name] is None and key != "lr" and key.split("_", 1)[-1] not in staged:
            out[name] = held
    return out


# a dict pprint printed over several lines (TensorFlow's Object Detection API: `{'Loss/total_loss': 0.93,`
# then ` 'learning_rate': 0.04}`): its opening line, and each line that goes on with it
_DICT_OPENS = re.compile(r"\{'[^{}]*,\s*$")
_DICT_GOES_ON = re.compile(r"^\s+'[^{}]*[,}]\s*$")
_MOST_DICT_LINES = 64


def joined_dicts(lines: Iterable[str]) -> Iterator[str]:
    """The lines, with a dict printed over several of them joined into one (read as the dict it is)."""
    held: list[str] = []
    for line in lines:
        if held and _DICT_GOES_ON.match(line) and len(held) < _MOST_DICT_LINES:
            held.append(line.strip())
            if line.rstrip().endswith("}"):
                yield " ".join(held)
                held = []
            continue
        yield from held
        held = [line] if _DICT_OPENS.search(line) else []
        if not held:
            yield line
    yield from held


# a metric's name alone on its line, its value alone on the next (`print("RMSE:")`, then `print(rmse)`:
# DeepChem's Tox21 notebook prints `TRAIN:`, `RMSE:`, `0.5319`, `ROC AUC:`, `0.7231`, `TEST:`, …)
_NAME_ALONE = re.compile(r"^\s*([A-Za-z][\w .@/-]{0,40}?)\s*:\s*$")
_NUMBER_ALONE = re.compile(rf"^\s*({NUM})\s*$", re.IGNORECASE)


def _reading_alone(line: str) -> bool:
    """A number alone on the line, and no whole one (`Error:` over `2021` is a year, not a reading)."""
    return bool(m := _NUMBER_ALONE.match(line)) and not m.group(1).lstrip("+-").isdigit()


def joined_pairs(lines: Iterable[str]) -> Iterator[str]:
    """The lines, with a metric's name alone on a line and a number alone on the next joined into
    their `name: value` pair, unless another number alone follows (`loss:` over a column of numbers
    names them all, as it did; a stage's heading alone, `TEST:`, is no metric and stays a heading)."""
    held: list[str] = []  # a name alone, then the line of the number alone under it
    for line in lines:
        if len(held) == 1 and _reading_alone(line):
            held.append(line)
            continue
        yield from _released(held, column=_reading_alone(line))
        held = []
        if (m := _NAME_ALONE.match(line)) and is_metric_name(m.group(1)):
            held = [m.group(1)]
        else:
            yield line
    yield from _released(held, column=False)


def _released(held: list[str], column: bool) -> list[str]:
    """What was held back: a name and the number under it as their pair, unless more numbers follow
    (`column`); else the name as it stood, and its number's line."""
    if len(held) == 2 and not column:
        return [f"{held[0]}: {held[1].strip()}"]
    return [f"{held[0]}:", *held[1:]] if held else []
