"""The MCP server: the tools with their input and output schemas, one resource per indexed unit, and
who may call what.

`list_documents` is for administrators only, as the UI's Documents tab is: over HTTP a non-admin key
neither sees it listed nor may call it. Everything else is open to any caller the transport lets in
(stdio: the local user who started the server, who owns everything here). A refusal (an empty
question, a log with no metric, a file outside the allowed folders…) is a tool error (`isError`) whose
text is the message alone; anything unexpected is logged and reported in one plain sentence, never a
trace, and the server keeps serving. Slow work (search, the model) runs on worker threads, never on
the event loop the web app shares.
"""

import base64
import logging
from collections.abc import Callable
from typing import Annotated, Any

import anyio
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from mcp.types import Tool as ToolInfo
from pydantic import BaseModel, Field

from assistant.mcp.tools import (
    AskResult,
    DiagnoseResult,
    DocumentList,
    Refused,
    SearchResult,
    Tools,
    unit_uri,
)

log = logging.getLogger(__name__)

ADMIN_ONLY = frozenset({"list_documents"})
ADMIN_STATE = "mcp_admin"  # set on the request scope's state by the HTTP endpoint (web/mcp_endpoint.py)
NOT_ADMIN = "Only an administrator may list the documents."
FAILED = "The tool failed on the server (its log says why); try again, or another question."
INSTRUCTIONS = (
    "An offline assistant for deep-learning training problems. It answers from an indexed corpus of "
    "Q&A documents, citing each claim [n], and says when the documents do not cover a question "
    "(abstained). Use `ask` for advice, `search_documents` to see the passages, `diagnose_run` with a "
    "training log to learn what its curves show and what to change, and read `unit://<unit_id>` to "
    "open a cited source."
)
READ_ONLY = ToolAnnotations(readOnlyHint=True, openWorldHint=False)


class Turn(BaseModel):
    role: Annotated[str, Field(pattern="^(user|assistant)$", description="`user` or `assistant`.")]
    content: Annotated[str, Field(description="What was said (an earlier answer with its [n] markers).")]


def is_admin(request: Any) -> bool:
    """Whether the caller of this request may use the admin-only tools: the local user over stdio
    (no HTTP request), else what the HTTP endpoint found out about the key (default: no)."""
    if request is None:
        return True
    state = request.scope.get("state") or {}
    return bool(state.get(ADMIN_STATE, False))


def error(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], isError=True)


def result(model: BaseModel, *extra: Any) -> CallToolResult:
    data = model.model_dump(mode="json")
    text = TextContent(type="text", text=model.model_dump_json(indent=1))
    return CallToolResult(content=[text, *extra], structuredContent=data)


class AssistantMCP(FastMCP):
    """FastMCP with per-caller tool lists and plain tool errors."""

    def _caller_is_admin(self) -> bool:
        ctx = self.get_context()
        try:
            request = ctx.request_context.request
        except ValueError:  # outside a request
            request = None
        return is_admin(request)

    async def list_tools(self) -> list[ToolInfo]:
        tools = await super().list_tools()
        if self._caller_is_admin():
            return tools
        return [t for t in tools if t.name not in ADMIN_ONLY]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        if name in ADMIN_ONLY and not self._caller_is_admin():
            return error(NOT_ADMIN)
        try:
            return await super().call_tool(name, arguments)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, Refused):
                return error(str(cause))
            if cause is None:  # the SDK's own: an unknown tool
                return error(str(exc))
            log.error("MCP tool %s failed", name, exc_info=cause)
            return error(FAILED)


async def _threaded(fn: Callable[..., Any], *args: Any) -> Any:
    return await anyio.to_thread.run_sync(lambda: fn(*args))


