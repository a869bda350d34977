"""Command line: `assistant ingest|search|config|doctor|eval|bench` (also `python -m assistant`)."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from assistant.offline import apply_offline_env, offline_state

apply_offline_env()

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
eval_app = typer.Typer(help="Quality on the goldsets in tests/goldsets.")
bench_app = typer.Typer(help="Speed figures (printed, never asserted).")
app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")
console = Console()
err = Console(stderr=True)


@app.callback()
def main(
    config: Annotated[Path | None, typer.Option(help="TOML settings file (else $ASSISTANT_CONFIG).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    if config is not None:
        os.environ["ASSISTANT_CONFIG"] = str(config)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )
    for noisy in ("chromadb", "httpx", "sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose else logging.ERROR)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Known failures print one clear line and exit 2 instead of a traceback."""
    from assistant.knowledge.corpus import LoadError
    from assistant.knowledge.embedder import ModelHashError
    from assistant.knowledge.index import IndexMismatchError

    try:
        yield
    except (
        ValueError,
        FileNotFoundError,
        LoadError,
        ModelHashError,
        IndexMismatchError,
        RuntimeError,
    ) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _settings() -> Any:
    from assistant.settings import Settings

    return Settings()


def _assistant(index: bool = False) -> Any:
    """The Assistant from settings; with `index`, the corpus is indexed first if the store is empty."""
    from assistant.core import Assistant

    a = Assistant(_settings())
    if index and a.store.count() == 0:
        _print_report(a.ingest(progress=sys.stderr.isatty()))
    return a


def _print_report(report: Any) -> None:
    for name, why in report.skipped:
        err.print(f"[yellow]skipped[/] {name}: {why}")
    for name, why in report.dropped:  # a rebuild could not bring these back
        err.print(f"[yellow]dropped[/] {name}: {why}")
    console.print(report.summary())


@app.command()
def ingest(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders (default: the corpus).")
    ] = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            help="Drop the index and build it again (these paths plus every file indexed from this data "
            "directory, uploads included; what cannot come back is listed as dropped)."
        ),
    ] = False,
) -> None:
    """Index files into the Chroma store; unchanged files are skipped, changed ones replaced."""
    with friendly_errors():
        a = _assistant()
        _print_report(a.ingest(paths or None, rebuild=rebuild, progress=sys.stderr.isatty()))


def _show_results(results: list[Any]) -> None:
    table = Table(show_lines=True)
    for col in ("#", "score", "source", "question", "passage"):
        table.add_column(col, overflow="fold")
    for i, r in enumerate(results, 1):
        passage = r.passage if len(r.passage) < 400 else r.passage[:400] + "…"
        table.add_row(str(i), f"{r.score:.3f}", r.source, r.title, passage)
    console.print(table)


