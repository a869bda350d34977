"""A flat tail: when it is a plateau, and when it is not: convergence (a learning rate stepped down
tenfold, a loss down tenfold, a reward at its cap, a target reached, early stopping's patience), a
curve still improving at its own pace (a language model, a slow evaluation curve, a short curve whose
last stretch keeps a third of the pace before it), held-out data that still improves, and a schedule
that stalled the run."""

from __future__ import annotations

import json

import numpy as np

from assistant.runs import detect, parse_run
from tests.run_helpers import kinds as _kinds
from tests.run_helpers import steps_log
from tests.run_helpers import train_val as _train_val


def test_a_loss_that_fell_steeply_at_the_start_then_levelled_is_a_plateau_not_underfitting():
    # 45 -> 1.3 within the first 8 of 480 logged steps (the first span of the binned curve, which the
    # trend's running median smooths away), then flat and creeping up: it learned at once, then stopped
    rng = np.random.default_rng(1)
    head = [45.0, 5.1, 2.4, 1.9, 1.75, 1.55, 1.45, 1.3]
    tail = [1.1 + 0.15 * i / 472 + rng.normal(0, 0.03) for i in range(472)]
    found = detect(parse_run(steps_log(head + tail)))
    assert [f.kind for f in found] == ["plateau"]


def test_a_flat_tail_after_a_tenfold_step_decay_is_convergence():
    rng = np.random.default_rng(5)
    loss = [0.02 * np.exp(-i / 15) + 0.062 + rng.normal(0, 0.0002) for i in range(150)]
    lr = [1e-3 if i < 75 else 1e-4 for i in range(150)]
    found = detect(parse_run(steps_log(loss, lr=lr)))
    assert [f.kind for f in found] == ["healthy"] and "learning rate decays" in found[0].evidence
    # the same curve at a constant learning rate: it levelled at three quarters of where it began
    assert "plateau" in _kinds(steps_log(loss))


def test_a_learning_rate_column_is_one_whatever_its_casing_and_spacing():
    # a hand-written CSV's `Learning Rate` (capitalised, with a space) is the rate, as `learning_rate`
    # and `LearningRate` are: its tenfold step down makes the flat tail convergence, and it is no reading
    rng = np.random.default_rng(5)
    loss = [0.06 * np.exp(-i / 15) + 0.022 + rng.normal(0, 0.0002) for i in range(150)]
    for name in ("Learning Rate", "learning-rate", "LearningRate", "learning_rate"):
        rows = [f"Epoch,Train Loss,{name}"]
        rows += [f"{i},{v:.6f},{1e-3 if i < 75 else 1e-4:g}" for i, v in enumerate(loss)]
        run = parse_run("\n".join(rows))
        assert sorted(run.metrics) == ["lr", "train_loss"], name
        found = detect(run)
        assert [f.kind for f in found] == ["healthy"] and "learning rate decays" in found[0].evidence, name
    # a sweep's columns named for the rate each run used hold that run's loss, in every spelling too
    sweep = [
        "epoch,learning-rate_0.005,Learning Rate 0.01",
        *(f"{i},{v:.5f},{v * 1.1:.5f}" for i, v in enumerate(loss)),
    ]
    assert "lr" not in parse_run("\n".join(sweep)).metrics


