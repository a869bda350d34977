"""`assistant eval checker`, and the realistic part of `assistant eval answers`: figures on what nobody
here wrote (assistant/measure/realistic.py), per half."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from assistant.cli.common import build_assistant, console, eval_app, friendly_errors

HALVES = ("tune", "heldout")


def realistic_report(assistant: Any, answer_halves: tuple[str, ...], dump: Path | None) -> dict[str, Any]:
    from assistant.measure.realistic import (
        eval_checker,
        eval_realistic_retrieval,
        eval_written,
        labelled_pairs,
    )

    report: dict[str, Any] = {"retrieval": {h: eval_realistic_retrieval(assistant, h) for h in HALVES}}
    if labelled_pairs():
        report["checker"] = {h: eval_checker(assistant, h) for h in HALVES}
    report["written"] = {
        h: eval_written(assistant, h, dump.with_name(f"{dump.stem}-{h}{dump.suffix}") if dump else None)
        for h in answer_halves
    }
    return report


def print_realistic(report: dict[str, Any]) -> None:
    for half, r in report["retrieval"].items():
        console.print(
            f"realistic questions, {half} (n={r['answerable']} answerable, {r['near_miss']} near-miss): "
            f"hit@1 {r['hit@1']:.3f}, hit@3 {r['hit@3']:.3f}; answerable declined "
            f"{len(r['answerable_declined'])}/{r['answerable']}, near-miss declined "
            f"{r['near_miss_declined']}/{r['near_miss']}"
        )
    for half, c in report.get("checker", {}).items():
        w = c["without_llm"]
        console.print(
            f"checker, {half} ({c['pairs']} labelled pairs {c['by_label']}; threshold {c['threshold']}): "
            f"recall of unsupported/contradicted {c['recall_faulty']:.3f} at precision {c['precision']:.3f} "
            f"(supported rejected {c['supported_rejected']}, partial rejected {c['partial_rejected']}); "
            f"without the LLM's reading: {w['recall_faulty']:.3f} at {w['precision']:.3f}"
        )
    for half, w in report["written"].items():
        console.print(
            f"answers, {half} (n={w['answers']}): model-written sentences shown {w['written_shown']}, "
            f"left out {w['written_left_out']} (accepted {w['accepted_share']:.3f}); "
            f"median first token {w['first_token_ms_median']:.0f} ms"
        )


@eval_app.command("checker")
def eval_checker_cmd(
    fit: Annotated[
        bool, typer.Option("--fit", help="Refit the check on the tuning half and write its weights first.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Precision and recall of the entailment check on the labelled pairs of tests/goldsets/entailment,
    per half (with and without the LLM's reading)."""
    from assistant.chat.entailment import WEIGHTS
    from assistant.measure.realistic import eval_checker, fit_checker

    with friendly_errors():
        a = build_assistant(index=True)
        out: dict[str, Any] = {}
        if fit:
            out["fitted"] = weights = fit_checker(a, WEIGHTS)
            a.chain.entailment.weights = weights
            a.settings.entail_threshold = weights["threshold"]
        out.update({h: eval_checker(a, h) for h in HALVES})
    if as_json:
        print(json.dumps(out, indent=2))
        return
    if fit:
        console.print(f"fitted: {json.dumps(out.pop('fitted'))}")
    print_realistic({"retrieval": {}, "checker": out, "written": {}})
