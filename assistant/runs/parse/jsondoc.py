"""Whole JSON documents, read as a stream (ijson's C parser), never loaded whole: Hugging Face's
trainer_state.json (`log_history`), a Keras `history.history` dump, a list of records, or series of
[step, value] pairs.

Two passes over the bytes. The first only checks the nesting (deeper than `Limits.max_depth` is
refused before the parser's own bookkeeping can grow with it) and notes where the readings are: a
top-level list of records, lists of records under top-level keys, or top-level lists of numbers. The
second builds one record at a time with ijson's C builder, so a 200 MB document costs what its
numbers cost in the table, not half a gigabyte of Python objects.

Python's `json` writes a NaN loss as a bare `NaN` (and `Infinity`), which strict JSON parsers refuse:
the bytes pass through `_BareNumbers`, which quotes those tokens outside strings, and a quoted "NaN"
reads as a logged NaN. A document that breaks off keeps what came before it, with a note.
"""

from __future__ import annotations

import io
import math
import re
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from html import unescape
from typing import IO, Any

import ijson

from assistant.runs.parse.console import read_console
from assistant.runs.parse.names import export_tag, role, stage_of
from assistant.runs.parse.table import (
    DEFAULT_LIMITS,
    Columns,
    Limits,
    Run,
    RunParseError,
    as_float,
    finish,
    logged,
)

_CHUNK = 1 << 16
_DEPTH_BUFFER = 2048  # bytes the nesting check's parser takes at a time
_BARE = re.compile(rb"-?Infinity|NaN")
# a JSON string (kept as it is) or a bare non-standard number (quoted)
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\Z)|(-?Infinity|NaN)')  # a string may run past the chunk
_STRING_REST = re.compile(rb'(?:[^"\\]|\\.)*"')  # the rest of a string the chunk starts inside
_SPECIAL = {"nan", "-nan", "inf", "-inf", "infinity", "-infinity"}
_UNESCAPED_QUOTE = re.compile(rb'(?<!\\)(?:\\\\)*"')  # a quote after an even run of backslashes
# a list of numbers two objects deep or more, not inside a list: Ludwig's `training.combined.loss`,
# Sacred's `training.loss.values` (beside its `steps`)
_SERIES = re.compile(r"^(?:[^.]+\.){2,}item$")
_STEPS_KEYS = ("steps", "step", "iterations", "epochs")  # a series object's own x (Sacred)
_VALUES_KEYS = ("values", "value")
_MODE_KEYS = ("mode", "phase", "split", "stage")  # a record's stage, said in a field
# a notebook cell's printed output: a stream's `text` or a result's `text/plain` (a string or a list)
_OUTPUT_TEXT = re.compile(r"^cells\.item\.outputs\.item\.(?:text|data\.text/plain)(?:\.item)?$")
# ...and a result's `text/html`, its rows and cells (the Trainer's progress table: __trainer_table)
_HTML_PREFIX = "cells.item.outputs.item.data.text/html"
_OUTPUT_HTML = re.compile(rf"^{re.escape(_HTML_PREFIX)}(?:\.item)?$")
_HTML_ROW = re.compile(r"<tr[^>]*>(.*?)</tr>", re.S | re.I)
_HTML_CELL = re.compile(r"<t[hd][^>]*>(.*?)</t[hd]>", re.S | re.I)
_HTML_TAG = re.compile(r"<[^>]+>")
UNNAMED_VALUE = "value score"  # a record's lone `value` ({"Iteration": 3, "Value": 1.6, "Agent": "DQN"})


