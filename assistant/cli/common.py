"""What every command shares: the Typer apps, the consoles, settings and the friendly error exit."""

from __future__ import annotations

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


# Every Assistant a command opened, closed in reverse order when the command ends (see main).
_opened: list[Any] = []


def close_opened() -> None:
    """Stop the model's generation loop and free it for every Assistant this command built, newest
    first, while the interpreter is still whole. Left to interpreter shutdown, the batching loop's
    threads free tensors after Python has started finalizing, and the process aborts with
    "terminate called without an active exception" (exit 134) after printing its answer."""
    while _opened:
        _opened.pop().close()


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(help="TOML settings file (else $ASSISTANT_CONFIG).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    if config is not None:
        os.environ["ASSISTANT_CONFIG"] = str(config)
    # The root context closes when the command returns or fails (typer.Exit too), before sys.exit.
    # (Typer vendors its own click: `click.get_current_context()` sees no context, so a hook
    # registered through the real click package was never called.)
    ctx.call_on_close(close_opened)
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
    _opened.append(a)  # closed when the command ends (close_opened)
    if index and a.store.count() == 0:
        print_report(a.ingest(progress=sys.stderr.isatty()))
    return a


def print_report(report: Any) -> None:
    for name, why in report.skipped:
        err.print(f"[yellow]skipped[/] {name}: {why}")
    for name, why in report.dropped:  # a rebuild could not bring these back
        err.print(f"[yellow]dropped[/] {name}: {why}")
    console.print(report.summary())
