"""A console line rewritten before its `name: value` pairs are read (lines.py): a reading printed as
the object that holds it or as a list of one, quoted names, names and readings joined by slashes, a
stage's readings grouped after its name, a terminal's escape codes and a tag that counts."""

from __future__ import annotations

import re

from assistant.runs.parse.cjk import translated
from assistant.runs.parse.lines import NUM
from assistant.runs.parse.names import is_metric_name, role

# A reading printed as the object that holds it: PyTorch's `tensor(30.75, device='cuda:0')`,
# TensorFlow's `tf.Tensor(0.41, shape=(), dtype=float32)`, NumPy 2's `np.float64(0.41)`, `array(0.41,
# dtype=float32)`, JAX's `Array(0.41, dtype=float32)`. Only a lone number is unwrapped; a tensor of several
# stays unread.
_WRAPPED = re.compile(
    rf"\b(?:torch\.|tf\.|np\.|numpy\.)?(?:tensor|Tensor|float(?:16|32|64)|int(?:32|64)|[aA]rray)"
    rf"\(\s*({NUM})\s*(?:,(?:[^()]|\([^()]*\))*)?\)"
)
# A reading printed as a list of one, after its name (`loss: [0.63]`, `val Loss [1.13]`, `Loss - [1.6]`):
# a number with a fraction or an exponent, so a counter in brackets (`Epoch [3]`, mmcv's `[12][625]`)
# stays as it is. After ` - ` the pair's separator is the dash. Not after a config key (yacs' dump of
# detectron2's settings: `IOU_THRESHOLDS: [0.5]`).
_LISTED = re.compile(
    r"(?<=[\w)])(\s+-\s+|[\s:=]*)\[\s*([-+]?(?:\d*\.\d+|\d+\.\d*|\d+(?=[eE]))(?:[eE][-+]?\d+)?)\s*\]"
)
# a share worked out after its counts: `2427457/2555718 = 0.9498` (counts of digits alone, then `=`)
_WORKED_OUT = re.compile(rf"(?<![\w.])\d+ ?/ ?\d+ ?= ?({NUM})")
_TICKED = re.compile(rf"`\s*({NUM})\s*`", re.IGNORECASE)  # a number in a Markdown code span
_WORD_BEFORE = re.compile(r"[\w)]+$")


# PyTorch Lightning's ModelCheckpoint: `Epoch 3, global step 8: 'val_loss' reached 0.14260 (best
# 0.14260), saving model to 'checkpoints/epoch=3-step=8-val_loss=0.1426.ckpt' as top 1`
_REACHED = re.compile(rf"'([A-Za-z][\w./-]*)' reached ({NUM})")
# a reading printed as a (name, value) pair: PFRL's and ChainerRL's `statistics: [('average_q', 0.86),
# ('average_loss', 0.18)]`, an OrderedDict's repr `OrderedDict([('loss', 0.34), ('acc', 0.9)])`
_PAIRED = re.compile(rf"\(\s*(['\"])([A-Za-z][\w./-]{{0,60}})\1\s*,\s*({NUM})\s*\)", re.IGNORECASE)
_QUOTED = re.compile(r"(['\"])([^'\"\s]*)\1")
_EXTENSION = re.compile(r"\.[A-Za-z]\w{0,9}$")


def unquote_readings(line: str) -> str:
    """The line with a quoted metric that `reached` a value, or printed as a `('name', value)` pair,
    written as its `name: value` pair, and a quoted file name holding readings taken out: a
    checkpoint's name repeats them rounded (`val_loss=0.1426.ckpt`, or not read at all before its
    extension), and its `epoch=3` counts from 0."""
    if "'" not in line and '"' not in line:
        return line
    line = _PAIRED.sub(r"\2: \3", _REACHED.sub(r"\1: \2", line))

    def named_file(m: re.Match[str]) -> str:
        name = m.group(2)
        path = "/" in name or "\\" in name or _EXTENSION.search(name)
        return m.group(1) * 2 if path and "=" in name else m.group(0)  # empty, in its own quotes

    return _QUOTED.sub(named_file, line)


# several names joined by slashes, then as many readings joined the same way, with the word before the
# names and a heading between them (coral-cnn's `MAE/RMSE/ACC: Current Valid: 3.04/3.68/9.44 Ep. 1 |
# Best Valid: 3.04/3.68/9.44`, `val loss/acc: 0.6/0.42`); a counter is no heading (`loss/acc: Epoch:
# 5/20`)
_SLASHED = re.compile(
    rf"(?<![\w/.])(?:([A-Za-z]+)[ \t]+)?([A-Za-z][\w@]*(?:/[A-Za-z][\w@]*){{1,5}})\s*:\s*(?:\|\s*)?"
    rf"(?:(?!(?:epoch|step|iter|iteration|batch)\b)([A-Za-z][A-Za-z ]{{0,30}}):\s*)?"
    rf"({NUM}(?:\s*/\s*{NUM}){{1,5}})(?![\w/.])",
    re.IGNORECASE,
)


def unslash_readings(line: str) -> str:
    """The line with names joined by slashes and their readings joined alike written as one `name:
    value` pair each, under the word before the names and the heading between them (`MAE/RMSE: |
    Current Valid: 9.49/12.24` -> `Current Valid MAE: 9.49, Current Valid RMSE: 12.24`): read as
    printed, nothing was read; without the heading, a validation reading was read as training's. A
    heading of the best so far is taken out. Names and readings of unlike counts stay as they are."""
    if "/" not in line or ":" not in line:
        return line

    def paired(m: re.Match[str]) -> str:
        names, values = m.group(2).split("/"), [v.strip() for v in m.group(4).split("/")]
        if len(names) != len(values):
            return m.group(0)
        said = " ".join(w for w in (m.group(1), m.group(3)) if w)
        if "best" in said.lower().split():
            return " "  # the best so far (`Best Valid: 5.67/8.00`): no reading of the line's own
        return ", ".join(f"{said} {n}: {v}".strip() for n, v in zip(names, values, strict=True))

    return _SLASHED.sub(paired, line)


