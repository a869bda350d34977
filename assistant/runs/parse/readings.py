"""The readings one console line holds, whatever its layout: `name: value` and `name=value` pairs,
a name and its number with no separator (`train loss 1.27`), cells between pipes or commas, a JSON
object inside the line, the stage each reading is of (a tag, a word before its name, a held-out name
earlier in the line), and what is no reading (a line of the best readings so far). The console reader
(console.py) keeps the state across lines."""

from __future__ import annotations

import itertools
import re

from assistant.runs.parse.inlinejson import braces, json_values
from assistant.runs.parse.lines import (
    EPOCH,
    NUM,
    WORD,
    carried_stages,
    named_matches,
    pairs,
)
from assistant.runs.parse.names import (
    BEST_TOKENS,
    DISCRIMINATOR,
    GENERATOR,
    METRIC_TOKENS,
    TEST,
    TRAIN,
    VAL,
    is_metric_name,
    normalise,
    role,
    stage_of,
    tokens,
)
from assistant.runs.parse.stages import AT_AXIS, STAGE_TAGS, TAG
from assistant.runs.parse.table import logged

# `loss 0.41` in a | cell, also with a remark after it (llm.c's `loss 3.28 (+nanz)`)
# (the name's words each end in a character, so the blanks before the number are the `\s+`'s alone:
# `[\w./ ]*?` could end anywhere in a run of them, the square of its length)
_SPACED = re.compile(rf"^\s*([A-Za-z][\w./]*(?: +[\w./]+)*?)\s+({NUM})\s*(?:\(.*\))?\s*$", re.IGNORECASE)
# a counter opening a cell before its reading is no part of the name (`| Epoch 61 LR 0.0249` after a
# time's bar: `LR`, not `61 LR`); `| top 5 acc 0.91` keeps its number
_COUNTER_FIRST = re.compile(r"^\s*(?:epoch|step|iter|iteration)\s+\d+\s+(?=[A-Za-z])", re.IGNORECASE)
# `train loss 1.27 (seg loss 0.55)` anywhere: no separator, so only a loss (TF1's `training avg cost
# 22.6` too), accuracy, an episode's reward (`Episode 3 reward -16.000 eps 0.985`; the GDRL book's
# `last 100 ep mean rew 13.00`) by its name
_BARE = re.compile(
    rf"(?<![\w./-])((?:{WORD}[ \t]+){{0,2}}(?:[A-Za-z][\w.-]*[_.-])?"
    rf"(?:loss|cost|acc(?:@[15])?|accuracy|perplexity|ppl|reward|rew))[ \t]+({NUM})",
    re.IGNORECASE,
)
# ...a speech recogniser's error rate as Kaldi's scoring prints it, its counts in brackets ending the
# line (k2's and SpeechBrain's too: `%WER 8.70% [ 4572 / 52576, 702 ins, 395 del, 3475 sub ]`; not a
# results list's `… ] exp/decode_dev/wer_15`, one line per decoding setting, no training curve)...
_KALDI_RATE = re.compile(rf"%((?:WER|CER))\s+({NUM})\s*%?\s*\[[^\[\]]*\]\s*$", re.IGNORECASE)
# ...and the learning rate beside such readings, as `lr` alone (Dassl's `loss 0.5200 (0.6019)  acc
# 75.0 (71.2)  lr 1.000000e-05`); on a line of its own it may be a setting (`lr 0.01` in an args dump)
_BARE_LR = re.compile(rf"(?<![\w./-])(lr)[ \t]+({NUM})", re.IGNORECASE)
_BARE_START = re.compile(r"(?<![\w./-])[A-Za-z]", re.IGNORECASE)

