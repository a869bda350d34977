"""A table printed in a console log: a line of column names, then lines whose leading cells line up
with them (YOLOv5/YOLOv8's `Epoch GPU_mem box_loss obj_loss cls_loss Instances Size`, each epoch's
row under it ending in its progress bar; spaCy's `E # LOSS TOK2VEC LOSS NER ENTS_F …`). YOLO prints
its header again before every epoch's row, and its validation table's (`Class Images … mAP50`) before
that one's: a row is read under the last header printed. A DataFrame printed by pandas (a notebook's
`history` table) is one too, its rows led by their index; and a table ruled by `|` between its
columns, whose names may be several words (NeuralForceField's `Time | Epoch | Learning rate | Train
loss | Validation loss`; one drawn with pipes at both ends too is pipetable's), a cell of it holding
several numbers (NII's `| 403.31   3.49|`, two losses under `Train loss`)."""

from __future__ import annotations

import re

from assistant.runs.parse.lines import COUNT, LOG_PREFIX, NUMBER
from assistant.runs.parse.names import is_metric_name, role, stage_of

_NAME = re.compile(r"[A-Za-z][\w./()@-]*[:?]?")  # `Saved?`: a flag column (bpnet-lite)
# words of a sentence or a reading (`val loss nan`), never of a header
_NOT_NAMES = {"nan", "inf", "and", "or", "the", "a", "an", "of", "to", "for", "is", "in", "on", "at", "with"}
_UNIT = re.compile(r"\([\w/%]+\)")  # `GPU Memory (MB)`: a column's unit, in a name of several words


def _cells(segment: str) -> list[str]:
    """The cells before a progress bar or a trailing `:` (`640: 100%|███| 58/58`, `mAP50-95: 100%|`),
    without the parentheses and commas that group them (SASRec's `epoch (val_ndcg, val_hr) (test_ndcg,
    test_hr)` over `100 (0.1635, 0.2988) (0.1549, 0.2896)`)."""
    out = []
    for cell in LOG_PREFIX.sub("", segment, count=1).split():
        out.append(cell.rstrip(":").strip("(),") or cell)
        if cell.endswith(":"):
            break
    return out


def _ruled(segment: str) -> list[str] | None:
    """The cells of a line ruled by `|` into three or more (`31:08 |     1 |  3.000e-04 |`), not a
    progress bar's (`100%|███|`) nor a table drawn with pipes at both ends (pipetable's: Markdown's)."""
    line = LOG_PREFIX.sub("", segment, count=1).strip()
    if line.count("|") < 2 or "%|" in line or (line.startswith("|") and line.endswith("|")):
        return None
    cells = [c.strip() for c in line.strip("|").split("|")]
    return cells if len(cells) >= 3 and all(cells) else None


# a rule of dashes under a header, a run per column (spaCy's and wasabi's tables, tabulate's `simple`)
_UNDERLINE = re.compile(r"^\s*-+(?:[ \t]+-+){2,}\s*$")


