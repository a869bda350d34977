"""The detectors' rules on the shapes that separate a finding from noise and from one another: a
resumed run, spikes and jumps the loss comes back from, a GAN's two losses, blow-ups in one run of
several, a loss printed to few digits (underfitting's own rules are in test_run_underfitting.py)."""

from __future__ import annotations

import numpy as np

from assistant.runs import detect, parse_run
from tests.run_helpers import kinds as _kinds
from tests.run_helpers import steps_log
from tests.run_helpers import train_val as _train_val


def test_both_curves_climbing_together_is_diverged_though_the_rise_is_small():
    # down to 3.45 by step 2000, then training and validation both drift 12% up and stay there
    rng = np.random.default_rng(6)
    shape = [4.8 - 1.35 * min(i, 20) / 20 + (0.42 * min(i - 20, 15) / 15 if i > 20 else 0) for i in range(60)]
    train = [v + rng.normal(0, 0.01) for v in shape]
    val = [v + 0.03 + rng.normal(0, 0.01) for v in shape]
    found = detect(parse_run(_train_val(train, val)))
    assert [f.kind for f in found] == ["diverged"] and "validation loss with it" in found[0].evidence
    # the same rise in training alone is not (it takes 50% without a validation curve that agrees)
    alone = detect(parse_run(steps_log(train)))
    assert "diverged" not in [f.kind for f in alone]
    assert "improved by only 0.0%" not in " ".join(f.evidence for f in alone)  # it got worse: said so


def test_a_resumed_run_is_known_by_its_epochs_and_a_counter_from_one_is_not_late():
    rng = np.random.default_rng(7)
    flat = [0.37 + rng.normal(0, 0.004) for _ in range(40)]
    resumed = "\n".join(
        f"epoch {100 + i // 4} | step {10 * (i % 4) + 9} | loss {v:.4f}" for i, v in enumerate(flat)
    )
    assert "underfitting" not in _kinds(resumed)  # epochs 100-109: the learning came before
    first = "\n".join(f"epoch 1 | step {i + 1} | loss {v:.4f}" for i, v in enumerate(flat))
    assert "underfitting" in _kinds(first)  # epoch 1 throughout: the run's start


def test_a_short_curve_that_only_falls_steeply_is_not_scattering():
    # six evaluations 15.4 -> 0.30 (a LoRA run's first epochs): a short curve's noise estimate is large
    # here, but a curve that only falls does not go up and down
    evals = [15.4, 2.38, 0.347, 0.319, 0.308, 0.304]
    train = [285.0, 161.0, 9.9, 5.39, 5.18, 5.02]
    kinds = _kinds(_train_val(train, evals))
    assert "unstable" not in kinds
    rng = np.random.default_rng(8)
    scattered = [0.5 * (1 + 0.6 * (-1) ** i * rng.uniform(0.5, 1)) for i in range(30)]  # never settles
    assert "unstable" in _kinds(_train_val([1.0 / (i + 1) for i in range(30)], scattered))


def test_a_jump_the_loss_comes_back_from_is_a_spike_not_a_blow_up():
    falling = [6.0 * np.exp(-i / 2) + 3e-4 for i in range(35)]
    spiked = list(falling)
    spiked[22] = 0.04  # 100x its neighbours for one logged point, then back
    assert "diverged" not in _kinds(steps_log(spiked))
    stays = falling[:22] + [0.04 + 0.001 * i for i in range(13)]  # the same jump, and it stays up
    assert _kinds(steps_log(stays))[0] == "diverged"


def _gan_log(d_end: float, g_end: float) -> str:
    lines = []
    for i in range(300):
        f = i / 299
        d = d_end + (0.3 - d_end) * np.exp(-8 * f)  # a collapse (or not) early in the run
        g = 2.0 + (g_end - 2.0) * f
        lines.append(
            f"(epoch: {i // 3 + 1}, iters: {100 * (i % 3 + 1)}, time: 0.2, data: 0.01) "
            f"G_GAN: {g:.4f} G_L1: {20 - 3 * f:.3f} D_real: {d * 1.1:.4f} D_fake: {d * 0.9:.4f} "
        )
    return "\n".join(lines)


def test_a_gan_whose_discriminator_wins_is_diverged_and_a_balanced_one_is_not_judged():
    found = detect(parse_run(_gan_log(d_end=0.003, g_end=9.0)))
    assert found[0].kind == "diverged" and "discriminator wins" in found[0].evidence
    balanced = detect(parse_run(_gan_log(d_end=0.2, g_end=2.5)))  # D steady, G a little up
    assert [f.kind for f in balanced] == ["healthy"] and "no trend is judged" in balanced[0].evidence


