"""Plain console output, read line by line (a 100k-line log never sits in memory as lines).

Understood, in any mix:
- Keras: an `Epoch 3/20` line, then a progress line `32/32 [====] - 0s - loss: 0.41 - val_loss: 0.58`
  (its later updates of the same epoch replace the earlier ones: the last is the epoch's figure);
- key/value lines: `epoch 3 | step 1200 | loss 0.41`, `step=1200 loss=0.41 lr=1e-3`;
- tqdm bars with a postfix: `Epoch 2: 100%|████| 938/938 [00:12<00:00, 75.1it/s, loss=0.41]` (a
  captured bar's updates are separated by carriage returns; each update is one reading).
A `name: value` pair counts only when its name is a metric (names.METRIC_TOKENS), so `ETA: 3s`,
`v_num=0` or timings are never taken for one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from assistant.runs.parse.names import is_metric_name
from assistant.runs.parse.table import DEFAULT_LIMITS, Columns, Limits, Run, finish, logged

NUM = r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf(?:inity)?)(?![\w.])"
_PAIR = re.compile(rf"([A-Za-z][\w./]*)\s*[:=]\s*({NUM})", re.IGNORECASE)
_SPACED = re.compile(rf"^\s*([A-Za-z][\w./ ]*?)\s+({NUM})\s*$", re.IGNORECASE)  # `loss 0.41` in a | cell
_EPOCH = re.compile(r"\bepoch\b\s*[:=#]?\s*(\d+)(?:\s*/\s*\d+)?", re.IGNORECASE)
_STEP = re.compile(r"\b(?:global[_ ]step|step|iteration|iter)\b\s*[:=#]?\s*(\d+)", re.IGNORECASE)
_COUNTER = re.compile(r"(?<![\w./])(\d+)/(\d+)\s*(?:\[|━|\|)")  # a progress bar's `938/938 [`


def _metrics(segment: str) -> dict[str, float]:
    found = {m.group(1): logged(float(m.group(2))) for m in _PAIR.finditer(segment)}
    if "|" in segment:
        for cell in segment.split("|"):
            m = _SPACED.match(cell)
            if m:
                found.setdefault(m.group(1).strip(), logged(float(m.group(2))))
    return {k: v for k, v in found.items() if is_metric_name(k)}


def read_console(lines: Iterable[str], name: str, limits: Limits = DEFAULT_LIMITS) -> Run:
    cols = Columns(limits.max_metrics)
    epoch: float | None = None
    offset, last_count = 0, 0  # a bar without epochs restarts its counter: steps keep counting
    row_epoch_key: float | None = None  # the epoch the last row belongs to when it has no step
    for line in lines:
        for segment in line.split("\r"):
            if not segment.strip():
                continue
            m = _EPOCH.search(segment)
            if m:
                epoch = float(m.group(1))
            values = _metrics(segment)
            if not values:
                continue
            s = _STEP.search(segment)
            step = float(s.group(1)) if s else None
            if step is None and epoch is None:
                c = _COUNTER.search(segment)
                if c:
                    count = int(c.group(1))
                    if count < last_count:
                        offset += last_count
                    last_count = count
                    step = float(offset + count)
            if step is None and epoch is not None and cols.n and row_epoch_key == epoch:
                cols.update_last(epoch, values)  # a later update or the validation line of this epoch
                continue
            cols.add(epoch, step, values)
            row_epoch_key = epoch if step is None else None
    return finish(cols, "console", name)
