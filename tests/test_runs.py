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
from assistant.runs.detect import curves
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
        per_format[item["format"]] = (r, curves(r))
    ref_run, ref = per_format["keras-csv"]
    for fmt, (r, c) in per_format.items():
        assert np.array_equal(c.x, ref.x), fmt
        for name in ("train", "val"):
            a, b = getattr(c, name), getattr(ref, name)
            same = np.isclose(a, b, rtol=2e-3, atol=2e-4) | (np.isinf(a) & np.isinf(b))
            assert same.all(), (fmt, name, a[~same], b[~same])
        assert ("val_acc" in r.metrics) == ("val_acc" in ref_run.metrics), fmt
    assert per_format["lightning-csv"][0].fmt == "lightning-csv"


def test_console_styles(tmp_path):
    keras = (
        "Epoch 1/2\n"
        "16/32 [=====>....] - ETA: 0s - loss: 0.9000\r32/32 [==========] - 0s 2ms/step - loss: 0.7000"
        " - accuracy: 0.6000 - val_loss: 0.8000 - val_accuracy: 0.5500\n"
        "Epoch 2/2\n32/32 [==========] - 0s 2ms/step - loss: 0.5000 - accuracy: 0.7000 - val_loss: 0.6000"
        " - val_accuracy: 0.6500\n"
    )
    r = parse_run(keras)
    assert r.table[["epoch", "train_loss", "val_loss", "train_acc", "val_acc"]].values.tolist() == [
        [1, 0.7, 0.8, 0.6, 0.55],
        [2, 0.5, 0.6, 0.7, 0.65],
    ]
    pipe = "epoch 3 | step 1200 | loss 0.41 | lr 1e-3\nepoch 3 | step 1210 | loss 0.39 | lr 1e-3\n"
    r = parse_run(pipe)
    assert r.table[["epoch", "step", "train_loss", "lr"]].values.tolist() == [
        [3, 1200, 0.41, 0.001],
        [3, 1210, 0.39, 0.001],
    ]
    tqdm = (
        "100%|###| 50/50 [00:01<00:00, 30.2it/s, loss=0.41, v_num=0]\n"
        " 40%|#  | 20/50 [00:01<00:00, 30.2it/s, loss=0.30]\n"
    )
    r = parse_run(tqdm)
    assert r.metrics == ["train_loss"]  # v_num is not a metric
    assert r.table["step"].tolist() == [50, 70]  # the counter restarted: steps keep counting
    # a file path reads the same as its text; NaN in a log is kept (as inf) for the detectors
    path = tmp_path / "train.log"
    path.write_text(keras.replace("loss: 0.5000", "loss: nan"))
    r = parse_run(path)
    assert math.isinf(r.table["train_loss"].iloc[1])
    assert detect(r)[0].kind == "diverged"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty"),
        ("The quick brown fox\njumps over the lazy dog.\n", "no training metric"),
        ("sepal_length,sepal_width,species\n5.1,3.5,setosa\n4.9,3.0,setosa\n", "no training metric"),
        ('{"name": "resnet", "layers": 50}', "no training metric"),
        ("[1, 2, 3]", "not a training log"),
        ('{"log_history": [{"train_runtime": 3.0}]}', "no training metric"),
        ("epoch,loss\n1,abc\n2,def\n", "none has a number"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "binary"),
    ],
)
def test_bad_input_gets_a_clear_error(tmp_path, content, expected):
    path = tmp_path / "input.log"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
        if content:
            with pytest.raises(RunParseError, match=expected):
                parse_run(content)  # pasted
    with pytest.raises(RunParseError, match=expected):
        parse_run(path)


def test_bad_paths(tmp_path):
    with pytest.raises(RunParseError, match="does not exist"):
        parse_run(tmp_path / "missing.csv")
    with pytest.raises(RunParseError, match="does not exist"):
        parse_run(str(tmp_path / "missing.csv"))
    with pytest.raises(RunParseError, match="without TensorBoard event files"):
        parse_run(tmp_path)
    broken = tmp_path / "events.out.tfevents.1.host"
    broken.write_bytes(b"\x00" * 10)
    with pytest.raises(RunParseError):
        parse_run(broken)
    big = tmp_path / "big.csv"
    big.write_text("epoch,loss\n" + "1,0.5\n" * 1000)
    with pytest.raises(RunParseError, match="limit"):
        parse_run(big, max_bytes=1000)


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
    assert "diverged: the training loss became NaN or infinite at epoch 1" in result.output
    assert "asking: The training loss explodes or becomes NaN" in result.output
    assert "what should I change first?" in result.output

    bad = tmp_path / "notes.txt"
    bad.write_text("remember to buy milk\n")
    result = cli("diagnose", str(bad), "--json")
    assert result.exit_code == 2 and "error:" in result.output and "no training metric" in result.output
    assert "Traceback" not in result.output


def test_eval_runs_detectors_through_the_cli(cli):
    result = cli("eval", "runs", "--detectors-only", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    det = report["detectors"]
    assert det["logs"] == len(LABELS) and det["healthy_flagged"] == []
    assert all(m["recall"] >= 0.9 for m in det["kinds"].values())


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
