"""Tables as training tools write them besides plain CSV: space-aligned (RL progress files, fastai),
tab-separated with a trailing tab, semicolons with decimal commas, Stable-Baselines3 Monitor files,
the held-out loss a table names for its split or by its form, and a column saying each row's stage."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.runs import detect, parse_run
from assistant.runs.curves import judged_metric
from assistant.runs.parse import Limits, RunParseError
from tests.run_helpers import falling


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
    # a signed error (a delineation's mean error, -10 to +9 ms) is best at zero: no loss
    signed = ["epoch,train_loss,val_mean_error"] + [
        f"{e},{1 / (e + 1)},{(-1) ** e * 5 / (e + 1)}" for e in range(12)
    ]
    assert "val_loss" not in parse_run("\n".join(signed)).metrics


def test_a_column_naming_each_rows_stage_stages_its_readings():
    # torch_ecg's CSV: train rows (the loss per step, then the epoch's scores) and val rows (scores),
    # told apart only by `part`; the challenge's costs are logged for both beside a whole training loss
    rows = ["epoch,loss,lr,part,step,auroc,murmur_cost,outcome_cost"]
    for e in range(12):
        auroc = 0.6 + 0.02 * min(e, 5) - 0.01 * max(e - 5, 0)
        rows.append(f"{e},{0.7 * 0.8**e:.4f},0.001,train,{10 * e},,,")
        rows.append(f"{e},,,train,{10 * e},{0.6 + 0.03 * e:.3f},{900 - 50 * e},{400 - 20 * e}")
        rows.append(f"{e},,,val,{10 * e},{auroc:.3f},{900 - 30 * e},{400 - 10 * e}")
    run = parse_run("\n".join(rows))
    assert {"train_auroc", "val_auroc", "train_murmur_cost", "val_murmur_cost"} <= set(run.metrics)
    assert "val_loss" not in run.metrics  # the costs are readings beside the loss, not parts of one
    # held-out parts whose training twins add up to the training loss are its parts, and are summed
    parts = ["epoch,train_loss,train_loss_cls,train_loss_box,val_loss_cls,val_loss_box"]
    for e in range(15):
        cls, box = 1 / (e + 1), 0.5 / (e + 1)
        parts.append(f"{e},{cls + box},{cls},{box},{0.5 + abs(e - 6) * 0.05},{0.3 + abs(e - 6) * 0.03}")
    summed = parse_run("\n".join(parts))
    assert " + " in summed.sources["val_loss"] and "overfitting" in [f.kind for f in detect(summed)]
    # a learning rate logged on every row stays the learning rate; a `mode` of other words says nothing
    rows = ["epoch,mode,split,loss,lr"]
    for e in range(12):
        rows += [f"{e},x,train,{0.9 * 0.8**e:.4f},0.01", f"{e},x,val,{0.95 * 0.85**e:.4f},0.01"]
    split = parse_run("\n".join(rows))
    assert {"train_loss", "val_loss", "lr"} <= set(split.metrics) and "val_lr" not in split.metrics
    assert "overfitting" in [f.kind for f in detect(run)]  # the held-out AUROC turned at epoch 5


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


def _lcurve(rows: range, restart_at: int | None = None) -> str:
    header = "#  step   rmse_val   rmse_trn   rmse_e_val rmse_e_trn   rmse_f_val rmse_f_trn      lr"
    lines = [header]
    for s in rows:
        if s == restart_at:
            lines.append(header)  # DeePMD prints its header again when a run is restarted
        v = 10.0 * 0.93 ** (s / 100) + 0.1
        lines.append(
            f"{s:7d}  {v + 0.05:10.2e}  {v:10.2e}  {v / 20:10.2e}  {v / 21:10.2e}  {v / 5:10.2e}"
            f"  {v / 6:10.2e}  {1e-3 * 0.95 ** (s / 500):9.1e}"
        )
    return "\n".join(lines)


def test_deepmds_lcurve_out_a_table_whose_header_is_a_comment_is_read_by_its_names():
    """`#  step rmse_val rmse_trn … lr`: the names are in a comment, so the rows must not be read as
    numbers alone (they were: every column an unnamed score, no trend judged)."""
    run = parse_run(_lcurve(range(0, 6000, 100), restart_at=3000))
    assert run.sources["train_rmse"] == "rmse_trn" and run.sources["val_rmse"] == "rmse_val"
    assert judged_metric(run) == "rmse" and run.table["lr"].iloc[0] == 1e-3
    assert run.table["step"].tolist() == list(range(0, 6000, 100))  # the repeated header is no row
    assert not any("numbers alone" in n for n in run.notes)
    assert [f.kind for f in detect(run)] == ["healthy"]


def test_deepxdes_loss_dat_sums_each_block_of_loss_terms_and_reads_the_test_block_as_held_out(tmp_path):
    """`# step, loss_train, loss_test, metrics_test`: a name stands for a block of columns, one per
    term of the loss (the PDE residual, each boundary condition), the test block as wide, then the
    metrics. Each block is the sum of its terms; with no validation curve the test one is held out."""
    rows = ["# step, loss_train, loss_test, metrics_test"]
    for s in range(0, 20000, 500):
        terms = [0.5 * 0.8 ** (s / 500), 0.2 * 0.85 ** (s / 500), 0.01]
        test = [t * 1.1 for t in terms]
        rows.append(" ".join(f"{v:.18e}" for v in [s, *terms, *test, 0.3 * 0.9 ** (s / 500)]))
    path = tmp_path / "loss.dat"
    path.write_text("\n".join(rows) + "\n")
    run = parse_run(path)
    assert run.table["train_loss"].iloc[0] == 0.5 + 0.2 + 0.01
    assert abs(run.table["val_loss"].iloc[0] - 1.1 * 0.71) < 1e-12
    assert any("sum of their 3 terms (one metric assumed after them" in n for n in run.notes)
    assert any("test curve is read as the held-out one" in n for n in run.notes)
    assert [f.kind for f in detect(run)] == ["healthy"]
    # a term that went NaN makes its block's sum a logged NaN: a blow-up, never a number
    rows[-1] = " ".join([rows[-1].split()[0], "nan", *rows[-1].split()[2:]])
    path.write_text("\n".join(rows) + "\n")
    nan_run = parse_run(path)
    assert np.isinf(nan_run.table["train_loss"].iloc[-1]) and np.isfinite(nan_run.table["val_loss"].iloc[-1])
    assert "diverged" in [f.kind for f in detect(nan_run)]
    # more terms than a log may have metrics: refused whole, never a sum of the first few
    with pytest.raises(RunParseError, match="cannot be summed whole"):
        parse_run(path, limits=Limits(max_metrics=4))


def test_a_commented_header_that_does_not_fit_its_rows_is_not_taken_for_one():
    """Five names over seven numbers (not DeepXDE's blocks): which is which cannot be told, so the
    rows stay numbers alone, said in a note, rather than a guessed table."""
    rows = ["# epoch loss acc lr time"] + [
        " ".join(f"{v:.4f}" for v in [e, 2 * 0.9**e, 0.5, 0.1, 1e-3, 12.0, 3.0]) for e in range(12)
    ]
    run = parse_run("\n".join(rows))
    assert "train_loss" not in run.table and any("numbers alone" in n for n in run.notes)
    # a title written as a comment over a log is no header (`# My run`, then `1 0.5000` lines), and a
    # long word after `#` is matched in linear time (a separator between names is never empty)
    titled = parse_run("# My run\n" + "\n".join(f"{e} {2 * 0.9**e:.4f}" for e in range(1, 13)))
    assert "train_loss" in titled.table
    slow = "# experiment_resnet_cifar_baseline" + "x" * 5000 + ":\nepoch 1 loss 2.1\nepoch 2 loss 1.9\n"
    assert parse_run(slow).table["train_loss"].tolist() == [2.1, 1.9]


def test_a_vq_vaes_codebook_perplexity_is_not_judged_beside_its_reconstruction_error():
    """Zalando's VQ-VAE prints `recon_error` and `perplexity` every 100 iterations. The perplexity is the
    codebook's usage, climbing from 2 to 350 as more codes are used, not a language model's loss: it
    was judged and the run called diverged. The reconstruction error is the loss; a language model
    that logs perplexity alone is still judged on it."""
    lines = []
    for i in range(60):
        lines += [f"{100 * (i + 1)} iterations", f"recon_error: {2.0 * np.exp(-i / 8) + 0.2:.3f}"]
        lines += [f"perplexity: {min(350.0, 2 + 12 * i):.3f}", ""]
    run = parse_run("\n".join(lines))
    assert judged_metric(run) == "recon_error"
    assert [f.kind for f in detect(run)] == ["healthy"]
    lm = "\n".join(f"step {100 * i} | ppl {900 * np.exp(-i / 10) + 20:.2f}" for i in range(40))
    assert judged_metric(parse_run(lm)) == "ppl"
    # beside a higher-is-better score (a translation model's BLEU) the perplexity is not dropped: the
    # two tie as before, and neither is guessed (dropping it judged the BLEU)
    nmt = "\n".join(
        f"step {100 * i} | ppl {900 * np.exp(-i / 10) + 20:.2f} | bleu {i / 2:.2f}" for i in range(40)
    )
    assert judged_metric(parse_run(nmt)) is None


def test_a_first_line_of_prose_with_a_comma_is_no_tables_header():
    # a Paddle distributed job's worker log opens with `server not ready, wait 3 sec to retry...` and a
    # line of endpoints with a comma: it looked like a two-column table naming no metric, and the log
    # was refused; it is console text, read as such
    lines = [
        "server not ready, wait 3 sec to retry...",
        "not ready endpoints:['127.0.0.1:59998', '127.0.0.1:35382']",
    ]
    for e in range(1, 13):
        for s in (100, 200):
            lines.append(f"02/13/2022 23:07:14 - INFO - Epoch: [{e}], step: [{s}], lr: 0.000010, batch_loss: "
                         f"{0.03 / e:.4f}, avg_loss: {0.025 / e:.4f}")  # fmt: skip
    run = parse_run("\n".join(lines))
    assert run.table["epoch"].nunique() == 12 and "train_loss" in run.table
    with pytest.raises(RunParseError, match="holds no training metric"):
        parse_run("server not ready, wait 3 sec\nnot ready endpoints, two of them\n")


def test_a_report_table_whose_names_are_several_words_apart_by_runs_of_spaces():
    # `Epoch   Training Loss   Validation Loss` over rows of three numbers: three columns, not five
    rows = [(1, 0.545, 0.452), (5, 0.401, 0.512), (10, 0.325, 0.678), (15, 0.278, 0.812), (21, 0.249, 0.967)]
    text = "Epoch   Training Loss   Validation Loss\n" + "\n".join(f"{e:<8}{t:<15}{v}" for e, t, v in rows)
    run = parse_run(text)
    assert run.sources == {"train_loss": "Training Loss", "val_loss": "Validation Loss"}
    assert run.table["epoch"].tolist() == [1, 5, 10, 15, 21]
    # a header of one word a column stays one name a column
    run = parse_run("epoch   train_loss   val_loss\n" + "\n".join(f"{e}   {t}   {v}" for e, t, v in rows))
    assert run.sources == {"train_loss": "train_loss", "val_loss": "val_loss"}
    # ...and so does a fixed-width one whose gap is a single space where a name fills its column
    head = "Report\nEpoch   GPU_mem box_loss   obj_loss   cls_loss"
    body = "\n".join(f"{e}/30   3.1G  {t:.4f}  {v:.4f}  0.0200" for e, t, v in rows)
    run = parse_run(f"{head}\n{body}")
    assert run.table["train_box_loss"].tolist() == [t for _, t, _ in rows]


def test_a_tab_separated_table_printed_under_a_warning_with_a_flag_column_is_read():
    # bpnet-lite prints a warning, then its table: `Saved?` (a flag, `True`) closes the header, and its
    # losses are the profile's multinomial NLL (`Training MNLL`); the notebook was refused as holding
    # nothing
    header = (
        "Epoch\tIteration\tTraining Time\tValidation Time\tTraining MNLL\tTraining Count MSE\t"
        "Validation MNLL\tValidation Profile Pearson\tValidation Count Pearson\tValidation Count MSE\tSaved?"
    )
    val = [407.2 - 20 * (1 - 0.7**e) for e in range(12)]
    rows = [
        f"{e}\t{898 * (e + 1)}\t6.2\t0.2\t{380 - e:.4f}\t0.3\t{v:.4f}\t0.45\t0.8\t0.24\t{e % 3 == 0}"
        for e, v in enumerate(val)
    ]
    text = "Warning: models trained using bpnet-lite may underperform the official ones.\n" + header
    run = parse_run(text + "\n" + "\n".join(rows))
    assert (
        np.allclose(run.table["val_loss"], np.round(val, 4)) and run.table["train_loss"].notna().sum() == 12
    )


def test_a_phase_column_says_its_rows_stage_by_the_words_in_it():
    # FluxTraining.jl prints a box-drawn table each phase, its `Phase` column `TrainingPhase` or
    # `ValidationPhase`: the validation rows were read as training's, the epoch's row holding them
    train, val = falling(10, 1.93, 0.61), falling(10, 1.56, 0.59)
    lines = []
    for e, (t, v) in enumerate(zip(train, val, strict=True), 1):
        for phase, loss in (("TrainingPhase", t), ("ValidationPhase", v)):
            lines += [
                f"Epoch {e} {phase}() ...",
                "┌─────────────────┬───────┬─────────┬──────────┐",
                "│           Phase │ Epoch │    Loss │ Accuracy │",
                "├─────────────────┼───────┼─────────┼──────────┤",
                f"│ {phase:>15} │ {e:5.1f} │ {loss:7.5f} │  0.70000 │",
                "└─────────────────┴───────┴─────────┴──────────┘",
            ]
    run = parse_run("\n".join(lines))
    assert np.allclose(run.table["train_loss"], np.round(train, 5))
    assert np.allclose(run.table["val_loss"], np.round(val, 5))