def test_without_held_out_data_a_climbing_training_score_says_the_model_learns():
    # a multi-label BCE loss dominated by its base rates: 0.166 -> 0.157 while training AUROC 0.54 -> 0.85
    rng = np.random.default_rng(13)
    loss = [0.157 + 0.009 * np.exp(-i / 20) + rng.normal(0, 0.002) for i in range(60)]
    auroc = [0.85 - 0.31 * np.exp(-i / 12) + rng.normal(0, 0.004) for i in range(60)]
    with_score = "\n".join(
        f"step {10 * (i + 1)} | loss {v:.4f} | auroc {a:.4f}"
        for i, (v, a) in enumerate(zip(loss, auroc, strict=True))
    )
    assert _kinds(with_score) == ["healthy"]
    assert "underfitting" in _kinds(steps_log(loss))  # the loss alone says it barely learns


def test_a_training_loss_that_rises_while_validation_ends_at_its_best_is_not_diverged():
    # a curriculum: each step's targets are harder, so training loss rises 0.0003 -> 0.03 while the
    # held-out loss keeps falling to its best; the same rise with validation turning up is a blow-up
    train = [0.0003 * 1.08**i for i in range(60)]
    val = [0.0137 + 0.0155 * np.exp(-i / 15) for i in range(60)]
    assert "diverged" not in _kinds(_train_val(train, val))
    worse = [0.0292 - 0.01 * min(i, 20) / 20 + 0.0004 * max(0, i - 20) for i in range(60)]
    assert "diverged" in _kinds(_train_val(train, worse))


def test_a_nan_in_an_earlier_run_of_the_log_is_noted_and_the_last_run_judged_alone():
    # Keras CSVLogger rows of two runs: the first blew up to NaN at once, the second (read) trains. The
    # blow-up is said in a note (it was dropped silently once); the findings are the last run's, as the
    # log's readers judge a log of restarts (a diverged finding about an earlier run disagreed with
    # them on every log of restarts that trained: four notebooks and appended consoles)
    first = ["epoch,loss,val_loss", "0,nan,nan", "1,nan,nan", "2,nan,nan"]
    second = [f"{i},{2.0 * 0.9**i:.4f},{2.2 * 0.92**i:.4f}" for i in range(15)]
    for text in (first + second, first + second + second):
        run = parse_run("\n".join(text))
        assert [f.kind for f in detect(run)] == ["healthy"] and any("NaN" in n for n in run.notes)
    assert not any("NaN" in n for n in parse_run("\n".join(["epoch,loss,val_loss", *second])).notes)


def test_a_running_average_warming_up_from_zero_is_not_a_climb():
    # `Average Loss` of an SSD run is an average started at 0: 0.02, 0.45, 0.83 … up to ~6, then it
    # falls with the loss; read from its start, it "climbed from its best"
    rng = np.random.default_rng(15)
    warm = [6.0 * (1 - 0.8**i) for i in range(1, 12)]
    loss = [0.02, *warm, *(6.0 * 0.97**i + 3 + rng.normal(0, 0.02) for i in range(60))]
    assert _kinds(steps_log(loss)) == ["healthy"]
    exploded = [0.69, 41.0, 45.6, *(1.4 + rng.normal(0, 0.003) for _ in range(40))]  # 0.69 -> 41 at once
    assert "diverged" in _kinds(steps_log(exploded))


def test_a_nan_in_any_loss_is_a_blow_up_and_a_near_zero_loss_scattering_by_decades_is_not():
    rows = ["step,epoch,train_disc_loss,train_gen_loss", "0,0,1.6e24,nan"] + [
        f"{i},0,nan,nan" for i in range(1, 30)
    ]
    found = detect(parse_run("\n".join(rows)))
    assert [f.kind for f in found] == ["diverged"] and "train_disc_loss" in found[0].evidence
    rng = np.random.default_rng(3)
    # a contrastive loss at ~1e-4 whose single batches reach 1e-2: still a hundredth of its start
    losses = [0.5 * 0.8**i for i in range(30)] + [10 ** rng.uniform(-4.5, -2) for _ in range(120)]
    assert "diverged" not in _kinds(steps_log(losses))
    # ...nor one of its batches at 0.06 (above a tenth of the start), back within its own scatter next
    near_zero = [0.5 * 0.6**i for i in range(12)] + [10 ** rng.uniform(-4, -3) for _ in range(54)]
    near_zero[26:33] = [0.0002, 0.0004, 0.0634, 0.0012, 0.0017, 0.0009, 0.0013]
    assert "diverged" not in _kinds(steps_log(near_zero))