def test_a_learning_rate_halved_every_epoch_stalls_the_run_and_is_said():
    # Informer/FEDformer's default schedule: the rate halves each epoch, so it is a thousandth of its
    # peak by epoch 11 of 100; training 0.40 -> 0.335 by then, flat for the 90 epochs after: a plateau
    # the schedule caused (not convergence, and not underfitting: it learned until the rate was gone),
    # said with the epoch the rate vanished at
    train = [0.335 + 0.07 * np.exp(-e / 2) for e in range(100)]
    val = [0.779 + 0.016 * np.exp(-e / 2) for e in range(100)]
    rows = "\n".join(
        f"Epoch: {e + 1}, Steps: 528 | Train Loss: {t:.7f} Vali Loss: {v:.7f} | lr: {1e-4 * 0.5**e:.3g}"
        for e, (t, v) in enumerate(zip(train, val, strict=True))
    )
    found = detect(parse_run(rows))
    assert [f.kind for f in found] == ["plateau"]
    assert "down to 0.001 of its peak from epoch 11 on" in found[0].evidence
    # the same curves at a constant rate: a stall that is the curve's own (and barely learning)
    flat_lr = "\n".join(line.rsplit(" | lr", 1)[0] for line in rows.splitlines())
    assert "underfitting" in [f.kind for f in detect(parse_run(flat_lr))]


def test_a_loss_at_a_tenth_of_its_start_holding_its_lowest_point_is_convergence():
    # 0.95 -> ~0.035 in the first third, then flat at its lowest at a constant learning rate
    rng = np.random.default_rng(11)
    loss = [0.032 + 0.92 * np.exp(-i / 6) + rng.normal(0, 0.0015) for i in range(90)]
    found = detect(parse_run(steps_log(loss)))
    assert [f.kind for f in found] == ["healthy"] and "a tenth or less" in found[0].evidence
    # the tenfold fall creeping back up from its low is stuck
    creeping = [v + 0.008 * max(0, i - 30) / 60 for i, v in enumerate(loss)]
    assert "plateau" in _kinds(steps_log(creeping))
    # the same tenfold fall within the first reading, then flat for the rest, was stuck from the start
    # (a sparse target's loss 0.0115 -> 0.000976 in one epoch, then the same for nineteen)
    at_once = [0.95, *(0.032 + rng.normal(0, 0.0015) for _ in range(89))]
    assert "plateau" in _kinds(steps_log(at_once))


def test_a_loss_down_by_a_third_or_more_holding_its_lowest_point_settled_there():
    # an autoencoder's reconstruction loss 0.95 -> 0.19 and flat at its lowest: it learned and settled
    # (readers of real logs called such tails converged, not stuck: which level is good no curve says)
    rng = np.random.default_rng(11)
    fifth = [0.19 + 0.76 * np.exp(-i / 6) + rng.normal(0, 0.0015) for i in range(90)]
    found = detect(parse_run(steps_log(fifth)))
    assert [f.kind for f in found] == ["healthy"] and "settled there" in found[0].evidence
    assert "21% of where it began" in found[0].evidence  # (from its first reading, 0.90)
    # levelling after a fall of a fifth (0.95 -> 0.76) is a stall
    stalled = [0.76 + 0.19 * np.exp(-i / 6) + rng.normal(0, 0.0015) for i in range(90)]
    assert _kinds(steps_log(stalled)) == ["plateau"]
    # so is the settled curve creeping back up from its low
    creeping = [v + 0.02 * max(0, i - 30) / 60 for i, v in enumerate(fifth)]
    assert "plateau" in _kinds(steps_log(creeping))
    # and one whose learning rate had vanished before its tail: the schedule stopped it, and it is said
    lr = [1e-3 * 0.5**i for i in range(90)]
    found = detect(parse_run(steps_log(fifth, lr=lr)))
    assert [f.kind for f in found] == ["plateau"] and "learning rate was down" in found[0].evidence
    # at its level within its first tenth and flat for the rest: stuck from the start (a review's case:
    # 1.0, 0.8, then 0.6 for 58 epochs), however far that first fall went
    early = [1.0, 0.8, *(0.6 + rng.normal(0, 0.005) for _ in range(58))]
    assert _kinds("\n".join(f"Epoch {e} loss {v:.4f}" for e, v in enumerate(early, 1))) == ["plateau"]
    # a validation loss creeping up beside a training loss that settled: no settled run
    train = [0.95, *(0.19 + 0.76 * np.exp(-i / 6) + rng.normal(0, 0.0015) for i in range(1, 60))]
    val = [0.96, *(0.25 + 0.7 * np.exp(-i / 6) + 0.0012 * max(0, i - 20) for i in range(1, 60))]
    assert "healthy" not in _kinds(_train_val(train, val))


