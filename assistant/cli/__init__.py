"""Command line: `assistant ingest|search|ask|chat|serve|diagnose|config|doctor|models|pull|eval|bench|users|
feedback` (also `python -m assistant`). Each module registers its commands on the one Typer app."""

from assistant.cli import corpus, mcp, measure, realistic, runs, system, talk, users  # noqa: F401 - importing registers them
from assistant.cli.common import app

__all__ = ["app"]