def test_one_nan_evaluation_the_run_recovers_from_is_no_blow_up_and_a_frozen_accuracy_is_underfitting():
    lines = []
    for e in range(1, 41):
        val = "nan" if e == 11 else f"{2.0 / e**0.5 + 0.01 * max(0, e - 20):.4f}"
        lines.append(f"train: epoch {e:03d}, loss: {2.2 / e**0.6:.4f}")
        lines.append(f"eval: epoch: {e:03d}, acc1: {40 + e:.3f}%, test_loss: {val}")
    assert "diverged" not in _kinds("\n".join(lines))  # it logged finite losses again, and learned on
    fall = [1 - 0.8**i for i in range(31)]
    rows = ["training_loss,training_acc,val_loss,val_acc"] + [
        f"{0.64 - 0.07 * f:.4f},{0.41 + 0.05 * f:.4f},{0.52 - 0.07 * f:.4f},0.72414" for f in fall
    ]
    found = detect(parse_run("\n".join(rows)))
    assert "underfitting" in [f.kind for f in found] and any(
        "every one of its 31" in f.evidence for f in found
    )
    # the same frozen accuracy beside a validation loss that falls by two thirds is a broken metric
    rows = ["training_loss,val_loss,val_acc"] + [
        f"{0.84 * 0.8**i + 0.15:.4f},{0.66 * 0.8**i + 0.18:.4f},0.0135" for i in range(12)
    ]
    assert "underfitting" not in _kinds("\n".join(rows))


def test_a_gans_losses_name_no_main_one_and_an_mlperf_word_error_rate_falls():
    rng = np.random.default_rng(8)
    gan = "\n".join(
        f"(epoch: {1 + i // 20}, iters: {100 * (i % 20)}, time: 2.7) G_GAN: {5 + rng.normal(0, 3):.3f} "
        f"G_L1: {200 + 800 * 0.97**i:.3f} D_real+fake: {-30 * 0.99**i + rng.normal(0, 8):.3f}"
        for i in range(200)
    )
    assert _kinds(gan) == ["healthy"]  # the critic's noisy WGAN loss is not judged as the run's
    head = ':::MLLOG {"key": "submission_benchmark", "value": "rnnt", "metadata": {}}'
    wer = [1.0, 1.0, 0.98, 0.74, 0.4, 0.25] + [0.19 * 0.97**i for i in range(30)]
    evals = "\n".join(
        f':::MLLOG {{"key": "eval_accuracy", "value": {w:.4f}, "metadata": {{"epoch_num": {i + 1}}}}}'
        for i, w in enumerate(wer)
    )
    run = parse_run(head + "\n" + evals)
    assert list(run.metrics) == ["val_wer"] and [f.kind for f in detect(run)] == ["healthy"]


def test_ten_epochs_falling_steeply_do_not_scatter_as_an_unsettled_curve():
    # a short curve's noise comes from second differences, which its steep fall inflates
    loss = [0.3986, 0.2622, 0.1323, 0.1114, 0.0467, 0.0747, 0.0632, 0.0468, 0.0551, 0.0933]
    val = [0.2676, 0.1954, 0.1561, 0.1277, 0.1106, 0.0971, 0.0938, 0.0982, 0.0807, 0.0767]
    rows = ["epoch,train_loss,val_loss"] + [
        f"{e + 1},{t},{v}" for e, (t, v) in enumerate(zip(loss, val, strict=True))
    ]
    assert _kinds("\n".join(rows)) == ["healthy"]


def test_a_loss_that_spiked_and_came_back_before_climbing_for_good_is_unstable_too():
    # an alpaca-lora run: ~1.0, a burst to 7 that comes back, then a climb that stays up
    base = [2.2 * 0.6**i + 0.95 for i in range(20)] + [0.95] * 10
    burst = [*base[:18], 7.2, 6.1, 1.7, *base[21:]]
    climb = [1.0 + 0.15 * i for i in range(30)]
    assert _kinds(steps_log(burst + climb)) == ["diverged", "unstable"]
    assert _kinds(steps_log(base + climb)) == ["diverged"]


def test_a_short_loss_that_jumps_and_stays_up_is_diverged_not_a_plateau():
    # quoted Megatron lines: 3.3, 3.4, 3.7, a jump to 7.3, 4.1, 7.6, then 7.0; its two jumps inflate a
    # short curve's noise, yet every reading of its tail stands far above its best: it climbed
    text = steps_log([3.32, 3.42, 3.68, 7.27, 4.13, 7.60, 7.02], first=8738, every=1)
    found = detect(parse_run(text))
    assert [f.kind for f in found] == ["diverged"] and "+117%" in found[0].evidence


