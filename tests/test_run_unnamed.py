"""Readings a console prints without a name: read as the training loss, and said, when the log
names no metric that makes a curve."""

from __future__ import annotations

import numpy as np

from assistant.runs import detect, parse_run


def test_the_pytorch_tutorials_progress_lines_time_spent_and_left_then_the_iteration_and_its_loss():
    """`print('%s (%d %d%%) %.4f' % (timeSince(start, iter / n_iters), iter, percent, loss))` from the
    PyTorch seq2seq tutorial, after a sanity check that printed one named loss: the named reading
    makes no curve, the unnamed ones do (the run was refused as holding none)."""
    lines = ["loss 7.343282222747803", ""]
    for i in range(1, 31):
        loss = 3.8 * np.exp(-i / 6) + 0.1
        spent, left = f"{i // 2}m {7 * i % 60}s", f"{900 - i}m {3 * i % 60}s"
        lines.append(f"{spent} (- {left}) ({100 * i} {i // 10}%) {loss:.4f}")
    run = parse_run("\n".join(lines))
    assert run.table["step"].dropna().tolist()[:3] == [100.0, 200.0, 300.0]
    assert run.table["train_loss"].dropna().iloc[0] == round(3.8 * np.exp(-1 / 6) + 0.1, 4)
    assert any("metrics on one line only" in n and "read as the training loss" in n for n in run.notes)
    assert [f.kind for f in detect(run)] == ["healthy"]
