"""The team topology for tests/test_topology.py: the processes (PostgreSQL, `chroma run`, `transformers
serve`, two `assistant serve` replicas, nginx from deploy/nginx.conf.template) and the clients that
drive them over HTTP only: the page's own Gradio protocol, the MCP client, plain requests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import string
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
from pg_server import PostgresServer
from test_remote import free_port, stop_serve

from assistant.settings import PROJECT_DIR

TEMPLATE = PROJECT_DIR / "deploy" / "nginx.conf.template"
READY_S = 600  # a replica's start (embedder, ingest, model check) on a busy 2-CPU machine: bounded, generous
PASSWORD = {"root": "root-pw-topology", "alice": "alice-pw-topology"}
NOTE = (
    "# Team notes\n\n### What is zorblax normalisation?\n\n"
    "Zorblax normalisation rescales every activation by the median of its channel.\n"
)


def nginx_bin() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def wait_for(
    url: str, proc: subprocess.Popen, what: str, log: Path | None = None, limit: float = READY_S
) -> None:
    """Until `url` answers 200 (a readiness endpoint), or the process exits, or `limit` seconds pass."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)  # polling a readiness endpoint, not a synchronisation
    raise RuntimeError(f"{what} was not ready at {url} within {limit:.0f} s")


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


def render_nginx(servers: list[str], listen: str) -> str:
    """deploy/nginx.conf.template with this topology's addresses (compose fills the same two variables)."""
    lines = " ".join(f"server {s} max_fails=1 fail_timeout=30s;" for s in servers)
    return string.Template(TEMPLATE.read_text()).safe_substitute(APP_SERVERS=lines, LISTEN=listen)


