"""Layouts of a log that were refused or half read: a file saved as UTF-16, a table ruled by `|` whose
column names are several words, and readings printed as an object under a stage's name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant.runs import RunParseError, detect, parse_run
from assistant.runs.curves import run_curves
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


@pytest.mark.parametrize("sign", [1, -1])
def test_an_evaluation_reported_only_as_improved_or_not_is_a_curve_whose_improvements_give_its_direction(
    sign: int,
):
    # keras-unet-collection's examples print the loss before training, then each epoch's validation
    # reading only as better than the best or not; the log was refused as holding no curve. Which way
    # its improvements go says whether it is a loss (falls) or a score (rises)
    values = [v if sign == 1 else 1.4 - v for v in falling(20, 0.9, 0.5)]
    values[6] = values[5] + sign * 0.01  # a reading no better than the best
    best = values[0] + sign * 0.5
    lines = [f"\tInitial loss = {best}"] if sign == 1 else []  # (the examples minimise a loss)
    for v in values:
        if sign * (best - v) > 0:
            lines.append(f"Validation performance is improved from {best} to {v}")
            best = v
        else:
            lines.append(f"Validation performance {v} is NOT improved")
    run = parse_run("\n".join(lines))
    name = "val_loss" if sign == 1 else "val_score↑"
    assert name in run.table and np.allclose(run.table[name].dropna(), values)
    assert any("reported only as improved or not" in n for n in run.notes)
    training, held_out = run_curves(run)  # judged: the reported curve (the loss before training is none)
    assert training is None and held_out is not None and len(held_out) == 20 and held_out.negated is False
    assert "nothing abnormal" not in detect(run)[0].evidence


def test_a_keras_checkpoint_line_is_not_an_improvement_report():
    # `Epoch 3: val_loss improved from 0.5 to 0.4, saving model to …` is the checkpoint's, beside the
    # epoch's own readings: no second curve
    lines = []
    for e, v in enumerate(falling(12, 1.0, 0.4), 1):
        lines += [f"Epoch {e}/12", f"10/10 - 1s - loss: {v - 0.05:.4f} - val_loss: {v:.4f}"]
        lines.append(f"Epoch {e:05d}: val_loss improved from {v + 0.01:.5f} to {v:.5f}, saving model to m.h5")
    run = parse_run("\n".join(lines))
    assert not any("reported only as improved" in n for n in run.notes) and len(run.table) == 12


def test_a_count_written_as_a_hash_and_number_is_the_step_and_its_restart_a_new_run():
    # Practical_DL's autoencoder notebook prints `#12, Train loss: 0.0236` in three runs one after
    # another; read as rows without a counter, the second run's start was a jump of the loss
    first, last = falling(30, 0.05, 0.007), falling(20, 0.16, 0.02)
    lines = [f"#{i}, Train loss: {v:.7f}" for i, v in enumerate(first, 1)]
    lines += ["Final MSE: 0.0071"] + [f"#{i}, Train loss: {v:.7f}" for i, v in enumerate(last, 1)]
    run = parse_run("\n".join(lines))
    assert list(run.table["step"].dropna()) == list(range(1, 21))
    assert any("2 runs" in n for n in run.notes)
    assert [f.kind for f in detect(run)] == ["healthy"]
    # YOLACT's own print, `[  0]      10 || …`, reads the same
    own = "\n".join(line.replace("Epoch:   0 | Iteration", "[  0]") for line in lines)
    assert parse_run(own).table["train_loss"].tolist() == run.table["train_loss"].tolist()


def test_a_ruled_cell_holding_two_numbers_is_two_columns_under_its_name():
    # the NII speech scripts' GAN table: `Train loss` and `Dev loss` each hold the generator's and the
    # discriminator's (`| 403.31   3.49| 268.28   2.32|`); the rows were refused, the log read as empty
    gen, dev = falling(30, 400, 156), falling(30, 268, 153)
    rows = ["  Epoch |  Duration(s) |   Train loss |     Dev loss |  Best", "-" * 62]
    rows += [
        f"{e:7d} | {67.3:12.1f} | {g:6.2f} {1.2:6.2f}| {d:6.2f} {1.1:6.2f}|   yes"
        for e, (g, d) in enumerate(zip(gen, dev, strict=True))
    ]
    run = parse_run("\n".join(rows))
    assert np.allclose(run.table["train_loss"], np.round(gen, 2))
    assert np.allclose(run.table["val_loss"], np.round(dev, 2))
    assert run.sources["train_loss_2"] == "Train loss 2" and set(run.table["val_loss_2"]) == {1.1}


def _spacy_table(ner: list[float], f1: list[float]) -> str:
    """`spacy train`'s console table: each loss summed over the 200 steps since the row before."""
    lines = ["=========================== Training pipeline ===========================",
             "E    #       LOSS TOK2VEC  LOSS NER  ENTS_F  ENTS_P  ENTS_R  SCORE ",
             "---  ------  ------------  --------  ------  ------  ------  ------",
             "  0       0          0.00     49.75    0.31    0.24    0.43    0.00"]  # fmt: skip
    for i, (loss, f) in enumerate(zip(ner, f1, strict=True), 1):
        scores = f"{f:6.2f}  {f:6.2f}  {f:6.2f}  {f / 100:6.2f}"
        lines.append(f"{i // 2:3d}  {200 * i:6d}  {loss / 3:12.2f}  {loss:8.2f}  {scores}")
    return "\n".join(lines)


