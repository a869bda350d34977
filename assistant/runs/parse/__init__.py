"""Read a training log, from a path or pasted text, into one normalised `Run`.

The format is recognised from the content (not the file name, except TensorBoard's event files):
a JSON document, JSON lines, CSV with a header, else console output. Every reader ends in
`finish.finish`, which maps metric names to one vocabulary and refuses input that holds no metric.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import ijson

from assistant.runs.parse.commented import column_names, commented_header
from assistant.runs.parse.console import read_console
from assistant.runs.parse.jsondoc import read_json
from assistant.runs.parse.jsonstream import events as json_events
from assistant.runs.parse.lines import NUMBER
from assistant.runs.parse.mlflow import metrics_dir, read_mlflow
from assistant.runs.parse.table import DEFAULT_LIMITS, Limits, NoMetricError, Run, RunParseError
from assistant.runs.parse.tabular import (
    MONITOR_HEAD,
    SPACES,
    bounded_lines,
    csv_cells,
    read_csv,
    read_jsonl,
    read_monitor,
)
from assistant.runs.parse.tensorboard import event_files, is_event_file, read_tensorboard

__all__ = ["Limits", "Run", "RunParseError", "parse_run"]

_SNIFF = 64_000
_TEXT_CONTROLS = {8, 9, 10, 12, 13, 27}  # backspace, tab, line ends, form feed, a terminal's escape
_NUL_RUN = re.compile(rb"\x00+")
# one word ending in a log's extension, or a path with a folder: a file name, not a pasted log
_LOOKS_LIKE_PATH = re.compile(r"^(\S*/\S+|\S+\.(csv|json|jsonl|log|txt|out|tsv))$", re.IGNORECASE)
# the head up to its last separator: a number or word the end of the head cut in two is left out
# (a greedy match from the start, linear; `[^…]+$` searched for is quadratic on a long token)
_UP_TO_SEPARATOR = re.compile(r"(?s).*[\s,:\[\]{}\"]")
# `train loss 0.9`, XGBoost's `train-logloss:0.41`: a reading, not a column name
_ENDS_IN_NUMBER = re.compile(r"(?:\s|[:=]\s*)[-+]?\d[\d.eE+-]*$")
_DURATION = re.compile(r"^\d+:\d\d(:\d\d)?$")  # fastai's `time` column: `00:10`
# a CSV header names its columns (`2d_loss`: a name may start with a number of dimensions)
_HEADER_CELL = re.compile(r"^(\d+[A-Za-z])?[A-Za-z_][\w ./():\-]{0,200}$")
_DIGIT_LED = re.compile(r"^\d(?!\d*[A-Za-z])")  # a timestamp or a reading, not `2d_loss`
_BRACED_HEADER = re.compile(r"^\{\w+\}(?:[\t,;]\{\w+\})+$")  # column names written as `{epoch}\t{lr}`


def parse_run(
    source: str | Path,
    *,
    name: str | None = None,
    max_bytes: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Run:
    """A Run from a log file, a TensorBoard folder, or the text of a log (pasted), within `limits`
    (`max_bytes`, when given, replaces the limits' own).

    A `str` is a path when a file or folder of that name exists and it holds no line break; any
    other `str` is the log's text."""
    if max_bytes is not None:
        limits = replace(limits, max_bytes=max_bytes)
    max_bytes = limits.max_bytes
    if isinstance(source, Path):
        return _parse_path(source, name, limits)
    text = source.strip("\ufeff")
    if not text.strip():
        raise RunParseError("the log is empty: paste the training output or attach the log file")
    if "\n" not in text.strip() and len(text) < 4096:
        if _is_existing_path(text.strip()):
            return _parse_path(Path(text.strip()), name, limits)
        if _LOOKS_LIKE_PATH.match(text.strip()):
            raise RunParseError(f"{text.strip()} does not exist")
    if len(text.encode("utf-8", "ignore")) > max_bytes:
        raise RunParseError(f"the pasted log is over {max_bytes / 1e6:.0f} MB: attach the file instead")
    return _parse_text(text, name or "pasted text", limits)


def _is_existing_path(text: str) -> bool:
    try:
        return Path(text).exists()
    except OSError:  # a one-line log longer than a file name may be
        return False


def _parse_path(path: Path, name: str | None, limits: Limits) -> Run:
    name, max_bytes = name or path.name, limits.max_bytes
    if not path.exists():
        raise RunParseError(f"{path} does not exist")
    if path.is_dir() and metrics_dir(path) is not None:
        return read_mlflow(path, name, limits)
    if path.is_dir() or is_event_file(path):
        if path.is_dir() and not event_files(path):
            raise RunParseError(
                f"{path} is a folder without TensorBoard event files or an MLflow run's metrics/ folder: "
                "give a log file (CSV, JSON, JSON lines, console text) or a run folder"
            )
        return read_tensorboard(path, name, limits)
    size = path.stat().st_size
    if size == 0:
        raise RunParseError(f"{name} is empty")
    if size > max_bytes:
        raise RunParseError(
            f"{name} is {size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB limit (run_max_mb)"
        )
    with path.open("rb") as f:
        head = f.read(_SNIFF)
    if b"brain.Event" in head[:256]:  # a TensorBoard event file, whatever it was renamed to
        return read_tensorboard(path, name, limits)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # saved as UTF-16 (Windows PowerShell's `>` writes it): decoded whole, as pasted text is, within
        # the same size limit
        return _parse_text(path.read_text(encoding="utf-16", errors="replace").strip("\ufeff"), name, limits)
    if b"\x00" in head:
        if not _nul_padded(head):
            raise RunParseError(f"{name} is a binary file, not a training log (nor a TensorBoard event file)")
        # decoded whole, each run of them a line break (the text after a hole is another line), as
        # pasted text is, within the same size limit
        text = _NUL_RUN.sub(b"\n", path.read_bytes()).decode("utf-8", "replace")
        return _parse_text(text, name, limits)
    kind = _sniff(head.decode("utf-8", "replace"))
    if kind == "json":
        return read_json(lambda: path.open("rb"), name, limits)
    if kind == "monitor":
        return read_monitor(str(path), name, limits)
    if kind == "csv":
        sep = _delimiter(head.decode("utf-8", "replace"))
        if (run := _as_table(lambda: read_csv(str(path), name, sep=sep, limits=limits))) is not None:
            return run
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        return _read_lines(kind, f, name, limits)


def _nul_padded(head: bytes) -> bool:
    """Text with runs of NUL bytes in it: what a log holds where its file was extended and never
    written (a process killed or restarted under `nohup … > train.log`, a disk filled). Once they
    are dropped it is text, with hardly a control byte and valid UTF-8; a binary file's NULs come
    among other control bytes and bytes of no text."""
    if head[257:262] == b"ustar":  # a tar archive: its headers are NUL-padded text
        return False
    rest = head.replace(b"\x00", b"")
    control = sum(rest.count(bytes([c])) for c in range(32) if c not in _TEXT_CONTROLS)
    return (
        bool(rest)
        and control * 1000 <= len(rest)
        and 100 * rest.decode("utf-8", "replace").count("\ufffd") <= len(rest)
    )


def _parse_text(text: str, name: str, limits: Limits) -> Run:
    kind = _sniff(text[:_SNIFF])
    if kind == "json":
        data = text.encode("utf-8", "replace")
        return read_json(lambda: io.BytesIO(data), name, limits)
    if kind == "monitor":
        return read_monitor(io.StringIO(text), name, limits)
    if kind == "csv":
        sep = _delimiter(text[:_SNIFF])
        if (run := _as_table(lambda: read_csv(io.StringIO(text), name, sep=sep, limits=limits))) is not None:
            return run
    return _read_lines(kind, io.StringIO(text, newline=""), name, limits)


def _as_table(read: Callable[[], Run]) -> Run | None:
    """A table's reading; None when it names no training metric at all: its first lines only looked
    like a table's header (`server not ready, wait 3 sec to retry...`), and it is console text."""
    try:
        return read()
    except NoMetricError:
        return None


def _read_lines(kind: str, f: io.TextIOBase, name: str, limits: Limits) -> Run:
    """JSON lines or console text, a line at a time (any ending: \\r alone too, a captured progress
    bar; the console reader splits on \\r itself); over-long lines are skipped with a note."""
    skipped = [0]
    lines = bounded_lines(f, limits.max_line_bytes, skipped)
    run = read_jsonl(lines, name, limits) if kind == "jsonl" else read_console(lines, name, limits)
    if skipped[0]:
        run.notes.append(f"{skipped[0]} lines longer than {limits.max_line_bytes} characters were skipped")
    return run


def _first_line(head: str) -> str:
    return next((ln.strip() for ln in head.splitlines() if ln.strip()), "")


def _starts_json(head: str) -> bool:
    """Whether the head of a text reads as the start of one JSON document (a console line that
    begins with a tag, `[train] epoch 1` or `[2026-11-02 10:00:01]`, does not)."""
    head = m.group(0) if (m := _UP_TO_SEPARATOR.match(head)) else ""
    try:
        for _ in json_events(io.BytesIO(head.encode("utf-8", "replace")), DEFAULT_LIMITS):
            pass
    except RunParseError:
        return True  # nested too deep: JSON, and its reader says so
    except ijson.IncompleteJSONError as exc:
        return "premature EOF" in str(exc)  # only cut short by the end of the head
    except ijson.JSONError:
        return False
    return True


def _sniff(head: str) -> str:
    first = _first_line(head)
    if MONITOR_HEAD.match(first):
        return "monitor"
    stripped = head.lstrip()
    if (commented := _commented(head)) is not None:
        # a table whose header is a comment (DeePMD's lcurve.out, DeepXDE's loss.dat): numbers under it
        names, row = commented
        cells = csv_cells(row, _delimiter(head))
        if cells and all(NUMBER.match(c.strip()) for c in cells) and column_names(names, len(cells)):
            return "csv"
    if stripped.startswith("{") and not _BRACED_HEADER.match(first):
        # JSON lines: an object per line (a document written on one line is a document)
        lines = [ln for ln in head.splitlines()[:3] if ln.strip()]
        try:
            json.loads(first)
            if len(lines) > 1 and lines[1].lstrip().startswith("{"):
                return "jsonl"
        except (json.JSONDecodeError, RecursionError):
            pass
    if stripped.startswith(("[", "{")) and _starts_json(head):
        return "json"
    sep = _delimiter(head)
    cells = [c.strip().strip('"').strip("{}") for c in csv_cells(first, sep)]  # `{epoch}\t{lr}` too
    # a header: no cell is a number, and most name a column (one odd name, Lightning's
    # `out_tensor([0.])`, does not make the file console text; the reader skips that column)
    named = sum(bool(_HEADER_CELL.match(c)) and not _ENDS_IN_NUMBER.search(c) for c in cells)
    # (a tab-separated console line starts with its timestamp: no header cell starts with a digit,
    # unless letters follow it: `2d_loss`)
    # (commas inside parentheses group names, they do not part columns: SASRec's `epoch (val_ndcg,
    # val_hr) (test_ndcg, test_hr)` is a console table's header)
    if (
        len(cells) >= 2
        and named * 2 > len(cells)
        and not any(NUMBER.match(c) or _DIGIT_LED.match(c) for c in cells)
        and all(c.count("(") == c.count(")") for c in cells)
    ):
        second = [ln for ln in head.splitlines() if ln.strip()][1:2]
        under = csv_cells(second[0], sep) if second else []
        if len(cells) in (len(under), len(_trimmed(under))) and (
            sep != SPACES or all(NUMBER.match(c) or _DURATION.match(c) for c in under)
        ):
            return "csv"
    return "console"


def _delimiter(head: str) -> str:
    """`,`, tab or `;`, whichever the first line holds most of; else runs of spaces when it names
    three columns or more (a space-aligned table; `_sniff` then asks for a row of numbers under it)."""
    commented = _commented(head)
    # under a header written as a comment the rows say how they are separated, not the comment
    line = commented[1] if commented is not None else _first_line(head)
    sep = max([",", "\t", ";"], key=line.count)
    return sep if line.count(sep) or (commented is None and len(line.split()) < 3) else SPACES


def _commented(head: str) -> tuple[list[str], str] | None:
    """(names, the line under them) when the head's first line is a header written as a comment; the
    first two lines as they are, as the table reader takes them."""
    lines = head.splitlines()
    names = commented_header(lines[0]) if lines else None
    return (names, lines[1] if len(lines) > 1 else "") if names is not None else None


def _trimmed(cells: list[str]) -> list[str]:
    """Without the empty cells a separator at the end of every line leaves (`0.1\t4.26\t`: the header
    line was stripped of its own)."""
    while cells and not cells[-1].strip():
        cells = cells[:-1]
    return cells