class Topology:
    """The processes, their addresses and the shared settings every replica gets."""

    def __init__(self, root: Path, model_dir: Path) -> None:
        self.root = root
        self.model_dir = model_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.urls: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.pg: PostgresServer | None = None
        self.serve: subprocess.Popen | None = None
        self.keys: dict[str, str] = {}

    # -- the parts ----------------------------------------------------------------------------
    def start_chroma(self) -> str:
        chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
        assert chroma, "the chroma CLI ships with chromadb"
        port = free_port()
        log = self.root / "chroma.log"
        proc = subprocess.Popen(
            [chroma, "run", "--path", str(self.root / "chroma"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
            start_new_session=True,
        )
        self.procs["chroma"] = proc
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/api/v2/heartbeat", proc, "chroma run", log, limit=120)
        return url

    def replica_env(self, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
        return {**env, **self.env, "ASSISTANT_DATA_DIR": str(self.root / f"data-{name}")}

    def cli(self, name: str, *args: str, stdin: str = "") -> str:
        exe = Path(sys.executable).parent / "assistant"
        done = subprocess.run(
            [str(exe), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.replica_env(name),
            timeout=300,
        )
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
        return done.stdout

    def start_replica(self, name: str) -> None:
        port = int(self.urls[name].rsplit(":", 1)[1]) if name in self.urls else free_port()
        exe = Path(sys.executable).parent / "assistant"
        log = self.root / f"replica-{name}.log"
        self.procs[name] = subprocess.Popen(
            [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
            env=self.replica_env(name),
            start_new_session=True,
        )
        self.urls[name] = f"http://127.0.0.1:{port}"
        wait_for(f"{self.urls[name]}/readyz", self.procs[name], f"replica {name}", log)

    def start_nginx(self, exe: str) -> None:
        conf_dir = self.root / "nginx"
        for sub in ("temp/body", "temp/proxy", "temp/fastcgi", "temp/uwsgi", "temp/scgi", "logs"):
            (conf_dir / sub).mkdir(parents=True, exist_ok=True)
        for p in conf_dir.rglob("*"):  # workers may run as nobody when the tests run as root
            p.chmod(0o777)
        conf_dir.chmod(0o777)
        port = free_port()
        servers = [self.urls["a"].removeprefix("http://"), self.urls["b"].removeprefix("http://")]
        (conf_dir / "site.conf").write_text(render_nginx(servers, f"127.0.0.1:{port}"))
        t = conf_dir / "temp"
        (conf_dir / "nginx.conf").write_text(
            "worker_processes 1;\nevents { worker_connections 256; }\nhttp {\n"
            f"  access_log {conf_dir / 'logs' / 'access.log'};\n"
            f"  client_body_temp_path {t / 'body'};\n  proxy_temp_path {t / 'proxy'};\n"
            f"  fastcgi_temp_path {t / 'fastcgi'};\n  uwsgi_temp_path {t / 'uwsgi'};\n"
            f"  scgi_temp_path {t / 'scgi'};\n"
            f"  include {conf_dir / 'site.conf'};\n}}\n"
        )
        log = self.root / "nginx.log"
        self.procs["nginx"] = subprocess.Popen(
            [
                exe,
                "-p",
                str(conf_dir),
                "-c",
                str(conf_dir / "nginx.conf"),
                "-g",
                f"daemon off; pid {conf_dir / 'nginx.pid'}; error_log stderr;",
            ],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.urls["nginx"] = f"http://127.0.0.1:{port}"
        wait_for(f"{self.urls['nginx']}/healthz", self.procs["nginx"], "nginx", log, limit=60)

    def stop(self) -> None:
        for name in ("nginx", "b", "a", "chroma"):
            if name in self.procs:
                kill_group(self.procs[name])
        if self.serve is not None:
            stop_serve(self.serve)
        if self.pg is not None:
            self.pg.stop()

    # -- clients ------------------------------------------------------------------------------
    def login(self, where: str, name: str, password: str | None = None) -> httpx.Response:
        return httpx.post(
            f"{self.urls[where]}/login",
            data={"username": name, "password": password or PASSWORD[name], "next": "/"},
            timeout=60,
        )

    def session(self, where: str, name: str) -> dict[str, str]:
        """The cookies of a browser logged in as `name` through `where`."""
        r = self.login(where, name)
        assert r.status_code == 303, (where, r.status_code, r.text[:300])
        return dict(r.cookies)

    def served_by(self, response: httpx.Response) -> str:
        """Which replica answered a request that went through nginx: the one whose log names its id."""
        rid = response.headers["x-request-id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for name in ("a", "b"):
                if rid in (self.root / f"replica-{name}.log").read_text(errors="replace"):
                    return name
            time.sleep(0.2)  # the log line is written as the request ends
        raise AssertionError(f"no replica logged request {rid}")


# -- the page's own protocol, and MCP ----------------------------------------------------------------


class Page:
    """One logged-in browser tab of a replica's page, driven over Gradio's HTTP protocol (what the
    page's JavaScript sends: an upload, then queue/join naming the event, then the event stream)."""

    def __init__(self, url: str, cookies: dict[str, str], query: str = "") -> None:
        self.http = httpx.Client(base_url=url, cookies=cookies, timeout=httpx.Timeout(300))
        self.config = self.http.get("/config").json()
        self.session = uuid.uuid4().hex[:12]
        self.query = query
        self.ids = {c["props"].get("elem_id"): c["id"] for c in self.config["components"] if c.get("props")}

    def event(self, trigger: str, target: str | None = None, output: str | None = None) -> dict[str, Any]:
        """The event the page fires on `trigger` of the element `target` (or on load, writing `output`)."""
        for dep in self.config["dependencies"]:
            for tid, kind in dep["targets"]:
                if kind != trigger or (target is not None and tid != self.ids[target]):
                    continue
                if output is None or self.ids[output] in dep["outputs"]:
                    return dep
        raise AssertionError(f"no {trigger} event on {target or output}")

    def fire(self, dep: dict[str, Any], data: list[Any]) -> list[Any]:
        join = self.http.post(
            f"/gradio_api/queue/join{self.query}",
            json={"data": data, "fn_index": dep["id"], "session_hash": self.session, "trigger_id": None},
        )
        assert join.status_code == 200, join.text[:300]
        with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": self.session}) as s:
            for line in s.iter_lines():
                if line.startswith("data:"):
                    msg = json.loads(line[5:])
                    if msg.get("msg") == "process_completed":
                        assert msg["success"], msg
                        return msg["output"]["data"]
        raise AssertionError("the event stream ended without a result")

    def load(self, output: str) -> list[Any]:
        """What the page fills in when it loads, for the load event that writes `output`."""
        return self.fire(self.event("load", output=output), [])

    def upload(self, name: str, content: bytes) -> str:
        up = self.http.post("/gradio_api/upload", files={"files": (name, content)})
        assert up.status_code == 200, up.text[:300]
        file = {"path": up.json()[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}
        return self.fire(self.event("upload", "upload"), [[file]])[0]

    def remove(self, doc_id: str) -> str:
        return self.fire(self.event("click", "remove"), [doc_id])[0]

    def ask(self, question: str, conv_id: str = "") -> list[Any]:
        """One turn as the Send button sends it; the conversation itself is the tab's state (null)."""
        data = [{"text": question, "files": []}, [], None, 2, 0.0, 24, conv_id, None]
        return self.fire(self.event("click", "send"), data)


def documents(page: Page) -> dict[str, tuple[str, str]]:
    """name -> (origin, document id), as an admin's documents tab lists them on load."""
    table, pick = page.load("documents")
    table = table.get("value", table)  # an update of the component, or its value
    ids = {label.split(" (")[0]: value for label, value in pick["choices"]}
    return {row[0]: (row[2], ids.get(row[0], "")) for row in table["data"] if row and row[0]}


@asynccontextmanager
async def mcp_session(url: str, key: str):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(300)) as client,
        streamable_http_client(url + "/mcp", http_client=client) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def mcp_search(url: str, key: str, query: str) -> list[dict[str, Any]]:
    async def main():
        async with mcp_session(url, key) as session:
            result = await session.call_tool("search_documents", {"query": query, "k": 3})
            return result.structuredContent["passages"]

    return anyio.run(main)


def mcp_read(url: str, key: str, uri: str) -> str:
    async def main():
        async with mcp_session(url, key) as session:
            got = await session.read_resource(uri)
            return "".join(getattr(c, "text", "") for c in got.contents)

    return anyio.run(main)