def test_a_reward_that_sits_at_its_cap_is_solved_not_stuck():
    # a PPO return climbing to the environment's cap (500) and logged at it again and again
    rng = np.random.default_rng(12)
    ret = [min(500.0, 20 + 35 * i) for i in range(16)]
    ret += [500.0 if rng.random() < 0.6 else float(rng.uniform(400, 499)) for _ in range(34)]
    rows = ["Epoch\tAverageEpRet\tLossPi", *(f"{i}\t{r:g}\t0.01" for i, r in enumerate(ret))]
    found = detect(parse_run("\n".join(rows)))
    assert [f.kind for f in found] == ["healthy"] and "a ceiling" in found[0].evidence
    # levelling off below the cap, never the same twice, holds there: whether it could go higher is
    # the environment's to say (its solved score), not the curve's; readers of real agents' returns
    # called such a tail healthy four times for once a plateau
    near = [*ret[:16], *(float(rng.uniform(440, 470)) for _ in range(34))]
    rows = ["Epoch\tAverageEpRet\tLossPi", *(f"{i}\t{r:.3f}\t0.01" for i, r in enumerate(near))]
    found = detect(parse_run("\n".join(rows)))
    assert [f.kind for f in found] == ["healthy"] and "it holds near 4" in found[0].evidence


def test_held_out_accuracy_that_still_improves_keeps_a_flat_training_loss_from_being_called_stuck():
    # a DeiT fine-tune: the training loss (distillation, mixup) barely moves, top-1 climbs every epoch
    rows = [
        {"epoch": e, "train_loss": 4.82 - 0.005 * e, "test_acc1": 69.6 + 0.25 * e, "train_lr": 4e-5}
        for e in range(15)
    ]
    assert _kinds("\n".join(json.dumps(r) for r in rows)) == ["healthy"]
    flat_acc = [dict(r, test_acc1=73.0) for r in rows]
    assert "underfitting" in _kinds("\n".join(json.dumps(r) for r in flat_acc))  # nothing improves


def test_a_held_out_score_still_climbing_beside_a_noisy_validation_loss_keeps_training_from_a_plateau():
    # a sequential recommender: training loss 1.61 -> ~1.18, flat over the last epochs; the validation
    # logloss scatters 0.61-0.85, but the held-out AUC still climbs at nearly every epoch
    train = [1.61, 1.50, 1.32, 1.29, 1.24, 1.19, 1.17, 1.18, 1.17, 1.18, 1.17, 1.18]
    logloss = [0.693, 0.695, 0.845, 0.70, 0.67, 0.614, 0.618, 0.658, 0.627, 0.612, 0.64, 0.62]
    auc = [0.50, 0.65, 0.69, 0.70, 0.715, 0.722, 0.729, 0.734, 0.736, 0.740, 0.745, 0.749]
    rows = [
        f"epoch {e} | loss {t} | val_loss {v} | val_auc {a}"
        for e, (t, v, a) in enumerate(zip(train, logloss, auc, strict=True), 1)
    ]
    assert _kinds("\n".join(rows)) == ["healthy"]
    flat = [r.rsplit("|", 1)[0] + "| val_auc 0.73" for r in rows]  # the same run, its AUC flat: stuck
    assert "plateau" in _kinds("\n".join(flat))


def test_a_coarsely_printed_flat_loss_is_no_ceiling():
    # a loss printed with two decimals repeats its lowest value by rounding: still a plateau
    loss = [2.3 - 0.4 * min(i, 8) / 8 for i in range(40)]
    assert "plateau" in _kinds("\n".join(f"step {10 * (i + 1)} | loss {v:.2f}" for i, v in enumerate(loss)))


