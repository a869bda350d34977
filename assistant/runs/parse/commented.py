"""A table whose header is a comment: `#` before the column names, rows of numbers under it.

DeePMD-kit's `lcurve.out` names a column a name (`#  step  rmse_val  rmse_trn … lr`; a restarted
run prints the header again, a comment the reader skips). DeepXDE's `loss.dat` names a block of
columns a name (`# step, loss_train, loss_test, metrics_test`): one column per term of the loss, the
training block and the test block as wide, the metrics after them; each block is summed into the
loss it is the terms of."""

from __future__ import annotations

import re

import pandas as pd

from assistant.runs.parse.names import is_metric_name, role
from assistant.runs.parse.table import text_values

# `#` and two names or more, separated by spaces or commas: nothing else on the line (a separator
# is never empty, so a long name is not split every way it could be)
_HEADER = re.compile(r"^#\s*([A-Za-z_][\w./@-]*(?:(?:\s*,\s*|\s+)[A-Za-z_][\w./@-]*)+)\s*,?\s*$")
_DEEPXDE = ("step", "loss_train", "loss_test")


def commented_header(line: str) -> list[str] | None:
    """The column names a `#` line gives, or None when it is not one: one name at least says an axis
    or a metric (`# My run` over rows of numbers is a title)."""
    m = _HEADER.match(line.strip())
    names = re.split(r"[\s,]+", m.group(1)) if m else []
    return names if any(role(n) != "metric" or is_metric_name(n) for n in names) else None


def column_names(names: list[str], width: int) -> tuple[list[str], str | None] | None:
    """The name of each of a row's `width` columns, and a note to say when a name stands for a block;
    None when the header does not fit the rows."""
    if len(names) == width:
        return names, None
    if tuple(names[:3]) != _DEEPXDE or names[3:] not in ([], ["metrics_test"]) or width < 3:
        return None
    # the two loss blocks are as wide; the header names the metrics whether or not there are any, so
    # their number is assumed: none when the columns after the step are even in number, one (an L2
    # relative error) when odd; two metrics would be read as one more term in each block, and the
    # note says what was assumed
    metrics = (width - 1) % 2 if names[3:] else 0
    terms = (width - 1 - metrics) // 2
    if metrics == 0 and (width - 1) % 2:
        return None
    columns = ["step"] + ["loss_train"] * terms + ["loss_test"] * terms + ["metrics_test"] * metrics
    note = (
        f"DeepXDE's loss.dat: loss_train and loss_test are each the sum of their {terms} terms "
        f"({'one metric' if metrics else 'no metric'} assumed after them: its header does not say how many)"
    )
    return columns, note


def sum_blocks(chunk: pd.DataFrame) -> pd.DataFrame:
    """Columns that share a name (a DeepXDE block) summed into one: a term logged as NaN makes the sum
    a logged NaN (+inf, table.text_values), a blow-up; an empty cell leaves it not logged."""
    if not chunk.columns.duplicated().any():
        return chunk
    numbers = chunk.apply(text_values)
    return pd.DataFrame(
        {
            name: numbers.loc[:, chunk.columns == name].sum(axis=1, skipna=False)
            for name in dict.fromkeys(chunk.columns)
        }
    )
