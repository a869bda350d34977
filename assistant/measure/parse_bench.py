"""How the time to read a log grows with the length of its lines (`assistant bench parse`).

A log comes from the user, and a line may hold up to `Limits.max_line_bytes` (256 KB) before it is
skipped. Each shape below once made a reading pattern try every start in a long token, or backtrack
over it, so its time grew with the square of the line's length (32 KB of digits: 31 s). Read in
linear time, a line eight times as long takes about eight times as long."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from assistant.runs import RunParseError, parse_run

# a unit repeated to the line's length: what it stands for
SHAPES: dict[str, str] = {
    "9": "a number written out at length (a hash, a flattened array)",
    ".a-a": "one token joined by hyphens and dots",
    "_a": "one identifier joined by underscores",
    "(a": "a token of nested calls",
    "a(loss": "loss names inside nested calls",
    "tensor(": "reading holders that never close",
    "{": "braces that never close",
    "{'a": "a dict that never closes",
    '{"a": 1, ': "a JSON object that never closes",
    "a ": "words",
    "loss 1 ": "bare readings",
    "a=1 ": "key=value pairs",
    "|a  ": "table cells",
    "a - 1, ": "comma cells of `name - value` (segmentation_models' bars)",
    "early stop ": "early-stopping words",
    " ": "blanks",
    "step ": "counter words without numbers",
    "1e": "a number's exponent without digits",
    "| 1": "a table cell of digits drawn with pipes",
    "|---|---": "a Markdown rule gone on too long",
    "<tr>": "HTML rows never closed",
    "# a_": "a `#` comment of one long name, first in the log (a header of lcurve.out or loss.dat)",
    "0m 1s ": "time spent printed again and again (the PyTorch tutorials' progress lines)",
    "('a', 1 ": "(name, value) pairs that never close (PFRL's `statistics: [('average_q', 0.8)]`)",
}


def long_line(unit: str, size: int) -> str:
    """A line of about `size` characters of the shape (`# ` once before a shape that starts with it;
    a unit that draws a table closes it, so the line is read as one)."""
    head, unit = ("# ", unit[2:]) if unit.startswith("# ") else ("", unit)
    return head + unit * ((size - 3 - len(head)) // len(unit)) + ("x |" if unit.startswith("|") else "")


def _log(unit: str, size: int) -> str:
    """Readable lines with two long lines of the shape among them, the first one first."""
    line = long_line(unit, size)
    return f"{line}\nepoch 1 loss 0.5\nepoch 2 loss 0.4\n{line}\nepoch 3 loss 0.3\n"


def _seconds(text: str) -> float:
    start = time.perf_counter()
    with contextlib.suppress(RunParseError):  # refused is an answer too; the time is what is measured
        parse_run(text)
    return time.perf_counter() - start


def bench_parse(sizes: tuple[int, int] = (32_000, 256_000)) -> list[dict[str, Any]]:
    """Seconds to read a log whose two long lines are each shape at both sizes, and their ratio."""
    rows = []
    for unit, what in SHAPES.items():
        small, large = (_seconds(_log(unit, size)) for size in sizes)
        rows.append({"shape": unit, "what": what, "small_s": small, "large_s": large, "ratio": large / small})
    return rows
