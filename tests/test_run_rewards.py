"""An agent's reward as logs print it: named before its number with no separator, printed a couple of
times by a tutorial's demo beside the run's own, and on no scale its values could reveal."""

from __future__ import annotations

import numpy as np

from assistant.runs import detect, parse_run
from assistant.runs.curves import run_curves
from tests.run_helpers import falling


def test_an_episodes_reward_written_before_its_number_is_read():
    # a DQN loop's Python logging: `Episode 3 reward -16.000 eps 0.985`, every episode for 500; the log
    # was refused as holding no metric. This agent never learns: the same rewards at the end
    rewards = [-18.0, -16.0, -20.0, -17.0, -19.0, -18.0, -16.0, -17.0]
    lines = [
        f"[INFO] 2025-11-03 14:55:27 Episode {i} reward {rewards[i % 8]:.3f} eps {max(0.05, 1 - i / 200):.3f}"
        for i in range(200)
    ]
    run = parse_run("\n".join(lines))
    assert len(run.table) == 200 and run.sources["train_reward"] == "reward"
    assert [f.kind for f in detect(run)] == ["underfitting"]


def test_a_reward_printed_twice_by_a_demo_is_not_the_runs_curve_beside_one_logged_throughout():
    # a TF-Agents tutorial knitted with its outputs: two `episode_return` readings of a random policy,
    # then `step = N: Average Return = R` at every evaluation; the run was judged on the two
    demo = ["episode_return: 0.0", "episode_return: 1.2"]
    returns = [24 - 22 * v for v in falling(40, 1.0, 0.0)]
    evals = [f"step = {1000 * (i + 1)}: Average Return = {r}" for i, r in enumerate(returns)]
    tr, _ = run_curves(parse_run("\n".join(demo + evals)))
    assert tr is not None and len(tr) == 40 and tr.name.endswith("return") and "episode" not in tr.name


def test_a_return_is_judged_on_its_negative_whatever_its_values_fall_within():
    # returns between 0 and 25 were taken for a percentage and judged as `100 - return`
    returns = [24 - 22 * v for v in falling(40, 1.0, 0.0)]
    run = parse_run(
        "\n".join(f"step = {1000 * (i + 1)}: Average Return = {r}" for i, r in enumerate(returns))
    )
    tr, _ = run_curves(run)
    assert tr.negated and tr.what == "negative return"


def test_a_return_that_rose_and_holds_is_learned_and_one_that_never_rose_is_underfit():
    # PPO on a Showdown opponent: the mean return climbs from 22 to 38 in the first third of 8000
    # episodes and holds; how far 38 is from done is the game's (its solved score), not the curve's
    rising = [38 - 16 * v for v in falling(60, 1.0, 0.0)]
    lines = [
        f"Episode {100 * (i + 1)}\tAverage Reward: {r + (-1) ** i * 0.8:.2f}" for i, r in enumerate(rising)
    ]
    assert [f.kind for f in detect(parse_run("\n".join(lines)))] == ["healthy"]
    flat = [f"Episode {100 * (i + 1)}\tAverage Reward: {-17.8 + (-1) ** i * 0.4:.2f}" for i in range(60)]
    assert [f.kind for f in detect(parse_run("\n".join(flat)))] == ["underfitting"]


def test_an_abbreviated_episode_and_reward_are_read_and_a_restarted_counter_keeps_the_last_run():
    # the GDRL book's notebooks: `ep 0025, step 000338, last ep rew 011, last 100 ep mean rew 13.00`,
    # refused as holding no metric; its policy-gradient cells print `ep 100, tmstps 02724, ...,
    # 25/100 ep av rew 036.28/027.24` for one seed after another, each counting its episodes from 100
    means = [12 + 187 * v for v in falling(14, 0.0, 1.0)]
    dqn = [
        f"ep {25 * i:04d}, step {400 * i + 19:06d}, last ep rew {int(m):03d}, last 100 ep mean rew {m:.2f}"
        for i, m in enumerate(means)
    ]
    run = parse_run("\n".join(dqn))
    assert len(run.table) == 14 and "rew" in run.sources["train_ep_rew"]
    assert [f.kind for f in detect(run)] == ["healthy"]
    seeds = [
        f"ep {100 * (i + 1)}, tmstps {900 * (i + 1):05d}, explr rat 1.00, buf sze 00001, "
        f"25/100 ep av rew {20 + 30 * i + s:06.2f}/{18 + 30 * i + s:06.2f}, 100 ep av sec 0.04"
        for s in (0, 5, 9)
        for i in range(7)
    ]
    run = parse_run("\n".join(seeds))
    assert len(run.table) == 7 and any("3 runs" in n for n in run.notes)


def test_one_bad_episode_or_a_wide_scatter_late_in_a_learned_return_is_no_blow_up():
    # PPO on a pendulum, a return per episode from -1,200 to about -12. Its zero is anywhere: an
    # episode of -157 after -0.8 was called diverged ("jumped from 0.8 to 157"), and a return near -20
    # scattering by 12 was called unstable ("scatters by about 41%" of its level; 2% of what it learned)
    rng = np.random.default_rng(3)
    learning = [-1200 * (10 / 1200) ** (i / 20) for i in range(20)]
    rewards = learning + [-10 - 3 * rng.random() for _ in range(40)]
    rewards[40], rewards[41] = -0.8, -157.0
    descent = [-1200 * (20 / 1200) ** (i / 20) for i in range(20)]
    scattering = descent + [-20 + 12 * rng.normal() for _ in range(60)]
    for returns in (rewards, scattering):
        rows = [f"{i + 1},{150 * (i + 1)},{r:.3f}" for i, r in enumerate(returns)]
        run = parse_run("\n".join(["episode,timestep,raw_reward", *rows]))
        assert run.sources["train_raw_reward"] == "raw_reward"
        found = detect(run)
        assert [f.kind for f in found] == ["healthy"]
        assert "a tenth" not in found[0].evidence  # no share of a reward's negative is convergence


def test_ep_is_an_episode_only_beside_a_reward_and_a_return_swinging_between_two_levels_stays_unstable():
    # `ep 3, loss: 0.41, score: 0.56` is a vision log's epoch: its score is no agent's return, and a loss
    # that climbs back up from epoch 9 diverged (it was read as an episode's score, judged healthy)
    losses = [1 / e for e in range(1, 10)] + [0.6, 1.0, 1.5, 2.0, 2.6, 3.1]
    lines = [f"ep {e}, loss: {t:.3f}, score: {0.5 + e / 50:.3f}" for e, t in enumerate(losses, 1)]
    assert [f.kind for f in detect(parse_run("\n".join(lines)))] == ["diverged"]
    # a return that rose to its cap of 500 and then falls to 30-80 at every other evaluation or so, to
    # the end: its trend follows the swings, so how far it moved is measured between medians
    rng = np.random.default_rng(4)
    returns = [min(500.0, 20 + 24 * i) for i in range(20)]
    returns += [500.0 if rng.random() < 0.5 else 30 + 50 * rng.random() for _ in range(60)]
    lines = [f"Episode {i}\tAverage Reward: {r:.2f}" for i, r in enumerate(returns, 1)]
    found = detect(parse_run("\n".join(lines)))
    assert [f.kind for f in found] == ["unstable"]
    assert "reward never settles" in found[0].evidence and "negative" not in found[0].evidence  # as logged
