"""Command line: `assistant ingest|search|ask|chat|serve|config|doctor|models|pull|eval|bench|users|feedback`
(also `python -m assistant`). Each module registers its commands on the one Typer app."""

from assistant.cli import corpus, measure, system, talk, users  # noqa: F401 - importing registers the commands
from assistant.cli.common import app

__all__ = ["app"]
