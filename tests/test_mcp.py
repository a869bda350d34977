"""The assistant as an MCP server, driven by the SDK's own client over both transports: stdio (a real
`assistant mcp` process, watched for any outside connection) and streamable HTTP at `/mcp` on the
live web app, with accounts and API keys. Real index, the tiny model, no mocks."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError

from assistant.settings import PROJECT_DIR, Settings

LOGS = PROJECT_DIR / "tests" / "goldsets" / "runs" / "logs"
ON_TOPIC = "My GPU keeps running out of memory while training. What can I do?"
OFF_TOPIC = "What is the capital of Australia?"
NOT_A_LOG = "Traceback (most recent call last):\n  File 'train.py', line 3\nImportError: no module named x\n"
PNG = b"\x89PNG\r\n\x1a\n"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}

# Run as `python -c GUARD + RUN_MCP` in place of `assistant mcp`: every socket connection and name lookup that
# would leave the machine is refused and written to $MCP_EGRESS_LOG, and so is any listening socket.
GUARD = """
import ipaddress, os, socket
LOG = os.environ["MCP_EGRESS_LOG"]

def note(what):
    with open(LOG, "a") as f:
        f.write(repr(what) + "\\n")

def loopback(host):
    if not isinstance(host, str) or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

def guard(real):
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not loopback(address[0]):
            note(address)
            raise ConnectionRefusedError(f"blocked egress to {address}")
        return real(self, address)
    return connect

real_getaddrinfo, real_listen = socket.getaddrinfo, socket.socket.listen

def getaddrinfo(host, *args, **kw):
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and not loopback(name):
        note(("lookup", name))
        raise socket.gaierror(f"blocked lookup of {name}")
    return real_getaddrinfo(host, *args, **kw)

def listen(self, *args):
    note(("listen", self.getsockname()))
    return real_listen(self, *args)

