"""Overfitting: a validation curve that turns up from its best while training still improves (by a
clear rise, or by a mild one as training pulls away), a few evaluations each worse than the last, and
a validation curve that never followed training at all."""

from __future__ import annotations

import numpy as np

from assistant.runs import detect, parse_run
from tests.run_helpers import kinds as _kinds
from tests.run_helpers import train_val as _train_val


def test_a_small_rise_that_stays_on_a_smooth_validation_curve_is_overfitting():
    # an SFT run evaluated every 500 steps: 1.64 -> 1.552, then up to ~1.58 (+1.2% over the three
    # around the turn) for the last four evaluations while training keeps falling (the gap widens);
    # the same curve wiggling within 0.4% is not
    rng = np.random.default_rng(14)
    val = [1.552 + 0.09 * np.exp(-i / 2.5) for i in range(9)] + [1.575, 1.579, 1.581, 1.580]
    train = [2.0 - 0.4 * i / 12 + rng.normal(0, 0.005) for i in range(13)]
    assert "overfitting" in _kinds(_train_val(train, val))
    flat = [*val[:9], 1.556, 1.551, 1.557, 1.553]
    assert "overfitting" not in _kinds(_train_val(train, flat))


def test_validation_creeping_up_while_training_stands_still_is_not_overfitting():
    # training sits at the same value for the last 14 points; validation edges up 7%: nothing pulls
    # them apart, so this is no overfitting (the flat training curve is the finding)
    train = [0.88, 0.685] + [0.681 - 1e-4 * i for i in range(16)]
    val = [0.438, 0.391, 0.378, 0.378] + [0.379 + 0.002 * i for i in range(14)]
    assert "overfitting" not in _kinds(_train_val(train, val))
    falling = [0.88 * 0.93**i for i in range(18)]
    assert "overfitting" in _kinds(_train_val(falling, val))  # the same validation curve as training falls


def test_a_validation_loss_that_scatters_mid_run_then_settles_above_its_best_is_overfitting():
    # hands-on-ML's MNIST fit: validation 0.0718 at epoch 8 amid 0.07-0.12 scatter, then flat at 0.089-
    # 0.091 for the last ten epochs while training falls to 4e-5: the scatter hides the rise from the
    # three points around the turn, not from the stretch leading to it
    val = [0.0995, 0.0913, 0.0785, 0.0793, 0.0724, 0.0814, 0.0794, 0.0718, 0.0874, 0.0782, 0.0902, 0.0832,
           0.0888, 0.1080, 0.0828, 0.0869, 0.0997, 0.1001, 0.1239, 0.1107, 0.0891, 0.0893, 0.0899, 0.0894,
           0.0899, 0.0903, 0.0906, 0.0911]  # fmt: skip
    train = [0.42 * 0.7**e for e in range(28)]
    assert "overfitting" in _kinds(_train_val(train, val, "epoch {x} loss={t:.6f} val_loss={v:.4f}", every=1))
    # one late spike on a flat validation curve is no rise
    flat = [0.1375, 0.1274, 0.1246, 0.1168, 0.1172, 0.1199, 0.1177, 0.1152, 0.1170, 0.1205, 0.1329, 0.1191]
    slow = [0.386, 0.121, 0.113, 0.109, 0.106, 0.102, 0.104, 0.100, 0.099, 0.096, 0.097, 0.095]
    assert _kinds(_train_val(slow, flat, "epoch {x} loss={t:.4f} val_loss={v:.4f}", every=1)) == ["healthy"]


