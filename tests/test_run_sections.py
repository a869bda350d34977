"""A console log whose evaluation opens with a rule and a word (Distiller's and ai8x-training's
`--- validate (epoch=3)-----------`): the batches counted under it and the `==> Top1: … Loss: …` line
that sums them up are the held-out readings, and a `==> Best [Top1: … on epoch: 2]` line reads nothing
(the best so far, not this epoch's)."""

from __future__ import annotations

from assistant.runs import detect, parse_run
from tests.run_helpers import falling


def _distiller(train: list[float], val: list[float]) -> str:
    lines = ["Optimizer Type: <class 'torch.optim.adam.Adam'>", "Dataset sizes:", "\ttraining=105843"]
    best, best_at = 0.0, 0
    for e, (t, v) in enumerate(zip(train, val, strict=True)):
        top1 = 90 - 40 * v
        lines.append("Training epoch: 105843 samples (512 per mini-batch)")
        for i in (10, 100, 200):
            loss = f"{t * 1.05:.6f}"
            pad = " " * 40
            lines.append(
                f"Epoch: [{e}][  {i:3d}/  207]    Overall Loss {loss}    Objective Loss {loss}{pad}LR 0.001"
            )
        lines.append(f"Epoch: [{e}][  207/  207]    Overall Loss {t:.6f}    Objective Loss {t:.6f}    Top1 "
                     f"{95 - 10 * t:.6f}    Top5 99.1    LR 0.001000    Time 0.067793")  # fmt: skip
        lines += [f"--- validate (epoch={e})-----------", "5136 samples (512 per mini-batch)"]
        lines.append(f"Epoch: [{e}][   10/   11]    Loss {v * 0.99:.6f}    Top1 {top1:.6f}    Top5 98.0")
        lines.append(f"Epoch: [{e}][   11/   11]    Loss {v:.6f}    Top1 {top1:.6f}    Top5 98.0")
        lines += [f"==> Top1: {top1:.3f}    Top5: 98.000    Loss: {v:.3f}", "", "==> Confusion:"]
        lines += ["[[207  22]", " [ 22 145]]", ""]
        best, best_at = max((best, best_at), (top1, e))
        lines.append(f"==> Best [Top1: {best:.3f}   Top5: 98.000   Sparsity:0.00   Params: 117200 on epoch: "
                     f"{best_at}]")  # fmt: skip
        lines += ["Saving checkpoint to: logs/2024.01.15-145725/checkpoint.pth.tar", ""]
    return "\n".join(lines)


def test_an_evaluation_opened_by_a_rule_and_a_word_is_held_out_and_its_best_line_reads_nothing():
    train = falling(14, 1.5, 0.05)
    val = [*falling(7, 1.2, 0.40), *(0.40 + 0.03 * i for i in range(1, 8))]  # turns up after epoch 7
    run = parse_run(_distiller(train, val))
    t = run.table
    assert run.sources["train_loss"] == "Overall Loss" and run.sources["val_loss"] == "val/Loss"
    assert t["train_loss"].dropna().round(4).tolist() == [round(v, 4) for v in train]
    assert t["val_loss"].dropna().round(3).tolist() == [round(v, 3) for v in val]
    # the held-out accuracy is each epoch's, not the best so far that the `Best [...]` line repeats
    assert t["val_top1"].dropna().round(3).tolist() == [round(90 - 40 * v, 3) for v in val]
    assert len(t["epoch"].dropna().unique()) == 14
    assert "overfitting" in [f.kind for f in detect(run)]


def test_a_heading_in_brackets_or_an_arrowed_record_that_is_not_an_evaluation_stages_nothing():
    # found by a review: `Evaluation (disabled)` staged the whole training run as held out, and an
    # arrowed line naming its epoch after an evaluation took that evaluation's stage
    bars = [f"[{100 * i:5d}/3000] loss {2.4 - 0.04 * i:.3f} acc {0.3 + 0.01 * i:.2f}" for i in range(1, 31)]
    run = parse_run("\n".join(["Evaluation (disabled)", *bars]))
    assert "train_loss" in run.metrics and "val_loss" not in run.metrics
    lines = []
    for e, (t, v) in enumerate(zip(falling(8, 1.1, 0.45), falling(8, 1.5, 0.9), strict=True), 1):
        lines += [
            f"--- validate (epoch={e}) ---",
            f"[ 10/ 10] Loss {v:.3f} Top1 45.0",
            f"==> Epoch {e} loss: {t:.3f}",
        ]
    run = parse_run("\n".join(lines))
    assert run.table["train_loss"].dropna().round(3).tolist() == [round(t, 3) for t in falling(8, 1.1, 0.45)]
    assert run.table["val_loss"].dropna().round(3).tolist() == [round(v, 3) for v in falling(8, 1.5, 0.9)]
    # `best` before a line's own counter in other words is no best's counter
    best = [f"[best] training on epoch {e}: loss {v:.3f}" for e, v in enumerate(falling(8, 1.35, 0.75), 1)]
    assert parse_run("\n".join(best)).table["epoch"].dropna().tolist() == [float(e) for e in range(1, 9)]
