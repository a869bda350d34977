"""What particular trainers print, read as the run it is: JAX's wrapped numbers and a self-play agent's
policy loss, an Estimator's last evaluation of its best checkpoint, Lightning's progress bar with a
step's and an epoch's loss side by side, a fine-tune whose loss overflowed and is shown as 0, and the
Hugging Face Trainer's printed dict once its loss is NaN."""

from __future__ import annotations

import math

import numpy as np

from assistant.runs import detect, parse_run
from assistant.runs.parse.inlinejson import numbers_of, python_dict
from assistant.runs.parse.lines import STEP
from assistant.runs.parse.names import is_metric_name
from assistant.runs.parse.restarts import last_run
from tests.run_helpers import falling


def test_jax_arrays_in_a_record_and_a_policy_loss_are_read():
    # turbozero's trainer prints `Epoch 1: {'loss': Array(2.4969, dtype=float32), 'policy_loss': …}`:
    # JAX wraps each number, and an agent's policy loss is a loss, not a setting (`lr_policy`)
    losses = falling(10, 2.5, 2.3)
    lines = [
        f"Epoch {e + 1}: {{'loss': Array({t:.6f}, dtype=float32), 'policy_accuracy': Array(0.3, "
        f"dtype=float32), 'policy_loss': Array({t - 0.6:.6f}, dtype=float32), 'value_loss': "
        f"Array(0.55, dtype=float32)}}"
        for e, t in enumerate(losses)
    ]
    run = parse_run("\n".join(lines))
    assert np.allclose(run.table["train_loss"], np.round(losses, 6))
    assert np.allclose(run.table["train_policy_loss"], np.round(np.array(losses) - 0.6, 6))
    assert "train_policy_accuracy" in run.table


def _estimator(evals: list[tuple[int, float]], again: int) -> str:
    """A TensorFlow Estimator's train-and-evaluate console: step losses, an evaluation per checkpoint,
    its last loss, a graph rebuilt (its summary names with TensorFlow's `:0` output index), and the
    best checkpoint evaluated once more at the end."""
    lines, step = [], 0
    done = dict(evals)
    for step in range(0, max(done) + 1, 100):
        lines.append(f"INFO:tensorflow:loss = {0.48 - step / 1e6:.5f}, step = {step} (9.1 sec)")
        if step in done:
            lines.append(
                f"INFO:tensorflow:Saving dict for global step {step}: auc = 0.80, loss = {done[step]}"
            )
    lines.append(f"INFO:tensorflow:Loss for final step: {0.48 - step / 1e6:.5f}.")
    lines.append("INFO:tensorflow:Summary name h_lr_emb:0 is illegal; using h_lr_emb_0 instead.")
    lines.append(f"INFO:tensorflow:Saving dict for global step {again}: auc = 0.81, loss = {done[again]}")
    return "\n".join(lines)


def test_the_best_checkpoint_evaluated_again_after_a_stray_setting_is_no_run_of_its_own():
    # AFN's Estimator log ends by evaluating its best checkpoint again; before it, rebuilding the graph
    # prints `h_lr_emb:0`, read as a learning rate: that row is no start of a run, and the curves are
    # the training's (the log was read as one row of a learning rate, "too few to judge")
    evals = [(800, 0.448), (1600, 0.445), (2400, 0.451), (3200, 0.452)]
    run = parse_run(_estimator(evals, again=1600))
    assert run.table["val_loss"].dropna().tolist() == [v for _, v in evals]
    assert run.table["train_loss"].notna().sum() == 33


def test_lightnings_epoch_loss_is_kept_over_its_last_batchs():
    # a notebook's Lightning bar: `train_loss_step` (the last batch's loss) and `train_loss_epoch` (the
    # epoch's mean) on the same line, one of each per epoch: the mean is the curve (the last batch's
    # scattered 0.0015-0.0028 around a loss falling every epoch, and was called a plateau)
    means = falling(10, 0.003, 0.0016)
    rng = np.random.default_rng(3)
    lines = [
        f"Epoch {e}: 100%|██████████| 340/340 [00:32<00:00, 10.50it/s, loss={m:.3g}, v_num=0, "
        f"valid_loss={m / 10:.3g}, train_loss_step={m * (1 + 0.4 * rng.standard_normal()):.3g}, "
        f"train_loss_epoch={m:.3g}]"
        for e, m in enumerate(means)
    ]
    run = parse_run("\n".join(lines))
    assert np.allclose(run.table["train_loss"], [float(f"{m:.3g}") for m in means])
    # a bar that shows the epoch's mean only from the next epoch on keeps the batches' (one more, and
    # the last epoch's own): a blow-up in its last batch stays seen
    lagged = [
        line.replace(f", train_loss_epoch={m:.3g}", "") for line, m in zip(lines[:1], means, strict=False)
    ]
    lagged += [
        line.replace(f"train_loss_epoch={m:.3g}", f"train_loss_epoch={p:.3g}")
        for line, m, p in zip(lines[1:], means[1:], means[:-1], strict=True)
    ]
    lagged[-1] = lagged[-1].replace("train_loss_step=", "train_loss_step=nan, x=")
    assert detect(parse_run("\n".join(lagged)))[0].kind == "diverged"