def test_three_evaluations_each_worse_than_the_last_while_training_falls_is_overfitting():
    # a fine-tune of three epochs, the Hugging Face Trainer's console: a step's loss every 10 steps,
    # an evaluation each epoch; too few evaluations for a trend, but each came in worse
    def trainer(evals: tuple[float, ...]) -> list[str]:
        lines = []
        for e, val in enumerate(evals):
            for k in range(10):
                step = 10 * (10 * e + k + 1)
                lines.append(
                    str({"loss": round(1.2 * 0.93 ** (step / 10), 4), "epoch": round(step / 100, 2)})
                )
            lines.append(str({"eval_loss": val, "eval_runtime": 3.2, "epoch": float(e + 1)}))
        return lines

    lines = trainer((0.62, 0.70, 0.81))
    found = detect(parse_run("\n".join(lines)))
    assert [f.kind for f in found] == ["overfitting"] and found[0].confidence == "low"
    assert "worse at each of the 2 evaluations after it" in found[0].evidence
    # the last evaluation as bad as the one before (a flat step, no recovery) is still each one worse
    flat = "\n".join(ln.replace("'eval_loss': 0.81", "'eval_loss': 0.699") for ln in lines)
    assert [f.kind for f in detect(parse_run(flat))] == ["overfitting"]
    # ...but a curve coming back a little at each step (0.70, 0.67, 0.645 after 0.62 then 0.72) has
    # recovered, and an evaluation level with the lowest is no worse than it
    for evals in ((0.62, 0.72, 0.70, 0.67, 0.645), (0.62, 0.62, 0.81)):
        assert [f.kind for f in detect(parse_run("\n".join(trainer(evals))))] == ["healthy"], evals
    # the same evaluations, better at the end, are not; nor is a healthy run's wording "followed it"
    # when its last evaluation is over a fifth above its best
    better = "\n".join(ln.replace("'eval_loss': 0.81", "'eval_loss': 0.6") for ln in lines)
    assert [f.kind for f in detect(parse_run(better))] == ["healthy"]
    worse = "\n".join(ln.replace("'eval_loss': 0.7,", "'eval_loss': 0.9,") for ln in lines)
    healthy = detect(parse_run(worse))
    assert [f.kind for f in healthy] == ["healthy"] and "31% above its best reading" in healthy[0].evidence


def test_a_fine_tune_stopped_early_after_five_epochs_each_worse_than_its_best_is_overfitting():
    # Keras, one line an epoch: the training curve is as short as the validation one (no trend for
    # either), but training fell at every epoch while validation rose at each after its best
    rows = [(0.9223, 0.7872), (0.5795, 0.7839), (0.3299, 0.8827), (0.1722, 0.9571), (0.0359, 1.0549)]
    text = "\n".join(
        f"Epoch {e}/100\n2368/2368 [======] - 162s 68ms/step - loss: {t:.4f} - val_loss: {v:.4f}"
        for e, (t, v) in enumerate(rows, start=1)
    )
    found = detect(parse_run(text))
    assert [f.kind for f in found] == ["overfitting"] and "worse at each of the 3 evaluations" in found[
        0
    ].evidence
    # training that stalls at one of those epochs does not pull the two apart
    stalled = text.replace("loss: 0.1722", "loss: 0.3400")
    assert [f.kind for f in detect(parse_run(stalled))] == ["healthy"]


def test_eight_epochs_falling_steeply_then_each_worse_than_the_best_is_overfitting():
    # DLinear, early stopped: validation 1.157, 0.454, 0.353, 0.307, 0.301, then 0.320, 0.314, 0.336
    # while training falls: the steep first fall swells a short curve's noise estimate, and the three
    # evaluations after the lowest are still each worse than it
    train = [0.632, 0.644, 0.546, 0.516, 0.499, 0.491, 0.485, 0.483]
    val = [1.157, 0.454, 0.353, 0.307, 0.301, 0.320, 0.314, 0.336]
    line = "Epoch: {x}, Steps: 1047 | Train Loss: {t:.7f} Vali Loss: {v:.7f}"
    found = detect(parse_run(_train_val(train, val, line=line, every=1)))
    assert [f.kind for f in found] == ["overfitting"] and "3 evaluations after it" in found[0].evidence
    # a level curve's dip and the scatter after it are no turn: two evaluations before its lowest it
    # stood no higher than after (0.50 before 0.47, then 0.49, 0.50, 0.495)
    level = [0.50, 0.49, 0.51, 0.50, 0.48, 0.50, 0.49, 0.47, 0.49, 0.50, 0.495]
    assert _kinds(_train_val([0.60 - 0.02 * i for i in range(11)], level, line=line, every=1)) != [
        "overfitting"
    ]
    # two after the lowest on a curve this long are no turn yet (MLPerf's DeepCAM, 0.0109 -> 0.0132)
    assert _kinds(_train_val(train[:7], val[:4] + [0.300, 0.320, 0.330], line=line, every=1)) != [
        "overfitting"
    ]


