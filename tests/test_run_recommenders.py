"""Recommenders' logs, judged on held-out ranking scores (NDCG, hit rate) and a training loss: scores
grouped under their stage's name, a header of tuples, the best checkpoint evaluated again after
training, and held-out scores that turn worse while the loss still falls (no held-out loss)."""

from __future__ import annotations

import numpy as np

from assistant.runs import detect, parse_run
from tests.run_helpers import falling


def _sasrec(losses: list[float], ndcg: list[float]) -> str:
    """SASRec.pytorch's console: the epoch's average loss, and every 20 epochs its evaluation."""
    lines = ["average sequence length: 5.94"]
    for e, loss in enumerate(losses, 1):
        lines.append(f"avg loss in epoch {e}: {loss}")
        if e % 20 == 0:
            v = ndcg[e // 20 - 1]
            valid = f"valid (NDCG@10: {v:.4f}, HR@10: {v * 1.45:.4f})"
            test = f"test (NDCG@10: {v - 0.02:.4f}, HR@10: {v * 1.4:.4f})"
            lines.append(f"Evaluating....epoch:{e}, time: {13 * e:.6f}(s), {valid}, {test}")
    return "\n".join(lines)


def test_a_stages_scores_grouped_in_parentheses_are_that_stages():
    # `valid (NDCG@10: 0.3052, HR@10: 0.4404), test (NDCG@10: …)`: the validation and test scores fell
    # under one name each, a training score, the test set's overwriting the validation set's
    run = parse_run(_sasrec(falling(200, 1.2, 0.04), [0.30 + 0.001 * i for i in range(10)]))
    assert run.table["val_ndcg_10"].dropna().iloc[0] == 0.30
    assert run.table["test_ndcg_10"].dropna().iloc[0] == 0.28
    assert np.isclose(run.table["val_hr_10"].dropna().iloc[-1], round(0.309 * 1.45, 4))


def test_held_out_scores_that_all_turn_down_while_the_loss_falls_are_overfitting():
    # no held-out loss: the validation NDCG and hit rate are best at the first evaluation and 5-9%
    # below it from then on, while the training loss falls thirtyfold
    ndcg = [0.318, 0.305, 0.298, 0.291, 0.293, 0.293, 0.296, 0.298, 0.290, 0.296]
    found = detect(parse_run(_sasrec(falling(200, 1.2, 0.04), ndcg)))
    assert [f.kind for f in found] == ["overfitting"] and "epoch 20" in found[0].evidence
    # scores that keep climbing are no turn
    climbing = [0.30 + 0.002 * i for i in range(10)]
    assert [f.kind for f in detect(parse_run(_sasrec(falling(200, 1.2, 0.04), climbing)))] == ["healthy"]


def _freerec(losses: list[float], ndcg: list[float], best: int) -> str:
    """freerec's Coach: each epoch's training, validation and test lines, then the best checkpoint
    loaded and evaluated again."""
    at = "2023-10-06 15:38:26,628:\t[Coach] >>> "
    lines = []
    for e, (loss, v) in enumerate(zip(losses, ndcg, strict=True)):
        lines.append(f"{at}TRAIN @Epoch: {e:<4} >>>  || LOSS Avg: {loss:.5f}")
        lines.append(f"{at}VALID @Epoch: {e:<4} >>>  || RECALL@20 Avg: {2 * v:.4f} || NDCG@20 Avg: {v:.4f}")
        lines.append(
            f"{at}TEST  @Epoch: {e:<4} >>>  || RECALL@20 Avg: {1.5 * v:.4f} || NDCG@20 Avg: {v * 0.7:.4f}"
        )
    lines.append(f"{at}Load best model @Epoch {best}")
    v = ndcg[best]
    lines.append(f"{at}TRAIN @Epoch: {best:<4} >>> ")
    lines.append(f"{at}VALID @Epoch: {best:<4} >>>  || RECALL@20 Avg: {2 * v:.4f} || NDCG@20 Avg: {v:.4f}")
    lines.append(
        f"{at}TEST  @Epoch: {best:<4} >>>  || RECALL@20 Avg: {1.5 * v:.4f} || NDCG@20 Avg: {v * 0.7:.4f}"
    )
    return "\n".join(lines)


def test_a_stage_word_after_a_tag_and_arrows_is_the_lines_stage_and_the_best_models_evaluation_no_resume():
    # `[Coach] >>> VALID @Epoch: 3` was read as training scores; the best model's evaluation at epoch 4
    # after the last epoch was read as a run resumed at epoch 4, dropping the sixteen epochs after it
    ndcg = [0.02 + 0.1 * (1 - np.exp(-e / 3)) for e in range(20)]
    run = parse_run(_freerec(falling(20, 0.49, 0.20), ndcg, best=4))
    assert len(run) == 20 and not any("runs" in n for n in run.notes)
    assert np.allclose(run.table["val_ndcg_20"], np.round(ndcg, 4))
    assert np.allclose(run.table["test_ndcg_20"], np.round(np.array(ndcg) * 0.7, 4))


def test_a_header_of_tuples_is_read_by_the_names_in_them(tmp_path):
    # the original SASRec's log.txt: `epoch (val_ndcg, val_hr) (test_ndcg, test_hr)`, split on its
    # commas it named no column its rows fill, and the log was refused
    path = tmp_path / "log.txt"
    rows = [
        f"{100 * i} ({0.12 + 0.002 * i}, {0.2 + 0.001 * i}) ({0.10 + 0.001 * i}, {0.18})"
        for i in range(1, 11)
    ]
    path.write_text("epoch (val_ndcg, val_hr) (test_ndcg, test_hr)\n" + "\n".join(rows) + "\n")
    run = parse_run(path)
    assert list(run.table["epoch"]) == [100.0 * i for i in range(1, 11)]
    assert np.allclose(run.table["val_ndcg"], [0.12 + 0.002 * i for i in range(1, 11)])
    assert set(run.table["test_hr"]) == {0.18}


def test_ngcf_and_kgat_lines_read_their_loss_and_test_metrics_at_the_first_cutoff():
    # NGCF's, KGAT's and LightGCN's reference code: `Epoch N [t]: train==[total=terms]` each epoch,
    # and every tenth `Epoch N [t + t]: train==[…], recall=[@20, @40], …, ndcg=[…]`: the log was
    # refused ("no training curve: lr"); its recall and NDCG rise slowly while the loss falls
    lines = []
    for e in range(60):
        loss = 600 * 0.9**e + 5
        terms = f"{loss * 0.01:.5f} + {loss * 0.98:.5f} + {loss * 0.01:.5f}"
        line = f"Epoch {e} [188.2s]: train==[{loss:.5f}={terms}]"
        if e % 10 == 9:
            r, n = 0.076 + e / 10000, 0.122 + e / 8000
            line = (
                line.replace("s]", "s + 69.8s]")
                + f", recall=[{r:.5f}, {2 * r:.5f}], ndcg=[{n:.5f}, {1.6 * n:.5f}]"
            )
        lines.append(line)
    run = parse_run("\n".join(lines))
    assert {"train_loss", "val_recall", "val_ndcg"} <= set(run.metrics)
    assert run.table["train_loss"].dropna().iloc[0] == 605.0
    assert np.allclose(run.table["val_recall"].dropna(), [0.076 + e / 10000 for e in range(9, 60, 10)])
    assert [f.kind for f in detect(run)] == ["healthy"]


def test_dlrm_iterations_counted_it_n_of_total_are_its_steps():
    # DLRM prints `Finished training it 100/300 of epoch 0, 21.43 ms/it, loss 0.083395`: without the
    # `it` counter, five epochs of three readings each were five points, "too few to judge"
    losses = falling(15, 0.70, 0.45)
    lines = [
        f"Finished training it {100 * (k % 3 + 1)}/300 of epoch {k // 3}, 18.85 ms/it, loss {v:.6f}"
        for k, v in enumerate(losses)
    ]
    run = parse_run("\n".join(lines))
    assert len(run) == 15 and list(run.table["step"])[:4] == [100.0, 200.0, 300.0, 400.0]
    # `ms/it` and tqdm's `3.2it/s` are no counters
    assert "step" not in parse_run(
        "\n".join(f"epoch {e} 3.2it/s loss {v:.4f}" for e, v in enumerate(losses))
    ).table.dropna(axis=1, how="all")


def _fuxictr(train: list[float], logloss: list[float]) -> str:
    """FuxiCTR's log: each epoch's evaluation (`[Metrics] AUC … - logloss …`, no stage named) before its
    `Train loss:`, through Python logging."""
    lines = ["2022-02-04 11:11:05,066 P46436 INFO Start training: 50 batches/epoch"]
    for e, (t, v) in enumerate(zip(train, logloss, strict=True), 1):
        at = f"2022-02-04 11:{11 + e // 5:02d}:{(7 * e) % 60:02d},384 P46436 INFO"
        lines += [
            f"{at} ************ Epoch={e} start ************",
            f"{at} [Metrics] AUC: {0.99 - v / 4:.6f} - logloss: {v:.6f}",
            f"{at} Save best model: monitor(max): {0.99 - v / 4:.6f}",
            f"{at} --- 50/50 batches finished ---",
            f"{at} Train loss: {t:.6f}",
            f"{at} ************ Epoch={e} end ************",
        ]
    return "\n".join(lines)


def test_an_evaluation_naming_no_stage_beside_a_named_training_loss_is_the_held_out_one():
    # the unnamed `logloss` and the named `Train loss` were both read as the training loss, one of them
    # dropped: the held-out logloss turning up at epoch 16 was never seen
    logloss = [0.355 - 0.01 * e for e in range(16)] + [0.205 + 0.008 * e for e in range(1, 9)]
    run = parse_run(_fuxictr(falling(24, 0.57, 0.04), logloss))
    assert run.sources["train_loss"] == "Train loss" and run.sources["val_loss"] == "logloss"
    assert "val_auc" in run.table and "train_auc" not in run.table
    found = detect(run)
    assert [f.kind for f in found] == ["overfitting"] and "epoch 16" in found[0].evidence


def test_an_unnamed_loss_stays_training_beside_finer_steps_or_a_named_held_out_loss():
    # a progress line's loss at every step and an epoch's `Train Loss` summary: both training's
    lines = []
    for e in range(1, 11):
        lines += [f"epoch {e} step {s} loss {2.0 / (e + s / 100):.4f}" for s in range(0, 100, 10)]
        lines.append(f"Epoch {e} summary | Train Loss: {2.0 / (e + 0.5):.4f}")
    assert "val_loss" not in parse_run("\n".join(lines)).table
    # a test loop's bar (`cost=` its last batch's) beside `training avg loss` and `testing avg loss`:
    # the test set's named loss is the held-out one, not the bar's
    lines = []
    for e in range(1, 21):
        test = 6.6 - 0.2 * min(e, 4) + 0.07 * max(0, e - 4)
        lines += [
            f"minibatch loop: 100%|##########| 40/40 [00:04<00:00, accuracy=0.1, cost={test + 0.1:.2f}]"
            f"epoch {e}, training avg loss {7.3 - 0.19 * e:.6f}, training avg acc 0.1",
            f"epoch {e}, testing avg loss {test:.6f}, testing avg acc 0.13",
        ]
    run = parse_run("\n".join(lines))
    assert run.sources["val_loss"] == "testing avg loss" and run.sources["train_loss"] == "training avg loss"
    # a total loss printed beside its named training cross-entropy, with no score only an evaluation
    # computes beside it: a second training loss, not a held-out one
    text = "\n".join(
        f"epoch {e} | Train loss: {t:.4f} | loss: {t + 0.01 * e:.4f}" for e, t in enumerate(falling(20), 1)
    )
    assert "val_loss" not in parse_run(text).table
