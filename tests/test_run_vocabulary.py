"""Names of readings particular to a field: optical flow's end-point error (RAFT's `epe=`) and a
density model's bits per dimension (FFJORD's `Bit/dim`), both lower is better. Logs of both were
refused as holding no curve but their learning rate."""

from __future__ import annotations

from assistant.runs import detect, parse_run
from tests.run_helpers import falling


def _raft(epes: list[float]) -> str:
    lines = []
    for i, e in enumerate(epes, 1):
        lines.append(f"[{100 * i:6d}, lr= 0.0000240]  epe={e:.4f}    1px=0.0220     3px=0.1368")
        if i % 5 == 0:
            lines.append(f"Validation Sintel EPE: {e * 0.8:.3f},  out of 458000000 measurements")
    return "\n".join(lines)


def test_raft_end_point_error_and_its_validation_are_read_lower_is_better():
    run = parse_run(_raft(falling(40, 48.0, 15.0)))
    assert run.sources["train_epe"] == "epe" and run.sources["val_sintel_epe"] == "Validation Sintel EPE"
    assert [f.kind for f in detect(run)] == ["healthy"]
    # an end-point error climbing for good is no run that improves
    climbing = [15.0, 14.0, 13.5, *(13.5 * 1.08**i for i in range(1, 38))]
    assert "healthy" not in [f.kind for f in detect(parse_run(_raft(climbing)))]


def test_ffjord_bits_per_dimension_are_read_as_a_loss():
    bpd = falling(31, 27.5, 2.07)
    lines = [
        f"Iter {10 * i:04d} | Time 1.9(2.0) | Bit/dim {b:.4f}({b + 0.05:.4f}) | Steps 26(26.00) | Grad 3.1"
        for i, b in enumerate(bpd)
    ]
    run = parse_run("\n".join(lines))
    assert run.sources["train_bpd"] == "Bit/dim" and run.table["train_bpd"].iloc[-1] == round(bpd[-1], 4)
    assert [f.kind for f in detect(run)] == ["healthy"]


def test_a_loss_whose_part_is_run_into_its_name_is_a_loss():
    # a GAN's `gloss`/`dloss`, `valloss` (its stage run in), not the losses that are one word (`logloss`)
    pairs = zip(falling(12, 3.0, 1.0), falling(12, 2.0, 0.8), strict=True)
    lines = [f"epoch {e} gloss: {g:.3f} dloss: 0.700 valloss: {v:.3f}" for e, (g, v) in enumerate(pairs)]
    run = parse_run("\n".join(lines))
    assert run.sources["val_loss"] == "valloss" and {"train_g_loss", "train_d_loss"} <= set(run.metrics)
    # only those parts: a column `closs` of counts is no loss
    table = "epoch,acc,val_acc,closs\n" + "\n".join(
        f"{e},{0.5 + e / 50},{0.5 + e / 60},{10 * e}" for e in range(1, 21)
    )
    assert "train_loss" not in parse_run(table).metrics
