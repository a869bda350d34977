"""Metric names as loggers write them -> one vocabulary (train_loss, val_loss, test_loss, train_acc,
val_acc, lr, and `<stage>_<what>` for the rest).

Names are split into tokens at separators and at CamelCase word boundaries ("validation/epoch_loss"
-> validation, epoch, loss; "TrainLoss" -> train, loss; "metrics/mAP50(B)" -> metrics, map50, b), so
each logger's spelling maps without a table per tool: Lightning's `train_loss_step`, Keras'
`val_accuracy`, Hugging Face's `eval_loss`, Ultralytics' `train/box_loss`, detectron2's `total_loss`,
DETR's `test_loss`, TensorBoard tags like `Loss/train`, console text like `Val Loss = 0.3`.

A name is a *metric* when one of its tokens says what it measures (loss, accuracy, perplexity, …)
and none says it is a setting (`loss_weight`, `score_thresh`, `lr_decay` are configuration printed in
the log, not readings) or a cost (`timing_s/reward`, `perf/throughput`).
"""

from __future__ import annotations

import re
from functools import lru_cache

STEP_COLUMNS = {
    "step", "global_step", "iteration", "iter", "batch", "steps", "num_updates", "_step",
    "current_steps",  # LLaMA-Factory's trainer_log.jsonl
    "env_step", "env_steps", "timesteps", "total_timesteps",  # reinforcement learning: steps taken
}  # fmt: skip
EPOCH_COLUMNS = {"epoch", "epochs", "num_epoch", "epch"}

TRAIN = {"train", "training", "tr", "trn"}
# `vali`: Informer, Autoformer; `evaluate`: PARL's `evaluate_rewards_mean`
VAL = {"val", "valid", "validation", "eval", "evaluation", "dev", "vali", "evaluate"}
# `te`: beside `tr` (SincNet's `loss_tr`, `loss_te`, `err_te`); `tst` beside `trn` (TensorFlow
# Probability's `trn_loss`, `tst_loss`)
TEST = {"test", "testing", "te", "tst"}
# a record's field or a table's column that says its stage (mmdetection's `"mode": "val"`,
# fastprogress' `train` column of `train`/`eval`, PySlowFast's `"_type": "val_epoch"`)
STAGE_FIELDS = ("mode", "phase", "split", "stage", "part", "_type")  # `part`: torch_ecg's CSV
STAGE_COLUMNS = TRAIN | VAL | TEST | set(STAGE_FIELDS)
# prefixes and suffixes that say how or where a value was aggregated, not what it measures
NOISE = {
    "epoch", "step", "avg", "mean", "average", "metric", "metrics", "scalar", "scalars", "on", "per",
    "total", "overall", "running", "inner", "so", "far",  # `avg loss so far`
    "batch",  # `Batch Loss`: a batch's loss (or their mean) is the loss, as the console reader reads it
    "combined",  # Ludwig's loss of all output features together: `training/combined/loss`
    "main",  # Chainer's LogReport: `main/loss`, `validation/main/loss` (the model under training)
    "history",  # a Keras-style history saved under its own names: `train_loss_history`
}  # fmt: skip
# CatBoost names its loss `Logloss`, OpenNMT (and TensorFlow code) its cross-entropy `xent`, BPNet
# (bpnet-lite, chrombpnet) its profile's multinomial negative log-likelihood `MNLL`
LOSS = {"loss", "nll", "mnll", "ce", "xent", "crossentropyloss", "logloss", "cost"}
# A VAE's two terms, printed without `loss` (`recon=282.4  kld=147.6`): parts of its loss (its `kl_w`,
# the KL term's weight, is a setting)
VAE_TERMS = {"kl", "kld", "recon"}
ACC = {"acc", "accuracy", "acc1"}  # timm/DeiT log top-1 accuracy as acc1 (top-5, acc5, is its own)
LR = {"lr", "learningrate"}
# Whole names some trainers abbreviate (llm.c / modded-nanogpt write `s:120 trl:3.28` and `tel:3.27`).
# Jeff Heaton's course loops print `tloss: 0.60, vloss: 0.54`.
ALIASES = {"trl": "train loss", "tel": "eval loss", "tloss": "train loss", "vloss": "val loss",
           "bit/dim": "bpd", "bits/dim": "bpd"}  # fmt: skip
