"""`assistant eval runs`: the detectors and the diagnosis answers on the runs goldset.

tests/goldsets/runs/labels.jsonl names, for each log, the kinds its curves show (decided by looking
at them) and the corpus units that talk about those problems ({source, start of the question}).
Reported: per-kind precision/recall of the detectors over every log, healthy runs flagged, per-format
exact-match rate; then, per run, whether retrieval for the diagnosis question puts one of those units
in the sources the model is given, and (with the LLM) whether the answer cites one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.measure.evaluation import GOLDSET_DIR, is_gold, load_jsonl
from assistant.runs import KINDS, detect, parse_run
from assistant.runs.diagnose import build_question

RUNS_DIR = GOLDSET_DIR / "runs"


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