def test_an_evaluation_curve_still_improving_slowly_at_every_point_is_not_a_plateau():
    # an AUC 0.7775 -> 0.8026 rising at every evaluation: the last third gains 1.3% of the shortfall's
    # level but a fair share of all the run gained
    auc = [0.8026 - 0.025 * np.exp(-i / 6) for i in range(18)]
    text = "\n".join(f"step {1000 * (i + 1)} | val_auc {a:.4f}" for i, a in enumerate(auc))
    assert _kinds(text) == ["healthy"]
    flat = [0.8026 - 0.025 * np.exp(-i / 1.5) for i in range(18)]  # the same gain, all in the first few
    text = "\n".join(f"step {1000 * (i + 1)} | val_auc {a:.4f}" for i, a in enumerate(flat))
    assert "plateau" in _kinds(text)


def test_a_held_out_return_levelling_while_the_training_loss_still_falls_is_no_plateau():
    # offline RL (a Decision Transformer's CSV): the evaluation return rises, then holds while the
    # action loss keeps falling: the optimiser is not stuck. With the loss flat too, the return holds
    # where the agent got to (whether that is the task's best is the environment's to say).
    rng = np.random.default_rng(5)
    ret = [1800 * min(1.0, i / 50) + rng.normal(0, 120) for i in range(200)]

    def log(loss: list[float]) -> str:
        rows = [f"{100 * (i + 1)},{a:.4f},{r:.1f}" for i, (a, r) in enumerate(zip(loss, ret, strict=True))]
        return "\n".join(["num_updates,action_loss,eval_avg_reward", *rows])

    falling = [0.06 + 0.6 * np.exp(-i / 25) for i in range(200)]
    assert _kinds(log(falling)) == ["healthy"]
    flat = [0.06 + 0.6 * np.exp(-i / 3) for i in range(200)]
    found = detect(parse_run(log(flat)))
    assert [f.kind for f in found] == ["healthy"] and "holds near" in found[0].evidence


def test_a_language_models_loss_still_falling_at_its_own_pace_is_no_plateau():
    # a byte-level LM: 5.49 -> 1.0 early, then about as much per doubling of steps (0.94 -> 0.92 in
    # the last third: 2%, a small share of all it gained, but a good part of the third before)
    steps = np.arange(1, 61) * 1400
    lm = [0.86 + 0.14 * (s / 1400) ** -0.35 + 4.5 * np.exp(-s / 800) for s in steps]
    assert _kinds(steps_log(lm, first=1400, every=1400)) == ["healthy"]
    # the same start, then creeping back up from where it stood for the last two thirds: stuck
    stalled = [*lm[:20]] + [lm[19] + 0.002 * k for k in range(40)]
    assert "plateau" in _kinds(steps_log(stalled, first=1400, every=1400))


def test_an_mlperf_run_that_stopped_on_reaching_its_target_levelled_off_by_convergence():
    # an MLPerf result log ends its run when the quality target is reached (`run_stop`, status
    # success): its last evaluations creep towards the target, which is convergence, not a stall
    rng = np.random.default_rng(6)
    acc = [0.5 + 0.1 * (1 - 0.7**i) + rng.normal(0, 0.003) for i in range(40)]
    evals = "\n".join(
        f':::MLLOG {{"key": "eval_accuracy", "value": {a:.4f}, "metadata": {{"epoch_num": {20 * (i + 1)}}}}}'
        for i, a in enumerate(acc)
    )
    stop = ':::MLLOG {"key": "run_stop", "value": null, "metadata": {"status": "success"}}'
    assert _kinds(evals) == ["plateau"]
    found = detect(parse_run(evals + "\n" + stop))
    assert [f.kind for f in found] == ["healthy"] and "quality target" in found[0].evidence