# A ranking's hit ratio (`HR@10`) and mean reciprocal rank: readings, higher is better.
RANKING = {"hr", "hit", "mrr"}
# Readings where higher is better: a curve of them is judged on its complement (1 - accuracy).
HIGHER_BETTER = ACC | {
    "f1", "auc", "precision", "recall", "dice", "iou", "miou", "bleu", "rouge", "top1", "top5", "map",
    "map50", "map75", "ap", "ap50", "ap75", "cos", "cosine", "similarity", "r2", "reward", "rew",
    "return", "ret", "acc5", "auroc", "success", "ndcg", "aucpr", "psnr", "ssim", "pck",
    "score↑",  # a score the log does not name, seen to go up (CatBoost's verbose lines: toolshapes)
} | RANKING  # fmt: skip
# Scores without a ceiling, though their readings fall under 100 (PSNR, in decibels): judged on their
# negative, not on what is left to gain
NO_CEILING = {"psnr"}
# Errors of a model's predictions against their targets (an RMSE, a word error rate): not a loss's other
# terms, nor its exponent (perplexity), nor a distance between distributions (FID)
PREDICTION_ERRORS = {"error", "err", "mse", "mae", "rmse", "rmsle", "msle", "mape", "wer", "cer", "epe"}
# Readings where lower is better besides the losses (a distance, an error rate, FID).
LOWER_BETTER = LOSS | PREDICTION_ERRORS | {
    "fid", "kid", "lpips", "dist", "distance", "perplexity", "ppl", "nloglik", "deviance", "bpd",
} | VAE_TERMS  # fmt: skip
# Readings only an evaluation pass computes (a detector's mAP, a translation's BLEU): said without a
# stage (Ultralytics' `metrics/mAP50(B)`, YOLO's console table `mAP50`), they are the held-out set's,
# not training's. (Not WER or CER: CTC scripts print a training batch's.)
EVALUATED = {
    "map",
    "map50",
    "map75",
    "ap",
    "ap50",
    "ap75",
    "bleu",
    "rouge",
    "cider",
    "meteor",
    "psnr",
    "ssim",
    "pck",
}
# Scores an evaluation computes, also when a training loop prints them without a stage: beside a loss
# that says none, they say its line is an evaluation's (FuxiCTR's `[Metrics] AUC: 0.93 - logloss: 0.28`)
EVALUATION_SCORES = EVALUATED | {"auc", "auroc", "gauc", "f1", "ndcg", "mrr"}
EPISODE = {"episode", "ep", "eprew", "episodic"}  # `ep_ret`, `mean 100 episode reward`
REWARD = {"reward", "rew", "return", "ret"}  # an episode's return is its summed reward (`AverageEpRet`)