def test_validation_creeping_up_from_its_best_while_training_pulls_away_is_overfitting():
    # a BLIP captioning fine-tune: validation 1.07 -> about 0.40 by epoch 11, then scattering 0.38-0.49
    # and creeping up to about 0.45, less than three standard errors of its scatter, while training
    # falls from 0.09 to 0.016: validation stopped gaining what training still gains
    val = [1.0706, 0.6631, 0.5778, 0.4657, 0.5452, 0.4601, 0.5103, 0.4344, 0.4509, 0.4394, 0.3883, 0.413,
           0.4133, 0.4172, 0.3949, 0.4028, 0.46, 0.4114, 0.4369, 0.4382, 0.3864, 0.4195, 0.4056, 0.4267,
           0.4335, 0.3863, 0.3822, 0.4374, 0.427, 0.3919, 0.437, 0.3854, 0.3763, 0.4276, 0.487, 0.4195,
           0.4304, 0.4265, 0.391, 0.4486, 0.4168, 0.4232, 0.4231, 0.4493, 0.442, 0.4323, 0.4487, 0.4509,
           0.4747, 0.4199]  # fmt: skip
    train = [1.47 * np.exp(-e / 5) + 0.015 for e in range(50)]
    line = "epoch {x} loss={t:.4f} val_loss={v:.4f}"
    assert _kinds(_train_val(train, val, line, every=1)) == ["overfitting"]
    # the same validation curve beside a training loss that levelled off with it: no widening gap
    level = [1.47 * np.exp(-e / 2.5) + 0.3 for e in range(50)]
    assert "overfitting" not in _kinds(_train_val(level, val, line, every=1))


def test_a_validation_loss_that_never_followed_training_down_is_overfitting():
    # a 5-class Keras classifier memorising a tiny training set: training loss 1.14 -> 0.03 (accuracy
    # 1.0) while validation loss sits at chance (ln 5 = 1.61): 1.600, best 1.582 at epoch 9, 1.584
    # at epoch 13; no turn to find, the gap opens from the start
    train = [
        1.141,
        0.6025,
        0.3254,
        0.1978,
        0.1778,
        0.1241,
        0.063,
        0.0669,
        0.0547,
        0.0714,
        0.0281,
        0.049,
        0.0279,
    ]
    val = [1.5996, 1.5949, 1.589, 1.588, 1.5865, 1.5844, 1.583, 1.5823, 1.5823, 1.5828, 1.5824, 1.583, 1.5837]
    line = "epoch {x} loss={t:.4f} val_loss={v:.4f}"
    found = detect(parse_run(_train_val(train, val, line, every=1)))
    assert [f.kind for f in found] == ["overfitting"]
    assert "nothing that carries over" in found[0].evidence
    # validation still gaining at its last epoch follows training, however slowly (a run restarted
    # after a blow-up, its training loss falling from 1e9): no finding of this kind
    still = [1.5996 - 0.006 * e for e in range(13)]
    assert "overfitting" not in _kinds(_train_val(train, still, line, every=1))
    # training that fell by a third only, beside the same validation curve: no memorising
    slow = [1.141 - 0.03 * e for e in range(13)]
    assert "overfitting" not in _kinds(_train_val(slow, val, line, every=1))


def test_a_converged_accuracy_dipping_half_a_point_is_not_overfitting():
    # PointNet++ on ModelNet40: test accuracy 0.77 -> 0.92 by epoch 40, then 0.915 +- 0.003 to epoch
    # 160 while training accuracy climbs to 0.97. Its error rising from 8.0% to 8.5% is a 7% rise of
    # the error but half a point of accuracy: a share of a score is judged on the score's scale
    rng = np.random.default_rng(3)
    train = [0.66 + 0.31 * (1 - np.exp(-e / 40)) + rng.normal(0, 0.002) for e in range(160)]
    test = [
        min(0.92, 0.77 + 0.15 * e / 40) + rng.normal(0, 0.002) - (0.005 if e > 100 else 0) for e in range(160)
    ]
    assert "overfitting" not in _kinds(_accuracies(train, test))
    dropped = [v - (0.03 if e > 100 else 0) for e, v in enumerate(test)]  # three points: a turn
    assert "overfitting" in _kinds(_accuracies(train, dropped))