_IDENTIFIER = re.compile(r"[A-Za-z][\w./-]*")  # one word: a name written as a cell of its own
# the best readings so far in brackets after `best` (Distiller's `==> Best [Top1: 45.9   Top5: 91.9
# Sparsity:0.00   Params: 117200 on epoch: 0]`): no reading of the line's own
_BEST_GROUP = re.compile(r"\bbest\s*(?:\[[^\[\]]*\]|\([^()]*\))", re.IGNORECASE)
_BEST_AT = re.compile(
    r"\bbest\b(?:[^,;|\n]{0,80}?(?:@|\bat\b)\s*(?:epoch|iteration|iter|step)?\s*[:=#]?\s*\d+"
    r"|[^\d,;|\n]{0,40}?\d[\d.eE+-]*\s*\(\s*(?:epoch|iteration|iter|step)\s*[:=#]?\s*\d+\s*\))",
    re.IGNORECASE,
)
# the plain words that run into a name, a whole word first
_WORDS_BEFORE = re.compile(r"(?<![A-Za-z0-9_.:=/-])(?:[A-Za-z]+ +){1,3}$")
# a name that says when it was read, then its value: Andrew Ng's courses' `Cost after iteration 100:
# 0.69`, `Cost after epoch 5: 0.41`, fast-bert's `Loss after epoch 0 - 0.1377` and `Loss after epoch 1
# 4.2544`, after its logger's name (`- INFO - root -   Loss after …`; the counter is read as the line's
# epoch or step) or its level (the RotatE codebase's `2022-05-17 22:15:10 INFO     Training average loss
# at step 100: 0.678`); after a dash or a space only a number that ends the line (`Loss at step 100 - 12
# files` is prose). Its counters may be written as settings, one or more, after the time the line was
# written: the RNN tutorial's `2017-10-12 19:42:53: Loss after num_examples_seen=400 epoch=1: 7.72`
_COUNTED = r"[A-Za-z_]+\s*=\s*\d+(?![\d.])"
_NAME = r"\s*([A-Za-z][A-Za-z ]{0,30}?)"
_NAME_WHEN = rf"{_NAME}\s+(?:after|at|in)\s+"  # the name, then when it was read
_COUNTER = r"(?:epoch|iteration|iter|step)\s+\d+"
_NAMED_AT = re.compile(
    rf"(?:^|(?<=\s-)|(?<=:\s)){_NAME_WHEN}(?:{_COUNTER}|(?P<counted>{_COUNTED}(?:,?\s+{_COUNTED})*))"
    rf"(?:\s*[:=]\s*(?P<value>{NUM})|(?:\s+-)?\s+(?P<ended>{NUM})(?=\s*(?:$|[,;|])))",
    re.IGNORECASE,
)
# ...after a logger's level only when its value ends the line (`INFO  Loss in epoch 3: 12 batches
# skipped` is prose; `Reducing lr in epoch 10: 0.001 -> 0.0001` names the old rate)
_LEVEL_NAMED_AT = re.compile(
    rf"(?:(?<=\bINFO\s)|(?<=\bDEBUG\s)){_NAME_WHEN}{_COUNTER}\s*[:=]\s*(?P<value>{NUM})\s*$",
    re.IGNORECASE,
)
# ...or with no word before its counter only alone on its line, its value ending it (GANITE's
# `Inference loss epoch 100: 15.58`; not its `Generator loss epoch 100: 0.0037 16.41`, two readings)
_NAMED_COUNTER = re.compile(rf"^{_NAME}\s+{_COUNTER}\s*[:=]\s*(?P<value>{NUM})\s*$", re.IGNORECASE)
# a stage's readings grouped after its name: ReChorus' `dev=(HR@5:0.2797,NDCG@5:0.1831) test=(…)`,
# XNN's `train={MAE=23.7% RMSE=34.1%} test={…}` (braces without quotes: not a dict printed)
_STAGE_GROUP = re.compile(
    r"\b(train|dev|val|valid|test)=(?:\(([^()]{1,400})\)|\{([^{}'\"]{1,400})\})", re.IGNORECASE
)
_GROUPED = re.compile(rf"([A-Za-z][\w@.]*)\s*[:=]\s*({NUM})")
_DASHED = re.compile(rf"([A-Za-z][\w./]*)\s+-\s+({NUM})")  # a cell `name - value`
# a stage's name and a fraction, a bar and another reading alone in a cell, after an epoch's count
# (Meta-Baseline's `epoch 3, train 0.4724|0.9235, tval 1.2235|0.7952, val 1.3145|0.7852, 2.7m`: each
# stage's loss, then its accuracy, unnamed, which is left); not a stage's lone reading, which may be
# an accuracy (`epoch 5, loss 0.89, train 0.79, val 0.71`) or a split's share, nor DGCNN's count
# after the name, its epoch (`Train 3, loss: 1.85`)
_STAGE_CELL = re.compile(
    rf"(train|training|val|valid|validation|test|eval)\s+([-+]?(?:\d+\.\d+|\d+(?:\.\d*)?[eE][-+]?\d+))"
    rf"\s*\|\s*{NUM}",
    re.IGNORECASE,
)
_STAGE_WORDS = TRAIN | VAL | TEST
# the name an object printed inside a line is given (`Val metrics: {'r2': 0.27, 'mae': 3.19}`)
_OBJECT_NAME = re.compile(r"([A-Za-z][\w./]*(?: [A-Za-z][\w./]*){0,2}):\s*$")
_OBJECT_NAME_SPAN = 120
_SHARE_DONE = re.compile(r"%(?:\||\s*\d+/\d+)")  # a bar's share done: `100%|███`, `100% 79/79 [`