class _BareNumbers(io.RawIOBase):
    """A binary reader that rewrites bare NaN / Infinity / -Infinity as strings. Chunks without either
    word pass through untouched (the reader only tracks whether it ends inside a string, by counting
    quotes); a chunk with one is rewritten token by token from that state. A word cut by the end of a
    chunk waits for the next one."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.pending, self.out, self.eof, self.in_string = b"", b"", False, False

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self.out and not self.eof:
            chunk = self.raw.read(_CHUNK)
            self.eof = not chunk
            data = self.pending + chunk
            end = len(data)
            while not self.eof and end and (data[end - 1 : end].isalpha() or data[end - 1 : end] == b"\\"):
                end -= 1  # a word (or a run of backslashes) cut in two: finish it with the next chunk
            data, self.pending = data[:end], data[end:]
            self.out = self._rewrite(data) if _BARE.search(data) else data
            self.in_string ^= _quotes(data) % 2 == 1

    def _rewrite(self, data: bytes) -> bytes:
        start = 0
        if self.in_string:  # finish the string the chunk starts inside, untouched
            m = _STRING_REST.match(data)
            if m is None:
                return data
            start = m.end()
        return data[:start] + _TOKEN.sub(lambda m: b'"%s"' % m[1] if m[1] else m[0], data[start:])

    def readinto(self, buffer: Any) -> int:
        self._fill()
        n = min(len(buffer), len(self.out))
        buffer[:n] = self.out[:n]
        self.out = self.out[n:]
        return n


def _quotes(data: bytes) -> int:
    """Quotes that open or close a string: those after an even number of backslashes (`\\"` is an
    escaped quote, `\\\\"` an escaped backslash and then a quote, `\\\\\\"` both escaped)."""
    return len(_UNESCAPED_QUOTE.findall(data))


def _parser(opener: Callable[[], IO[bytes]]) -> IO[bytes]:
    return io.BufferedReader(_BareNumbers(opener()), _CHUNK)


def events(f: IO[bytes], limits: Limits) -> Iterator[tuple[str, str, Any]]:
    """ijson's (prefix, event, value) of a byte stream, bare NaN/Infinity accepted, nesting capped."""
    depth = 0
    # small parser buffers: ijson yields a buffer's events only once it has parsed all of them, and
    # the path it keeps per event grows with the depth, so a buffer of `[[[[…` must stay small
    stream = io.BufferedReader(_BareNumbers(f), _CHUNK)
    for prefix, event, value in ijson.parse(stream, buf_size=_DEPTH_BUFFER, use_float=True):
        if event == "start_map" or event == "start_array":
            depth += 1
            if depth > limits.max_depth:
                raise RunParseError(
                    f"the JSON is nested more than {limits.max_depth} levels deep (json_max_depth): "
                    "a training log is a list of flat records"
                )
        elif event == "end_map" or event == "end_array":
            depth -= 1
        yield prefix, event, value


def _layout(
    opener: Callable[[], IO[bytes]], limits: Limits
) -> tuple[list[str], bool, bool, bool, bool, bool]:
    """(prefixes of lists of records, whether top-level lists of numbers exist, whether top-level lists
    of [step, value] pairs exist, whether the document is itself a list of numbers, whether lists of
    numbers sit deeper, in named objects, whether the document is itself a list of lists) of a
    document whose nesting is within the limit. Raises ijson.JSONError where it is not JSON."""
    records: list[str] = []
    numbers = pairs = bare = nested = rows = False
    last = previous = ""  # the last event at the top two levels; the last event
    try:
        with opener() as f:
            for prefix, event, _ in events(f, limits):
                if last == "start_array" and (prefix == "item" or prefix.count(".") == 1):
                    if event == "start_map" and prefix not in records:
                        records.append(prefix)
                    elif event == "number":
                        numbers, bare = numbers or prefix != "item", bare or prefix == "item"
                    elif event == "start_array":
                        pairs, rows = pairs or prefix != "item", rows or prefix == "item"
                if prefix.count(".") <= 1:
                    last = event
                nested = nested or (
                    previous == "start_array" and event == "number" and _SERIES.match(prefix) is not None
                )
                previous = event
    except ijson.JSONError:
        if not (records or numbers or pairs or bare or nested or rows):
            raise
    return records, numbers, pairs, bare, nested, rows


