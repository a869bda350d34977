"""The unstable rule on the shapes that separate instability from a run's normal noise: a blow-up the
run came back from (even in its first tenth, or slowly, over decades), an agent's single-episode
returns leaping as it learns, a training loss near zero whose single batches scatter (and a validation
loss there that is unstable), a training loss whose single batches spike or scatter beside a steady
held-out curve."""

from __future__ import annotations

import numpy as np

from assistant.runs import detect, parse_run
from tests.run_helpers import kinds as _kinds
from tests.run_helpers import train_val


def _epochs(train: list[float], val: list[float]) -> str:
    return train_val(train, val, "epoch {x} train_loss={t:.5f} val_loss={v:.5f}", every=1)


def test_a_blow_up_in_the_first_tenth_that_the_run_came_back_from_is_unstable():
    # a Chainer autoencoder: 10.9 -> 1.2 by epoch 9, then 37 at epochs 11-12 (validation 29,000), back
    # to 1.4 at epoch 14 and on down: the warm-up, where spikes are not counted, does not hide it
    rng = np.random.default_rng(21)
    train = [10.9 * np.exp(-i / 2) + 0.5 + 0.4 * np.exp(-i / 40) + rng.normal(0, 0.01) for i in range(250)]
    val = [v * 0.9 + rng.normal(0, 0.02) for v in train]
    train[10:12], val[10] = [37.7, 35.7], 29410.0
    found = detect(parse_run(_epochs(train, val)))
    assert [f.kind for f in found] == ["unstable"]
    assert "above where the run began" in found[0].evidence and "epoch" in found[0].evidence
    # the same run without the blow-up is healthy
    train[10:12], val[10] = [train[9], train[9]], val[9]
    assert _kinds(_epochs(train, val)) == ["healthy"]


def test_a_jump_that_stays_below_the_runs_start_is_not_a_lost_run():
    # a loss near zero: one logged point 100x its neighbours, far below the untrained 6.0, then back
    falling = [6.0 * np.exp(-i / 2) + 3e-4 for i in range(35)]
    falling[22] = 0.04
    assert _kinds("\n".join(f"step {10 * (i + 1)} | loss {v:.5f}" for i, v in enumerate(falling))) == [
        "healthy"
    ]


def test_an_agents_single_episode_returns_leaping_as_it_learns_are_not_unstable():
    # a DQN on CartPole: returns of 10-30 while it explores, then single episodes scatter 20-440 as
    # the 100-episode average climbs to 195 (a quarter of them fail early): dips below the trend are
    # exploration, not instability
    rng = np.random.default_rng(22)
    lines = []
    for ep in range(430):
        mean = 20 + 180 / (1 + np.exp(-(ep - 330) / 25))
        ret = max(8.0, mean * rng.lognormal(0, 0.25) if rng.random() > 0.25 else rng.uniform(9, 30))
        lines.append(f"Episode: {ep + 1:5d}   Steps: {int(ret):5d}   Reward: {ret:8.3f}")
    found = detect(parse_run("\n".join(lines)))
    assert [f.kind for f in found] == ["healthy"]
    assert "reward rose from" in found[0].evidence  # said as the reward it is, not its negative


def test_a_validation_loss_that_climbs_back_above_its_start_mid_run_is_unstable():
    # an Ultralytics run's validation loss over ten epochs: 5.9, 5.0, then 10.3 at epoch 4 and back
    # down to 2.4 (the training loss falling throughout): everything learned was lost for a while
    train = [4.72, 2.76, 2.42, 2.34, 2.31, 2.15, 2.20, 2.14, 2.09, 2.11]
    val = [5.94, 5.02, 5.94, 10.26, 8.56, 6.05, 2.93, 2.66, 2.62, 2.44]
    found = detect(parse_run(_epochs(train, val)))
    assert [f.kind for f in found] == ["unstable"] and "above where the run began" in found[0].evidence
    # the same rise inside the first fifth (a warm-up, before the curve falls) is not
    early = [5.02, 10.26, 8.56, 6.05, 5.0, 4.2, 3.5, 2.93, 2.66, 2.44]
    assert _kinds(_epochs(train, early)) == ["healthy"]