def test_a_flat_end_that_early_stopping_announces_is_its_patience_not_a_plateau():
    # a Titanic MLP levelling off, then `Epoch 00017: early stopping`: the flat end is the patience
    # the callback waited out; the same curve without the message is a plateau
    # (its losses levelled at four fifths of where they began: less than a run that settles comes down)
    train = [1.262, 1.196, 1.154, 1.115, 1.118, 1.110, 1.075, 1.082, 1.062, 1.066, 1.061, 1.046, 1.043,
             1.056, 1.049, 1.045, 1.057]  # fmt: skip
    val = [1.216, 1.148, 1.109, 1.083, 1.075, 1.051, 1.020, 1.020, 1.013, 1.047, 1.034, 1.026, 1.007,
           1.005, 1.053, 1.051, 1.000]  # fmt: skip
    fit = "\n".join(
        f"Epoch {e}/50\n89/89 - 0s - loss: {t:.4f} - val_loss: {v:.4f}"
        for e, (t, v) in enumerate(zip(train, val, strict=True), 1)
    )
    assert "plateau" in _kinds(fit)
    found = detect(parse_run(fit + "\nEpoch 00017: early stopping"))
    assert [f.kind for f in found] == ["healthy"] and "early stopping" in found[0].evidence
    # a message printed every epoch stops something else (Spinning Up's policy updates at max KL)
    per_epoch = fit.replace("\nEpoch ", "\nEarly stopping due to reaching max kl.\nEpoch ")
    assert "plateau" in _kinds(per_epoch)
    # a setting printed before training (`early_stopping: True`) says nothing about how it ended
    assert "plateau" in _kinds("early_stopping: True\n" + fit)


def test_a_loss_that_sat_still_and_only_began_to_move_at_the_end_has_not_levelled_off():
    # a contact-point model: 10.31 for six epochs, then 10.24, 10.11, 10.05: it barely learned, and
    # its last third gained more than all the run before it, so it is no plateau
    loss = [10.3086, 10.3048, 10.3117, 10.3055, 10.3059, 10.2965, 10.2432, 10.1101, 10.0534]
    text = "train_loss,epoch\n" + "\n".join(f"{v},{e}" for e, v in enumerate(loss))
    assert _kinds(text) == ["underfitting"]
    # the same fall first, then standing still: that levelled off
    early = [10.3086, 10.2432, 10.1101, 10.0534, 10.0541, 10.0529, 10.0552, 10.0538, 10.0547]
    assert "plateau" in _kinds("train_loss,epoch\n" + "\n".join(f"{v},{e}" for e, v in enumerate(early)))


def test_early_stopping_counts_only_for_the_run_it_ended():
    # two appended fits: the first stopped early, the second (20 epochs) levelled off with no message: a
    # plateau (a second table ending where the stopped run ended would be its re-print: torchkeras);
    # a callback announced while the run goes on (`Using EarlyStopping callback`) ends nothing
    flat = [1.262, 1.196, 1.154, 1.115, 1.118, 1.110, 1.075, 1.082, 1.062, 1.066, 1.061, 1.046, 1.043,
            1.056, 1.049, 1.045, 1.057]  # fmt: skip
    fit = "\n".join(f"Epoch {e}/50\n89/89 - 0s - loss: {t:.4f}" for e, t in enumerate(flat, 1))
    longer = "\n".join(
        f"Epoch {e}/50\n89/89 - 0s - loss: {t:.4f}" for e, t in enumerate(flat + [1.05] * 3, 1)
    )
    assert "plateau" in _kinds(fit + "\nEpoch 00017: early stopping\n" + longer)
    assert "plateau" in _kinds(fit.replace("\nEpoch 3/", "\nUsing EarlyStopping callback\nEpoch 3/"))
    assert "plateau" in _kinds(fit + "\nno early stopping was used")
    assert _kinds(fit + "\nEpoch 00017: early stopping\n" + fit + "\nEpoch 00017: early stopping") == [
        "healthy"
    ]