# words that precede a name in prose or in a log's prefix, never part of it
_PROSE = {
    "the", "a", "an", "is", "was", "of", "at", "on", "for", "with", "and", "current", "new", "now",
    "info", "debug", "warning", "warn", "critical", "notice", "log", "logger", "root", "main", "epoch",
    "step", "iter", "iteration", "batch",
}  # fmt: skip


def _percent_named(name: str, segment: str, end: int) -> str:
    """A stage's name alone over a percentage on an epoch's line (`Epoch: 001/050 | Train: 51.69% |
    Validation: 52.44%`, as Raschka's course prints each epoch) names that stage's accuracy: the share
    it got right. Not a progress bar's share done (`Validation: 100% 79/79 [`), nor a split's size."""
    toks = tokens(name)
    if (
        toks
        and set(toks) <= _STAGE_WORDS
        and segment.startswith("%", end)
        and EPOCH.search(segment)
        and not _SHARE_DONE.match(segment, end)
    ):
        return f"{name} accuracy"
    return name


def _name(raw: str) -> str:
    """The metric name in a matched `words: value`: its last word and the words before it that are
    not prose (`Train Loss` stays; `the model loss` is `loss`)."""
    words = raw.split()
    while len(words) > 1 and words[-1].lower() in _PROSE:  # `Validation loss is: 0.66`
        words.pop()
    kept = [words[-1]]
    for word in reversed(words[:-1]):
        if word.lower() in _PROSE or not tokens(word):
            break
        kept.insert(0, word)
    return " ".join(kept)


