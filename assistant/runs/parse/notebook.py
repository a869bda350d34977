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
from assistant.runs.parse.names import role, stage_of
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
_HTML_ONLY = "<IPython.core.display.HTML object>"
# an output that is one record of readings alone (`{'auc': 0.7356, 'logloss': 0.5017}`): an output's
# text is kept until its end while it is this short
_RECORD = re.compile(r"^\s*\{[^{}\[\]]*\}\s*$")
_MOST_RECORD = 4096


def notebook_lines(opener: Callable[[], IO[bytes]], limits: Limits) -> Iterator[str]:
    """The text a notebook's cells printed (stream outputs and plain-text results), line by line, and
    the tables a result shows only as HTML (_html_table); a notebook that breaks off keeps what came
    before. An output that is one record of readings alone, with no epoch or step and no stage, is an
    evaluation of the model (`print(model.run_eval(test_file))` in a cell after the training loop's,
    or before it): its readings are the test set's, not a training record's (_evaluation)."""
    html: list[str] = []
    text: list[str] = []  # an output's text while it may be one record alone (a bounded length)
    size = 0
    placeholder = False  # the result's plain text is only `<IPython.core.display.HTML object>`
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
                elif event == "end_map" and prefix == _OUTPUT:
                    yield from _evaluation("".join(text))
                    yield from _html_table("".join(html), placeholder)
                    html, text, size, placeholder = [], [], 0, False
        except ijson.JSONError:
            return


def _evaluation(text: str) -> list[str]:
    """An output's lines, tagged `[test]` when the output is one record of numbers alone, whose names
    say no stage and none of which is an epoch or a step."""
    if not _RECORD.match(text):
        return text.splitlines()
    try:
        record = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text.splitlines()
    if not (
        isinstance(record, dict)
        and record
        and all(isinstance(k, str) and stage_of(k) is None and role(k) == "metric" for k in record)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in record.values())
    ):
        return text.splitlines()
    return ["[test] " + text.strip()]


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
