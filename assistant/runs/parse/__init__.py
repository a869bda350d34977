"""Read a training log, from a path or pasted text, into one normalised `Run`.

The format is recognised from the content (not the file name, except TensorBoard's event files):
a JSON document, JSON lines, CSV with a header, else console output. Every reader ends in
`table.finish`, which maps metric names to one vocabulary and refuses input that holds no metric.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

from assistant.runs.parse.console import read_console
from assistant.runs.parse.table import Run, RunParseError
from assistant.runs.parse.tabular import read_csv, read_json, read_jsonl
from assistant.runs.parse.tensorboard import event_files, is_event_file, read_tensorboard

__all__ = ["Run", "RunParseError", "parse_run"]

DEFAULT_MAX_BYTES = 500_000_000
_SNIFF = 64_000
# one word ending in a log's extension, or a path with a folder: a file name, not a pasted log
_LOOKS_LIKE_PATH = re.compile(r"^(\S*/\S+|\S+\.(csv|json|jsonl|log|txt|out|tsv))$", re.IGNORECASE)
_HEADER_CELL = re.compile(r"^[A-Za-z_][\w ./()\-]{0,80}$")  # a CSV header names its columns


def parse_run(source: str | Path, *, name: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> Run:
    """A Run from a log file, a TensorBoard folder, or the text of a log (pasted).

    A `str` is a path when a file or folder of that name exists and it holds no line break; any
    other `str` is the log's text."""
    if isinstance(source, Path):
        return _parse_path(source, name, max_bytes)
    text = source.strip("\ufeff")
    if not text.strip():
        raise RunParseError("the log is empty: paste the training output or attach the log file")
    if "\n" not in text.strip() and len(text) < 4096:
        if Path(text.strip()).exists():
            return _parse_path(Path(text.strip()), name, max_bytes)
        if _LOOKS_LIKE_PATH.match(text.strip()):
            raise RunParseError(f"{text.strip()} does not exist")
    if len(text.encode("utf-8", "ignore")) > max_bytes:
        raise RunParseError(f"the pasted log is over {max_bytes / 1e6:.0f} MB: attach the file instead")
    return _parse_text(text, name or "pasted text")


def _parse_path(path: Path, name: str | None, max_bytes: int) -> Run:
    name = name or path.name
    if not path.exists():
        raise RunParseError(f"{path} does not exist")
    if path.is_dir() or is_event_file(path):
        if path.is_dir() and not event_files(path):
            raise RunParseError(
                f"{path} is a folder without TensorBoard event files: give a log file (CSV, JSON, "
                "JSON lines, console text) or a TensorBoard run folder"
            )
        return read_tensorboard(path, name)
    size = path.stat().st_size
    if size == 0:
        raise RunParseError(f"{name} is empty")
    if size > max_bytes:
        raise RunParseError(
            f"{name} is {size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB limit (run_max_mb)"
        )
    with path.open("rb") as f:
        head = f.read(_SNIFF)
    if b"\x00" in head:
        raise RunParseError(
            f"{name} is a binary file, not a training log (TensorBoard files are read by their name, "
            "events.out.tfevents.*)"
        )
    kind = _sniff(head.decode("utf-8", "replace"))
    if kind == "json":
        return read_json(_load_json(path.read_text(encoding="utf-8", errors="replace"), name), name)
    if kind == "csv":
        return read_csv(str(path), name, sep=_delimiter(head.decode("utf-8", "replace")))
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        lines = _lines(f)
        return read_jsonl(lines, name) if kind == "jsonl" else read_console(lines, name)


def _parse_text(text: str, name: str) -> Run:
    kind = _sniff(text[:_SNIFF])
    if kind == "json":
        return read_json(_load_json(text, name), name)
    if kind == "csv":
        return read_csv(io.StringIO(text), name, sep=_delimiter(text[:_SNIFF]))
    lines = _lines(io.StringIO(text, newline=""))
    return read_jsonl(lines, name) if kind == "jsonl" else read_console(lines, name)


def _lines(f: io.TextIOBase) -> Iterator[str]:
    """Lines with any ending (\\r alone too: a captured progress bar); console splits on \\r itself."""
    for line in f:
        yield line.rstrip("\n")


def _load_json(text: str, name: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunParseError(f"{name} starts like JSON but is not valid JSON ({exc})") from None


def _first_line(head: str) -> str:
    return next((ln.strip() for ln in head.splitlines() if ln.strip()), "")


def _sniff(head: str) -> str:
    first = _first_line(head)
    stripped = head.lstrip()
    if stripped.startswith("["):
        return "json"
    if stripped.startswith("{"):
        try:
            json.loads(first)
            return "jsonl"
        except json.JSONDecodeError:
            return "json"
    sep = _delimiter(head)
    cells = [c.strip().strip('"') for c in first.split(sep)]
    if len(cells) >= 2 and all(_HEADER_CELL.match(c) for c in cells):
        second = [ln for ln in head.splitlines() if ln.strip()][1:2]
        if second and len(second[0].split(sep)) == len(cells):
            return "csv"
    return "console"


def _delimiter(head: str) -> str:
    first = _first_line(head)
    return max([",", "\t", ";"], key=first.count)
