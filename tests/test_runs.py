"""Your own training run: every log format reads into the same metrics, bad input gets a clear error,
the detectors meet their floors on the goldset of real runs, and `assistant diagnose --json` answers
with the tiny model through the real chain."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.measure.evaluation import load_jsonl
from assistant.measure.runs_eval import RUNS_DIR, eval_detectors
from assistant.runs import RunParseError, detect, parse_run
from assistant.runs.curves import run_curves
from assistant.runs.parse.names import normalise
from assistant.runs.plot import plot_run

LABELS = load_jsonl(RUNS_DIR / "labels.jsonl")
RUNS = sorted({item["run"] for item in LABELS})


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("loss", "train_loss"),
        ("train_loss", "train_loss"),
        ("training_loss", "train_loss"),
        ("train_loss_step", "train_loss"),
        ("epoch_loss", "train_loss"),
        ("Loss/train", "train_loss"),
        ("val_loss", "val_loss"),
        ("eval_loss", "val_loss"),
        ("valid_loss", "val_loss"),
        ("validation/epoch_loss", "val_loss"),
        ("accuracy", "train_acc"),
        ("acc", "train_acc"),
        ("train_acc_epoch", "train_acc"),
        ("val_accuracy", "val_acc"),
        ("eval_accuracy", "val_acc"),
        ("lr", "lr"),
        ("learning_rate", "lr"),
        ("lr-Adam", "lr"),
        ("val_f1", "val_f1"),
        ("evaluate_rewards_mean", "val_reward"),  # PARL: the evaluation's return
    ],
)
def test_metric_names_are_normalised(raw, name):
    assert normalise(raw) == name


@pytest.mark.parametrize("run", RUNS)
def test_every_format_reads_into_the_same_metrics(run):
    """The six logs of one run (written by each tool's writer or its exact format) give the same
    per-epoch curves: train/val loss, accuracy where logged, the learning rate."""
    items = [i for i in LABELS if i["run"] == run]
    assert {i["format"] for i in items} == {
        "tensorboard", "lightning-csv", "keras-csv", "trainer-state", "jsonl", "console"
    }  # fmt: skip
    per_format = {}
    for item in items:
        r = parse_run(RUNS_DIR / item["file"])
        assert {"train_loss", "val_loss"} <= set(r.metrics), (item["file"], r.metrics)
        assert r.has_epochs, item["file"]
        per_format[item["format"]] = (r, run_curves(r))
    ref_run, ref = per_format["keras-csv"]
    for fmt, (r, curves) in per_format.items():
        blew_up = [bool(np.isinf(x.table["train_loss"].to_numpy(dtype=float)).any()) for x in (r, ref_run)]
        if any(blew_up):  # a run that blew up: every format says so (where each stopped logging differs)
            assert all(blew_up), fmt
            continue
        for got, want in zip(curves, ref, strict=True):
            assert (got is None) == (want is None), fmt
            if got is None:
                continue
            assert np.array_equal(got.x, want.x), fmt
            a, b = (np.array([c.value(v) for v in c.y]) for c in (got, want))  # on the log's own scale
            same = np.isclose(a, b, rtol=2e-3, atol=2e-4)
            assert same.all(), (fmt, got.label, a[~same], b[~same])


def test_a_150k_line_log_parses(tmp_path):
    """Correctness only; the time is printed (speed is for benchmarks, not assertions)."""
    n, per_epoch = 150_000, 1000
    path = tmp_path / "long.log"
    with path.open("w") as f:
        for i in range(1, n + 1):
            f.write(f"epoch {(i - 1) // per_epoch + 1} | step {i} | loss {1 / math.sqrt(i):.6f} | lr 0.001\n")
            if i % per_epoch == 0:
                f.write(f"epoch {i // per_epoch} | step {i} | val_loss {1.1 / math.sqrt(i):.6f}\n")
    t = time.perf_counter()
    run = parse_run(path)
    elapsed = time.perf_counter() - t
    print(f"\n150k-line console log parsed in {elapsed:.2f} s")
    assert len(run) == n + n // per_epoch
    assert run.table["train_loss"].notna().sum() == n
    assert run.table["val_loss"].notna().sum() == n // per_epoch
    assert run.table["step"].iloc[-1] == n and run.table["epoch"].max() == n // per_epoch
    assert abs(run.table["train_loss"].iloc[0] - 1.0) < 1e-9
    assert [f.kind for f in detect(run)] == ["healthy"]


# --------------------------------------------------------------------------------------------------
# Detectors and plot
# --------------------------------------------------------------------------------------------------


def test_detectors_meet_the_floors_on_the_goldset():
    """Every kind found with recall >= 0.9 over all logs, and no healthy run flagged."""
    report = eval_detectors(LABELS)
    print(json.dumps({k: v for k, v in report.items() if k != "_findings"}, indent=1))
    for kind, m in report["kinds"].items():
        assert m["n"] >= 12, kind  # every kind is shown by at least two runs x six formats
        assert m["recall"] >= 0.9, (kind, m)
    assert report["healthy_flagged"] == []


def test_findings_state_their_evidence():
    overfit = detect(parse_run(RUNS_DIR / "logs/overfit_blobs.keras.csv"))
    assert [f.kind for f in overfit] == ["overfitting"]
    f = overfit[0]
    assert f.details["turn"].startswith("epoch ") and f.details["val_end"] > f.details["val_min"]
    assert f.details["turn"] in f.evidence and "validation loss" in f.evidence
    assert f.to_dict()["kind"] == "overfitting"


def test_plot_is_a_png_with_log_scale_when_the_loss_spans_decades(tmp_path):
    from assistant.runs.plot import _spans_decades

    run = parse_run(RUNS_DIR / "logs/overfit_blobs.jsonl")
    out = tmp_path / "curves.png"
    png = plot_run(run, detect(run), out)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and out.read_bytes() == png
    assert _spans_decades(run.table["train_loss"].to_numpy())
    assert not _spans_decades(
        parse_run(RUNS_DIR / "logs/lowlr_blobs_sgd.jsonl").table["train_loss"].to_numpy()
    )


# --------------------------------------------------------------------------------------------------
# Through the Assistant and the CLI, with the tiny model
# --------------------------------------------------------------------------------------------------


def test_assistant_diagnose_pasted_text(make_assistant, settings, tiny_engine):
    a = make_assistant(settings, llm=tiny_engine)
    text = (RUNS_DIR / "logs/lowlr_blobs_sgd.keras.csv").read_text()
    d = a.diagnose(text, "why does my loss not go down?", max_new_tokens=16)
    assert {f.kind for f in d.findings} == {"plateau", "underfitting"}
    assert d.question.endswith("why does my loss not go down?") and "plateau" in d.question
    assert d.png[:4] == b"\x89PNG"
    assert d.answer.sources or d.answer.abstained
    body = d.to_dict()
    assert body["answer"]["standalone_question"] == d.question and body["run"]["epochs"] == 20
    with pytest.raises(RunParseError):
        a.diagnose("hello, this is not a log")


@pytest.fixture()
def cli(tmp_path, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASSISTANT_LLM_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("ASSISTANT_LLM_DTYPE", "float32")
    monkeypatch.setenv("ASSISTANT_LLM_MAX_NEW_TOKENS", "24")
    monkeypatch.delenv("ASSISTANT_CONFIG", raising=False)
    runner = CliRunner()
    return lambda *args, stdin=None: runner.invoke(app, list(args), input=stdin, env={"COLUMNS": "200"})


def test_diagnose_json_through_the_cli(cli, tmp_path):
    from assistant.chat.chain import Answer

    png = tmp_path / "curves.png"
    result = cli("diagnose", str(RUNS_DIR / "logs/overfit_spirals.tensorboard"), "--json", "--plot", str(png))
    assert result.exit_code == 0, result.output
    out = json.loads(result.output[result.output.index("{") :])
    assert [f["kind"] for f in out["findings"]] == ["overfitting"]
    assert "epoch" in out["findings"][0]["evidence"]
    assert set(out["answer"]) == set(Answer("", "", False).to_dict())  # what `ask --json` prints
    assert out["answer"]["sources"], out["answer"]
    assert {"unit_id", "source", "title", "text", "score"} <= set(out["answer"]["sources"][0])
    assert "overfitting" in out["question"] and png.read_bytes()[:4] == b"\x89PNG"

    # in the terminal: the findings first, then the streamed answer; `-` reads a pasted log
    text = (RUNS_DIR / "logs/diverged_blobs_nan.console.log").read_text()
    result = cli("diagnose", "-", "--question", "what should I change first?", stdin=text)
    assert result.exit_code == 0, result.output
    assert "diverged (high): the training loss became NaN or infinite at epoch 1" in result.output
    assert "asking: The training loss explodes or becomes NaN" in result.output
    assert "what should I change first?" in result.output

    bad = tmp_path / "notes.txt"
    bad.write_text("remember to buy milk\n")
    result = cli("diagnose", str(bad), "--json")
    assert result.exit_code == 2 and "error:" in result.output and "no training metric" in result.output
    assert "Traceback" not in result.output


def test_diagnose_without_an_answer_loads_no_model_and_compares_two_logs(cli, monkeypatch):
    import assistant.cli.runs as cli_runs

    def no_model(*a, **k):
        raise AssertionError("--no-answer must not build the assistant")

    monkeypatch.setattr(cli_runs, "build_assistant", no_model)
    result = cli("diagnose", str(RUNS_DIR / "logs/overfit_blobs.keras.csv"), "--no-answer", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output[result.output.index("{") :])
    assert "answer" not in out and [f["kind"] for f in out["findings"]] == ["overfitting"]
    pair = [str(RUNS_DIR / "logs/overfit_blobs.keras.csv"), str(RUNS_DIR / "logs/healthy_blobs_adam.jsonl")]
    result = cli("diagnose", *pair, "--no-answer")
    assert result.exit_code == 0, result.output
    assert "overfitting (high)" in result.output and "healthy (" in result.output
    assert "compared: healthy_blobs_adam.jsonl is better" in result.output
    result = cli("diagnose", *pair, *pair[:1], "--no-answer")
    assert result.exit_code == 2 and "two to compare" in result.output


def test_two_runs_compared_say_which_is_better_and_where_they_part():
    from assistant.runs.compare import compare

    overfit, healthy = (
        parse_run(RUNS_DIR / f"logs/{n}") for n in ("overfit_blobs.keras.csv", "healthy_blobs_adam.jsonl")
    )
    c = compare(overfit, healthy)
    assert c.metric == "validation loss" and c.names[c.better] == "healthy_blobs_adam.jsonl"
    assert c.summary[0].startswith("overfit_blobs.keras.csv overfits (from epoch")
    assert "healthy_blobs_adam.jsonl is better: its validation loss is" in c.summary[1]
    # the same run against itself: level, never "better"
    same = compare(healthy, parse_run(RUNS_DIR / "logs/healthy_blobs_adam.keras.csv"))
    assert same.better is None and "ends level" in same.summary[-1]
    # a run whose loss blew up from the start logs no curve to compare
    nan = compare(parse_run(RUNS_DIR / "logs/diverged_blobs_nan.keras.csv"), healthy)
    assert nan.better is None and "cannot be compared" in nan.summary[-1] and "diverged" in nan.summary[0]
    # runs counted in steps against one counted in epochs: compared over each one's length
    steps = parse_run(
        "\n".join(f"step {i * 10} | loss {1 / (1 + i):.4f} | val_loss {1.2 / (1 + i):.4f}" for i in range(30))
    )
    mixed = compare(steps, healthy)
    assert mixed.metric == "validation loss" and (
        "%" in (mixed.parted or "") or mixed.parted in (None, "the start")
    )


def test_eval_runs_detectors_through_the_cli(cli):
    result = cli("eval", "runs", "--detectors-only", "--no-real", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    det = report["detectors"]
    assert det["logs"] == len(LABELS) and det["healthy_flagged"] == []
    assert all(m["recall"] >= 0.9 for m in det["kinds"].values())


def test_the_real_logs_not_on_this_machine_are_refused_or_left_out_and_counted(cli, tmp_path, monkeypatch):
    # the real logs are restored from their repositories, not committed: a machine may hold some
    from assistant.measure import runs_eval

    (tmp_path / "logs").mkdir()
    text = "\n".join(f"epoch {e}: loss={2 / e:.3f} val_loss={2.2 / e:.3f}" for e in range(1, 9))
    (tmp_path / "logs/here.log").write_text(text)
    rows = [
        {"file": f"logs/{name}.log", "format": "console", "kinds": ["healthy"], "ambiguous": False,
         "train_loss": "loss", "val_loss": "val_loss", "half": "fresh"}
        for name in ("here", "gone")
    ]  # fmt: skip
    (tmp_path / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(FileNotFoundError, match="--present-only"):
        runs_eval.eval_real(tmp_path / "labels.jsonl")
    r = runs_eval.eval_real(tmp_path / "labels.jsonl", present_only=True)
    assert (r["logs"], r["missing"], r["agreement"]) == (1, 1, 1.0)
    monkeypatch.setattr(runs_eval, "REAL_DIR", tmp_path)
    refused = cli("eval", "runs", "--detectors-only", "--json")
    assert refused.exit_code != 0 and "--present-only" in refused.output
    shown = cli("eval", "runs", "--detectors-only", "--present-only")
    assert shown.exit_code == 0 and "1 logs (1 not on this machine, left out)" in shown.output
    (tmp_path / "logs/here.log").unlink()  # none here: no agreement figure, not a 0.0 read as all wrong
    none_here = runs_eval.eval_real(tmp_path / "labels.jsonl", present_only=True)
    assert (none_here["logs"], none_here["missing"], none_here["agreement"]) == (0, 2, None)


def test_tensorboard_keras_layout(tmp_path):
    """Keras' TensorBoard callback: `train/` and `validation/` folders, the same tag `epoch_loss`,
    the epoch as the step; written with the real SummaryWriter."""
    from torch.utils.tensorboard import SummaryWriter

    losses = {"train": [1.0, 0.6, 0.4, 0.3, 0.25], "validation": [1.1, 0.7, 0.5, 0.45, 0.44]}
    for stage, values in losses.items():
        w = SummaryWriter(str(tmp_path / "logs" / stage))
        for epoch, v in enumerate(values):
            w.add_scalar("epoch_loss", v, epoch)
            w.add_scalar("epoch_accuracy", 1 - v / 2, epoch)
        w.close()
    run = parse_run(tmp_path / "logs")
    assert run.fmt == "tensorboard"
    assert set(run.metrics) == {"train_loss", "val_loss", "train_acc", "val_acc"}
    assert np.allclose(run.table["train_loss"], losses["train"])
    assert np.allclose(run.table["val_loss"], losses["validation"])
    assert [f.kind for f in detect(run)] == ["healthy"]


def test_the_real_logs_measure_names_curves_as_the_logs_write_them_and_catches_a_swap():
    """`eval runs --real` compares the series the tool took with the labelled ones: `none` names no
    series, and a training curve taken for the held-out one is a swap."""
    from assistant.measure.runs_eval import _curves_right

    text = "\n".join(f"epoch {e}: loss={2 / e:.3f} val_loss={2.2 / e:.3f}" for e in range(1, 9))
    run = parse_run(text)
    assert _curves_right(run, {"train_loss": "loss", "val_loss": "val_loss"}) == (True, True)
    assert _curves_right(run, {"train_loss": "val_loss", "val_loss": "loss"}) == (False, False)
    alone = parse_run("\n".join(f"epoch {e}: loss={2 / e:.3f}" for e in range(1, 9)))
    assert _curves_right(alone, {"train_loss": "loss", "val_loss": "none"}) == (True, True)
    # a held-out score the reader named is right when the tool read it as the held-out set's
    scored = parse_run(
        "\n".join(f"epoch {e}: loss={2 / e:.3f} val_mIoU={0.5 + e / 40:.3f}" for e in range(1, 9))
    )
    assert _curves_right(scored, {"train_loss": "loss", "val_loss": "val mIoU"})[0]
    assert not _curves_right(scored, {"train_loss": "loss", "val_loss": "val Dice"})[0]
    # a name without a stage word is in the stage the label gives it: `logloss` named as the held-out
    # loss is the one on the `eval info:` lines, and one name for both curves is no swap either way
    evals = parse_run(
        "\n".join(
            f"train info: total_loss:{2 / e:.3f}\neval info: auc:0.7, logloss:{1 / e:.3f}"
            for e in range(1, 9)
        )
    )
    assert _curves_right(evals, {"train_loss": "total_loss", "val_loss": "logloss"}) == (True, True)
    assert not _curves_right(evals, {"train_loss": "logloss", "val_loss": "total_loss"})[0]  # the other way
    assert not _curves_right(evals, {"train_loss": "nll", "val_loss": "ce"})[0]  # series the log lacks
    assert _curves_right(alone, {"train_loss": "Loss", "val_loss": "Loss"}) == (False, True)
