"""Layouts of a log that were refused or half read: a file saved as UTF-16, a table ruled by `|` whose
column names are several words, and readings printed as an object under a stage's name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant.runs import RunParseError, parse_run
from tests.run_helpers import falling


def _informer_log(train: list[float], val: list[float]) -> str:
    """An LTSF-Linear/Informer console log (`Epoch: 3, Steps: 16 | Train Loss: 0.507 Vali Loss: 0.255`)."""
    lines = ["Args in experiment:", ">>>>>>>start training : DLinear_ili>>>>>>>"]
    for e, (t, v) in enumerate(zip(train, val, strict=True), 1):
        lines += [
            f"Epoch: {e} cost time: 0.41",
            f"Epoch: {e}, Steps: 16 | Train Loss: {t:.7f} Vali Loss: {v:.7f} Test Loss: {3 * v:.7f}",
        ]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_a_log_saved_as_utf16_is_read_like_any_other(tmp_path: Path, encoding: str):
    # Windows PowerShell's `python run.py > train.log` writes UTF-16 with a byte-order mark: every other
    # byte is a zero, and the log was refused as a binary file
    train, val = falling(10, 0.74, 0.47), falling(10, 0.45, 0.23)
    path = tmp_path / "train.log"
    text = _informer_log(train, val)
    path.write_bytes(("\ufeff" + text).encode(encoding))
    run = parse_run(path)
    assert run.table.equals(parse_run(text).table)
    assert np.allclose(run.table["train_loss"], np.round(train, 7))
    assert np.allclose(run.table["val_loss"], np.round(val, 7))


def test_a_binary_file_without_a_byte_order_mark_is_still_refused(tmp_path: Path):
    path = tmp_path / "weights.log"
    path.write_bytes(b"\x00\x01\x02loss 0.5\x00" * 50)
    with pytest.raises(RunParseError, match="binary"):
        parse_run(path)


def test_a_table_ruled_by_pipes_with_names_of_several_words_is_read_by_column():
    # NeuralForceField's PrintingHook: `Time | Epoch | Learning rate | Train loss | Validation loss | …`,
    # a row per epoch under it; split on blanks, the names never lined up with the row's cells
    val = falling(20, 650, 5)
    rows = [" Time | Epoch | Learning rate | Train loss | Validation loss | MAE_energy | GPU Memory (MB)"]
    rows += [
        f"31:{8 + e:02d} | {e:5d} |     3.000e-04 | {v / 2:10.4f} | {v:15.4f} | {v / 100:10.4f} |   0"
        for e, v in enumerate(val, 1)
    ]
    run = parse_run("\n".join(rows))
    assert list(run.table["epoch"]) == list(range(1, 21))
    assert np.allclose(run.table["val_loss"], np.round(val, 4))
    assert np.allclose(run.table["train_loss"], np.round(np.array(val) / 2, 4))
    assert "train_gpu_memory_mb" not in run.table  # a resource column, not a metric


def test_readings_printed_as_an_object_under_a_stage_name_are_that_stages_beside_the_lines_own():
    # RelBench's example: `Epoch: 01, Train loss: 4.59, Val metrics: {'r2': 0.27, 'mae': 3.19, …}`;
    # the object's readings were read as the training set's and the training loss beside it was lost;
    # `Best Val metrics: {…}` at the end is the best so far, no new evaluation
    train, mae = falling(10, 4.6, 4.2), [3.19, 3.14, 3.15, 3.16, 3.21, 3.24, 3.25, 3.23, 3.19, 3.23]
    line = "Epoch: {e:02d}, Train loss: {t}, Val metrics: {{'r2': {r2:.4f}, 'mae': {m}, 'rmse': {rmse}}}"
    lines = [
        line.format(e=e, t=t, r2=0.5 - m / 10, m=m, rmse=m + 1)
        for e, (t, m) in enumerate(zip(train, mae, strict=True), 1)
    ]
    lines += ["Best Val metrics: {'r2': 0.186, 'mae': 3.14}", "Best test metrics: {'mae': 4.38}"]
    run = parse_run("\n".join(lines))
    assert len(run.table) == 10
    assert np.allclose(run.table["train_loss"], train)
    assert np.allclose(run.table["val_mae"], mae)
    assert not any(c.startswith("train_") and c != "train_loss" for c in run.table.columns)