def test_single_batch_losses_that_scatter_under_a_steady_held_out_curve_are_batch_noise():
    # a tutorial printing one batch's loss and the test accuracy every 50 steps: the loss scatters by
    # ~40% around its falling trend while the accuracy climbs smoothly; the scatter is the batches'
    trend = [2.2 * np.exp(-i / 3) + 0.12 for i in range(24)]
    loss = [t * (1.5 if i % 2 else 0.6) if i > 2 else t for i, t in enumerate(trend)]
    steady = [0.95 - 0.8 * np.exp(-i / 3) for i in range(24)]
    line = "step {x} | train loss: {t:.4f} | test accuracy: {v:.4f}"
    assert _kinds(train_val(loss, steady, line)) == ["healthy"]
    # the same losses alone, with nothing held out to tell noise from instability: unstable
    alone = "\n".join(f"step {100 * (i + 1)} | train loss: {t:.4f}" for i, t in enumerate(loss))
    assert _kinds(alone) == ["unstable"]
    # ...and beside a held-out accuracy that swings as widely: unstable
    swings = [a if i < 6 else a - 0.45 * (i % 2) for i, a in enumerate(steady)]
    assert "unstable" in _kinds(train_val(loss, swings, line))


def test_single_batch_spikes_under_a_smooth_validation_curve_are_batch_noise():
    # JoeyNMT's training line every 500 steps is one batch's loss: 2.15 at one print between 0.4s,
    # while the validation loss falls smoothly; the spikes are the batches', the model goes its way
    trend = [3.0 * np.exp(-i / 4) + 0.3 for i in range(30)]
    spiky = [t * (4.0 if i in (12, 19, 25) else 1.0) for i, t in enumerate(trend)]
    smooth = [2.5 * np.exp(-i / 5) + 1.0 for i in range(30)]
    line = "step {x} | Loss: {t:.4f} | valid loss: {v:.4f}"
    assert _kinds(train_val(spiky, smooth, line)) == ["healthy"]
    alone = "\n".join(f"step {100 * (i + 1)} | Loss: {t:.4f}" for i, t in enumerate(spiky))
    assert _kinds(alone) == ["unstable"]  # with nothing held out, spikes are spikes


def test_a_validation_loss_jumping_fivefold_near_zero_is_unstable_though_single_batches_would_not_be():
    # a VAE with a property head: both losses fall from ~2000 to ~6 by decades; training stays smooth,
    # validation (a mean over the whole evaluation set) jumps to several times its level again and again
    rng = np.random.default_rng(0)
    train = [2000 * np.exp(-i / 4) + 6.5 + rng.normal(0, 0.05) for i in range(60)]
    calm = [1800 * np.exp(-i / 4) + 6 for i in range(60)]
    jumpy = [v * (10 ** abs(rng.normal(0, 0.6)) if i > 20 else 1) for i, v in enumerate(calm)]
    found = detect(parse_run(_epochs(train, jumpy)))
    assert "unstable" in [f.kind for f in found]
    assert "validation loss never settles" in next(f.evidence for f in found if f.kind == "unstable")
    assert _kinds(_epochs(train, calm)) == ["healthy"]


def test_a_blow_up_learned_back_from_slowly_is_unstable_not_diverged():
    # PaiNN on QM9: the loss falls from 4e11 to 0.02 by epoch 30, jumps to 1e12 at epoch 31, and takes
    # thirty epochs of decades to come back under 0.02: all it learned was lost for a while
    def loss(e: int) -> float:
        return (
            4e11 * 10 ** (-0.45 * e)
            if e < 30
            else 1e12 * 10 ** (-0.5 * (e - 30))
            if e < 58
            else 0.02 * 0.97 ** (e - 57)
        )

    text = "\n".join(f"Epoch [{e + 1}/100], Train Loss: {loss(e):.4f}" for e in range(100))
    assert _kinds(text) == ["unstable"]
    # the same jump never learned back from is a blow-up
    stuck = "\n".join(
        f"Epoch [{e + 1}/100], Train Loss: {loss(e) if e < 30 else 1e12:.4f}" for e in range(100)
    )
    assert "diverged" in _kinds(stuck)


def test_a_held_out_loss_that_leaps_while_the_rate_is_high_and_then_settles_is_not_unstable():
    # an active-learning round retrained for 100 epochs: its test loss leaps to 3.5 and back over the
    # first 45 epochs (a high learning rate), then stays within 0.74-0.80 to the end
    rng = np.random.default_rng(8)
    train = [2.0 * np.exp(-e / 12) + 0.002 for e in range(100)]
    val = [0.76 + 1.2 * np.exp(-e / 15) + rng.normal(0, 0.01) for e in range(100)]
    leaps = (3.4, 3.5, 2.6, 2.9, 2.8, 2.8, 2.4, 2.5, 2.2, 2.6, 1.8, 2.1)
    for e, v in zip((4, 6, 9, 13, 17, 20, 24, 28, 33, 37, 41, 44), leaps, strict=True):
        val[e] = v
    assert _kinds(_epochs(train, val)) == ["healthy"]
    # the same leaps going on to the end are unstable
    for e, v in zip((52, 58, 64, 71, 78, 86, 93), (3.1, 4.2, 2.9, 3.6, 2.6, 3.3, 4.0), strict=True):
        val[e] = v
    assert "unstable" in _kinds(_epochs(train, val))