def _accuracies(train: list[float], test: list[float]) -> str:
    line = "Epoch {e}: Train Instance Accuracy: {t:.4f} Test Instance Accuracy: {v:.4f}"
    return "\n".join(line.format(e=e + 1, t=t, v=v) for e, (t, v) in enumerate(zip(train, test, strict=True)))


def test_a_turn_within_the_last_epochs_of_a_run_evaluated_several_times_an_epoch_is_overfitting():
    """Ten epochs, evaluated every 100 steps (two or three times an epoch, Lightning's
    `val_check_interval`): the validation loss bottoms out at its 15th evaluation and rises 8% by
    its 24th while training keeps falling. Per-epoch means leave three points after the turn, too few
    to count it (the run was called healthy); the evaluations' own steps keep all nine."""
    rng = np.random.default_rng(7)
    rows = ["epoch,step,train_loss,val_loss"]
    for step in range(10, 2410, 10):
        train = 4.0 * np.exp(-step / 700) + 0.15 + rng.normal(0, 0.03)
        k = step // 100
        val = ""
        if step % 100 == 0:
            val = f"{1.58 + 2.3 * np.exp(-k / 3) + (0.015 * (k - 15) if k > 15 else 0):.4f}"
        rows.append(f"{(step - 1) // 240},{step},{train:.4f},{val}")
    run = parse_run("\n".join(rows))
    assert run.table["epoch"].nunique() == 10 and run.table["val_loss"].notna().sum() == 24
    found = {f.kind: f for f in detect(run)}
    assert "overfitting" in found and "step 1500" in found["overfitting"].evidence
    assert found["overfitting"].confidence == "high"


def test_a_validation_loss_rising_at_each_evaluation_since_its_lowest_is_overfitting():
    # a BiLSTM on SNLI, ten epochs: validation 0.680 -> 0.498 at epoch 7, then 0.502, 0.508, 0.517
    # while training falls every epoch (+3.8%: the means around the turn blur it, each step does not)
    train = [0.777, 0.637, 0.575, 0.534, 0.501, 0.473, 0.446, 0.419, 0.392, 0.366]
    val = [0.680, 0.602, 0.553, 0.531, 0.523, 0.510, 0.498, 0.502, 0.508, 0.517]
    fmt = "Epoch: {x:02} | Train Loss: {t:.3f} | Val. Loss: {v:.3f}"
    assert "overfitting" in _kinds(_train_val(train, val, fmt, every=1))
    # the same rises with one step back down on the way are not
    back = [*val[:8], 0.500, 0.517]
    assert "overfitting" not in _kinds(_train_val(train, back, fmt, every=1))


def test_a_healthy_runs_evidence_says_why_a_last_rise_is_no_turn():
    # one last evaluation far above the best is too near the end to call a turn (it read "194% above
    # its best reading, too little to call a turn"); a level, noisy validation curve that ends a little
    # above its best is a rise within its noise
    train = [2.0 * 0.85**i + 0.1 for i in range(30)]
    val = [2.2 * 0.85**i + 0.3 for i in range(29)] + [0.9]
    found = detect(parse_run(_train_val(train, val)))
    assert found[0].kind == "healthy" and "too near the end to call a turn" in found[0].evidence
    wobble = [0.31, 0.325, 0.30, 0.32, 0.315, 0.33, 0.305, 0.32]
    level = [2.2 * 0.7**i + 0.3 for i in range(14)] + [wobble[i % 8] for i in range(15)] + [0.325]
    found = detect(parse_run(_train_val(train, level)))
    assert found[0].kind == "healthy" and "a rise within its noise" in found[0].evidence


