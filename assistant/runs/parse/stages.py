"""The stage a console line reports (line_stage: training, validation or test), said by a tag
(`[valid]`), its first word after a logger's prefix (`Test: [50/196] …`), a counter then the stage
(`Epoch 3 val: loss 0.3`), a heading (`PERFORMANCE ON TEST SET: …`) or a cell of its own (fairseq's
`| valid on 'valid' subset |`)."""

from __future__ import annotations

import re

from assistant.runs.parse.lines import HELD_WORDS, pairs
from assistant.runs.parse.names import TEST, TRAIN, VAL, is_metric_name

TAG = re.compile(r"\[([A-Za-z][\w-]*)\]")  # `[valid]`, `[train]`
_LEAD_STAGE = re.compile(
    rf"^\s*(?:[-*•]\s*)?({HELD_WORDS})"
    r"(?:(?:\s+(?:set|results?|metrics|net output #\d+)|\s*\[\s*-?\d+\s*/\s*\d+\s*\])?"
    r"\s*(?::|-\s|,(?=\s*[A-Za-z]))|\s+\d+\s*,|\s+@epoch\b"
    r"|(?:\s+\w+){0,2}\s*[*=>#]{3,}|(?:\s+\w+(?:-\w+)?,?){0,3}\s+-{3,}\s*$"
    r"|\s*\[\s*-?\d+\s*/\s*\d+\s*\]\s+(?=[A-Za-z][\w-]*\s*[=:]))",
    re.IGNORECASE,
)  # `Test: [50/196] …`, a logger's `TEST [40/40]: Loss: 0.876`, `Val   - CE: 0.19, acc: 95.0%`, ignite's
# `Validation Results - Epoch: 3 …`, DGCNN's `Test 3, loss: 1.74` (its count the epoch), HugeCTR's
# `Evaluation, AUC: 0.79`, freerec's `VALID @Epoch: 3`, UniMatch's `Evaluation original ***** >>>>` (a
# rule after the stage), a bulleted one (`- Eval metrics : accuracy: 0.516 ; loss: 1.349` under a
# logger's prefix), Caffe's `Test net output #1: loss = 0.3 (* 1 = 0.3 loss)`, PyHealth's `--- Eval
# epoch-0, step-241 ---` (its counters, then a rule), Once-for-All's `Valid [3/120] loss=0.49, top-1=…`
# (its count, then a reading named with `=` or `:`)
# A counter, then the stage its readings are of, set apart from them (gru-svm's `step [100] validation
# -- loss : 223.4, accuracy : 0.45`, `Epoch 3 val: loss 0.3`, `iter 500 | test | …`, RAT-SQL's `Step 50
# stats, val: loss = 29.9`, a summary's word and its comma between; SiamMask's `Epoch: [5][10/29]
# Validation:`, the evaluation's batch counted after the epoch): not the first word of a reading's
# own name (`Epoch 3 val loss: 0.3`, whose name says its stage)
_COUNTED_STAGE = re.compile(
    r"^\s*+(?:epoch|step|iter|iteration)\s*+[:#]?\s*+[\[(]?\s*+\d+(?:\s*+/\s*+\d+)?\s*+[\])]?\s*+"
    r"(?:\[\s*+\d+\s*+/\s*+\d+\s*+\]\s*+)?[,|-]?\s*+"
    r"(?:(?:stats|statistics|summary|results?|metrics)\s*+,\s*+)?"
    rf"({HELD_WORDS})(?:Phase\(\))?\s*+(?:--|[:|]|-\s)(?!.*\btrain(?:ing)?\s*+(?:--|[:=|]))",
    re.IGNORECASE,
)
# What may stand before a line's stage word besides a logger's prefix: a time and its colon, a tag,
# arrows (freerec's `2023-10-06 15:38:26,628:	[Coach] >>> VALID @Epoch: 0    >>>  || NDCG@20 Avg: …`),
# a rule of stars (UniMatch's `***** Evaluation original ***** >>>> MeanIoU: 76.86`) or of dashes
_LEAD_NOISE = re.compile(r"^(?:\s*(?:\d{4}-\d\d-\d\d[ T][\d:.,]+|\[[^\]]{0,40}\]|>+|\*+|=+|-{3,}))+\s*")
# A heading before the readings that names the held-out set: `PERFORMANCE ON TEST SET: Batch Loss = …`
_HEADING = re.compile(r"^\s*([A-Za-z][A-Za-z ]{0,40}?)\s*:")
# A heading that says where in training its readings were taken (Megatron-LM's `validation loss at
# iteration 1000 | lm loss value: 5.4E+00 | lm loss PPL: 2.2E+02 |`): its number is the step, not a value
AT_AXIS = re.compile(
    r"^\s*([A-Za-z][A-Za-z ]{0,40}?)(?:\s+\([A-Za-z ]{1,20}\))?\s+at\s+(?:iteration|iter|step|epoch)\s+\d+\b",
    re.IGNORECASE,
)  # (with a remark before its counter: JoeyNMT's `Validation result (greedy) at epoch 5, step 1000:`)
# TensorFlow Estimator's evaluation: `Saving dict for global step 2000: accuracy = 0.9, …, loss = 0.3`
_ESTIMATOR_EVAL = re.compile(r"\bSaving dict for global step \d+:")
# fairseq's evaluation cell: `valid on 'valid' subset`
_SUBSET = re.compile(r"\s*(valid)\s+on\s+'[^']*'\s+subset\s*", re.IGNORECASE)
# mmcv's text log: `Epoch(val) [12][625]	bbox_mAP: 0.37, …`
_PAREN_STAGE = re.compile(r"\b(?:epoch|iter)\s*\(\s*([a-z]+)\s*\)", re.IGNORECASE)