def _underlined(header: str, rule: str) -> tuple[list[str], bool]:
    """The names of `header` in the columns its underline's runs of dashes mark (spaCy's `E    #
    LOSS TOK2VEC  LOSS NER  ENTS_F` over `---  ------  ------------  --------  ------`): a name of
    several words, or a truncated one (`LOSS TRANS...`), is read whole; none when a column's name
    is blank or its words are not names. And whether it is spaCy's `spacy train` table, led by `E`
    (the epoch) and `#` (the step): its losses are summed over the steps since the row before, its
    other columns scored on the dev set."""
    starts = [m.start() for m in re.finditer(r"-+", rule)]
    cells = [header[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    if not all(c and all(map(_named, c.rstrip(".").replace("#", "n").split())) for c in cells):
        return [], False
    if spacy := cells[:2] == ["E", "#"]:
        cells = ["epoch", "step"] + [c if "loss" in c.lower().split() else f"dev {c}" for c in cells[2:]]
    return cells, spacy


def _spaced(segment: str) -> list[str] | None:
    """The names of a header set apart by runs of two spaces or more, some of them several words (a
    report's `Epoch   Training Loss   Validation Loss`, over rows of three numbers): read so when its
    rows have as many cells, not as many as its words (a fixed-width `GPU_mem box_loss` a single space
    apart is two names). None when no run parts words, or the line holds a colon or a pipe."""
    line = LOG_PREFIX.sub("", segment, count=1).strip()
    if ":" in line or "|" in line:
        return None
    cells = re.split(r"\s{2,}|\t", line)
    several = any(" " in c for c in cells)
    return cells if several and len(cells) >= 3 and all(map(_named, " ".join(cells).split())) else None


def _named(cell: str) -> bool:
    return bool(_NAME.fullmatch(cell)) and cell.lower() not in _NOT_NAMES


class HeadedRows:
    """The last header a console printed, and the rows under it."""

    def __init__(self) -> None:
        self.names: list[str] = []  # the last header's
        self.ruled = False  # its columns are ruled by `|`
        self.before = ""  # the last segment header() was shown (a table's header, before its rule)
        self.summed = False  # its losses are sums since the row before (spaCy's): step 0's is one batch's
        self.spaced: list[str] | None = None  # its names set apart by runs of spaces, some several words

    def header(self, segment: str) -> bool:
        """Whether the segment is a table's header: three names or more, two of them a metric or the
        epoch or step, and nothing else (no number, no `name: value`, no sentence); or the rule of
        dashes under one, whose runs say where each name of the line before begins and ends."""
        before, self.before = self.before, segment
        ruled, summed = None, False
        if _UNDERLINE.match(segment):
            cells, summed = _underlined(before, segment)
        elif (ruled := _ruled(segment)) is not None and all(
            all(_named(w) or _UNIT.fullmatch(w) for w in c.split()) for c in ruled
        ):
            cells = ruled  # names of several words, each between its rules
        else:
            words = segment.split()
            cells = _cells(segment)
            if len(cells) < 3 or (len(words) > len(cells) and "|" not in segment):
                return False  # prose goes on after a colon; a header's colon is followed by a progress bar
            if not all(map(_named, cells)):
                return False
        if len(cells) < 3 or sum(is_metric_name(c) or role(c) != "metric" for c in cells) < 2:
            return False  # a header names two columns it reads at least (a metric, the epoch)
        self.names, self.ruled, self.summed = cells, ruled is not None, summed
        self.spaced = _spaced(segment) if ruled is None else None
        return True

    def row(self, segment: str) -> tuple[dict[str, float], dict[str, float]] | None:
        """(metrics, axes: its epoch or step) of a row under the last header, when its cells line up
        with it (as many; or more, followed by a progress bar), most of them numbers."""
        if self.ruled:
            cells = _ruled(segment)
            if cells is None or len(cells) != len(self.names):
                return None
            names, cells = _spread(self.names, cells)
            values, axes, numbers = cells_record(names, cells)
            return (values, axes) if values and numbers * 2 > len(cells) else None
        cells, names = _cells(segment), self.names
        if self.spaced and len(cells) == len(self.spaced) != len(names) and "|" not in segment:
            names = self.spaced  # its rows line up with the names set apart by spaces, not the words
        if len(cells) == len(names) + 1 and cells[0].isdigit() and "|" not in segment:
            cells = cells[1:]  # pandas prints a DataFrame's index before each row, under no name
        if not names or len(cells) < len(names) or (len(cells) > len(names) and "|" not in segment):
            return None
        values, axes, numbers = cells_record(names, cells)
        if self.summed and axes.get("step") == 0:
            return {}, axes  # the first batch's losses, beside sums over hundreds of steps: no reading
        return (values, axes) if values and numbers * 2 > len(names) else None


def _spread(names: list[str], cells: list[str]) -> tuple[list[str], list[str]]:
    """A ruled cell holding several numbers, one per column of its own: the first under the cell's
    name, the next under the name and its place (the NII vocoder scripts' `Train loss` cell holds
    the generator's and the discriminator's: `403.31   3.49`). Under a stage's name followed by the
    scores beside it (the Kaggle logs of Heng CherKeng's scripts: `valid  top@1  top@5  map@5` over
    `1.681  30.997  31.132  0.3106`), the first number is that stage's loss."""
    out_names, out_cells = [], []
    for name, cell in zip(names, cells, strict=True):
        parts = cell.split()
        several = len(parts) > 1 and all(NUMBER.fullmatch(p) for p in parts)
        first = _stage_loss(name, len(parts)) if several else name
        out_names += [first if i == 0 else f"{name} {i + 1}" for i in range(len(parts) if several else 1)]
        out_cells += parts if several else [cell]
    return out_names, out_cells


def _stage_loss(name: str, numbers: int) -> str:
    """`valid loss` for a cell named by a stage and the scores after it (`valid  top@1  map@5`) that
    holds more numbers than those scores: the one more is the stage's own. The name itself for any
    other (`Train loss`; `valid  acc  f1` over `0.52  0.42`, a number a score)."""
    stage, *rest = name.split()
    if numbers > len(rest) > 0 and stage_of(stage) is not None and not any("loss" in w.lower() for w in rest):
        return f"{stage} loss"
    return name


def cells_record(
    names: list[str], cells: list[str], stage: str = ""
) -> tuple[dict[str, float], dict[str, float], int]:
    """(metrics, axes, how many cells were numbers) of a table's row, each number under its column's
    name (`3/299` under `Epoch` is epoch 3); `stage` names the metrics that say none (a row's stage
    column, fastprogress' `eval`). Text cells (`No log`, a time) are not read."""
    values: dict[str, float] = {}
    axes: dict[str, float] = {}
    numbers = 0
    for name, cell in zip(names, cells, strict=False):
        count = COUNT.match(cell)
        if not (count or NUMBER.match(cell)):
            continue
        numbers += 1
        value = float(count.group(1) if count else cell)
        if (kind := role(name)) != "metric":
            axes[kind] = value
        elif is_metric_name(name):
            values[f"{stage} {name}" if stage and not stage_of(name) else name] = value
    return values, axes, numbers