def test_a_loss_that_spiked_and_came_back_before_going_nan_is_unstable_too():
    # Shampoo on Criteo: 0.41 -> 0.14, spikes to 0.38, 0.76, 0.47 that come back, then NaN
    base = [0.41, 0.41, 0.40, 0.36, 0.31, 0.24, 0.18, 0.15] + [0.145] * 40
    spiky = list(base)
    for at, v in ((19, 0.38), (23, 0.76), (34, 0.47)):
        spiky[at] = v
    tail = "\nstep 490 | loss nan | lr 0.001"
    assert _kinds(steps_log(spiky) + tail) == ["diverged", "unstable"]
    assert _kinds(steps_log(base) + tail) == ["diverged"]


def test_single_batches_scattering_by_decades_near_zero_are_not_unstable():
    # a contrastive loss 0.5 -> 1e-3 whose single batches scatter by decades (judged on a log scale):
    # on the plot of the run that is nothing; the same scatter around a level of 0.2 is unstable
    rng = np.random.default_rng(9)
    near = [max(0.5 * np.exp(-i / 4), 1e-3) * 10 ** rng.normal(0, 0.45) for i in range(66)]
    assert _kinds(steps_log(near)) == ["healthy"]
    far = [max(0.5 * np.exp(-i / 4), 0.2) * 10 ** rng.normal(0, 0.45) for i in range(66)]
    assert _kinds(steps_log(far)) == ["unstable"]


def test_a_loss_at_the_last_printed_digit_ticking_up_one_unit_is_not_diverged():
    """mmtracking's ReID head prints its loss to four decimals: 0.0006, then 0.0001 for a while, then
    0.0002 to the end. A rise of one unit of the last digit is rounding, not a climb (it was called
    diverged, +100%); the same tail climbing to 0.0009, nine units, still is."""

    def log(tail: list[float]) -> str:
        values = [0.0006, 0.0003] + [0.0001] * 20 + tail
        return "\n".join(f"Epoch [1][{50 * (i + 1)}/2000] loss: {v:.4f}" for i, v in enumerate(values))

    assert "diverged" not in _kinds(log([0.0002] * 18))
    assert "diverged" in _kinds(log([0.0001 + 0.0008 * k / 17 for k in range(18)]))
    # a loss printed in whole numbers, 1 then 3 for good: two units, more than rounding can make
    whole = [8, 5] + [1] * 20 + [3] * 18
    assert "diverged" in _kinds(
        "\n".join(f"Epoch [1][{50 * (i + 1)}/2000] loss: {v}" for i, v in enumerate(whole))
    )


def test_a_spike_the_loss_comes_back_from_to_its_last_printed_digit_is_no_divergence():
    # a loss printed to three decimals sits at 0.002, spikes to 0.169 and is back at 0.003 and 0.002:
    # it never went *below* its best before (it cannot, at that digit), and was called diverged
    loss = (
        [0.48 * 0.6**e for e in range(12)] + [0.002] * 14 + [0.169, 0.007, 0.006, 0.005, 0.004] + [0.003] * 9
    )
    text = "\n".join(f"Epoch {e + 1}: loss {v:.3f}" for e, v in enumerate(loss))
    assert "diverged" not in _kinds(text)
    # the same spike that stays up is still a blow-up
    stays = loss[:27] + [0.169, 0.17, 0.18, 0.19, 0.2] + [0.2] * 9
    assert "diverged" in _kinds("\n".join(f"Epoch {e + 1}: loss {v:.3f}" for e, v in enumerate(stays)))


def test_a_loss_the_log_says_it_changed_is_read_from_the_change_not_called_diverged():
    # MACE's second stage weighs its loss terms anew (`Changing loss based on SWA`): 0.002 becomes 7.8,
    # then falls; the jump is the objective changing, not the run blowing up
    first = [0.004 * 0.99**e + 0.0015 for e in range(60)]
    second = [7.8 * 0.995**e for e in range(60)]
    lines = [f"INFO: Epoch {e}: loss={v:.4f}, RMSE_E_per_atom=6.6 meV" for e, v in enumerate(first)]
    lines.append("INFO: Changing loss based on SWA")
    lines += [f"INFO: Epoch {60 + e}: loss={v:.4f}, RMSE_E_per_atom=6.6 meV" for e, v in enumerate(second)]
    run = parse_run("\n".join(lines))
    assert any("loss changed at epoch" in n for n in run.notes)
    assert "diverged" not in [f.kind for f in detect(run)]
    # the same jump with no word of it is a blow-up, and so it is beside mixed precision's loss scale
    assert "diverged" in _kinds("\n".join(ln for ln in lines if "Changing" not in ln))
    scaled = [ln if "Changing" not in ln else "INFO: loss scale changed to 32768" for ln in lines]
    assert "diverged" in _kinds("\n".join(scaled))