def test_a_short_curve_whose_last_stretch_keeps_a_third_of_the_pace_before_it_is_no_plateau():
    # a VAE printed every five epochs: both losses still fall at the end, a little less each stretch;
    # the stretch before the last is measured from its own first point, not from the steep start
    train = [184.74, 149.90, 144.68, 142.25, 140.76, 139.74, 138.88, 138.06, 137.90, 137.45]
    val = [171.09, 152.18, 147.63, 145.02, 143.81, 144.16, 142.90, 141.46, 141.75, 141.13]
    lines = [
        f"Epoch{5 * i}, Training loss {t:.2f}, Validation loss {v:.2f}"
        for i, (t, v) in enumerate(zip(train, val, strict=True))
    ]
    run = parse_run("\n".join(lines))
    assert run.table["epoch"].tolist()[:2] == [1.0, 6.0]  # `Epoch0,`: the number after the word
    assert [f.kind for f in detect(run)] == ["healthy"]
    # the same stretch after a curve that had stopped before it is still a plateau
    stopped = [184.74, 150.0, 141.0, 140.2, 140.0, 139.9, 139.8, 139.6, 139.4, 139.2]
    assert "plateau" in _kinds(_train_val(stopped, [v + 3.5 for v in stopped]))


def test_a_curve_still_setting_new_lows_at_most_of_its_last_points_is_still_improving():
    # a forecaster's error (MAPE) falling at nearly every epoch, a little less each time: 1.8% over its
    # last third, far from zero, yet still going down
    mape = [56.5, 47.2, 45.7, 44.7, 43.2, 41.1, 39.8, 38.5, 37.6, 37.2, 36.7, 36.4, 36.15]
    mape += [35.95, 35.88, 35.70, 35.49, 35.43, 35.34, 35.49, 35.19, 35.17, 35.07, 35.07, 34.92]
    assert _kinds("\n".join(f"Epoch {e}/25 - loss: {v:.4f}" for e, v in enumerate(mape, 1))) == ["healthy"]
    # a training loss creeping to new lows beside a validation loss creeping up: the new lows no longer
    # carry over, and a run that barely learned is stuck
    train = [1.3884, 1.3572, 1.3128, 1.2737, 1.2433, 1.2209, 1.2058, 1.1947, 1.1858, 1.1798, 1.1726]
    train += [1.169, 1.1655, 1.1609, 1.1571, 1.1567, 1.1527, 1.1517, 1.1513, 1.15, 1.1482, 1.1495]
    train += [1.1454, 1.1446, 1.1425]
    val = [1.3815, 1.3528, 1.3209, 1.2995, 1.2862, 1.2813, 1.2746, 1.2731, 1.2721, 1.2712, 1.2721]
    val += [1.2751, 1.276, 1.2785, 1.2797, 1.2826, 1.2843, 1.2832, 1.2849, 1.2855, 1.2871, 1.2868]
    val += [1.2912, 1.2893, 1.2915]
    assert set(_kinds(_train_val(train, val))) == {"plateau", "underfitting"}


def _captioner(epoch: str, losses: list[float]) -> str:
    steps = len(losses)
    return "\n".join(
        f"Epoch [{epoch}], Step [{i + 1}/{steps}], Loss: {v:.4f}, Perplexity: {np.exp(v):.4f}"
        for i, v in enumerate(losses)
    )


def test_a_resumed_runs_slow_steady_fall_is_no_plateau():
    # the second of two epochs, resumed: 2.28 -> 2.16 at an even pace, under 2% of its level in the
    # last third (the steep fall came before the log began): the little it gains is its pace
    rng = np.random.default_rng(11)
    losses = [2.28 - 0.12 * i / 1200 + rng.normal(0, 0.03) for i in range(1200)]
    assert _kinds(_captioner("2/2", losses)) == ["healthy"]
    # the same curve from the run's first step learned little at all, and that little has stalled
    assert _kinds(_captioner("1/2", losses)) == ["plateau", "underfitting"]


