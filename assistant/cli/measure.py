"""`assistant eval …` and `assistant bench …`: quality and speed figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from assistant.cli.common import (
    bench_app,
    build_assistant,
    console,
    err,
    eval_app,
    friendly_errors,
    load_settings,
)


@eval_app.command("retrieval")
def eval_retrieval_cmd(
    goldset: Annotated[list[Path] | None, typer.Option(help="JSONL goldset(s).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """hit@1/3/5 and MRR of search on the goldsets, with the misses listed; then the relevance
    distributions abstention (`min_relevance`) is read from (no LLM)."""
    from assistant.measure.evaluation import GOLDSET_DIR, eval_abstention, eval_retrieval, load_jsonl

    with friendly_errors():
        a = build_assistant(index=True)
        files = goldset or [GOLDSET_DIR / "retrieval.jsonl", GOLDSET_DIR / "retrieval_heldout.jsonl"]
        out: dict[str, Any] = {}
        for path in files:
            ev = eval_retrieval(a, load_jsonl(path))
            out[path.name] = {**ev.metrics(), "misses": ev.misses}
        if not goldset:
            out["abstention"] = eval_abstention(a)
    if as_json:
        print(json.dumps(out, indent=2))
        return
    for name, res in out.items():
        if name == "abstention":
            continue
        console.print(
            f"[bold]{name}[/]: n={res['n']} hit@1={res['hit@1']:.3f} hit@3={res['hit@3']:.3f} "
            f"hit@5={res['hit@5']:.3f} MRR={res['mrr']:.3f}"
        )
        for m in res["misses"]:
            console.print(f"  miss (rank {m['rank']}): {m['question']!r} -> got {m['got'][0]!r}")
    if "abstention" in out:
        _print_abstention(out["abstention"])


def _print_abstention(ab: dict[str, Any]) -> None:
    """The best-source relevance distributions `min_relevance` is read from; who is on the wrong side."""
    table = Table(title=f"best-source relevance vs min_relevance = {ab['min_relevance']}")
    for col in ("split", "questions", "n", "min", "q10", "median", "q90", "max", "wrong side"):
        table.add_column(col)
    labels = {"answerable": "answerable", "far": "off-topic", "near": "near-domain"}
    for split in ("tuning", "held-out"):
        for kind, label in labels.items():
            d = ab[split][kind]
            cells = [str(d.get(q, "")) for q in ("min", "q10", "median", "q90", "max")]
            verb = "declined" if kind == "answerable" else "answered"
            table.add_row(split, label, str(d["n"]), *cells, f"{d['wrong_side']} {verb}")
    console.print(table)
    for split in ("tuning", "held-out"):
        for kind in labels:
            for w in ab[split][kind]["wrong"]:
                console.print(
                    f"  {split} {labels[kind]} on the wrong side: {w['relevance']:.3f} {w['question']!r}"
                )
    console.print(
        "suggested min_relevance (midpoint below the lowest answerable, tuning split): "
        f"{ab['tuning']['suggested_min_relevance']} "
        f"(held-out alone: {ab['held-out']['suggested_min_relevance']})"
    )


@eval_app.command("answers")
def eval_answers_cmd(
    limit: Annotated[int | None, typer.Option(help="Single questions to answer (default: 22).")] = 22,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the full report (rows included) here.")] = None,
    realistic: Annotated[
        str,
        typer.Option(help="Which half of the realistic questions to answer: tune, heldout, both or none."),
    ] = "heldout",
    dump: Annotated[
        Path | None, typer.Option(help="Write the realistic answers here (one file per half), for a judge.")
    ] = None,
) -> None:
    """Follow-up retrieval, cited-gold share, citation precision, abstention and latency, with the LLM;
    then the realistic questions (retrieval, declines), the entailment check on its labelled pairs, and
    the share of model-written sentences it lets through (README, Answers)."""
    from assistant.cli.realistic import HALVES, print_realistic, realistic_report
    from assistant.measure.evaluation import eval_answers

    halves = {"both": HALVES, "none": ()}.get(realistic, (realistic,))
    if any(h not in HALVES for h in halves):
        raise typer.BadParameter(f"--realistic: one of tune, heldout, both, none (not {realistic!r})")
    with friendly_errors():
        a = build_assistant(index=True)
        report = eval_answers(a, limit, progress=lambda what, i, n: err.print(f"{what} {i}/{n}", end="\r"))
        report["realistic"] = realistic_report(a, halves, dump)
    if out:
        out.write_text(json.dumps(report, indent=2))
    summary = {
        k: ({kk: vv for kk, vv in v.items() if kk not in ("rows", "values")} if isinstance(v, dict) else v)
        for k, v in report.items()
    }
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    ans, cal, lat = summary["answers"], summary["support_calibration"], summary["latency_ms"]
    console.print(f"[bold]{summary['model']}[/] on {summary['device']}")
    labels = {
        "follow_ups": "follow-ups with pronouns",
        "implicit_follow_ups": "implicit follow-ups",
        "standalone_switches": "standalone topic switches",
    }
    for key, label in labels.items():
        f = summary[key]
        console.print(
            f"{label} (n={f['n']}, {f['rewritten']} rewritten by the LLM): hit@1 {f['hit@1']:.3f}, "
            f"hit@3 {f['hit@3']:.3f} (standalone question alone: {f['standalone_only_hit@1']:.3f} / "
            f"{f['standalone_only_hit@3']:.3f}; no rewrite: hit@3 {f['without_rewrite_hit@3']:.3f})"
        )
    console.print(
        f"answers (n={ans['n']}): cite a gold unit {ans['cite_gold']:.3f}, "
        f"citation precision {ans['citation_precision']:.3f}, "
        f"no text {ans['no_text']} (retried {ans['retried']}), "
        f"unsupported sentences {ans['unsupported']} of {ans['cited_sentences']} cited"
    )
    for name in ("own", "other"):
        d = cal[name]
        console.print(
            f"support of answer sentences vs {'their gold unit' if name == 'own' else 'a random other unit'} "
            f"(n={d['n']}): "
            + ", ".join(f"{q} {d[q]}" for q in ("min", "q10", "q25", "median", "q75", "q90", "max") if q in d)
        )
    console.print(
        f"support_threshold {cal['support_threshold']}: "
        f"gold-unit support below it {cal['own_below_threshold']}, "
        f"other-unit support at or above it {cal['other_at_or_above_threshold']}"
    )
    _print_abstention(summary["abstention"])
    console.print("latency (median ms): " + ", ".join(f"{k} {v:.0f}" for k, v in lat.items()))
    print_realistic(report["realistic"])
    for k, v in summary["definitions"].items():
        console.print(f"[dim]{k}: {v}[/]")


@bench_app.command("retrieval")
def bench_retrieval_cmd(
    synthetic: Annotated[int, typer.Option(help="Units in the synthetic corpus (0: skip).")] = 10_000,
    repeat: Annotated[int, typer.Option(help="Passes over the goldset queries.")] = 3,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Query latency p50/p95 (query embedding included) and ingest throughput."""
    from assistant.measure.bench import bench_retrieval

    with friendly_errors():
        res = bench_retrieval(load_settings(), synthetic, repeat)
    if as_json:
        print(json.dumps(res, indent=2))
        return
    console.print(f"device: {res['device']}")
    for name in ("corpus", "synthetic"):
        if name in res:
            r = res[name]
            ingest_part = (
                f"ingest {r['ingest_units_per_s']:.1f} units/s ({r['ingest_s']:.1f} s); "
                if "ingest_units_per_s" in r
                else ""
            )
            console.print(
                f"[bold]{name}[/]: {r['units']} units, {r['vectors']} vectors; {ingest_part}"
                f"query p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms over {r['queries']} queries"
            )
            console.print(
                "  where a query's time goes (median ms): "
                + ", ".join(f"{k} {v}" for k, v in r["stages_p50_ms"].items())
            )


