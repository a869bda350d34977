"""`assistant mcp`: the assistant as an MCP server over stdio, for a local client (a coding agent, a
chat app) that starts it. No socket is opened: the protocol is the process's stdin and stdout.

Anything else that writes to standard output (a library's print, a progress bar) is sent to stderr
instead, so it can never corrupt the protocol; logs go to stderr as for every command.
"""

from __future__ import annotations

import os
from io import TextIOWrapper
from typing import Any

from assistant.cli.common import app, err, friendly_errors, load_settings


@app.command("mcp")
def mcp_stdio() -> None:
    """Serve the assistant's tools (search_documents, ask, diagnose_run, list_documents) and its
    indexed units over MCP on stdin/stdout, for a client that starts this command. `diagnose_run`
    reads log files by path only under the folders in `mcp_allowed_dirs`."""
    import anyio

    from assistant.core import Assistant

    protocol = _claim_stdout()
    with friendly_errors():
        assistant = Assistant(load_settings())
        try:
            if assistant.store.count() == 0:
                err.print(assistant.ingest().summary())
            anyio.run(_serve, assistant, protocol)
        finally:
            assistant.close()


def _claim_stdout() -> Any:
    """A private handle on the real standard output for the protocol; file descriptor 1 (what print
    and C libraries write to) then points at stderr."""
    import sys

    sys.stdout.flush()
    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    return protocol


async def _serve(assistant: Any, protocol: Any) -> None:
    import anyio
    from mcp.server.stdio import stdio_server

    from assistant.mcp.server import build_server

    server = build_server(assistant, local=True)
    out = anyio.wrap_file(TextIOWrapper(protocol, encoding="utf-8", write_through=True))
    async with stdio_server(stdout=out) as (read, write):
        low = server._mcp_server  # FastMCP.run_stdio_async, with our own stdout
        await low.run(read, write, low.create_initialization_options())
