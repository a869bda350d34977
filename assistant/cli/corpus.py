"""`assistant ingest` and `assistant search`: the index from the terminal."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from assistant.cli.common import (
    app,
    build_assistant,
    console,
    friendly_errors,
    print_report,
)


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
        a = build_assistant()
        print_report(a.ingest(paths or None, rebuild=rebuild, progress=sys.stderr.isatty()))


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
        a = build_assistant(index=True)
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