def test_a_held_out_accuracy_worse_at_each_of_a_few_evaluations_after_its_best_is_overfitting():
    # BioBERT's notebook prints a training loss and a validation accuracy, four epochs: the accuracy
    # was best at the second and worse at each after it while the loss fell. A held-out score too
    # short for a trend is asked what a short validation loss is; one still climbing is no turn
    accuracies = [0.3398, 0.3535, 0.2910, 0.2520]
    losses = [2.276, 1.714, 1.518, 1.401]

    def log(accs: list[float]) -> str:
        return "\n".join(
            f"Epoch: {25 * e}%|##| {e}/4\nTrain loss: {t}\nValidation Accuracy: {a}"
            for e, (t, a) in enumerate(zip(losses, accs, strict=True), start=1)
        )

    found = detect(parse_run(log(accuracies)))
    assert [f.kind for f in found] == ["overfitting"] and found[0].confidence == "low"
    assert "worse at each of the 2 evaluations" in found[0].evidence
    assert [f.kind for f in detect(parse_run(log([0.34, 0.35, 0.37, 0.38])))] == ["healthy"]


EPOCH_LINE = "Epoch {x} | train_loss {t:.6g} | val_loss {v:.6g}"


def test_a_short_fine_tunes_gap_opening_at_its_last_evaluations_is_overfitting():
    # a KLUE relation-extraction fine-tune, four epochs: validation 0.670, 0.540, 0.496, then 0.610
    # (+23%) while the training loss halves in the last epoch. One or two evaluations after the best are
    # too few to be sure (low confidence); the same rise while training barely moves, a rise within
    # the curve's own scatter, or one step back down on the way, are no gap opening
    train = [1.679, 0.531, 0.376, 0.180]
    found = detect(parse_run(_train_val(train, [0.670, 0.540, 0.496, 0.610], EPOCH_LINE, every=1)))
    assert [f.kind for f in found] == ["overfitting"] and found[0].confidence == "low"
    assert "the gap opens at the end" in found[0].evidence and "epoch 3" in found[0].evidence
    six = [0.837, 0.588, 0.452, 0.328, 0.239, 0.169]
    assert "overfitting" in _kinds(_train_val(six, [0.893, 0.866, 0.721, 0.691, 0.896, 0.950], EPOCH_LINE, 1))
    still = [0.40, 0.39, 0.385, 0.38]
    assert "overfitting" not in _kinds(_train_val(still, [0.670, 0.540, 0.496, 0.610], EPOCH_LINE, every=1))
    scatter = [1.59, 1.16, 1.03, 0.63, 0.78, 0.56, 0.62, 0.81, 0.48, 0.63]
    train10 = [2.39, 1.50, 1.23, 0.90, 0.57, 0.54, 0.66, 0.86, 0.47, 0.36]
    assert "overfitting" not in _kinds(_train_val(train10, scatter, EPOCH_LINE, every=1))
    back = [0.893, 0.866, 0.721, 0.691, 0.896, 0.880]
    assert "overfitting" not in _kinds(_train_val(six, back, EPOCH_LINE, every=1))


def test_a_validation_loss_rising_at_each_of_its_few_evaluations_is_overfitting_however_mildly():
    # a BERT multi-label fine-tune, five epochs: validation 0.00754, 0.00762, 0.00768, 0.00775, 0.00776
    # (+3%) while training falls at each epoch: four rises in a row are no noise. Two rises and a step
    # back ask the full `min_change`
    train = [0.000834, 0.000742, 0.000654, 0.000607, 0.000585]
    val = [0.007543, 0.007621, 0.007682, 0.007749, 0.007756]
    found = detect(parse_run(_train_val(train, val, EPOCH_LINE, every=1)))
    assert [f.kind for f in found] == ["overfitting"] and "each of the 4 evaluations" in found[0].evidence
    wobble = [0.007543, 0.007621, 0.007682, 0.007649, 0.007756]
    assert "overfitting" not in _kinds(_train_val(train, wobble, EPOCH_LINE, every=1))


def test_no_turn_where_the_last_reading_is_the_lowest_nor_on_three_evaluations():
    # validation 5.60 .. 3.85 at epoch 5, up to 4.11, then 3.77 at the last: its best is its last
    # reading, whatever its trend says; and one rise after three evaluations is too early to say
    train = [30 * 0.72**i for i in range(10)]
    val = [5.604, 4.505, 4.162, 3.968, 3.852, 3.904, 3.936, 4.091, 4.11, 3.774]
    assert "overfitting" not in _kinds(_train_val(train, val, EPOCH_LINE, every=1))
    assert "overfitting" not in _kinds(
        _train_val([0.90, 0.55, 0.42], [0.70, 0.52, 0.55], EPOCH_LINE, every=1)
    )