socket.socket.connect = guard(socket.socket.connect)
socket.socket.connect_ex = guard(socket.socket.connect_ex)
socket.getaddrinfo = getaddrinfo
socket.socket.listen = listen
note("guarded")
"""
RUN_MCP = 'from assistant.cli import app\napp(["mcp"], prog_name="assistant")\n'
GUARDED = repr("guarded") + "\n"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def structured(result) -> dict:
    assert not result.isError, result.content
    assert json.loads(result.content[0].text) == result.structuredContent  # text mirrors the data
    return result.structuredContent


def error_text(result) -> str:
    assert result.isError
    text = result.content[0].text
    assert "Traceback" not in text and 'File "' not in text
    return text


async def check_answer_and_citation(session: ClientSession) -> None:
    """An on-topic question is answered with cited sources, and a cited source opens as a resource."""
    answer = structured(await session.call_tool("ask", {"question": ON_TOPIC}))
    assert not answer["abstained"] and answer["sources"] and answer["answer"]
    for source in answer["sources"]:
        assert source["file"] and source["question"] and source["passage"] and 0 < source["score"] <= 1
        assert source["uri"] == f"unit://{source['unit_id']}"
        assert f"[{source['n']}]" in answer["answer"]
    cited = answer["sources"][0]
    opened = await session.read_resource(cited["uri"])
    text = opened.contents[0].text
    assert opened.contents[0].mimeType == "text/markdown"
    assert text.startswith(f"# {cited['question']}") and cited["file"] in text
    assert " ".join(cited["span"].split()[:4]) in " ".join(text.split())  # the span is in the unit


async def check_off_topic_and_errors(session: ClientSession) -> None:
    """An off-topic question abstains; refusals are tool errors with the UI's message, and the
    server answers the next call."""
    off = structured(await session.call_tool("ask", {"question": OFF_TOPIC}))
    assert off["abstained"] and off["sources"] == []
    assert "couldn't find" in off["answer"]
    assert "query is empty" in error_text(await session.call_tool("search_documents", {"query": "  "}))
    assert "question is empty" in error_text(await session.call_tool("ask", {"question": ""}))
    bad = error_text(await session.call_tool("diagnose_run", {"log_text": NOT_A_LOG}))
    assert "no training metric" in bad
    # a single line naming a file on the server is text, never that file
    assert "no training metric" in error_text(
        await session.call_tool("diagnose_run", {"log_text": "/etc/passwd"})
    )
    after = structured(await session.call_tool("search_documents", {"query": "overfitting", "k": 2}))
    assert len(after["passages"]) == 2


def check_diagnosis(result) -> None:
    """Findings with evidence, an answer with sources, and the curves as a PNG image block."""
    data = structured(result)
    kinds = [f["kind"] for f in data["findings"]]
    assert "overfitting" in kinds, data["findings"]
    assert all(f["evidence"] and f["confidence"] in {"high", "medium", "low"} for f in data["findings"])
    assert data["run"]["metrics"] and "overfitting" in data["question"].lower()
    assert data["answer"]["answer"] and (data["answer"]["sources"] or data["answer"]["abstained"])
    images = [c for c in result.content if c.type == "image"]
    assert len(images) == 1 and images[0].mimeType == "image/png"
    assert base64.b64decode(images[0].data).startswith(PNG)


# --- streamable HTTP on the live app -----------------------------------------------------------------


@pytest.fixture(scope="module")
def web(tmp_path_factory, embedder, tiny_engine):
    from assistant.core import Assistant
    from assistant.store import Accounts, open_database
    from assistant.web.app import build_app, launch
    from assistant.web.auth import web_context

    settings = Settings(data_dir=tmp_path_factory.mktemp("mcp-web"), llm_max_new_tokens=16, run_max_mb=1)
    assistant = Assistant(settings, embedder=embedder, llm=tiny_engine)
    assistant.ingest()
    db = open_database(settings)
    accounts = Accounts(db, settings)
    accounts.add("root", "root-pw", admin=True)
    accounts.add("alice", "alice-pw")
    keys = {name: accounts.new_api_key(name) for name in ("root", "alice")}
    db.dispose()
    app = build_app(assistant, web_context(settings, "127.0.0.1"))  # logins on: accounts exist
    assert app.web.auth
    port = free_port()
    launch(app, "127.0.0.1", port, block=False)
    yield {"url": f"http://127.0.0.1:{port}", "keys": keys, "data": settings.data_dir, "assistant": assistant}
    app.close()
    app.web.db.dispose()


@asynccontextmanager
async def http_session(web, who: str):
    headers = {"Authorization": f"Bearer {web['keys'][who]}"}
    async with (
        httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(300)) as client,
        streamable_http_client(web["url"] + "/mcp", http_client=client) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def test_http_tools_answer_cite_diagnose_and_refuse_cleanly(web):
    log_text = (LOGS / "overfit_blobs.console.log").read_text()

    async def main():
        async with http_session(web, "root") as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            assert set(tools) == {"search_documents", "ask", "diagnose_run", "list_documents"}
            for tool in tools.values():
                assert len(tool.description) > 80 and tool.outputSchema and tool.annotations.readOnlyHint
            assert tools["search_documents"].inputSchema["required"] == ["query"]
            assert tools["ask"].inputSchema["properties"]["history"]["anyOf"][0]["type"] == "array"
            # a remote client cannot name files on the server: no `path` over HTTP
            assert set(tools["diagnose_run"].inputSchema["properties"]) == {"log_text", "question"}
            templates = (await session.list_resource_templates()).resourceTemplates
            assert [t.uriTemplate for t in templates] == ["unit://{unit_id}"]

            found = structured(await session.call_tool("search_documents", {"query": ON_TOPIC, "k": 3}))
            assert len(found["passages"]) == 3
            top = found["passages"][0]
            assert top["question"].startswith("My model training takes too much RAM")
            assert top["file"] and top["unit_id"] and 0.4 < top["relevance"] <= 1

            await check_answer_and_citation(session)
            await check_off_topic_and_errors(session)
            check_diagnosis(await session.call_tool("diagnose_run", {"log_text": log_text}))
            sneaky = await session.call_tool("diagnose_run", {"path": str(LOGS / "overfit_blobs.jsonl")})
            assert sneaky.isError
            huge = log_text * (1_100_000 // len(log_text) + 1)  # over run_max_mb (1 MB here)
            too_large = await session.call_tool("diagnose_run", {"log_text": huge})
            assert "over the 1 MB limit (run_max_mb)" in error_text(too_large)

            docs = structured(await session.call_tool("list_documents", {}))["documents"]
            assert {d["name"] for d in docs} >= {"deep-learning-projects-faq.md"}
            assert sum(d["units"] for d in docs) == 36 and {d["origin"] for d in docs} == {"corpus"}

    anyio.run(main)


def test_a_non_admin_key_gets_what_a_non_admin_gets_in_the_ui(web):
    async def main():
        async with http_session(web, "alice") as session:
            names = {t.name for t in (await session.list_tools()).tools}
            assert names == {"search_documents", "ask", "diagnose_run"}  # no documents list
            refused = await session.call_tool("list_documents", {})
            assert error_text(refused) == "Only an administrator may list the documents."
            search = {"query": "learning rate", "k": 1}
            found = structured(await session.call_tool("search_documents", search))
            opened = await session.read_resource(found["passages"][0]["uri"])  # sources open for anyone
            assert found["passages"][0]["question"] in opened.contents[0].text
            with pytest.raises(McpError, match="no indexed unit has the id 'feedfacefeedface'"):
                await session.read_resource("unit://feedfacefeedface")

    anyio.run(main)


def test_mcp_refuses_a_missing_or_wrong_key_and_a_foreign_page(web):
    url = web["url"] + "/mcp"
    missing = httpx.post(url, json=INIT, headers=MCP_HEADERS)
    assert missing.status_code == 401 and "API key is required" in missing.json()["error"]["message"]
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = httpx.post(url, json=INIT, headers={**MCP_HEADERS, "Authorization": "Bearer sk-not-a-key"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    key = {"Authorization": f"Bearer {web['keys']['alice']}"}
    ok = httpx.post(url, json=INIT, headers={**MCP_HEADERS, **key})
    assert ok.status_code == 200 and "dl-assistant" in ok.text
    # a page of another site, even with a key, is refused by the app's guard (browsers send Origin)
    foreign = httpx.post(url, json=INIT, headers={**MCP_HEADERS, **key, "Origin": "https://evil.example"})
    assert foreign.status_code == 403


def test_without_logins_mcp_answers_loopback_clients_only(web):
    """A loopback app without accounts (logins off): no key needed, but a request whose Host is not a
    loopback name (a page reached through DNS rebinding) is refused."""
    from starlette.testclient import TestClient

    from assistant.web.app import WebApp
    from assistant.web.auth import WebContext

    local = WebApp(web["assistant"], WebContext(db=None, accounts=None, conversations=None, auth=False))
    with TestClient(local.fastapi(), base_url="http://127.0.0.1:7860") as client:
        tools_list = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        listed = client.post("/mcp", json=tools_list, headers=MCP_HEADERS)
        assert listed.status_code == 200 and "list_documents" in listed.text  # the local user is admin
        rebound = client.post("/mcp", json=INIT, headers={**MCP_HEADERS, "Host": "evil.example:7860"})
        assert rebound.status_code == 421
    local.demo.close(verbose=False)


def test_the_tools_load_into_langchain(web):
    from langchain_mcp_adapters.tools import load_mcp_tools

    async def main():
        async with http_session(web, "alice") as session:
            tools = {t.name: t for t in await load_mcp_tools(session)}
            assert set(tools) == {"search_documents", "ask", "diagnose_run"}
            assert "query" in tools["search_documents"].args
            content = await tools["search_documents"].ainvoke({"query": "my loss is not decreasing", "k": 2})
            text = content if isinstance(content, str) else " ".join(c.get("text", "") for c in content)
            assert len(json.loads(text)["passages"]) == 2

    anyio.run(main)


# --- stdio: a real `assistant mcp` process ------------------------------------------------------------


@pytest.fixture(scope="module")
def stdio_env(web, tmp_path_factory, tiny_model_dir):
    """A copy of the indexed data folder (the process reads it, nothing is embedded again), the tiny
    model, a folder of logs the user allows, and a file to note any outside connection in."""
    root = tmp_path_factory.mktemp("mcp-stdio")
    shutil.copytree(web["data"] / "chroma", root / "data" / "chroma")
    allowed = root / "runs"
    allowed.mkdir()
    shutil.copy(LOGS / "overfit_blobs.lightning.csv", allowed / "metrics.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        ASSISTANT_DATA_DIR=str(root / "data"),
        ASSISTANT_LLM_MODEL=str(tiny_model_dir),
        ASSISTANT_LLM_DTYPE="float32",
        ASSISTANT_LLM_MAX_NEW_TOKENS="16",
        ASSISTANT_MCP_ALLOWED_DIRS=json.dumps([str(allowed)]),
        MCP_EGRESS_LOG=str(root / "egress.log"),
        PYTHONPATH=str(PROJECT_DIR),
    )
    return {"env": env, "root": root, "allowed": allowed}


def test_the_egress_guard_notes_what_would_leave(stdio_env, tmp_path):
    """The guard the stdio test relies on does see an outside connection, a lookup and a listener."""
    import subprocess

    env = {**stdio_env["env"], "MCP_EGRESS_LOG": str(tmp_path / "egress.log")}
    attempt = (
        "for go in (lambda: socket.create_connection(('93.184.216.34', 80), timeout=1),\n"
        "           lambda: socket.getaddrinfo('example.com', 80),\n"
        "           lambda: socket.create_server(('127.0.0.1', 0))):\n"
        "    try:\n        go()\n    except OSError:\n        pass\n"
    )
    subprocess.run([sys.executable, "-c", GUARD + attempt], env=env, check=True, timeout=60)
    noted = (tmp_path / "egress.log").read_text().splitlines()
    assert noted[0] == repr("guarded") and "93.184.216.34" in noted[1]
    assert "example.com" in noted[2] and "listen" in noted[3]


def test_stdio_server_answers_with_sources_and_never_leaves_the_machine(stdio_env):
    root, allowed = stdio_env["root"], stdio_env["allowed"]
    params = StdioServerParameters(
        command=sys.executable, args=["-c", GUARD + RUN_MCP], env=stdio_env["env"], cwd=str(PROJECT_DIR)
    )

    async def main():
        with (root / "stderr.log").open("w") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                tools = {t.name: t for t in (await session.list_tools()).tools}
                assert set(tools) == {"search_documents", "ask", "diagnose_run", "list_documents"}
                assert "path" in tools["diagnose_run"].inputSchema["properties"]
                docs = structured(await session.call_tool("list_documents", {}))["documents"]
                assert sum(d["units"] for d in docs) == 36  # the local user owns everything here

                await check_answer_and_citation(session)
                await check_off_topic_and_errors(session)
                by_path = {"path": str(allowed / "metrics.csv")}
                check_diagnosis(await session.call_tool("diagnose_run", by_path))
                outside = await session.call_tool("diagnose_run", {"path": str(LOGS / "overfit_blobs.jsonl")})
                assert "not under a folder this server may read" in error_text(outside)
                escape = await session.call_tool("diagnose_run", {"path": str(allowed / ".." / "data")})
                assert "mcp_allowed_dirs" in error_text(escape)
                both = await session.call_tool("diagnose_run", {"log_text": "x\ny", "path": "metrics.csv"})
                assert "not both" in error_text(both)

    anyio.run(main)
    noted = (root / "egress.log").read_text()
    assert noted == GUARDED, noted  # the guard ran; nothing was noted after it: no connection, no listener
    assert "Traceback" not in (root / "stderr.log").read_text()
