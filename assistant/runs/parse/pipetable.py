"""A table drawn with pipes in a log or a page: Markdown's (`| Epoch | Train Loss | Val Loss |` over a
`|---|---|---|` rule: the training results a Hugging Face model card lists, a report's table) or
rich's box-drawn one (`┃ Epoch ┃ Loss ┃` over `┡━━━━━━━╇━━━━━━┩`, then `│ 1 │ 0.52 │`): a header
of names, a rule under it, then a record per row, each number read under its column's name."""

from __future__ import annotations

import re

from assistant.runs.parse.lines import NUM, NUMBER
from assistant.runs.parse.names import evaluation_columns, is_metric_name, role
from assistant.runs.parse.table import logged

_BOX = str.maketrans(dict.fromkeys("│┃║", "|"))
# the rule under a header: Markdown's dashes (with alignment colons), or a line of box drawing
_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)+\|?\s*$")
_READING = re.compile(rf"[:=]\s*{NUM}|\s{NUM}$", re.IGNORECASE)  # `Loss: 0.41`, `loss 0.41`
_BORDER = re.compile(r"^\s*[━─═┏┓┗┛┡┩┳┻╇┼├┤┬┴╋┣┫└┘┌┐╭╮╰╯╞╡╪]{3,}\s*$")


def _cells(line: str) -> list[str] | None:
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
        if _RULE.match(segment) or _BORDER.match(segment):
            if self._heading:
                self.names, self._heading = self._heading, None
            return bool(self.names) or _BORDER.match(segment) is not None
        cells = _cells(segment)
        if cells and _is_header(cells):
            self._heading, self.names = evaluation_columns(cells), []
            return True
        self._heading = None
        return False

    def row(self, segment: str) -> tuple[dict[str, float], dict[str, float]] | None:
        """(metrics, axes) of a row under the header; a line that is no such row ends the table."""
        if not self.names:
            return None
        cells = _cells(segment)
        if cells is None or len(cells) != len(self.names):
            self.names = []
            return None
        values: dict[str, float] = {}
        axes: dict[str, float] = {}
        for name, cell in zip(self.names, cells, strict=True):
            if not NUMBER.match(cell):
                continue  # `No log`, a time, a note
            if (kind := role(name)) != "metric":
                axes[kind] = float(cell)
            elif is_metric_name(name):
                values[name] = logged(float(cell))
        return (values, axes) if values else None


def _is_header(cells: list[str]) -> bool:
    """Names, one of them a metric; no number and no reading among them (`| Epoch: 3 | Loss: 0.41 |`
    is a line of readings drawn with pipes)."""
    return (
        len(cells) >= 2
        and all(cells)
        and not any(NUMBER.match(c) or _READING.search(c) for c in cells)
        and any(is_metric_name(c) for c in cells)
    )
