"""Make the runs goldset: real training runs of small torch models on CPU, each logged in every format
`assistant diagnose` reads. Run: `python tests/goldsets/runs/make_runs.py` (about a minute on 2 cores).

Each run trains a tiny MLP or CNN on data generated here (blobs, two spirals, 8x8 bar images, a
smooth regression) with deliberately good or bad settings. What a run *shows* (its labels) was
decided by looking at its curves (`--plot` draws them all), not by what the detectors say.

Formats and how each is written (the real writer where it is installed here):
- TensorBoard: torch.utils.tensorboard.SummaryWriter (tags train/loss, train/lr, epoch per step;
  val/loss, val/acc, train/acc per epoch), as a Lightning TensorBoardLogger run would.
- Lightning CSV (`lightning` is not installed): metrics.csv exactly as lightning's CSVLogger writes
  it: one row per log call with `epoch` (0-based) and `step`, blank cells for metrics not logged in
  that call, the header the keys sorted as they first appear; `train_loss_step` every step, then
  `val_loss`/`val_acc` and `train_loss_epoch`/`train_acc_epoch` rows at the end of each epoch.
- Keras CSV (`keras` is not installed): CSVLogger's file: `epoch` (0-based) then the sorted keys
  (accuracy, learning_rate, loss, val_accuracy, val_loss), one row per epoch.
- trainer_state.json: Hugging Face Trainer's state file; `log_history` holds a record per logging
  step (loss averaged since the last log and rounded to 4 places, learning_rate, grad_norm,
  fractional epoch, step), an eval record per epoch (eval_loss, eval_accuracy, eval_runtime…) and the
  closing summary (train_runtime, train_loss…).
- JSON lines: one object per step ({epoch, step, loss, lr}) and per epoch ({epoch, step, val_loss,
  val_accuracy, accuracy}), 1-based epochs.
- Console: what the run printed, in one of three styles by run: Keras' `Epoch 3/20` + progress line
  (with the bar's earlier updates separated by carriage returns, as a captured terminal has them),
  `epoch 3 | step 120 | loss 0.4100 | lr 0.001` lines, or a tqdm bar per epoch with a postfix.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
LOGS = HERE / "logs"

# What the corpus says about each problem (judged by reading the units): the answer to a diagnosis
# should cite at least one of these. {source, start of the unit's question}.
UNITS: dict[str, list[dict[str, str]]] = {
    "overfitting": [
        {"source": "deep-learning-projects-faq.md", "title": "How can I handle overfitting"},
        {
            "source": "deep-learning-interview-questions.txt",
            "title": "How do you approach the problem of overfitting",
        },
        {"source": "deep-learning-basics-qa.txt", "title": "What are some common challenges and pitfalls"},
        {"source": "deep-learning-basics-qa.txt", "title": "How do I improve the performance"},
    ],
    "diverged": [
        {
            "source": "deep-learning-interview-questions.txt",
            "title": "Describe an instance where you had to adjust learning rates",
        },
        {
            "source": "deep-learning-interview-questions.txt",
            "title": "Can you explain the concept of hyper-parameters",
        },
    ],
    "unstable": [
        {
            "source": "deep-learning-interview-questions.txt",
            "title": "Describe an instance where you had to adjust learning rates",
        },
        {
            "source": "deep-learning-interview-questions.txt",
            "title": "Can you explain the concept of hyper-parameters",
        },
        {
            "source": "deep-learning-interview-questions.txt",
            "title": "How do you determine the appropriate batch size",
        },
    ],
    "plateau": [
        {
            "source": "deep-learning-interview-questions.txt",
            "title": "Describe an instance where you had to adjust learning rates",
        },
        {
            "source": "deep-learning-interview-questions.txt",
            "title": "Can you explain the concept of hyper-parameters",
        },
        {"source": "deep-learning-projects-faq.md", "title": "How can I optimize the hyperparameters"},
        {"source": "deep-learning-projects-faq.md", "title": "How can I improve the training speed"},
    ],
    "underfitting": [
        {"source": "deep-learning-basics-qa.txt", "title": "What are some common challenges and pitfalls"},
        {
            "source": "deep-learning-interview-questions.txt",
            "title": "Can you explain the concept of hyper-parameters",
        },
        {"source": "deep-learning-basics-qa.txt", "title": "How do you choose the right architecture"},
        {"source": "deep-learning-basics-qa.txt", "title": "How do I improve the performance"},
    ],
    "healthy": [
        {"source": "deep-learning-projects-faq.md", "title": "How can I evaluate the performance"},
        {"source": "deep-learning-basics-qa.txt", "title": "How do I improve the performance"},
        {"source": "deep-learning-basics-qa.txt", "title": "How do I interpret the results"},
    ],
}


# --------------------------------------------------------------------------------------------------
# Data, generated here
# --------------------------------------------------------------------------------------------------


def blobs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    centers = rng.normal(0, 2.0, (4, 10))
    y = rng.integers(0, 4, n)
    return centers[y] + rng.normal(0, 1.6, (n, 10)), y


def spirals(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    t = rng.uniform(0.5, 3.5 * math.pi, n)
    x = np.stack([t * np.cos(t + math.pi * y), t * np.sin(t + math.pi * y)], 1) / 6
    return x + rng.normal(0, 0.08, x.shape), y


def bars(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """8x8 images of a bar in one of four orientations, shifted, with noise."""
    y = rng.integers(0, 4, n)
    img = np.zeros((n, 1, 8, 8))
    for i, c in enumerate(y):
        k = rng.integers(1, 7)
        if c == 0:
            img[i, 0, k, :] = 1
        elif c == 1:
            img[i, 0, :, k] = 1
        elif c == 2:
            img[i, 0] = np.eye(8, k=k - 3)
        else:
            img[i, 0] = np.fliplr(np.eye(8, k=k - 3))
    return img + rng.normal(0, 0.7, img.shape), y


def regression(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-1, 1, (n, 5))
    y = np.sin(3 * x[:, 0]) + x[:, 1] ** 2 - 0.5 * x[:, 2] * x[:, 3] + rng.normal(0, 0.1, n)
    return x, y[:, None]


DATA = {
    "blobs": (blobs, 10, 4),
    "spirals": (spirals, 2, 2),
    "bars": (bars, 64, 4),
    "regression": (regression, 5, 1),
}


def mlp(d_in: int, d_out: int, width: int, depth: int = 2) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    d = d_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, d_out))


def cnn(channels: int, d_out: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(channels * 16, d_out),
    )


# --------------------------------------------------------------------------------------------------
# The runs
# --------------------------------------------------------------------------------------------------


@dataclass
class Config:
    name: str
    shows: list[str]  # what its curves show (decided by looking at them)
    data: str
    model: str  # mlp:<width>x<depth> | cnn:<channels> | linear
    optimizer: str  # adam | sgd
    lr: float
    epochs: int
    n_train: int = 2000
    batch: int = 32
    weight_decay: float = 0.0
    momentum: float = 0.0
    label_noise: float = 0.0
    seed: int = 0
    console: str = "keras"  # keras | pipe | tqdm
    why: str = ""
    extra: dict = field(default_factory=dict)


RUNS = [
    Config("healthy_blobs_adam", ["healthy"], "blobs", "mlp:64x2", "adam", 1e-3, 12, n_train=4000,
           weight_decay=1e-3, console="keras", why="a sensible MLP, Adam 1e-3, enough data"),
    Config("healthy_spirals_adam", ["healthy"], "spirals", "mlp:128x2", "adam", 3e-3, 30, weight_decay=1e-4,
           console="pipe", why="enough capacity and data for two spirals"),
    Config("healthy_bars_cnn", ["healthy"], "bars", "cnn:16", "adam", 2e-3, 15, n_train=1500,
           console="tqdm", why="a small CNN on its kind of data"),
    Config("healthy_regression_sgd", ["healthy"], "regression", "mlp:64x2", "sgd", 0.02, 30, momentum=0.9,
           console="keras", why="SGD with momentum at a moderate rate"),
    Config("diverged_blobs_nan", ["diverged"], "blobs", "mlp:64x2", "sgd", 3.0, 15, momentum=0.9,
           console="pipe", why="learning rate 3.0 with momentum: NaN in the first epoch"),
    Config("diverged_blobs_explode", ["diverged"], "blobs", "mlp:64x2", "sgd", 0.12, 25, momentum=0.9,
           batch=16, console="tqdm", why="the loss jumps 60x in epoch 2, then the network is dead at chance"),
    Config("diverged_blobs_climb", ["diverged"], "blobs", "mlp:64x2", "sgd", 0.1, 15, momentum=0.9,
           batch=16, console="keras", why="the loss falls, then climbs to 5x its best and accelerates"),
    Config("unstable_regression_sgd", ["unstable"], "regression", "mlp:64x2", "sgd", 0.3, 12,
           console="pipe", why="SGD 0.3 without momentum: validation loss jumps 5x from epoch to epoch"),
    Config("unstable_blobs_adam", ["unstable"], "blobs", "mlp:64x2", "adam", 0.05, 12,
           console="tqdm", why="Adam at 0.05: both losses jump up and down"),
    Config("unstable_regression_sgd_high", ["unstable"], "regression", "mlp:64x2", "sgd", 0.6, 12,
           console="keras", why="SGD 0.6: the losses oscillate and never settle"),
    Config("overfit_spirals", ["overfitting"], "spirals", "mlp:512x3", "adam", 2e-3, 150, n_train=80,
           label_noise=0.15, batch=16, console="tqdm", why="a large MLP, 80 noisy examples"),
    Config("overfit_bars_cnn", ["overfitting"], "bars", "cnn:64", "adam", 2e-3, 80, n_train=60,
           label_noise=0.1, batch=16, console="keras", why="a wide CNN on 60 images, no regularisation"),
    Config("overfit_blobs", ["overfitting"], "blobs", "mlp:512x3", "adam", 1e-3, 100, n_train=60,
           label_noise=0.2, batch=16, console="pipe", why="a large MLP, 60 noisy examples"),
    Config("lowlr_blobs_sgd", ["plateau", "underfitting"], "blobs", "mlp:64x2", "sgd", 1e-5, 20,
           console="tqdm", why="a learning rate ~1000x too low: the loss barely moves"),
    Config("lowlr_regression_sgd", ["plateau", "underfitting"], "regression", "mlp:64x2", "sgd", 2e-5, 20,
           console="keras", why="a learning rate far too low"),
    Config("underfit_spirals_linear", ["underfitting", "plateau"], "spirals", "linear", "adam", 1e-2, 25,
           console="pipe", why="a linear model for two spirals: it cannot fit them"),
    Config("underfit_bars_tiny", ["underfitting", "plateau"], "bars", "mlp:2x1", "adam", 3e-3, 25,
           n_train=1500, console="tqdm", why="two hidden units for 8x8 images: stuck high, flattening"),
]  # fmt: skip


@dataclass
class Log:
    """What a run produced, logger-neutral: per step and per epoch (0-based epochs)."""

    steps: list[dict] = field(default_factory=list)  # {epoch, step, loss, lr, grad_norm}
    epochs: list[dict] = field(default_factory=list)  # {epoch, step, loss, acc, val_loss, val_acc, lr}
    classification: bool = True


def train(cfg: Config) -> Log:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    make, d_in, d_out = DATA[cfg.data]
    x, y = make(cfg.n_train + 1000, rng)
    classification = cfg.data != "regression"
    if classification and cfg.label_noise:
        flip = rng.random(cfg.n_train) < cfg.label_noise
        y[: cfg.n_train][flip] = rng.integers(0, d_out, flip.sum())
    xt = torch.tensor(x, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.long if classification else torch.float32)
    xtr, ytr, xva, yva = xt[: cfg.n_train], yt[: cfg.n_train], xt[cfg.n_train :], yt[cfg.n_train :]
    kind, _, arg = cfg.model.partition(":")
    if kind == "cnn":
        model = cnn(int(arg), d_out)
    elif kind == "linear":
        model = mlp(d_in, d_out, 0, depth=0)
    else:
        width, depth = (int(v) for v in arg.split("x"))
        model = mlp(d_in, d_out, width, depth)
    if kind != "cnn":
        xtr, xva = xtr.flatten(1), xva.flatten(1)
    opt = (
        torch.optim.Adam(model.parameters(), cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "adam"
        else torch.optim.SGD(model.parameters(), cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    )
    loss_fn = nn.CrossEntropyLoss() if classification else nn.MSELoss()
    log = Log(classification=classification)
    step = 0
    for epoch in range(cfg.epochs):
        model.train()
        perm = torch.randperm(cfg.n_train)
        losses, correct = [], 0
        for i in range(0, cfg.n_train, cfg.batch):
            idx = perm[i : i + cfg.batch]
            out = model(xtr[idx])
            loss = loss_fn(out, ytr[idx])
            opt.zero_grad()
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")))
            opt.step()
            step += 1
            value = float(loss.detach())
            losses.append(value)
            if classification:
                correct += int((out.argmax(1) == ytr[idx]).sum())
            log.steps.append(
                {"epoch": epoch, "step": step, "loss": value, "lr": cfg.lr, "grad_norm": grad_norm}
            )
        model.eval()
        with torch.no_grad():
            out = model(xva)
            val_loss = float(loss_fn(out, yva))
            val_acc = float((out.argmax(1) == yva).float().mean()) if classification else None
        rec = {
            "epoch": epoch,
            "step": step,
            "loss": float(np.mean(losses)),
            "val_loss": val_loss,
            "lr": cfg.lr,
        }
        if classification:
            rec |= {"acc": correct / cfg.n_train, "val_acc": val_acc}
        log.epochs.append(rec)
        if not math.isfinite(rec["loss"]):
            break  # as TerminateOnNaN / Lightning's detect_anomaly would stop it
    return log


# --------------------------------------------------------------------------------------------------
# Writers, one per format
# --------------------------------------------------------------------------------------------------


def write_tensorboard(log: Log, folder: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(folder))
    for s in log.steps:
        w.add_scalar("train/loss", s["loss"], s["step"])
        w.add_scalar("train/lr", s["lr"], s["step"])
        w.add_scalar("epoch", s["epoch"], s["step"])
    for e in log.epochs:
        w.add_scalar("val/loss", e["val_loss"], e["step"])
        if log.classification:
            w.add_scalar("val/acc", e["val_acc"], e["step"])
            w.add_scalar("train/acc", e["acc"], e["step"])
    w.close()


def write_lightning_csv(log: Log, path: Path, cfg: Config) -> None:
    rows: list[dict] = []
    by_epoch: dict[int, list[dict]] = {}
    for s in log.steps:
        by_epoch.setdefault(s["epoch"], []).append(s)
    for e in log.epochs:
        for s in by_epoch[e["epoch"]]:
            lr_key = f"lr-{'Adam' if cfg.optimizer == 'adam' else 'SGD'}"  # LearningRateMonitor's name
            rows.append(
                {"epoch": s["epoch"], lr_key: s["lr"], "step": s["step"] - 1, "train_loss_step": s["loss"]}
            )
        val = {"epoch": e["epoch"], "step": e["step"] - 1, "val_loss": e["val_loss"]}
        if log.classification:
            val["val_acc"] = e["val_acc"]
        rows.append(val)
        tr = {"epoch": e["epoch"], "step": e["step"] - 1, "train_loss_epoch": e["loss"]}
        if log.classification:
            tr["train_acc_epoch"] = e["acc"]
        rows.append(tr)
    keys: list[str] = []
    for r in rows:  # CSVLogger: keys sorted, appended in the order they first appear
        keys += sorted(set(r) - set(keys))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_keras_csv(log: Log, path: Path) -> None:
    rows = []
    for e in log.epochs:
        r = {"loss": e["loss"], "val_loss": e["val_loss"], "learning_rate": e["lr"]}
        if log.classification:
            r |= {"accuracy": e["acc"], "val_accuracy": e["val_acc"]}
        rows.append({"epoch": e["epoch"], **dict(sorted(r.items()))})
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_trainer_state(log: Log, path: Path, cfg: Config) -> None:
    per_epoch = math.ceil(cfg.n_train / cfg.batch)
    history: list[dict] = []
    ends = {e["step"]: e for e in log.epochs}
    for s in log.steps:
        history.append(
            {
                "epoch": round(s["step"] / per_epoch, 4),
                "grad_norm": s["grad_norm"],
                "learning_rate": s["lr"],
                "loss": round(s["loss"], 4),
                "step": s["step"],
            }
        )
        e = ends.get(s["step"])
        if e is not None:
            ev = {
                "epoch": float(e["epoch"] + 1),
                "eval_loss": e["val_loss"],
                "eval_runtime": 0.05,
                "eval_samples_per_second": 20000.0,
                "eval_steps_per_second": 640.0,
                "step": s["step"],
            }
            if log.classification:
                ev["eval_accuracy"] = e["val_acc"]
            history.append(dict(sorted(ev.items())))
    last = log.steps[-1]
    history.append(
        {
            "epoch": float(log.epochs[-1]["epoch"] + 1),
            "step": last["step"],
            "total_flos": 0.0,
            "train_loss": float(np.mean([s["loss"] for s in log.steps])),
            "train_runtime": 3.2,
            "train_samples_per_second": 9000.0,
            "train_steps_per_second": 280.0,
        }
    )
    state = {
        "best_global_step": None,
        "best_metric": None,
        "best_model_checkpoint": None,
        "epoch": float(log.epochs[-1]["epoch"] + 1),
        "eval_steps": 500,
        "global_step": last["step"],
        "is_hyper_param_search": False,
        "is_local_process_zero": True,
        "is_world_process_zero": True,
        "log_history": history,
        "logging_steps": 1,
        "max_steps": per_epoch * cfg.epochs,
        "num_input_tokens_seen": 0,
        "num_train_epochs": cfg.epochs,
        "save_steps": 500,
        "stateful_callbacks": {},
        "total_flos": 0.0,
        "train_batch_size": cfg.batch,
        "trial_name": None,
        "trial_params": None,
    }
    path.write_text(json.dumps(state, indent=2) + "\n")  # NaN stays NaN, as Trainer's json.dumps writes it


def write_jsonl(log: Log, path: Path) -> None:
    ends = {e["step"]: e for e in log.epochs}
    with path.open("w") as f:
        for s in log.steps:
            f.write(
                json.dumps({"epoch": s["epoch"] + 1, "step": s["step"], "loss": s["loss"], "lr": s["lr"]})
                + "\n"
            )
            e = ends.get(s["step"])
            if e is not None:
                rec = {"epoch": e["epoch"] + 1, "step": e["step"], "val_loss": e["val_loss"]}
                if log.classification:
                    rec |= {"accuracy": e["acc"], "val_accuracy": e["val_acc"]}
                f.write(json.dumps(rec) + "\n")


def write_console(log: Log, path: Path, cfg: Config) -> None:
    per_epoch = math.ceil(cfg.n_train / cfg.batch)
    n = len(log.epochs)
    by_epoch: dict[int, list[dict]] = {}
    for s in log.steps:
        by_epoch.setdefault(s["epoch"], []).append(s)
    out: list[str] = []
    for e in log.epochs:
        steps = by_epoch[e["epoch"]]
        acc = f" - accuracy: {e['acc']:.4f}" if log.classification else ""
        vacc = f" - val_accuracy: {e['val_acc']:.4f}" if log.classification else ""
        if cfg.console == "keras":
            out.append(f"Epoch {e['epoch'] + 1}/{cfg.epochs}")
            half = steps[: len(steps) // 2]
            run_mean = float(np.mean([s["loss"] for s in half]))
            bar = f"{len(half)}/{per_epoch} [==============>...............] - ETA: 0s - loss: {run_mean:.4f}"
            final = (
                f"{per_epoch}/{per_epoch} [==============================] - 0s 2ms/step - loss: "
                f"{e['loss']:.4f}{acc} - val_loss: {e['val_loss']:.4f}{vacc} - learning_rate: {e['lr']:.4g}"
            )
            out.append(bar + "\r" + final)
        elif cfg.console == "pipe":
            for s in steps:
                out.append(
                    f"epoch {s['epoch'] + 1} | step {s['step']} | loss {s['loss']:.4f} | lr {s['lr']:.4g}"
                )
            line = f"epoch {e['epoch'] + 1} | step {e['step']} | val_loss {e['val_loss']:.4f}"
            out.append(line + (f" | val_acc {e['val_acc']:.4f}" if log.classification else ""))
        else:
            post = f"loss={e['loss']:.4f}, val_loss={e['val_loss']:.4f}"
            if log.classification:
                post += f", acc={e['acc']:.4f}, val_acc={e['val_acc']:.4f}"
            mid = (
                f"Epoch {e['epoch']}:  50%|#####     | {per_epoch // 2}/{per_epoch} "
                f"[00:00<00:00, 310.2it/s, loss={steps[0]['loss']:.4f}]"
            )
            out.append(
                mid + "\r" + f"Epoch {e['epoch']}: 100%|##########| {per_epoch}/{per_epoch} "
                f"[00:00<00:00, 312.5it/s, {post}]"
            )
    if n < cfg.epochs:
        out.append(f"Batch {per_epoch}: Invalid loss, terminating training")
    path.write_text("\n".join(out) + "\n")


FORMATS = {
    "tensorboard": "tensorboard",
    "lightning.csv": "lightning-csv",
    "keras.csv": "keras-csv",
    "trainer_state.json": "trainer-state",
    "jsonl": "jsonl",
    "console.log": "console",
}


def write_all(cfg: Config, log: Log) -> list[dict]:
    out = []
    for suffix, fmt in FORMATS.items():
        name = f"{cfg.name}.{suffix}"
        path = LOGS / name
        if fmt == "tensorboard":
            write_tensorboard(log, path)
        elif fmt == "lightning-csv":
            write_lightning_csv(log, path, cfg)
        elif fmt == "keras-csv":
            write_keras_csv(log, path)
        elif fmt == "trainer-state":
            write_trainer_state(log, path, cfg)
        elif fmt == "jsonl":
            write_jsonl(log, path)
        else:
            write_console(log, path, cfg)
        units = [u for kind in cfg.shows for u in UNITS[kind]]
        units = [dict(t) for t in dict.fromkeys(tuple(u.items()) for u in units)]
        out.append(
            {
                "file": f"logs/{name}",
                "run": cfg.name,
                "format": fmt,
                "kinds": cfg.shows,
                "units": units,
                "why": cfg.why,
            }
        )
    return out


def plot_all(logs: dict[str, Log], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(5, 4, figsize=(16, 16))
    for ax, (name, log) in zip(axes.flat, logs.items(), strict=False):
        ep = [e["epoch"] + 1 for e in log.epochs]
        ax.plot(ep, [e["loss"] for e in log.epochs], label="train")
        ax.plot(ep, [e["val_loss"] for e in log.epochs], label="val")
        ax.set_title(name, fontsize=9)
        ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=70)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plot", type=Path, help="also draw every run's per-epoch curves to this PNG")
    ap.add_argument("--seed", type=int, default=0, help="another seed: other runs, same settings")
    ap.add_argument("--out", type=Path, default=HERE, help="folder for logs/ and labels.jsonl")
    args = ap.parse_args()
    torch.set_num_threads(1)
    global LOGS
    LOGS = args.out / "logs"
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True)
    labels, logs = [], {}
    t0 = time.perf_counter()
    for cfg in RUNS:
        cfg.seed += args.seed
        t = time.perf_counter()
        log = train(cfg)
        logs[cfg.name] = log
        labels += write_all(cfg, log)
        first, last = log.epochs[0], log.epochs[-1]
        print(
            f"{cfg.name:26s} {time.perf_counter() - t:5.1f}s epochs {len(log.epochs):3d} "
            f"train {first['loss']:.3g}->{last['loss']:.3g} "
            f"val {first['val_loss']:.3g}->{last['val_loss']:.3g}"
        )
    (args.out / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in labels))
    print(f"{len(labels)} logs from {len(RUNS)} runs in {time.perf_counter() - t0:.0f}s")
    if args.plot:
        plot_all(logs, args.plot)


if __name__ == "__main__":
    main()
