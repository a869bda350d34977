"""Command line: `assistant ingest|search|ask|chat|serve|diagnose|config|doctor|models|pull|eval|bench`
(also `python -m assistant`). Each module registers its commands on the one Typer app."""

from assistant.cli import corpus, measure, runs, system, talk  # noqa: F401 - importing registers the commands
from assistant.cli.common import app

__all__ = ["app"]
