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
    logfile: Annotated[
        str,
        typer.Argument(
            help="A training log: CSV, trainer_state.json, JSON lines, console text, or a "
            "TensorBoard folder / event file. `-` reads the log from stdin."
        ),
    ],  # fmt: skip
    question: Annotated[str | None, typer.Option(help="Your own question about the run.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one object: findings and the answer (as `ask --json`).")
    ] = False,
    plot: Annotated[Path | None, typer.Option(help="Write the curves to this PNG file.")] = None,
) -> None:
    """Read a training run's log, say what its curves show (with the epochs and values), and answer
    from the documents what to do about it."""
    import sys

    from assistant.cli.talk import _show_sources, _stream_answer
    from assistant.runs.diagnose import diagnose as run_diagnosis
    from assistant.runs.parse import Limits

    def ask(q: str) -> Any:
        a = build_assistant(index=True)  # only once the log has been read: a bad file costs no model load
        if not as_json:
            console.print(f"[dim]asking: {q}[/]")
        return _stream_answer(a, q, [], show=not as_json)

    def show_findings(d: Any) -> None:
        console.print(f"[bold]{d.run.summary()}[/]")
        for f in d.findings:
            colour = "green" if f.kind == "healthy" else "yellow"
            console.print(f"[bold {colour}]{f.kind}[/]: {f.evidence}", highlight=False)

    with friendly_errors():
        settings = load_settings()
        source: str | Path = sys.stdin.read() if logfile == "-" else Path(logfile)
        limits = Limits.from_settings(settings)
        if not as_json:
            # findings first, then the streamed answer: parse and detect without asking, then ask
            d = run_diagnosis(source, question, None, prompts_dir=settings.prompts_dir, limits=limits,
                              plot_path=plot)  # fmt: skip
            show_findings(d)
            if plot:
                console.print(f"[dim]curves written to {plot}[/]")
            d.answer = ask(d.question)
        else:
            d = run_diagnosis(source, question, ask, prompts_dir=settings.prompts_dir, limits=limits,
                              plot_path=plot)  # fmt: skip
    if as_json:
        out = d.to_dict()
        keys = ("findings", "answer", "run", "question", "plot")
        print(json.dumps({k: out[k] for k in keys}, indent=2, ensure_ascii=False))
    else:
        _show_sources(d.answer)


@eval_app.command("runs")
def eval_runs_cmd(
    labels: Annotated[Path | None, typer.Option(help="labels.jsonl of a runs goldset.")] = None,
    llm: Annotated[
        bool, typer.Option("--llm/--no-llm", help="Also answer each diagnosis with the LLM (slow).")
    ] = True,
    detectors_only: Annotated[bool, typer.Option(help="Only the detectors (no index, no model).")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Detector precision/recall per kind on tests/goldsets/runs, healthy runs flagged, and whether
    the diagnosis retrieves (and the answer cites) a unit about the problem."""
    from assistant.measure.runs_eval import RUNS_DIR, eval_runs

    with friendly_errors():
        a = None if detectors_only else build_assistant(index=True)
        report = eval_runs(
            a,
            labels or RUNS_DIR / "labels.jsonl",
            with_llm=llm,
            progress=lambda i, n: err.print(f"diagnosis {i}/{n}", end="\r"),
        )
    if as_json:
        print(json.dumps(report, indent=2))
        return
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