def test_a_loss_shown_as_zero_after_it_blew_up_is_diverged():
    # an fp16 LoRA fine-tune: its loss climbs to 10.3, then reads 0.0 at every record to the end (the
    # loss overflowed; the trainer shows 0): diverged, not a loss learned down to nothing
    losses = [4.13, 3.29, 2.88, 2.64, 2.96, 3.29, 1.96, 3.24, 3.45, 2.92, 2.57, 5.11, 2.82, 3.93, 10.26, 5.26]
    records = [{"loss": v, "step": 10 * (i + 1), "epoch": (i + 1) / 500} for i, v in enumerate(losses)]
    records += [{"loss": 0.0, "step": 10 * i, "epoch": i / 500} for i in range(len(losses) + 1, 40)]
    found = detect(parse_run("\n".join(str(r) for r in records)))
    assert found[0].kind == "diverged" and "exactly 0 at step 170" in found[0].evidence
    # learned, not overflowed: a loss that came down to the last digit its log prints, a triplet
    # margin met (1.0 -> 0.21 -> 0.0), a count of mistakes, a loss that was 0 now and then before
    for losses, digits in (
        ([2.0 * 0.5**i for i in range(16)] + [0.0] * 6, 4),
        ([1.0, 0.8, 0.62, 0.5, 0.41, 0.33, 0.27, 0.21] + [0.0] * 5, 2),
        ([12, 7, 5, 3, 2, 0, 0, 0, 0], 0),
        ([0.5, 0.3, 0.0, 0.2, 0.1, 0.0, 0.15, 0.1, 0.0, 0.0, 0.0], 2),
    ):
        records = [{"loss": round(v, digits), "step": 10 * (i + 1)} for i, v in enumerate(losses)]
        assert "diverged" not in [f.kind for f in detect(parse_run("\n".join(str(r) for r in records)))]


def test_a_plateau_over_spaced_readings_counts_readings_not_epochs():
    # ProdLDA's loss printed every 5 epochs: the plateau's stretch is its readings (epoch 135 to 200),
    # not "the last 14 epochs"
    losses = [553.0 + 50 * 0.97**i for i in range(40)]
    text = "\n".join(f"Epoch: {5 * (i + 1):03d} loss: {v:.3f}" for i, v in enumerate(losses))
    plateaus = [f for f in detect(parse_run(text)) if f.kind == "plateau"]
    assert plateaus and "readings (epoch" in plateaus[0].evidence
    assert " epochs (epoch" not in plateaus[0].evidence


def test_a_step_is_counted_from_one():
    # the Estimator's `Loss for final step: 0.4258.` is no step 0 (that row went back on the counter
    # and was taken for a new run); a step printed with a fraction stays the step it is in
    assert STEP.search("INFO:tensorflow:Loss for final step: 0.425808.") is None
    assert STEP.search("step: 1200.0 loss: 0.4").group(1) == "1200"
    assert STEP.search("global_step: 100.25, loss: 0.4").group(1) == "100"


def test_an_agents_policy_loss_is_a_reading_its_policy_lr_a_setting():
    # `policy_loss` and `policy_accuracy` are the policy head's readings; `policy_lr` (printed beside the
    # run's decaying `lr`) is a setting, not the run's learning rate
    assert is_metric_name("policy_loss") and is_metric_name("policy_accuracy")
    assert not is_metric_name("policy_lr") and not is_metric_name("lr_policy")
    lines = [
        f"step {10 * i} policy_lr: 0.0003 loss: {v:.4f} lr: {1e-3 * 0.8**i:.3g}"
        for i, v in enumerate(falling(30))
    ]
    assert parse_run("\n".join(lines)).table["lr"].iloc[-1] < 1e-5


def test_a_row_of_a_setting_alone_before_the_best_checkpoints_evaluation_starts_no_run():
    # rows: training at steps 100-400 with evaluations at 200 and 400, a stray row of a setting alone
    # at step 0 (no reading), then the checkpoint of step 200 evaluated again: the training is the run
    step = np.array([100, 200, 200, 300, 400, 400, 0, 200], dtype=float)
    held = np.array([0, 0, 1, 0, 0, 1, 0, 1], dtype=bool)
    trained = np.array([1, 1, 0, 1, 1, 0, 0, 0], dtype=bool)
    keep, runs, _ = last_run(np.full(len(step), np.nan), step, (held, trained))
    assert keep.tolist() == [True] * 6 + [False, False] and runs == 1
    # every checkpoint of a long run evaluated again after it, one pass each: all of them peeled off
    n = 1500
    step = np.concatenate([np.arange(1, n + 1), np.arange(1, n + 1)]).astype(float)
    held = np.ones(2 * n, dtype=bool)
    trained = np.concatenate([np.ones(n, dtype=bool), np.zeros(n, dtype=bool)])
    keep, runs, _ = last_run(np.full(2 * n, np.nan), step, (held, trained))
    assert keep[:n].all() and not keep[n:].any() and runs == 1


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