def _opennmt(xent: list[float], val_ppl: list[float], every: int = 100, evaluate: int = 10_000) -> str:
    lines = []
    for i, v in enumerate(xent):
        step = every * (i + 1)
        lines.append(
            f"[2020-02-09 07:29:37,814 INFO] Step {step}/100000; acc:  50.00; ppl: {np.exp(v):.2f}; "
            f"xent: {v:.2f}; lr: 0.00070; 10559/11089 tok/s;     35 sec"
        )
        if step % evaluate == 0:
            ppl = val_ppl[step // evaluate - 1]
            lines.append(f"[2020-02-09 07:29:37,814 INFO] Validation perplexity: {ppl}")
    return "\n".join(lines)


def test_a_held_out_perplexity_better_at_each_of_its_few_evaluations_keeps_training_from_a_plateau():
    # OpenNMT: `xent` is the training loss; the validation perplexity, every 10,000 steps, four times
    rng = np.random.default_rng(12)
    xent = [3.6 + 1.2 * np.exp(-i / 20) + rng.normal(0, 0.12) for i in range(400)]
    assert "train_loss" in parse_run(_opennmt(xent, [16.9, 10.6, 9.65, 8.75])).metrics
    assert _kinds(_opennmt(xent, [16.9, 10.6, 9.65, 8.75])) == ["healthy"]  # better at each: still learning
    assert _kinds(_opennmt(xent, [16.9, 10.6, 10.7, 10.6])) == ["plateau"]  # the held-out curve stopped too


def test_a_resumed_run_that_never_comes_down_beyond_its_noise_is_not_excused_as_steady():
    # a resumed log (epoch 3 of 5) flat at 2.0 that steps down 0.5% near its end, less than three
    # noise-widths: its last third's small clear gain is no steady fall (these draws were called
    # healthy when a resumed log's steady gain asked nothing of its coming down)
    for seed in (0, 14, 16):
        rng = np.random.default_rng(seed)
        losses = [2.0 - (0.01 if i > 1000 else 0) + rng.normal(0, 0.03) for i in range(1200)]
        assert "healthy" not in _kinds(_captioner("3/5", losses))


def test_a_validation_loss_still_reaching_new_lows_at_its_end_keeps_training_from_a_plateau():
    # a LoRA fine-tune: its training loss swings between batches of different lengths (5.5 to 4.2),
    # its validation loss creeps to a new low at nearly every evaluation (5.69 -> 5.66 over its last
    # third, 0.6%): too little to clear the bar for "still improving", but it has not levelled off
    train = [5.52, 5.62, 5.13, 5.05, 5.20, 4.65, 5.10, 5.05, 4.54, 5.00]
    train += [5.03, 4.41, 4.78, 4.98, 4.37, 4.88, 4.91, 4.25, 4.80, 4.70]
    val = [7.457, 7.262, 6.410, 6.307, 6.117, 6.018, 6.000, 5.890, 5.814, 5.834]
    val += [5.782, 5.721, 5.736, 5.712, 5.690, 5.676, 5.662, 5.660, 5.664, 5.656]
    assert _kinds(_train_val(train, val)) == ["healthy"]
    # the same run whose validation loss set its lowest point at the twelfth evaluation and has sat
    # on that level since: stuck
    level = val[:12] + [5.735, 5.728, 5.733, 5.724, 5.731, 5.726, 5.734, 5.729]
    assert _kinds(_train_val(train, level)) == ["plateau"]
    # a stall whose last reading or two dip lower by chance: not half its last stretch, still stuck
    for flat in (
        [2.0, 1.7, 1.6, 1.61, 1.6, 1.585],
        [2.0, 1.8, 1.7, 1.6, 1.6, 1.61, 1.595, 1.6, 1.605, 1.585],
    ):
        assert _kinds("\n".join(f"Epoch {e}: loss={v:.4f}" for e, v in enumerate(flat, 1))) == ["plateau"]
