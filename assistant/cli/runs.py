"""`assistant diagnose LOGFILE` and `assistant eval runs`: your own training run, read and explained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from assistant.cli.common import app, build_assistant, console, err, eval_app, friendly_errors, load_settings


@app.command()
def diagnose(
    logs: Annotated[
        list[str],
        typer.Argument(
            help="A training log (CSV, trainer_state.json, JSON lines, console text, a TensorBoard or "
            "MLflow run folder), or two to compare them. `-` reads a log from stdin."
        ),
    ],  # fmt: skip
    question: Annotated[str | None, typer.Option(help="Your own question about the run.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one object: the findings and the answer (as `ask --json`).")
    ] = False,
    no_answer: Annotated[
        bool,
        typer.Option("--no-answer", help="Only read the log(s) and say what the curves show (no model)."),
    ] = False,
    plot: Annotated[Path | None, typer.Option(help="Write the curves to this PNG file.")] = None,
) -> None:
    """Read a training run's log, say what its curves show (with the epochs and values), and answer
    from the documents what to do about it; with two logs, compare the runs. The findings are printed
    before the model is loaded (`--no-answer` stops there)."""
    import sys

    from assistant.runs.diagnose import diagnose as one_run
    from assistant.runs.diagnose import diagnose_pair
    from assistant.runs.parse import Limits

    if not 1 <= len(logs) <= 2:
        err.print("error: give one training log, or two to compare")
        raise typer.Exit(2)
    with friendly_errors():
        settings = load_settings()
        sources: list[str | Path] = [sys.stdin.read() if log == "-" else Path(log) for log in logs]
        kw = {
            "prompts_dir": settings.prompts_dir,
            "limits": Limits.from_settings(settings),
            "plot_path": plot,
            "draw": False,  # a terminal shows no picture: drawn only for --plot
        }
        d = (
            one_run(sources[0], question, None, **kw)
            if len(sources) == 1
            else diagnose_pair(*sources, question, None, **kw)
        )
        out = d.to_dict()
        if not as_json:
            _show_findings(d)
            if plot:
                console.print(f"[dim]curves written to {plot}[/]")
        if not no_answer:
            from assistant.cli.talk import _stream_answer

            a = build_assistant(index=True)  # only now: a bad file or --no-answer costs no model load
            if not as_json:
                console.print(f"[dim]asking: {d.question}[/]")
            d.answer = _stream_answer(a, d.question, [], show=not as_json)
            out["answer"] = d.answer.to_dict()
    if as_json:
        if no_answer:
            out.pop("answer", None)
        print(json.dumps(out, indent=2, ensure_ascii=False))
    elif not no_answer:
        from assistant.cli.talk import _show_sources

        _show_sources(d.answer)


def _show_real(real: dict[str, Any]) -> None:
    for half, r in real.items():
        if not r["logs"]:
            console.print(f"[bold]real logs, {half} half[/]: none of its {r['missing']} logs is here")
            continue
        left_out = f" ({r['missing']} not on this machine, left out)" if r["missing"] else ""
        agreed = "none to score" if r["agreement"] is None else f"{r['agreement']:.3f}"
        console.print(
            f"[bold]real logs, {half} half[/]: {r['logs']} logs{left_out}, {r['unambiguous']} unambiguous; "
            f"agreement with the labels {agreed}; "
            f"healthy runs flagged {len(r['healthy_flagged'])}"
        )
        table = Table(title=f"per format ({half})")
        for col in ("format", "logs", "read", "right curves", "swapped"):
            table.add_column(col)
        for name, m in sorted(r["formats"].items()):
            table.add_row(name, str(m["logs"]), str(m["read"]), str(m["right_curves"]), str(m["swapped"]))
        console.print(table)
        kinds = ", ".join(
            f"{k} P={m['precision']:.2f} R={m['recall']:.2f} (n={m['n']})"
            for k, m in r["kinds"].items()
            if m["n"] and m["precision"] is not None
        )
        console.print(f"  per kind: {kinds}")
        for row in r["rows"]:
            if not row["ambiguous"] and set(row["label"]) != set(row["got"]):
                console.print(
                    f"  {row['file']}: labelled {row['label']}, found {row['got']}", highlight=False
                )


def _show_findings(d: Any) -> None:
    runs = (
        [(d.run, d.findings)] if hasattr(d, "run") else list(zip(d.runs, d.comparison.findings, strict=True))
    )
    for run, findings in runs:
        console.print(f"[bold]{run.summary()}[/]")
        for note in run.notes:
            console.print(f"[dim]  note: {note}[/]", highlight=False)
        for f in findings:
            colour = "green" if f.kind == "healthy" else "yellow"
            console.print(f"[bold {colour}]{f.kind}[/] ({f.confidence}): {f.evidence}", highlight=False)
    if not hasattr(d, "run"):
        for sentence in d.comparison.summary:
            console.print(f"[bold]compared:[/] {sentence}", highlight=False)


@eval_app.command("runs")
def eval_runs_cmd(
    labels: Annotated[Path | None, typer.Option(help="labels.jsonl of a runs goldset.")] = None,
    llm: Annotated[
        bool, typer.Option("--llm/--no-llm", help="Also answer each diagnosis with the LLM (slow).")
    ] = True,
    detectors_only: Annotated[bool, typer.Option(help="Only the detectors (no index, no model).")] = False,
    real: Annotated[
        bool,
        typer.Option(
            "--real/--no-real",
            help="Also the real logs of tests/goldsets/real_runs, per half (when they are on this machine).",
        ),
    ] = True,
    present_only: Annotated[
        bool,
        typer.Option(
            "--present-only",
            help="Measure the real logs restored on this machine and say how many are missing, "
            "rather than refuse when some are.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Detector precision/recall per kind on the synthetic runs of tests/goldsets/runs and, per half,
    on the real logs of tests/goldsets/real_runs (per format: read, with the right curves); healthy runs
    flagged; and whether the diagnosis retrieves (and the answer cites) a unit about the problem."""
    from assistant.measure.evaluation import load_jsonl
    from assistant.measure.runs_eval import REAL_DIR, RUNS_DIR, eval_real, eval_runs

    with friendly_errors():
        a = None if detectors_only else build_assistant(index=True)
        report = eval_runs(
            a,
            labels or RUNS_DIR / "labels.jsonl",
            with_llm=llm,
            progress=lambda i, n: err.print(f"diagnosis {i}/{n}", end="\r"),
        )
        if real and (REAL_DIR / "logs").is_dir():
            halves = dict.fromkeys(i["half"] for i in load_jsonl(REAL_DIR / "labels.jsonl"))
            order = sorted(halves, key=lambda h: (h != "tune", h != "heldout"))  # then in order added
            report["real"] = {
                half: eval_real(REAL_DIR / "labels.jsonl", half, present_only=present_only) for half in order
            }
        elif real:
            report["real"] = f"not measured: {REAL_DIR / 'logs'} is not on this machine (see its README)"
    if as_json:
        print(json.dumps(report, indent=2))
        return
    if isinstance(report.get("real"), dict):
        _show_real(report["real"])
    elif real:
        console.print(f"[dim]real logs {report['real']}[/]")
    det = report["detectors"]
    table = Table(title=f"detectors on {det['logs']} logs from {det['runs']} runs")
    for col in ("kind", "logs showing it", "precision", "recall"):
        table.add_column(col)
    for kind, m in det["kinds"].items():
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        table.add_row(kind, str(m["n"]), fmt(m["precision"]), fmt(m["recall"]))
    console.print(table)
    console.print(
        "exact match per format: " + ", ".join(f"{k} {v:.2f}" for k, v in det["exact_match"].items())
    )
    console.print(f"healthy runs flagged: {len(det['healthy_flagged'])}")
    for w in det["wrong"]:
        console.print(f"  {w['file']}: expected {w['expected']}, got {w['got']}")
    ans = report.get("answers")
    if ans:
        k = next(key for key in ans if key.startswith("retrieved_expected@"))
        line = (
            f"diagnoses (n={ans['runs']}): an expected unit in the top {k.split('@')[1]} sources {ans[k]:.3f}"
        )
        if "cites_expected" in ans:
            line += f", cited in the answer {ans['cites_expected']:.3f} (abstained {ans['abstained']})"
        console.print(line)
        for r in ans["rows"]:
            if not r["retrieved"] or not r.get("cites_expected", True):
                console.print(f"  {r['run']} {r['kinds']}: top {r['top']} cited {r.get('cited')}")