# A `name: value` counts as a metric only when its name holds one of these tokens, so `ETA: 3`,
# `v_num=0` or `time: 12` are never taken for one.
METRIC_TOKENS = LOSS | ACC | LR | {
    "f1", "auc", "precision", "recall", "perplexity", "ppl", "mae", "mse", "rmse", "error", "err",
    "dice", "iou", "miou", "bleu", "rouge", "top1", "top5", "score", "map", "map50", "map75", "ap",
    "ap50", "ap75", "cer", "wer", "cos", "cosine", "similarity", "r2", "reward", "rew", "fid", "kid",
    "lpips", "return", "ret", "acc5", "auroc", "success",  # a goal-reaching agent's success rate
    "ndcg", "aucpr", "score↑", "mape", "rmsle", "msle", "nloglik", "deviance",  # boosting's metrics
    "psnr", "ssim",  # an image restorer's (super-resolution, denoising)
    "epe",  # optical flow's end-point error (RAFT's `epe=2.31`, `Validation Sintel EPE: 1.4`)
    "bpd",  # a density model's bits per dimension (FFJORD's and Glow's `Bit/dim 1.02`)
    "pck",  # a pose estimator's percentage of correct keypoints (mmpose's `pck/PCK@0.05: 0.43`)
} | RANKING | VAE_TERMS  # fmt: skip
# Tokens of a setting printed with the log (a config dump), never a reading.
SETTING_TOKENS = {
    "weight", "weights", "thresh", "threshold", "alpha", "gamma", "beta", "coef", "coeff", "factor",
    "scale", "type", "multiplier", "lambda", "eps", "momentum", "decay", "warmup", "scheduler", "policy",
    "gradnorm", "norm", "clip", "min", "max", "patience",
    "mult",  # a multiplier, abbreviated (Dassl's config dump: `BASE_LR_MULT: 0.1`)
    "variable",  # an environment variable echoed by the launcher (`HYDRA_FULL_ERROR=1`)
    "virtual",  # MCTS's `virtual_losses` (MLPerf MiniGo): a count set, not a loss measured
    "code", "hp", "smoothing",  # MLPerf's `ret_code`, `model_hp_loss_smoothing`
}  # fmt: skip
# Tokens of what a step cost, never how well the model does: verl's `timing_s/reward` is the seconds
# spent computing rewards, `perf/throughput` tokens per second.
COST_TOKENS = {"timing", "time", "throughput", "duration", "elapsed", "eta", "mfu", "seconds", "sec"}
# ...and what PaddlePaddle times as a cost: `avg_batch_cost: 0.379 sec`, `avg_reader_cost: 0.0002 sec`
_TIMED = {"batch", "reader", "ips"}
# A source file in a logger's prefix: DeepSpeed's `[loss_scaler.py:188:update_scale]` is no `loss` of 188.
SOURCE_TOKENS = {"py", "cpp", "cc", "cu", "hpp", "java", "rs"}
# The best reading so far (`Best Instance Accuracy`, `best_val_loss`, `val_best_loss`): a running record
# of another curve, flat by design, no reading of its own.
BEST_TOKENS = {"best"}
_NO_READING = SETTING_TOKENS | COST_TOKENS | SOURCE_TOKENS | BEST_TOKENS

_SPLIT = re.compile(r"[/_\-.\s:()\[\]{},]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z][a-z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[a-z])(?=[A-Z]{2})")


# readings named in the plural (`Mean Train Rewards`) are the same readings (not `losses`: minigo's
# `virtual_losses` is a setting)
_PLURALS = {
    "rewards": "reward",
    "returns": "return",
    "scores": "score",
    "errors": "error",
    "errs": "err",  # a char-RNN's `train_errs`, `valid_errs`: its cross-entropy at each record
    # a history kept as lists named for what they hold: `train_losses`, `val_aucs`, `accuracies`
    "losses": "loss",
    "accs": "acc",
    "accuracies": "accuracy",
    "aucs": "auc",
}


# `learning_rate`, `Learning Rate`, `learning-rate`, `LearningRate`: one token (tokens), as `lr` is
_LR_WORDS = r"learning[ _-]*rate"
_LEARNING_RATE = re.compile(_LR_WORDS, re.IGNORECASE)


# BasicSR names each loss term `l_` and the term (`l_pix`, `l_percep`, `l_g_gan`, `l_d_real`): a loss.
# Only its terms' words: `l_acc`, `l_step` or `l_epoch` is no loss
_L_LOSS = re.compile(
    r"(?:^|(?<=/))l_(?=(?:[gd]_)?(?:pix|pixel|percep|perceptual|style|gan|real|fake|total|fft|freq|tv|edge"
    r"|grad|feat|feature|adv|l1|l2|mse|charbonnier|kl|ce|vgg|cx|contextual)(?:_|$))"
)


@lru_cache(maxsize=4096)
def tokens(name: str) -> tuple[str, ...]:
    text = ALIASES.get(name.strip().lower(), name.strip())
    text = _LEARNING_RATE.sub("learningrate", text).replace("CrossEntropyLoss", "crossentropyloss")
    text = _NUMBERED_LOSS.sub(r"\1_\2", _L_LOSS.sub("loss_", text))
    # the PyTorch ImageNet example's `Acc@1`, `Acc@5`: acc1, acc5; a ranking's `NDCG@10`: ndcg at 10
    text = re.sub(r"(?i)(?:(?<=acc)|(?<=top))@(\d)", r"\1", text).replace("@", " ")
    toks = (_PLURALS.get(t, t) for t in _SPLIT.split(_CAMEL.sub(" ", text).lower()) if t)
    return tuple(part for t in toks for part in _run_in(t))


