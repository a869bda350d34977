"""A plateau is said only where the last stretch of the curve judged shows it through its noise: a
window too noisy to tell a 10% gain from none shows no stall. The allowance is the judged curve's
alone: a held-out curve flat within its noise says nothing of whether training still improves."""

from __future__ import annotations

import numpy as np

from tests.run_helpers import kinds


def _levelled(sd: float, seed: int) -> str:
    # a loss that fell 25% in its first epochs and then sat at 0.15, printed with `sd` of noise
    rng = np.random.default_rng(seed)
    losses = [0.15 + 0.05 * np.exp(-i / 2) + rng.normal(0, sd) for i in range(50)]
    return "\n".join(f"Epoch {e}/50 - loss: {v:.4f}" for e, v in enumerate(losses, 1))


def test_a_stall_is_said_where_the_window_shows_it_and_not_where_noise_hides_it():
    for seed in (1, 3, 5):
        assert kinds(_levelled(0.002, seed)) == ["plateau"]  # printed smoothly: a stall
        # scattering 20% by epoch (a diffusion model's noise-prediction loss): its last third's best
        # may be gaining 10% or nothing, too noisy to call stuck
        assert "plateau" not in kinds(_levelled(0.03, seed))


def test_a_held_out_curve_flat_within_its_noise_does_not_excuse_a_smooth_training_stall():
    # training sits at 0.80 for its last 25 epochs, smoothly; validation scatters 10% around 0.85
    # and never improves: before, its noise was read as "still improving" and the stall went unsaid
    for seed in (7, 13, 19):
        rng = np.random.default_rng(seed)
        train = [0.8 + 0.2 * np.exp(-i / 3) + rng.normal(0, 0.002) for i in range(40)]
        val = [0.85 + rng.normal(0, 0.09) for _ in range(40)]
        pairs = enumerate(zip(train, val, strict=True), 1)
        text = "\n".join(f"Epoch {e}/40 - loss: {t:.4f} - val_loss: {v:.4f}" for e, (t, v) in pairs)
        assert "plateau" in kinds(text)