@app.command()
def search(
    query: Annotated[
        str | None, typer.Argument(help="What to look for; omit for an interactive prompt.")
    ] = None,
    k: Annotated[int | None, typer.Option("-k", help="Number of results.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """Hybrid (BM25 + vector) search over the indexed units."""
    with friendly_errors():
        a = _assistant(index=True)
        if query is not None:
            results = a.search(query, k)
            if as_json:
                print(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
            else:
                _show_results(results)
            return
    console.print("[bold]Search the deep-learning Q&A corpus[/] (empty line or Ctrl-D to quit)")
    while True:
        try:
            query = console.input("[cyan]? [/]").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not query:
            break
        with friendly_errors():
            _show_results(a.search(query, k))


def _stream_answer(a: Any, question: str, history: list[dict[str, Any]], show: bool = True) -> Any:
    """Print the answer as it streams, then its final form if citations were settled afterwards."""
    from assistant.chat.chain import Answer

    streamed = ""
    final = None
    for item in a.ask_stream(question, history):
        if isinstance(item, Answer):
            final = item
        elif show and isinstance(item, str):
            streamed += item
            console.print(item, end="", markup=False, highlight=False, soft_wrap=True)
    if show:
        console.print()
        if final is not None and final.answer.strip() != streamed.strip():
            console.print("[dim]with citations checked:[/]")
            console.print(final.answer, markup=False, highlight=False)
    return final


def _show_sources(ans: Any) -> None:
    for note in ans.notices:
        err.print(f"[yellow]note:[/] {note}")
    if ans.abstained:
        return
    for s in ans.sources:
        console.print(f"[bold][{s.n}][/] {s.title} [dim]({s.source}, relevance {s.score:.2f})[/]")
        if s.span:
            console.print(f"    [italic]“{s.span}”[/]", highlight=False)
    if ans.consulted:
        console.print(
            "[dim]also consulted: " + "; ".join(f"[{s.n}] {s.title}" for s in ans.consulted) + "[/]"
        )
    for u in ans.unsupported:
        console.print(f"[red]not supported by its source:[/] {u['sentence']}")
    t = ans.timings
    console.print(
        f"[dim]retrieval {t.get('retrieve_ms', 0):.0f} ms, rewrite {t.get('rewrite_ms', 0):.0f} ms, "
        f"first token {t.get('first_token_ms', 0):.0f} ms, {t.get('tokens_per_s', 0):.1f} tokens/s[/]"
    )


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    history: Annotated[
        Path | None, typer.Option(help="JSON file: a list of {role, content} messages.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole Answer as JSON.")] = False,
) -> None:
    """Answer one question from the documents, streaming, then list the cited sources."""
    with friendly_errors():
        past = json.loads(history.read_text()) if history else []
        a = _assistant(index=True)
        ans = _stream_answer(a, question, past, show=not as_json)
    if as_json:
        print(json.dumps(ans.to_dict(), indent=2, ensure_ascii=False))
    else:
        _show_sources(ans)


@app.command()
def chat() -> None:
    """A conversation in the terminal: follow-up questions keep their context."""
    with friendly_errors():
        a = _assistant(index=True)
    console.print("[bold]Ask about a training problem[/] (empty line or Ctrl-D to quit)")
    history: list[dict[str, Any]] = []
    while True:
        try:
            question = console.input("[cyan]you> [/]").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not question:
            break
        with friendly_errors():
            ans = _stream_answer(a, question, history)
            _show_sources(ans)
            history += [{"role": "user", "content": question}, {"role": "assistant", "content": ans.answer}]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (default: settings.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings.port).")] = None,
    model: Annotated[
        str | None, typer.Option(help="LLM preset, folder or .gguf (default: llm_model).")
    ] = None,
) -> None:
    """Start the web app: indexes what changed, loads the model, serves the chat UI."""
    from assistant.web.app import serve as run_app

    overrides = {k: v for k, v in {"host": host, "port": port, "llm_model": model}.items() if v is not None}
    with friendly_errors():
        settings = _settings().model_copy(update=overrides)
        console.print(f"Starting on http://{settings.host}:{settings.port} (Ctrl-C to stop)…")
        run_app(settings)


@app.command("config")
def show_config() -> None:
    """Print the effective settings, where they may come from, and what each means."""
    from assistant.settings import config_file

    with friendly_errors():
        s = _settings()
    path = config_file()
    console.print(f"config file: {path or '(none)'}; environment variables: ASSISTANT_<NAME>")
    table = Table()
    for col in ("setting", "value", "description"):
        table.add_column(col, overflow="fold")
    for name, value, desc in s.describe():
        table.add_row(name, str(value), desc)
    console.print(table)


@app.command()
def doctor() -> None:
    """Versions, device, model files and hash status, index statistics, offline state."""
    import importlib.metadata as md
    import platform

    rows: list[tuple[str, str]] = [("python", platform.python_version())]
    for pkg in (
        "torch",
        "transformers",
        "accelerate",
        "sentence-transformers",
        "chromadb",
        "langchain-core",
        "gradio",
    ):
        try:
            rows.append((pkg, md.version(pkg)))
        except md.PackageNotFoundError:
            rows.append((pkg, "not installed"))
    import torch

    rows.append(("cuda", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available"))
    rows += [(k, str(v)) for k, v in offline_state().items()]
    ok = True
    try:
        from assistant.llm.batching import batching_plan
        from assistant.llm.models import resolve_model

        settings = _settings()
        if settings.llm_url:
            rows += [
                (
                    "llm.remote",
                    f"{settings.llm_remote_model or '(the only model listed)'} at {settings.llm_url}",
                )
            ]
        else:
            source = resolve_model(settings)
            rows += [("llm.model", source.name), ("llm.source", source.kind), ("llm.why", source.reason)]
            use, why = batching_plan(settings, None, "cuda" if torch.cuda.is_available() else "cpu")
            rows.append(("llm.batching", f"{'on' if use else 'off'} ({why})"))
            rows += _llm_precision_rows(settings)
    except Exception as exc:  # noqa: BLE001
        ok = False
        rows.append(("llm problem", str(exc)))
    try:
        a = _assistant()
        rows += [(f"embedder.{k}", str(v)) for k, v in a.embedder.describe().items()]
        rows += [(f"index.{k}", str(v)) for k, v in a.stats().items()]
    except Exception as exc:  # noqa: BLE001 - doctor reports, it does not crash
        ok = False
        rows.append(("problem", f"{type(exc).__name__}: {exc}"))
    table = Table(show_header=False)
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    if not ok:
        raise typer.Exit(1)


def _llm_precision_rows(settings: Any) -> list[tuple[str, str]]:
    """The dtype and quantization the LLM will load with, decided without loading it."""
    from assistant.knowledge.embedder import resolve_device
    from assistant.llm.models import pick_dtype, quantize_plan

    device = resolve_device(settings.llm_device)
    plan = quantize_plan(settings)
    dtype = plan.dtype or str(pick_dtype(settings.llm_dtype, device)).replace("torch.", "")
    if settings.llm_load_in_4bit:
        return [("llm.dtype", f"{dtype} compute"), ("llm.quantize", "4-bit (llm_load_in_4bit)")]
    return [("llm.dtype", dtype), ("llm.quantize", plan.method), ("llm.quantize.why", plan.reason)]


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """LLM presets: whether each is on disk, its size and where it would come from."""
    from assistant.llm.models import list_models

    rows = list_models(_settings())
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table()
    for col in ("preset", "available", "size", "source", "note"):
        table.add_column(col, overflow="fold")
    for r in rows:
        size = f"{'~' if r['estimated'] else ''}{r['size_gb']} GB"
        table.add_row(r["name"], "yes" if r["available"] else "no", size, r["source"], r["note"])
    console.print(table)
    console.print("Set one with ASSISTANT_LLM_MODEL=<preset>; `auto` picks for you (see `assistant doctor`).")


@app.command()
def pull(name: Annotated[str, typer.Argument(help="A preset from `assistant models`.")]) -> None:
    """Download a preset into the Hugging Face cache (needs internet; nothing else ever downloads)."""
    from assistant.llm.models import pull as pull_model

    with friendly_errors():
        try:
            path = pull_model(name)
        except ConnectionError as exc:
            err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2) from None
    console.print(f"{name} is in the Hugging Face cache: {path}")


@eval_app.command("retrieval")
def eval_retrieval_cmd(
    goldset: Annotated[list[Path] | None, typer.Option(help="JSONL goldset(s).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """hit@1/3/5 and MRR of search on the goldsets, with the misses listed; then the relevance
    distributions abstention (`min_relevance`) is read from (no LLM)."""
    from assistant.measure.evaluation import GOLDSET_DIR, eval_abstention, eval_retrieval, load_jsonl

    with friendly_errors():
        a = _assistant(index=True)
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
) -> None:
    """Follow-up retrieval, cited-gold share, citation precision, abstention and latency, with the LLM."""
    from assistant.measure.evaluation import eval_answers

    with friendly_errors():
        a = _assistant(index=True)
        report = eval_answers(a, limit, progress=lambda what, i, n: err.print(f"{what} {i}/{n}", end="\r"))
    if out:
        out.write_text(json.dumps(report, indent=2))
    summary = {
        k: ({kk: vv for kk, vv in v.items() if kk not in ("rows", "values")} if isinstance(v, dict) else v)
        for k, v in report.items()
    }
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    f, ans, cal, lat = (
        summary["follow_ups"],
        summary["answers"],
        summary["support_calibration"],
        summary["latency_ms"],
    )
    console.print(f"[bold]{summary['model']}[/] on {summary['device']}")
    console.print(
        f"follow-ups (n={f['n']}): hit@1 {f['hit@1']:.3f}, hit@3 {f['hit@3']:.3f} "
        f"(standalone question alone: {f['standalone_only_hit@1']:.3f} / {f['standalone_only_hit@3']:.3f}; "
        f"no rewrite: hit@3 {f['without_rewrite_hit@3']:.3f})"
    )
    console.print(
        f"answers (n={ans['n']}): cite a gold unit {ans['cite_gold']:.3f}, "
        f"citation precision {ans['citation_precision']:.3f}, "
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
        res = bench_retrieval(_settings(), synthetic, repeat)
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
        res = bench_fusion(_assistant(index=True))
    if as_json:
        print(json.dumps(res, indent=2))
        return
    table = Table(title="hit@1 by fusion variant")
    for col in ("variant", "retrieval.jsonl (tuning)", "retrieval_heldout.jsonl"):
        table.add_column(col)
    for name, row in res.items():
        table.add_row(name, f"{row['retrieval.jsonl']:.3f}", f"{row['retrieval_heldout.jsonl']:.3f}")
    console.print(table)


if __name__ == "__main__":
    app()


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
    from assistant.measure.bench import bench_llm

    choices = [q.strip() for q in quantize.split(",") if q.strip()] if quantize else None
    bad = [q for q in choices or [] if q not in ("auto", "int8", "off")]
    if bad:
        console.print(f"[red]--quantize takes auto, int8 or off (comma-separated), not {', '.join(bad)}[/]")
        raise typer.Exit(2)
    with friendly_errors():
        res = bench_llm(
            _settings(),
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
    console.print(
        f"decode ratio engine/bare {res['decode_ratio']} (floor 0.95); "
        f"first-token delta {res['ttft_delta_ms']} ms (floor +50); "
        f"memory-bandwidth bound: {res['model_gb']} GB of weights at "
        f"{res['measured_bandwidth_gbs']} GB/s measured = {res['decode_bound_tps']} tok/s"
    )