# a loss whose part is run into its name, all in lower case: a semi-supervised run's `lloss` and
# `uloss` (its labelled and unlabelled terms), a GAN's `gloss` and `dloss`, `trainloss`, `valloss`
# (the part, then `loss`); only these parts, not any word before `loss` (a column `closs` of counts);
# and a stage run into a score's or an error's name (pyKT's `validauc`, `validacc`; `testacc`)
_RUN_IN = re.compile(
    r"^(l|u|g|d|train|val|valid|test|eval|dev|total|rec|recon|kl|cls|reg|sup|unsup|adv|cont)(loss)$"
    r"|^(train|val|valid|test|eval|dev)(acc|accuracy|auc|f1|mae|mse|rmse|ppl|bleu)$"
)


def _run_in(token: str) -> tuple[str, ...]:
    m = _RUN_IN.match(token)
    return tuple(part for part in m.groups() if part) if m else (token,)


# a loss numbered in its name (USAD's `val_loss1`, `val_loss2`: its two autoencoders'): `loss` and the
# number, as `loss_1` is (not `l1`, `f1` or `acc1`, whose number is part of the name)
_NUMBERED_LOSS = re.compile(r"(?i)(loss)(\d+)$")


@lru_cache(maxsize=4096)
def stage_of(name: str) -> str | None:
    """train / val / test when the name says so."""
    toks = set(tokens(name))
    for stage, words in (("val", VAL), ("test", TEST), ("train", TRAIN)):
        if toks & words:
            return stage
    return None


def evaluated(name: str) -> bool:
    """Whether the name, saying no stage, is a reading only an evaluation computes (EVALUATED; not a
    loss named for one, `ap_loss`)."""
    toks = set(tokens(name))
    return stage_of(name) is None and bool(EVALUATED & toks) and not LOSS & toks


def evaluation_columns(names: list[str]) -> list[str]:
    """A table's column names, with a metric that says no stage named as the evaluation's when the
    table marks both its training and its validation columns (the Trainer's `Training Loss |
    Validation Loss | Accuracy`: the accuracy is what `compute_metrics` computed on the evaluation
    set). Where training columns go unmarked (Keras' `loss acc val_loss val_acc`), they are those."""
    stages = {stage_of(n) for n in names}
    if not {"train", "val"} <= stages:
        return names
    return [f"Validation {n}" if stage_of(n) is None and role(n) == "metric" else n for n in names]


# A column named for the rate its run used (a sweep's `learning_rate_0.005`, `lr=1e-3`): what it
# holds is that run's reading (a loss), not a rate; it keeps its name, and says no direction.
_RATE_NAMED = re.compile(rf"(?:lr|{_LR_WORDS})[_=: -]*(?:\d*\.\d+|\d+e-?\d+)", re.IGNORECASE)


@lru_cache(maxsize=4096)
def normalise(name: str, default_stage: str = "train") -> str:
    """The metric's name in the shared vocabulary; unknown metrics keep a cleaned name with the stage
    first (`val_f1`). A name that says no stage gets `default_stage` (a console line tagged `[val]`)."""
    toks = tokens(name)
    if not toks:
        return name
    if any(t in LR for t in toks) and not _RATE_NAMED.search(name):
        return "lr"  # also Lightning's LearningRateMonitor: `lr-Adam`, `lr-SGD/pg1`
    if len(toks) > 1 and toks[-1] == "value" and toks[-2] in METRIC_TOKENS:
        toks = toks[:-1]  # Megatron-LM's `lm loss value` is the loss (an RL critic's is `value loss`)
    stage = stage_of(name) or default_stage
    if stage == "train" and evaluated(name):
        stage = "val"
    rest = [t for t in toks if t not in VAL | TRAIN | TEST | NOISE]
    if len(rest) > 1 and rest[0] in LOSS and rest[-1] == rest[0] and "/" in name:
        rest = rest[1:]  # a group of losses named `Loss/`: TF's `Loss/total_loss`, `Loss/box_loss`
    if len(rest) == 1 and rest[0] in LOSS:
        return f"{stage}_loss"
    if len(rest) == 1 and rest[0] in ACC:
        return f"{stage}_acc"
    if rest == ["perplexity"]:  # OpenNMT writes `ppl:` for training, `Validation perplexity:`
        return f"{stage}_ppl"
    if not rest:
        return "_".join(toks)
    return f"{stage}_{'_'.join(rest)}"


