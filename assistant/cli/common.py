"""What every command shares: the Typer apps, the consoles, settings and the friendly error exit."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.logging import RichHandler

from assistant.offline import apply_offline_env

apply_offline_env()

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Offline assistant for deep-learning training problems: ingest, search, ask, chat, serve.",
)
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
    from assistant.knowledge.errors import IndexMismatchError, LoadError, ModelHashError

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


def load_settings() -> Any:
    from assistant.settings import Settings

    return Settings()


def build_assistant(index: bool = False) -> Any:
    """The Assistant from settings; with `index`, the corpus is indexed first if the store is empty."""
    from assistant.core import Assistant

    a = Assistant(load_settings())
    ctx = click.get_current_context(silent=True)
    if ctx is not None:  # when the command ends, the model's threads stop in order
        ctx.call_on_close(a.close)
    if index and a.store.count() == 0:
        print_report(a.ingest(progress=sys.stderr.isatty()))
    return a


def print_report(report: Any) -> None:
    for name, why in report.skipped:
        err.print(f"[yellow]skipped[/] {name}: {why}")
    for name, why in report.dropped:  # a rebuild could not bring these back
        err.print(f"[yellow]dropped[/] {name}: {why}")
    console.print(report.summary())