@bench_app.command("fusion")
def bench_fusion_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """hit@1 of the fusion variants (vector only, RRF, weighted; pieces vs keys) on both goldsets."""
    from assistant.measure.bench import bench_fusion

    with friendly_errors():
        res = bench_fusion(build_assistant(index=True))
    if as_json:
        print(json.dumps(res, indent=2))
        return
    table = Table(title="hit@1 by fusion variant")
    for col in ("variant", "retrieval.jsonl (tuning)", "retrieval_heldout.jsonl"):
        table.add_column(col)
    for name, row in res.items():
        table.add_row(name, f"{row['retrieval.jsonl']:.3f}", f"{row['retrieval_heldout.jsonl']:.3f}")
    console.print(table)


@bench_app.command("llm")
def bench_llm_cmd(
    prompt_tokens: Annotated[int, typer.Option(help="Prompt length.")] = 512,
    new_tokens: Annotated[int, typer.Option(help="Tokens generated per run (forced).")] = 64,
    runs: Annotated[int, typer.Option(help="Timed runs (median reported).")] = 5,
    random_model: Annotated[
        str | None, typer.Option(help="Randomly initialised Qwen2.5 of this preset's size (GPU benchmarks).")
    ] = None,
    quantize: Annotated[
        str | None,
        typer.Option(help="llm_quantize values to run back to back, e.g. `off,int8` (default: the setting)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Load time, first token, prefill and decode tokens/s: the engine against a bare model.generate."""
    from assistant.measure.bench_llm import bench_llm

    choices = [q.strip() for q in quantize.split(",") if q.strip()] if quantize else None
    bad = [q for q in choices or [] if q not in ("auto", "int8", "off")]
    if bad:
        console.print(f"[red]--quantize takes auto, int8 or off (comma-separated), not {', '.join(bad)}[/]")
        raise typer.Exit(2)
    with friendly_errors():
        res = bench_llm(
            load_settings(),
            prompt_tokens=prompt_tokens,
            new_tokens=new_tokens,
            runs=runs,
            random_model=random_model,
            quantize=choices,
        )
    if as_json:
        print(json.dumps(res, indent=2))
        return
    for one in res.get("runs", [res]):
        _print_bench_llm(one)
    if "int8_vs_off" in res:
        r = res["int8_vs_off"]
        console.print(f"[bold]int8/off[/] (engine, same run): decode {r['decode']}x, prefill {r['prefill']}x")


def _print_bench_llm(res: dict[str, Any]) -> None:
    console.print(
        f"{res['model']} on {res['device']} ({res['dtype']}, quantization {res['quantization']}, "
        f"fast path {res['fast_path']}), loaded in {res['load_s']} s; "
        f"prompt {res['prompt_tokens']} tokens, {res['new_tokens']} new"
    )
    table = Table()
    for col in ("", "first token ms", "prefill tok/s", "decode tok/s"):
        table.add_column(col)
    for who in ("engine", "bare"):
        table.add_row(
            who, str(res[f"{who}_ttft_ms"]), str(res[f"{who}_prefill_tps"]), str(res[f"{who}_decode_tps"])
        )
    console.print(table)
    if "batched" in res:
        b = res["batched"]
        console.print(
            f"one user alone with batching on ({res['batching']}): first token {b['ttft_ms']} ms, "
            f"decode {b['decode_tps']} tok/s = {b['decode_vs_serial']}x the one-at-a-time engine (floor 0.9)"
        )
    console.print(
        f"decode ratio engine/bare {res['decode_ratio']} (floor 0.95; one at a time); "
        f"first-token delta {res['ttft_delta_ms']} ms (floor +50); "
        f"memory-bandwidth bound: {res['model_gb']} GB of weights at "
        f"{res['measured_bandwidth_gbs']} GB/s measured = {res['decode_bound_tps']} tok/s"
    )


@bench_app.command("serve")
def bench_serve_cmd(
    users: Annotated[str, typer.Option(help="Numbers of users at once, comma-separated.")] = "1,2,4,8",
    url: Annotated[
        str | None, typer.Option(help="Measure this running app as it is (default: start it, on then off).")
    ] = None,
    modes: Annotated[
        str, typer.Option(help="llm_batching values to start the app with, in order.")
    ] = "on,off",
    max_new_tokens: Annotated[int, typer.Option(help="Answer length cap for the started app.")] = 96,
    alone: Annotated[
        int, typer.Option(help="Questions asked by one user alone, in turn (the lone figures are medians).")
    ] = 4,
    prefix_cache: Annotated[
        bool,
        typer.Option(
            help="Start the app with llm_prefix_cache on, as it ships; every run then asks new questions."
        ),
    ] = True,
    plot: Annotated[Path | None, typer.Option(help="PNG of first token and decode rate vs users.")] = Path(
        "docs/serve.png"
    ),
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Many users at once through the web app's /ask API: first token p50/p95, decode rate, wall time."""
    from assistant.measure.load import bench_serve

    try:
        counts = sorted({int(n) for n in users.split(",") if n.strip()})
    except ValueError:
        counts = []
    picked = tuple(m.strip() for m in modes.split(",") if m.strip())
    if not counts or min(counts) < 1 or alone < 1 or any(m not in ("auto", "on", "off") for m in picked):
        err.print(
            "[bold red]error:[/] --users takes numbers like 1,2,4,8; --modes takes auto, on, off; "
            "--alone takes a number >= 1"
        )
        raise typer.Exit(2)
    with friendly_errors():
        res = bench_serve(
            counts,
            url=url,
            modes=picked,
            max_new_tokens=max_new_tokens,
            plot=plot,
            alone=alone,
            prefix_cache=prefix_cache,
        )
    if as_json:
        print(json.dumps(res, indent=2))
        return
    table = Table(title=f"{res['max_new_tokens']} new tokens at most per answer")
    for col in ("batching", "users", "first token p50 s", "p95 s", "max s", "wall s", "tokens/s (all)"):
        table.add_column(col)
    for mode, rows in res["runs"].items():
        for r in rows:
            table.add_row(
                mode,
                str(r["users"]),
                str(r["first_token_p50_s"]),
                str(r["first_token_p95_s"]),
                str(r["first_token_max_s"]),
                str(r["wall_s"]),
                str(r["aggregate_tokens_per_s"]),
            )
    console.print(table)
    for line in res.get("floors", []):
        console.print(line)
    if "plot" in res:
        console.print(f"plot: {res['plot']}")


@bench_app.command("browser")
def bench_browser_cmd(
    url: Annotated[str | None, typer.Option(help="A running app (default: start one).")] = None,
    questions: Annotated[int, typer.Option(help="Answers measured, after one warm-up.")] = 3,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Decode rate seen in a real Chromium page against the engine's own rate for the same answers."""
    from assistant.measure.browser import bench_browser

    with friendly_errors():
        res = bench_browser(url, questions)
    if as_json:
        print(json.dumps(res, indent=2))
        return
    for r in res["rows"]:
        console.print(
            f"{r['tokens']} tokens: page {r['page_decode_tps']} tok/s, engine {r['engine_decode_tps']} tok/s "
            f"({r['seconds']} s) — {r['question']}"
        )
    console.print(f"page / engine decode rate (median): {res['page_vs_engine']} (floor 0.9)")


@bench_app.command("parse")
def bench_parse_cmd(
    small: Annotated[int, typer.Option(help="Length of the shorter line, in characters.")] = 32_000,
    large: Annotated[
        int, typer.Option(help="Length of the longer line (256 KB is the most read).")
    ] = 256_000,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Seconds to read a log whose long lines have each shape that once made reading quadratic, at
    two lengths: linear reading keeps the ratio of the times near the ratio of the lengths."""
    from assistant.measure.parse_bench import bench_parse

    rows = bench_parse((small, large))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"reading a log with long lines ({small:,} and {large:,} characters)")
    for col in ("line of", "what it stands for", f"{small:,} (s)", f"{large:,} (s)", "ratio"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            repr(r["shape"]), r["what"], f"{r['small_s']:.3f}", f"{r['large_s']:.3f}", f"{r['ratio']:.1f}"
        )
    console.print(table)