def _setting(toks: set[str]) -> bool:
    """A setting's word in the name (`lr_policy`, `loss_weight`), but not an agent's `policy` beside a
    loss or an accuracy (AlphaZero's `policy_loss`, `policy_accuracy`: its policy head's readings)."""
    said = toks & _NO_READING
    return bool(said) and not (said == {"policy"} and bool(toks & (LOSS | ACC)))


@lru_cache(maxsize=4096)
def is_metric_name(name: str) -> bool:
    toks = tokens(name)
    return (
        bool(toks)
        and any(t in METRIC_TOKENS for t in toks)
        and not _setting(set(toks))
        and not ("w" in toks and not VAE_TERMS.isdisjoint(toks))  # `kl_w`: the KL term's weight, a setting
        and not ("cost" in toks and any(t in _TIMED for t in toks))
    )


@lru_cache(maxsize=4096)
def role(name: str) -> str:
    """'epoch', 'step' or 'metric' for a column name."""
    low = name.strip().lower()
    if low in EPOCH_COLUMNS:
        return "epoch"
    if low in STEP_COLUMNS:
        return "step"
    return "metric"


def rewarding(toks: set[str]) -> bool:
    """A reward by its name's tokens: a reward or return, or an episode's score (Udacity's and Gym's
    `Episode 100 Average Score`: a game's score is its return; a bare `score` may be FID)."""
    return bool(toks & REWARD) or ("score" in toks and bool(toks & EPISODE))


@lru_cache(maxsize=4096)
def direction(key: str) -> str | None:
    """ "up" when a normalised metric (`val_acc`, `train_cos`, `val_map50`) improves as it rises,
    "down" when it improves as it falls (a loss, an error, FID, a distance), None when its name does
    not say (`score`: a reward in one log, FID in the next)."""
    toks = set(key.split("_")[1:]) or {key}
    if toks & LOWER_BETTER:
        return "down"
    return "up" if toks & HIGHER_BETTER or rewarding(toks) else None


# A GAN's two players, by the words their losses carry (`D_A`, `d_loss`, `G_GAN`, `gen_loss`).
DISCRIMINATOR = {"d", "dis", "disc", "discriminator"}
GENERATOR = {"g", "gen", "generator"}
# The adversarial terms of a GAN's losses (`D_real`, `D_fake`, `G_GAN`, a WGAN critic's `D_real+fake`).
ADVERSARIAL = DISCRIMINATOR | {"critic", "fake", "real", "gan", "adv", "adversarial"}
# Losses of different networks trained against or beside each other (a GAN's discriminator and
# generator, an actor and its critic): each is its own objective, never a part of one sum.
PLAYERS = (
    DISCRIMINATOR | GENERATOR | {"adv", "adversarial", "critic", "actor", "value", "policy", "vf", "pi", "q"}
)


def component_of(key: str) -> tuple[str, str] | None:
    """(stage, part) when a normalised name is one part of a loss logged in parts: Ultralytics'
    `train_box_loss`, detectron2's `train_loss_cls`, YOLOX's `train_iou_loss`. Not a player's loss
    (`train_d_loss`: a discriminator's objective is no part of the generator's)."""
    parts = key.split("_")
    if len(parts) == 2 and parts[0] in ("train", "val", "test") and parts[1] in VAE_TERMS:
        return parts[0], parts[1]  # a VAE's `recon` and `kld`, named without `loss`
    if len(parts) != 3 or parts[0] not in ("train", "val", "test") or set(parts[1:]) & PLAYERS:
        return None
    if parts[2] in LOSS and parts[1] not in LOSS:
        return parts[0], parts[1]
    if parts[1] in LOSS and parts[2] not in LOSS:
        return parts[0], parts[2]
    return None


def export_tag(name: str) -> str:
    """The scalar a TensorBoard export (CSV or JSON) holds: the tag in its file name
    (`run-x-tag-train_return.csv`: `train_return`), else the file's name itself."""
    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return stem.split("-tag-", 1)[1] if "-tag-" in stem else stem
