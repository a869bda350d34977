"""Tables as training tools write them besides plain CSV: space-aligned (RL progress files, fastai),
tab-separated with a trailing tab, semicolons with decimal commas, Stable-Baselines3 Monitor files,
and the held-out loss a table names for its split or by its form."""

from __future__ import annotations

import numpy as np

from assistant.runs import detect, parse_run
from assistant.runs.curves import judged_metric


def test_space_aligned_tables_an_rl_progress_table_and_fastais_are_read():
    header = "Iteration    Wall_Time    Train_Return    Test_Return    Critic_Loss    Actor_Loss"
    rows = [
        f"{50 * i:<12d} {0.1 * i:<12.4f} {200 + 60 * i + 5 * (-1) ** i:<15.3f} {300 + 80 * i:<14.3f} "
        f"{0.003 + 0.0001 * i:<14.6f} {2.5 - 0.01 * i:.4f}"
        for i in range(30)
    ]
    run = parse_run("\n".join([header, *rows]))
    assert run.sources["train_return"] == "Train_Return" and run.sources["val_return"] == "Test_Return"
    assert judged_metric(run) == "return"  # the returns are the learning curve, not the losses
    assert [f.kind for f in detect(run)] == ["healthy"]
    # fastai's console table ends each row with its `time` (`00:10`): no number, and no reason to
    # read the table as prose
    fastai = ["epoch     train_loss  valid_loss  accuracy  time    "] + [
        f"{e:<9d} {2.0 * 0.8**e:.6f}    {2.1 * 0.8**e + 0.1:.6f}    {0.5 + e / 40:.6f}  00:{10 + e:02d}     "
        for e in range(15)
    ]
    run = parse_run("\n".join(fastai))
    assert {"train_loss", "val_loss"} <= set(run.metrics) and run.table["epoch"].nunique() == 15


def test_a_semicolon_separated_csv_with_decimal_commas_is_read():
    rows = ["epoch;loss;val_loss"] + [
        f"{e};{2.0 * 0.8**e:.4f};{2.1 * 0.8**e + 0.1:.4f}".replace(".", ",") for e in range(12)
    ]
    run = parse_run("\n".join(rows))
    assert run.table["train_loss"].iloc[0] == 2.0 and run.table["val_loss"].notna().all()


def test_a_tab_separated_log_whose_lines_end_with_a_tab_is_a_table():
    # bearpaw/pytorch-classification's Logger: every line, header included, ends with a tab
    rows = ["Learning Rate\tTrain Loss\tValid Loss\tTrain Acc.\tValid Acc.\t"]
    rows += [f"0.1\t{2 / (e + 1):.4f}\t{2.2 / (e + 1):.4f}\t{50 + e:.2f}\t{45 + e:.2f}\t" for e in range(20)]
    run = parse_run("\n".join(rows))
    assert run.sources["train_loss"] == "Train Loss" and run.sources["val_loss"] == "Valid Loss"


def test_a_stable_baselines_monitor_csv_reads_episode_rewards_on_the_steps_taken():
    # `#{json}` header, then one row per episode: r (reward), l (length), t (seconds)
    rng = np.random.default_rng(21)
    rewards = [20 + 2 * i + rng.normal(0, 5) for i in range(200)]
    rows = [f"{r:.2f},{20 + 2 * i},{i * 0.5:.1f}" for i, r in enumerate(rewards)]
    text = '#{"t_start": 1652871292.64, "env_id": "CartPole-v1"}\nr,l,t\n' + "\n".join(rows)
    run = parse_run(text)
    assert run.fmt == "monitor-csv" and list(run.metrics) == ["train_episode_reward"]
    assert run.table["step"].iloc[-1] == sum(20 + 2 * i for i in range(200))
    assert [f.kind for f in detect(run)] == ["healthy"]
    # the same policy collapsing back to where it began for the last third is diverged
    collapsed = rewards[:130] + [20 + rng.normal(0, 5) for _ in range(70)]
    rows = [f"{r:.2f},100,{i * 0.5:.1f}" for i, r in enumerate(collapsed)]
    found = detect(parse_run('#{"t_start": 1.0, "env_id": "Ant-v3"}\nr,l,t\n' + "\n".join(rows)))
    assert [f.kind for f in found] == ["diverged"] and "fell from its best" in found[0].evidence
    # OpenAI baselines' older monitor.csv writes `# {json}` with a space, and CRLF line ends
    spaced = '# {"t_start": 1551811844.79, "env_id": "Walker2d-v2"} \nr,l,t\r\n' + "\r\n".join(rows)
    assert parse_run(spaced).fmt == "monitor-csv"


def test_a_lone_held_out_loss_named_for_its_split_or_by_its_form_is_the_held_out_loss():
    # `val_night_loss` (a named split) and `val_mse` (a regression's loss) beside a training loss
    for held in ("val_night_loss", "val_mse"):
        rows = [f"epoch,train_loss,{held},val_acc"] + [
            f"{e},{2.0 * 0.8**e:.4f},{2.1 * 0.8**e + 0.1:.4f},{0.5 + e / 40:.3f}" for e in range(12)
        ]
        run = parse_run("\n".join(rows))
        assert run.sources["val_loss"] == held and any(held in n for n in run.notes)
    # two of them (a detector's parts) are summed, never one picked
    parts = ["epoch,train_loss,val_box_loss,val_cls_loss"] + [
        f"{e},{1 / (e + 1)},{0.5 / (e + 1)},{0.4 / (e + 1)}" for e in range(12)
    ]
    assert " + " in parse_run("\n".join(parts)).sources["val_loss"]


def test_a_sweeps_columns_named_for_their_learning_rates_are_readings_not_rates():
    # char-rnn's sweep: `learning_rate_0.005,learning_rate_0.01,…`, each column one run's loss
    rng = np.random.default_rng(3)
    rates = ["0.005", "0.01", "0.05", "0.1"]
    rows = [",".join(f"learning_rate_{r}" for r in rates)] + [
        ",".join(f"{4.6 * 0.99**i + rng.normal(0, 0.05):.4f}" for _ in rates) for i in range(200)
    ]
    run = parse_run("\n".join(rows))
    assert "lr" not in run.metrics and len(run.metrics) == 4 and judged_metric(run) is None
    assert [f.kind for f in detect(run)] == ["healthy"]  # drawn: nothing says which run's reading is what
    monitor = "step,lr-Adam-1,loss\n" + "\n".join(f"{i},0.001,{1 / (i + 1)}" for i in range(9))
    assert parse_run(monitor).metrics == ["train_loss", "lr"]  # a rate's own column is still the rate
