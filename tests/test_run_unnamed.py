"""Readings a console prints without a name: read as the training loss, and said, when the log
names no metric that makes a curve."""

from __future__ import annotations

import numpy as np

from assistant.runs import detect, parse_run
from tests.run_helpers import falling


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


def test_a_list_of_numbers_behind_a_loggers_prefix_is_read_and_its_counting_position_is_the_step():
    """so-vits-svc's `logger.info([loss_disc, loss_gen, loss_fm, loss_mel, loss_kl, global_step, lr])`
    every 200 steps, resumed once from a checkpoint 200 steps back: the log was refused as holding
    nothing (the logger's prefix hid the numbers). Its step is the position that counts up; the
    others are drawn unnamed, and no trend is judged."""
    lines = ["2023-02-18 17:28:03,219\t32k\tINFO\t{'train': {'log_interval': 200, 'seed': 1234}}"]
    steps = [*range(0, 4200, 200), *range(3800, 8200, 200)]  # resumed from step 3800's checkpoint
    for s in steps:
        mel = 17 + 40 * np.exp(-s / 300)
        lines.append(f"2023-02-18 17:38:38,439\t32k\tINFO\t[2.4, 2.3, 5.1, {mel:.3f}, 0.7, {s}, 0.0001]")
        lines.append("2023-02-18 17:39:24,741\t32k\tINFO\t====> Epoch: 1")
    run = parse_run("\n".join(lines))
    assert any("7 numbers alone (the 6th counting steps)" in n for n in run.notes)
    assert run.table["step"].tolist() == [float(s) for s in range(0, 8200, 200)]  # the newer rows kept
    assert run.table["train_score_4"].iloc[-1] == round(17 + 40 * np.exp(-8000 / 300), 3)
    assert [f.kind for f in detect(run)] == ["healthy"] and "no trend is judged" in detect(run)[0].evidence


def test_a_headerless_file_of_one_value_beside_its_counters_is_named_by_its_file(tmp_path):
    """d3rlpy writes each metric to a headerless CSV of its own (`critic_loss.csv`: epoch, step,
    value): the value was drawn as an unnamed score beside the step, and a critic loss climbing from
    0.25 to 1e23 was called healthy. Both counters are counters; the file's name is the value's."""
    rows = [f"{e},{1000 * e},{0.25 * 1.12**e}" for e in range(1, 501)]
    path = tmp_path / "critic_loss.csv"
    path.write_text("\n".join(rows) + "\n")
    run = parse_run(path)
    assert run.metrics == ["train_critic_loss"] and run.table["step"].iloc[-1] == 500000.0
    assert "diverged" in [f.kind for f in detect(run)]
    # a file whose name is no metric's (d3rlpy's evaluation return is `environment.csv`) stays unnamed
    other = tmp_path / "environment.csv"
    other.write_text("\n".join(rows) + "\n")
    assert parse_run(other).metrics == ["train_score_1"]


def test_a_value_counting_up_in_whole_numbers_beside_an_epoch_is_a_value(tmp_path):
    # found by a review: a whole-number return (or a count of right answers) also counts up; only a
    # counter in even strides is a second counter, so the value is kept and read under the file's name
    path = tmp_path / "reward.csv"
    path.write_text("\n".join(f"{e},{int(10 + 7 * e + (e % 3) * 2)}" for e in range(1, 31)) + "\n")
    run = parse_run(path)
    assert run.metrics == ["train_reward"] and run.table["epoch"].tolist() == [float(e) for e in range(1, 31)]


def test_a_held_out_score_falling_from_its_cap_says_no_infinite_share(tmp_path):
    # found by a review: a BLEU of 1.0 falling gave a shortfall of 0 at its best, and `(+inf%)`
    path = tmp_path / "bleu.csv"
    path.write_text(
        "\n".join(f"{e},{1000 * e},{0.5 + 0.5 * 0.8 ** (e - 1):.4f}" for e in range(1, 31)) + "\n"
    )
    found = detect(parse_run(path))
    assert (
        found[0].kind == "overfitting" and "inf" not in found[0].evidence and "nan" not in found[0].evidence
    )


def test_an_epoch_then_its_unnamed_reading_is_that_epochs_loss():
    # a C-MAPSS notebook's `print(f"epoch {e}, {loss}")`, then a results line naming RMSE and MAE once:
    # the run was refused as holding only those
    losses = [0.0112, 0.0171, 0.0102, 0.0083, 0.0095, 0.0097, 0.0094, 0.0085, 0.0074, 0.0065]
    lines = [f"epoch {e}, {v}" for e, v in enumerate(losses, 1)] + ["RMSE:  27.59", "MAE:  18.82"]
    run = parse_run("\n".join(lines))
    assert run.table["train_loss"].dropna().tolist() == losses
    assert run.table["epoch"].dropna().tolist() == [float(e) for e in range(1, 11)]
    assert run.table["step"].isna().all()


def test_a_mean_printed_with_its_spread_after_the_epoch_in_brackets_is_read():
    """zuko's tutorials print each epoch's mean loss and its spread over the batches, `(3) 1.1210 ±
    0.1036`, two fits in a notebook: refused as holding no metric. The last fit is the run."""
    first, last = falling(8, 1.39, 1.09), falling(8, 0.73, 0.37)
    lines = [f"({e}) {v:.6f} ± {0.1 + v / 20:.6f}" for e, v in enumerate(first)]
    lines += [f"({e}) {v:.6f} ± {0.1 + v / 20:.6f}" for e, v in enumerate(last)]
    run = parse_run("\n".join(lines))
    assert np.allclose(run.table["train_loss"], np.round(last, 6))
    assert any("read as the training loss" in n for n in run.notes)
    # a summary's mean and spread after the epochs (no count before it) is no epoch's reading
    summary = "\n".join([*lines, "Test accuracy over 5 runs:", "91.20 ± 0.35"])
    assert parse_run(summary).table["train_loss"].max() < 2


def test_rwkvs_train_log_with_its_date_and_time_among_the_numbers_is_read():
    # RWKV-LM's `train_log.txt`: the epoch, its loss, perplexity and rate, when, and the epoch again;
    # the date and time kept the lines from being numbers alone, and the log was refused
    loss = falling(12, 4.88, 3.29)
    lines = [
        f"{e} {v:.6f} {np.exp(v):.4f} {0.0006 - e * 1e-6:.8f} 2025-04-24 02:{23 + e:02d}:42.481256 {e}"
        for e, v in enumerate(loss)
    ]
    run = parse_run("\n".join(lines))
    assert np.allclose(run.table["train_score_1"], np.round(loss, 6))
    assert any("5 numbers alone" in n for n in run.notes)