def test_spacys_training_table_is_read_by_its_underlines_columns():
    # `E` and `#` head the epoch and step; `LOSS TOK2VEC` and `LOSS NER` are names of two words the
    # underline delimits; the first row (step 0) sums one batch's losses beside 200-step sums, and was
    # read as a jump of x80 (`diverged`); the scores are the dev set's
    ner, f1 = falling(20, 4000, 300), [60 + 15 * (1 - np.exp(-i / 4)) for i in range(20)]
    run = parse_run(_spacy_table(ner, f1))
    assert run.table["step"].tolist() == [200.0 * i for i in range(1, 21)]
    assert np.allclose(run.table["train_loss_ner"], np.round(ner, 2))
    assert run.sources["train_loss"] == "LOSS TOK2VEC + LOSS NER" and run.sources["val_score"] == "dev SCORE"
    assert "diverged" not in [f.kind for f in detect(run)]


def test_a_vaes_recon_and_kld_terms_are_its_loss_in_parts_and_its_kl_weight_a_setting():
    # `epoch 3/40  total=1260.83  recon=1065.76  kld=195.07  kl_w=0.40`: no name said loss, and the log
    # was refused as holding nothing
    recon, kld = falling(40, 1066, 282), falling(40, 195, 147)
    lines = [
        f"06:48:{e:02d} [INFO] vae: epoch {e}/40  total={r + k:.2f}  recon={r:.2f}  kld={k:.2f}  kl_w=1.00"
        for e, (r, k) in enumerate(zip(recon, kld, strict=True), 1)
    ]
    run = parse_run("\n".join(lines))
    assert run.sources["train_loss"] == "recon + kld" and "train_kl_w" not in run.table
    assert np.allclose(run.table["train_loss"], np.round(recon, 2) + np.round(kld, 2))


def test_a_weight_abbreviated_w_is_a_setting_beside_a_vae_term_only():
    from assistant.runs.parse.names import is_metric_name

    assert not is_metric_name("kl_w") and is_metric_name("kld")
    assert all(map(is_metric_name, ("w_loss", "loss_w", "W_acc", "val W loss")))  # a WGAN's, or a weight's


def test_yolacts_losses_named_by_their_initials_are_read_with_their_total():
    # `B: 5.987 | C: 8.346 | M: 4.250 | S: 1.343 | T: 25.473`: single letters name no metric, so the
    # console held no reading at all; T is the total loss, the others its parts
    rng = np.random.default_rng(2)
    lines = ["Begin training!"]
    for i in range(0, 540, 10):
        b, c, m = 6.1 - 1.5 * i / 540, 12.4 * np.exp(-i / 60) + 3.1, 5.0 - 2.6 * i / 540
        total = b + c + m + 0.1 + rng.normal(0, 0.05)
        lines.append(
            f"Epoch:   0 | Iteration {i:>6} || B: {b:.3f} | C: {c:.3f} | M: {m:.3f} | S: 0.100 | "
            f"T: {total:.3f} || ETA: 22:13:43 || timer: 1.654"
        )
    run = parse_run("\n".join(lines))
    assert {"train_loss", "train_box_loss", "train_class_loss", "train_mask_loss"} <= set(run.table)
    assert run.table["step"].iloc[-1] == 530 and run.table["train_loss"].iloc[0] > 20
    assert [f.kind for f in detect(run)] == ["healthy"]
    # YOLACT's own print, `[  0]      10 || …`, reads the same
    own = "\n".join(line.replace("Epoch:   0 | Iteration", "[  0]") for line in lines)
    assert parse_run(own).table["train_loss"].tolist() == run.table["train_loss"].tolist()


def test_a_text_log_with_a_run_of_nul_bytes_in_it_is_read(tmp_path: Path):
    # a Time-Series-Library log written under `nohup`, whose file holds a hundred NUL bytes where a
    # restart left it extended and unwritten: refused as a binary file, though all else is text
    train, val = falling(12, 0.04, 0.008), falling(12, 0.014, 0.005)
    text = _informer_log(train, val)
    cut = text.index("Epoch: 4 cost")
    path = tmp_path / "swat_tranad.log"
    path.write_bytes((text[:cut] + "\x00" * 100 + text[cut:]).encode())
    run = parse_run(path)
    assert run.table.equals(parse_run(text).table)
    assert np.allclose(run.table["val_loss"], np.round(val, 7))


def test_a_numpy_array_saved_under_a_log_name_is_still_a_binary_file(tmp_path: Path):
    # its NULs come among other control bytes: no text once they are dropped
    path = tmp_path / "losses.log"
    np.save(path.open("wb"), np.linspace(0.1, 2.0, 400))
    with pytest.raises(RunParseError, match="binary"):
        parse_run(path)


def test_a_tar_of_logs_is_refused_as_the_binary_file_it_is(tmp_path: Path):
    # a tar's headers are NUL-padded text, yet an archive is no log: its runs would be read as one
    import tarfile

    log = tmp_path / "train.log"
    log.write_text(_informer_log(falling(12, 0.7, 0.3), falling(12, 0.5, 0.3)))
    archive = tmp_path / "runs.log"
    with tarfile.open(archive, "w") as tar:
        tar.add(log, arcname="run/train.log")
    with pytest.raises(RunParseError, match="binary"):
        parse_run(archive)