def line_readings(segment: str, stage: str | None) -> tuple[dict[str, float], dict[str, float]]:
    """(metrics, axes) of a line: axes are an epoch or step written inside a JSON object. A line whose
    tags name several stages (ESPnet's `1epoch results: [train] loss=…, [valid] loss=…, acc=…`) is
    read part by part, each part in its tag's stage."""
    staged = [(m.start(), tag) for m in TAG.finditer(segment) if (tag := STAGE_TAGS.get(m.group(1).lower()))]
    if len({tag for _, tag in staged}) > 1:
        metrics: dict[str, float] = {}
        cuts = [0, *(at for at, _ in staged[1:]), len(segment)]
        for (lo, hi), (_, tag) in zip(itertools.pairwise(cuts), staged, strict=True):
            metrics.update(line_readings(segment[lo:hi], tag)[0])
        return metrics, {}
    segment = _BEST_GROUP.sub(" ", _STAGE_GROUP.sub(_ungrouped, segment))
    found: dict[str, float] = {}
    axes: dict[str, float] = {}
    around: dict[str, float] = {}  # the readings a named object is printed among
    if (obj := json_values(segment)) and not any(is_metric_name(k) or role(k) != "metric" for k in obj):
        # an object of no reading among the line's own (InternEvo's `step=0 loss=11.54 …
        # grad_norm={'0_default': 87.3, '1_fp32': 0.0} acc=0.07`): the line is read around it
        opens, closes = braces(segment) or (0, 0)
        segment, obj = f"{segment[:opens]} {segment[closes + 1 :]}", None
    if obj is not None:
        opens, closes = braces(segment) or (0, 0)
        # an object printed under a name is that name's readings (`Epoch: 01, Train loss: 4.59, Val
        # metrics: {'r2': 0.27, 'mae': 3.19}`): of its stage, beside the line's own readings around it
        # (the name is looked for just before the object: searched for along a long line, the square
        # of its length)
        before = max(0, opens - _OBJECT_NAME_SPAN)
        if named := _OBJECT_NAME.search(segment, before, opens):
            if set(tokens(named.group(1))) & BEST_TOKENS:
                return {}, {}  # `Best Val metrics: {…}`: the best so far, no new reading
            around, _ = line_readings(segment[: named.start()] + " " + segment[closes + 1 :], stage)
        object_stage = stage_of(named.group(1)) if named else None
        for k, v in obj.items():
            if (r := role(k)) != "metric":
                axes[r] = v
            else:
                found[f"{object_stage}/{k}" if object_stage and not stage_of(k) else k] = v
        if not any(is_metric_name(k) for k in found):
            axes = {}  # counters and no reading: settings printed (Keras' `{'epochs': 30, 'steps': 1719}`)
        elif all(normalise(k) == "lr" for k in found if is_metric_name(k)):
            # beside rates alone, a count of epochs is a setting (MindSpore Earth's optimiser settings:
            # `{'name': 'adam', 'g_lr': 1.5e-05, 'epochs': 10}`), not the epoch they are at
            axes = {r: v for k, v in obj.items() if (r := role(k)) != "metric" and str(k).lower() != "epochs"}
    else:
        named_at = (  # (before the heading goes)
            _NAMED_AT.search(segment) or _LEVEL_NAMED_AT.search(segment) or _named_counter(segment)
        )
        headed = len(segment)
        segment = AT_AXIS.sub("", segment, count=1)
        # where the name's counters written as settings stand once the heading is gone (`Loss after
        # num_examples_seen=400 epoch=1: 7.72`): no readings of their own
        counted = range(0)
        named = named_at.groupdict() if named_at else {}  # (a level's pattern has no counted or ended)
        if named.get("counted"):
            gone = headed - len(segment)
            counted = range(named_at.start(1) - gone, named_at.end("counted") - gone)
        found = {}
        for m in pairs(segment):
            if segment.startswith("%|", m.end()):
                continue  # a progress bar's share done (`Map:  40%|███`)
            if m.start(1) in counted:
                continue
            name = _percent_named(_name(m.group(1)), segment, m.end())
            found[_staged_before(segment, m.start(1), name)] = logged(m.group(2))
        for m in named_matches(_BARE, _BARE_START, segment, not_in_last="/()"):
            found.setdefault(_name(m.group(1)), logged(m.group(2)))
        for m in _KALDI_RATE.finditer(segment):
            found.setdefault(m.group(1), logged(m.group(2)))
        if found and (lr := _BARE_LR.search(segment)):
            found.setdefault(lr.group(1), logged(lr.group(2)))
        if "|" in segment:
            for cell in segment.split("|"):
                if m := _SPACED.match(_COUNTER_FIRST.sub("", cell, count=1)):
                    name = _name(m.group(1).strip())
                    # a stage's name alone in a cell of its own is that stage's loss (`| train 0.256 | val
                    # 0.094 | lr 8e-05`): the one reading a loop prints for each stage without naming it
                    found.setdefault(
                        f"{name} loss" if name.lower() in _STAGE_WORDS else name, logged(m.group(2))
                    )
        if named_at:  # `Cost after epoch 5: 0.41`: the name, its counter, its value
            value = named["value"] or named.get("ended")
            found.setdefault(_name(named_at.group(1)), logged(value))
        if "," in segment:  # `epoch 1, phase train, step 10, loss_train, 0.838`: a name, then its value
            cells = [c.strip() for c in segment.split(",")]
            for name, value in itertools.pairwise(cells):
                if _IDENTIFIER.fullmatch(name) and is_metric_name(name) and re.fullmatch(NUM, value):
                    found.setdefault(name, logged(value))
            for cell in cells:  # segmentation_models' bars: `…3.5it/s, dice_loss - 0.2156, iou_score - 0.66]`
                if (m := _DASHED.fullmatch(cell.strip("[]"))) and is_metric_name(m.group(1)):
                    found.setdefault(m.group(1), logged(m.group(2)))
            if EPOCH.match(cells[0]):
                for cell in cells[1:]:
                    if m := _STAGE_CELL.fullmatch(cell):
                        found.setdefault(f"{m.group(1)} loss", logged(m.group(2)))
    found = _networks_named(found)
    first = next((k for k in found if set(tokens(k)) & METRIC_TOKENS), None)
    if first is not None and set(tokens(first)) & BEST_TOKENS:
        # a line of the best readings so far (`Best Instance Accuracy: 0.9, Class Accuracy: 0.8`)
        return {}, axes
    metrics = {}
    # a JSON object's keys have no reading order: a stage word carries over only in text
    carried = {} if stage or obj is not None else carried_stages([k for k in found if is_metric_name(k)])
    # a reading the line names in a stage of its own keeps it from an unstaged one the line's stage
    # would give the same name (`Valid [3/10] loss=0.41, val_loss=0.58`: `loss` is then training's)
    named_staged = {normalise(k) for k in found if is_metric_name(k) and stage_of(k)}
    for k, v in found.items():
        if is_metric_name(k):
            held = stage or carried.get(k)
            staged = f"{held}/{k}" if held and not stage_of(k) else k
            metrics[k if staged != k and normalise(staged) in named_staged else staged] = v
    return {**around, **metrics}, axes


