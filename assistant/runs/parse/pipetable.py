"""A table drawn with pipes in a log or a page: Markdown's (`| Epoch | Train Loss | Val Loss |` over a
`|---|---|---|` rule: the training results a Hugging Face model card lists, a report's table) or
rich's box-drawn one (`┃ Epoch ┃ Loss ┃` over `┡━━━━━━━╇━━━━━━┩`, then `│ 1 │ 0.52 │`): a header
of names, a rule under it, then a record per row, each number read under its column's name (and
the stage a cell of the row names, when one does). A notebook's HTML-only table comes here too
(jsondoc writes it out drawn with pipes)."""

from __future__ import annotations

import re

from assistant.runs.parse.headed import cells_record
from assistant.runs.parse.lines import NUM, NUMBER
from assistant.runs.parse.names import STAGE_COLUMNS, evaluation_columns, is_metric_name, stage_of
from assistant.runs.parse.stages import STAGE_TAGS

_BOX = str.maketrans(dict.fromkeys("│┃║", "|"))
# the rule under a header, matched on the stripped line: Markdown's dashes (with alignment colons), or
# a line of box drawing (a blank on either side of a rule would make the two pattern parts around it
# take turns at it: the square of its length)
_RULE = re.compile(r"^\|?\s*:?-{3,}:?(?:\s*\|\s*:?-{3,}:?)+\s*\|?$")
_READING = re.compile(rf"[:=]\s*{NUM}|\s{NUM}$", re.IGNORECASE)  # `Loss: 0.41`, `loss 0.41`
_BORDER = re.compile(r"^[━─═┏┓┗┛┡┩┳┻╇┼├┤┬┴╋┣┫└┘┌┐╭╮╰╯╞╡╪]{3,}$")


def _drawn_cells(line: str) -> list[str] | None:
    """The cells of a row drawn with pipes at both ends, or None."""
    line = line.translate(_BOX).strip()
    if not (line.startswith("|") and line.endswith("|")) or line.count("|") < 3:
        return None
    return [c.strip() for c in line[1:-1].split("|")]


class PipeTable:
    """The header of the table being read (after its rule), and the one that may be coming."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._heading: list[str] | None = None  # a header seen, its rule not yet

    def feed(self, segment: str) -> bool:
        """Whether the segment is a table's header, the rule under it or a border (nothing to read)."""
        line = segment.strip()
        border = _BORDER.match(line) is not None
        if border or _RULE.match(line):
            if self._heading:
                self.names, self._heading = self._heading, None
            return bool(self.names) or border
        cells = _drawn_cells(segment)
        if cells and _is_header(cells):
            self._heading, self.names = evaluation_columns(cells), []
            return True
        self._heading = None
        return False

    def row(self, segment: str) -> tuple[dict[str, float], dict[str, float]] | None:
        """(metrics, axes) of a row under the header; a line that is no such row ends the table."""
        if not self.names:
            return None
        cells = _drawn_cells(segment)
        if cells is None or len(cells) != len(self.names):
            self.names = []
            return None
        # a column may say each row's stage (fastprogress' `accuracy | loss | epoch | train` over
        # `0.43 | 2.35 | 3 | eval`); not any cell (detectron2's per-category AP: COCO has a `train`)
        said = [c for n, c in zip(self.names, cells, strict=True) if n.lower() in STAGE_COLUMNS]
        # (FluxTraining's `Phase` column says `ValidationPhase`: its stage by the words in it)
        stage = next((c for c in said if c.lower() in STAGE_TAGS), "") or next(
            filter(None, map(stage_of, said)), ""
        )
        values, axes, _ = cells_record(self.names, cells, stage)
        return (values, axes) if values else None


def _is_header(cells: list[str]) -> bool:
    """Names, each once, one of them a metric; no number and no reading among them (`| Epoch: 3 |
    Loss: 0.41 |` is a line of readings drawn with pipes)."""
    return (
        len(cells) >= 2
        and all(cells)
        and len(set(cells)) == len(cells)  # `| category | AP | category | AP |`: one record a cell pair
        and not any(NUMBER.match(c) or _READING.search(c) for c in cells)
        and any(is_metric_name(c) for c in cells)
    )