def build_server(
    assistant: Any, *, local: bool, transport_security: TransportSecuritySettings | None = None
) -> AssistantMCP:
    """The server over one Assistant. `local` (stdio): `diagnose_run` also takes a `path` under
    `mcp_allowed_dirs`; over HTTP it takes the log's text only (its schema has no `path`)."""
    tools = Tools(assistant, local=local)
    settings = assistant.settings
    server = AssistantMCP(
        name="dl-assistant",
        instructions=INSTRUCTIONS,
        log_level="WARNING",
        stateless_http=True,  # every request stands alone, its key checked; no session to expire
        streamable_http_path="/mcp",
        # a log sent as text may be as large as an attached file (run_max_mb), JSON-escaped
        max_request_body_size=int(settings.run_max_mb * 1e6 * 1.2) + 2**20,
        transport_security=transport_security
        or TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )

    async def search_documents(
        query: Annotated[str, Field(description="What to look for: a question or keywords.")],
        k: Annotated[int, Field(ge=1, le=20, description="How many passages to return (1-20).")] = 5,
    ) -> Annotated[CallToolResult, SearchResult]:
        """Search the indexed deep-learning Q&A documents. Returns the best passages, best first, each
        with its document, the question it answers, its unit id (read `unit://<unit_id>` for the
        whole unit) and its relevance (0-1; below about 0.4 the documents do not cover the query).
        No answer is written: use `ask` for that."""
        return result(await _threaded(tools.search_documents, query, k))

    async def ask(
        question: Annotated[str, Field(description="The question about training a model, in plain words.")],
        history: Annotated[
            list[Turn] | None,
            Field(description="Earlier turns of this conversation, oldest first, for a follow-up."),
        ] = None,
    ) -> Annotated[CallToolResult, AskResult]:
        """Answer a question about training deep-learning models from the indexed documents. The
        answer cites each claim with [n] markers; `sources` gives each cited document, the question
        it answers, the passage and the span supporting the answer. `abstained` is true when the
        documents do not cover the question (then nothing is cited: do not make up an answer).
        `notices` says what the checks found. Give `history` to ask a follow-up ("which of those…")."""
        turns = [t.model_dump() for t in history or []]
        return result(await _threaded(tools.ask, question, turns))

    async def diagnose_text(
        log_text: Annotated[
            str,
            Field(
                description="The training log itself: console output, CSV (Lightning, Keras, YOLO, "
                "W&B export), trainer_state.json, Keras history JSON or JSON lines."
            ),
        ],
        question: Annotated[
            str | None, Field(description="Your own question about the run (default: what to change).")
        ] = None,
    ) -> Annotated[CallToolResult, DiagnoseResult]:
        return await _diagnose(log_text, None, question)

    async def diagnose_path(
        log_text: Annotated[
            str | None,
            Field(
                description="The training log itself: console output, CSV (Lightning, Keras, YOLO, "
                "W&B export), trainer_state.json, Keras history JSON or JSON lines. Give this or `path`."
            ),
        ] = None,
        path: Annotated[
            str | None,
            Field(
                description="A log file, TensorBoard or MLflow run folder on this machine, under a "
                "folder the user allowed (setting mcp_allowed_dirs). Give this or `log_text`."
            ),
        ] = None,
        question: Annotated[
            str | None, Field(description="Your own question about the run (default: what to change).")
        ] = None,
    ) -> Annotated[CallToolResult, DiagnoseResult]:
        return await _diagnose(log_text, path, question)

    async def _diagnose(log_text: str | None, path: str | None, question: str | None) -> CallToolResult:
        found, png = await _threaded(tools.diagnose_run, log_text, path, question)
        image = ImageContent(type="image", data=base64.b64encode(png).decode("ascii"), mimeType="image/png")
        return result(found, image)

    async def list_documents() -> Annotated[CallToolResult, DocumentList]:
        """List every indexed document: its name, how many Q&A units it holds, whether it comes from
        the corpus or was uploaded, and its id. Administrators only."""
        return result(await _threaded(tools.list_documents))

    diagnose_doc = (
        "Diagnose a training run from its log: what its loss and accuracy curves show (overfitting, "
        "underfitting, plateau, unstable, diverged or healthy), each finding with its evidence (real "
        "epochs or steps and values), then an answer from the documents on what to change, with cited "
        "sources, and the curves as a PNG image. A text that is not a log, or has no metric, is refused "
        "with the reason."
    )
    server.add_tool(search_documents, annotations=READ_ONLY, structured_output=True)
    server.add_tool(ask, annotations=READ_ONLY, structured_output=True)
    server.add_tool(
        diagnose_path if local else diagnose_text,
        name="diagnose_run",
        description=diagnose_doc,
        annotations=READ_ONLY,
        structured_output=True,
    )
    server.add_tool(list_documents, annotations=READ_ONLY, structured_output=True)

    @server.resource(
        unit_uri("{unit_id}"),
        name="unit",
        title="An indexed Q&A unit",
        description="One indexed unit by its id (as search results and cited sources give it): the "
        "question, its document and the whole answer, as Markdown.",
        mime_type="text/markdown",
    )
    async def read_unit(unit_id: str) -> str:
        return await _threaded(tools.read_unit, unit_id)

    return server