def _named_counter(segment: str) -> re.Match[str] | None:
    """`_NAMED_COUNTER` where its name is a reading's: two words at most, or a stage's and two (not
    prose before a counter: `Reached target loss epoch 12: 0.1`, `Restored val loss epoch 12: 0.34`)."""
    words = m.group(1).lower().split() if (m := _NAMED_COUNTER.match(segment)) else []
    staged = len(words) == 3 and words[0] in _STAGE_WORDS
    return m if words and (len(words) <= 2 or staged) else None


def _ungrouped(m: re.Match[str]) -> str:
    """`dev=(HR@5:0.28,NDCG@5:0.18)` as `dev HR@5: 0.28, dev NDCG@5: 0.18`: each reading in its stage."""
    readings = _GROUPED.findall(m.group(2) if m.group(2) is not None else m.group(3))
    if not any(is_metric_name(name) and normalise(name) != "lr" for name, _ in readings):
        return m.group(0)  # settings grouped under a stage (`train={lr=0.1 batch_size=32}`), no readings
    return ", ".join(f"{m.group(1)} {name}: {value}" for name, value in readings)


def without_best_counter(text: str) -> str:
    """The text without a counter that says when the best was, not when the line was written
    (detectron2's `… better than last best score 0.06269 @ iteration 241.`, `best val_loss 0.3 at epoch
    12`, `best was at epoch 1`, Distiller's `Best [Top1: 45.9 … on epoch: 2]`, timm's `*** Best metric:
    78.322 (epoch 314)` after every epoch: a reading, then its epoch in brackets); `New best model!
    Epoch 4 loss: 0.6` and `Saving best model (epoch 5) …` keep their epoch."""
    return _BEST_AT.sub("", _BEST_GROUP.sub(" ", text)) if "best" in text.lower() else text


def _staged_before(segment: str, start: int, name: str) -> str:
    """A name whose stage word is among the words before the three a name holds (Pointnet's `eval
    point avg class IoU: 0.47`): the name in that stage. Only words that run straight into the name
    (no separator between) count."""
    if stage_of(name) or not (m := _WORDS_BEFORE.search(segment, max(0, start - 64), start)):
        return name
    stages = [stage_of(w) for w in m.group(0).split()]
    return next((f"{stage}/{name}" for stage in reversed(stages) if stage), name)


def _networks_named(found: dict[str, float]) -> dict[str, float]:
    """A GAN's losses named by their networks alone (an SGAN's bar: `D=2.289, G=0.014`; CycleGAN's
    `D_A=0.2 G_B=0.6`): when a line names a discriminator and a generator so, each value is that
    network's loss. One such name alone (`d=3`) is no reading."""
    nets = {k for k in found if (toks := set(tokens(k))) and toks <= DISCRIMINATOR | GENERATOR | {"a", "b"}}
    named = [set(tokens(k)) for k in nets]
    if not (any(t & DISCRIMINATOR for t in named) and any(t & GENERATOR for t in named)):
        return found
    return {(f"{k} loss" if k in nets else k): v for k, v in found.items()}