# a terminal's colour and cursor codes (`\x1b[94m2.137\x1b[0m`: a Keras callback that prints its readings
# in colour, loguru's coloured levels), and the title a terminal is given (`\x1b]0;…\x07`)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")


# a stage's readings in parentheses after its name: SASRec's (and its forks') `valid (NDCG@10: 0.3052,
# HR@10: 0.4404), test (NDCG@10: 0.2807, HR@10: 0.4297)`
_STAGE_GROUP = re.compile(
    r"\b(train|training|val|valid|validation|eval|evaluation|dev|test)\s*\(([^()]{1,300})\)", re.IGNORECASE
)
_STAGE_DICT = re.compile(
    r"\b(train|training|val|valid|validation|eval|evaluation|dev|test)\s*[=:]\s*\{((?=\s*['\"])[^{}]{1,2000})\}",
    re.IGNORECASE,
)
_READING = re.compile(r"[:=]\s*[-+.\d]")
_DICT_ENTRY = re.compile(rf"\s*(['\"])([A-Za-z][\w./@-]{{0,60}})\1\s*:\s*({NUM})\s*", re.IGNORECASE)


def ungroup_stages(line: str) -> str:
    """The line with a stage's readings grouped in parentheses after its name written each under that
    name (`valid (NDCG@10: 0.31, HR@10: 0.44)` -> `valid NDCG@10: 0.31, valid HR@10: 0.44`): read as
    they print, the held-out set's readings and the test set's fell under one name, a training one.
    Likewise a stage's dict of readings (scGLUE's `[Epoch 10] train={'g_nll': 0.45, …}, val={…}`)."""
    if "(" not in line and "{" not in line:
        return line

    def staged(m: re.Match[str]) -> str:
        if not _READING.search(m.group(2)):
            return m.group(0)  # `valid (NDCG, HR)`: names, no readings
        return ", ".join(f"{m.group(1)} {part.strip()}" for part in m.group(2).split(",") if part.strip())

    return _STAGE_DICT.sub(_staged_dict, _STAGE_GROUP.sub(staged, line))


def _staged_dict(m: re.Match[str]) -> str:
    """A stage's dict written as its readings under the stage, when every entry is a quoted name and a
    number, half of them or more naming metrics and none a counter; otherwise as it was (settings:
    `test={'step': 5000, 'seed': 1}`, `train: {'lr': 0.1, 'batch_size': 32, 'epochs': 100}`)."""
    pairs = []
    for part in m.group(2).split(","):
        if (entry := _DICT_ENTRY.fullmatch(part)) is None:
            return m.group(0)
        pairs.append((entry.group(2), entry.group(3)))
    metrics = sum(is_metric_name(name) for name, _ in pairs)
    if any(role(name) != "metric" for name, _ in pairs) or 2 * metrics < len(pairs):
        return m.group(0)
    return ", ".join(f"{m.group(1)} {name}: {value}" for name, value in pairs)


# pytracking's trainer (OSTrack's, STARK's, ViPT's…) tags each line with its stage, epoch and batch:
# `[train: 1, 50 / 937]`, `[val: 5, 50 / 156]`
_COUNTED_TAG = re.compile(
    r"^\s*\[(train|val|valid|test)\s*:\s*(\d+)\s*,\s*(\d+\s*/\s*\d+)\s*\]", re.IGNORECASE
)


def plain_text(line: str) -> str:
    """The line without a terminal's escape codes, its Chinese or Japanese metric words in English,
    and a tag that counts written as its stage's tag and its counters (`[val: 5, 50 / 156]` ->
    `[val] epoch 5 [50 / 156]`)."""
    line = translated(_ANSI.sub("", line) if "\x1b" in line else line)
    return _COUNTED_TAG.sub(r"[\1] epoch \2 [\3]", line, count=1) if line[:1] == "[" else line


def unwrap_numbers(line: str) -> str:
    """The line with each reading printed as its holder (`tensor(0.41, device='cuda:0')`) as the bare
    number, so a `name=value` pair reads it; likewise a reading printed as a list of one (MindSpore's
    `Train Loss: [2.341]`, Paddle's `loss: [0.6301036]`, MT-DNN's `Training Loss - [1.63923]`), and a
    share printed with its sum (Pointnet's `Test Accuracy: 2427457/2555718 = 0.9498`) as its result."""
    if "(" in line:
        line = _WRAPPED.sub(r"\1", line)
    if "`" in line:
        line = _TICKED.sub(r"\1", line)  # Markdown's code span: `* loss \`285.6\``
    if "=" in line:
        line = _WORKED_OUT.sub(r"\1", line)
    return _LISTED.sub(_unlisted, line) if "[" in line else line


def _unlisted(m: re.Match[str]) -> str:
    sep, number = m.groups()
    name = _WORD_BEFORE.search(m.string[max(0, m.start() - 64) : m.start()])
    word = name.group(0) if name else ""
    if not (word[:1].isalpha() or word.endswith(")")) or (word.isupper() and "_" in word):
        return m.group(0)  # a counter's bracket after a number, or a config key's list
    return (": " if "-" in sep else sep) + number
