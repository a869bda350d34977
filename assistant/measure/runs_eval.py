"""`assistant eval runs`: the detectors and the diagnosis answers on the runs goldsets.

Two sets. tests/goldsets/runs (synthetic: our own scripts trained tiny models with good and bad
settings) names, for each log, the kinds its curves show and the corpus units about those problems.
tests/goldsets/real_runs (logs other people committed; labels from two independent readings, split by
repository into a tuning and a held-out half; README there) adds, per log, the series a reader takes
for the training and the held-out loss, so each format is checked for reading the right curves.
Reported: per-kind precision/recall, healthy runs flagged, per-format agreement; for the real set per
half; then, per synthetic run, whether retrieval for the diagnosis question puts one of the expected
units in the sources the model is given, and (with the LLM) whether the answer cites one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.measure.evaluation import GOLDSET_DIR, is_gold, load_jsonl
from assistant.runs import KINDS, RunParseError, detect, parse_run
from assistant.runs.diagnose import build_question
from assistant.runs.parse.names import NOISE, TEST, TRAIN, VAL, normalise, stage_of, tokens

RUNS_DIR = GOLDSET_DIR / "runs"
REAL_DIR = GOLDSET_DIR / "real_runs"


def eval_detectors(labels: list[dict[str, Any]], root: Path = RUNS_DIR) -> dict[str, Any]:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    per_format: dict[str, list[bool]] = {}
    healthy_flagged, wrong = [], []
    found_by_file: dict[str, list[Any]] = {}
    for item in labels:
        findings = detect(parse_run(root / item["file"]))
        found_by_file[item["file"]] = findings
        got, want = {f.kind for f in findings}, set(item["kinds"])
        for k in got & want:
            tp[k] += 1
        for k in got - want:
            fp[k] += 1
        for k in want - got:
            fn[k] += 1
        per_format.setdefault(item["format"], []).append(got == want)
        if want == {"healthy"} and got != want:
            healthy_flagged.append(item["file"])
        if got != want:
            wrong.append({"file": item["file"], "expected": sorted(want), "got": sorted(got)})
    kinds = {}
    for k in KINDS:
        n = tp[k] + fn[k]
        kinds[k] = {
            "n": n,
            "precision": tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else None,
            "recall": tp[k] / n if n else None,
        }
    return {
        "logs": len(labels),
        "runs": len({item["run"] for item in labels}),
        "kinds": kinds,
        "exact_match": {fmt: sum(v) / len(v) for fmt, v in sorted(per_format.items())},
        "healthy_flagged": healthy_flagged,
        "wrong": wrong,
        "_findings": found_by_file,
    }


def _names(label: str | None) -> set[str]:
    """A label's series names, normalised (`train/loss` and `train_loss` are one name); `none` names
    no series."""
    return {normalise(n) for n in _listed(label)}


def _listed(label: str | None) -> list[str]:
    return [n.strip() for n in (label or "").split(",") if n.strip() and n.strip().lower() != "none"]


def _series(label: str | None, stage: str) -> set[str]:
    """Each named series as `stage_words`: its own stage (validation and test alike: held out), or the
    one the label gives it when its name says none (`logloss` named as the held-out loss is the one on
    the `eval info:` lines), and its words without the stage's; loss synonyms are not merged, so
    `logloss` and `total_loss` stay two series."""
    out = set()
    for name in _listed(label):
        own = stage_of(name) or stage
        words = [t for t in tokens(name) if t not in TRAIN | VAL | TEST | NOISE]
        out.add(f"{'train' if own == 'train' else 'held'}_{'_'.join(words)}")
    return out


def _curves_right(run: Any, item: dict[str, Any]) -> tuple[bool, bool]:
    """(the training and held-out curves are the ones a reader takes, neither swapped): the log's own
    name for each of our train_loss / val_loss, against the labelled names."""
    want_train, want_val = _series(item.get("train_loss"), "train"), _series(item.get("val_loss"), "val")
    got_train = _series(run.sources.get("train_loss", "").replace(" + ", ","), "train")
    got_val = _series(run.sources.get("val_loss", "").replace(" + ", ","), "val")
    swapped = bool(got_train & want_val) or bool(got_val & want_train)
    train_ok = got_train <= want_train if want_train else not got_train
    # a held-out score the reader named (a validation mIoU, a ROC-AUC) is right when the tool, taking
    # no held-out loss, read that score as the held-out set's
    # (a test curve is read as the validation one when there is none: `test_acc` is `val_acc` then)
    held = {n for n in _names(item.get("val_loss")) if stage_of(n) in ("val", "test")}
    scores = (held | {"val_" + n.removeprefix("test_") for n in held if n.startswith("test_")}) & set(
        run.metrics
    )
    val_ok = bool(got_val & want_val or (not got_val and scores)) if want_val else not got_val
    return train_ok and val_ok and not swapped, not swapped


def eval_real(
    labels_path: Path = REAL_DIR / "labels.jsonl", half: str | None = None, present_only: bool = False
) -> dict[str, Any]:
    """The detectors on real logs: per format, how many were read (a log without a curve counts as
    read when it is refused with its reason) and with the right curves; per kind precision/recall on
    the logs both readers agree on; healthy runs flagged. The logs are not committed, and restoring
    them all takes more repositories than one session may fetch: `present_only` measures those on
    this machine and says how many were left out (`missing`), rather than refusing."""
    root = labels_path.parent
    items = [i for i in load_jsonl(labels_path) if half in (None, i["half"])]
    missing = {i["file"] for i in items if not (root / i["file"]).exists()}
    if missing and not present_only:
        raise FileNotFoundError(
            f"{len(missing)} real logs are not on this machine ({min(missing)}, …): they are not committed "
            f"(see {root / 'README.md'}); restore them from origins.jsonl first, or measure those that "
            "are here with --present-only"
        )
    items = [i for i in items if i["file"] not in missing]
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    per_format: dict[str, dict[str, int]] = {}
    rows, healthy_flagged = [], []
    for item in items:
        fmt = per_format.setdefault(item["format"], {"logs": 0, "read": 0, "right_curves": 0, "swapped": 0})
        fmt["logs"] += 1
        want = set(item["kinds"] or [])
        try:
            run = parse_run(root / item["file"].rstrip("/"))
        except RunParseError as exc:
            got, reason = {"no_metrics"}, str(exc)
            fmt["read"] += want == {"no_metrics"}  # refused with its reason: read right
            fmt["right_curves"] += want == {"no_metrics"}
        else:
            got, reason = {f.kind for f in detect(run)}, ""
            right, not_swapped = _curves_right(run, item)
            fmt["read"] += 1
            fmt["right_curves"] += right
            fmt["swapped"] += not not_swapped
        row = {"file": item["file"], "half": item["half"], "label": sorted(want), "got": sorted(got)}
        row["ambiguous"] = item["ambiguous"]
        if reason:
            row["refused"] = reason[:160]
        rows.append(row)
        if item["ambiguous"]:
            continue
        for k in got & want:
            tp[k] += 1
        for k in got - want:
            fp[k] += 1
        for k in want - got:
            fn[k] += 1
        if want == {"healthy"} and got != want:
            healthy_flagged.append(item["file"])
    scored = [r for r in rows if not r["ambiguous"]]
    kinds = {
        k: {
            "n": tp[k] + fn[k],
            "precision": tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else None,
            "recall": tp[k] / (tp[k] + fn[k]) if tp[k] + fn[k] else None,
        }
        for k in (*KINDS, "no_metrics")
    }
    return {
        "half": half or "both",
        "logs": len(items),
        "missing": len(missing),
        "unambiguous": len(scored),
        # none scored (every log here ambiguous, or none here): no figure, rather than a 0.0 that reads
        # as every log judged wrong
        "agreement": sum(set(r["label"]) == set(r["got"]) for r in scored) / len(scored) if scored else None,
        "kinds": kinds,
        "formats": per_format,
        "healthy_flagged": healthy_flagged,
        "rows": rows,
    }


def eval_answers(
    assistant: Any,
    labels: list[dict[str, Any]],
    findings_by_file: dict[str, list[Any]],
    *,
    with_llm: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """One diagnosis per run (its logs in other formats give the same findings, hence the same
    question): is an expected unit among the sources retrieved, and among those the answer cites?"""
    per_run: dict[str, dict[str, Any]] = {}
    for item in labels:
        per_run.setdefault(item["run"], item)
    rows = []
    k = assistant.settings.sources_k
    for i, (run, item) in enumerate(per_run.items(), 1):
        question = build_question(findings_by_file[item["file"]], None, assistant.settings.prompts_dir)
        hits = assistant.search(question, k=k)
        row: dict[str, Any] = {
            "run": run,
            "kinds": item["kinds"],
            "question": question,
            "retrieved": any(is_gold(h, item["units"]) for h in hits),
            "top": [h.title[:60] for h in hits],
        }
        if with_llm:
            ans = assistant.ask(question)
            row["abstained"] = ans.abstained
            row["cites_expected"] = any(is_gold(s, item["units"]) for s in ans.sources)
            row["cited"] = [s.title[:60] for s in ans.sources]
        rows.append(row)
        if progress:
            progress(i, len(per_run))
    out: dict[str, Any] = {
        "runs": len(rows),
        f"retrieved_expected@{k}": sum(r["retrieved"] for r in rows) / max(len(rows), 1),
        "rows": rows,
    }
    if with_llm:
        out["cites_expected"] = sum(r["cites_expected"] for r in rows) / max(len(rows), 1)
        out["abstained"] = sum(r["abstained"] for r in rows)
    return out


def eval_runs(
    assistant: Any | None,
    labels_path: Path = RUNS_DIR / "labels.jsonl",
    *,
    with_llm: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Detector figures always; answer figures when an assistant is given."""
    labels = load_jsonl(labels_path)
    det = eval_detectors(labels, labels_path.parent)
    findings = det.pop("_findings")
    report: dict[str, Any] = {"detectors": det}
    if assistant is not None:
        report["answers"] = eval_answers(assistant, labels, findings, with_llm=with_llm, progress=progress)
    return report