# the stage each stage word names (`valid` -> "val"; fairseq's `train_inner` is training)
STAGE_TAGS = {**dict.fromkeys(TRAIN | {"train_inner"}, "train"), **dict.fromkeys(VAL, "val")}
STAGE_TAGS.update(dict.fromkeys(TEST, "test"))


def line_stage(line: str, message: str) -> str | None:
    """The stage a line's tag says (`[valid]`), or the first word of its `message` (the line after a
    logger's prefix, if any: `Test: [50/196] … Loss 1.3`, the PyTorch ImageNet example's evaluation
    lines, also as Swin's `[time model] (main.py 272): INFO Test: …`; `Test set: Average loss: …`)."""
    for tag in TAG.findall(line[:80]):
        if stage := STAGE_TAGS.get(tag.lower()):
            return stage
    if m := (
        _LEAD_STAGE.match(message)
        or _LEAD_STAGE.match(bare := _LEAD_NOISE.sub("", message, count=1))  # only where the first fails
        or _COUNTED_STAGE.match(message)
        or _COUNTED_STAGE.match(bare)
    ):
        return STAGE_TAGS[m.group(1).lower()]
    if (m := _PAREN_STAGE.search(message[:40])) and (stage := STAGE_TAGS.get(m.group(1).lower())):
        return stage
    if _ESTIMATOR_EVAL.search(line):
        return "val"
    if ((m := _HEADING.match(message)) and not is_metric_name(m.group(1))) or (m := AT_AXIS.match(message)):
        held = [stage for w in m.group(1).split() if (stage := STAGE_TAGS.get(w.lower())) in ("val", "test")]
        if held:
            return held[0]
    if "|" in line:  # a cell of its own: `… | ConvS2S_0: Eval | Avg loss: 6.8 | …`, fairseq's `epoch 001 |
        for cell in line.split("|"):  # valid on 'valid' subset | loss 8.2 | …` (the subset may be 'test')
            if m := _SUBSET.fullmatch(cell):
                return STAGE_TAGS[m.group(1).lower()]
            last = cell.strip().rsplit(" ", 1)[-1].lower()
            if last in STAGE_TAGS and last not in TRAIN and "=" not in cell and not any(pairs(cell)):
                return STAGE_TAGS[last]
    return None
