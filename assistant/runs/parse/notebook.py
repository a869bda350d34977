"""A Jupyter notebook's cell outputs as the console lines they printed, streamed (a notebook of 100k
output lines is never loaded whole): streams and plain-text results as they are, a results table shown
only as HTML (the Hugging Face Trainer's progress table, fastprogress' metrics) drawn with pipes, and
a cell's value that is one record of readings (an evaluation of the model) tagged as the test set's."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from html import unescape
from typing import IO

import ijson

from assistant.runs.parse.jsonstream import events
from assistant.runs.parse.names import is_metric_name, normalise, stage_of
from assistant.runs.parse.rewrites import unwrap_numbers
from assistant.runs.parse.table import Limits

# a notebook cell's printed output: a stream's `text` or a result's `text/plain` (a string or a list)
_OUTPUT_TEXT = re.compile(r"^cells\.item\.outputs\.item\.(?:text|data\.text/plain)(?:\.item)?$")
# ...and a result's `text/html`, its rows and cells (the Trainer's progress table: _html_table)
_HTML_PREFIX = "cells.item.outputs.item.data.text/html"
_OUTPUT_HTML = re.compile(rf"^{re.escape(_HTML_PREFIX)}(?:\.item)?$")
_TR = re.compile(r"<tr\b", re.I)
_TR_END = re.compile(r"</tr", re.I)
_CELL = re.compile(r"<t[hd]\b", re.I)
_CELL_END = re.compile(r"</t[hd]", re.I)
_HTML_TAG = re.compile(r"<[^<>]*>")  # (not `<[^>]+>`: a run of `<` without `>` made it quadratic)
_OUTPUT = "cells.item.outputs.item"
_CELL_ITEM = "cells.item"
_STREAM_NAME = "cells.item.outputs.item.name"
_HTML_ONLY = "<IPython.core.display.HTML object>"
# an output that is one record of readings alone (`{'auc': 0.7356, 'logloss': 0.5017}`): an output's
# text is kept until its end while it is this short
_RECORD = re.compile(r"^\s*\{[^{}\[\]]*\}\s*$")
_MOST_RECORD = 4096


def notebook_lines(opener: Callable[[], IO[bytes]], limits: Limits) -> Iterator[str]:
    """The text a notebook's cells printed (stream outputs and plain-text results), line by line, and
    the tables a result shows only as HTML (_html_table); a notebook that breaks off keeps what came
    before. A cell whose only output is one record of readings, with no epoch or step and no stage, is
    an evaluation of the model (`print(model.run_eval(test_file))` in a cell after the training loop's,
    or before it): its readings are the test set's, not a training record's (_record). One such record
    among the cell's other printed outputs (a loop's print between its progress bars, which go to
    stderr and split what it prints into outputs) is the loop's."""
    html: list[str] = []
    text: list[str] = []  # an output's text while it may be one record alone (a bounded length)
    size = 0
    outputs = 0  # the current cell's outputs that printed text
    alone: str | None = None  # the cell's first output, when it is one record (held until the cell ends)
    placeholder = False  # the result's plain text is only `<IPython.core.display.HTML object>`
    stderr = False  # the output is a stream to stderr
    with opener() as f:  # events() reads NaN and Infinity itself
        try:
            for prefix, event, value in events(f, limits):
                if event == "string" and _OUTPUT_TEXT.match(prefix):
                    placeholder = placeholder or str(value).strip() == _HTML_ONLY
                    if size <= _MOST_RECORD:  # a long output is no record: its lines go on as they come
                        text.append(str(value))
                        size += len(text[-1])
                        if size > _MOST_RECORD:
                            yield from "".join(text).splitlines()
                            text = []
                    else:
                        yield from str(value).splitlines()
                elif event == "string" and _OUTPUT_HTML.match(prefix):
                    html.append(str(value))
                elif event == "string" and prefix == _STREAM_NAME:
                    stderr = value == "stderr"
                elif event == "end_map" and prefix == _OUTPUT:
                    printed = "".join(text)
                    # (warnings and progress bars on stderr are not what the cell printed)
                    outputs += not stderr and (bool(printed.strip()) or size > _MOST_RECORD)
                    if alone is not None:  # not alone after all
                        yield from alone.splitlines()
                        alone = None
                    if outputs == 1 and _record(printed):
                        alone = printed
                    else:
                        yield from printed.splitlines()
                    yield from _html_table("".join(html), placeholder)
                    html, text, size, placeholder, stderr = [], [], 0, False, False
                elif event == "end_map" and prefix == _CELL_ITEM:
                    if alone is not None:
                        yield "[test] " + alone.strip()
                    alone, outputs = None, 0
        except ijson.JSONError:
            yield from (alone or "").splitlines()
            yield from "".join(text).splitlines()  # the output it broke off in


def _record(text: str) -> bool:
    """Whether an output is one record of numbers alone (`{'auc': 0.7356, 'logloss': np.float64(0.5)}`)
    whose every name is a reading's (no setting, no learning rate) and says no stage."""
    if not _RECORD.match(text):
        return False
    try:
        record = ast.literal_eval(unwrap_numbers(text.strip()))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return False
    return (
        isinstance(record, dict)
        and bool(record)
        and all(isinstance(k, str) and is_metric_name(k) and stage_of(k) is None for k in record)
        and not any(normalise(k) == "lr" for k in record)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in record.values())
    )


def _html_table(html: str, only_html: bool) -> list[str]:
    """A table a result shows only as HTML, written out drawn with pipes for the console reader's
    pipetable: the Hugging Face Trainer's progress table (a `<progress>` bar, then `Step | Training
    Loss | Validation Loss | …`), fastprogress' metrics table (miniai's `accuracy | loss | epoch |
    train`, the stage in a cell). A DataFrame's HTML is left alone: its plain-text copy is read."""
    if "<table" not in html or not ("<progress" in html or only_html):
        return []
    rows = _html_rows(html)
    if not rows:
        return []
    drawn = ["| " + " | ".join(c.replace("|", "/") or "-" for c in row) + " |" for row in rows]
    return [drawn[0], "|" + "---|" * len(rows[0]), *drawn[1:]]


def _html_rows(html: str) -> list[list[str]]:
    """The cells' text of each `<tr>`, found by splitting at the tags (linear in the HTML's length:
    `<tr>(.*?)</tr>` searched for took the square of a run of unclosed `<tr>`)."""
    rows = []
    for row in _TR.split(html)[1:]:
        row = _TR_END.split(row, maxsplit=1)[0]
        cells = []
        for cell in _CELL.split(row)[1:]:
            text = _CELL_END.split(cell.partition(">")[2], maxsplit=1)[0]
            cells.append(re.sub(r"\s+", " ", unescape(_HTML_TAG.sub("", text))).strip())
        if cells:
            rows.append(cells)
    return rows
