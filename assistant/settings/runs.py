"""A user's own training log (`assistant diagnose`, a log attached in the chat or sent to MCP)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class RunSettings(BaseModel):
    # --- your own training run: `assistant diagnose` (issue 12) ------------------------------------
    run_max_mb: float = Field(
        200.0,
        gt=0,
        description="Largest training log `diagnose` reads or the chat attaches, in MB. Logs are read as a "
        "stream (CSV in chunks, JSON as events, text a line at a time): memory stays within a small "
        "multiple of the values the log holds; this caps the time a huge file takes.",
    )
    run_max_metrics: int = Field(
        64,
        ge=5,
        description="Most distinct metric names read from one log; further names are skipped with a note "
        "(a log that invents a new name on every line cannot make the table grow with rows × names).",
    )
    mcp_allowed_dirs: list[Path] = Field(
        default_factory=list,
        description="Folders (and everything under them) whose training logs the MCP tool `diagnose_run` may "
        "read by `path`, for a local client that started `assistant mcp` (stdio); `~` is expanded. Empty: "
        "the tool reads pasted log text only. Never over HTTP (/mcp): a remote client cannot name files "
        "on the server. E.g. ASSISTANT_MCP_ALLOWED_DIRS='[\"~/experiments\"]'.",
    )