def _flat(record: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numbers of a record, nested objects joined with `/` ({"val": {"loss": 1}} -> val/loss); lists
    inside a record are not readings."""
    out: dict[str, float] = {}
    for k, v in record.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{key}/"))
        elif isinstance(v, bool):
            continue
        elif isinstance(v, int | float):
            out[key] = logged(v)
        elif isinstance(v, str) and v.strip().lower() in _SPECIAL:
            out[key] = logged(v)  # how Python's json (quoted above) and some loggers spell NaN
    return out


def add_record(record: Mapping[str, Any], cols: Columns, prefix: str = "") -> None:
    """One record of a log (a JSON object): its epoch and step, and its metrics. A record that says
    its stage in a field (mmdetection's `"mode": "val"`) gives it to the names that say none."""
    values = _flat(record, prefix)
    said = next((v for k in _MODE_KEYS if isinstance(v := record.get(k), str)), "")
    if (stage := stage_of(said)) and stage != "train":
        values = {k if stage_of(k) or role(k) != "metric" else f"{stage}_{k}": v for k, v in values.items()}
    epoch = step = None
    for key in list(values):
        axis = role(key.rsplit("/", 1)[-1] if prefix else key)
        if axis == "epoch" and epoch is None:
            epoch = values.pop(key)
        elif axis == "step" and step is None:
            step = values.pop(key)
    if len(values) == 1 and (only := next(iter(values))).lower() == "value":
        values = {UNNAMED_VALUE: values[only]}  # the record's one reading, which nothing names
    if values:
        cols.add(epoch, step, values)


def read_json(opener: Callable[[], IO[bytes]], name: str, limits: Limits = DEFAULT_LIMITS) -> Run:
    """A whole JSON document, opened (twice) by `opener`: records under `log_history`
    (trainer_state.json; the summary entry with `train_runtime` is not a point on the curve) or under
    another top-level key (its name prefixes theirs), a top-level list of records, or top-level lists
    of numbers (a Keras history, one value per epoch) or of [step, value] pairs (one series per key,
    each logged at its own steps: {"train_loss": [[0, 11.9], …], "val_loss": [[0, 12.1], [500, 7.3]]}),
    or a bare list of numbers (`str(losses)` written to a file: read as the loss, with a note)."""
    cols = Columns(limits.max_metrics)
    notes: list[str] = []
    fmt = "json"
    try:
        records, numbers, pairs, bare, nested, rows = _layout(opener, limits)
    except ijson.JSONError as exc:
        raise RunParseError(f"{name} starts like JSON but is not valid JSON ({_reason(exc)})") from None
    if "cells.item" in records:  # a Jupyter notebook: the training console is in its cells' outputs
        run = read_console(_notebook_lines(opener, limits), name, limits)
        return replace(run, fmt="notebook", notes=["read from the notebook's cell outputs", *run.notes])
    try:
        for where in [] if pairs else records:  # with series, lists of records are their summaries
            outer = where.partition(".")[0] if where != "item" else ""
            fmt = "trainer-state" if outer == "log_history" else fmt
            prefix = f"{outer}/" if outer and outer != "log_history" else ""
            with _parser(opener) as f:
                for rec in ijson.items(f, where, use_float=True):
                    if isinstance(rec, Mapping) and "train_runtime" not in rec:
                        add_record(rec, cols, prefix)
        if UNNAMED_VALUE in cols.names:
            notes.append(
                "the records name no metric (`Value`): it is drawn as an unnamed score, and no trend "
                "is judged on it"
            )
        if pairs:
            fmt = "json-series"
            _add_series(opener, cols)
        if numbers and not cols.n:
            fmt = "keras-history"
            history: dict[str, array] = {}
            with _parser(opener) as f:
                for key, values in ijson.kvitems(f, "", use_float=True):
                    if isinstance(values, list):
                        floats = [logged(v) if isinstance(v, int | float) else math.nan for v in values]
                        history[key] = array("d", floats)
            for i in range(max((len(v) for v in history.values()), default=0)):
                row = {k: v[i] for k, v in history.items() if i < len(v) and not math.isnan(v[i])}
                cols.add(float(i + 1), None, row)
        if nested and not cols.n:
            fmt = "json-nested-series"
            _add_nested(opener, cols, limits)
        if bare and not cols.n:
            fmt = "json-list"
            with _parser(opener) as f:
                for i, v in enumerate(ijson.items(f, "item", use_float=True)):
                    if isinstance(v, int | float) and not isinstance(v, bool):
                        cols.add(None, float(i + 1), {"loss": logged(v)})
            notes.append(
                f"a bare list of {cols.n} numbers names no metric: each is read as the training loss "
                "of one epoch or step, in order"
            )
        if rows and not cols.n and _add_export(opener, cols, tag := export_tag(name)):
            fmt = "tensorboard-json"
            notes.append(
                f"a TensorBoard JSON export of one scalar: its values are read as `{tag}` (file name)"
            )
    except ijson.JSONError as exc:  # the first pass stopped there too: keep what came before
        notes.append(f"the JSON breaks off before its end ({_reason(exc)}): what came before was read")
    if not (records or numbers or pairs or bare or nested or cols.n):
        raise RunParseError(
            f"{name} is JSON but not a training log (it holds no training metric): expected Hugging "
            "Face's trainer_state.json (with "
            '`log_history`), a Keras history ({"loss": [...]}), a list of records, or one object per line.'
        )
    return finish(cols, fmt, name, notes)


def _add_export(opener: Callable[[], IO[bytes]], cols: Columns, tag: str) -> bool:
    """TensorBoard's JSON download of one scalar: `[[wall time, step, value], …]`. Whether it was one."""
    with _parser(opener) as f:
        for row in ijson.items(f, "item", use_float=True):
            if not (isinstance(row, list) and len(row) == 3 and all(isinstance(v, int | float) for v in row)):
                return False
            cols.add(None, float(row[1]), {tag: logged(row[2])})
    return True


def _notebook_lines(opener: Callable[[], IO[bytes]], limits: Limits) -> Iterator[str]:
    """The text a notebook's cells printed (stream outputs and plain-text results), line by line, and
    the Hugging Face Trainer's progress table (HTML only: _trainer_table); a notebook that breaks off
    keeps what came before."""
    html: list[str] = []
    with opener() as f:  # events() reads NaN and Infinity itself
        try:
            for prefix, event, value in events(f, limits):
                if event == "string" and _OUTPUT_TEXT.match(prefix):
                    yield from str(value).splitlines()
                elif event == "string" and _OUTPUT_HTML.match(prefix):
                    html.append(str(value))
                elif html and not prefix.startswith(_HTML_PREFIX):
                    yield from _trainer_table("".join(html))
                    html = []
        except ijson.JSONError:
            return
    yield from _trainer_table("".join(html))


def _trainer_table(html: str) -> list[str]:
    """The Hugging Face Trainer's notebook progress table (a `<progress>` bar, then a `<table>` of
    `Step | Training Loss | Validation Loss | …`) as console lines: a header, then a row per
    evaluation, each cell one word (`Training_Loss`, `No_log`). Any other HTML (a DataFrame, whose
    plain-text copy is read already) gives nothing."""
    if "<progress" not in html or "<table" not in html:
        return []
    lines = []
    for row in _HTML_ROW.findall(html):
        cells = (unescape(_HTML_TAG.sub("", c)).strip() for c in _HTML_CELL.findall(row))
        lines.append(" ".join(re.sub(r"\s+", "_", c) or "-" for c in cells))
    return lines


def _add_series(opener: Callable[[], IO[bytes]], cols: Columns) -> None:
    """Top-level lists of [step, value] pairs as rows by step (each series has its own steps)."""
    by_step: dict[float, dict[str, float]] = {}
    with _parser(opener) as f:
        for key, values in ijson.kvitems(f, "", use_float=True):
            if not isinstance(values, list):
                continue
            for pair in values:
                if (
                    isinstance(pair, list)
                    and len(pair) == 2
                    and all(isinstance(v, int | float) and not isinstance(v, bool) for v in pair)
                ):
                    by_step.setdefault(as_float(pair[0]), {})[key] = logged(pair[1])
    for step in sorted(by_step):
        cols.add(None, step, by_step[step])


def _add_nested(opener: Callable[[], IO[bytes]], cols: Columns, limits: Limits) -> None:
    """Lists of numbers inside named objects, one series each, named by their path (`training/combined
    /loss`: Ludwig's training_statistics.json, one value per epoch), or, for an object holding
    `values` beside `steps` (Sacred's metrics.json), that object's path at those steps."""
    series: dict[str, array] = {}
    with opener() as f:  # events() reads NaN and Infinity itself
        for prefix, event, value in events(f, limits):
            if event == "number" and _SERIES.match(prefix):
                series.setdefault(prefix.removesuffix(".item"), array("d")).append(logged(value))
    by_x: dict[tuple[bool, float], dict[str, float]] = {}
    for path, values in series.items():
        parent, _, last = path.rpartition(".")
        if last in _STEPS_KEYS:
            continue
        steps = next((series[f"{parent}.{k}"] for k in _STEPS_KEYS if f"{parent}.{k}" in series), None)
        name = (parent if last in _VALUES_KEYS else path).replace(".", "/")
        for i, v in enumerate(values):
            at = (True, steps[i]) if steps is not None and i < len(steps) else (False, float(i + 1))
            by_x.setdefault(at, {})[name] = v
    for (is_step, x), row in sorted(by_x.items()):
        cols.add(None if is_step else x, x if is_step else None, row)


def _reason(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
