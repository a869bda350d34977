"""Flower's (flwr) History, as its server prints it when a federated run ends: the losses and metrics of
each round, held in lists of `(round, value)` pairs. Flower 1.8 and later print a summary, one line per
round under a heading (`History (loss, distributed):`, then `round 1: 0.0238`) and the metrics as a dict
of those lists, which pprint wraps over several lines (`History (metrics, distributed, evaluate):`, then
`{'accuracy': [(1, 0.13),`); earlier releases print each list on a line of its own (`app_fit:
losses_distributed [(1, 1.09), (2, 0.80)]`, `app_fit: metrics_centralized {'accuracy': [(0, 0.08)]}`).

The summary is written out as curves printed whole (`val_loss: [2.17, 1.85, …]`, a point a round),
which the console reader reads when the log holds no other curve: a server's log, not a client's
epochs beside it. Round 0, the evaluation of the model before training, is left out, and a series
whose rounds have gaps (an evaluation every few rounds) is too (its points would land on the wrong
rounds). A distributed loss is what the clients' evaluation returned, on their held-out data
(`val`); a centralized one, the server's evaluation on its own test set (`test`); the metrics the
clients' training returned (`distributed, fit`) are the training's."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from assistant.runs.parse.inlinejson import python_literal
from assistant.runs.parse.jsonstream import spells_nan
from assistant.runs.parse.lines import LOG_PREFIX, NUM
from assistant.runs.parse.rewrites import plain_text

_HEADING = re.compile(r"^History \((loss|metrics), (distributed|centralized)(?:, (fit|evaluate))?\):$")
_ROUND = re.compile(rf"^round (\d+): ({NUM})$", re.IGNORECASE)
# Flower before 1.8: `app_fit: losses_distributed [(1, 1.09), …]`, `metrics_distributed_fit {…}`
_LISTED = re.compile(r"\b(losses|metrics)_(distributed|centralized)(_fit)?\s+([\[{].*)$")
_MOST_LINES = 5_000  # lines a wrapped dict of metrics may take: more, and it is no summary
_STAGES = {("distributed", "fit"): "train", ("distributed", "evaluate"): "val", ("distributed", None): "val"}


def flower_history(lines: Iterable[str]) -> Iterator[str]:
    """The lines, with Flower's History (see the module) written out where it ends as curves printed
    whole; every other line as it is."""
    series: dict[str, dict[int, float]] = {}  # each series' readings by round
    block: tuple[str, str] | None = None  # the heading's kind and stage, while its lines follow
    wrapped: list[str] = []  # a dict of metrics pprint wrapped, until its brackets close
    open_brackets = 0
    for line in lines:
        if not (block or wrapped or "History (" in line or "_distributed" in line or "_centralized" in line):
            if series and line.strip():
                yield from _written_out(series)
                series = {}
            yield line
            continue
        message = LOG_PREFIX.sub("", plain_text(line), count=1).strip()  # Flower colours its level
        if wrapped:
            wrapped.append(message)
            open_brackets += _opened(message)
            if open_brackets <= 0 or len(wrapped) > _MOST_LINES:
                _add(series, "metrics", block[1] if block else "val", " ".join(wrapped))
                wrapped, block = [], None  # one dict a heading: a `{` line after it is no summary's
            continue
        if heading := _HEADING.match(message):
            kind, where, how = heading.groups()
            block = (kind, _STAGES.get((where, how), "test"))
            continue
        if block and block[0] == "loss" and (pair := _ROUND.match(message)):
            series.setdefault(f"{block[1]}_loss", {})[int(pair.group(1))] = float(pair.group(2).lower())
            continue
        if block and block[0] == "metrics" and message.startswith("{"):
            wrapped, open_brackets = [message], _opened(message)
            if open_brackets <= 0:
                _add(series, "metrics", block[1], message)
                wrapped, block = [], None
            continue
        if listed := _LISTED.search(message):
            kind, where, fit, text = listed.groups()
            _add(series, kind, _STAGES.get((where, "fit" if fit else None), "test"), text)
            continue
        block = None
        if series and message:
            yield from _written_out(series)
            series = {}
        yield line
    if wrapped and block:
        _add(series, "metrics", block[1], " ".join(wrapped))
    yield from _written_out(series)


def _opened(text: str) -> int:
    """How many more brackets the text opens than it closes."""
    return text.count("{") + text.count("[") - text.count("}") - text.count("]")


def _add(series: dict[str, dict[int, float]], kind: str, stage: str, text: str) -> None:
    """The `(round, value)` pairs `text` prints (a list of them for a loss, a dict of such lists for
    metrics) added to `series` under the stage's names; nothing when it prints none."""
    value = python_literal(text)
    lists = {"loss": value} if kind in ("loss", "losses") else value
    if not isinstance(lists, dict):
        return
    for name, pairs in lists.items():
        word = re.sub(r"\W+", "_", str(name)).strip("_")  # `'Test accuracy:'`, a name as printed
        series.setdefault(f"{stage}_{word}", {}).update(_pairs(pairs))


def _pairs(pairs: Any) -> Iterator[tuple[int, float]]:
    """Each `(round, value)` of a list; a value returned as a dict of one number (`(1, {'Test loss':
    2.31})`, an evaluation that named its loss) is that number."""
    if not isinstance(pairs, list):
        return
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], int)):
            continue
        value = pair[1]
        if isinstance(value, dict) and len(value) == 1:
            value = next(iter(value.values()))
        if spells_nan(value):
            value = float(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            yield pair[0], float(value)


def _written_out(series: dict[str, dict[int, float]]) -> Iterator[str]:
    """Each series as a curve printed whole, when its rounds from 1 on have no gap (round 0 left out)."""
    for name, readings in series.items():
        points = sorted((at, v) for at, v in readings.items() if at > 0)
        if [at for at, _ in points] == list(range(1, len(points) + 1)) and points:
            yield f"{name}: [{', '.join(repr(v) for _, v in points)}]"
