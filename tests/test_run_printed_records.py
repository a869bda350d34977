"""Records a trainer prints as Python or JSON objects on its console, read with what Python spells
bare: a Hugging Face fine-tune whose loss turns NaN is that, not the healthy run before it."""

from __future__ import annotations

import math

from assistant.runs import detect, parse_run
from assistant.runs.parse.inlinejson import numbers_of, python_dict
from tests.run_helpers import falling


def test_a_nan_loss_in_a_printed_dict_is_a_nan_reading():
    # the Trainer's console prints `{'loss': nan, 'grad_norm': nan, 'learning_rate': …, 'epoch': 2.9}`
    # once its loss overflows; no Python literal spells a bare `nan`, and the records were dropped,
    # leaving the run before them "healthy"
    losses = falling(30, 2.0, 1.2) + [math.nan] * 10
    records = [
        f"{{'loss': {v!r}, 'grad_norm': {1.2 if v == v else math.nan!r}, 'learning_rate': 5e-05, "
        f"'epoch': {(i + 1) / 10:.2f}}}"
        for i, v in enumerate(losses)
    ]
    assert "'loss': nan" in records[-1]
    found = detect(parse_run("\n".join(records)))
    assert found[0].kind == "diverged" and "NaN" in found[0].evidence
    # inf, -inf and a name or string that holds the letters stay what they are
    record = python_dict("{'loss': inf, 'reward': -inf, 'note': 'nan: inf', 'infer': 1.0}")
    assert record is not None and record["note"] == "nan: inf"
    numbers = numbers_of(record)
    assert numbers["loss"] == math.inf and numbers["reward"] == -math.inf and numbers["infer"] == 1.0
